// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// simProject is a project on sim with the demo key, as NewProjects builds it.
func simProject(t testing.TB, sim *modelartstest.Server, imageIDs []string, secretKey string) Project {
	t.Helper()
	return simProjectAt(t, sim.URL, sim.ProjectID(), imageIDs, secretKey)
}

// simProjectAt is a project on the simulator at url with the demo key.
func simProjectAt(t testing.TB, url, projectID string, imageIDs []string, secretKey string) Project {
	t.Helper()
	client, err := modelarts.NewClient(modelarts.Config{
		Endpoint:    url,
		ProjectID:   projectID,
		Credentials: modelarts.Credentials{AccessKey: modelartstest.DemoAccessKey, SecretKey: secretKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	return Project{Name: "p", Client: client, ImageIDs: imageIDs, Concurrency: 10}
}

// scrapeOnce scrapes p once with a fresh Scraper.
func scrapeOnce(p Project) ProjectResult {
	return NewScraper(log.NewNopLogger(), []Project{p}).Scrape(context.Background())[0]
}

// assertAllUp fails unless every image of res was fetched.
func assertAllUp(t *testing.T, res ProjectResult, want int) {
	t.Helper()
	if !res.Up || len(res.Images) != want {
		t.Fatalf("up = %v, %d images; want true, %d", res.Up, len(res.Images), want)
	}
	for _, r := range res.Images {
		if r.Err != nil || r.Image == nil || r.Image.ID != r.ID {
			t.Fatalf("image %s: %v", r.ID, r.Err)
		}
	}
}

// TestTenThousandImagesCostAtMost60Calls is the budget, against the
// simulator: one ListImage call per page whatever the server's page size.
func TestTenThousandImagesCostAtMost60Calls(t *testing.T) {
	images := modelartstest.GenerateImages(10_000, 1)
	for _, tt := range []struct {
		maxPage int
		want    int
	}{{1000, 10}, {200, 50}} {
		sim := modelartstest.NewServer(modelartstest.Options{Images: images, MaxPageSize: tt.maxPage})
		t.Cleanup(sim.Close)
		res := scrapeOnce(simProject(t, sim, idsOf(images), modelartstest.DemoSecretKey))
		assertAllUp(t, res, 10_000)
		if got := sim.Requests(""); got != tt.want || got > 60 {
			t.Errorf("page size %d: %d API calls, want %d (at most 60)", tt.maxPage, got, tt.want)
		}
		if got := sim.Requests(modelartstest.OpShowImage); got != 0 {
			t.Errorf("page size %d: %d ShowImage calls, want 0", tt.maxPage, got)
		}
	}
}

func TestStrategy(t *testing.T) {
	many, big := fakeImages(3000), fakeImages(20_000)
	tests := []struct {
		name             string
		fake             *pagingFake
		ids              []string
		wantList         int64
		wantShow         int64
		wantNotFound     int
		wantUnlistedSeen int
	}{
		{
			name: "few IDs: one ShowImage each", fake: &pagingFake{images: many},
			ids: idsOf(many[:showImageBudget]), wantShow: showImageBudget,
		},
		{
			name: "many IDs: pages only", fake: &pagingFake{images: many},
			ids: idsOf(many[:2000]), wantList: 3,
		},
		{
			name: "IDs the listing lacks fall back to ShowImage", fake: &pagingFake{
				images:   many,
				unlisted: map[string]*modelarts.Image{"other-ws-1": {ID: "other-ws-1"}, "other-ws-2": {ID: "other-ws-2"}},
			},
			ids:      append(idsOf(many[:100]), "other-ws-1", "other-ws-2", "deleted-1"),
			wantList: 3, wantShow: 3, wantNotFound: 1,
		},
		{
			name: "after the first page, ShowImage is cheaper for the rest", fake: &pagingFake{images: big},
			// 60 IDs, 50 of them on the first page: 10 missing, 19 pages left.
			ids:      append(idsOf(big[:50]), idsOf(big[19_990:])...),
			wantList: 1, wantShow: 10,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := scrapeOnce(Project{Name: "p", Client: tt.fake, ImageIDs: tt.ids, Concurrency: 4})
			if tt.fake.listCalls.Load() != tt.wantList || tt.fake.showCalls.Load() != tt.wantShow {
				t.Errorf("ListImage %d, ShowImage %d calls; want %d, %d",
					tt.fake.listCalls.Load(), tt.fake.showCalls.Load(), tt.wantList, tt.wantShow)
			}
			notFound := 0
			for _, r := range res.Images {
				switch {
				case r.Err == nil && r.Image != nil:
				case strings.HasPrefix(r.ID, "deleted"):
					notFound++
				default:
					t.Errorf("image %s: %v", r.ID, r.Err)
				}
			}
			if notFound != tt.wantNotFound {
				t.Errorf("%d not found, want %d", notFound, tt.wantNotFound)
			}
		})
	}
}

// TestStrategyLearnsTheListingCost: once a listing showed that the project
// holds many pages, a moderate number of IDs is fetched one by one, until
// the knowledge is listPagesTTL old.
func TestStrategyLearnsTheListingCost(t *testing.T) {
	f := &pagingFake{images: fakeImages(100_000)}
	wanted := idsOf(f.images[99_910:]) // 90 IDs, none on the first page: fewer than the 99 pages left
	clock := newTestClock()
	s := newScraper(log.NewNopLogger(), []Project{{Name: "p", Client: f, ImageIDs: wanted, Concurrency: 10}}, clock.Now)
	for _, step := range []struct {
		name     string
		advance  time.Duration
		wantList int64
	}{
		{"first scrape: the first page, then ShowImage", 0, 1},
		{"next scrape: ShowImage only", time.Minute, 0},
		{"an hour later: the first page again", listPagesTTL, 1},
	} {
		clock.Advance(step.advance)
		f.listCalls.Store(0)
		f.showCalls.Store(0)
		assertAllUp(t, s.Scrape(context.Background())[0], 90)
		if f.listCalls.Load() != step.wantList || f.showCalls.Load() != 90 {
			t.Errorf("%s: ListImage %d, ShowImage %d; want %d, 90", step.name, f.listCalls.Load(), f.showCalls.Load(), step.wantList)
		}
	}
}

// TestBadCredentialsCostOneCall holds for both strategies: the first call
// goes alone.
func TestBadCredentialsCostOneCall(t *testing.T) {
	images := modelartstest.GenerateImages(2000, 2)
	sim := modelartstest.NewServer(modelartstest.Options{Images: images})
	t.Cleanup(sim.Close)
	for _, n := range []int{10, 2000} {
		sim.ResetCounters()
		res := scrapeOnce(simProject(t, sim, idsOf(images[:n]), "wrong-secret-key"))
		if got := sim.Requests(""); got != 1 {
			t.Errorf("%d IDs: %d calls with a wrong key, want 1", n, got)
		}
		if res.Up {
			t.Errorf("%d IDs: up with a wrong key", n)
		}
		for _, r := range res.Images {
			if r.Err == nil {
				t.Fatalf("%d IDs: image %s has no error", n, r.ID)
			}
		}
	}
}

// TestFailedListingCausesNoStorm: when the listing fails, more IDs than
// showImageBudget are not fetched one by one (TestFailedPageFallsBackForFewImages
// shows the other side).
func TestFailedListingCausesNoStorm(t *testing.T) {
	f := &pagingFake{images: fakeImages(5000), listErr: serverErr()}
	res := scrapeOnce(Project{Name: "p", Client: f, ImageIDs: idsOf(f.images), Concurrency: 10})
	if f.listCalls.Load() != 1 || f.showCalls.Load() != 0 {
		t.Errorf("ListImage %d, ShowImage %d; want 1, 0", f.listCalls.Load(), f.showCalls.Load())
	}
	if !res.Up {
		t.Error("project down although the API answered")
	}
	for _, r := range res.Images {
		if r.Err == nil || !strings.Contains(r.Err.Error(), "not listed") {
			t.Fatalf("image %s: err = %v, want the listing's error", r.ID, r.Err)
		}
	}
}

// TestFailedPageFallsBackForFewImages: a page fails, and the few IDs it held
// are fetched one by one.
func TestFailedPageFallsBackForFewImages(t *testing.T) {
	f := &pagingFake{images: fakeImages(1040)}
	wanted := idsOf(f.images[960:]) // 40 on the first page, 40 on the second
	failing := &failSecondPage{pagingFake: f}
	p := Project{Name: "p", Client: failing, ImageIDs: append(idsOf(f.images[:20]), wanted...), Concurrency: 10}
	res := scrapeOnce(p)
	assertAllUp(t, res, 100)
	if f.listCalls.Load() != 2 || f.showCalls.Load() != 40 {
		t.Errorf("ListImage %d, ShowImage %d; want 2, 40", f.listCalls.Load(), f.showCalls.Load())
	}
}

// failSecondPage fails every ListImage call after the first page.
type failSecondPage struct{ *pagingFake }

func (f *failSecondPage) ListImages(ctx context.Context, opts modelarts.ListOptions) (*modelarts.ImageList, error) {
	if opts.Offset > 0 {
		f.listCalls.Add(1)
		return nil, serverErr()
	}
	return f.pagingFake.ListImages(ctx, opts)
}

// TestDiscovery: configured and discovered images are exported once each;
// configured IDs the discovery listing returned cost no further call.
func TestDiscovery(t *testing.T) {
	images := modelartstest.GenerateImages(300, 3)
	sim := modelartstest.NewServer(modelartstest.Options{Images: images})
	t.Cleanup(sim.Close)
	var builtIn, dedicated []string
	for _, img := range images {
		if img.Type == "BUILD_IN" {
			builtIn = append(builtIn, img.ID)
		} else {
			dedicated = append(dedicated, img.ID)
		}
	}
	const missing = "00000000-0000-4000-8000-000000000404"
	configured := []string{builtIn[0], dedicated[0], missing} // the first is also discovered
	p := simProject(t, sim, configured, modelartstest.DemoSecretKey)
	p.Discovery = &modelarts.ListOptions{Type: "BUILD_IN"}

	res := scrapeOnce(p)
	wantIDs := len(builtIn) + 2
	if len(res.Images) != wantIDs {
		t.Fatalf("%d images, want %d (%d discovered, 2 more configured)", len(res.Images), wantIDs, len(builtIn))
	}
	if sim.Requests(modelartstest.OpListImage) != 1 || sim.Requests(modelartstest.OpShowImage) != 2 {
		t.Errorf("ListImage %d, ShowImage %d calls; want 1, 2", sim.Requests(modelartstest.OpListImage), sim.Requests(modelartstest.OpShowImage))
	}
	c, err := NewImageCollector([]ProjectResult{res})
	if err != nil {
		t.Fatal(err)
	}
	// No duplicate series: the registry would refuse them.
	if n := testutil.CollectAndCount(c, "modelarts_image_up"); n != wantIDs {
		t.Errorf("%d modelarts_image_up series, want %d", n, wantIDs)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestDiscoveryOfEverythingCoversTheConfiguredIDs: with "discovery: {}", the
// one listing serves the configured IDs too.
func TestDiscoveryOfEverythingCoversTheConfiguredIDs(t *testing.T) {
	f := &pagingFake{images: fakeImages(2500)}
	p := Project{Name: "p", Client: f, ImageIDs: append(idsOf(f.images[:500]), "deleted-1"), Concurrency: 10, Discovery: &modelarts.ListOptions{}}
	res := scrapeOnce(p)
	if len(res.Images) != 2501 {
		t.Errorf("%d images, want 2501", len(res.Images))
	}
	if f.listCalls.Load() != 3 || f.showCalls.Load() != 1 {
		t.Errorf("ListImage %d, ShowImage %d calls; want 3, 1 (the ID no listing has)", f.listCalls.Load(), f.showCalls.Load())
	}
}

// TestDiscoveredImageGoneIsForgotten: an image a complete discovery listing
// no longer returns has no series, and its last good value is dropped.
func TestDiscoveredImageGoneIsForgotten(t *testing.T) {
	f := &pagingFake{images: fakeImages(10)}
	s := NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: f, Concurrency: 2, Discovery: &modelarts.ListOptions{}}})
	if n := len(s.Scrape(context.Background())[0].Images); n != 10 {
		t.Fatalf("%d images, want 10", n)
	}
	f.images = f.images[1:]
	if n := len(s.Scrape(context.Background())[0].Images); n != 9 {
		t.Errorf("%d images after one vanished, want 9", n)
	}
	if n := len(s.states[0].known); n != 9 {
		t.Errorf("%d last good values kept, want 9", n)
	}
}

// TestOneBadImageSparesItsPage: when one element of a ListImage page does not
// decode (its size sent as a string), that image alone reports down, with a
// malformed-response error naming the field; the other images of the page
// are up, nothing is fetched again one by one, and the element still counts
// as a record for the paging: no call for a gap, no call more than without
// the fault.
func TestOneBadImageSparesItsPage(t *testing.T) {
	images := modelartstest.GenerateImages(200, 4)
	bad := images[120].ID
	for _, tt := range []struct {
		name      string
		maxPage   int
		discovery bool
		wantCalls int
	}{
		{name: "configured, one page", maxPage: 1000, wantCalls: 1},
		{name: "configured, pages of 50", maxPage: 50, wantCalls: 4},
		{name: "discovered, pages of 50", maxPage: 50, discovery: true, wantCalls: 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sim := modelartstest.NewServer(modelartstest.Options{Images: images, MaxPageSize: tt.maxPage})
			t.Cleanup(sim.Close)
			sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultWrongTypes, Operation: modelartstest.OpListImage, ImageID: bad})
			p := simProject(t, sim, idsOf(images), modelartstest.DemoSecretKey)
			if tt.discovery {
				p.ImageIDs, p.Discovery = nil, &modelarts.ListOptions{}
			}
			res := scrapeOnce(p)
			if !res.Up || len(res.Images) != len(images) {
				t.Fatalf("up = %v, %d images; want true, %d", res.Up, len(res.Images), len(images))
			}
			for _, r := range res.Images {
				switch {
				case r.ID == bad && (r.Image != nil || !errors.Is(r.Err, modelarts.ErrMalformedResponse) || !strings.Contains(fmt.Sprint(r.Err), "Image.size")):
					t.Errorf("bad image: %v, want down with a malformed response naming Image.size", r.Err)
				case r.ID != bad && (r.Err != nil || r.Image == nil):
					t.Errorf("image %s: %v", r.ID, r.Err)
				}
			}
			if got := sim.Requests(modelartstest.OpListImage); got != tt.wantCalls {
				t.Errorf("%d ListImage calls, want %d", got, tt.wantCalls)
			}
			if got := sim.Requests(modelartstest.OpShowImage); got != 0 {
				t.Errorf("%d ShowImage calls, want 0", got)
			}
		})
	}
}

