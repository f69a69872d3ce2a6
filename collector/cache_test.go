// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/modelarts-exporter/modelarts_exporter/internal/fakeclock"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// testClock is a settable clock for the refresh interval and stale values.
type testClock = fakeclock.Clock

func newTestClock() *testClock { return fakeclock.New(time.Unix(1_800_000_000, 0)) }

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
	if got := f.calls(); got != 2 {
		t.Errorf("%d calls for two concurrent scrapes, want 2 (one fetch: a ListImage page of each type)", got)
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
	// The held call ends, and the fetch starts no other.
	waitFor(t, "the calls of the abandoned fetch to be cancelled", func() bool { return f.cancelled.Load() == 2 })

	close(f.hold)
	assertAllUp(t, s.Scrape(context.Background())[0], 3)
	if got := f.calls(); got != 4 {
		t.Errorf("%d calls, want 4: a page of each type by the abandoned fetch, and by the next", got)
	}
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
		{0, 2},                // first scrape: fetches (a ListImage page of each type)
		{0, 2},                // second Prometheus, same moment: free
		{29 * time.Second, 2}, // still inside the interval: free
		{time.Second, 4},      // interval over: fetches again
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
		`modelarts_image_status{arch="",id="` + id + `",name="image-0",project="p",status="ACTIVE",type="DEDICATED",visibility=""} 1`,
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
	if problems, err := testutil.GatherAndLint(gatherer(results)); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	text, err := renderText(results)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// TestSharedFetchDeadline: a shared fetch runs until the latest deadline of
// the scrapes waiting for it, and a fetch cut short by its deadline is not
// kept for min_refresh_interval.
func TestSharedFetchDeadline(t *testing.T) {
	tests := []struct {
		name string
		// joinLate, when not 0, is the timeout of a second scrape that joins
		// the fetch of a first one with a timeout of 1s.
		joinLate time.Duration
	}{
		{name: "a later deadline of a joining scrape carries the fetch, and its result is kept", joinLate: time.Minute},
		{name: "a fetch cut by the deadline of its only scrape is not kept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := heldFake(3)
			clock := newTestClock()
			s := newScraper(log.NewNopLogger(), []Project{{
				Name: "p", Client: f, ImageIDs: idsOf(f.images), Concurrency: 3, MinRefreshInterval: 30 * time.Second,
			}}, clock.Now)
			short, cancelShort := context.WithTimeout(context.Background(), time.Second)
			defer cancelShort()
			first := startScrape(short, s)
			<-f.entered
			var second <-chan ProjectResult
			if tt.joinLate > 0 {
				long, cancelLong := context.WithTimeout(context.Background(), tt.joinLate)
				defer cancelLong()
				second = startScrape(long, s)
				waitFor(t, "the second scrape to join", func() bool { return s.states[0].waitersNow() == 2 })
			}
			if res := <-first; res.Images[0].Err == nil {
				t.Error("the scrape that reached its deadline has its first image")
			}
			close(f.hold)
			if second != nil {
				assertAllUp(t, <-second, 3)
				if got := f.calls(); got != 2 {
					t.Errorf("%d calls, want 2 (one fetch)", got)
				}
			}
			calls := f.calls()
			assertAllUp(t, s.Scrape(context.Background())[0], 3)
			wantMore := int64(2) // the cut fetch was not kept: a new one
			if second != nil {
				wantMore = 0 // the whole result was kept
			}
			if got := f.calls() - calls; got != wantMore {
				t.Errorf("the next scrape within min_refresh_interval made %d calls, want %d", got, wantMore)
			}
		})
	}
}

// TestCachedResultDropsExpiredStaleValues: a result answered from the last
// fetch within min_refresh_interval carries no stale values older than
// serve_stale_for at the time of the scrape.
func TestCachedResultDropsExpiredStaleValues(t *testing.T) {
	f := &pagingFake{images: fakeImages(1), showErr: map[string]error{}}
	id := f.images[0].ID
	clock := newTestClock()
	t0 := clock.Now()
	s := newScraper(log.NewNopLogger(), []Project{{
		Name: "p", Client: f, ImageIDs: []string{id}, Concurrency: 1,
		MinRefreshInterval: 30 * time.Second, ServeStaleFor: time.Minute,
	}}, clock.Now)
	assertAllUp(t, s.Scrape(context.Background())[0], 1)
	f.showErr[id] = serverErr()
	for _, step := range []struct {
		advance   time.Duration
		wantStale bool
		wantCalls int64
	}{
		{time.Minute, true, 2},       // the fetch fails; the values are 1m old: served
		{0, true, 2},                 // from that fetch, still 1m old: served
		{time.Second, false, 2},      // from that fetch, now 1m1s old: not served
		{29 * time.Second, false, 3}, // a new fetch, which fails
	} {
		clock.Advance(step.advance)
		r := s.Scrape(context.Background())[0].Images[0]
		age := clock.Now().Sub(t0)
		if (r.Image != nil) != step.wantStale || r.Err == nil || !r.LastSuccess.Equal(t0) {
			t.Errorf("values %v old: image = %v, err = %v, last success %v; want stale values %v, an error, %v",
				age, r.Image, r.Err, r.LastSuccess, step.wantStale, t0)
		}
		if got := f.calls(); got != step.wantCalls {
			t.Errorf("values %v old: %d calls in all, want %d", age, got, step.wantCalls)
		}
	}
}

