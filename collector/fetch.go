// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/go-kit/log/level"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// imageTypes are listed one by one: an untyped listing returns BUILD_IN only.
var imageTypes = []string{"BUILD_IN", "DEDICATED"}

var errFallbackBudget = fmt.Errorf("not in the listing; ShowImage fallback budget of %d per scrape spent, retried in a later scrape", showImageBudget)
var errNotStarted = errors.New("not fetched: the scrape ended first")
var errPageCap = fmt.Errorf("ListImage paging stopped at the cap of %d pages", maxListPages)

// flight is one fetch of a project, what it has learnt, and the scrapes waiting for it.
type flight struct {
	ps      *projectState
	ctx     *fetchContext
	start   time.Time      // by the state's clock
	pages   map[string]int // what listing each type took last time
	sem     chan struct{}  // bounds the calls in flight
	done    chan struct{}  // closed when result is set
	result  ProjectResult
	waiters int // scrapes that joined and have not given up; under projectState.mu

	mu           sync.Mutex // guards what follows, which a scrape that gives up reads meanwhile
	images       map[string]*modelarts.Image
	errs         map[string]error
	lists        []*listing // the listings read, once no page of them is left to read
	discoveryErr error      // one of the discovery listings did not complete
	fallbackNext int        // where this fetch's turn of fallback IDs starts; after a turn, the next one's
	turned       bool       // a turn was taken: fallbackNext is the next one's
	projectErr   error      // concerns every image: no call was made after it
	answered     bool       // a call got an answer from ModelArts
	conflicts    []string   // IDs listed twice with different values
}

// run reads the listings worth reading, then calls ShowImage for the
// configured IDs they did not cover.
func (f *flight) run(ctx context.Context) {
	ids, d := f.ps.project.ImageIDs, f.ps.project.Discovery
	var lists, own []*listing // own: listings for the configured IDs alone
	for _, t := range imageTypes {
		if d != nil && (d.Type == "" || d.Type == t) {
			opts := *d
			opts.Type = t
			lists = append(lists, &listing{opts: opts, discovery: true, seen: map[string]bool{}})
			if listsEverything(opts) {
				continue
			}
		}
		own = append(own, &listing{opts: modelarts.ListOptions{Type: t}, pages: max(f.pages[t], 1), seen: map[string]bool{}})
	}
	lists = append(lists, own...)
	// Before the first pages, the pages each type took last time; after them, the exact numbers.
	for _, first := range []bool{true, false} {
		left := 0
		for _, l := range own {
			if l.open() {
				left += l.pages - l.next
			}
		}
		if len(f.notFetched(ids)) <= left {
			for _, l := range own { // one by one is cheaper, unless the total is absurd
				l.cut = l.cut || l.open() && l.total <= maxListPages
			}
		}
		f.readPages(ctx, lists, first)
	}
	f.showEach(ctx, f.fallback(ids, lists))
}

// fallback hands the listings to f and returns the IDs to fetch one by one:
// after complete listings of every type, showImageBudget a scrape in turns;
// after a failed listing, all of them only if few.
func (f *flight) fallback(ids []string, lists []*listing) []string {
	missing := f.notFetched(ids)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = lists
	why, cut := errFallbackBudget, false
	for _, l := range lists {
		if l.discovery {
			f.discoveryErr = cmp.Or(f.discoveryErr, l.err)
		}
		if l.err != nil && (!l.discovery || listsEverything(l.opts)) {
			why = fmt.Errorf("%w; fetched one by one in turns, %d a scrape", l.err, showImageBudget)
		}
		cut = cut || l.cut
	}
	if f.projectErr != nil || len(missing) <= showImageBudget || cut {
		return missing
	}
	start := f.fallbackNext % len(missing)
	turn := append(missing[start:], missing[:start]...)
	f.fallbackNext, f.turned = start+showImageBudget, true
	for _, id := range turn[showImageBudget:] {
		f.errs[id] = why
	}
	level.Warn(f.ps.logger).Log(
		"msg", "Too many configured images are not in the listing: fetching some of them one by one, the others in later scrapes",
		"project", f.ps.project.Name, "images", len(missing), "fetched", showImageBudget)
	return turn[:showImageBudget]
}

