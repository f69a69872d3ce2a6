// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// showImageBudget is the number of images below which one ShowImage call per
// image is the better deal: at most 50 calls a scrape, each failure confined
// to its image and logged with its own request id. It is also the most
// images fetched one by one after a listing failed or was cut short, so that
// one failed call cannot turn into a storm of calls to a struggling API.
const showImageBudget = 50

var (
	// errSkipped marks images not fetched because the credentials were
	// refused earlier in the same scrape.
	errSkipped = errors.New("not fetched: the credentials of this project were refused in this scrape")
	// errFallbackBudget marks images a complete listing lacks that were left
	// for a later scrape: only showImageBudget of them are fetched one by one
	// per scrape, in turn.
	errFallbackBudget = fmt.Errorf("not in the listing; ShowImage fallback budget of %d per scrape spent, retried in a later scrape", showImageBudget)
)

// imageNotFound reports whether err is ShowImage's answer that the image
// does not exist. The same class of answer from any other call (a ListImage
// 404, IAM knowing no project for the region) says nothing about the image.
func imageNotFound(err error) bool {
	apiErr := modelarts.AsAPIError(err)
	return apiErr != nil && apiErr.Operation == modelarts.OpShowImage && errors.Is(apiErr, modelarts.ErrNotFound)
}

// fetchOutcome is what one fetch of a project learned.
type fetchOutcome struct {
	images map[string]*modelarts.Image // fetched successfully
	errs   map[string]error            // failed
	// discovered are the IDs the discovery listing returned, in its order.
	discovered []string
	// discoveryErr is set when the discovery listing did not complete.
	discoveryErr error
	// listPages is the number of calls a whole unfiltered listing takes, as
	// learnt in this fetch; 0 when no unfiltered listing was read.
	listPages int
	// fallbackNext is where the next fetch starts its turn through the IDs a
	// complete listing lacks; 0 when this fetch took no turn (see capFallback).
	fallbackNext int
	// refused is the error of the call that refused the credentials.
	refused error
	// answered is true when at least one call got an HTTP answer from ModelArts.
	answered bool
}

// up tells modelarts_up: the credentials were accepted and the API answered.
func (o *fetchOutcome) up() bool { return o.refused == nil && o.answered }

// fetcher runs one fetch of a project: discovery, then the configured IDs
// through a listing or one by one, whichever costs fewer calls.
type fetcher struct {
	p      *Project
	logger log.Logger
	// expectedPages is what a whole unfiltered listing took last time; 0 unknown.
	expectedPages int
	// fallbackFrom is where this fetch starts its turn through the IDs a
	// complete listing lacks (see capFallback).
	fallbackFrom int

	// mu guards the writes to out, which a scrape that gives up reads while
	// the fetch goes on (see snapshot).
	mu  sync.Mutex
	out *fetchOutcome
	// unfilteredListed is true once a complete unfiltered listing was read:
	// the configured IDs it lacks are in another workspace, or gone, and
	// only showImageBudget of them are fetched one by one (capFallback).
	unfilteredListed bool
	// proven is true once a call succeeded: the credentials work.
	proven bool
}

func newFetcher(p *Project, logger log.Logger, expectedPages, fallbackFrom int) *fetcher {
	return &fetcher{
		p: p, logger: logger, expectedPages: expectedPages, fallbackFrom: fallbackFrom,
		out: &fetchOutcome{images: map[string]*modelarts.Image{}, errs: map[string]error{}},
	}
}

// run fetches everything the project exports.
func (f *fetcher) run(ctx context.Context) *fetchOutcome {
	if f.p.Discovery == nil && len(f.p.ImageIDs) == 0 {
		f.out.answered = true // nothing to ask: nothing failed
		return f.out
	}
	if f.p.Discovery != nil {
		f.discover(ctx, *f.p.Discovery)
	}
	missing := f.notFetched(f.p.ImageIDs)
	if f.out.refused == nil && !f.unfilteredListed && f.worthListing(len(missing)) {
		missing = f.listConfigured(ctx, missing)
	}
	if f.unfilteredListed {
		missing = f.capFallback(missing)
	}
	f.showEach(ctx, missing)
	return f.out
}

// worthListing is the strategy rule: list when the IDs outnumber both
// showImageBudget and the calls a whole listing takes (one per page, as the
// last listing of the project showed; one page before the first listing). The
// first page re-decides with exact numbers (see listConfigured).
func (f *fetcher) worthListing(ids int) bool {
	return ids > showImageBudget && ids > max(f.expectedPages, 1)
}

