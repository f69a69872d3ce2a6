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
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

const (
	defaultFetchTimeout = 2 * time.Minute        // for a scrape without a deadline
	maxPublishMargin    = 250 * time.Millisecond // see projectState.join
	listPagesTTL        = time.Hour              // how long the learnt cost of a listing is used
	maxTimestampMillis  = 253402300799999        // the end of year 9999
	listLimit           = 1000                   // asked of a first page; the server may page with less
	maxListPages        = 200                    // read of one listing, whatever its total says
	showImageBudget     = 50                     // see flight.fallback
)

// projectState is what a Scraper keeps of one project between scrapes.
type projectState struct {
	project *Project
	logger  log.Logger
	now     func() time.Time
	wanted  map[string]bool // the configured IDs

	mu       sync.Mutex
	inFlight *flight        // the fetch concurrent scrapes share; nil when none runs
	last     *ProjectResult // the newest complete fetch's result
	latest   ProjectResult  // the newest fetch's result, complete or cut short
	// images holds, per exported image, its last good values (Image,
	// LastSuccess), or ShowImage's last answer that it does not exist (Err).
	images       map[string]ImageResult
	ids          []string       // the exported IDs: the configured ones, then those discovery found
	pages        map[string]int // per type, what a listing took, at pagesAt
	pagesAt      time.Time
	fallbackNext int                // see flight
	warned       map[[2]string]bool // data problems logged: image, problem
}

func newProjectState(p *Project, logger log.Logger, now func() time.Time) *projectState {
	ps := &projectState{project: p, logger: logger, now: now, wanted: map[string]bool{}, latest: ProjectResult{Name: p.Name}, ids: p.ImageIDs,
		images: map[string]ImageResult{}, warned: map[[2]string]bool{}}
	for _, id := range p.ImageIDs {
		ps.wanted[id] = true
	}
	return ps
}

// scrape returns the project's images, or what the fetch has learnt when ctx ends.
func (ps *projectState) scrape(ctx context.Context) ProjectResult {
	start := time.Now()
	f, cached := ps.join(ctx)
	if f == nil {
		return cached
	}
	select {
	case <-f.done:
	case <-ctx.Done():
	}
	select {
	case <-f.done: // even if ctx has ended too: the whole result is the better answer
		return f.result
	default:
	}
	waited, why := time.Since(start), ctx.Err()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if f.waiters--; f.waiters == 0 { // the last scrape to give up cancels the fetch
		f.ctx.cancel()
		if ps.inFlight == f {
			ps.inFlight = nil
		}
	}
	f.mu.Lock() // the fetch goes on once what it has learnt is taken
	defer f.mu.Unlock()
	res := ps.result(f, waited, fmt.Errorf("the scrape ended before the API answered: %w", why))
	level.Warn(ps.logger).Log("msg", "Scrape ended before the API answered", "project", ps.project.Name, "images", len(res.Images)-len(f.images), "err", why)
	return res
}

// join returns the newest result if it began less than MinRefreshInterval ago, else
// the fetch to wait for, which ends a little before its scrapes' latest deadline.
func (ps *projectState) join(ctx context.Context) (*flight, ProjectResult) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultFetchTimeout)
	}
	deadline = deadline.Add(-min(time.Until(deadline)/10, maxPublishMargin))
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := ps.now()
	if ps.last != nil && ps.project.MinRefreshInterval > 0 && now.Sub(ps.last.Start) < ps.project.MinRefreshInterval {
		res := *ps.last
		res.Images = slices.Clone(res.Images)
		for i, r := range res.Images { // stale values expire in cached answers too
			if r.Err != nil && r.Image != nil && now.Sub(r.LastSuccess) > ps.project.ServeStaleFor {
				res.Images[i].Image, res.values = nil, 0
			}
		}
		if res.values == 0 {
			res.values = valuesHash(&res)
		}
		return nil, res
	}
	if f := ps.inFlight; f != nil && f.ctx.extend(deadline) {
		f.waiters++
		return f, ProjectResult{}
	}
	pages := ps.pages
	if now.Sub(ps.pagesAt) >= listPagesTTL {
		pages = nil
	}
	f := &flight{ps: ps, ctx: newFetchContext(ctx, deadline), start: now, pages: pages, fallbackNext: ps.fallbackNext,
		sem: make(chan struct{}, max(ps.project.Concurrency, 1)), done: make(chan struct{}), waiters: 1,
		images: map[string]*modelarts.Image{}, errs: map[string]error{},
		answered: ps.project.Discovery == nil && len(ps.project.ImageIDs) == 0} // nothing to ask: nothing failed
	ps.inFlight = f
	go func() {
		began := time.Now()
		f.run(f.ctx)
		cut := f.ctx.Err() != nil
		f.ctx.cancel()
		f.result = ps.record(f, cut, time.Since(began))
		close(f.done)
	}()
	return f, ProjectResult{}
}

