// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// This file is the ECS metadata service as far as temporary credentials go:
// an optional session token, then the agency's temporary access key. The
// client side is huaweicloud-sdk-go-v3 core/auth/internal/metadata_accessor.go
// (paths, headers, the 404/405 fallback, the 401 retry, the answer's fields);
// the service side is Huawei's ECS user manual, "Configuring Instance Metadata
// Options" (usermanual-ecs/ecs_03_2167.html: session tokens valid 1 to 360
// minutes, refused with X-Forwarded-For) and the ECS API's metadata options
// (http_tokens "optional", the default, or "required").

// Metadata service paths, as in metadata_accessor.go.
const (
	MetadataTokenPath = "/meta-data/latest/api/token"
	SecurityKeyPath   = "/openstack/latest/securitykey"
)

// DefaultTemporaryKeyTTL is the validity of a temporary access key; IAM issues
// them for 15 minutes to 24 hours (api-iam, "Obtaining a Temporary Access Key
// and Security Token").
const DefaultTemporaryKeyTTL = 24 * time.Hour

// MsgNoAgency is the metadata service's 401 message when the ECS has no agency;
// the SDK does not retry with a new session token on it (metadata_accessor.go,
// ConfigAgencyError). A FaultStatus with this ErrorMsg on OpSecurityKey
// simulates such an ECS.
const MsgNoAgency = "Please configure Cloud Service Agency first"

const (
	headerMetadataToken    = "X-Metadata-Token"
	headerMetadataTokenTTL = "X-Metadata-Token-Ttl-Seconds"
	// Session token validity bounds: 1 to 360 minutes (ecs_03_2167.html).
	minSessionTTL = 60
	maxSessionTTL = 6 * 60 * 60
)

// metadataState holds session tokens and the current temporary credential.
type metadataState struct {
	mu       sync.Mutex
	mode     string               // Options.MetadataSessionToken
	sessions map[string]time.Time // session token → expiry
	current  *temporaryKey
}

type temporaryKey struct {
	access, secret, securityToken string
	expiresAt                     time.Time
}

// securityKeyBody is the answer of GET /openstack/latest/securitykey
// (metadata_accessor.go, GetTemporaryCredentialFromMetadataResponse).
type securityKeyBody struct {
	Credential struct {
		Access        string `json:"access"`
		Secret        string `json:"secret"`
		SecurityToken string `json:"securitytoken"`
		ExpiresAt     string `json:"expires_at"`
	} `json:"credential"`
}

func isMetadataOperation(op string) bool { return op == OpMetadataToken || op == OpSecurityKey }

// metadataError is a plain-text error: the SDK reads the metadata service's
// error bodies as text only.
func metadataError(status int, msg string) reply {
	return reply{status: status, contentType: "text/plain; charset=utf-8", body: []byte(msg)}
}

// metadataToken is PUT /meta-data/latest/api/token: a session token valid for
// X-Metadata-Token-Ttl-Seconds, or 404/405 as on a service without them.
func (s *Server) metadataToken(c *call) reply {
	switch s.MetadataSessionToken() {
	case SessionToken404:
		return metadataError(http.StatusNotFound, http.StatusText(http.StatusNotFound))
	case SessionToken405:
		rp := metadataError(http.StatusMethodNotAllowed, http.StatusText(http.StatusMethodNotAllowed))
		rp.header = http.Header{"Allow": {http.MethodGet}}
		return rp
	}
	if c.r.Header.Get("X-Forwarded-For") != "" {
		return metadataError(http.StatusForbidden, "X-Forwarded-For is not allowed")
	}
	ttl, err := strconv.Atoi(c.r.Header.Get(headerMetadataTokenTTL))
	if err != nil || ttl < minSessionTTL || ttl > maxSessionTTL {
		return metadataError(http.StatusBadRequest, headerMetadataTokenTTL+" must be a number of seconds from 60 to 21600")
	}
	value := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	m := s.meta
	m.mu.Lock()
	m.sessions[value] = s.now().Add(time.Duration(ttl) * time.Second)
	m.mu.Unlock()
	return reply{status: http.StatusOK, contentType: "text/plain", body: []byte(value)}
}

// securityKey is GET /openstack/latest/securitykey: the current temporary
// credential, after the session token check.
func (s *Server) securityKey(c *call) reply {
	if !s.sessionAdmitted(c.r.Header.Get(headerMetadataToken)) {
		return metadataError(http.StatusUnauthorized, http.StatusText(http.StatusUnauthorized))
	}
	k := s.currentTemporaryKey()
	var b securityKeyBody
	b.Credential.Access = k.access
	b.Credential.Secret = k.secret
	b.Credential.SecurityToken = k.securityToken
	b.Credential.ExpiresAt = k.expiresAt.UTC().Format(expiresAtLayout)
	return jsonReply(http.StatusOK, b)
}

// sessionAdmitted checks X-Metadata-Token: required in "required" mode,
// checked when sent in "optional" mode (a token sent is a token meant, so an
// expired one is refused and the SDK fetches a new one), and unknown to a
// service without session tokens.
func (s *Server) sessionAdmitted(value string) bool {
	m := s.meta
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.mode {
	case SessionToken404, SessionToken405:
		return true
	case SessionTokenOptional:
		if value == "" {
			return true
		}
	}
	expires, ok := m.sessions[value]
	return ok && s.now().Before(expires)
}

// currentTemporaryKey returns the temporary credential the service hands out
// now. A new one (new access key, secret and security token) replaces it when
// less than half of its validity is left; the old one stays valid until its
// own expiry, so that a client refreshing early never holds an invalid key.
func (s *Server) currentTemporaryKey() temporaryKey {
	now := s.now()
	m := s.meta
	m.mu.Lock()
	defer m.mu.Unlock()
	if k := m.current; k != nil && k.expiresAt.Sub(now) >= s.opts.TemporaryKeyTTL/2 {
		return *k
	}
	k := &temporaryKey{
		access:        "SIMTMP" + randomString(14, upperAlnum),
		secret:        randomString(40, anyAlnum),
		securityToken: base64.StdEncoding.EncodeToString(randomBytes(384)),
		expiresAt:     now.Add(s.opts.TemporaryKeyTTL),
	}
	m.current = k
	s.putKey(k.access, secretKey{secret: k.secret, securityToken: k.securityToken, expiresAt: k.expiresAt})
	s.stats.temporaryKeyIssued()
	return *k
}

const (
	upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	anyAlnum   = upperAlnum + "abcdefghijklmnopqrstuvwxyz"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return b
}

// randomString is n characters of alphabet (fewer than 256 of them).
func randomString(n int, alphabet string) string {
	b := randomBytes(n)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// TemporaryKeysIssued returns how many temporary access keys the metadata
// service issued since the last ResetCounters.
func (s *Server) TemporaryKeysIssued() int {
	c := s.stats
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.temporaryKeys
}
