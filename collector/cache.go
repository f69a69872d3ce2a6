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
	defaultFetchTimeout = 2 * time.Minute        // for a scrape without a deadline
	maxPublishMargin    = 250 * time.Millisecond // see projectState.join
	listPagesTTL        = time.Hour              // how long the learnt cost of a listing is used
	maxTimestampMillis  = 253402300799999        // the end of year 9999
	listLimit           = 1000                   // asked of a first page; the server may page with less
	maxListPages        = 200                    // read of one listing, whatever its total says
	showImageBudget     = 50                     // see fetcher.fallback
)

// projectState is what a Scraper keeps of one project between scrapes.
type projectState struct {
	project *Project
	logger  log.Logger
	now     func() time.Time
	wanted  map[string]bool // the configured IDs

	mu           sync.Mutex
	inFlight     *flight                // the fetch concurrent scrapes share; nil when none runs
	last         *ProjectResult         // the newest complete fetch's result
	latest       ProjectResult          // the newest fetch's result, complete or cut short
	known        map[string]ImageResult // last good values (Image, LastSuccess) of the exported images
	gone         map[string]error       // ShowImage last said they do not exist
	ids          []string               // the exported IDs: the configured ones, then those discovery found
	pages        map[string]int         // per type, what a listing took, at pagesAt
	pagesAt      time.Time
	fallbackNext int                // see fetchOutcome
	warned       map[[2]string]bool // data problems logged: image, problem
}

// flight is one fetch and the scrapes waiting for it.
type flight struct {
	fetcher *fetcher
	ctx     *fetchContext
	start   time.Time     // by the state's clock
	done    chan struct{} // closed when result is set
	result  ProjectResult
	waiters int // scrapes that joined and have not given up; under projectState.mu
}

func newProjectState(p *Project, logger log.Logger, now func() time.Time) *projectState {
	ps := &projectState{project: p, logger: logger, now: now, wanted: map[string]bool{}, latest: ProjectResult{Name: p.Name}, ids: p.ImageIDs,
		known: map[string]ImageResult{}, gone: map[string]error{}, warned: map[[2]string]bool{}}
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
	f.fetcher.mu.Lock() // the fetch goes on once what it has learnt is taken
	defer f.fetcher.mu.Unlock()
	res := ps.result(f.fetcher.out, f.start, waited, fmt.Errorf("the scrape ended before the API answered: %w", why))
	level.Warn(ps.logger).Log("msg", "Scrape ended before the API answered", "project", ps.project.Name, "images", len(res.Images)-len(f.fetcher.out.images), "err", why)
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
				res.Images[i].Image = nil
			}
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
	f := &flight{ctx: newFetchContext(ctx, deadline), start: now, done: make(chan struct{}), waiters: 1,
		fetcher: newFetcher(ps.project, ps.logger, ps.wanted, pages, ps.fallbackNext)}
	ps.inFlight = f
	go func() {
		began := time.Now()
		out := f.fetcher.run(f.ctx)
		cut := f.ctx.Err() != nil
		f.ctx.cancel()
		f.result = ps.record(f, out, cut, time.Since(began))
		close(f.done)
	}()
	return f, ProjectResult{}
}

