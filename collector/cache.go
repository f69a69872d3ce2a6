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
	// stops, so that its result reaches the scrape (see fetchDeadline).
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
	// last is the result of the newest complete fetch and lastStart when it
	// began. A fetch cut short by its deadline, or by every scrape giving up,
	// is not kept: the next scrape fetches again.
	last      *ProjectResult
	lastStart time.Time
	// known holds the last good values of every exported image.
	known map[string]knownImage
	// gone holds, for the exported images ShowImage last said do not exist,
	// that answer: it stands for them in the scrapes where the ShowImage
	// fallback budget leaves them out (see fetcher.capFallback).
	gone map[string]error
	// discovered are the IDs the newest discovery listing returned.
	discovered []string
	// listPages is the number of calls an unfiltered listing took when it
	// was last read, at listPagesAt.
	listPages   int
	listPagesAt time.Time
	// fallbackNext is where the next fetch starts its turn through the IDs
	// a complete listing lacks.
	fallbackNext int
}

// knownImage is the last good value of an image and when it was fetched.
type knownImage struct {
	image *modelarts.Image
	at    time.Time
}

// flight is one fetch of a project and the scrapes waiting for it.
type flight struct {
	fetcher *fetcher
	ctx     *fetchContext
	start   time.Time     // by the state's clock
	done    chan struct{} // closed when result is set
	result  ProjectResult
	// waiters counts the scrapes that joined the flight and have not given
	// up; they may have returned with its result already. The last one to
	// give up cancels the fetch. Guarded by projectState.mu.
	waiters int
}

func newProjectState(p *Project, logger log.Logger, now func() time.Time) *projectState {
	return &projectState{project: p, logger: logger, now: now, known: map[string]knownImage{}, gone: map[string]error{}}
}

// scrape returns the project's images: from the newest fetch if it began
// less than MinRefreshInterval ago, else from a fetch that is started or,
// if one is already running, joined. The scrape waits until its own ctx
// ends; the fetch runs until every scrape waiting for it has given up, or
// until the latest deadline among them.
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
		select {
		case <-f.done: // both happened: the whole result is the better answer
			return f.result
		default:
		}
		ps.leave(f)
		return ps.gaveUp(f, ctx.Err(), time.Since(start))
	}
}

// join returns the newest result if it is fresh enough, else the fetch to
// wait for: the one running, its deadline pushed to this scrape's if that is
// later, or a new one.
func (ps *projectState) join(ctx context.Context) (*flight, ProjectResult) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := ps.now()
	if ps.last != nil && ps.project.MinRefreshInterval > 0 && now.Sub(ps.lastStart) < ps.project.MinRefreshInterval {
		return nil, ps.cached(now)
	}
	if f := ps.inFlight; f != nil && f.ctx.extend(fetchDeadline(ctx)) {
		f.waiters++
		return f, ProjectResult{}
	}
	return ps.startFlight(ctx, now), ProjectResult{}
}

// cached is the newest result as a scrape at now exports it: without the
// stale values that have grown older than ServeStaleFor since. ps.mu must be
// held.
func (ps *projectState) cached(now time.Time) ProjectResult {
	res := *ps.last
	res.Images = slices.Clone(res.Images)
	for i, r := range res.Images {
		if r.Err != nil && r.Image != nil && now.Sub(r.LastSuccess) > ps.project.ServeStaleFor {
			res.Images[i].Image = nil
		}
	}
	return res
}

// startFlight starts a fetch for the scrape with ctx at now. ps.mu must be held.
func (ps *projectState) startFlight(ctx context.Context, now time.Time) *flight {
	expectedPages := ps.listPages
	if now.Sub(ps.listPagesAt) >= listPagesTTL {
		expectedPages = 0
	}
	f := &flight{
		fetcher: newFetcher(ps.project, ps.logger, expectedPages, ps.fallbackNext),
		ctx:     newFetchContext(ctx, fetchDeadline(ctx)),
		start:   now,
		done:    make(chan struct{}),
		waiters: 1,
	}
	ps.inFlight = f
	go ps.run(f)
	return f
}

// leave takes a scrape that gave up off the flight; the last one to leave
// cancels the fetch, and the next scrape starts a new one.
func (ps *projectState) leave(f *flight) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	f.waiters--
	if f.waiters > 0 {
		return
	}
	f.ctx.cancel()
	if ps.inFlight == f {
		ps.inFlight = nil
	}
}

// run performs the fetch of flight f and publishes its result.
func (ps *projectState) run(f *flight) {
	began := time.Now()
	out := f.fetcher.run(f.ctx)
	cut := f.ctx.Err() != nil
	f.ctx.cancel() // stops its timer
	f.result = ps.record(f, out, cut, time.Since(began))
	close(f.done)
}

