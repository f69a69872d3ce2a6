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

// Credentials holds exactly one of the three ways to authenticate:
// AccessKey+SecretKey (optionally SecurityToken) for AK/SK signing;
// MetadataEndpoint for AK/SK signing with temporary keys; or
// DomainName+Username+Password for an IAM password token. A secret and its
// *File are not both set; a file is read as secret describes.
type Credentials struct {
	AccessKey         string
	SecretKey         string
	SecurityToken     string
	SecretKeyFile     string
	SecurityTokenFile string
	// MetadataEndpoint is the ECS metadata service that gives temporary
	// access keys and security tokens (e.g. http://169.254.169.254).
	MetadataEndpoint string

	DomainName   string
	Username     string
	Password     string
	PasswordFile string
}

// String describes the credentials without their secrets, so that printing
// them (e.g. with %v) cannot leak them.
func (cr Credentials) String() string {
	return fmt.Sprintf("Credentials{AccessKey: %q, SecretKey: %s, SecurityToken: %s, SecretKeyFile: %q, SecurityTokenFile: %q, "+
		"MetadataEndpoint: %q, DomainName: %q, Username: %q, Password: %s, PasswordFile: %q}",
		cr.AccessKey, redacted(cr.SecretKey), redacted(cr.SecurityToken), cr.SecretKeyFile, cr.SecurityTokenFile,
		cr.MetadataEndpoint, cr.DomainName, cr.Username, redacted(cr.Password), cr.PasswordFile)
}

// GoString is String, for %#v.
func (cr Credentials) GoString() string { return cr.String() }

// secret is one configured secret: a value, or a file that is read again
// whenever its size or modification time changes, so that a rotated secret
// is used without a reload. When the file cannot be read, the last good
// content is used; without one, the call fails with an error that names the
// file, never its content.
type secret struct {
	value string // the configured value; "" with a file
	file  string // "" for a value
	what  string // e.g. "secret key file", for errors

	mu      sync.Mutex
	last    string // the last good content of file
	size    int64
	modTime time.Time
}

func newSecret(value, file, what string) *secret {
	return &secret{value: value, file: file, what: what}
}

// get returns the current value of the secret, for a call of operation op;
// "" when none is configured. A file that never gave a value fails the call
// with ErrUnauthorized: the call cannot authenticate.
func (s *secret) get(op string) (string, error) {
	if s.file == "" {
		return s.value, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	info, err := os.Stat(s.file)
	if err == nil && s.last != "" && info.Size() == s.size && info.ModTime().Equal(s.modTime) {
		return s.last, nil
	}
	if err == nil {
		var v string
		if v, err = readSecretFile(s.file); err == nil {
			s.last, s.size, s.modTime = v, info.Size(), info.ModTime()
			return v, nil
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

// readSecretFile returns the content of file without trailing white space.
// Its errors never quote the content.
func readSecretFile(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	v := strings.TrimRightFunc(string(b), unicode.IsSpace)
	if v == "" {
		return "", errors.New("the file is empty")
	}
	return v, nil
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

// keySource gives the access keys to sign a request with, read per request
// so that they can change without a new client.
type keySource interface {
	keys(ctx context.Context) (accessKeys, error)
	// secrets are the secret key and security token in use, to scrub from errors.
	secrets() []string
	// refused tells that the cloud refused k, so that a source that can get
	// other keys does so at the next call.
	refused(k accessKeys)
}

// staticKeys are configured keys, the secret key and security token
// possibly read from files.
type staticKeys struct {
	accessKey                string
	secretKey, securityToken *secret
}

func (k *staticKeys) keys(ctx context.Context) (accessKeys, error) {
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

func (k *staticKeys) secrets() []string {
	return []string{k.secretKey.current(), k.securityToken.current()}
}

// refused does nothing: configured keys change when their files do.
func (k *staticKeys) refused(accessKeys) {}

// credentialKind is the way Credentials authenticate.
type credentialKind int

const (
	kindAccessKey credentialKind = iota // AK/SK signing with configured keys
	kindMetadata                        // AK/SK signing with temporary keys from ECS metadata
	kindPassword                        // IAM password token
)

// validate checks that exactly one kind of credentials is complete and
// returns it. Messages name fields, never values.
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

// missing names the empty ones of the fields (name, value pairs, by name)
// that purpose needs; nil when none is empty.
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
