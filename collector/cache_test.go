// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"errors"
	"slices"
	"strings"
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

// newScraper is NewScraper with a clock.
func newScraper(logger log.Logger, projects []Project, now func() time.Time) *Scraper {
	s := NewScraper(logger, projects)
	for _, ps := range s.states {
		ps.now = now
	}
	return s
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

// startScrape runs s.Scrape(ctx) in the background.
func startScrape(ctx context.Context, s *Scraper) <-chan ProjectResult {
	out := make(chan ProjectResult, 1)
	go func() { out <- s.Scrape(ctx)[0] }()
	return out
}

// TestTwoConcurrentScrapesCauseOneFetch: a scrape that arrives while a fetch
// runs joins it, whatever min_refresh_interval says.
func TestTwoConcurrentScrapesCauseOneFetch(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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

// TestScrapeThatGivesUpKeepsWhatArrived: when a scrape ends, the images
// fetched before are exported; only the one still awaited is down.
func TestScrapeThatGivesUpKeepsWhatArrived(t *testing.T) {
	t.Parallel()
	f := heldFake(4)
	late := f.images[3].ID
	f.holdOnly = map[string]bool{late: true} // never released
	s := preferShow(fakeScraper(f, 4, nil))
	ctx, cancel := context.WithCancel(context.Background())
	scrape := startScrape(ctx, s)
	<-f.entered
	waitFor(t, "the three other images to arrive", func() bool { return s.states[0].fetchedNow() == 3 })
	cancel()
	res := <-scrape
	if !res.Up {
		t.Error("project down although three images arrived")
	}
	for _, r := range res.Images {
		if (r.Err != nil) != (r.ID == late) || (r.Image != nil) != (r.ID != late) {
			t.Errorf("image %s: image %v, err %v", r.ID, r.Image, r.Err)
		}
	}
}

// fetchedNow returns how many images the fetch in flight has got.
func (ps *projectState) fetchedNow() int {
	ps.mu.Lock()
	f := ps.inFlight
	ps.mu.Unlock()
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.images)
}

// TestMinRefreshInterval: scrapes within min_refresh_interval of the last
// fetch are answered from it without a call; the first after it fetches.
func TestMinRefreshInterval(t *testing.T) {
	t.Parallel()
	f := newFake(3)
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
	t.Parallel()
	f := newFake(2)
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
	t.Parallel()
	f := newFake(1)
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
	t.Parallel()
	tests := []struct {
		name  string
		first time.Duration // the timeout of the scrape that starts the fetch
		// joinLate, when not 0, is the timeout of a second scrape that joins
		// the fetch before the first one's deadline.
		joinLate time.Duration
	}{
		{name: "a later deadline of a joining scrape carries the fetch, and its result is kept", first: 500 * time.Millisecond, joinLate: time.Minute},
		{name: "a fetch cut by the deadline of its only scrape is not kept", first: 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := heldFake(3)
			clock := newTestClock()
			s := newScraper(log.NewNopLogger(), []Project{{
				Name: "p", Client: f, ImageIDs: idsOf(f.images), Concurrency: 3, MinRefreshInterval: 30 * time.Second,
			}}, clock.Now)
			short, cancelShort := context.WithTimeout(context.Background(), tt.first)
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
	t.Parallel()
	f := newFake(1)
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
		res := s.Scrape(context.Background())
		r, age := res[0].Images[0], clock.Now().Sub(t0)
		recomputed := res[0]
		if recomputed.values = 0; ValueFingerprint(res) != ValueFingerprint([]ProjectResult{recomputed}) {
			t.Errorf("values %v old: the fingerprint the result carries is not the one its values give", age)
		}
		if (r.Image != nil) != step.wantStale || r.Err == nil || !r.LastSuccess.Equal(t0) {
			t.Errorf("values %v old: image = %v, err = %v, last success %v; want stale values %v, an error, %v",
				age, r.Image, r.Err, r.LastSuccess, step.wantStale, t0)
		}
		if got := f.calls(); got != step.wantCalls {
			t.Errorf("values %v old: %d calls in all, want %d", age, got, step.wantCalls)
		}
	}
}

// TestGaveUpScrapeReportsUp: a scrape that ends before the fetch it waits
// for says modelarts_up as a whole fetch would on what arrived so far: an
// answered 404 or 5xx means the API is up.
func TestGaveUpScrapeReportsUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		first   error // of the first image, answered at once
		held    bool  // the first call is held too
		missing bool  // the first image does not exist
		wantUp  bool
	}{
		{name: "nothing answered yet", held: true},
		{name: "an image arrived", wantUp: true},
		{name: "a 404 arrived", missing: true, wantUp: true},
		{name: "a 500 arrived", first: serverErr(), wantUp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := heldFake(2) // fetched one by one, one at a time
			first, second := f.images[0].ID, f.images[1].ID
			if !tt.held {
				f.holdOnly = map[string]bool{second: true}
			}
			if tt.first != nil {
				f.showErr[first] = tt.first
			}
			if tt.missing {
				f.images = f.images[1:]
			}
			s := fakeScraper(f, 1, func(p *Project) { p.ImageIDs = []string{first, second} })
			startCtx, cancelStarter := context.WithCancel(context.Background())
			starter := startScrape(startCtx, s)
			<-f.entered // the first call, or the second once the first was answered
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
	t.Parallel()
	p := &Project{Name: "p", ImageIDs: ids(1)}
	ps := newProjectState(p, log.NewNopLogger(), time.Now)
	f := &flight{
		ps:     ps,
		ctx:    newFetchContext(context.Background(), time.Now().Add(time.Minute)),
		done:   make(chan struct{}),
		result: ProjectResult{Name: "p", Up: true},
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
	t.Parallel()
	clock := newTestClock()
	id := ids(1)[0]
	ps := newProjectState(&Project{Name: "p", ImageIDs: []string{id}, ServeStaleFor: time.Hour}, log.NewNopLogger(), clock.Now)
	ps.images[id] = ImageResult{Image: &modelarts.Image{ID: id}, LastSuccess: clock.Now()}
	f := &flight{start: clock.Now(), images: map[string]*modelarts.Image{}, errs: map[string]error{}, answered: true}
	r := ps.record(f, false, 0).Images[0]
	if r.Err == nil || r.Image == nil {
		t.Errorf("image = %v, err = %v; want the stale values and an error", r.Image, r.Err)
	}
}

// stubbornPages answers the ListImage pages after the first, then holds the
// answer until release is closed, whatever the call's context says: a slow
// call that outlives the fetch that made it.
type stubbornPages struct {
	*fakeAPI
	entered, release chan struct{}
}

func (s stubbornPages) ListImages(ctx context.Context, opts modelarts.ListOptions) (*modelarts.ImageList, error) {
	page, err := s.fakeAPI.ListImages(ctx, opts)
	if opts.Offset > 0 {
		s.entered <- struct{}{}
		<-s.release
	}
	return page, err
}

// TestAbandonedFetchKeepsTheTurn: a fetch every scrape gave up on, ending
// after a newer fetch took a turn of ShowImage fallbacks, puts no turn back:
// the next scrape goes on with the next turn.
func TestAbandonedFetchKeepsTheTurn(t *testing.T) {
	t.Parallel()
	f := &fakeAPI{images: fakeImages(150), maxPage: 100}
	api := stubbornPages{f, make(chan struct{}, 1), make(chan struct{})}
	s := NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: api, ImageIDs: idsOf(f.images), Concurrency: 10}})
	up := func(res ProjectResult) (ids []string) {
		for _, r := range res.Images {
			if r.Err == nil {
				ids = append(ids, r.ID)
			}
		}
		return ids
	}
	ctx, cancel := context.WithCancel(context.Background())
	abandoned := startScrape(ctx, s)
	<-api.entered // the fetch waits for its second page
	cancel()
	a := <-abandoned
	f.listErr = serverErr() // the next fetches list nothing: they take turns
	if got := up(s.Scrape(context.Background())[0]); !slices.Equal(got, idsOf(f.images[:50])) {
		t.Fatalf("the first turn fetched %d images, want the first 50: %v", len(got), got)
	}
	close(api.release)
	waitFor(t, "the abandoned fetch to end", func() bool { return s.Latest()[0].Start.Equal(a.Start) })
	if got := up(s.Scrape(context.Background())[0]); !slices.Equal(got, idsOf(f.images[50:100])) {
		t.Errorf("the turn after the abandoned fetch ended fetched %d images, want images 50 to 99: %v", len(got), got)
	}
}