// TestNotFoundOnlyFromShowImage: only ShowImage saying an image does not
// exist makes it modelarts_image_not_found 1 and drops its stale values; a
// not-found answer of ListImage or of IAM's project lookup says nothing of
// the image.
func TestNotFoundOnlyFromShowImage(t *testing.T) {
	listNotFound := &modelarts.APIError{Operation: "ListImage", StatusCode: 404, Class: modelarts.ErrNotFound}
	noProject := fmt.Errorf("resolve project id: %w", &modelarts.APIError{Operation: "ListProjects", Class: modelarts.ErrNotFound})
	tests := []struct {
		name         string
		images       int
		discovery    bool
		listErr      error // ListImage fails with it in the second scrape
		showErr      error // ShowImage fails with it in the second scrape
		wantNotFound bool
	}{
		{name: "ShowImage: not found", images: 3, showErr: notFoundErr(), wantNotFound: true},
		{name: "ShowImage after IAM lists no project", images: 3, showErr: noProject},
		{name: "ListImage of configured images: 404", images: 100, listErr: listNotFound},
		{name: "ListImage of discovery: 404", images: 10, discovery: true, listErr: listNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &pagingFake{images: fakeImages(tt.images), showErr: map[string]error{}}
			p := Project{Name: "p", Client: f, ImageIDs: idsOf(f.images), Concurrency: 4, ServeStaleFor: time.Hour}
			if tt.discovery {
				p.ImageIDs, p.Discovery = nil, &modelarts.ListOptions{}
			}
			s := NewScraper(log.NewNopLogger(), []Project{p})
			assertAllUp(t, s.Scrape(context.Background())[0], tt.images)
			f.listErr = tt.listErr
			for _, img := range f.images {
				f.showErr[img.ID] = tt.showErr
			}
			res := s.Scrape(context.Background())
			text := exposition(t, res)
			for _, r := range res[0].Images {
				notFound := fmt.Sprintf(`modelarts_image_not_found{id=%q,project="p"} %v`, r.ID, boolValue(tt.wantNotFound))
				if !strings.Contains(text, notFound) {
					t.Fatalf("the exposition lacks %s:\n%s", notFound, text)
				}
				if r.Err == nil || (r.Image == nil) != tt.wantNotFound {
					t.Fatalf("image %s: err = %v, stale values %v; want an error and stale values %v", r.ID, r.Err, r.Image != nil, !tt.wantNotFound)
				}
			}
		})
	}
}

