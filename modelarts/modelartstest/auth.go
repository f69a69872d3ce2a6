// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"sync"
	"time"
)

// Signature checks, as on the real API gateway.
const (
	// LockoutThreshold is the number of consecutive signature failures after
	// which an access key is locked.
	LockoutThreshold = 5
	// LockoutDuration is how long a locked access key is refused.
	LockoutDuration = 5 * time.Minute
	// MaxClockSkew is how far X-Sdk-Date may be from the server's clock.
	MaxClockSkew = 15 * time.Minute
)

// maxSignedBody caps the request body read to check its hash.
const maxSignedBody = 1 << 20

// principal is who a call was authenticated as.
type principal struct {
	accessKey string // AK/SK
	token     *token // X-Auth-Token
}

type secretKey struct {
	secret        string
	securityToken string    // "" for permanent keys
	expiresAt     time.Time // zero: never
}

type userKey struct{ domain, name string }

type token struct {
	user      User
	projectID string // "" for a token without project scope
	expiresAt time.Time
}

type lockout struct {
	failures    int
	lockedUntil time.Time
}

// authState holds keys, users, issued tokens and lockouts.
type authState struct {
	mu     sync.RWMutex
	keys   map[string]secretKey
	users  map[userKey]string // password
	tokens map[string]*token

	lockMu   sync.Mutex
	lockouts map[string]*lockout
}

func newAuthState(keys map[string]string, users []User) *authState {
	a := &authState{
		keys:     make(map[string]secretKey, len(keys)),
		users:    make(map[userKey]string, len(users)),
		tokens:   make(map[string]*token),
		lockouts: make(map[string]*lockout),
	}
	for ak, sk := range keys {
		a.keys[ak] = secretKey{secret: sk}
	}
	for _, u := range users {
		a.users[userKey{u.Domain, u.Name}] = u.Password
	}
	return a
}

// AddKey accepts a further access key. A non-empty securityToken makes it a
// temporary key: its requests must carry X-Security-Token with that value.
// Adding an existing access key replaces its secret.
// Such a key never expires; the metadata service issues ones that do.
func (s *Server) AddKey(accessKey, sk, securityToken string) {
	s.putKey(accessKey, secretKey{secret: sk, securityToken: securityToken})
}

func (s *Server) putKey(accessKey string, key secretKey) {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	s.auth.keys[accessKey] = key
}

// RemoveKey stops accepting an access key.
func (s *Server) RemoveKey(accessKey string) {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	delete(s.auth.keys, accessKey)
}

// AddUser lets a further user obtain tokens, or changes a user's password
// (which, as on IAM, does not revoke the user's tokens here: use RevokeTokens).
func (s *Server) AddUser(u User) {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	s.auth.users[userKey{u.Domain, u.Name}] = u.Password
}

// ExpireTokens makes every token issued so far expired: calls with them get
// 401 ModelArts.0202 until the client asks for a new one.
func (s *Server) ExpireTokens() {
	now := s.now()
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	for _, t := range s.auth.tokens {
		if t.expiresAt.After(now) {
			t.expiresAt = now
		}
	}
}

// RevokeTokens forgets every token issued so far: calls with them get 401
// ModelArts.0203.
func (s *Server) RevokeTokens() {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	clear(s.auth.tokens)
}

// Locked reports whether an access key is currently locked out.
func (s *Server) Locked(accessKey string) bool {
	s.auth.lockMu.Lock()
	defer s.auth.lockMu.Unlock()
	l := s.auth.lockouts[accessKey]
	return l != nil && s.now().Before(l.lockedUntil)
}

// ClearLockouts unlocks every access key and forgets past failures.
func (s *Server) ClearLockouts() {
	s.auth.lockMu.Lock()
	defer s.auth.lockMu.Unlock()
	clear(s.auth.lockouts)
}

