// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

const (
	headerSubjectToken = "X-Subject-Token"
	headerAuthToken    = "X-Auth-Token"

	// A token is renewed when less than tokenRenewMargin, or less than
	// 1/tokenRenewDivisor of its lifetime, remains, whichever is smaller:
	// a 24 h token is renewed one hour before it expires, a 10 min one a
	// minute before.
	tokenRenewMargin  = time.Hour
	tokenRenewDivisor = 10
	// tokenExpirySkew: a token is not sent when less than this remains.
	tokenExpirySkew = 30 * time.Second
)

// token is a cached IAM token. Times are on the local clock.
type token struct {
	value     string
	projectID string
	expiresAt time.Time
	renewAt   time.Time
	// replacement: made because the API refused the token before it.
	replacement bool
}

// due reports whether t should be renewed at now.
func (t *token) due(now time.Time) bool { return t == nil || !now.Before(t.renewAt) }

// usable reports whether t may still be sent at now.
func (t *token) usable(now time.Time) bool {
	return t != nil && now.Before(t.expiresAt.Add(-tokenExpirySkew))
}

// tokenRequest is the body of POST /v3/auth/tokens.
type tokenRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password struct {
				User struct {
					Name     string `json:"name"`
					Password string `json:"password"`
					Domain   struct {
						Name string `json:"name"`
					} `json:"domain"`
				} `json:"user"`
			} `json:"password"`
		} `json:"identity"`
		Scope struct {
			Project struct {
				ID   string `json:"id,omitempty"`
				Name string `json:"name,omitempty"`
			} `json:"project"`
		} `json:"scope"`
	} `json:"auth"`
}

// tokenResponse is the part of the POST /v3/auth/tokens answer the client uses.
type tokenResponse struct {
	Token struct {
		ExpiresAt string `json:"expires_at"`
		IssuedAt  string `json:"issued_at"`
		Project   struct {
			ID string `json:"id"`
		} `json:"project"`
	} `json:"token"`
}

// tokenSource obtains the IAM tokens of one password and one scope, caches
// them and renews them before they expire. It lives in Shared, so that every
// client with these credentials, before and after a reload, uses the same
// token, renews it once and shares the memory of a failure.
type tokenSource struct {
	url      string // {iam}/v3/auth/tokens
	body     []byte // the request body; holds the password, never printed
	password string // only to scrub it from IAM's messages
	// passwordGuard holds IAM's refusal of the password, shared by every
	// scope; it is the password's entry in Shared (see sourceFor).
	passwordGuard *refusalGuard
	// iam holds IAM's failures, shared by every scope.
	iam *iamBackoff
	// fresh holds the API's refusal of a token that replaced a refused one.
	fresh  refusalGuard
	tokens renewing[*token]
	// replacing: the next token made replaces a refused one.
	replacing atomic.Bool
	// dropped is the value of the last token dropped after a refusal.
	dropped atomic.Value
}

// httpCaller is how a client sends a request without authentication, to IAM
// or the metadata service: its own HTTP client (with its Observer) and settings.
type httpCaller struct {
	client    *http.Client
	userAgent string
	maxBody   int64
}

func newTokenSource(id tokenID, password, projectID, region string, guard *refusalGuard, iam *iamBackoff, now func() time.Time) *tokenSource {
	var req tokenRequest
	req.Auth.Identity.Methods = []string{"password"}
	req.Auth.Identity.Password.User.Name = id.user
	req.Auth.Identity.Password.User.Password = password
	req.Auth.Identity.Password.User.Domain.Name = id.domain
	if projectID != "" {
		req.Auth.Scope.Project.ID = projectID
	} else {
		req.Auth.Scope.Project.Name = region
	}
	body, _ := json.Marshal(req) // strings only: cannot fail
	return &tokenSource{
		url:           id.iamURL,
		body:          body,
		password:      password,
		passwordGuard: guard,
		iam:           iam,
		fresh:         refusalGuard{text: freshTokenRefusal},
		tokens:        newRenewing[*token](OpCreateToken, now),
	}
}

// Token returns a valid token, asking IAM through iam for a new one when the
// cached one is missing, invalidated or due for renewal.
func (ts *tokenSource) Token(ctx context.Context, iam httpCaller) (*token, error) {
	return ts.tokens.get(ctx, func(ctx context.Context) (*token, error) { return ts.create(ctx, iam) })
}

