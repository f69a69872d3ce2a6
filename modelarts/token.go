// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

const (
	headerSubjectToken = "X-Subject-Token"
	headerAuthToken    = "X-Auth-Token"

	// A token is renewed when the smaller of tokenRenewMargin and a tenth of
	// its lifetime remains: a 24 h token an hour before it expires.
	tokenRenewMargin  = time.Hour
	tokenRenewDivisor = 10
	tokenExpirySkew   = 30 * time.Second // a token or key is not sent when less remains
)

// token is a cached IAM token. Times are on the local clock.
type token struct {
	value     string
	projectID string
	expiresAt time.Time
	renewAt   time.Time
	// replacement: made in place of a refused token and not accepted since.
	// Once accepted, its refusal is an ordinary one (revoked, expired on the
	// service's side): it is renewed. So a 401 that only some requests get
	// costs one new token per scrape, not a pause of every call.
	replacement atomic.Bool
}

func (t *token) due(now time.Time) bool { return t == nil || !now.Before(t.renewAt) }

func (t *token) usable(now time.Time) bool {
	return t != nil && now.Before(t.expiresAt.Add(-tokenExpirySkew))
}

// tokenSource obtains and renews the IAM tokens of one password and scope for every client
// of the process with these credentials, across reloads.
type tokenSource struct {
	url           string        // {iam}/v3/auth/tokens
	body          []byte        // the request body; holds the password, never printed
	password      string        // only to scrub it from IAM's messages
	passwordGuard *refusalGuard // IAM's refusals of the password, shared by every scope
	iam           *refusalGuard // IAM's failures, shared by every scope
	fresh         *refusalGuard // the API's refusal of a token that replaced a refused one
	tokens        renewing[*token]
	replacing     atomic.Bool  // the next token made replaces a refused one
	dropped       atomic.Value // the value of the last token dropped after a refusal
}

// Token returns a valid token, asking IAM through iam for one when due.
func (ts *tokenSource) Token(ctx context.Context, iam httpCaller) (*token, error) {
	return ts.tokens.get(ctx, func(ctx context.Context) (*token, error) { return ts.create(ctx, iam) })
}

// create performs POST /v3/auth/tokens, unless a guard (password, replacement, IAM) says not yet.
func (ts *tokenSource) create(ctx context.Context, iam httpCaller) (*token, error) {
	defer ts.passwordGuard.firstContact(ctx)()
	start := ts.tokens.now()
	if err := cmp.Or(ts.passwordGuard.check(OpCreateToken, start), ts.fresh.check(OpCreateToken, start),
		ts.iam.check(OpCreateToken, start)); err != nil {
		return nil, err
	}
	var body struct {
		Token struct {
			ExpiresAt string `json:"expires_at"`
			IssuedAt  string `json:"issued_at"`
			Project   struct {
				ID string `json:"id"`
			} `json:"project"`
		} `json:"token"`
	}
	resp, err := iam.send(ctx, request{
		op: OpCreateToken, method: http.MethodPost, url: ts.url, body: ts.body,
		ok: []int{http.StatusCreated, http.StatusOK}, secrets: func() []string { return []string{ts.password} },
	}, &body)
	switch {
	case errors.Is(err, ErrUnauthorized):
		ts.passwordGuard.refused(ts.tokens.now(), AsAPIError(err))
	case errors.Is(err, ErrServer) || errors.Is(err, ErrThrottled):
		ts.iam.refused(ts.tokens.now(), AsAPIError(err))
	}
	if err != nil {
		return nil, err
	}
	ts.passwordGuard.accepted()
	value := resp.Header.Get(headerSubjectToken)
	if value == "" {
		return nil, malformed(OpCreateToken, resp, fmt.Errorf("no %s header in the answer", headerSubjectToken))
	}
	expires, lifetime, err := expiry("token.expires_at", body.Token.ExpiresAt, body.Token.IssuedAt, start)
	if err != nil {
		return nil, malformed(OpCreateToken, resp, err)
	}
	tok := &token{
		value:     value,
		projectID: body.Token.Project.ID,
		expiresAt: expires,
		renewAt:   expires.Add(-min(tokenRenewMargin, lifetime/tokenRenewDivisor)),
	}
	tok.replacement.Store(ts.replacing.Swap(false))
	return tok, nil
}