// issueToken stores a new token and returns its value.
func (s *Server) issueToken(u User, projectID string, expiresAt time.Time) string {
	value := newTokenValue()
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	s.auth.tokens[value] = &token{user: u, projectID: projectID, expiresAt: expiresAt}
	return value
}

// newTokenValue looks like a real (PKI-style) token: long, base64, "MII...".
func newTokenValue() string {
	return "MIIsim" + base64.RawURLEncoding.EncodeToString([]byte(randomHex(96)))
}

// checkPassword reports whether the user exists with that password.
func (s *Server) checkPassword(domain, name, password string) bool {
	s.auth.mu.RLock()
	want, ok := s.auth.users[userKey{domain, name}]
	s.auth.mu.RUnlock()
	return ok && hmac.Equal([]byte(want), []byte(password))
}

// authenticate accepts an issued token or an AK/SK signature.
func (s *Server) authenticate(c *call) (*principal, *reply) {
	if v := c.r.Header.Get("X-Auth-Token"); v != "" {
		return s.authenticateToken(c, v)
	}
	if v := c.r.Header.Get("Authorization"); v != "" {
		return s.authenticateSignature(c, v)
	}
	fail := s.refuseToken(CodeTokenMissing, c.op)
	return nil, &fail
}

func (s *Server) authenticateToken(c *call, value string) (*principal, *reply) {
	s.auth.mu.RLock()
	t, ok := s.auth.tokens[value]
	var tc token
	if ok {
		tc = *t
	}
	s.auth.mu.RUnlock()
	var fail reply
	switch {
	case !ok:
		fail = s.refuseToken(CodeTokenInvalid, c.op)
	case !s.now().Before(tc.expiresAt):
		fail = s.refuseToken(CodeTokenExpired, c.op)
	case tc.projectID == "" && !isIAMOperation(c.op):
		fail = s.refuseToken(CodeTokenNotScoped, c.op)
	default:
		return &principal{token: &tc}, nil
	}
	return nil, &fail
}

// refuseToken answers a token refused for code with its documented 401, or,
// with RefuseWith403, an unknown or expired token with 403 ModelArts.0203
// (opentelekomcloud-docs/modelarts api-ref/source/appendix/error_codes.rst).
func (s *Server) refuseToken(code, op string) reply {
	status := http.StatusUnauthorized
	if s.refuse403.Load() && (code == CodeTokenInvalid || code == CodeTokenExpired) {
		status, code = http.StatusForbidden, CodeTokenInvalid
	}
	return modelArtsError(status, code, docMessage(status, code, op))
}

// refuseSignature answers a refused AK/SK signature with the gateway's 401
// APIG.0301 and msg, or, with RefuseWith403, with 403 ModelArts.0206
// (opentelekomcloud-docs/modelarts api-ref/source/appendix/error_codes.rst).
func (s *Server) refuseSignature(c *call, msg string) reply {
	if s.refuse403.Load() {
		return modelArtsError(http.StatusForbidden, CodeAKSKInvalid, docMessage(http.StatusForbidden, CodeAKSKInvalid, c.op))
	}
	return gatewayError(http.StatusUnauthorized, CodeSignatureFailed, msg, c.requestID)
}

func (s *Server) authenticateSignature(c *call, header string) (*principal, *reply) {
	a, err := parseAuthorization(header)
	fail := func(msg string) (*principal, *reply) {
		s.stats.refusedSignature(a.access)
		rp := s.refuseSignature(c, msg)
		return nil, &rp
	}
	if err != nil {
		return fail("Incorrect IAM authentication information: Authorization format incorrect")
	}
	s.auth.mu.RLock()
	key, ok := s.auth.keys[a.access]
	s.auth.mu.RUnlock()
	if !ok {
		return fail("Incorrect IAM authentication information: ak " + a.access + " not exist")
	}
	if s.Locked(a.access) {
		return fail(MsgKeyLocked)
	}
	if msg := s.verifySignature(c.r, a, key); msg != "" {
		s.recordFailure(a.access)
		return fail(msg)
	}
	s.recordSuccess(a.access)
	return &principal{accessKey: a.access}, nil
}