// stallAfter answers the first ShowImage call at once when first is set;
// every other call blocks until its context ends, and is reported on entered.
type stallAfter struct {
	first   bool
	calls   atomic.Int64
	entered chan struct{}
}

func (s *stallAfter) ShowImage(ctx context.Context, id string) (*modelarts.Image, error) {
	if s.calls.Add(1) == 1 && s.first {
		return &modelarts.Image{ID: id}, nil
	}
	s.entered <- struct{}{}
	<-ctx.Done()
	return nil, &modelarts.APIError{Operation: "ShowImage", Class: modelarts.ErrUnreachable, Cause: ctx.Err()}
}

func (s *stallAfter) ListImages(context.Context, modelarts.ListOptions) (*modelarts.ImageList, error) {
	return nil, errors.New("not used")
}

// TestNoCallsAfterTheFetchEnded: once the fetch's context has ended, no more
// ShowImage calls start; the images left get its error and one log line.
func TestNoCallsAfterTheFetchEnded(t *testing.T) {
	const images, concurrency = 40, 4
	tests := []struct {
		name string
		// firstOK: the first call succeeds; held: the calls blocked when the
		// context ends (0: it has ended before the fetch).
		firstOK   bool
		held      int
		wantCalls int64
	}{
		{name: "the deadline had passed", wantCalls: 0},
		{name: "during the first call", held: 1, wantCalls: 1},
		{name: "with every slot busy", firstOK: true, held: concurrency, wantCalls: 1 + concurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &stallAfter{first: tt.firstOK, entered: make(chan struct{}, images)}
			var logs lockedBuffer
			p := &Project{Name: "p", Client: api, ImageIDs: ids(images), Concurrency: concurrency}
			ctx, cancel := context.WithCancel(context.Background())
			if tt.held == 0 {
				var cancelDeadline context.CancelFunc
				ctx, cancelDeadline = context.WithDeadline(ctx, time.Now().Add(-time.Second))
				defer cancelDeadline()
			}
			go func() {
				for range tt.held {
					<-api.entered
				}
				cancel()
			}()
			out := newFetcher(p, log.NewLogfmtLogger(&logs), 0, 0).run(ctx)
			if got := api.calls.Load(); got != tt.wantCalls {
				t.Errorf("%d ShowImage calls, want %d", got, tt.wantCalls)
			}
			notStarted := images - int(tt.wantCalls)
			if got := len(out.images) + len(out.errs); got != images {
				t.Errorf("%d images with a value or an error, want %d", got, images)
			}
			late := 0
			for _, err := range out.errs {
				if strings.Contains(err.Error(), "not fetched: the scrape ended first") {
					late++
				}
				if !unanswered(err) {
					t.Errorf("error %v, want one of a call that got no answer", err)
				}
			}
			if late != notStarted {
				t.Errorf("%d images marked not fetched, want %d", late, notStarted)
			}
			text := logs.take()
			if n := strings.Count(text, "Failed to fetch image"); n != tt.held {
				t.Errorf("%d failures logged one by one, want %d:\n%s", n, tt.held, text)
			}
			summary := fmt.Sprintf(`msg="Images not fetched: scrape deadline reached" project=p images=%d`, notStarted)
			if strings.Count(text, "Images not fetched") != 1 || !strings.Contains(text, summary) {
				t.Errorf("want one line %s:\n%s", summary, text)
			}
		})
	}
}