// record takes the outcome of the fetch of f into the state and returns the
// scrape result. The result of a fetch cut short by the end of its context
// is not kept for MinRefreshInterval: its failures are those of the scrapes
// that gave up, not of the API.
func (ps *projectState) record(f *flight, out *fetchOutcome, cut bool, took time.Duration) ProjectResult {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.inFlight == f {
		ps.inFlight = nil
	}
	for id, img := range out.images {
		if k, ok := ps.known[id]; !ok || !k.at.After(f.start) {
			ps.known[id] = knownImage{image: img, at: f.start}
		}
	}
	if out.listPages > 0 {
		ps.listPages, ps.listPagesAt = out.listPages, f.start
	}
	if out.fallbackNext > 0 {
		ps.fallbackNext = out.fallbackNext
	}
	if out.discoveryErr == nil {
		ps.discovered = out.discovered
	} else {
		ps.discovered = union(out.discovered, ps.discovered)
	}
	ids := ps.exportedIDs()
	res := ProjectResult{Name: ps.project.Name, Images: make([]ImageResult, len(ids)), Up: out.up(), Duration: took}
	for i, id := range ids {
		res.Images[i] = ps.imageResult(id, out, f.start)
	}
	ps.forgetAllBut(ids)
	if !cut {
		ps.last, ps.lastStart = &res, f.start
	}
	return res
}

// errNotFetched stands for the error of an image a fetch has no word on. It
// is not expected to be seen: every exported image gets a value or an error.
var errNotFetched = errors.New("not fetched in this scrape")

// imageResult is the result of one image in a fetch that began at start.
// ps.mu must be held.
func (ps *projectState) imageResult(id string, out *fetchOutcome, start time.Time) ImageResult {
	if img, ok := out.images[id]; ok {
		delete(ps.gone, id)
		return ImageResult{ID: id, Image: img, LastSuccess: start}
	}
	err := out.errs[id]
	if err == nil {
		err = out.discoveryErr // discovered earlier, absent from an incomplete listing
	}
	if err == nil {
		err = errNotFetched
	}
	switch {
	case imageNotFound(err):
		ps.gone[id] = err
	case !errors.Is(err, errFallbackBudget):
		delete(ps.gone, id)
	}
	return ps.failed(id, ps.stillGone(id, err), start)
}

// stillGone returns, for an image the ShowImage fallback budget left out
// (err is errFallbackBudget), ShowImage's last answer that it does not exist,
// if there is one; else err. ps.mu must be held.
func (ps *projectState) stillGone(id string, err error) error {
	if gone, ok := ps.gone[id]; ok && errors.Is(err, errFallbackBudget) {
		return fmt.Errorf("not in the listing, and not found by ShowImage in an earlier scrape: %w", gone)
	}
	return err
}

// failed is the result of an image whose fetch failed with err at now (see
// failedRead). An image ShowImage says does not exist is forgotten.
func (ps *projectState) failed(id string, err error, now time.Time) ImageResult {
	if imageNotFound(err) {
		delete(ps.known, id)
	}
	return ps.failedRead(id, err, now)
}

// failedRead is the result of an image whose fetch failed with err at now:
// its last good values while they are younger than ServeStaleFor, else
// none; never any for an image ShowImage says does not exist.
func (ps *projectState) failedRead(id string, err error, now time.Time) ImageResult {
	r := ImageResult{ID: id, Err: err}
	if imageNotFound(err) {
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
// modelarts_up says what it says for a whole fetch, on what f learnt so far.
func (ps *projectState) gaveUp(f *flight, why error, waited time.Duration) ProjectResult {
	sofar := f.fetcher.snapshot()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	late := fmt.Errorf("the scrape ended before the API answered: %w", why)
	ids := ps.exportedIDs()
	res := ProjectResult{Name: ps.project.Name, Images: make([]ImageResult, len(ids)), Up: sofar.up(), Duration: waited}
	missing := 0
	for i, id := range ids {
		if img, ok := sofar.images[id]; ok {
			res.Images[i] = ImageResult{ID: id, Image: img, LastSuccess: f.start}
			continue
		}
		err, ok := sofar.errs[id]
		if !ok {
			err, missing = late, missing+1
		}
		res.Images[i] = ps.failedRead(id, ps.stillGone(id, err), f.start)
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

// forgetAllBut drops what is kept of images no longer exported.
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
	for id := range ps.gone {
		if !keep[id] {
			delete(ps.gone, id)
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
