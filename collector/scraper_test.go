// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// fakeAPI answers ShowImage from a table; it tracks calls and concurrency.
type fakeAPI struct {
	images   map[string]*modelarts.Image
	errs     map[string]error
	delay    time.Duration
	calls    atomic.Int64
	inFlight atomic.Int64
	maxSeen  atomic.Int64
}

func (f *fakeAPI) ShowImage(ctx context.Context, id string) (*modelarts.Image, error) {
	f.calls.Add(1)
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxSeen.Load()
		if n <= m || f.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return nil, &modelarts.APIError{Operation: "ShowImage", Class: modelarts.ErrUnreachable, Cause: ctx.Err()}
		}
	}
	if err := f.errs[id]; err != nil {
		return nil, err
	}
	if img := f.images[id]; img != nil {
		return img, nil
	}
	return nil, &modelarts.APIError{Operation: "ShowImage", StatusCode: 400, ErrorCode: "ModelArts.6404", Class: modelarts.ErrNotFound}
}

func (f *fakeAPI) ListImages(context.Context, modelarts.ListOptions) (*modelarts.ImageList, error) {
	return nil, errors.New("not used")
}

// preferShow makes the projects of s fetch their images one by one, as for
// projects whose listings cost more calls than they have images.
func preferShow(s *Scraper) *Scraper {
	for _, ps := range s.states {
		ps.pages, ps.pagesAt = map[string]int{"BUILD_IN": maxListPages, "DEDICATED": maxListPages}, ps.now()
	}
	return s
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
	}
	return out
}

func TestScrapeConcurrencyBound(t *testing.T) {
	api := &fakeAPI{images: map[string]*modelarts.Image{}, delay: 5 * time.Millisecond}
	for _, id := range ids(40) {
		api.images[id] = &modelarts.Image{ID: id, Status: "ACTIVE"}
	}
	s := preferShow(NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: api, ImageIDs: ids(40), Concurrency: 4}}))
	res := s.Scrape(context.Background())
	if got := api.calls.Load(); got != 40 {
		t.Errorf("calls = %d, want 40", got)
	}
	if got := api.maxSeen.Load(); got > 4 || got < 2 {
		t.Errorf("max in flight = %d, want between 2 and 4", got)
	}
	if !res[0].Up {
		t.Error("project down, want up")
	}
	for _, r := range res[0].Images {
		if r.Image == nil {
			t.Errorf("%s: %v", r.ID, r.Err)
		}
	}
}

func TestScrapeStopsAfterRefusedCredentials(t *testing.T) {
	for _, tt := range []struct {
		class     error
		wantCalls int64
		wantUp    bool
	}{
		{modelarts.ErrUnauthorized, 1, false}, // refused: one call, not one per image
		{modelarts.ErrForbidden, 10, true},    // no permission on each image: that image only
	} {
		t.Run(tt.class.Error(), func(t *testing.T) {
			all := ids(10)
			api := &fakeAPI{errs: map[string]error{}}
			for _, id := range all {
				api.errs[id] = &modelarts.APIError{Operation: "ShowImage", StatusCode: 403, ErrorCode: "ModelArts.0206", Class: tt.class}
			}
			// One call at a time: after a refusal, no call is started.
			s := preferShow(NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: api, ImageIDs: all, Concurrency: 1}}))
			res := s.Scrape(context.Background())
			if got := api.calls.Load(); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
			if res[0].Up != tt.wantUp {
				t.Errorf("modelarts_up = %v, want %v", res[0].Up, tt.wantUp)
			}
			for _, r := range res[0].Images {
				if r.Image != nil || r.Err == nil {
					t.Errorf("%s: want a failed image", r.ID)
				}
			}
		})
	}
}

