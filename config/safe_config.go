// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package config

import "sync"

// SafeConfig holds the running configuration and replaces it on a reload. The zero
// value holds none (Get returns nil) and is ready for a first ReloadConfig.
//
// A *Config handed out by Get is never modified afterwards: a reload swaps in a new
// one, so a scrape keeps the configuration it started with.
type SafeConfig struct {
	mu sync.RWMutex
	c  *Config
}

// NewSafeConfig returns a SafeConfig holding c, which must come from Load or
// LoadReader.
func NewSafeConfig(c *Config) *SafeConfig {
	return &SafeConfig{c: c}
}

// Get returns the current configuration (nil before the first successful load).
// Treat it as read-only.
func (sc *SafeConfig) Get() *Config {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	return sc.c
}

// ReloadConfig loads the configuration file at path, secret files included, and
// makes it current if it is valid. On error the current configuration stays, and
// the error says why, as Load's does.
func (sc *SafeConfig) ReloadConfig(path string) error {
	c, err := Load(path)
	if err != nil {
		return err
	}
	sc.mu.Lock()
	sc.c = c
	sc.mu.Unlock()
	return nil
}