// TestScrapeWithAnEndedContext: a scrape whose context has already ended
// answers at once, every image down with a reason, and (under -race) reads
// nothing the fetch it started writes meanwhile.
func TestScrapeWithAnEndedContext(t *testing.T) {
	t.Parallel()
	s := fakeScraper(newFake(20), 4, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 {
		if res := s.Scrape(ctx)[0]; res.Err == nil || len(res.Images) != 20 || res.Images[0].Err == nil {
			t.Fatalf("scrape with an ended context: err %v, %d images, first image err %v", res.Err, len(res.Images), res.Images[0].Err)
		}
	}
}

// TestFetchDeadlineKeepsItsClock: the deadline of a shared fetch, extended,
// keeps its monotonic reading (the 429 back-off and the rate limit compare
// with it) and its range: a deadline in the year 3000 stays one.
func TestFetchDeadlineKeepsItsClock(t *testing.T) {
	for _, d := range []time.Time{time.Now().Add(time.Minute), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		c := newFetchContext(context.Background(), d)
		later := d.Add(time.Second)
		if !c.extend(later) {
			t.Fatalf("extend to %v refused", later)
		}
		got, _ := c.Deadline()
		if !got.Equal(later) || strings.Contains(got.String(), "m=") != strings.Contains(later.String(), "m=") {
			t.Errorf("Deadline() = %v, want %v", got, later)
		}
		c.cancel()
	}
}