// discover lists the images matching the discovery filters.
func (f *fetcher) discover(ctx context.Context, filters modelarts.ListOptions) {
	l := f.lister(filters).list(ctx, func(*listing, int) bool { return true })
	f.mu.Lock()
	defer f.mu.Unlock()
	f.note(l, "discovery")
	for i := range l.images {
		img := &l.images[i]
		f.out.images[img.ID] = img
		f.out.discovered = append(f.out.discovered, img.ID)
	}
	for _, bad := range l.invalid {
		f.failed(bad.ID, bad.Err)
		f.out.discovered = append(f.out.discovered, bad.ID)
	}
	if !l.complete() {
		f.out.discoveryErr = listingError(l)
	}
	if listsEverything(filters) {
		f.noteUnfiltered(l)
	}
}

// noteUnfiltered keeps what an unfiltered listing tells about the project:
// how many pages a listing takes, and whether this one saw every image.
// f.mu must be held.
func (f *fetcher) noteUnfiltered(l *listing) {
	if l.pageSize > 0 {
		f.out.listPages = l.pages()
	}
	f.unfilteredListed = l.complete()
}

// listConfigured looks for the ids in an unfiltered listing and returns those
// still to be fetched one by one. Having read the first page, it reads on
// only while the ids still missing outnumber the calls the rest takes.
func (f *fetcher) listConfigured(ctx context.Context, ids []string) []string {
	wanted := make(map[string]bool, len(ids))
	for _, id := range ids {
		wanted[id] = true
	}
	l := f.lister(modelarts.ListOptions{}).list(ctx, func(sofar *listing, callsLeft int) bool {
		return len(ids)-countWanted(sofar, wanted) > callsLeft
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	f.note(l, "configured images")
	f.noteUnfiltered(l)
	for _, img := range l.images {
		if wanted[img.ID] {
			f.out.images[img.ID] = &img // a copy: the rest of the listing is not kept
		}
	}
	for _, bad := range l.invalid {
		if wanted[bad.ID] {
			f.failed(bad.ID, bad.Err) // fetching it again would cost a call to learn the same
		}
	}
	missing := f.notFetched(ids)
	if l.complete() || l.stopped == stopNotNeeded || f.out.refused != nil || len(missing) <= showImageBudget {
		return missing
	}
	err := listingError(l)
	for _, id := range missing {
		f.out.errs[id] = err
	}
	level.Warn(f.logger).Log("msg", "Not fetching the images an incomplete listing lacks one by one: too many", "project", f.p.Name, "images", len(missing), "err", err)
	return nil
}

// capFallback returns the ids to fetch one by one out of those a complete
// unfiltered listing lacks: all of them up to showImageBudget, else
// showImageBudget of them, in turn from scrape to scrape. The others get
// errFallbackBudget: fetching thousands of images that are in another
// workspace or gone one by one would cost a call each, every scrape.
func (f *fetcher) capFallback(ids []string) []string {
	if len(ids) <= showImageBudget {
		return ids
	}
	start := f.fallbackFrom % len(ids)
	turn := append(slices.Clone(ids[start:]), ids[:start]...)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.out.fallbackNext = start + showImageBudget
	for _, id := range turn[showImageBudget:] {
		f.out.errs[id] = errFallbackBudget
	}
	level.Warn(f.logger).Log("msg", "Too many configured images are not in the listing: fetching some of them one by one, the others in later scrapes",
		"project", f.p.Name, "images", len(ids), "fetched", showImageBudget)
	return turn[:showImageBudget]
}

// showEach fetches ids with one ShowImage call each. Until a call has been
// answered, the first one goes alone: refused credentials then cost one
// call, not one per image (the cloud locks an AK/SK pair after five bad
// signatures).
func (f *fetcher) showEach(ctx context.Context, ids []string) {
	if len(ids) > 0 && f.out.refused == nil && !f.proven && ctx.Err() == nil {
		f.showConcurrently(ctx, ids[:1])
		ids = ids[1:]
	}
	if f.out.refused != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, id := range ids {
			f.out.errs[id] = errSkipped
		}
		return
	}
	f.showConcurrently(ctx, ids)
}

// showConcurrently calls ShowImage for every id, at most Concurrency at
// once, and records each answer as it comes. Once ctx has ended, it starts
// no more calls: the images left get the error of ctx, with one log line
// for all of them.
func (f *fetcher) showConcurrently(ctx context.Context, ids []string) {
	sem := make(chan struct{}, max(f.p.Concurrency, 1))
	var wg sync.WaitGroup
	for i, id := range ids {
		if !acquire(ctx, sem) {
			f.notStarted(ids[i:], ctx.Err())
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			img, err := f.p.Client.ShowImage(ctx, id)
			f.takeShown(id, img, err)
		})
	}
	wg.Wait()
}