// expiry parses expiresAt of an answer to a request sent at start and returns it with the
// lifetime left; with issuedAt, counted from start on the local clock, immune to clock skew.
func expiry(field, expiresAt, issuedAt string, start time.Time) (time.Time, time.Duration, error) {
	expires, err := time.Parse(time.RFC3339Nano, expiresAt)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("%s %q is not an RFC 3339 time", field, cleanText(expiresAt, 64))
	}
	if issued, err := time.Parse(time.RFC3339Nano, issuedAt); err == nil && expires.After(issued) {
		expires = start.Add(expires.Sub(issued))
	}
	lifetime := expires.Sub(start)
	if lifetime <= 0 {
		return time.Time{}, 0, fmt.Errorf("%s %s is not in the future", field, expiresAt)
	}
	return expires, lifetime, nil
}

// passwordAuth is the password authentication of one client, and the round tripper that sends it.
type passwordAuth struct {
	shared            *Shared
	id                passwordID
	projectID, region string // the scope
	password          *secret
	iam               httpCaller
	now               func() time.Time
	next              http.RoundTripper
}

// source returns the token source of the current password.
func (a *passwordAuth) source(op string) (*tokenSource, error) {
	pass, err := a.password.get(op)
	if err != nil {
		return nil, err
	}
	return a.sourceFor(pass), nil
}

// sourceFor returns the token source of pass and the client's scope.
func (a *passwordAuth) sourceFor(pass string) *tokenSource {
	key, value := "name", a.region
	if a.projectID != "" {
		key, value = "id", a.projectID
	}
	id := tokenID{passwordID: a.id, scope: key + ":" + value}
	guard := guardEntry(a.shared, a.id, secretHash(pass), passwordRefusal)
	iam := sharedEntry(a.shared, iamID(a.id), nil, func() *refusalGuard { return newGuard(renewRetryInterval, iamFailure) })
	return sharedEntry(a.shared, id,
		func(ts *tokenSource) bool { return ts.passwordGuard != guard }, // another password, or a guard replaced since
		func() *tokenSource {
			user := map[string]any{"name": a.id.user, "password": pass, "domain": map[string]string{"name": a.id.domain}}
			body, _ := json.Marshal(map[string]any{"auth": map[string]any{ // strings only: cannot fail
				"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": user}},
				"scope":    map[string]any{"project": map[string]string{key: value}},
			}})
			return &tokenSource{url: a.id.iamURL, body: body, password: pass, passwordGuard: guard, iam: iam,
				fresh: newGuard(refusalPause, freshTokenRefusal), tokens: newRenewing[*token](OpCreateToken, a.now)}
		})
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

// RoundTrip sends req with X-Auth-Token. When the API refuses the token, it gets a new one
// and retries once; a refused replacement pauses the tokens (freshTokenRefusal).
func (a *passwordAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, op := req.Context(), operationFrom(req.Context())
	ts, err := a.source(op)
	if err == nil {
		err = ts.fresh.check(op, a.now())
	}
	for retry := false; ; retry = true {
		var tok *token
		var resp *http.Response
		if err == nil {
			tok, err = ts.Token(ctx, a.iam)
		}
		clone := req.Clone(ctx)
		if err == nil && retry && req.GetBody != nil {
			clone.Body, err = req.GetBody()
		}
		if err != nil {
			if !retry {
				closeRequestBody(req)
			}
			return nil, err
		}
		clone.Header.Set(headerAuthToken, tok.value)
		final := true
		if resp, err = a.next.RoundTrip(clone); err == nil {
			final, resp, err = a.settle(ts, tok, op, resp)
		}
		if final || retry || req.GetBody == nil && req.Body != nil && req.Body != http.NoBody {
			return resp, err // final, or cannot be sent again
		}
		if err = ts.fresh.check(op, a.now()); err != nil {
			return nil, err // a replacement was refused meanwhile: no new token
		}
		ts.replacing.Store(true)
		ts.tokens.invalidate(tok)
	}
}

// settle turns resp, the answer to a call of op sent with tok, into its outcome, final unless
// it refuses the token and tok is no replacement; a refused replacement ts remembers and drops.
func (a *passwordAuth) settle(ts *tokenSource, tok *token, op string, resp *http.Response) (final bool, _ *http.Response, _ error) {
	refused, accepted := authAnswer(op, resp, a.iam.maxBody, append(a.secrets(), tok.value)) // tok too, if replaced since
	if accepted {
		tok.replacement.Store(false)
	}
	if refused == nil {
		return true, resp, nil
	}
	// Other refusals (an AK/SK code) a new token does not mend.
	if refused.Class != ErrUnauthorized || refused.StatusCode != http.StatusUnauthorized && !isTokenRefusal(refused.ErrorCode) {
		return true, nil, refused
	}
	if !tok.replacement.Load() {
		return false, nil, refused
	}
	ts.fresh.refused(a.now(), refused)
	ts.dropped.Store(tok.value)
	ts.tokens.invalidate(tok)
	return true, nil, refused
}