// TestFallbackAfterACompleteListingIsCapped: of the configured IDs a
// complete listing lacks, showImageBudget are fetched one by one per scrape,
// in turn; the others are down with errFallbackBudget, except that an image
// ShowImage last said does not exist stays not found.
func TestFallbackAfterACompleteListingIsCapped(t *testing.T) {
	listed := fakeImages(100)
	unlisted := map[string]*modelarts.Image{}
	var deleted, elsewhere []string
	for i := range 10 {
		deleted = append(deleted, fmt.Sprintf("deadbeef-0000-4000-8000-%012d", i))
	}
	for i := range 100 {
		id := fmt.Sprintf("0e1e0e1e-0000-4000-8000-%012d", i)
		elsewhere = append(elsewhere, id)
		unlisted[id] = &modelarts.Image{ID: id}
	}
	fallback := append(slices.Clone(deleted), elsewhere...) // 110 IDs no listing returns
	// wantTried are the indexes into fallback fetched by each scrape.
	wantTried := [][2]int{{0, 50}, {50, 100}, {100, 110}}
	for _, discovery := range []bool{false, true} {
		t.Run(fmt.Sprintf("discovery %v", discovery), func(t *testing.T) {
			f := &pagingFake{images: listed, unlisted: unlisted}
			p := Project{Name: "p", Client: f, ImageIDs: append(idsOf(listed), fallback...), Concurrency: 10}
			if discovery {
				p.Discovery = &modelarts.ListOptions{}
			}
			s := NewScraper(log.NewNopLogger(), []Project{p})
			for scrape, tried := range wantTried {
				f.listCalls.Store(0)
				f.showCalls.Store(0)
				res := s.Scrape(context.Background())[0]
				if f.listCalls.Load() != 1 || f.showCalls.Load() != showImageBudget {
					t.Errorf("scrape %d: ListImage %d, ShowImage %d calls; want 1, %d", scrape, f.listCalls.Load(), f.showCalls.Load(), showImageBudget)
				}
				inTurn := map[string]bool{}
				for _, id := range fallback[tried[0]:tried[1]] {
					inTurn[id] = true
				}
				for _, id := range fallback[:showImageBudget-(tried[1]-tried[0])] { // the turn wraps around
					inTurn[id] = true
				}
				for _, r := range res.Images {
					switch {
					case slices.Contains(deleted, r.ID):
						if !imageNotFound(r.Err) {
							t.Errorf("scrape %d: deleted image %s: err = %v, want not found", scrape, r.ID, r.Err)
						}
					case inTurn[r.ID] || !slices.Contains(elsewhere, r.ID):
						if r.Err != nil || r.Image == nil {
							t.Errorf("scrape %d: image %s: %v", scrape, r.ID, r.Err)
						}
					default:
						if !errors.Is(r.Err, errFallbackBudget) || r.Image != nil {
							t.Errorf("scrape %d: image %s out of turn: err = %v, want %v", scrape, r.ID, r.Err, errFallbackBudget)
						}
					}
				}
			}
		})
	}
}

