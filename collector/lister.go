// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"strings"
	"sync"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

const (
	// listPageLimit is the limit asked of ListImage. The API documents no
	// maximum and servers cap it (the simulator at 1000) without an error; the
	// size of the first page tells the real one. 1000 listed images are about
	// 0.5 to 1 MiB of JSON, well under the client's 8 MiB cap of a page
	// (modelarts.DefaultMaxListBodyBytes).
	listPageLimit = 1000
	// maxListPages ends a listing on a server that keeps answering with new
	// records beyond its own total: 200 pages are 200,000 images at 1000 a page.
	maxListPages = 200
)

// Why a listing ended before it had read every record up to the total of its
// first page. These are the paging guards against a misbehaving server.
const (
	stopEmptyPage  = "a page came back empty before the total was reached"
	stopRepeated   = "a page repeated only records already listed"
	stopPageCap    = "the page cap was reached"
	stopNotNeeded  = "the rest was not worth reading" // see fetch.listConfigured
	stopUnanswered = "a page failed"
)

// listing is the outcome of paging through ListImage for one set of filters.
type listing struct {
	// images are the records listed, each ID once and in lower case, in
	// page order.
	images []modelarts.Image
	// invalid are the records with an ID that did not decode, each ID once
	// and not among images.
	invalid []modelarts.InvalidImage
	// total is the record count the first page announced.
	total int64
	// pageSize is the number of records the server put in the first page:
	// its real page size when the total did not fit.
	pageSize int
	// stopped says why the listing ended early; "" when it is complete.
	stopped string
	// err is the first call that failed, nil if none did.
	err error
	// answered is true when at least one call got an HTTP answer from ModelArts.
	answered bool
}

// complete reports whether every record the server announced was read.
func (res *listing) complete() bool { return res.stopped == "" }

// pages is the number of calls a whole listing takes at the server's page size.
func (res *listing) pages() int {
	if res.pageSize == 0 {
		return 1
	}
	return int(min((res.total+int64(res.pageSize)-1)/int64(res.pageSize), maxListPages))
}

// pageRequest is one ListImage call still to make.
type pageRequest struct{ offset, limit int }

// pageResult is the answer to one pageRequest.
type pageResult struct {
	req  pageRequest
	page *modelarts.ImageList
	err  error
}

// lister pages through ListImage with one set of filters.
type lister struct {
	api         modelarts.API
	filters     modelarts.ListOptions
	concurrency int
}

// list reads the first page alone: it proves the credentials and tells the
// total and the server's page size. Then, if more agrees (it is told the
// listing so far and how many calls the rest takes), it reads the rest
// concurrently, in waves of at most concurrency calls, until the total is
// reached or a paging guard trips: a failed call, an empty page, a page of
// records already listed, or maxListPages calls. A page shorter than asked
// is followed by a call for the records it left out.
func (l *lister) list(ctx context.Context, more func(sofar *listing, callsLeft int) bool) *listing {
	res := &listing{}
	seen := map[string]bool{}
	first := l.fetch(ctx, pageRequest{offset: 0, limit: listPageLimit})
	if !res.add(first, seen) {
		return res
	}
	res.total, res.pageSize = first.page.Total, first.page.Records()
	pending := followUps(res.total, res.pageSize)
	if len(pending) > 0 && !more(res, len(pending)) {
		res.stop(stopNotNeeded)
		return res
	}
	for calls := 1; len(pending) > 0 && res.complete(); {
		if calls >= maxListPages {
			res.stop(stopPageCap)
			break
		}
		n := min(len(pending), max(l.concurrency, 1), maxListPages-calls)
		wave := pending[:n]
		pending = pending[n:]
		calls += n
		for _, r := range l.fetchAll(ctx, wave) {
			if res.add(r, seen) {
				pending = append(pending, gap(r, res.total)...)
			}
		}
	}
	return res
}

// followUps plans the calls after a first page of size records: one per page
// up to total.
func followUps(total int64, size int) []pageRequest {
	if size == 0 {
		return nil
	}
	var reqs []pageRequest
	for offset := int64(size); offset < total && len(reqs) < maxListPages; offset += int64(size) {
		reqs = append(reqs, pageRequest{offset: int(offset), limit: size})
	}
	return reqs
}

// gap returns the call for the records a short page left out, if any.
func gap(r pageResult, total int64) []pageRequest {
	n := r.page.Records()
	if n == 0 || n >= r.req.limit || int64(r.req.offset+n) >= total {
		return nil
	}
	return []pageRequest{{offset: r.req.offset + n, limit: r.req.limit - n}}
}

// add takes one answer into the listing and reports whether it brought
// records, decoded or not. A failed call or a page that trips a guard ends
// the listing.
func (res *listing) add(r pageResult, seen map[string]bool) bool {
	if r.err != nil {
		if res.err == nil {
			res.err = r.err
		}
		res.answered = res.answered || !unanswered(r.err)
		res.stop(stopUnanswered)
		return false
	}
	res.answered = true
	if r.page.Records() == 0 {
		if r.req.offset > 0 || r.page.Total > 0 {
			res.stop(stopEmptyPage)
		}
		return false
	}
	added := 0
	for _, img := range r.page.Data {
		img.ID = strings.ToLower(img.ID) // as configured IDs are
		if img.ID == "" || seen[img.ID] {
			continue
		}
		seen[img.ID] = true
		res.images = append(res.images, img)
		added++
	}
	for _, bad := range r.page.Invalid {
		bad.ID = strings.ToLower(bad.ID)
		if bad.ID == "" || seen[bad.ID] {
			continue
		}
		seen[bad.ID] = true
		res.invalid = append(res.invalid, bad)
		added++
	}
	if added == 0 {
		res.stop(stopRepeated)
		return false
	}
	return true
}

// stop records the first reason the listing ended early.
func (res *listing) stop(reason string) {
	if res.stopped == "" {
		res.stopped = reason
	}
}

// fetchAll makes the calls of one wave concurrently and returns the answers
// in the order of the requests, so that records are added in page order.
func (l *lister) fetchAll(ctx context.Context, reqs []pageRequest) []pageResult {
	out := make([]pageResult, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() { out[i] = l.fetch(ctx, req) })
	}
	wg.Wait()
	return out
}

// fetch makes one ListImage call.
func (l *lister) fetch(ctx context.Context, req pageRequest) pageResult {
	opts := l.filters
	opts.Offset, opts.Limit = req.offset, req.limit
	page, err := l.api.ListImages(ctx, opts)
	return pageResult{req: req, page: page, err: err}
}
