// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/go-kit/log"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// fakeAPI is the collector's one fake of modelarts.API, for what needs no
// HTTP (tests of the wire use the simulator, modelartstest). It lists a
// fixed set of images as the service pages them, and can misbehave the ways
// a real server might: a page size cap, a total that lies, offsets ignored,
// records invented forever, failing calls. It can hold calls until released,
// to test shared fetches and deadlines, and it counts calls and concurrency.
type fakeAPI struct {
	images  []modelarts.Image
	maxPage int // 0: no cap

	totalLie     int64 // > 0: the total every page announces
	ignoreOffset bool  // every page starts at record 0
	inventIDs    bool  // every page holds records never seen before
	echoLimit    bool  // size says the limit asked, not the one granted (maxPage)

	listErr     error // the ListImage calls from offset listErrFrom on fail with it
	listErrFrom int
	showErr     map[string]error

	// hold, when not nil, blocks calls until it is closed or the call's
	// context ends: every call, or only the ShowImage calls of the IDs in
	// holdOnly when it is set. entered, when not nil, gets one value per
	// call held.
	hold     chan struct{}
	holdOnly map[string]bool
	entered  chan string

	listCalls, showCalls atomic.Int64
	cancelled            atomic.Int64 // held calls that ended because their context did
	inFlight, maxSeen    atomic.Int64 // calls in progress; the most at once

	mu       sync.Mutex
	invented int
	lists    []modelarts.ListOptions // every ListImage query, in the order received
}

// begin counts a call of op (for image id, if any), holds it as f.hold says,
// and returns the function that ends it.
func (f *fakeAPI) begin(ctx context.Context, op, id string) (end func(), err error) {
	n := f.inFlight.Add(1)
	for m := f.maxSeen.Load(); n > m && !f.maxSeen.CompareAndSwap(m, n); m = f.maxSeen.Load() {
	}
	end = func() { f.inFlight.Add(-1) }
	if f.hold == nil || (f.holdOnly != nil && !f.holdOnly[id]) {
		return end, nil
	}
	if f.entered != nil {
		f.entered <- op + " " + id
	}
	select {
	case <-f.hold:
		return end, nil
	case <-ctx.Done():
		f.cancelled.Add(1)
		return end, &modelarts.APIError{Operation: op, Class: modelarts.ErrUnreachable, Cause: ctx.Err()}
	}
}

func (f *fakeAPI) ShowImage(ctx context.Context, id string) (*modelarts.Image, error) {
	f.showCalls.Add(1)
	end, err := f.begin(ctx, modelarts.OpShowImage, id)
	defer end()
	if err != nil {
		return nil, err
	}
	if err := f.showErr[id]; err != nil {
		return nil, err
	}
	for i := range f.images {
		if f.images[i].ID == id {
			img := f.images[i]
			return &img, nil
		}
	}
	return nil, notFoundErr()
}

func (f *fakeAPI) ListImages(ctx context.Context, opts modelarts.ListOptions) (*modelarts.ImageList, error) {
	f.listCalls.Add(1)
	f.mu.Lock()
	f.lists = append(f.lists, opts)
	f.mu.Unlock()
	end, err := f.begin(ctx, modelarts.OpListImage, "")
	defer end()
	if err != nil {
		return nil, err
	}
	if f.listErr != nil && opts.Offset >= f.listErrFrom {
		return nil, f.listErr
	}
	var matching []modelarts.Image
	for _, img := range f.images {
		if opts.Type == "" || img.Type == opts.Type {
			matching = append(matching, img)
		}
	}
	// As the service pages: offset picks the page (see modelartstest).
	limit := cmp.Or(opts.Limit, 200)
	if f.maxPage > 0 {
		limit = min(limit, f.maxPage)
	}
	start := opts.Offset / limit * limit
	if f.ignoreOffset {
		start = 0
	}
	page := &modelarts.ImageList{Total: int64(len(matching)), Size: limit, Current: start / limit}
	if f.echoLimit {
		page.Size = opts.Limit
	}
	if f.totalLie > 0 {
		page.Total = f.totalLie
	}
	if f.inventIDs {
		page.Data = f.invent(limit)
		return page, nil
	}
	if start > len(matching) {
		return nil, &modelarts.APIError{Operation: modelarts.OpListImage, StatusCode: 400, ErrorCode: "ModelArts.6400", Class: modelarts.ErrEndOfList}
	}
	page.Data = append(page.Data, matching[start:min(start+limit, len(matching))]...)
	return page, nil
}

func (f *fakeAPI) invent(n int) []modelarts.Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]modelarts.Image, n)
	for i := range out {
		f.invented++
		out[i] = modelarts.Image{ID: fmt.Sprintf("invented-%d", f.invented)}
	}
	return out
}

func (f *fakeAPI) calls() int64 { return f.listCalls.Load() + f.showCalls.Load() }

// listed returns the ListImage queries received so far.
func (f *fakeAPI) listed() []modelarts.ListOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]modelarts.ListOptions(nil), f.lists...)
}

// newFake returns a fake with n images (fakeImages) and room for errors.
func newFake(n int) *fakeAPI {
	return &fakeAPI{images: fakeImages(n), showErr: map[string]error{}}
}

// heldFake is newFake whose calls block until released.
func heldFake(n int) *fakeAPI {
	f := newFake(n)
	f.hold, f.entered = make(chan struct{}), make(chan string, 100)
	return f
}

// fakeScraper is a scraper of one project "p" on f with f's images
// configured; edit changes the project first.
func fakeScraper(f *fakeAPI, concurrency int, edit func(*Project)) *Scraper {
	p := Project{Name: "p", Client: f, ImageIDs: idsOf(f.images), Concurrency: concurrency}
	if edit != nil {
		edit(&p)
	}
	return NewScraper(log.NewNopLogger(), []Project{p})
}

// fakeImages returns n images with distinct IDs, as ListImage sorts them.
func fakeImages(n int) []modelarts.Image {
	out := make([]modelarts.Image, n)
	for i, id := range ids(n) {
		out[i] = modelarts.Image{ID: id, Name: fmt.Sprintf("image-%d", i), Type: "DEDICATED", Status: "ACTIVE", WorkspaceID: "0"}
	}
	return out
}

// ids returns n distinct image IDs in ascending order.
func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
	}
	return out
}

func idsOf(images []modelarts.Image) []string {
	out := make([]string, len(images))
	for i, img := range images {
		out[i] = img.ID
	}
	return out
}

func notFoundErr() error {
	return &modelarts.APIError{Operation: modelarts.OpShowImage, StatusCode: 400, ErrorCode: "ModelArts.6404", Class: modelarts.ErrNotFound}
}

func serverErr() error {
	return &modelarts.APIError{Operation: modelarts.OpShowImage, StatusCode: 500, Class: modelarts.ErrServer}
}