// blockingAPI answers ShowImage at once for the IDs in answers; the other
// calls block until their context ends. It reports each blocked call on
// entered.
type blockingAPI struct {
	answers map[string]func() (*modelarts.Image, error)
	entered chan string
	calls   atomic.Int64
}

func (b *blockingAPI) ShowImage(ctx context.Context, id string) (*modelarts.Image, error) {
	b.calls.Add(1)
	if answer := b.answers[id]; answer != nil {
		return answer()
	}
	b.entered <- id
	<-ctx.Done()
	return nil, &modelarts.APIError{Operation: "ShowImage", Class: modelarts.ErrUnreachable, Cause: ctx.Err()}
}

func (b *blockingAPI) ListImages(context.Context, modelarts.ListOptions) (*modelarts.ImageList, error) {
	return nil, errors.New("not used")
}

// TestGaveUpScrapeReportsUp: a scrape that ends before the fetch it waits
// for says modelarts_up as a whole fetch would on what arrived so far: an
// answered 404 or 5xx means the API is up.
func TestGaveUpScrapeReportsUp(t *testing.T) {
	all := ids(2) // fetched one by one
	tests := []struct {
		name   string
		first  func() (*modelarts.Image, error) // nil: the first call is held too
		wantUp bool
	}{
		{name: "nothing answered yet"},
		{name: "an image arrived", first: func() (*modelarts.Image, error) { return &modelarts.Image{ID: all[0]}, nil }, wantUp: true},
		{name: "a 404 arrived", first: func() (*modelarts.Image, error) { return nil, notFoundErr() }, wantUp: true},
		{name: "a 500 arrived", first: func() (*modelarts.Image, error) { return nil, serverErr() }, wantUp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &blockingAPI{answers: map[string]func() (*modelarts.Image, error){all[0]: tt.first}, entered: make(chan string, 3)}
			held := 1 // the first call goes alone; when it is answered, the second is held
			s := NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: api, ImageIDs: all, Concurrency: 3}})
			startCtx, cancelStarter := context.WithCancel(context.Background())
			starter := startScrape(startCtx, s)
			for range held {
				<-api.entered
			}
			joinCtx, cancelJoiner := context.WithCancel(context.Background())
			joiner := startScrape(joinCtx, s)
			waitFor(t, "the second scrape to join", func() bool { return s.states[0].waitersNow() == 2 })
			cancelJoiner()
			if got := (<-joiner).Up; got != tt.wantUp {
				t.Errorf("the scrape that gave up says up = %v, want %v", got, tt.wantUp)
			}
			cancelStarter()
			<-starter
		})
	}
}

// TestFinishedFetchWinsOverTheDeadline: when the fetch has finished and the
// scrape's context has ended both, the scrape exports the fetch's result.
func TestFinishedFetchWinsOverTheDeadline(t *testing.T) {
	p := &Project{Name: "p", ImageIDs: ids(1)}
	ps := newProjectState(p, log.NewNopLogger(), time.Now)
	f := &flight{
		fetcher: newFetcher(p, log.NewNopLogger(), nil, nil, 0),
		ctx:     newFetchContext(context.Background(), time.Now().Add(time.Minute)),
		done:    make(chan struct{}),
		result:  ProjectResult{Name: "p", Up: true},
	}
	defer f.ctx.cancel()
	close(f.done)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 100 {
		ps.inFlight = f
		if res := ps.scrape(ctx); !res.Up {
			t.Fatalf("try %d: the scrape gave up although the fetch had finished", i)
		}
	}
}

// TestEveryFailedImageHasAnError: an image a fetch has no word on is down,
// with an error, even when its stale values are served.
func TestEveryFailedImageHasAnError(t *testing.T) {
	clock := newTestClock()
	id := ids(1)[0]
	ps := newProjectState(&Project{Name: "p", ImageIDs: []string{id}, ServeStaleFor: time.Hour}, log.NewNopLogger(), clock.Now)
	ps.known[id] = ImageResult{Image: &modelarts.Image{ID: id}, LastSuccess: clock.Now()}
	out := &fetchOutcome{images: map[string]*modelarts.Image{}, errs: map[string]error{}, answered: true}
	r := ps.record(&flight{start: clock.Now()}, out, false, 0).Images[0]
	if r.Err == nil || r.Image == nil {
		t.Errorf("image = %v, err = %v; want the stale values and an error", r.Image, r.Err)
	}
}
