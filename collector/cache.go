// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
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
	// listPagesTTL is how long the learnt cost of a listing steers the choice
	// between listing and ShowImage; then it is probed again.
	listPagesTTL = time.Hour
	// maxTimestampMillis is the end of year 9999, in epoch milliseconds.
	maxTimestampMillis = 253402300799999
)

// projectState is what a Scraper keeps of one project between scrapes: the
// last good values of its images, the newest result and the fetch in
// flight, which concurrent scrapes share.
type projectState struct {
	project *Project
	logger  log.Logger
	now     func() time.Time
	wanted  map[string]bool // the configured IDs

	mu       sync.Mutex
	inFlight *flight // nil when none runs
	// last is the newest complete fetch's result, lastStart when it began.
	last      *ProjectResult
	lastStart time.Time
	known     map[string]knownImage // last good values of the exported images
	// gone: the exported images ShowImage last said do not exist; it stands
	// for them in the scrapes where the fallback budget leaves them out.
	gone       map[string]error
	discovered []string
	pages      map[string]int // per type, what a listing took, at pagesAt
	pagesAt    time.Time
	// fallbackNext is where the next fetch starts its turn through the IDs a
	// complete listing lacks.
	fallbackNext int
	// proven: the credentials worked, and have not been refused since.
	proven bool
	warned map[string]map[string]bool // data problems logged, by image and problem
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
	// waiters counts the scrapes that joined and have not given up; the last
	// one to give up cancels the fetch. Guarded by projectState.mu.
	waiters int
}

func newProjectState(p *Project, logger log.Logger, now func() time.Time) *projectState {
	ps := &projectState{project: p, logger: logger, now: now, wanted: map[string]bool{},
		known: map[string]knownImage{}, gone: map[string]error{}, warned: map[string]map[string]bool{}}
	for _, id := range p.ImageIDs {
		ps.wanted[id] = true
	}
	return ps
}

// scrape returns the project's images: from the newest fetch if it began
// less than MinRefreshInterval ago, else from the fetch running (joined) or
// a new one. It waits until its own ctx ends; the fetch runs until every
// scrape waiting for it has given up, or the latest deadline among them.
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
		res := *ps.last
		res.Images = slices.Clone(res.Images)
		for i, r := range res.Images { // stale values expire in cached answers too
			if r.Err != nil && r.Image != nil && now.Sub(r.LastSuccess) > ps.project.ServeStaleFor {
				res.Images[i].Image = nil
			}
		}
		return nil, res
	}
	if f := ps.inFlight; f != nil && f.ctx.extend(fetchDeadline(ctx)) {
		f.waiters++
		return f, ProjectResult{}
	}
	pages := ps.pages
	if now.Sub(ps.pagesAt) >= listPagesTTL {
		pages = nil
	}
	f := &flight{
		fetcher: newFetcher(ps.project, ps.logger, ps.wanted, pages, ps.fallbackNext, ps.proven),
		ctx:     newFetchContext(ctx, fetchDeadline(ctx)),
		start:   now, done: make(chan struct{}), waiters: 1,
	}
	ps.inFlight = f
	go ps.run(f)
	return f, ProjectResult{}
}