// showEach fetches ids with one ShowImage call each, concurrently.
func (f *flight) showEach(ctx context.Context, ids []string) {
	var wg sync.WaitGroup
	late := 0
	take := func(id string, img *modelarts.Image, err error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if err == nil {
			f.images[id] = img
			return
		}
		f.errs[id] = err
		if !projectWide(err) && !errors.Is(err, errNotStarted) && !errors.Is(err, f.projectErr) {
			level.Warn(f.ps.logger).Log(append([]any{"msg", "Failed to fetch image", "project", f.ps.project.Name, "image", id}, apiErrorKV(err)...)...)
		}
	}
	for _, id := range ids {
		err := f.spawn(ctx, &wg, func() {
			img, err := f.ps.project.Client.ShowImage(ctx, id)
			f.finish(err)
			take(id, img, err)
		})
		if err != nil {
			take(id, nil, err)
		}
		if errors.Is(err, errNotStarted) {
			late++
		}
	}
	wg.Wait()
	if late > 0 {
		level.Warn(f.ps.logger).Log("msg", "Images not fetched: scrape deadline reached", "project", f.ps.project.Name, "images", late, "err", ctx.Err())
	}
}

// spawn runs call in wg once a slot of Concurrency is free; call ends with
// finish. After a failure that concerns the whole project, or once ctx has
// ended, it runs no more calls and says why. Only run's goroutine spawns.
func (f *flight) spawn(ctx context.Context, wg *sync.WaitGroup, call func()) error {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errNotStarted, ctx.Err())
	}
	f.mu.Lock()
	err := f.projectErr
	f.mu.Unlock()
	if err == nil && ctx.Err() == nil {
		wg.Go(call)
		return nil
	}
	<-f.sem
	if err != nil {
		return fmt.Errorf("not fetched: %w", err)
	}
	return fmt.Errorf("%w: %w", errNotStarted, ctx.Err())
}

// finish ends a spawned call, taking what its answer says of the project.
func (f *flight) finish(err error) {
	defer func() { <-f.sem }() // after the answer is taken: the next call sees it
	f.mu.Lock()
	defer f.mu.Unlock()
	apiErr := modelarts.AsAPIError(err) // below: did an answer from ModelArts come back?
	notAnswered := apiErr != nil && apiErr.FromIAM() || errors.Is(err, modelarts.ErrUnreachable) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
	f.answered = f.answered || !notAnswered
	if projectWide(err) && f.projectErr == nil {
		f.projectErr = err
		kv := []any{"msg", "Failed to reach the project's images", "project", f.ps.project.Name}
		if errors.Is(err, modelarts.ErrEndpoint) {
			kv = append(kv, "hint", "check modelarts_endpoint and region")
		}
		level.Error(f.ps.logger).Log(append(kv, apiErrorKV(err)...)...)
	}
}

// notFetched returns the ids with neither an image nor an error yet.
func (f *flight) notFetched(ids []string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, id := range ids {
		_, ok := f.images[id]
		if _, failed := f.errs[id]; !ok && !failed {
			out = append(out, id)
		}
	}
	return out
}

// projectWide: credentials refused, no such API at the endpoint, or IAM failing.
func projectWide(err error) bool {
	apiErr := modelarts.AsAPIError(err)
	return errors.Is(err, modelarts.ErrUnauthorized) || errors.Is(err, modelarts.ErrEndpoint) ||
		(apiErr != nil && (apiErr.FromIAM() || apiErr.ErrorCode == "ModelArts.0210")) // 0210: project_id does not match the credentials
}

// imageNotFound reports whether err is ShowImage's answer that the image does not exist.
func imageNotFound(err error) bool {
	apiErr := modelarts.AsAPIError(err)
	return apiErr != nil && apiErr.Operation == modelarts.OpShowImage && errors.Is(apiErr, modelarts.ErrNotFound)
}

// listsEverything reports whether o lists every image of its type in workspace "0".
func listsEverything(o modelarts.ListOptions) bool {
	return o.Name == "" && o.Namespace == "" && o.ServiceType == "" && (o.WorkspaceID == "" || o.WorkspaceID == "0")
}

// apiErrorKV returns the log fields of an error.
func apiErrorKV(err error) []any {
	if apiErr := modelarts.AsAPIError(err); apiErr != nil {
		return []any{"code", apiErr.StatusCode, "error_code", apiErr.ErrorCode, "request_id", apiErr.RequestID, "err", err}
	}
	return []any{"err", err}
}