// record takes what f learnt into the state and returns the result; cut,
// it is not cached for MinRefreshInterval.
func (ps *projectState) record(f *flight, cut bool, took time.Duration) ProjectResult {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.inFlight == f {
		ps.inFlight = nil
	}
	for _, id := range f.conflicts {
		ps.warn(id, "listed twice with different values; exporting the most recently updated record", true)
	}
	pages, found := map[string]int{}, []string{}
	for _, l := range f.lists {
		switch {
		case !listsEverything(l.opts):
		case errors.Is(l.err, modelarts.ErrForbidden), errors.Is(l.err, errPageCap): // one by one until probed again
			pages[l.opts.Type] = maxListPages
		case l.size == 0:
		case l.cut:
			pages[l.opts.Type] = l.pages
		case l.done:
			pages[l.opts.Type] = max(l.read, 1)
		}
		if l.discovery {
			found = append(found, l.ids...)
		}
	}
	if len(pages) > 0 {
		ps.pages, ps.pagesAt = pages, f.start
	}
	if f.turned { // a fetch abandoned and ending late must not rewind a newer one's turn
		ps.fallbackNext = f.fallbackNext
	}
	if f.discoveryErr != nil { // keep the IDs an incomplete discovery missed
		found = append(found, ps.ids[len(ps.project.ImageIDs):]...)
	}
	ids, keep := slices.Clip(ps.project.ImageIDs), maps.Clone(ps.wanted)
	for _, id := range found {
		if !keep[id] {
			keep[id] = true
			ids = append(ids, id)
		}
	}
	ps.ids = ids
	var late error // a fetch cut short changes no memory of the images it did not reach
	if cut {
		late = f.ctx.Err()
	} else {
		maps.DeleteFunc(ps.images, func(id string, _ ImageResult) bool { return !keep[id] })
		maps.DeleteFunc(ps.warned, func(k [2]string, _ bool) bool { return !keep[k[0]] })
	}
	res := ps.result(f, took, late)
	ps.latest = res
	if !cut {
		ps.last = &res
	}
	return res
}

