// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/go-kit/log/level"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

var errPageCap = fmt.Errorf("ListImage paging stopped at the cap of %d pages", maxListPages)

// listing is one ListImage listing (one set of filters, one type) as the
// service pages it: offset only picks the page (page = offset / limit, the
// answer starts at page × limit), so every offset sent is a multiple of the
// page size. It ends at its total, on an empty or short page, or on
// ModelArts.6400 (a page past the end).
type listing struct {
	opts      modelarts.ListOptions // Type always set
	discovery bool

	size  int // the server's page size, from the first page
	pages int // the pages to read: 1 before the first page, then from its total
	total int // the pages the total announces, uncapped
	next  int // the next page to ask for
	read  int // the pages that brought records
	done  bool
	cut   bool  // left unread on purpose: one by one is cheaper
	err   error // why it is incomplete

	seen map[string]bool
	ids  []string // discovery: the IDs listed, in page order
}

func (l *listing) open() bool { return !l.done && !l.cut && l.err == nil && l.next < max(l.pages, 1) }

// failure is why the listing is incomplete, nil when it is complete.
func (l *listing) failure() error {
	if l.err != nil {
		return fmt.Errorf("not listed: %w", l.err)
	}
	return nil
}

// callsLeft is the calls the rest of the listings take.
func callsLeft(lists []*listing) int {
	n := 0
	for _, l := range lists {
		if l.open() {
			n += l.pages - l.next
		}
	}
	return n
}

type pageAnswer struct {
	l    *listing
	k    int
	page *modelarts.ImageList
	err  error
}

// readPages reads the first page of every listing (first), or the rest of
// every listing still open: in waves of at most Concurrency pages a listing,
// each wave's answers taken in page order, until every listing has ended.
func (f *fetcher) readPages(ctx context.Context, lists []*listing, first bool) {
	for {
		var wave []*pageAnswer
		for _, l := range lists {
			for n := 0; l.open() && n < max(f.p.Concurrency, 1) && !(first && l.next > 0); n++ {
				wave = append(wave, &pageAnswer{l: l, k: l.next})
				l.next++
			}
		}
		if len(wave) == 0 {
			return
		}
		var wg sync.WaitGroup
		for _, a := range wave {
			opts := a.l.opts
			opts.Limit, opts.Offset = listLimit, 0
			if a.k > 0 {
				opts.Limit, opts.Offset = a.l.size, a.k*a.l.size
			}
			probe, err := f.admit(ctx)
			if a.err = err; err != nil {
				continue
			}
			wg.Go(func() {
				a.page, a.err = f.p.Client.ListImages(ctx, opts)
				f.done(probe, a.err)
			})
		}
		wg.Wait()
		for _, a := range wave {
			f.takePage(a)
		}
		if first {
			return
		}
	}
}

// takePage takes one answer into its listing.
func (f *fetcher) takePage(a *pageAnswer) {
	l := a.l
	switch {
	case l.done || l.err != nil:
		return // an earlier page ended the listing
	case errors.Is(a.err, modelarts.ErrEndOfList):
		l.done = true
		return
	case a.err != nil:
		l.err = a.err
		if !projectWide(a.err) {
			level.Warn(f.logger).Log(append([]any{"msg", "Failed to list images", "project", f.p.Name, "type", l.opts.Type, "discovery", l.discovery}, apiErrorKV(a.err)...)...)
		}
		return
	}
	n := a.page.Records()
	if a.k == 0 {
		l.size = pageSize(a.page, n)
		l.total = int((a.page.Total + int64(l.size) - 1) / int64(l.size))
		l.pages = min(max(l.total, 1), maxListPages)
	}
	added := f.addRecords(l, a.page)
	if added > 0 {
		l.read++
	}
	switch {
	case n == 0 || n < l.size:
		l.done = true
	case a.k > 0 && added == 0:
		l.err = errRepeatedPage
	case a.k+1 >= l.pages && l.total > maxListPages:
		l.err = errPageCap
	case a.k+1 >= l.pages:
		l.done = true
	}
}

// pageSize is the page size the server pages with, from its first page of n
// records: its size field, which says it (200 for a page of 33 records); else
// what it sent, when it sent less than asked but announces more.
func pageSize(page *modelarts.ImageList, n int) int {
	switch {
	case page.Size > 0 && page.Size <= listLimit:
		return page.Size
	case n > 0 && n < listLimit && page.Total > int64(n):
		return n
	}
	return listLimit
}

// addRecords takes the records of a page and returns how many of them the
// listing had not seen. Of an image listed twice, the most recently updated
// record is kept; records that differ are noted as a conflict.
func (f *fetcher) addRecords(l *listing, page *modelarts.ImageList) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	added := 0
	take := func(id string, img *modelarts.Image, err error) {
		if id == "" {
			return
		}
		if !l.seen[id] {
			l.seen[id] = true
			added++
			if l.discovery {
				l.ids = append(l.ids, id)
			}
		}
		if !l.discovery && !f.wanted[id] {
			return // kept only for the configured IDs
		}
		old, ok := f.out.images[id]
		switch {
		case img == nil:
			if !ok {
				f.out.errs[id] = err
			}
		case !ok:
			f.out.images[id] = img
			delete(f.out.errs, id)
		case !reflect.DeepEqual(old, img):
			f.out.conflicts = append(f.out.conflicts, id)
			if img.UpdateAt > old.UpdateAt {
				f.out.images[id] = img
			}
		}
	}
	for i := range page.Data {
		take(page.Data[i].ID, &page.Data[i], nil)
	}
	for _, bad := range page.Invalid {
		take(bad.ID, nil, bad.Err)
	}
	return added
}

// takeDiscovered records what the listings tell beyond the images: the
// discovered IDs, and what a listing of each type costs.
func (f *fetcher) takeDiscovered(lists []*listing) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	for _, l := range lists {
		if l.discovery {
			for _, id := range l.ids {
				if !seen[id] {
					seen[id] = true
					f.out.discovered = append(f.out.discovered, id)
				}
			}
			if err := l.failure(); err != nil && f.out.discoveryErr == nil {
				f.out.discoveryErr = err
			}
		}
		switch {
		case !listsEverything(l.opts) || l.size == 0:
		case l.cut:
			f.out.pages[l.opts.Type] = l.pages
		case l.done:
			f.out.pages[l.opts.Type] = max(l.read, 1)
		}
	}
}
