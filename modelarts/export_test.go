// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import "time"

// NewClientWithClock is NewClient with the clock now, for the tests of
// package modelarts_test.
func NewClientWithClock(cfg Config, now func() time.Time) *Client {
	cfg.now = now
	return NewClient(cfg)
}
