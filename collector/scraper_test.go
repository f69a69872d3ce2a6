// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// preferShow makes the projects of s fetch their images one by one, as for
// projects whose listings cost more calls than they have images.
func preferShow(s *Scraper) *Scraper {
	for _, ps := range s.states {
		ps.pages, ps.pagesAt = map[string]int{"BUILD_IN": maxListPages, "DEDICATED": maxListPages}, ps.now()
	}
	return s
}

// TestScrapeConcurrencyBound: a project's calls in flight never exceed its
// concurrency, and reach it.
func TestScrapeConcurrencyBound(t *testing.T) {
	t.Parallel()
	f := heldFake(40)
	s := preferShow(fakeScraper(f, 4, nil))
	done := make(chan []ProjectResult)
	go func() { done <- s.Scrape(context.Background()) }()
	for range 4 {
		<-f.entered
	}
	close(f.hold)
	res := <-done
	assertAllUp(t, res[0], 40)
	if got := f.showCalls.Load(); got != 40 {
		t.Errorf("calls = %d, want 40", got)
	}
	if got := f.maxSeen.Load(); got != 4 {
		t.Errorf("max in flight = %d, want 4", got)
	}
}

// TestScrapeStopsAfterRefusedCredentials: refused credentials (401) stop the
// project's calls after the first, and down the project; a 403 on each image
// downs that image only.
func TestScrapeStopsAfterRefusedCredentials(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		class     error
		wantCalls int64
		wantUp    bool
	}{
		{modelarts.ErrUnauthorized, 1, false}, // refused: one call, not one per image
		{modelarts.ErrForbidden, 10, true},    // no permission on each image: that image only
	} {
		t.Run(tt.class.Error(), func(t *testing.T) {
			f := newFake(10)
			for _, id := range idsOf(f.images) {
				f.showErr[id] = &modelarts.APIError{Operation: modelarts.OpShowImage, StatusCode: 403, ErrorCode: "ModelArts.0206", Class: tt.class}
			}
			// One call at a time: after a refusal, no call is started.
			res := preferShow(fakeScraper(f, 1, nil)).Scrape(context.Background())
			if got := f.showCalls.Load(); got != tt.wantCalls {
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

// TestScrapeOneFailureSparesTheOthers: a 500 on one image downs that image
// only, and is logged once at warn with its code and request id.
func TestScrapeOneFailureSparesTheOthers(t *testing.T) {
	t.Parallel()
	f := newFake(5)
	bad := f.images[2].ID
	f.showErr[bad] = &modelarts.APIError{Operation: modelarts.OpShowImage, StatusCode: 500, Class: modelarts.ErrServer, RequestID: "req-1"}
	var logs bytes.Buffer
	s := preferShow(NewScraper(log.NewLogfmtLogger(&logs), []Project{{Name: "p", Client: f, ImageIDs: idsOf(f.images), Concurrency: 3}}))
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
	for _, want := range []string{"level=warn", "image=" + bad, "code=500", "request_id=req-1"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log line lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestScrapeDeadline: a scrape ends at its context's deadline although no
// call answered; every image is down with the deadline as its error.
func TestScrapeDeadline(t *testing.T) {
	t.Parallel()
	f := heldFake(3) // never released
	s := preferShow(fakeScraper(f, 3, nil))
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

// TestScrapeProjectsIndependently: one project's refused credentials do not
// down another project.
func TestScrapeProjectsIndependently(t *testing.T) {
	t.Parallel()
	good, bad := newFake(1), newFake(1)
	bad.showErr[bad.images[0].ID] = &modelarts.APIError{Operation: modelarts.OpShowImage, StatusCode: 401, Class: modelarts.ErrUnauthorized}
	s := preferShow(NewScraper(log.NewNopLogger(), []Project{
		{Name: "good", Client: good, ImageIDs: idsOf(good.images), Concurrency: 1},
		{Name: "bad", Client: bad, ImageIDs: idsOf(bad.images), Concurrency: 1},
	}))
	res := s.Scrape(context.Background())
	if !res[0].Up || res[1].Up {
		t.Errorf("up = %v/%v, want true/false", res[0].Up, res[1].Up)
	}
}

// TestScrapeProjectAndLatest: ScrapeProject scrapes one project, sharing a
// fetch in flight with Scrape; Latest returns the newest results without a
// call, with the project's error.
func TestScrapeProjectAndLatest(t *testing.T) {
	t.Parallel()
	refusal := &modelarts.APIError{Operation: modelarts.OpShowImage, StatusCode: 401, Class: modelarts.ErrUnauthorized, RequestID: "req-9"}
	good, bad := heldFake(1), newFake(1)
	bad.showErr[bad.images[0].ID] = refusal
	s := preferShow(NewScraper(log.NewNopLogger(), []Project{
		{Name: "good", Client: good, ImageIDs: idsOf(good.images), Concurrency: 1},
		{Name: "bad", Client: bad, ImageIDs: idsOf(bad.images), Concurrency: 1},
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
	<-good.entered // the Scrape's fetch of good is in flight
	one := make(chan []ProjectResult, 1)
	go func() { one <- s.ScrapeProject(context.Background(), "good") }()
	waitFor(t, "ScrapeProject to join the fetch", func() bool { return s.states[0].waitersNow() == 2 })
	close(good.hold)
	res := <-one
	wg.Wait()
	if len(res) != 1 || res[0].Name != "good" || !res[0].Up || res[0].Start.IsZero() {
		t.Errorf("ScrapeProject(good) = %+v", res)
	}
	if n := good.calls(); n != 1 {
		t.Errorf("%d calls for a Scrape and a ScrapeProject at once, want 1 (one shared fetch)", n)
	}
	calls := good.calls() + bad.calls()
	latest := s.Latest()
	if !latest[0].Up || latest[0].Err != nil || latest[1].Up || !errors.Is(latest[1].Err, modelarts.ErrUnauthorized) ||
		modelarts.AsAPIError(latest[1].Err).RequestID != "req-9" || len(latest[1].Images) != 1 {
		t.Errorf("Latest() = %+v, want good up and bad down with the refusal", latest)
	}
	if after := good.calls() + bad.calls(); after != calls {
		t.Errorf("Latest made %d calls", after-calls)
	}
}
