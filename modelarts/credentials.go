// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
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

// Format prints the credentials, in any verb, with their secrets as <secret>.
func (cr Credentials) Format(f fmt.State, _ rune) {
	type plain Credentials // without Format
	cr.SecretKey, cr.SecurityToken, cr.Password = redacted(cr.SecretKey), redacted(cr.SecurityToken), redacted(cr.Password)
	_, _ = fmt.Fprintf(f, "Credentials%+v", plain(cr))
}

// String is Format's %v, for loggers that look for a String method (go-kit's JSON logger).
func (cr Credentials) String() string { return fmt.Sprint(cr) }

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
