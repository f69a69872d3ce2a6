// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"fmt"

	"golang.org/x/time/rate"
)

// newLimiter returns the client-side rate limiter for limit requests per
// second with the given burst (at least 1), or nil for no limit.
func newLimiter(limit float64, burst int) *rate.Limiter {
	if limit <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(limit), max(burst, 1))
}

// waitForTurn blocks until the rate limiter lets one more ModelArts request
// go. It fails at once, without waiting, when the turn would come after the
// deadline of ctx: the error then wraps context.DeadlineExceeded.
func (c *Client) waitForTurn(ctx context.Context, op string) error {
	if c.limiter == nil {
		return nil
	}
	err := c.limiter.Wait(ctx)
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = ctxErr
	} else {
		err = fmt.Errorf("the client-side rate limit would delay the request past the deadline: %w", context.DeadlineExceeded)
	}
	return &APIError{Operation: op, Class: ErrUnreachable, Cause: err}
}
