// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

const (
	// defaultFetchTimeout bounds a fetch started by a scrape without a deadline.
	defaultFetchTimeout = 2 * time.Minute
	// maxPublishMargin bounds how long before the scrape's deadline a fetch
	// stops, so that its result reaches the scrape (see detach).
	maxPublishMargin = 250 * time.Millisecond
	// listPagesTTL is how long the learnt size of a listing steers the
	// strategy. After that the strategy probes again with one page, so that a
	// project that shrank is listed again.
	listPagesTTL = time.Hour
)

// projectState is what a Scraper keeps of one project between scrapes: the
// last good values of its images, the result of the newest fetch and the
// fetch in flight, which concurrent scrapes share.
type projectState struct {
	project *Project
	logger  log.Logger
	now     func() time.Time

	mu sync.Mutex
	// inFlight is the fetch concurrent scrapes join; nil when none runs.
	inFlight *flight
	// last is the result of the newest fetch and lastStart when it began.
	last      *ProjectResult
	lastStart time.Time
	// known holds the last good values of every exported image.
	known map[string]knownImage
	// discovered are the IDs the newest discovery listing returned.
	discovered []string
	// listPages is the number of calls an unfiltered listing took when it
	// was last read, at listPagesAt.
	listPages   int
	listPagesAt time.Time
}

// knownImage is the last good value of an image and when it was fetched.
type knownImage struct {
	image *modelarts.Image
	at    time.Time
}

// flight is one fetch of a project and the scrapes waiting for it.
type flight struct {
	fetcher *fetcher
	start   time.Time     // by the state's clock
	done    chan struct{} // closed when result is set
	result  ProjectResult
	cancel  context.CancelFunc
	// waiters count the scrapes waiting; abandoned is set when the last one
	// gave up, and the fetch was cancelled. Both are guarded by projectState.mu.
	waiters   int
	abandoned bool
}

func newProjectState(p *Project, logger log.Logger, now func() time.Time) *projectState {
	return &projectState{project: p, logger: logger, now: now, known: map[string]knownImage{}}
}

// scrape returns the project's images: from the newest fetch if it began
// less than MinRefreshInterval ago, else from a fetch that is started or,
// if one is already running, joined. The scrape waits until its own ctx
// ends; the fetch runs until every scrape waiting for it has given up, or
// until the deadline of the scrape that started it.
func (ps *projectState) scrape(ctx context.Context) ProjectResult {
	start := time.Now()
	f, cached := ps.join(ctx)
	if f == nil {
		return cached
	}
	select {
	case <-f.done:
		return f.result
	case <-ctx.Done():
		ps.leave(f)
		return ps.gaveUp(f, ctx.Err(), time.Since(start))
	}
}

// join returns the newest result if it is fresh enough, else the fetch to wait for.
func (ps *projectState) join(ctx context.Context) (*flight, ProjectResult) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.last != nil && ps.project.MinRefreshInterval > 0 && ps.now().Sub(ps.lastStart) < ps.project.MinRefreshInterval {
		return nil, *ps.last
	}
	if f := ps.inFlight; f != nil {
		f.waiters++
		return f, ProjectResult{}
	}
	return ps.startFlight(ctx), ProjectResult{}
}

// startFlight starts a fetch for the scrape with ctx. ps.mu must be held.
func (ps *projectState) startFlight(ctx context.Context) *flight {
	now := ps.now()
	expectedPages := ps.listPages
	if now.Sub(ps.listPagesAt) >= listPagesTTL {
		expectedPages = 0
	}
	fetchCtx, cancel := detach(ctx)
	f := &flight{
		fetcher: newFetcher(ps.project, ps.logger, expectedPages),
		start:   now,
		done:    make(chan struct{}),
		cancel:  cancel,
		waiters: 1,
	}
	ps.inFlight = f
	go ps.run(fetchCtx, f)
	return f
}

// detach returns a context for a shared fetch: it keeps the values of ctx
// but not its cancellation, so that the scrape that started the fetch can go
// away while others still wait for it. Its deadline is a little before that
// of ctx (a tenth of the time left, at most maxPublishMargin): the calls
// still running then fail, and the result, with the images that did arrive,
// reaches the scrape before the scrape gives up.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultFetchTimeout)
	}
	deadline = deadline.Add(-min(time.Until(deadline)/10, maxPublishMargin))
	return context.WithDeadline(context.WithoutCancel(ctx), deadline)
}

// leave takes a scrape that gave up off the flight; the last one to leave
// cancels the fetch, and the next scrape starts a new one.
func (ps *projectState) leave(f *flight) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	f.waiters--
	if f.waiters > 0 || f.abandoned {
		return
	}
	f.abandoned = true
	f.cancel()
	if ps.inFlight == f {
		ps.inFlight = nil
	}
}

// run performs the fetch of flight f and publishes its result.
func (ps *projectState) run(ctx context.Context, f *flight) {
	defer f.cancel()
	began := time.Now()
	out := f.fetcher.run(ctx)
	f.result = ps.record(f, out, f.start, time.Since(began))
	close(f.done)
}

