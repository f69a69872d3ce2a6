// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Shared is what every client of the process shares across reloads: the guards of the credentials
// (see refusalGuard), IAM tokens and temporary keys. Make one per process. An entry is keyed by a
// credential without its secret and replaced when the secret changes: a new one is tried at once.
type Shared struct {
	mu sync.Mutex
	// By key type: accessKeys without secrets, the *refusalGuard of an access key; passwordID, of a
	// password (whatever the scope); iamID, of IAM's failures (whatever the scope and password);
	// tokenID, the *tokenSource of IAM tokens; string, the *metadataProvider of a metadata endpoint.
	entries map[any]any
}

// NewShared returns an empty Shared, as is the zero Shared.
func NewShared() *Shared { return &Shared{} }

// passwordID identifies an IAM user at one IAM token URL; iamID, that IAM for the user.
type passwordID struct{ iamURL, domain, user string }
type iamID passwordID

// tokenID identifies the tokens of one user and one scope ("id:" project, or "name:" region).
type tokenID struct {
	passwordID
	scope string
}

// secretHash is the SHA-256 of parts, each quoted: two lists of parts never give the same text.
func secretHash(parts ...string) [sha256.Size]byte {
	return sha256.Sum256(fmt.Appendf(nil, "%q", parts))
}

// sharedEntry returns the entry of key, made with create when missing or stale.
func sharedEntry[V any](s *Shared, key any, stale func(V) bool, create func() V) V {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		s.entries = make(map[any]any)
	}
	v, ok := s.entries[key].(V)
	if !ok || stale != nil && stale(v) {
		v = create()
		s.entries[key] = v
	}
	return v
}

// guardEntry returns the guard of id for the secret of hash secret.
func guardEntry(s *Shared, id any, secret [sha256.Size]byte, text refusalText) *refusalGuard {
	return sharedEntry(s, id,
		func(g *refusalGuard) bool { return g.secret != secret },
		func() *refusalGuard { g := newGuard(refusalPause, text); g.secret = secret; return g })
}

// keyGuard returns the guard of the access keys k: of a configured access key, or of
// the temporary keys of a metadata endpoint, whatever their access key.
func (s *Shared) keyGuard(k accessKeys) *refusalGuard {
	id := accessKeys{accessKey: k.accessKey}
	if k.metadata != "" {
		id = accessKeys{metadata: k.metadata}
	}
	return guardEntry(s, id, secretHash(k.accessKey, k.secretKey, k.securityToken), keyRefusal)
}

// refusalGuard keeps the cloud from locking a credential: it locks an AK/SK pair after
// keyLockoutFailures consecutive bad signatures, and an IAM user after repeated failed
// logins, and every scrape of every project would spend one attempt. So the guard of a
// credential, shared by every client of the process across reloads, answers its last
// refusal for refusalPause instead of sending anything, and while the credential has never
// been accepted (at start, after a pause) lets one call at a time go (firstContact): the
// cloud sees one bad signature however many projects start at once. With the pause
// renewRetryInterval, a guard also asks a failing IAM once per interval (iamFailure).
type refusalGuard struct {
	pause  time.Duration
	text   refusalText
	secret [sha256.Size]byte // hash of the secret guarded
	gate   chan struct{}     // held by the call that makes first contact

	mu        sync.Mutex
	refusedAt time.Time
	refusal   *APIError // nil: no refusal yet
	known     bool      // the credential was accepted once
}

func newGuard(pause time.Duration, text refusalText) *refusalGuard {
	return &refusalGuard{pause: pause, text: text, gate: make(chan struct{}, 1)}
}

const (
	refusalPause       = 5 * time.Minute
	keyLockoutFailures = 5
	firstContactWait   = 2 * time.Second // a slow first answer holds the others for a moment only
)

// errPaused is in the chain of the errors of calls a guard kept from being sent.
var errPaused = errors.New("not sent")

// refusalText words the error of a call a guard kept from being sent after a refusal:
// "{subject} at {time}; the exporter waits {pause} before {action} again, until {time} ({why}); {fix}".
type refusalText struct{ subject, action, why, fix string }

var (
	keyRefusal = refusalText{"this access key was refused", "signing with it",
		fmt.Sprintf("the cloud locks a key after %d bad signatures", keyLockoutFailures),
		"fix the key and reload; a changed secret key is tried at once"}
	passwordRefusal = refusalText{"IAM refused this password", "logging in with it",
		"IAM locks a user after repeated failed logins",
		"fix the password and reload; a changed password is tried at once"}
	freshTokenRefusal = refusalText{"ModelArts refused a token that IAM had just issued in place of a refused one",
		"sending or renewing the token", "a new token would be refused too",
		"check that the user has ModelArts permissions and that the token is scoped to the right project"}
	iamFailure = refusalText{"IAM failed", "asking it", "a failing IAM gets one request per pause, not one per scrape",
		"IAM's answer follows"}
)

// firstContact waits, while the credential has never been accepted, at most
// firstContactWait for the gate, and returns what releases it.
func (g *refusalGuard) firstContact(ctx context.Context) (release func()) {
	g.mu.Lock()
	known := g.known
	g.mu.Unlock()
	if known {
		return func() {}
	}
	if !lock(ctx, g.gate, time.After(firstContactWait)) {
		return func() {}
	}
	return func() { <-g.gate }
}

// accepted records that the credential was accepted.
func (g *refusalGuard) accepted() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.known = true
}

// check returns the remembered refusal while the pause lasts, else nil.
func (g *refusalGuard) check(op string, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	until := g.refusedAt.Add(g.pause)
	if g.refusal == nil || !now.Before(until) {
		return nil
	}
	t := g.text
	cause := fmt.Errorf("%w: %s at %s; the exporter waits %s before %s again, until %s (%s); %s: %w", errPaused, t.subject,
		g.refusedAt.UTC().Format(time.RFC3339), g.pause, t.action, until.UTC().Format(time.RFC3339), t.why, t.fix, g.refusal)
	return &APIError{Operation: op, Class: g.refusal.Class, Cause: cause}
}

// refused remembers refusal, received at now.
func (g *refusalGuard) refused(now time.Time, refusal *APIError) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refusedAt, g.refusal, g.known = now, refusal, false // after the pause, first contact again
}
