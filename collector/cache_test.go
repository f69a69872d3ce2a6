// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// testClock is a settable clock for the refresh interval and stale values.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Unix(1_800_000_000, 0)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// waitFor polls cond until it holds; the test fails after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waiters returns how many scrapes wait for the fetch in flight.
func (ps *projectState) waitersNow() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.inFlight == nil {
		return 0
	}
	return ps.inFlight.waiters
}

// heldFake returns a fake with n images whose calls block until released.
func heldFake(n int) *pagingFake {
	return &pagingFake{images: fakeImages(n), hold: make(chan struct{}), entered: make(chan string, 100)}
}

// startScrape runs s.Scrape(ctx) in the background.
func startScrape(ctx context.Context, s *Scraper) <-chan ProjectResult {
	out := make(chan ProjectResult, 1)
	go func() { out <- s.Scrape(ctx)[0] }()
	return out
}

// TestTwoConcurrentScrapesCauseOneFetch: a scrape that arrives while a fetch
// runs joins it, whatever min_refresh_interval says.
func TestTwoConcurrentScrapesCauseOneFetch(t *testing.T) {
	f := heldFake(3)
	s := NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: f, ImageIDs: idsOf(f.images), Concurrency: 3}})
	first := startScrape(context.Background(), s)
	<-f.entered // the fetch is making its first call
	second := startScrape(context.Background(), s)
	waitFor(t, "the second scrape to join", func() bool { return s.states[0].waitersNow() == 2 })
	close(f.hold)
	a, b := <-first, <-second
	assertAllUp(t, a, 3)
	assertAllUp(t, b, 3)
	if got := f.calls(); got != 3 {
		t.Errorf("%d calls for two concurrent scrapes, want 3 (one fetch)", got)
	}
}

// TestSharedFetchOutlivesTheScrapeThatStartedIt: the scrape that started a
// fetch gives up; the fetch goes on for the one still waiting.
func TestSharedFetchOutlivesTheScrapeThatStartedIt(t *testing.T) {
	f := heldFake(3)
	s := NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: f, ImageIDs: idsOf(f.images), Concurrency: 3}})
	ctx, cancel := context.WithCancel(context.Background())
	first := startScrape(ctx, s)
	<-f.entered
	second := startScrape(context.Background(), s)
	waitFor(t, "the second scrape to join", func() bool { return s.states[0].waitersNow() == 2 })

	cancel()
	gaveUp := <-first
	if gaveUp.Up {
		t.Error("the scrape that gave up says up")
	}
	for _, r := range gaveUp.Images {
		if !errors.Is(r.Err, context.Canceled) {
			t.Errorf("gave up: image %s err = %v, want context.Canceled", r.ID, r.Err)
		}
	}
	close(f.hold)
	assertAllUp(t, <-second, 3)
	if n := f.cancelled.Load(); n != 0 {
		t.Errorf("%d calls cancelled, want 0: the fetch must not end with the first scrape", n)
	}
}

// TestFetchEndsWhenEveryScrapeGaveUp: nobody waits, so the calls stop, and
// the next scrape starts a new fetch.
func TestFetchEndsWhenEveryScrapeGaveUp(t *testing.T) {
	f := heldFake(3)
	s := NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: f, ImageIDs: idsOf(f.images), Concurrency: 3}})
	ctx, cancel := context.WithCancel(context.Background())
	first := startScrape(ctx, s)
	<-f.entered
	cancel()
	<-first
	// The held call ends, and so do the two the fetch makes after it.
	waitFor(t, "the calls of the abandoned fetch to be cancelled", func() bool { return f.cancelled.Load() == 3 })

	close(f.hold)
	assertAllUp(t, s.Scrape(context.Background())[0], 3)
}

// TestScrapeThatGivesUpKeepsWhatArrived: images fetched before the deadline
// are exported; only the late one is down.
func TestScrapeThatGivesUpKeepsWhatArrived(t *testing.T) {
	all := ids(4)
	api := &fakeAPI{images: map[string]*modelarts.Image{}, errs: map[string]error{}}
	for _, id := range all {
		api.images[id] = &modelarts.Image{ID: id}
	}
	slow := &slowOne{fakeAPI: api, id: all[3]}
	s := NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: slow, ImageIDs: all, Concurrency: 4}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res := s.Scrape(ctx)[0]
	if !res.Up {
		t.Error("project down although three images arrived")
	}
	for i, r := range res.Images {
		if late := i == 3; (r.Err != nil) != late {
			t.Errorf("image %d: err = %v", i, r.Err)
		}
	}
}

