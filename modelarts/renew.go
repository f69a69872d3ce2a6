// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"errors"
	"sync"
	"time"
)

// renewRetryInterval is how long a failed renewal is answered from memory: concurrent calls
// must not become a stream of requests to a failing IAM or metadata service.
const renewRetryInterval = 30 * time.Second

// expiring is a cached credential, renewed when due and sent while usable; nil is neither.
type expiring interface {
	comparable
	due(now time.Time) bool
	usable(now time.Time) bool
}

// renewing caches one expiring credential. One caller at a time renews; the
// others use the current value while it is usable, else wait for the outcome.
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

// get returns a usable value, calling fetch when the cached one is missing, invalidated or due.
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
	// Neither the caller's deadline nor a paused credential says anything of the service.
	if ctx.Err() == nil && !errors.Is(err, errPaused) {
		r.lastErr, r.retryAfter = err, now.Add(renewRetryInterval)
	}
	if r.cur.usable(now) {
		return r.cur, nil
	}
	var zero T
	return zero, err
}

// cached returns what get answers without fetching, if anything.
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

// invalidate drops v, unless already replaced, so that the next get fetches:
// concurrent refusals of one value cause one renewal.
func (r *renewing[T]) invalidate(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == v {
		var zero T
		r.cur = zero
	}
}

// lock reports whether it took gate before ctx ended or timeout (nil: never) fired.
func lock(ctx context.Context, gate chan struct{}, timeout <-chan time.Time) bool {
	select {
	case gate <- struct{}{}:
		return true
	case <-timeout:
	case <-ctx.Done():
	}
	return false
}