// record takes the outcome of a fetch that began at start into the state
// and returns the scrape result. An abandoned fetch only contributes the
// values it fetched: its failures are those of a cancelled context.
func (ps *projectState) record(f *flight, out *fetchOutcome, start time.Time, took time.Duration) ProjectResult {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.inFlight == f {
		ps.inFlight = nil
	}
	for id, img := range out.images {
		if k, ok := ps.known[id]; !ok || !k.at.After(start) {
			ps.known[id] = knownImage{image: img, at: start}
		}
	}
	if f.abandoned {
		return ProjectResult{Name: ps.project.Name}
	}
	if out.listPages > 0 {
		ps.listPages, ps.listPagesAt = out.listPages, start
	}
	if out.discoveryErr == nil {
		ps.discovered = out.discovered
	} else {
		ps.discovered = union(out.discovered, ps.discovered)
	}
	ids := ps.exportedIDs()
	res := ProjectResult{Name: ps.project.Name, Images: make([]ImageResult, len(ids)), Up: out.up(), Duration: took}
	for i, id := range ids {
		res.Images[i] = ps.imageResult(id, out, start)
	}
	ps.forgetAllBut(ids)
	ps.last, ps.lastStart = &res, start
	return res
}

// imageResult is the result of one image in a fetch that began at start.
func (ps *projectState) imageResult(id string, out *fetchOutcome, start time.Time) ImageResult {
	if img, ok := out.images[id]; ok {
		return ImageResult{ID: id, Image: img, LastSuccess: start}
	}
	err := out.errs[id]
	if err == nil {
		err = out.discoveryErr // discovered earlier, absent from an incomplete listing
	}
	return ps.failed(id, err, start)
}

// failed is the result of an image whose fetch failed with err at now (see
// failedRead). An image the API says does not exist is forgotten.
func (ps *projectState) failed(id string, err error, now time.Time) ImageResult {
	if errors.Is(err, modelarts.ErrNotFound) {
		delete(ps.known, id)
	}
	return ps.failedRead(id, err, now)
}

// failedRead is the result of an image whose fetch failed with err at now:
// its last good values while they are younger than ServeStaleFor, else
// none; never any for an image the API says does not exist.
func (ps *projectState) failedRead(id string, err error, now time.Time) ImageResult {
	r := ImageResult{ID: id, Err: err}
	if errors.Is(err, modelarts.ErrNotFound) {
		return r
	}
	k, ok := ps.known[id]
	if !ok {
		return r
	}
	r.LastSuccess = k.at
	if stale := ps.project.ServeStaleFor; stale > 0 && now.Sub(k.at) <= stale {
		r.Image = k.image
	}
	return r
}

// gaveUp is the result for a scrape that ended before the fetch f it waited
// for: the images f has fetched so far, and for the others the error f met
// or else why, with their last good values where ServeStaleFor allows.
func (ps *projectState) gaveUp(f *flight, why error, waited time.Duration) ProjectResult {
	images, errs := f.fetcher.progress()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	late := fmt.Errorf("the scrape ended before the API answered: %w", why)
	ids := ps.exportedIDs()
	res := ProjectResult{Name: ps.project.Name, Images: make([]ImageResult, len(ids)), Duration: waited}
	missing := 0
	for i, id := range ids {
		if img, ok := images[id]; ok {
			res.Images[i] = ImageResult{ID: id, Image: img, LastSuccess: f.start}
			res.Up = true
			continue
		}
		err, ok := errs[id]
		if !ok {
			err, missing = late, missing+1
		}
		res.Images[i] = ps.failedRead(id, err, f.start)
	}
	level.Warn(ps.logger).Log("msg", "Scrape ended before the API answered", "project", ps.project.Name, "images_late", missing, "err", why)
	return res
}

// exportedIDs are the configured IDs, then the discovered ones not configured.
func (ps *projectState) exportedIDs() []string {
	ids := slices.Clone(ps.project.ImageIDs)
	configured := make(map[string]bool, len(ids))
	for _, id := range ids {
		configured[id] = true
	}
	for _, id := range ps.discovered {
		if !configured[id] {
			ids = append(ids, id)
		}
	}
	return ids
}

// forgetAllBut drops the last good values of images no longer exported.
func (ps *projectState) forgetAllBut(ids []string) {
	keep := make(map[string]bool, len(ids))
	for _, id := range ids {
		keep[id] = true
	}
	for id := range ps.known {
		if !keep[id] {
			delete(ps.known, id)
		}
	}
}

// union returns a followed by the elements of b not in a.
func union(a, b []string) []string {
	in := make(map[string]bool, len(a))
	for _, id := range a {
		in[id] = true
	}
	out := slices.Clone(a)
	for _, id := range b {
		if !in[id] {
			out = append(out, id)
		}
	}
	return out
}
