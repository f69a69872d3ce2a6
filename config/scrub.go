// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package config

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
)

const redacted = "<secret>"

// scrubSecrets joins errs with every secret value hidden in their messages: as
// it is (6 bytes or longer), in Go quotes, and in yaml.v3's backquotes, which
// cut a value longer than 10 bytes to its first 7 ("`Secretv...`"). yaml.v3
// quotes a secret given a tag such as !!int, or used through an alias in
// another field.
func scrubSecrets(errs []error, secrets []string) error {
	secrets = slices.SortedFunc(slices.Values(secrets), func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	var pairs []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		pairs = append(pairs, "`"+s+"`", "`"+redacted+"`", strconv.Quote(s), strconv.Quote(redacted))
		if len(s) > 10 {
			pairs = append(pairs, "`"+s[:7]+"...`", "`"+redacted+"`")
		}
		if len(s) >= 6 {
			pairs = append(pairs, s, redacted)
		}
	}
	r := strings.NewReplacer(pairs...)
	for i, err := range errs {
		if msg := r.Replace(err.Error()); msg != err.Error() {
			errs[i] = errors.New(msg)
		}
	}
	return errors.Join(errs...)
}

// secrets lists the secrets of c read from files and the environment, which
// the file as written does not hold.
func (c *Config) secrets() []string {
	var out []string
	for _, p := range c.Projects {
		out = append(out, string(p.Auth.SecretKey), string(p.Auth.SecurityToken), string(p.Auth.Password))
	}
	return out
}

// urlPassword returns the password in the user information of a URL as
// written, "" if there is none. It does not need the URL to parse.
func urlPassword(s string) string {
	_, rest, ok := strings.Cut(s, "://")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(rest[:at], ":")
	return pw
}