// listing is one ListImage listing (one set of filters, one type). Offset
// only picks the page (offset / limit): offsets sent are multiples of size.
type listing struct {
	opts        modelarts.ListOptions // Type always set
	discovery   bool
	size, total int   // the server's page size; the pages its total announces
	unsure      bool  // the first page was short of the total: the next goes alone
	pages, next int   // the pages to read (total, capped; before the first, a guess); the next to ask for
	read        int   // the pages that brought records
	done, cut   bool  // cut: left unread on purpose, one by one is cheaper
	err         error // why it is incomplete
	seen        map[string]bool
	ids         []string // the IDs listed, in page order
}

func (l *listing) open() bool { return !l.done && !l.cut && l.err == nil && l.next < max(l.pages, 1) }

// readPages reads the first page of every listing, or the rest, in waves of
// at most Concurrency pages a listing, taken in page order.
func (f *flight) readPages(ctx context.Context, lists []*listing, first bool) {
	for {
		var wg sync.WaitGroup
		var wave []func()
		for _, l := range lists {
			for n := 0; l.open() && n < max(f.ps.project.Concurrency, 1) && (!first || l.next == 0) && (!l.unsure || n == 0); n++ {
				opts, k := l.opts, l.next // size is 0 until the first page is read
				opts.Limit, opts.Offset = cmp.Or(l.size, listLimit), k*l.size
				var page *modelarts.ImageList
				var err error
				if e := f.spawn(ctx, &wg, func() { page, err = f.ps.project.Client.ListImages(ctx, opts); f.finish(err) }); e != nil {
					err = e
				}
				wave = append(wave, func() { f.takePage(l, k, page, err) })
				l.next++
			}
		}
		wg.Wait()
		for _, take := range wave {
			take()
		}
		if first || len(wave) == 0 {
			return
		}
	}
}

// takePage takes page k of l, or the error reading it. A listing ends at its
// total, on an empty or short page, or on ModelArts.6400 (a page past the end).
func (f *flight) takePage(l *listing, k int, page *modelarts.ImageList, err error) {
	switch {
	case l.done || l.err != nil:
		return // an earlier page ended the listing
	case errors.Is(err, modelarts.ErrEndOfList):
		l.done = true
		return
	case err != nil:
		l.err = fmt.Errorf("not listed: %w", err)
		if !projectWide(err) {
			kv := []any{"msg", "Failed to list images", "project", f.ps.project.Name, "type", l.opts.Type, "discovery", l.discovery}
			level.Warn(f.ps.logger).Log(append(kv, apiErrorKV(err)...)...)
		}
		return
	}
	n := page.Records()
	if k == 0 { // the page size is the size field; a page short of the total is a server's cap, or a lie
		l.size = listLimit
		if page.Size > 0 && page.Size <= listLimit {
			l.size = page.Size
		}
		if l.unsure = n > 0 && n < l.size && page.Total > int64(n); l.unsure {
			l.size = n
		}
		l.total = int((page.Total + int64(l.size) - 1) / int64(l.size))
		l.pages = min(max(l.total, 1), maxListPages)
	}
	added := f.addRecords(l, page)
	if added > 0 {
		l.read++
		l.unsure = l.unsure && k == 0
	}
	switch {
	case n == 0 || n < l.size:
		l.done = true
	case k > 0 && added == 0:
		l.err = errors.New("not listed: a ListImage page repeated only records already listed: the server ignores offset")
	case k+1 >= l.pages && l.total > maxListPages:
		l.err = fmt.Errorf("not listed: %w", errPageCap)
	case k+1 >= l.pages:
		l.done = true
	}
}

// addRecords takes the records of a page, the most recently updated of an
// image listed twice, and returns how many are new to l.
func (f *flight) addRecords(l *listing, page *modelarts.ImageList) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	before := len(l.ids)
	take := func(id string, img *modelarts.Image, err error) {
		if id == "" {
			return
		}
		if !l.seen[id] {
			l.seen[id] = true
			l.ids = append(l.ids, id)
		}
		if !l.discovery && !f.ps.wanted[id] {
			return // kept only for the configured IDs
		}
		old, ok := f.images[id]
		switch {
		case img == nil:
			if !ok {
				f.errs[id] = err
			}
		case !ok:
			f.images[id] = img
			delete(f.errs, id)
		case !reflect.DeepEqual(old, img):
			f.conflicts = append(f.conflicts, id)
			if img.UpdateAt > old.UpdateAt {
				f.images[id] = img
			}
		}
	}
	for i := range page.Data {
		take(page.Data[i].ID, &page.Data[i], nil)
	}
	for _, bad := range page.Invalid {
		take(bad.ID, nil, bad.Err)
	}
	return len(l.ids) - before
}
