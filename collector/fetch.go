// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
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
	// listLimit is the limit asked of a first ListImage page. Servers may grant
	// less; the first page's size tells the page size used for the others.
	listLimit = 1000
	// maxListPages bounds the pages read of one listing, whatever its total says.
	maxListPages = 200
	// showImageBudget is the most images fetched one by one after a listing
	// that lacks them: they take turns, so that thousands of images in another
	// workspace, or gone, do not cost a call each every scrape.
	showImageBudget = 50
	// probeWait bounds how long calls wait for the first call of a project
	// whose credentials are not proven yet (see fetcher.do).
	probeWait = 2 * time.Second
)

// imageTypes are the values of ListImage's type filter, each listed on its
// own: an untyped listing is documented to return BUILD_IN images only.
var imageTypes = []string{"BUILD_IN", "DEDICATED"}

var (
	// errFallbackBudget marks images a complete listing lacks that wait for
	// their turn of ShowImage calls.
	errFallbackBudget = fmt.Errorf("not in the listing; ShowImage fallback budget of %d per scrape spent, retried in a later scrape", showImageBudget)
	errRepeatedPage   = errors.New("a ListImage page repeated only records already listed: the server ignores offset")
)

// fetchOutcome is what one fetch of a project learnt.
type fetchOutcome struct {
	images map[string]*modelarts.Image // fetched successfully
	errs   map[string]error            // failed
	// discovered are the IDs the discovery listings returned, in their order;
	// discoveryErr is set when one of them did not complete.
	discovered   []string
	discoveryErr error
	// pages is, per image type, the calls a whole listing of it takes.
	pages map[string]int
	// fallbackNext is where the next fetch starts its turn through the IDs a
	// complete listing lacks; -1 when this fetch took no turn.
	fallbackNext int
	// projectErr is a failure that concerns every image (credentials refused,
	// wrong endpoint, IAM failing); the calls after it were not made.
	projectErr error
	// answered: a call got an answer from ModelArts; proven: one that shows
	// the credentials work.
	answered, proven bool
	// conflicts are the IDs listed twice with different values.
	conflicts []string
}

// up tells modelarts_up.
func (o *fetchOutcome) up() bool { return o.projectErr == nil && o.answered }

// fetcher runs one fetch of a project: the listings worth reading, then
// ShowImage for the configured IDs they did not cover.
type fetcher struct {
	p      *Project
	logger log.Logger
	wanted map[string]bool // the configured IDs
	// pages is what listing each type took last time; a type not in it is
	// taken as one page.
	pages        map[string]int
	fallbackFrom int

	sem      chan struct{} // bounds the calls in flight
	probed   chan struct{} // closed when the first call is answered; nil when the credentials are proven
	probeEnd time.Time     // when the others stop waiting for the first call; only run's goroutine admits calls

	mu  sync.Mutex // guards out, which a scrape that gives up reads meanwhile
	out *fetchOutcome
}

func newFetcher(p *Project, logger log.Logger, wanted map[string]bool, pages map[string]int, fallbackFrom int, proven bool) *fetcher {
	f := &fetcher{
		p: p, logger: logger, wanted: wanted, pages: pages, fallbackFrom: fallbackFrom,
		sem: make(chan struct{}, max(p.Concurrency, 1)),
		out: &fetchOutcome{images: map[string]*modelarts.Image{}, errs: map[string]error{}, pages: map[string]int{}, fallbackNext: -1, proven: proven},
	}
	if !proven {
		f.probed = make(chan struct{})
	}
	return f
}

// run fetches everything the project exports.
func (f *fetcher) run(ctx context.Context) *fetchOutcome {
	ids := f.p.ImageIDs
	if f.p.Discovery == nil && len(ids) == 0 {
		f.out.answered = true // nothing to ask: nothing failed
		return f.out
	}
	var lists []*listing
	covered := 0 // types a discovery listing lists in full
	if d := f.p.Discovery; d != nil {
		for _, t := range typesOf(d.Type) {
			opts := *d
			opts.Type = t
			lists = append(lists, &listing{opts: opts, discovery: true})
			if listsEverything(opts) {
				covered++
			}
		}
	}
	var own []*listing // listings for the configured IDs alone
	for _, t := range imageTypes {
		if !slices.ContainsFunc(lists, func(l *listing) bool { return l.opts.Type == t && listsEverything(l.opts) }) {
			own = append(own, &listing{opts: modelarts.ListOptions{Type: t}})
		}
	}
	if len(ids) == 0 || len(ids) <= f.cost(own) {
		own = nil // one ShowImage call per image is cheaper
	}
	lists = append(lists, own...)
	f.readPages(ctx, lists, true)
	if left := f.notFetched(ids); len(own) > 0 && len(left) <= callsLeft(own) {
		for _, l := range own {
			l.cut = l.open() // now that the pages are known, one by one is cheaper
		}
	}
	f.readPages(ctx, lists, false)
	f.takeDiscovered(lists)
	f.showEach(ctx, f.fallback(ids, lists, covered+len(own) == len(imageTypes)))
	return f.out
}

