// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"errors"
	"sync"
	"time"
)

// renewRetryInterval: after a failed renewal, callers get the same error (or
// keep using a still valid value) for this long instead of asking again:
// concurrent calls, of every client sharing the value, must not become a
// stream of requests to a failing IAM or metadata service.
const renewRetryInterval = 30 * time.Second

// expiring is a cached credential that is renewed before it expires: an IAM
// token, temporary access keys. Its methods accept the nil pointer.
type expiring interface {
	comparable
	// due reports whether a renewal should be attempted at now.
	due(now time.Time) bool
	// usable reports whether it may still be sent at now.
	usable(now time.Time) bool
}

// renewing caches one expiring credential and renews it when due. One caller
// at a time renews; the others keep using the current value while it is
// usable, else wait for the outcome. A failure is remembered for
// renewRetryInterval.
type renewing[T expiring] struct {
	op   string // the operation named when waiting for the renewal fails
	now  func() time.Time
	gate chan struct{} // held by the caller renewing

	mu         sync.Mutex
	cur        T
	lastErr    error     // the last failure, returned until retryAfter
	retryAfter time.Time // no new attempt before this
}

func newRenewing[T expiring](op string, now func() time.Time) renewing[T] {
	return renewing[T]{op: op, now: now, gate: make(chan struct{}, 1)}
}

// get returns a usable value, calling fetch when the cached one is missing,
// invalidated or due.
func (r *renewing[T]) get(ctx context.Context, fetch func(context.Context) (T, error)) (T, error) {
	if v, ok, err := r.cached(); ok {
		return v, err
	}
	select {
	case r.gate <- struct{}{}:
	default:
		if v := r.current(); v.usable(r.now()) {
			return v, nil
		}
		if !lock(ctx, r.gate, nil) {
			var zero T
			return zero, &APIError{Operation: r.op, Class: ErrUnreachable, Cause: ctx.Err()}
		}
	}
	defer func() { <-r.gate }()
	if v, ok, err := r.cached(); ok { // renewed, or failed, while we waited
		return v, err
	}
	v, err := fetch(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if err == nil {
		r.cur, r.lastErr, r.retryAfter = v, nil, time.Time{}
		return v, nil
	}
	// Neither the caller's own deadline nor a paused credential (which says
	// itself when it may be tried again) says anything of the service.
	if ctx.Err() == nil && !errors.Is(err, errPaused) {
		r.lastErr, r.retryAfter = err, now.Add(renewRetryInterval)
	}
	if r.cur.usable(now) {
		return r.cur, nil
	}
	var zero T
	return zero, err
}

// cached returns what get should answer without fetching, if anything: a
// value not yet due, a usable value after a recent failure, or the failure.
func (r *renewing[T]) cached() (T, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	var zero T
	if r.cur != zero && !r.cur.due(now) {
		return r.cur, true, nil
	}
	if now.Before(r.retryAfter) {
		if r.cur.usable(now) {
			return r.cur, true, nil
		}
		return zero, true, r.lastErr
	}
	return zero, false, nil
}

// current returns the cached value, usable or not.
func (r *renewing[T]) current() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// invalidate drops v (after the API refused it) so that the next get
// fetches. A value already replaced is left alone, so that concurrent
// refusals of one value cause one renewal.
func (r *renewing[T]) invalidate(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == v {
		var zero T
		r.cur = zero
	}
}

// lock takes gate, a mutex of capacity one, and reports whether it did
// before ctx ended or timeout (nil: never) fired.
func lock(ctx context.Context, gate chan struct{}, timeout <-chan time.Time) bool {
	select {
	case gate <- struct{}{}:
		return true
	case <-timeout:
	case <-ctx.Done():
	}
	return false
}