// record takes the outcome of f into the state and returns the result; cut,
// it is not cached for MinRefreshInterval.
func (ps *projectState) record(f *flight, out *fetchOutcome, cut bool, took time.Duration) ProjectResult {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.inFlight == f {
		ps.inFlight = nil
	}
	for _, id := range out.conflicts {
		ps.warn(id, "listed twice with different values; exporting the most recently updated record", true)
	}
	pages, found := map[string]int{}, []string{}
	for _, l := range out.lists {
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
	if out.fallbackNext >= 0 {
		ps.fallbackNext = out.fallbackNext
	}
	if out.discoveryErr != nil { // keep the IDs an incomplete discovery missed
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
		maps.DeleteFunc(ps.known, func(id string, _ ImageResult) bool { return !keep[id] })
		maps.DeleteFunc(ps.gone, func(id string, _ error) bool { return !keep[id] })
		maps.DeleteFunc(ps.warned, func(k [2]string, _ bool) bool { return !keep[k[0]] })
	}
	res := ps.result(out, f.start, took, late)
	ps.latest = res
	if !cut {
		ps.last = &res
	}
	return res
}

// result is the scrape result of out, from a fetch begun at start; late, if set, is the error of images not fetched yet.
func (ps *projectState) result(out *fetchOutcome, start time.Time, took time.Duration, late error) ProjectResult {
	res := ProjectResult{Name: ps.project.Name, Images: make([]ImageResult, len(ps.ids)), Up: out.projectErr == nil && out.answered,
		Duration: took, Err: cmp.Or(out.projectErr, out.discoveryErr, late), Start: start}
	for i, id := range ps.ids {
		if img, ok := out.images[id]; ok {
			img = ps.sanitize(id, img)
			if k, ok := ps.known[id]; !ok || !k.LastSuccess.After(start) {
				ps.known[id] = ImageResult{Image: img, LastSuccess: start}
				delete(ps.gone, id)
			}
			res.Images[i] = ImageResult{ID: id, Image: img, LastSuccess: start}
			continue
		}
		err := cmp.Or(out.errs[id], out.discoveryErr, late, errors.New("not fetched in this scrape")) // the last: not expected
		switch {
		case late != nil: // the state is kept
		case imageNotFound(err):
			ps.gone[id] = err
			delete(ps.known, id)
		case !errors.Is(err, errFallbackBudget):
			delete(ps.gone, id)
		}
		if gone, ok := ps.gone[id]; ok && errors.Is(err, errFallbackBudget) {
			err = fmt.Errorf("not in the listing, and not found by ShowImage in an earlier scrape: %w", gone)
		}
		res.Images[i] = ImageResult{ID: id, Err: err}
		if k, ok := ps.known[id]; ok && !imageNotFound(err) {
			res.Images[i].LastSuccess = k.LastSuccess
			if stale := ps.project.ServeStaleFor; stale > 0 && start.Sub(k.LastSuccess) <= stale {
				res.Images[i].Image = k.Image
			}
		}
	}
	for i := 0; !res.Up && res.Err == nil && i < len(res.Images); i++ { // no call answered: say why
		res.Err = res.Images[i].Err
	}
	return res
}

// latestResult returns the result of the newest fetch (shared: recorded results never change).
func (ps *projectState) latestResult() ProjectResult {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.latest
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
	context.Context // values only
	ended           context.Context
	end             context.CancelCauseFunc
	timer           *time.Timer
	mu              sync.Mutex
	deadline        time.Time
}

func newFetchContext(parent context.Context, deadline time.Time) *fetchContext {
	// ended is not embedded: contexts derived from c must see c's Err.
	ended, end := context.WithCancelCause(context.Background())
	c := &fetchContext{Context: context.WithoutCancel(parent), ended: ended, end: end, deadline: deadline}
	c.timer = time.AfterFunc(time.Until(deadline), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !time.Now().Before(c.deadline) { // else extend has reset the timer
			end(context.DeadlineExceeded)
		}
	})
	return c
}

func (c *fetchContext) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, true
}

func (c *fetchContext) Done() <-chan struct{} { return c.ended.Done() }

// Err is context.DeadlineExceeded or context.Canceled once c has ended.
func (c *fetchContext) Err() error { return context.Cause(c.ended) }

// extend moves the deadline to d if later; false if c has ended.
func (c *fetchContext) extend(d time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended.Err() != nil {
		return false
	}
	if d.After(c.deadline) {
		c.deadline = d
		c.timer.Reset(time.Until(d))
	}
	return true
}

func (c *fetchContext) cancel() {
	c.timer.Stop()
	c.end(context.Canceled)
}