// cost is the calls the listings take, as learnt from the last fetches.
func (f *fetcher) cost(lists []*listing) int {
	n := 0
	for _, l := range lists {
		n += max(f.pages[l.opts.Type], 1)
	}
	return n
}

// fallback returns the configured IDs to fetch one by one, and gives the
// others their error. After complete listings of every type (listed), the IDs they
// lack (another workspace, or gone) take turns, showImageBudget a scrape;
// after a failed listing, they are fetched only if they are few, so that one
// failed call does not turn into a storm of calls.
func (f *fetcher) fallback(ids []string, lists []*listing, listed bool) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	missing := f.notFetchedLocked(ids)
	if f.out.projectErr != nil || len(missing) <= showImageBudget || !listed {
		return missing
	}
	for _, l := range lists {
		if l.cut {
			return missing
		}
		if err := l.failure(); err != nil && (!l.discovery || listsEverything(l.opts)) {
			for _, id := range missing {
				f.out.errs[id] = err
			}
			level.Warn(f.logger).Log("msg", "Not fetching the images an incomplete listing lacks one by one: too many", "project", f.p.Name, "images", len(missing), "err", err)
			return nil
		}
	}
	start := f.fallbackFrom % len(missing)
	turn := append(missing[start:], missing[:start]...)
	f.out.fallbackNext = start + showImageBudget
	for _, id := range turn[showImageBudget:] {
		f.out.errs[id] = errFallbackBudget
	}
	level.Warn(f.logger).Log("msg", "Too many configured images are not in the listing: fetching some of them one by one, the others in later scrapes",
		"project", f.p.Name, "images", len(missing), "fetched", showImageBudget)
	return turn[:showImageBudget]
}

// showEach fetches ids with one ShowImage call each, concurrently. Once ctx
// has ended no call is started; the images left are logged in one line.
func (f *fetcher) showEach(ctx context.Context, ids []string) {
	var wg sync.WaitGroup
	late := 0
	for _, id := range ids {
		probe, err := f.admit(ctx)
		if err != nil {
			late += boolInt(errors.Is(err, errNotStarted))
			f.takeShown(id, nil, err)
			continue
		}
		wg.Go(func() {
			img, err := f.p.Client.ShowImage(ctx, id)
			f.done(probe, err)
			f.takeShown(id, img, err)
		})
	}
	wg.Wait()
	if late > 0 {
		level.Warn(f.logger).Log("msg", "Images not fetched: scrape deadline reached", "project", f.p.Name, "images", late, "err", ctx.Err())
	}
}

var errNotStarted = errors.New("not fetched: the scrape ended first")

