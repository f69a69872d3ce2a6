// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Shared is what every client of the process shares across reloads: the guards of the credentials
// (see refusalGuard), IAM tokens and temporary keys. Make one per process. An entry is keyed by a
// credential without its secret and replaced when the secret changes: a new one is tried at once.
type Shared struct {
	mu        sync.Mutex
	keys      map[keyID]*refusalGuard      // refusals of an access key
	passwords map[passwordID]*refusalGuard // IAM's refusals of a password, whatever the scope
	iam       map[passwordID]*refusalGuard // IAM's failures, whatever the scope and password
	tokens    map[tokenID]*tokenSource     // IAM tokens, cached across reloads
	metadata  map[string]*metadataProvider // temporary keys, by metadata endpoint
}

// NewShared returns an empty Shared.
func NewShared() *Shared { return &Shared{} }

// keyID identifies a configured access key, or the temporary keys of a metadata endpoint.
type keyID struct{ accessKey, metadata string }

// passwordID identifies an IAM user at one IAM token URL.
type passwordID struct{ iamURL, domain, user string }

// tokenID identifies the tokens of one user and one scope ("id:" project, or "name:" region).
type tokenID struct {
	passwordID
	scope string
}

// secretHash is the SHA-256 of parts, each length-prefixed.
func secretHash(parts ...string) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(p))))
		h.Write([]byte(p))
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// sharedEntry returns the value of key in *m, made with create when missing or stale.
func sharedEntry[K comparable, V any](s *Shared, m *map[K]V, key K, stale func(V) bool, create func() V) V {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *m == nil {
		*m = make(map[K]V)
	}
	v, ok := (*m)[key]
	if !ok || stale != nil && stale(v) {
		v = create()
		(*m)[key] = v
	}
	return v
}

// guardEntry returns the guard of id in *m for the secret of hash secret.
func guardEntry[K comparable](s *Shared, m *map[K]*refusalGuard, id K, secret [sha256.Size]byte, text refusalText) *refusalGuard {
	return sharedEntry(s, m, id,
		func(g *refusalGuard) bool { return g.secret != secret },
		func() *refusalGuard { g := newGuard(refusalPause, text); g.secret = secret; return g })
}

// keyGuard returns the guard of the access keys k; a nil Shared (tests) gives a new one.
func (s *Shared) keyGuard(k accessKeys) *refusalGuard {
	if s == nil {
		s = NewShared()
	}
	id := keyID{accessKey: k.accessKey}
	if k.metadata != "" {
		id = keyID{metadata: k.metadata}
	}
	return guardEntry(s, &s.keys, id, secretHash(k.accessKey, k.secretKey, k.securityToken), keyRefusal)
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

// refusalText words the error of a call a guard kept from being sent after a refusal at at.
type refusalText func(at, until time.Time, pause time.Duration) string

// lockout words the refusal of a credential that the cloud locks after repeated failures.
func lockout(subject, action, why, fix string) refusalText {
	return func(at, until time.Time, pause time.Duration) string {
		return fmt.Sprintf("%s at %s; the exporter waits %s before %s again, until %s (%s); %s",
			subject, at.UTC().Format(time.RFC3339), pause, action, until.UTC().Format(time.RFC3339), why, fix)
	}
}

var (
	keyRefusal = lockout("this access key was refused", "signing with it",
		fmt.Sprintf("the cloud locks a key after %d bad signatures", keyLockoutFailures),
		"fix the key and reload; a changed secret key is tried at once")
	passwordRefusal = lockout("IAM refused this password", "logging in with it",
		"IAM locks a user after repeated failed logins",
		"fix the password and reload; a changed password is tried at once")
	freshTokenRefusal = lockout("ModelArts refused a token that IAM had just issued in place of a refused one",
		"sending or renewing the token", "a new token would be refused too",
		"check that the user has ModelArts permissions and that the token is scoped to the right project")
	iamFailure refusalText = func(at, _ time.Time, pause time.Duration) string {
		return fmt.Sprintf("IAM failed at %s, the exporter asks again after %s", at.UTC().Format(time.RFC3339), pause)
	}
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
	t := time.NewTimer(firstContactWait)
	defer t.Stop()
	if !lock(ctx, g.gate, t.C) {
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
	return &APIError{Operation: op, Class: g.refusal.Class,
		Cause: fmt.Errorf("%w: %s: %w", errPaused, g.text(g.refusedAt, until, g.pause), g.refusal)}
}

// refused remembers refusal, received at now.
func (g *refusalGuard) refused(now time.Time, refusal *APIError) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refusedAt, g.refusal, g.known = now, refusal, false // after the pause, first contact again
}