// result is the scrape result of what f has learnt; late, if set, is the error of images not fetched yet.
func (ps *projectState) result(f *flight, took time.Duration, late error) ProjectResult {
	res := ProjectResult{Name: ps.project.Name, Images: make([]ImageResult, len(ps.ids)), Up: f.projectErr == nil && f.answered,
		Duration: took, Err: cmp.Or(f.projectErr, f.discoveryErr, late), Start: f.start}
	for i, id := range ps.ids {
		if img, ok := f.images[id]; ok {
			img = ps.sanitize(id, img)
			if !ps.images[id].LastSuccess.After(f.start) {
				ps.images[id] = ImageResult{Image: img, LastSuccess: f.start}
			}
			res.Images[i] = ImageResult{ID: id, Image: img, LastSuccess: f.start}
			continue
		}
		err := cmp.Or(f.errs[id], f.discoveryErr, late, errors.New("not fetched in this scrape")) // the last: not expected
		switch {
		case late != nil: // the state is kept
		case imageNotFound(err):
			ps.images[id] = ImageResult{Err: err}
		case ps.images[id].Err != nil && !errors.Is(err, errFallbackBudget):
			delete(ps.images, id)
		}
		k := ps.images[id]
		if k.Err != nil && errors.Is(err, errFallbackBudget) {
			err = fmt.Errorf("not in the listing, and not found by ShowImage in an earlier scrape: %w", k.Err)
		}
		res.Images[i] = ImageResult{ID: id, Err: err}
		if k.Image != nil && !imageNotFound(err) {
			res.Images[i].LastSuccess = k.LastSuccess
			if stale := ps.project.ServeStaleFor; stale > 0 && f.start.Sub(k.LastSuccess) <= stale {
				res.Images[i].Image = k.Image
			}
		}
	}
	for i := 0; !res.Up && res.Err == nil && i < len(res.Images); i++ { // no call answered: say why
		res.Err = res.Images[i].Err
	}
	res.values = valuesHash(&res) // once per fetch, not per scrape: ValueFingerprint reads it
	return res
}

// sanitize returns img without a negative size or a timestamp out of range. ps.mu must be held.
func (ps *projectState) sanitize(id string, img *modelarts.Image) *modelarts.Image {
	badSize := ps.warn(id, "negative size; no size series", img.Size != nil && *img.Size < 0)
	badCreate := ps.warn(id, "create_at out of range; no created timestamp series", img.CreateAt < 0 || img.CreateAt > maxTimestampMillis)
	badUpdate := ps.warn(id, "update_at out of range; no updated timestamp series", img.UpdateAt < 0 || img.UpdateAt > maxTimestampMillis)
	if !badSize && !badCreate && !badUpdate {
		return img // the common case: no copy
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

// warn logs a problem of image id once while bad holds, and returns bad. ps.mu must be held.
func (ps *projectState) warn(id, problem string, bad bool) bool {
	if !bad {
		delete(ps.warned, [2]string{id, problem})
	} else if !ps.warned[[2]string{id, problem}] {
		ps.warned[[2]string{id, problem}] = true
		level.Warn(ps.logger).Log("msg", "Bad data from the API", "project", ps.project.Name, "image", id, "problem", problem)
	}
	return bad
}

// fetchContext is the context of a shared fetch: the values of the scrape that
// started it, and a deadline that extend can move later.
type fetchContext struct {
	context.Context                         // values only
	ended           context.Context         // not embedded: contexts derived from c must see c's Err
	end             context.CancelCauseFunc // called by timer at the deadline, or by cancel
	timer           *time.Timer
	deadline        atomic.Pointer[time.Time] // with its monotonic reading; moved under projectState.mu
}

func newFetchContext(parent context.Context, deadline time.Time) *fetchContext {
	ended, end := context.WithCancelCause(context.Background())
	c := &fetchContext{Context: context.WithoutCancel(parent), ended: ended, end: end}
	c.deadline.Store(&deadline)
	c.timer = time.AfterFunc(time.Until(deadline), func() { end(context.DeadlineExceeded) })
	return c
}

func (c *fetchContext) Deadline() (time.Time, bool) {
	return *c.deadline.Load(), true
}

func (c *fetchContext) Done() <-chan struct{} { return c.ended.Done() }

// Err is context.DeadlineExceeded or context.Canceled once c has ended.
func (c *fetchContext) Err() error { return context.Cause(c.ended) }

// extend moves the deadline to d if later; false if c has ended or is ending.
func (c *fetchContext) extend(d time.Time) bool {
	if d.After(*c.deadline.Load()) {
		if !c.timer.Stop() {
			return false // the timer has fired, or cancel stopped it
		}
		c.deadline.Store(&d)
		c.timer.Reset(time.Until(d))
	}
	return c.ended.Err() == nil
}

func (c *fetchContext) cancel() {
	c.timer.Stop()
	c.end(context.Canceled)
}