// slowOne answers one image only after its caller gave up.
type slowOne struct {
	*fakeAPI
	id string
}

func (s *slowOne) ShowImage(ctx context.Context, id string) (*modelarts.Image, error) {
	if id == s.id {
		<-ctx.Done()
		return nil, &modelarts.APIError{Operation: "ShowImage", Class: modelarts.ErrUnreachable, Cause: ctx.Err()}
	}
	return s.fakeAPI.ShowImage(ctx, id)
}

// TestMinRefreshInterval: scrapes within the interval cost nothing.
func TestMinRefreshInterval(t *testing.T) {
	f := &pagingFake{images: fakeImages(3)}
	clock := newTestClock()
	s := newScraper(log.NewNopLogger(), []Project{{
		Name: "p", Client: f, ImageIDs: idsOf(f.images), Concurrency: 3, MinRefreshInterval: 30 * time.Second,
	}}, clock.Now)
	steps := []struct {
		advance   time.Duration
		wantCalls int64
	}{
		{0, 3},                // first scrape: fetches
		{0, 3},                // second Prometheus, same moment: free
		{29 * time.Second, 3}, // still inside the interval: free
		{time.Second, 6},      // interval over: fetches again
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		res := s.Scrape(context.Background())[0]
		assertAllUp(t, res, 3)
		if got := f.calls(); got != st.wantCalls {
			t.Errorf("scrape %d: %d calls in all, want %d", i, got, st.wantCalls)
		}
	}
}

// TestServeStaleFor: a failed image keeps its last good values for
// serve_stale_for, with modelarts_image_up 0 and its age exported; an image
// that no longer exists keeps none.
func TestServeStaleFor(t *testing.T) {
	f := &pagingFake{images: fakeImages(2), showErr: map[string]error{}}
	id, gone := f.images[0].ID, f.images[1].ID
	clock := newTestClock()
	t0 := clock.Now()
	s := newScraper(log.NewNopLogger(), []Project{{
		Name: "p", Client: f, ImageIDs: []string{id, gone}, Concurrency: 2, ServeStaleFor: 5 * time.Minute,
	}}, clock.Now)
	assertAllUp(t, s.Scrape(context.Background())[0], 2)

	f.showErr[id], f.showErr[gone] = serverErr(), notFoundErr()
	clock.Advance(4 * time.Minute)
	text := exposition(t, s.Scrape(context.Background()))
	for _, want := range []string{
		`modelarts_image_up{id="` + id + `",project="p"} 0`,
		`modelarts_image_last_success_timestamp_seconds{id="` + id + `",project="p"} 1.8e+09`,
		`modelarts_image_status{arch="",id="` + id + `",name="image-0",project="p",status="ACTIVE",type="",visibility=""} 1`,
		`modelarts_image_not_found{id="` + gone + `",project="p"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("4 minutes after the last success, the exposition lacks %s:\n%s", want, text)
		}
	}
	if strings.Contains(text, `modelarts_image_status{arch="",id="`+gone) || strings.Contains(text, `last_success_timestamp_seconds{id="`+gone) {
		t.Errorf("an image that no longer exists is served stale:\n%s", text)
	}

	clock.Advance(2 * time.Minute)
	res := s.Scrape(context.Background())[0]
	if r := res.Images[0]; r.Image != nil || !r.LastSuccess.Equal(t0) {
		t.Errorf("6 minutes after the last success: image = %v, last success = %v; want no values, %v", r.Image, r.LastSuccess, t0)
	}
}

// TestNoStaleValuesByDefault: serve_stale_for 0 exports nothing of a failed image.
func TestNoStaleValuesByDefault(t *testing.T) {
	f := &pagingFake{images: fakeImages(1), showErr: map[string]error{}}
	s := NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: f, ImageIDs: idsOf(f.images), Concurrency: 1}})
	assertAllUp(t, s.Scrape(context.Background())[0], 1)
	f.showErr[f.images[0].ID] = serverErr()
	if r := s.Scrape(context.Background())[0].Images[0]; r.Image != nil || r.LastSuccess.IsZero() {
		t.Errorf("image = %v, last success = %v; want no values, the time of the first scrape", r.Image, r.LastSuccess)
	}
}

// exposition renders results as the text format, HELP and TYPE lines included.
func exposition(t *testing.T, results []ProjectResult) string {
	t.Helper()
	c, err := NewImageCollector(results)
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	text, err := renderText(c)
	if err != nil {
		t.Fatal(err)
	}
	return text
}
