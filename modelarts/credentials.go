// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Credentials holds one way to authenticate: AK/SK signing with AccessKey and SecretKey
// (SecurityToken optional) or with the temporary keys of MetadataEndpoint, or an IAM token
// for DomainName, Username and Password; each secret may be read from its *File instead.
type Credentials struct {
	AccessKey         string
	SecretKey         string
	SecurityToken     string
	SecretKeyFile     string
	SecurityTokenFile string
	MetadataEndpoint  string // the ECS metadata service, e.g. http://169.254.169.254

	DomainName   string
	Username     string
	Password     string
	PasswordFile string
}

// String describes the credentials without their secrets.
func (cr Credentials) String() string {
	return fmt.Sprintf("Credentials{AccessKey: %q, SecretKey: %s, SecurityToken: %s, SecretKeyFile: %q, SecurityTokenFile: %q, "+
		"MetadataEndpoint: %q, DomainName: %q, Username: %q, Password: %s, PasswordFile: %q}",
		cr.AccessKey, redacted(cr.SecretKey), redacted(cr.SecurityToken), cr.SecretKeyFile, cr.SecurityTokenFile,
		cr.MetadataEndpoint, cr.DomainName, cr.Username, redacted(cr.Password), cr.PasswordFile)
}

// GoString is String, for %#v.
func (cr Credentials) GoString() string { return cr.String() }

// secret is one configured secret: a value, or a file read again whenever its size or modification
// time changes, so that a rotated secret needs no reload; a file that fails keeps its last content.
type secret struct {
	value string // the configured value; "" with a file
	file  string // "" for a value
	what  string // e.g. "secret key file", for errors

	mu      sync.Mutex
	last    string // the last good content of file, without trailing white space
	size    int64
	modTime time.Time
}

// get returns the current value ("" when none is configured) for a call of operation op. A file that
// never gave one fails the call with ErrUnauthorized, naming the file, never its content.
func (s *secret) get(op string) (string, error) {
	if s.file == "" {
		return s.value, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	info, err := os.Stat(s.file)
	if err == nil && (s.last == "" || info.Size() != s.size || !info.ModTime().Equal(s.modTime)) {
		var b []byte
		if b, err = os.ReadFile(s.file); err == nil {
			if v := strings.TrimRightFunc(string(b), unicode.IsSpace); v != "" {
				s.last, s.size, s.modTime = v, info.Size(), info.ModTime()
			} else {
				err = errors.New("the file is empty")
			}
		}
	}
	if s.last != "" {
		return s.last, nil
	}
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		err = pathErr.Err // the path is in the message already
	}
	return "", &APIError{Operation: op, Class: ErrUnauthorized, Cause: fmt.Errorf("not sent: read %s %s: %w", s.what, s.file, err)}
}

// current returns the value in use without reading anything, for scrubbing.
func (s *secret) current() string {
	if s.file == "" {
		return s.value
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// accessKeys are what a request is signed with.
type accessKeys struct {
	accessKey, secretKey string
	securityToken        string // temporary keys only
	metadata             string // the metadata endpoint that gave them; "" when configured
}

// keySource gives the access keys of each request, so that they can change without a new client:
// configured ones, the secrets possibly read from files, or the temporary keys of a metadata service.
type keySource struct {
	accessKey                string
	secretKey, securityToken *secret
	metadata                 *metadataProvider // nil: configured keys
	caller                   httpCaller        // asks metadata
}

func (k *keySource) keys(ctx context.Context) (accessKeys, error) {
	if k.metadata != nil {
		t, err := k.metadata.keys.get(ctx, func(ctx context.Context) (*temporaryKeys, error) { return k.metadata.fetchKeys(ctx, k.caller) })
		if err != nil {
			return accessKeys{}, err
		}
		return t.keys, nil
	}
	op := operationFrom(ctx)
	sk, err := k.secretKey.get(op)
	if err != nil {
		return accessKeys{}, err
	}
	token, err := k.securityToken.get(op)
	if err != nil {
		return accessKeys{}, err
	}
	return accessKeys{accessKey: k.accessKey, secretKey: sk, securityToken: token}, nil
}

// secrets are the secret key and security token in use, to scrub from errors.
func (k *keySource) secrets() []string {
	if k.metadata == nil {
		return []string{k.secretKey.current(), k.securityToken.current()}
	}
	if t := k.metadata.keys.current(); t != nil {
		return []string{t.keys.secretKey, t.keys.securityToken}
	}
	return nil
}

// refused drops the temporary keys the cloud refused, unless already replaced: the next call
// asks for new keys. Configured keys change when their files do.
func (k *keySource) refused(keys accessKeys) {
	if k.metadata == nil {
		return
	}
	if cur := k.metadata.keys.current(); cur != nil && cur.keys == keys {
		k.metadata.keys.invalidate(cur)
	}
}

// credentialKind is the way Credentials authenticate.
type credentialKind int

const (
	kindAccessKey credentialKind = iota // AK/SK signing with configured keys
	kindMetadata                        // AK/SK signing with temporary keys from ECS metadata
	kindPassword                        // IAM password token
)

// validate returns the one kind of credentials that is complete; messages name fields, never values.
func (cr Credentials) validate() (credentialKind, error) {
	for _, s := range []struct{ name, value, file string }{
		{"secret key", cr.SecretKey, cr.SecretKeyFile},
		{"security token", cr.SecurityToken, cr.SecurityTokenFile},
		{"password", cr.Password, cr.PasswordFile},
	} {
		if s.value != "" && s.file != "" {
			return 0, fmt.Errorf("credentials: both %s and %s file are set, configure one", s.name, s.name)
		}
	}
	hasKeys := cr.AccessKey+cr.SecretKey+cr.SecurityToken+cr.SecretKeyFile+cr.SecurityTokenFile != ""
	hasPassword := cr.DomainName+cr.Username+cr.Password+cr.PasswordFile != ""
	switch {
	case cr.MetadataEndpoint != "" && (hasKeys || hasPassword):
		return 0, errors.New("credentials: the metadata endpoint gives the access keys; set no access key, secret key, security token, their files or password with it")
	case cr.MetadataEndpoint != "":
		return kindMetadata, nil
	case hasKeys && hasPassword:
		return 0, errors.New("credentials: both access key and password credentials are set, configure exactly one kind")
	case hasKeys:
		return kindAccessKey, missing("AK/SK signing", "access key", cr.AccessKey, "secret key", cr.SecretKey+cr.SecretKeyFile)
	case hasPassword:
		return kindPassword, missing("password authentication", "domain name", cr.DomainName, "password", cr.Password+cr.PasswordFile, "username", cr.Username)
	default:
		return 0, errors.New("credentials: none configured, set access key and secret key, or domain name, username and password, or the metadata endpoint")
	}
}

// missing names the empty ones of the (name, value) fields that purpose needs; nil when none.
func missing(purpose string, fields ...string) error {
	var names []string
	for i := 0; i < len(fields); i += 2 {
		if fields[i+1] == "" {
			names = append(names, fields[i])
		}
	}
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("credentials: %s missing for %s", strings.Join(names, " and "), purpose)
}