// admit waits until the fetch may make one more call, and reports whether
// that call is the probe. While the project's credentials are not proven,
// the first call goes alone and the others wait for its answer, at most
// probeWait: refused credentials then cost one call (the cloud locks an
// AK/SK pair after five bad signatures), and a slow first call holds the
// others for a moment only. After a failure that concerns the whole project
// no call is made. Every admitted call ends with done.
func (f *fetcher) admit(ctx context.Context) (probe bool, err error) {
	if f.probed != nil {
		if probe = f.probeEnd.IsZero(); probe {
			f.probeEnd = time.Now().Add(probeWait)
		} else {
			t := time.NewTimer(time.Until(f.probeEnd))
			select {
			case <-f.probed:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
	}
	if err := f.projectErr(); err != nil {
		return false, fmt.Errorf("not fetched: %w", err)
	}
	select {
	case f.sem <- struct{}{}:
		if ctx.Err() == nil {
			return probe, nil
		}
		<-f.sem
	case <-ctx.Done():
	}
	if probe {
		close(f.probed)
	}
	return false, fmt.Errorf("%w: %w", errNotStarted, ctx.Err())
}

// done ends a call admit admitted, taking what its answer says of the project.
func (f *fetcher) done(probe bool, err error) {
	<-f.sem
	f.settle(err)
	if probe {
		close(f.probed)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (f *fetcher) projectErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.projectErr
}

// settle takes what the answer of a call says about the project.
func (f *fetcher) settle(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	answered := !unanswered(err)
	f.out.answered = f.out.answered || answered
	switch {
	case projectWide(err):
		if f.out.projectErr == nil {
			f.out.projectErr, f.out.proven = err, false
			kv := []any{"msg", "Failed to reach the project's images", "project", f.p.Name}
			if errors.Is(err, modelarts.ErrEndpoint) {
				kv = append(kv, "hint", "check modelarts_endpoint and region")
			}
			level.Error(f.logger).Log(append(kv, apiErrorKV(err)...)...)
		}
	case answered:
		f.out.proven = true
	}
}

// takeShown records the answer to one ShowImage call.
func (f *fetcher) takeShown(id string, img *modelarts.Image, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		f.out.images[id] = img
		return
	}
	f.out.errs[id] = err
	if !projectWide(err) && !errors.Is(err, errNotStarted) && !errors.Is(err, f.out.projectErr) {
		logFailure(f.logger, f.p.Name, id, err)
	}
}

// notFetched returns the ids with neither an image nor an error yet.
func (f *fetcher) notFetched(ids []string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.notFetchedLocked(ids)
}

func (f *fetcher) notFetchedLocked(ids []string) []string {
	var out []string
	for _, id := range ids {
		_, ok := f.out.images[id]
		if _, failed := f.out.errs[id]; !ok && !failed {
			out = append(out, id)
		}
	}
	return out
}

// snapshot returns a copy of what the fetch has learnt so far.
func (f *fetcher) snapshot() *fetchOutcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := *f.out
	out.images, out.errs = maps.Clone(f.out.images), maps.Clone(f.out.errs)
	return &out
}

// projectWide reports whether err concerns every image of the project, not
// the one asked about: credentials refused, no such API at the endpoint, or
// IAM failing (no token, no project id).
func projectWide(err error) bool {
	apiErr := modelarts.AsAPIError(err)
	return errors.Is(err, modelarts.ErrUnauthorized) || errors.Is(err, modelarts.ErrEndpoint) || (apiErr != nil && apiErr.FromIAM())
}

// unanswered reports whether no answer from ModelArts came back.
func unanswered(err error) bool {
	if apiErr := modelarts.AsAPIError(err); apiErr != nil && apiErr.FromIAM() {
		return true
	}
	return errors.Is(err, modelarts.ErrUnreachable) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled) || errors.Is(err, errNotStarted)
}

// imageNotFound reports whether err is ShowImage's answer that the image does
// not exist. The same class from another call says nothing about an image.
func imageNotFound(err error) bool {
	apiErr := modelarts.AsAPIError(err)
	return apiErr != nil && apiErr.Operation == modelarts.OpShowImage && errors.Is(apiErr, modelarts.ErrNotFound)
}

// typesOf returns the image types a listing with type t covers.
func typesOf(t string) []string {
	if t == "" {
		return imageTypes
	}
	return []string{t}
}

// listsEverything reports whether filters list every image of their type in
// workspace "0", as a listing for the configured IDs does.
func listsEverything(o modelarts.ListOptions) bool {
	return o.Name == "" && o.Namespace == "" && o.ServiceType == "" && (o.WorkspaceID == "" || o.WorkspaceID == "0")
}

// logFailure logs one failed fetch, once, with what support needs to trace it.
func logFailure(logger log.Logger, project, id string, err error) {
	kv := append([]any{"msg", "Failed to fetch image", "project", project, "image", id}, apiErrorKV(err)...)
	level.Warn(logger).Log(kv...)
}

// apiErrorKV returns the log fields of an API error: HTTP code, error_code,
// request id and the error itself.
func apiErrorKV(err error) []any {
	var kv []any
	if apiErr := modelarts.AsAPIError(err); apiErr != nil {
		kv = append(kv, "code", apiErr.StatusCode, "error_code", apiErr.ErrorCode, "request_id", apiErr.RequestID)
	}
	return append(kv, "err", err)
}
