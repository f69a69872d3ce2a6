// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// pagingFake is a modelarts.API that lists a fixed set of images and can
// misbehave the ways a real server might: a page size cap, a total that
// lies, offsets ignored, pages cut short, records invented forever. It can
// also hold every call until released, to test shared fetches.
type pagingFake struct {
	images   []modelarts.Image
	unlisted map[string]*modelarts.Image // ShowImage finds them, ListImage does not (another workspace)
	maxPage  int                         // 0: no cap

	totalLie     int64 // > 0: the total every page announces
	ignoreOffset bool  // every page starts at record 0
	inventIDs    bool  // every page holds records never seen before
	echoLimit    bool  // size says the limit asked, not the one granted (maxPage)

	listErr error // every ListImage fails with it
	showErr map[string]error

	// hold, when not nil, blocks every call until it is closed or the
	// call's context ends; entered gets one value per call that blocks.
	hold    chan struct{}
	entered chan string

	listCalls, showCalls atomic.Int64
	cancelled            atomic.Int64 // calls that ended because their context did

	mu       sync.Mutex
	invented int
}

func (f *pagingFake) wait(ctx context.Context, what string) error {
	if f.hold == nil {
		return nil
	}
	if f.entered != nil {
		f.entered <- what
	}
	select {
	case <-f.hold:
		return nil
	case <-ctx.Done():
		f.cancelled.Add(1)
		return &modelarts.APIError{Operation: what, Class: modelarts.ErrUnreachable, Cause: ctx.Err()}
	}
}

func (f *pagingFake) ShowImage(ctx context.Context, id string) (*modelarts.Image, error) {
	f.showCalls.Add(1)
	if err := f.wait(ctx, "ShowImage"); err != nil {
		return nil, err
	}
	if err := f.showErr[id]; err != nil {
		return nil, err
	}
	if img := f.unlisted[id]; img != nil {
		return img, nil
	}
	for i := range f.images {
		if f.images[i].ID == id {
			img := f.images[i]
			return &img, nil
		}
	}
	return nil, notFoundErr()
}

func (f *pagingFake) ListImages(ctx context.Context, opts modelarts.ListOptions) (*modelarts.ImageList, error) {
	f.listCalls.Add(1)
	if err := f.wait(ctx, "ListImage"); err != nil {
		return nil, err
	}
	if f.listErr != nil {
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
		return nil, &modelarts.APIError{Operation: "ListImage", StatusCode: 400, ErrorCode: "ModelArts.6400", Class: modelarts.ErrEndOfList}
	}
	page.Data = append(page.Data, matching[start:min(start+limit, len(matching))]...)
	return page, nil
}

func (f *pagingFake) invent(n int) []modelarts.Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]modelarts.Image, n)
	for i := range out {
		f.invented++
		out[i] = modelarts.Image{ID: fmt.Sprintf("invented-%d", f.invented)}
	}
	return out
}

func (f *pagingFake) calls() int64 { return f.listCalls.Load() + f.showCalls.Load() }

// fakeImages returns n images with distinct IDs, as ListImage sorts them.
func fakeImages(n int) []modelarts.Image {
	out := make([]modelarts.Image, n)
	for i, id := range ids(n) {
		out[i] = modelarts.Image{ID: id, Name: fmt.Sprintf("image-%d", i), Type: "DEDICATED", Status: "ACTIVE", WorkspaceID: "0"}
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
	return &modelarts.APIError{Operation: "ShowImage", StatusCode: 400, ErrorCode: "ModelArts.6404", Class: modelarts.ErrNotFound}
}

func serverErr() error {
	return &modelarts.APIError{Operation: "ShowImage", StatusCode: 500, Class: modelarts.ErrServer}
}