// verifySignature returns "" when the request is correctly signed, or why not.
func (s *Server) verifySignature(r *http.Request, a authorization, key secretKey) string {
	if !a.signs("x-sdk-date") {
		return "Incorrect IAM authentication information: x-sdk-date is not signed"
	}
	date, err := time.Parse(sdkDateLayout, r.Header.Get(headerSdkDate))
	if err != nil {
		return "Incorrect IAM authentication information: x-sdk-date format incorrect"
	}
	if skew := s.now().Sub(date); skew > MaxClockSkew || skew < -MaxClockSkew {
		return "Incorrect IAM authentication information: the request has expired, x-sdk-date is too far from server time"
	}
	if msg := s.checkTemporaryKey(r, a, key); msg != "" {
		return msg
	}
	bodyHash, err := requestBodyHash(r)
	if err != nil {
		return MsgSignatureFailed
	}
	want, err := computeSignature(r, a.signedHeaders, bodyHash, key.secret)
	if err != nil || !hmac.Equal([]byte(want), []byte(a.signature)) {
		return MsgSignatureFailed
	}
	return ""
}

// checkTemporaryKey returns "" for a permanent key, or for a temporary one
// that has not expired and whose security token was sent and signed, as
// huaweicloud-sdk-go-v3 core/auth/base_credentials.go does (it adds
// X-Security-Token before signing); else why not.
func (s *Server) checkTemporaryKey(r *http.Request, a authorization, key secretKey) string {
	switch {
	case key.securityToken == "":
		return ""
	case !key.expiresAt.IsZero() && !s.now().Before(key.expiresAt):
		return "Incorrect IAM authentication information: the security token has expired"
	case !hmac.Equal([]byte(r.Header.Get("X-Security-Token")), []byte(key.securityToken)):
		return "Incorrect IAM authentication information: security token invalid"
	case !a.signs("x-security-token"):
		return "Incorrect IAM authentication information: x-security-token is not signed"
	}
	return ""
}

// requestBodyHash reads the body (restoring it for the handler) and hashes it,
// unless the client declared an unsigned payload.
func requestBodyHash(r *http.Request) (string, error) {
	if r.Header.Get("X-Sdk-Content-Sha256") == unsignedPayload {
		return unsignedPayload, nil
	}
	if r.Body == nil || r.Body == http.NoBody {
		return hexSHA256(nil), nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSignedBody))
	if err != nil {
		return "", err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:]), nil
}

// recordFailure counts a signature failure; the LockoutThreshold-th
// consecutive one locks the key.
func (s *Server) recordFailure(accessKey string) {
	s.auth.lockMu.Lock()
	defer s.auth.lockMu.Unlock()
	l := s.auth.lockouts[accessKey]
	if l == nil {
		l = &lockout{}
		s.auth.lockouts[accessKey] = l
	}
	l.failures++
	if l.failures >= LockoutThreshold {
		l.failures = 0
		l.lockedUntil = s.now().Add(LockoutDuration)
	}
}

func (s *Server) recordSuccess(accessKey string) {
	s.auth.lockMu.Lock()
	defer s.auth.lockMu.Unlock()
	if l := s.auth.lockouts[accessKey]; l != nil {
		l.failures = 0
	}
}

// checkProject refuses a ModelArts call for another project than the
// server's, or than the token's or the X-Project-Id header's.
func (s *Server) checkProject(c *call) *reply {
	inURL := c.r.PathValue("project_id")
	ok := inURL == s.opts.ProjectID
	if c.who.token != nil && c.who.token.projectID != inURL {
		ok = false
	}
	if h := c.r.Header.Get("X-Project-Id"); h != "" && h != inURL {
		ok = false
	}
	if ok {
		return nil
	}
	fail := modelArtsError(http.StatusForbidden, CodeProjectMismatch, docMessage(http.StatusForbidden, CodeProjectMismatch, c.op))
	return &fail
}