// TestUpperCaseIDsFromTheAPI: IDs are lower-cased as they come from the API,
// as configured ones are, so that an upper-case ID in an answer matches its
// configured ID and makes no second set of series.
func TestUpperCaseIDsFromTheAPI(t *testing.T) {
	upper := make([]modelarts.Image, 100)
	var lower []string
	for i := range upper {
		id := fmt.Sprintf("abcdef00-0000-4000-8000-%012d", i)
		upper[i] = modelarts.Image{ID: strings.ToUpper(id), Status: "ACTIVE"}
		lower = append(lower, id)
	}
	tests := []struct {
		name               string
		ids                []string
		discovery          bool
		unlisted           bool
		wantList, wantShow int64
		wantImages         int
	}{
		{name: "ListImage for configured IDs", ids: lower, wantList: 1, wantImages: 100},
		{name: "ListImage for discovery", ids: lower[:3], discovery: true, wantList: 1, wantImages: 100},
		{name: "ShowImage", ids: lower[:3], unlisted: true, wantShow: 3, wantImages: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &pagingFake{images: upper}
			if tt.unlisted {
				f.images, f.unlisted = nil, map[string]*modelarts.Image{}
				for i, id := range tt.ids {
					f.unlisted[id] = &upper[i]
				}
			}
			p := Project{Name: "p", Client: f, ImageIDs: tt.ids, Concurrency: 4}
			if tt.discovery {
				p.Discovery = &modelarts.ListOptions{}
			}
			res := scrapeOnce(p)
			assertAllUp(t, res, tt.wantImages)
			for _, r := range res.Images {
				if r.ID != strings.ToLower(r.ID) {
					t.Errorf("image %s: an ID not in lower case", r.ID)
				}
			}
			if f.listCalls.Load() != tt.wantList || f.showCalls.Load() != tt.wantShow {
				t.Errorf("ListImage %d, ShowImage %d calls; want %d, %d", f.listCalls.Load(), f.showCalls.Load(), tt.wantList, tt.wantShow)
			}
		})
	}
}
