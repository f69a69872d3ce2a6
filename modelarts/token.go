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
	"sync"
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

	// After a failed token request, callers get the same error (or keep using
	// a still valid token) for this long instead of asking IAM again: concurrent
	// API calls must not become a stream of failed password logins, which IAM
	// punishes by locking the user.
	tokenRetryInterval             = 30 * time.Second
	tokenRetryIntervalUnauthorized = 5 * time.Minute
)

// token is a cached IAM token. Times are on the local clock.
type token struct {
	value     string
	projectID string
	expiresAt time.Time
	renewAt   time.Time
}

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

// tokenSource obtains IAM password tokens, caches them and renews them before
// they expire. One caller at a time asks IAM; the others wait for its result
// (or keep using the old token while it is still valid).
type tokenSource struct {
	client    *http.Client // unauthenticated
	url       string       // {iam}/v3/auth/tokens
	body      []byte       // the request body; holds the password, never printed
	password  string       // only to scrub it from IAM's messages
	userAgent string
	maxBody   int64
	now       func() time.Time

	gate gate // held by the caller asking IAM

	mu         sync.Mutex
	tok        *token
	lastErr    error     // the last failure, returned until retryAfter
	retryAfter time.Time // no new token request before this
}

type tokenSourceConfig struct {
	client                *http.Client
	iamEndpoint           string // validated base URL, without trailing slash
	domain, user, pass    string
	projectID, regionName string
	userAgent             string
	maxBody               int64
	now                   func() time.Time
}

func newTokenSource(cfg tokenSourceConfig) (*tokenSource, error) {
	var req tokenRequest
	req.Auth.Identity.Methods = []string{"password"}
	req.Auth.Identity.Password.User.Name = cfg.user
	req.Auth.Identity.Password.User.Password = cfg.pass
	req.Auth.Identity.Password.User.Domain.Name = cfg.domain
	if cfg.projectID != "" {
		req.Auth.Scope.Project.ID = cfg.projectID
	} else {
		req.Auth.Scope.Project.Name = cfg.regionName
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, errors.New("encode token request") // never wrap: err could quote the body
	}
	return &tokenSource{
		client:    cfg.client,
		url:       iamURL(cfg.iamEndpoint, "auth/tokens"),
		body:      body,
		password:  cfg.pass,
		userAgent: cfg.userAgent,
		maxBody:   cfg.maxBody,
		now:       cfg.now,
		gate:      newGate(),
	}, nil
}

// Token returns a valid token, asking IAM for a new one when the cached one
// is missing, invalidated or due for renewal.
func (ts *tokenSource) Token(ctx context.Context) (*token, error) {
	if tok, ok, err := ts.cached(); ok {
		return tok, err
	}
	if !ts.gate.tryLock() {
		// Someone else is asking IAM. An old token that still works is good
		// enough meanwhile; otherwise wait for the answer.
		if tok := ts.current(); tok.usable(ts.now()) {
			return tok, nil
		}
		if err := ts.gate.lock(ctx); err != nil {
			return nil, &APIError{Operation: OpCreateToken, Class: ErrUnreachable, Cause: err}
		}
	}
	defer ts.gate.unlock()
	if tok, ok, err := ts.cached(); ok { // renewed, or failed, while we waited
		return tok, err
	}
	return ts.renew(ctx)
}

// Invalidate drops tok from the cache (after the API refused it) so that the
// next Token call asks IAM. A token that was already replaced is left alone,
// so that concurrent refusals of one token cause one renewal.
func (ts *tokenSource) Invalidate(tok *token) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.tok == tok {
		ts.tok = nil
	}
}

// cached returns what Token should answer without asking IAM, if anything:
// a token not yet due for renewal, an old token still valid after a recent
// failed renewal, or the recent failure itself.
func (ts *tokenSource) cached() (*token, bool, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.now()
	if ts.tok != nil && now.Before(ts.tok.renewAt) {
		return ts.tok, true, nil
	}
	if now.Before(ts.retryAfter) {
		if ts.tok.usable(now) {
			return ts.tok, true, nil
		}
		return nil, true, ts.lastErr
	}
	return nil, false, nil
}

func (ts *tokenSource) current() *token {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.tok
}

// renew asks IAM for a token and caches the outcome. A failure is not cached
// when it is the caller's own deadline or cancellation: the next caller tries
// with its own context.
func (ts *tokenSource) renew(ctx context.Context) (*token, error) {
	tok, err := ts.create(ctx)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.now()
	if err == nil {
		ts.tok, ts.lastErr, ts.retryAfter = tok, nil, time.Time{}
		return tok, nil
	}
	if ctx.Err() == nil {
		ts.lastErr = err
		ts.retryAfter = now.Add(tokenRetryInterval)
		if errors.Is(err, ErrUnauthorized) {
			ts.retryAfter = now.Add(tokenRetryIntervalUnauthorized)
		}
	}
	if ts.tok.usable(now) {
		return ts.tok, nil
	}
	return nil, err
}

// create performs POST /v3/auth/tokens.
func (ts *tokenSource) create(ctx context.Context) (*token, error) {
	start := ts.now()
	var body tokenResponse
	resp, err := send(ctx, ts.client, request{
		op: OpCreateToken, method: http.MethodPost, url: ts.url, body: ts.body, userAgent: ts.userAgent,
		ok: []int{http.StatusCreated, http.StatusOK}, maxBody: ts.maxBody, secrets: ts.secrets,
	}, &body)
	if err != nil {
		return nil, err
	}
	tok, err := newToken(resp.Header.Get(headerSubjectToken), body, start)
	if err != nil {
		return nil, malformed(OpCreateToken, resp, err)
	}
	return tok, nil
}

// secrets are what IAM's answer must not get into an error: the password.
func (ts *tokenSource) secrets() []string { return []string{ts.password} }

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
// refuses the token (401, or 403 invalid token), it drops it, gets a new one
// and retries once.
type tokenRoundTripper struct {
	source *tokenSource
	next   http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (rt *tokenRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := rt.source.Token(req.Context())
	if err != nil {
		closeRequestBody(req)
		return nil, err
	}
	resp, err := rt.send(req, tok, req.Body)
	if err != nil || !replayable(req) || !invalidToken(req, resp, rt.source.maxBody) {
		return resp, err
	}
	// The token was revoked early (password or rights changed) or the clocks
	// disagree: renew once and retry once.
	discard(resp.Body)
	rt.source.Invalidate(tok)
	if tok, err = rt.source.Token(req.Context()); err != nil {
		return nil, err
	}
	body, err := replayBody(req)
	if err != nil {
		return nil, err
	}
	return rt.send(req, tok, body)
}

// invalidToken reports whether resp refuses the token of req: 401, or 403
// with ModelArts.0203 or ModelArts.2784 (invalid token). Other refusals (an
// AK/SK code, a project id that does not match) a new token does not mend.
func invalidToken(req *http.Request, resp *http.Response, maxBody int64) bool {
	e := refusal(operationFrom(req.Context()), resp, maxBody, nil)
	return e != nil && (e.StatusCode == http.StatusUnauthorized || e.ErrorCode == "ModelArts.0203" || e.ErrorCode == "ModelArts.2784")
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
