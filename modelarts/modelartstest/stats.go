// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"maps"
	"sync"
)

// counters count API calls per operation and per operation and status code,
// the calls being served, refused signatures and issued temporary keys.
type counters struct {
	mu            sync.Mutex
	total         map[string]int
	byStatus      map[string]map[int]int
	inFlight      int
	peak          int
	refused       map[string]int // access key → refused signatures
	temporaryKeys int
}

func newCounters() *counters {
	return &counters{total: map[string]int{}, byStatus: map[string]map[int]int{}, refused: map[string]int{}}
}

// refusedSignature counts a call signed with accessKey and refused; a call
// whose Authorization header names no access key is not counted here.
func (c *counters) refusedSignature(accessKey string) {
	if accessKey == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refused[accessKey]++
}

func (c *counters) temporaryKeyIssued() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.temporaryKeys++
}

// begin counts a call as it arrives, before any waiting.
func (c *counters) begin(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total[op]++
	c.inFlight++
	c.peak = max(c.peak, c.inFlight)
}

// answered counts the status a call is answered with, before the answer
// leaves, so that a client that got it can count on the counters.
func (c *counters) answered(op string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.countStatus(op, status)
}

// end counts a call as done; status 0 when it was never answered.
func (c *counters) end(op string, wasAnswered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight--
	if !wasAnswered {
		c.countStatus(op, 0)
	}
}

func (c *counters) countStatus(op string, status int) {
	m := c.byStatus[op]
	if m == nil {
		m = map[int]int{}
		c.byStatus[op] = m
	}
	m[status]++
}

func (c *counters) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.total)
	clear(c.byStatus)
	clear(c.refused)
	c.temporaryKeys = 0
	c.peak = c.inFlight
}

// Stats are the request counters.
type Stats struct {
	// Requests counts the calls received per operation, counted on arrival.
	Requests map[string]int `json:"requests"`
	// ByStatus counts the calls answered per operation and status code; code 0
	// means no answer was written (the client gave up, or the connection was
	// cut before the headers).
	ByStatus map[string]map[int]int `json:"by_status"`
	// InFlight is the number of calls being served now; PeakInFlight the most
	// at once since the last reset.
	InFlight     int `json:"in_flight"`
	PeakInFlight int `json:"peak_in_flight"`
	// Images is the number of images held.
	Images int `json:"images"`
	// RefusedSignatures counts the refused AK/SK calls per access key (see
	// Server.RefusedSignatures).
	RefusedSignatures map[string]int `json:"refused_signatures"`
	// TemporaryKeysIssued counts the temporary access keys the metadata
	// service issued.
	TemporaryKeysIssued int `json:"temporary_keys_issued"`
}

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats {
	c := s.stats
	c.mu.Lock()
	st := Stats{
		Requests:     maps.Clone(c.total),
		ByStatus:     make(map[string]map[int]int, len(c.byStatus)),
		InFlight:     c.inFlight,
		PeakInFlight: c.peak,

		RefusedSignatures:   maps.Clone(c.refused),
		TemporaryKeysIssued: c.temporaryKeys,
	}
	for op, m := range c.byStatus {
		st.ByStatus[op] = maps.Clone(m)
	}
	c.mu.Unlock()
	st.Images = s.images.len()
	return st
}

// Requests returns how many calls of an operation arrived since the last
// ResetCounters (whatever their outcome); "" sums all operations.
func (s *Server) Requests(op string) int {
	c := s.stats
	c.mu.Lock()
	defer c.mu.Unlock()
	return countOf(c.total, op)
}

// countOf is m[key], or the sum of m for the key "".
func countOf(m map[string]int, key string) int {
	if key != "" {
		return m[key]
	}
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// RequestsWithStatus returns how many calls of an operation were answered
// with a status code since the last ResetCounters.
func (s *Server) RequestsWithStatus(op string, status int) int {
	c := s.stats
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byStatus[op][status]
}

// PeakInFlight returns the most calls served at once since the last
// ResetCounters: a test of a client's concurrency bound.
func (s *Server) PeakInFlight() int {
	c := s.stats
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peak
}

// RefusedSignatures returns how many calls signed with an access key were
// refused since the last ResetCounters, for any reason: a bad signature, a
// missing, wrong or unsigned security token, an expired temporary key, an
// unknown or locked key. "" sums all access keys. Failed logins are
// RequestsWithStatus(OpCreateToken, 401).
func (s *Server) RefusedSignatures(accessKey string) int {
	c := s.stats
	c.mu.Lock()
	defer c.mu.Unlock()
	return countOf(c.refused, accessKey)
}

// ResetCounters zeroes the request counters.
func (s *Server) ResetCounters() { s.stats.reset() }
