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

// Shared is what every client of the process shares, across configuration
// reloads: the guards of the credentials (see refusalGuard), IAM tokens and
// temporary keys. Make one per process.
//
// Its maps are keyed by the identity of a credential without its secret, and
// hold one entry per identity: the entry keeps a SHA-256 hash of the secret,
// and is replaced when the secret changes (a rotated key, a new password).
// A changed secret is a new credential: tried at once, and the old one is
// forgotten.
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

// keyID identifies a configured access key, or the temporary keys of a
// metadata endpoint (a new access key at every refresh).
type keyID struct {
	accessKey string // "" for temporary keys
	metadata  string // the endpoint of temporary keys
}

// passwordID identifies an IAM user at one IAM token URL.
type passwordID struct {
	iamURL, domain, user string
}

// tokenID identifies the tokens of one user and one scope: "id:" and a
// project id, or "name:" and a region.
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

// sharedEntry returns the value of key in *m, made with create when missing
// or when stale (nil: never) reports it out of date.
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

// passwordGuard returns the guard of the password of hash secret of id.
func (s *Shared) passwordGuard(id passwordID, secret [sha256.Size]byte) *refusalGuard {
	return guardEntry(s, &s.passwords, id, secret, passwordRefusal)
}

// iamBackoff returns the memory of IAM's failures for the user of id.
func (s *Shared) iamBackoff(id passwordID) *iamBackoff {
	return sharedEntry(s, &s.iam, id, nil, func() *iamBackoff { return &iamBackoff{} })
}

// refusalGuard keeps the cloud from locking a credential. The cloud locks an
// AK/SK pair after keyLockoutFailures consecutive bad signatures, and an IAM
// user after repeated failed logins; every scrape of every project would
// spend one attempt. So the guard of a credential, kept in Shared for every
// client of the process and across reloads:
//   - remembers its last refusal (ErrUnauthorized) and, for refusalPause
//     after it, answers that refusal instead of letting anything be sent;
//   - while it has never been accepted (at start, after a pause), lets one
//     call at a time go (firstContact): however many projects start at once
//     with a wrong key, the cloud sees one bad signature.
//
// Its methods accept the nil guard, which lets everything through.
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
	// firstContactWait bounds how long a call waits for the one before it
	// on first contact, so that a slow answer holds the others for a moment only.
	firstContactWait = 2 * time.Second
)

// errPaused is in the chain of the errors of calls a guard kept from being sent.
var errPaused = errors.New("not sent")

// refusalText words the error of a call not sent because of a refusal:
// what was refused and by whom, what is not done during the pause, why
// waiting matters, and what the operator should do.
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

// firstContact waits, while the credential has never been accepted, for the
// gate, at most firstContactWait. It reports whether the call holds the
// gate; contacted releases it.
func (g *refusalGuard) firstContact(ctx context.Context) bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	known := g.known
	g.mu.Unlock()
	if known {
		return false
	}
	t := time.NewTimer(firstContactWait)
	defer t.Stop()
	return lock(ctx, g.gate, t.C)
}

// contacted ends a call firstContact let go.
func (g *refusalGuard) contacted(held bool) {
	if held {
		<-g.gate
	}
}

// accepted records that the credential was accepted.
func (g *refusalGuard) accepted() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.known = true
}

// check returns, for a call of operation op at now, the remembered refusal
// while the pause lasts, else nil.
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

// iamBackoff remembers IAM's last failure (5xx, 429) for renewRetryInterval,
// for every token source of one user: a failing IAM is asked once per
// interval, whatever the scopes.
type iamBackoff struct {
	mu       sync.Mutex
	failedAt time.Time
	failure  *APIError // nil: none
}

// check returns, for a call at now, the remembered failure while the
// interval lasts, else nil. Its error is in errPaused's chain.
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
