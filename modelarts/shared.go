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

// Shared is what every client of the process shares, across configuration
// reloads: one guard per credential, so that however many projects use a key
// or a password, and however often the configuration is reloaded, the cloud
// sees at most one refused attempt per pause. Make one per process.
//
// Its maps are keyed by the identity of a credential, with SHA-256 hashes in
// place of secrets, and grow with the distinct credentials configured (a
// rotated secret is a new credential).
type Shared struct {
	mu        sync.Mutex
	keys      map[keyID]*refusalGuard      // refusals of an access key with its secret
	passwords map[passwordID]*refusalGuard // IAM's refusals of a password, whatever the scope
	tokens    map[tokenID]*tokenSource     // IAM tokens, cached across reloads
	metadata  map[string]*metadataProvider // temporary keys, by metadata endpoint
}

// NewShared returns an empty Shared.
func NewShared() *Shared { return &Shared{} }

// keyID identifies an access key with its secret key.
type keyID struct {
	accessKey string
	secretKey [sha256.Size]byte
}

// passwordID identifies an IAM user's password at one IAM token URL.
type passwordID struct {
	iamURL, domain, user string
	password             [sha256.Size]byte
}

// tokenID identifies the tokens of one password and one scope: "id:" and a
// project id, or "name:" and a region.
type tokenID struct {
	passwordID
	scope string
}

// sharedEntry returns the value of key in *m, made with create when missing.
func sharedEntry[K comparable, V any](s *Shared, m *map[K]V, key K, create func() V) V {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *m == nil {
		*m = make(map[K]V)
	}
	v, ok := (*m)[key]
	if !ok {
		v = create()
		(*m)[key] = v
	}
	return v
}

// keyGuard returns the guard of the access key k. A nil Shared has none.
func (s *Shared) keyGuard(k accessKeys) *refusalGuard {
	if s == nil {
		return nil
	}
	id := keyID{accessKey: k.accessKey, secretKey: sha256.Sum256([]byte(k.secretKey))}
	return sharedEntry(s, &s.keys, id, func() *refusalGuard { return &refusalGuard{text: keyRefusal, gate: make(chan struct{}, 1)} })
}

// passwordGuard returns the guard of the password of id.
func (s *Shared) passwordGuard(id passwordID) *refusalGuard {
	return sharedEntry(s, &s.passwords, id, func() *refusalGuard { return &refusalGuard{text: passwordRefusal, gate: make(chan struct{}, 1)} })
}

// refusalPause is how long a refused credential is not tried again: the cloud
// locks an AK/SK pair after keyLockoutFailures consecutive bad signatures and
// an IAM user after repeated failed logins, and every scrape of every project
// would otherwise spend one.
const refusalPause = 5 * time.Minute

// keyLockoutFailures is how many consecutive bad signatures lock a key pair.
const keyLockoutFailures = 5

// errPaused is in the chain of the errors of calls a refusalGuard kept from
// being sent.
var errPaused = errors.New("not sent")

// refusalText words the error of a call not sent because of a refusal.
type refusalText struct {
	subject string // what was refused, and by whom
	action  string // what is not done during the pause
	why     string // why waiting matters
	fix     string // what the operator should do
}

var (
	keyRefusal = refusalText{
		subject: "this access key was refused",
		action:  "signing with it",
		why:     fmt.Sprintf("the cloud locks a key after %d bad signatures", keyLockoutFailures),
		fix:     "fix the key and reload; a changed secret key is tried at once",
	}
	passwordRefusal = refusalText{
		subject: "IAM refused this password",
		action:  "logging in with it",
		why:     "IAM locks a user after repeated failed logins",
		fix:     "fix the password and reload; a changed password is tried at once",
	}
	freshTokenRefusal = refusalText{
		subject: "ModelArts refused a token that IAM had just issued in place of a refused one",
		action:  "sending or renewing the token",
		why:     "a new token would be refused too",
		fix:     "check that the user has ModelArts permissions and that the token is scoped to the right project",
	}
)

// refusalGuard remembers the last refusal (ErrUnauthorized) of one credential
// and, for refusalPause after it, answers it instead of letting anything be
// sent with that credential. Its methods accept the nil guard, which lets
// everything through.
type refusalGuard struct {
	text refusalText
	gate chan struct{} // held by the call that makes first contact

	mu        sync.Mutex
	refusedAt time.Time
	refusal   *APIError // nil: no refusal yet
	known     bool      // the credential was accepted once
}

// firstContactWait bounds how long a call waits for the one before it while
// the credential has never been accepted.
const firstContactWait = 2 * time.Second

// firstContact lets one call at a time go with a credential that has never
// been accepted, in any client of the process: however many projects start
// at once with a wrong key, the cloud sees one bad signature. A call waits
// for the one before it at most firstContactWait, so a slow answer holds the
// others for a moment only. It reports whether the call holds the gate;
// contacted releases it.
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
	select {
	case g.gate <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
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
	if g.refusal == nil {
		return nil
	}
	until := g.refusedAt.Add(refusalPause)
	if !now.Before(until) {
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