// create performs POST /v3/auth/tokens, unless IAM refused the password less
// than refusalPause ago, or failed less than renewRetryInterval ago, for
// this scope or another. Logins with a password never accepted go one at a
// time, across scopes (see refusalGuard.firstContact).
func (ts *tokenSource) create(ctx context.Context, iam httpCaller) (*token, error) {
	defer ts.passwordGuard.contacted(ts.passwordGuard.firstContact(ctx))
	start := ts.tokens.now()
	if err := ts.passwordGuard.check(OpCreateToken, start); err != nil {
		return nil, err
	}
	if err := ts.fresh.check(OpCreateToken, start); err != nil { // a replacement was refused: no new token
		return nil, err
	}
	if err := ts.iam.check(start); err != nil {
		return nil, err
	}
	var body tokenResponse
	resp, err := send(ctx, iam.client, request{
		op: OpCreateToken, method: http.MethodPost, url: ts.url, body: ts.body, userAgent: iam.userAgent,
		ok: []int{http.StatusCreated, http.StatusOK}, maxBody: iam.maxBody, secrets: ts.secrets,
	}, &body)
	switch {
	case errors.Is(err, ErrUnauthorized):
		ts.passwordGuard.refused(ts.tokens.now(), AsAPIError(err))
	case err != nil:
		ts.iam.failed(ts.tokens.now(), err)
	default:
		ts.passwordGuard.accepted()
	}
	if err != nil {
		return nil, err
	}
	tok, err := newToken(resp.Header.Get(headerSubjectToken), body, start)
	if err != nil {
		return nil, malformed(OpCreateToken, resp, err)
	}
	tok.replacement = ts.replacing.Swap(false)
	return tok, nil
}

// secrets are what IAM's answer must not get into an error: the password.
func (ts *tokenSource) secrets() []string { return []string{ts.password} }

// passwordAuth is the password authentication of one client: the current
// password (re-read from its file) and the scope pick the token source in
// Shared; the client's own HTTP client talks to IAM.
type passwordAuth struct {
	shared            *Shared
	id                passwordID
	projectID, region string // the scope
	password          *secret
	iam               httpCaller
	now               func() time.Time
}

// source returns the token source of the current password, for a call of
// operation op.
func (a *passwordAuth) source(op string) (*tokenSource, error) {
	pass, err := a.password.get(op)
	if err != nil {
		return nil, err
	}
	return a.sourceFor(pass), nil
}

// sourceFor returns the token source of pass and the client's scope.
func (a *passwordAuth) sourceFor(pass string) *tokenSource {
	id := tokenID{passwordID: a.id, scope: "name:" + a.region}
	if a.projectID != "" {
		id.scope = "id:" + a.projectID
	}
	guard, iam := a.shared.passwordGuard(a.id, secretHash(pass)), a.shared.iamBackoff(a.id)
	return sharedEntry(a.shared, &a.shared.tokens, id,
		func(ts *tokenSource) bool { return ts.passwordGuard != guard }, // another password, or a guard replaced since
		func() *tokenSource { return newTokenSource(id, pass, a.projectID, a.region, guard, iam, a.now) })
}

// token returns the token source and a token for a call of operation op, or
// the remembered refusal of a fresh token.
func (a *passwordAuth) token(ctx context.Context, op string) (*tokenSource, *token, error) {
	ts, err := a.source(op)
	if err != nil {
		return nil, nil, err
	}
	if err := ts.fresh.check(op, a.now()); err != nil {
		return nil, nil, err
	}
	tok, err := ts.Token(ctx, a.iam)
	return ts, tok, err
}

// projectToken returns a token, for the project id it names.
func (a *passwordAuth) projectToken(ctx context.Context) (*token, error) {
	ts, err := a.source(OpCreateToken)
	if err != nil {
		return nil, err
	}
	return ts.Token(ctx, a.iam)
}

// secrets are the password and the token in use, to scrub from errors.
func (a *passwordAuth) secrets() []string {
	pass := a.password.current()
	out := []string{pass}
	ts := a.sourceFor(pass)
	if tok := ts.tokens.current(); tok != nil {
		out = append(out, tok.value)
	}
	if v, ok := ts.dropped.Load().(string); ok { // a refused token, quoted back in the refusal
		out = append(out, v)
	}
	return out
}