func TestScrapeOneFailureSparesTheOthers(t *testing.T) {
	all := ids(5)
	api := &fakeAPI{images: map[string]*modelarts.Image{}, errs: map[string]error{
		all[2]: &modelarts.APIError{Operation: "ShowImage", StatusCode: 500, Class: modelarts.ErrServer, RequestID: "req-1"},
	}}
	for _, id := range all {
		api.images[id] = &modelarts.Image{ID: id}
	}
	var logs bytes.Buffer
	s := preferShow(NewScraper(log.NewLogfmtLogger(&logs), []Project{{Name: "p", Client: api, ImageIDs: all, Concurrency: 3}}))
	res := s.Scrape(context.Background())
	if !res[0].Up {
		t.Error("project down because of one 500")
	}
	for i, r := range res[0].Images {
		if failed := r.Image == nil; failed != (i == 2) {
			t.Errorf("image %d failed=%v", i, failed)
		}
	}
	if n := strings.Count(logs.String(), "Failed to fetch image"); n != 1 {
		t.Errorf("logged %d failures, want 1:\n%s", n, logs.String())
	}
	for _, want := range []string{"level=warn", "image=" + all[2], "code=500", "request_id=req-1"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log line lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestScrapeDeadline(t *testing.T) {
	all := ids(3)
	api := &fakeAPI{images: map[string]*modelarts.Image{}, delay: time.Minute}
	s := preferShow(NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: api, ImageIDs: all, Concurrency: 3}}))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan []ProjectResult)
	go func() { done <- s.Scrape(ctx) }()
	select {
	case res := <-done:
		if res[0].Up {
			t.Error("project up although no call got an answer")
		}
		for _, r := range res[0].Images {
			if !errors.Is(r.Err, context.DeadlineExceeded) {
				t.Errorf("%s: err = %v, want the deadline", r.ID, r.Err)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("scrape did not end at the deadline")
	}
}

func TestScrapeProjectsIndependently(t *testing.T) {
	good := &fakeAPI{images: map[string]*modelarts.Image{ids(1)[0]: {ID: ids(1)[0]}}}
	bad := &fakeAPI{errs: map[string]error{ids(1)[0]: &modelarts.APIError{Operation: "ShowImage", StatusCode: 401, Class: modelarts.ErrUnauthorized}}}
	s := NewScraper(log.NewNopLogger(), []Project{
		{Name: "good", Client: good, ImageIDs: ids(1), Concurrency: 1},
		{Name: "bad", Client: bad, ImageIDs: ids(1), Concurrency: 1},
	})
	res := s.Scrape(context.Background())
	if !res[0].Up || res[1].Up {
		t.Errorf("up = %v/%v, want true/false", res[0].Up, res[1].Up)
	}
}

// TestScrapeProjectAndLatest: ScrapeProject scrapes one project, sharing a
// fetch in flight with Scrape; Latest returns the newest results without a
// call, with the project's error.
func TestScrapeProjectAndLatest(t *testing.T) {
	refusal := &modelarts.APIError{Operation: "ShowImage", StatusCode: 401, Class: modelarts.ErrUnauthorized, RequestID: "req-9"}
	good := &fakeAPI{images: map[string]*modelarts.Image{ids(1)[0]: {ID: ids(1)[0]}}, delay: 500 * time.Millisecond}
	bad := &fakeAPI{errs: map[string]error{ids(1)[0]: refusal}}
	s := preferShow(NewScraper(log.NewNopLogger(), []Project{
		{Name: "good", Client: good, ImageIDs: ids(1), Concurrency: 1},
		{Name: "bad", Client: bad, ImageIDs: ids(1), Concurrency: 1},
	}))
	if got := s.ProjectNames(); !slices.Equal(got, []string{"good", "bad"}) {
		t.Errorf("ProjectNames() = %v", got)
	}
	if latest := s.Latest(); len(latest) != 2 || latest[0].Name != "good" || !latest[0].Start.IsZero() || latest[0].Images != nil {
		t.Errorf("Latest() before any fetch = %+v, want the names alone", latest)
	}
	if res := s.ScrapeProject(context.Background(), "nope"); res != nil {
		t.Errorf("ScrapeProject of an unknown project = %+v, want nil", res)
	}

	var wg sync.WaitGroup
	wg.Go(func() { s.Scrape(context.Background()) })
	res := s.ScrapeProject(context.Background(), "good")
	wg.Wait()
	if len(res) != 1 || res[0].Name != "good" || !res[0].Up || res[0].Start.IsZero() {
		t.Errorf("ScrapeProject(good) = %+v", res)
	}
	if n := good.calls.Load(); n != 1 {
		t.Errorf("%d calls for a Scrape and a ScrapeProject at once, want 1 (one shared fetch)", n)
	}
	calls := good.calls.Load() + bad.calls.Load()
	latest := s.Latest()
	if !latest[0].Up || latest[0].Err != nil || latest[1].Up || !errors.Is(latest[1].Err, modelarts.ErrUnauthorized) ||
		modelarts.AsAPIError(latest[1].Err).RequestID != "req-9" || len(latest[1].Images) != 1 {
		t.Errorf("Latest() = %+v, want good up and bad down with the refusal", latest)
	}
	if after := good.calls.Load() + bad.calls.Load(); after != calls {
		t.Errorf("Latest made %d calls", after-calls)
	}
}