// leave takes a scrape that gave up off the flight; the last one to leave
// cancels the fetch, and the next scrape starts a new one.
func (ps *projectState) leave(f *flight) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if f.waiters--; f.waiters > 0 {
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
// scrape result. A fetch cut short by the end of its context is not kept for
// MinRefreshInterval: its failures are those of the scrapes that gave up.
func (ps *projectState) record(f *flight, out *fetchOutcome, cut bool, took time.Duration) ProjectResult {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.inFlight == f {
		ps.inFlight = nil
	}
	ps.proven = out.proven
	for _, id := range out.conflicts {
		ps.warn(id, "listed twice with different values; exporting the most recently updated record", true)
	}
	if len(out.pages) > 0 {
		ps.pages, ps.pagesAt = out.pages, f.start
	}
	if out.fallbackNext >= 0 {
		ps.fallbackNext = out.fallbackNext
	}
	if out.discoveryErr == nil {
		ps.discovered = out.discovered
	} else {
		ps.discovered = union(out.discovered, ps.discovered)
	}
	res := ps.result(out, f.start, took, nil)
	if !cut {
		ps.last, ps.lastStart = &res, f.start
	}
	return res
}

// result is the scrape result of what a fetch that began at start learnt.
// late, when not nil, is the error of images it has no word on yet (a
// scrape that gave up); else an image it has no word on is forgotten.
func (ps *projectState) result(out *fetchOutcome, start time.Time, took time.Duration, late error) ProjectResult {
	ids := slices.Clone(ps.project.ImageIDs)
	for _, id := range ps.discovered {
		if !ps.wanted[id] {
			ids = append(ids, id)
		}
	}
	res := ProjectResult{Name: ps.project.Name, Images: make([]ImageResult, len(ids)), Up: out.up(), Duration: took}
	for i, id := range ids {
		if img, ok := out.images[id]; ok {
			img = ps.sanitize(id, img)
			if k, ok := ps.known[id]; late == nil && (!ok || !k.at.After(start)) {
				ps.known[id] = knownImage{image: img, at: start}
				delete(ps.gone, id)
			}
			res.Images[i] = ImageResult{ID: id, Image: img, LastSuccess: start}
			continue
		}
		err := cmp.Or(out.errs[id], out.discoveryErr, late, errNotFetched)
		if late == nil {
			switch {
			case imageNotFound(err):
				ps.gone[id] = err
				delete(ps.known, id)
			case !errors.Is(err, errFallbackBudget):
				delete(ps.gone, id)
			}
		}
		if gone, ok := ps.gone[id]; ok && errors.Is(err, errFallbackBudget) {
			err = fmt.Errorf("not in the listing, and not found by ShowImage in an earlier scrape: %w", gone)
		}
		res.Images[i] = ImageResult{ID: id, Err: err}
		if k, ok := ps.known[id]; ok && !imageNotFound(err) {
			res.Images[i].LastSuccess = k.at
			if stale := ps.project.ServeStaleFor; stale > 0 && start.Sub(k.at) <= stale {
				res.Images[i].Image = k.image
			}
		}
	}
	if late == nil {
		ps.forgetAllBut(ids)
	}
	return res
}

// errNotFetched stands for the error of an image a fetch has no word on. It
// is not expected: every exported image gets a value or an error.
var errNotFetched = errors.New("not fetched in this scrape")

// gaveUp is the result for a scrape that ended before the fetch f it waited
// for: what f has learnt so far, and for the other images why.
func (ps *projectState) gaveUp(f *flight, why error, waited time.Duration) ProjectResult {
	sofar := f.fetcher.snapshot()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	late := fmt.Errorf("the scrape ended before the API answered: %w", why)
	res := ps.result(sofar, f.start, waited, late)
	level.Warn(ps.logger).Log("msg", "Scrape ended before the API answered", "project", ps.project.Name, "images", len(res.Images)-len(sofar.images), "err", why)
	return res
}

// sanitize returns img without the values no image can have: a negative
// size, a timestamp before 1970 or after year 9999. Each problem is logged
// once per image while it lasts. ps.mu must be held.
func (ps *projectState) sanitize(id string, img *modelarts.Image) *modelarts.Image {
	badSize := img.Size != nil && *img.Size < 0
	badCreate := img.CreateAt < 0 || img.CreateAt > maxTimestampMillis
	badUpdate := img.UpdateAt < 0 || img.UpdateAt > maxTimestampMillis
	ps.warn(id, "negative size; no size series", badSize)
	ps.warn(id, "create_at out of range; no created timestamp series", badCreate)
	ps.warn(id, "update_at out of range; no updated timestamp series", badUpdate)
	if !badSize && !badCreate && !badUpdate {
		return img
	}
	c := *img
	if badSize {
		c.Size = nil
	}
	if badCreate {
		c.CreateAt = 0
	}
	if badUpdate {
		c.UpdateAt = 0
	}
	return &c
}

// warn logs a problem with the data of image id once while bad holds.
// ps.mu must be held.
func (ps *projectState) warn(id, problem string, bad bool) {
	switch {
	case !bad:
		delete(ps.warned[id], problem)
	case !ps.warned[id][problem]:
		if ps.warned[id] == nil {
			ps.warned[id] = map[string]bool{}
		}
		ps.warned[id][problem] = true
		level.Warn(ps.logger).Log("msg", "Bad data from the API", "project", ps.project.Name, "image", id, "problem", problem)
	}
}

// forgetAllBut drops what is kept of images no longer exported.
func (ps *projectState) forgetAllBut(ids []string) {
	keep := make(map[string]bool, len(ids))
	for _, id := range ids {
		keep[id] = true
	}
	drop := func(id string) bool { return !keep[id] }
	maps.DeleteFunc(ps.known, func(id string, _ knownImage) bool { return drop(id) })
	maps.DeleteFunc(ps.gone, func(id string, _ error) bool { return drop(id) })
	maps.DeleteFunc(ps.warned, func(id string, _ map[string]bool) bool { return drop(id) })
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
