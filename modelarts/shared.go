// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

// Shared is what every client of the process shares, across configuration
// reloads: one guard per credential, so that however many projects use a key
// or a password, and however often the configuration is reloaded, the cloud
// sees at most one refused attempt per pause. Make one per process.
type Shared struct{}

// NewShared returns an empty Shared.
func NewShared() *Shared { return &Shared{} }
