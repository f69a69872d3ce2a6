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
	iam       map[passwordID]*iamBackoff   // IAM's failures, whatever the scope and password
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
		func() *refusalGuard { return &refusalGuard{text: text, secret: secret, gate: make(chan struct{}, 1)} })
}

// keyGuard returns the guard of the access keys k. A nil Shared has none.
func (s *Shared) keyGuard(k accessKeys) *refusalGuard {
	if s == nil {
		return nil
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
// cloud sees one bad signature however many projects start at once. The nil guard lets
// everything through.
type refusalGuard struct {
	text   refusalText
	secret [sha256.Size]byte // hash of the secret guarded
	gate   chan struct{}     // held by the call that makes first contact

	mu        sync.Mutex
	refusedAt time.Time
	refusal   *APIError // nil: no refusal yet
	known     bool      // the credential was accepted once
}

const (
	refusalPause       = 5 * time.Minute
	keyLockoutFailures = 5
	firstContactWait   = 2 * time.Second // a slow first answer holds the others for a moment only
)

// errPaused is in the chain of the errors of calls a guard kept from being sent.
var errPaused = errors.New("not sent")

// refusalText words the error of a call a refusal kept from being sent.
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
)

// firstContact waits, while the credential has never been accepted, at most
// firstContactWait for the gate, and returns what releases it.
func (g *refusalGuard) firstContact(ctx context.Context) (release func()) {
	if g == nil {
		return func() {}
	}
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
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	until := g.refusedAt.Add(refusalPause)
	if g.refusal == nil || !now.Before(until) {
		return nil
	}
	return &APIError{
		Operation: op,
		Class:     ErrUnauthorized,
		Cause: fmt.Errorf("%w: %s at %s; the exporter waits %s before %s again, until %s (%s); %s: %w",
			errPaused, g.text.subject, g.refusedAt.UTC().Format(time.RFC3339), refusalPause, g.text.action,
			until.UTC().Format(time.RFC3339), g.text.why, g.text.fix, g.refusal),
	}
}

// refused remembers refusal, received at now.
func (g *refusalGuard) refused(now time.Time, refusal *APIError) {
	if g == nil || refusal == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refusedAt, g.refusal, g.known = now, refusal, false // after the pause, first contact again
}

// iamBackoff remembers IAM's last failure (5xx, 429) for renewRetryInterval for
// every token source of one user: a failing IAM is asked once per interval.
type iamBackoff struct {
	mu       sync.Mutex
	failedAt time.Time
	failure  *APIError // nil: none
}

// check returns the remembered failure while the interval lasts, else nil.
func (b *iamBackoff) check(now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failure == nil || !now.Before(b.failedAt.Add(renewRetryInterval)) {
		return nil
	}
	return &APIError{
		Operation: OpCreateToken,
		Class:     b.failure.Class,
		Cause: fmt.Errorf("%w: IAM failed at %s, the exporter asks again after %s: %w",
			errPaused, b.failedAt.UTC().Format(time.RFC3339), renewRetryInterval, b.failure),
	}
}

// failed remembers err, received at now, when it says IAM is failing.
func (b *iamBackoff) failed(now time.Time, err error) {
	e := AsAPIError(err)
	if e == nil || !errors.Is(e, ErrServer) && !errors.Is(e, ErrThrottled) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failedAt, b.failure = now, e
}
