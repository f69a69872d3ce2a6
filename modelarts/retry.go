// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// RetryPolicy says how a throttled call (HTTP 429) is retried. Only throttling
// is retried: a 401 never is (five bad AK/SK signatures lock the key pair),
// and a 5xx or a timeout is left to the next scrape.
//
// A retry happens only when the caller's context has a deadline and the wait
// plus AttemptTime still fit before it: the backoff never outlives the scrape.
// Without a deadline there is no budget to stay inside, so the 429 is
// returned at once.
type RetryPolicy struct {
	// MaxRetries is how many times one call is retried; 0 disables retries.
	MaxRetries int
	// MinBackoff and MaxBackoff bound the wait before a retry, drawn at random
	// (jitter) between the two so that throttled callers do not retry in step.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTime is kept free after the wait for the retried call itself.
	AttemptTime time.Duration
}

// DefaultRetryPolicy follows the vendor's advice to back off 2-5 s on 429.
var DefaultRetryPolicy = RetryPolicy{
	MaxRetries:  2,
	MinBackoff:  2 * time.Second,
	MaxBackoff:  5 * time.Second,
	AttemptTime: time.Second,
}

// backoff returns how long to wait before the next retry of a call that was
// throttled, and false when there must be no retry: retries are used up, the
// context has no deadline, or not even MinBackoff plus AttemptTime fit before it.
// The random wait is shortened to fit the deadline, but never below MinBackoff.
func (p RetryPolicy) backoff(ctx context.Context, retries int, now time.Time) (time.Duration, bool) {
	if retries >= p.MaxRetries {
		return 0, false
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0, false
	}
	wait := p.MinBackoff
	if spread := p.MaxBackoff - p.MinBackoff; spread > 0 {
		wait += rand.N(spread + 1)
	}
	wait = min(wait, deadline.Sub(now)-p.AttemptTime)
	if wait < p.MinBackoff {
		return 0, false
	}
	return wait, true
}

// sleep waits for d or until ctx ends; it reports whether the full time passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// do performs one API call and decodes a 200 answer into out, which it
// returns for its headers. A throttled call is retried as the client's
// RetryPolicy allows; every attempt waits for the client-side rate limit
// first and is seen by the Observer.
func (c *Client) do(ctx context.Context, call apiCall, out any) (*http.Response, error) {
	for retries := 0; ; retries++ {
		resp, err := c.safeAttempt(ctx, call, out)
		if !errors.Is(err, ErrThrottled) {
			return resp, err
		}
		wait, ok := c.retry.backoff(ctx, retries, time.Now())
		if !ok || !sleep(ctx, wait) {
			return nil, err
		}
	}
}

// safeAttempt is attempt, with a panic while handling an answer turned into
// this call's error: bad input from the cloud must cost one call, never the
// process (the call runs on a scrape's goroutine, where a panic would end it).
func (c *Client) safeAttempt(ctx context.Context, call apiCall, out any) (resp *http.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &APIError{Operation: call.op, Class: ErrMalformedResponse, Cause: fmt.Errorf("internal error while handling the answer: %v", r)}
		}
	}()
	return c.attempt(ctx, call, out)
}
