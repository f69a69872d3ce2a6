// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"errors"
	"testing"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// TestListerPagingGuards: paging ends on a server that misbehaves, with a
// number of calls known in advance, and never lists an image twice.
func TestListerPagingGuards(t *testing.T) {
	const concurrency = 4
	tests := []struct {
		name         string
		fake         *pagingFake
		wantCalls    int64
		wantImages   int
		wantStopped  string
		wantComplete bool
	}{
		{
			name: "pages of the asked size", fake: &pagingFake{images: fakeImages(2500)},
			wantCalls: 3, wantImages: 2500, wantComplete: true,
		},
		{
			name: "server caps the page size at 200", fake: &pagingFake{images: fakeImages(2500), maxPage: 200},
			wantCalls: 13, wantImages: 2500, wantComplete: true,
		},
		{
			name: "everything fits the first page", fake: &pagingFake{images: fakeImages(7)},
			wantCalls: 1, wantImages: 7, wantComplete: true,
		},
		{
			name: "no images at all", fake: &pagingFake{},
			wantCalls: 1, wantImages: 0, wantComplete: true,
		},
		{
			name: "short pages are completed by a call for the rest", fake: &pagingFake{images: fakeImages(1000), maxPage: 300, shortBy: 50},
			wantCalls: 6, wantImages: 1000, wantComplete: true,
		},
		{
			name: "offset ignored: the repeated page ends the listing", fake: &pagingFake{images: fakeImages(5000), ignoreOffset: true},
			wantCalls: 1 + concurrency, wantImages: 1000, wantStopped: stopRepeated,
		},
		{
			name: "total lies: the empty page ends the listing", fake: &pagingFake{images: fakeImages(1500), totalLie: 1_000_000_000},
			wantCalls: 1 + concurrency, wantImages: 1500, wantStopped: stopEmptyPage,
		},
		{
			name: "new records forever: the page cap ends the listing", fake: &pagingFake{totalLie: 1_000_000_000, inventIDs: true},
			wantCalls: maxListPages, wantImages: maxListPages * listPageLimit, wantStopped: stopPageCap,
		},
		{
			name: "first page empty although the total says otherwise", fake: &pagingFake{totalLie: 10},
			wantCalls: 1, wantImages: 0, wantStopped: stopEmptyPage,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &lister{api: tt.fake, concurrency: concurrency}
			res := l.list(context.Background(), func(*listing, int) bool { return true })
			if got := tt.fake.listCalls.Load(); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
			if len(res.images) != tt.wantImages {
				t.Errorf("images = %d, want %d", len(res.images), tt.wantImages)
			}
			if res.complete() != tt.wantComplete || res.stopped != tt.wantStopped {
				t.Errorf("complete = %v, stopped = %q; want %v, %q", res.complete(), res.stopped, tt.wantComplete, tt.wantStopped)
			}
			seen := map[string]bool{}
			for _, img := range res.images {
				if seen[img.ID] {
					t.Fatalf("image %s listed twice", img.ID)
				}
				seen[img.ID] = true
			}
		})
	}
}

func TestListerOverlappingPagesAreDeduplicated(t *testing.T) {
	// A server whose pages after the first begin 100 records too early, as
	// when images are inserted while the exporter pages.
	f := &pagingFake{images: fakeImages(1500), maxPage: 1000}
	l := &lister{api: overlapping{f, 100}, concurrency: 2}
	res := l.list(context.Background(), func(*listing, int) bool { return true })
	if len(res.images) != 1500 || !res.complete() {
		t.Errorf("images = %d, complete = %v; want 1500, true", len(res.images), res.complete())
	}
}

// overlapping shifts every page after the first back by n records.
type overlapping struct {
	*pagingFake
	n int
}

func (o overlapping) ListImages(ctx context.Context, opts modelarts.ListOptions) (*modelarts.ImageList, error) {
	if opts.Offset > 0 {
		opts.Offset -= o.n
	}
	return o.pagingFake.ListImages(ctx, opts)
}

func TestListerStopsAfterMoreSaysNo(t *testing.T) {
	f := &pagingFake{images: fakeImages(5000)}
	l := &lister{api: f, concurrency: 4}
	var callsLeft int
	res := l.list(context.Background(), func(_ *listing, left int) bool { callsLeft = left; return false })
	if f.listCalls.Load() != 1 || callsLeft != 4 || res.stopped != stopNotNeeded || res.pages() != 5 {
		t.Errorf("calls = %d, callsLeft = %d, stopped = %q, pages = %d; want 1, 4, %q, 5",
			f.listCalls.Load(), callsLeft, res.stopped, res.pages(), stopNotNeeded)
	}
}

func TestListerFailedPage(t *testing.T) {
	f := &pagingFake{images: fakeImages(10), listErr: serverErr()}
	l := &lister{api: f, concurrency: 4}
	res := l.list(context.Background(), func(*listing, int) bool { return true })
	if !errors.Is(res.err, f.listErr) || res.complete() || !res.answered {
		t.Errorf("err = %v, complete = %v, answered = %v", res.err, res.complete(), res.answered)
	}
}

// TestListerCountsUndecodedRecords: records that did not decode count for
// the paging like the others: a page made only of them is neither empty nor
// repeated, and each is listed once.
func TestListerCountsUndecodedRecords(t *testing.T) {
	f := &pagingFake{images: fakeImages(2500)}
	l := &lister{api: undecoded{f}, concurrency: 4}
	res := l.list(context.Background(), func(*listing, int) bool { return true })
	if f.listCalls.Load() != 3 || !res.complete() || len(res.images) != 1000 || len(res.invalid) != 1500 {
		t.Errorf("calls = %d, complete = %v (%s), images = %d, invalid = %d; want 3, true, 1000, 1500",
			f.listCalls.Load(), res.complete(), res.stopped, len(res.images), len(res.invalid))
	}
}

// undecoded makes every record after the first page one that did not decode.
type undecoded struct{ *pagingFake }

func (u undecoded) ListImages(ctx context.Context, opts modelarts.ListOptions) (*modelarts.ImageList, error) {
	page, err := u.pagingFake.ListImages(ctx, opts)
	if err != nil || opts.Offset == 0 {
		return page, err
	}
	for _, img := range page.Data {
		page.Invalid = append(page.Invalid, modelarts.InvalidImage{ID: img.ID, Err: &modelarts.APIError{Operation: "ListImage", Class: modelarts.ErrMalformedResponse}})
	}
	page.Data = nil
	return page, nil
}
