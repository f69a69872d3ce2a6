// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"sync"
	"time"
)

// fetchContext is the context of a fetch that scrapes share. It keeps the
// values of the context of the scrape that started the fetch but not its
// cancellation, so that this scrape can go away while others still wait. It
// ends when cancel is called (every waiting scrape gave up), or at its
// deadline, which extend pushes later for a scrape that joins with a later
// deadline of its own: the fetch then runs as long as its most patient
// waiter allows.
//
// Deadline reports the current deadline, so that the API client's rate
// limiter and its 429 retries plan with it. Unlike the deadline of the
// standard library's contexts it can move, but only later.
type fetchContext struct {
	context.Context // values only: context.WithoutCancel
	done            chan struct{}
	timer           *time.Timer

	mu       sync.Mutex
	deadline time.Time
	err      error
}

var _ context.Context = (*fetchContext)(nil)

func newFetchContext(parent context.Context, deadline time.Time) *fetchContext {
	c := &fetchContext{Context: context.WithoutCancel(parent), done: make(chan struct{}), deadline: deadline}
	c.timer = time.AfterFunc(time.Until(deadline), c.expire)
	return c
}

// fetchDeadline is when a fetch for a scrape with ctx must end: a little
// before the scrape's deadline (a tenth of the time left, at most
// maxPublishMargin), so that the result, with the images that did arrive,
// reaches the scrape before it gives up. Without a deadline, in
// defaultFetchTimeout.
func fetchDeadline(ctx context.Context) time.Time {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultFetchTimeout)
	}
	return deadline.Add(-min(time.Until(deadline)/10, maxPublishMargin))
}

func (c *fetchContext) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, true
}

func (c *fetchContext) Done() <-chan struct{} { return c.done }

func (c *fetchContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// extend pushes the deadline to d if d is later. It reports false, and
// changes nothing, when c has already ended.
func (c *fetchContext) extend(d time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false
	}
	if d.After(c.deadline) {
		c.deadline = d
		c.timer.Reset(time.Until(d))
	}
	return true
}

// expire, run by the timer, ends c unless extend moved the deadline in the
// meantime (the timer then runs expire again).
func (c *fetchContext) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Now().Before(c.deadline) {
		return
	}
	c.end(context.DeadlineExceeded)
}

// cancel ends c, if it has not ended yet, with context.Canceled.
func (c *fetchContext) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.end(context.Canceled)
}

// end ends c with err unless it has ended already. c.mu must be held.
func (c *fetchContext) end(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	c.timer.Stop()
	close(c.done)
}