// newToken builds the cached token from IAM's answer to a request sent at
// start. When IAM tells issued_at, the lifetime (expires_at - issued_at) is
// counted from start on the local clock, which makes renewal immune to clock
// skew between the exporter and IAM.
func newToken(value string, body tokenResponse, start time.Time) (*token, error) {
	if value == "" {
		return nil, fmt.Errorf("no %s header in the answer", headerSubjectToken)
	}
	expires, err := time.Parse(time.RFC3339Nano, body.Token.ExpiresAt)
	if err != nil {
		return nil, fmt.Errorf("token.expires_at %q is not an RFC 3339 time", cleanText(body.Token.ExpiresAt, 64))
	}
	if issued, err := time.Parse(time.RFC3339Nano, body.Token.IssuedAt); err == nil && expires.After(issued) {
		expires = start.Add(expires.Sub(issued))
	}
	lifetime := expires.Sub(start)
	if lifetime <= 0 {
		return nil, fmt.Errorf("token.expires_at %s is not in the future", body.Token.ExpiresAt)
	}
	margin := min(tokenRenewMargin, lifetime/tokenRenewDivisor)
	return &token{
		value:     value,
		projectID: body.Token.Project.ID,
		expiresAt: expires,
		renewAt:   expires.Add(-margin),
	}, nil
}

// tokenRoundTripper sends every request with X-Auth-Token. When the API
// refuses the token (401, or 403 invalid token: expired, revoked early), it
// drops it, gets a new one and retries once. When the API refuses the new
// token too, another would be refused as well: the refusal is remembered for
// refusalPause, during which calls fail at once and no token is made.
type tokenRoundTripper struct {
	auth *passwordAuth
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (rt *tokenRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	ts, tok, err := rt.auth.token(ctx, operationFrom(ctx))
	if err != nil {
		closeRequestBody(req)
		return nil, err
	}
	resp, err := rt.send(req, tok, req.Body)
	if err != nil || rt.settled(ts, tok, req, resp) || !replayable(req) {
		return resp, err
	}
	// The token was revoked early (password or rights changed) or the clocks
	// disagree: renew once and retry once.
	discard(resp.Body)
	if err := ts.fresh.check(operationFrom(ctx), rt.auth.now()); err != nil {
		return nil, err // a replacement was refused meanwhile: no new token
	}
	ts.replacing.Store(true)
	ts.tokens.invalidate(tok)
	if tok, err = ts.Token(ctx, rt.auth.iam); err != nil {
		return nil, err
	}
	body, err := replayBody(req)
	if err != nil {
		return nil, err
	}
	if resp, err = rt.send(req, tok, body); err == nil {
		rt.settled(ts, tok, req, resp)
	}
	return resp, err
}

// settled reports whether resp, the answer to req sent with tok, is final:
// it does not refuse the token, or it refuses a token that replaced a
// refused one, which ts then remembers; the token is dropped, so that after
// the pause a new one is tried (and renewed once).
func (rt *tokenRoundTripper) settled(ts *tokenSource, tok *token, req *http.Request, resp *http.Response) bool {
	refused := invalidToken(req, resp, rt.auth.iam.maxBody, rt.auth.secrets())
	if refused == nil {
		return true
	}
	if tok.replacement {
		ts.fresh.refused(rt.auth.now(), refused)
		ts.dropped.Store(tok.value)
		ts.tokens.invalidate(tok)
	}
	return tok.replacement
}

// invalidToken returns the refusal of the token of req by resp: 401, or 403
// with ModelArts.0203 or ModelArts.2784 (invalid token); else nil. Other
// refusals (an AK/SK code) a new token does not mend.
func invalidToken(req *http.Request, resp *http.Response, maxBody int64, secrets []string) *APIError {
	e, _ := verdict(operationFrom(req.Context()), resp, maxBody, secrets)
	if e != nil && (e.StatusCode == http.StatusUnauthorized || e.ErrorCode == "ModelArts.0203" || e.ErrorCode == "ModelArts.2784") {
		return e
	}
	return nil
}

func (rt *tokenRoundTripper) send(req *http.Request, tok *token, body io.ReadCloser) (*http.Response, error) {
	clone := req.Clone(req.Context())
	clone.Body = body
	clone.Header.Set(headerAuthToken, tok.value)
	return rt.next.RoundTrip(clone)
}

// replayable reports whether req can be sent a second time.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func replayBody(req *http.Request) (io.ReadCloser, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, nil
	}
	return req.GetBody()
}

// discard reads a little of body, so the connection can be reused, and closes it.
func discard(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 4<<10)
	_ = body.Close()
}

// gate is a mutex whose waiters give up when their context ends.
type gate chan struct{}

func newGate() gate { return make(gate, 1) }

func (g gate) tryLock() bool {
	select {
	case g <- struct{}{}:
		return true
	default:
		return false
	}
}

func (g gate) lock(ctx context.Context) error {
	select {
	case g <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g gate) unlock() { <-g }