// acquire takes a slot of sem, unless ctx ends first.
func acquire(ctx context.Context, sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		if ctx.Err() != nil {
			<-sem
			return false
		}
		return true
	case <-ctx.Done():
		return false
	}
}

// notStarted records the images whose ShowImage call was not made because
// the fetch's context ended with err, and logs them in one line.
func (f *fetcher) notStarted(ids []string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	late := fmt.Errorf("not fetched: the scrape ended first: %w", err)
	for _, id := range ids {
		f.out.errs[id] = late
	}
	level.Warn(f.logger).Log("msg", "Images not fetched: scrape deadline reached", "project", f.p.Name, "images", len(ids), "err", err)
}

// takeShown records the answer to one ShowImage call.
func (f *fetcher) takeShown(id string, img *modelarts.Image, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.out.answered = f.out.answered || !unanswered(err)
		f.proven = f.proven || imageNotFound(err)
		f.observe(err)
		f.failed(id, err)
		return
	}
	if lower := strings.ToLower(img.ID); lower != img.ID {
		c := *img // the API's image may be shared: change a copy
		c.ID = lower
		img = &c
	}
	f.out.images[id] = img
	f.out.answered, f.proven = true, true
}

// failed records and logs the failure of one image. f.mu must be held.
func (f *fetcher) failed(id string, err error) {
	f.out.errs[id] = err
	logFailure(f.logger, f.p.Name, id, err)
}

// snapshot returns a copy of what the fetch has learnt so far.
func (f *fetcher) snapshot() *fetchOutcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := *f.out
	out.images, out.errs = maps.Clone(f.out.images), maps.Clone(f.out.errs)
	return &out
}

// note takes what a listing says about the credentials and the API, and logs
// why it failed or ended early. f.mu must be held.
func (f *fetcher) note(l *listing, what string) {
	f.out.answered = f.out.answered || l.answered
	f.proven = f.proven || l.pageSize > 0 || (l.answered && l.err == nil)
	switch {
	case l.err != nil:
		f.observe(l.err)
		kv := append([]any{"msg", "Failed to list images", "project", f.p.Name, "listing", what}, apiErrorKV(l.err)...)
		level.Warn(f.logger).Log(kv...)
	case !l.complete() && l.stopped != stopNotNeeded:
		level.Warn(f.logger).Log("msg", "Stopped paging ListImage early", "project", f.p.Name, "listing", what, "reason", l.stopped, "total", l.total, "listed", len(l.images))
	}
}

// observe notes a refusal of the credentials. f.mu must be held.
func (f *fetcher) observe(err error) {
	if authRefused(err) && f.out.refused == nil {
		f.out.refused = err
	}
}

func (f *fetcher) lister(filters modelarts.ListOptions) *lister {
	return &lister{api: f.p.Client, filters: filters, concurrency: f.p.Concurrency}
}

// notFetched returns the ids with neither an image nor an error yet.
func (f *fetcher) notFetched(ids []string) []string {
	var out []string
	for _, id := range ids {
		if _, ok := f.out.images[id]; ok {
			continue
		}
		if _, ok := f.out.errs[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

// countWanted counts the wanted IDs a listing holds, decoded or not.
func countWanted(l *listing, wanted map[string]bool) int {
	n := 0
	for _, img := range l.images {
		if wanted[img.ID] {
			n++
		}
	}
	for _, bad := range l.invalid {
		if wanted[bad.ID] {
			n++
		}
	}
	return n
}

// listsEverything reports whether filters list what an unfiltered ListImage
// lists: every image of workspace "0".
func listsEverything(filters modelarts.ListOptions) bool {
	return filters.Name == "" && filters.Namespace == "" && filters.ServiceType == "" && filters.Type == "" &&
		(filters.WorkspaceID == "" || filters.WorkspaceID == "0")
}

// listingError is why the images an incomplete listing lacks were not fetched.
func listingError(l *listing) error {
	if l.err != nil {
		return fmt.Errorf("not listed: %w", l.err)
	}
	return fmt.Errorf("not listed: ListImage paging stopped early: %s", l.stopped)
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

func authRefused(err error) bool {
	return errors.Is(err, modelarts.ErrUnauthorized) || errors.Is(err, modelarts.ErrForbidden)
}

// unanswered reports whether err means that the ModelArts API did not
// answer: no HTTP answer arrived, or the call failed at IAM, whatever IAM said.
func unanswered(err error) bool {
	if apiErr := modelarts.AsAPIError(err); apiErr != nil && apiErr.FromIAM() {
		return true
	}
	return errors.Is(err, modelarts.ErrUnreachable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
