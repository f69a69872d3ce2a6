// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// simProject is a project on sim with the demo key, as the exporter builds it.
func simProject(t testing.TB, sim *modelartstest.Server, imageIDs []string, secretKey string) Project {
	t.Helper()
	return simProjectAt(t, sim.URL, sim.ProjectID(), imageIDs, secretKey)
}

// simProjectAt is a project on the simulator at url with the demo key.
func simProjectAt(t testing.TB, url, projectID string, imageIDs []string, secretKey string) Project {
	t.Helper()
	client := modelarts.NewClient(modelarts.Config{
		Endpoint:    url,
		ProjectID:   projectID,
		Credentials: modelarts.Credentials{AccessKey: modelartstest.DemoAccessKey, SecretKey: secretKey},
	})
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

// The simulators below read a ListImage without type as the environment
// says (modelartstest.UntypedListingEnv; the documented BUILD_IN only by
// default): make test runs this package under both readings, and
// TestPagingAsTheServicePages proves that no listing goes without a type.

// typedImages returns dedicated DEDICATED and buildIn BUILD_IN images.
func typedImages(dedicated, buildIn int) []modelarts.Image {
	images := modelartstest.GenerateImages(dedicated+buildIn, 7)
	for i := range images {
		images[i].Type, images[i].Visibility = "DEDICATED", "PRIVATE"
		if i >= dedicated {
			images[i].Type, images[i].Visibility, images[i].Size = "BUILD_IN", "PUBLIC", nil
		}
	}
	return images
}

// simScraper is a scraper of one project on sim, with the IDs and the
// changes of mutate, that logs to the returned buffer.
func simScraper(t testing.TB, sim *modelartstest.Server, ids []string, mutate func(*Project)) (*Scraper, *lockedBuffer) {
	t.Helper()
	p := simProject(t, sim, ids, modelartstest.DemoSecretKey)
	if mutate != nil {
		mutate(&p)
	}
	logs := &lockedBuffer{}
	return NewScraper(log.NewLogfmtLogger(log.NewSyncWriter(logs)), []Project{p}), logs
}

// apiCalls returns the ModelArts calls sim served since the last call, and
// resets its counters.
func apiCalls(sim *modelartstest.Server) int {
	n := sim.Requests(modelartstest.OpListImage) + sim.Requests(modelartstest.OpShowImage)
	sim.ResetCounters()
	return n
}

// TestListingByTypeAndCost: the configured IDs are found whatever an
// untyped listing returns, in the fewest calls, scrape after scrape.
func TestListingByTypeAndCost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		dedicated, buildIn   int // in the project
		confDed, confBuildIn int // of them configured
		discovery            *modelarts.ListOptions
		maxPage              int
		wantImages, maxCalls int
	}{
		{name: "30 of 30", dedicated: 25, buildIn: 5, confDed: 25, confBuildIn: 5, wantImages: 30, maxCalls: 4},
		{name: "220 of 330", dedicated: 300, buildIn: 30, confDed: 200, confBuildIn: 20, wantImages: 220, maxCalls: 6},
		{name: "220 of 330, pages of 200", dedicated: 300, buildIn: 30, confDed: 200, confBuildIn: 20, maxPage: 200, wantImages: 220, maxCalls: 6},
		{name: "1,200 of 1,200", dedicated: 1150, buildIn: 50, confDed: 1150, confBuildIn: 50, wantImages: 1200, maxCalls: 3},
		{name: "1,200 of 1,200, pages of 100: more pages than calls in flight", dedicated: 1150, buildIn: 50, confDed: 1150, confBuildIn: 50, maxPage: 100, wantImages: 1200, maxCalls: 13},
		{name: "2 of 330: one by one", dedicated: 300, buildIn: 30, confDed: 1, confBuildIn: 1, wantImages: 2, maxCalls: 2},
		{name: "discovery of everything", dedicated: 300, buildIn: 30, discovery: &modelarts.ListOptions{}, wantImages: 330, maxCalls: 2},
		{name: "discovery of one type, and IDs of the other", dedicated: 300, buildIn: 30, confBuildIn: 20,
			discovery: &modelarts.ListOptions{Type: "DEDICATED"}, wantImages: 320, maxCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			images := typedImages(tt.dedicated, tt.buildIn)
			sim := modelartstest.NewServer(modelartstest.Options{Images: images, MaxPageSize: tt.maxPage})
			defer sim.Close()
			ids := append(idsOf(images[:tt.confDed]), idsOf(images[tt.dedicated:tt.dedicated+tt.confBuildIn])...)
			s, logs := simScraper(t, sim, ids, func(p *Project) { p.Discovery = tt.discovery })
			for scrape := range 3 {
				res := s.Scrape(context.Background())[0]
				assertAllUp(t, res, tt.wantImages)
				calls := apiCalls(sim)
				if scrape > 0 && calls > tt.maxCalls {
					t.Errorf("scrape %d: %d calls, want at most %d", scrape, calls, tt.maxCalls)
				}
			}
			if strings.Contains(logs.take(), "level=warn") {
				t.Errorf("warnings logged")
			}
		})
	}
}

// TestPagingAsTheServicePages: every listing has a type, its offsets are
// multiples of the server's page size, and paging ends where the listing does.
func TestPagingAsTheServicePages(t *testing.T) {
	t.Parallel()
	f := &fakeAPI{images: typedImages(450, 10), maxPage: 200}
	assertAllUp(t, fakeScraper(f, 10, nil).Scrape(context.Background())[0], len(f.images))
	pages := map[string][]int{}
	for _, o := range f.listed() {
		if o.Type == "" {
			t.Errorf("an untyped listing: %+v", o)
		}
		if o.Offset%200 != 0 || (o.Offset > 0 && o.Limit != 200) {
			t.Errorf("offset %d, limit %d: not a page of the server's size 200", o.Offset, o.Limit)
		}
		pages[o.Type] = append(pages[o.Type], o.Offset)
	}
	slices.Sort(pages["DEDICATED"])
	if want := []int{0, 200, 400}; !slices.Equal(pages["DEDICATED"], want) || !slices.Equal(pages["BUILD_IN"], []int{0}) {
		t.Errorf("offsets %v, want DEDICATED %v and BUILD_IN [0]", pages, want)
	}
}

// TestPagingGuards: a server that lies about its total, ignores offset or
// lists the same image twice neither loops nor changes how later scrapes fetch.
func TestPagingGuards(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fake      *fakeAPI
		wantUp    bool
		wantCalls int64 // per scrape
	}{
		// A short first page with more announced: the next page is asked alone (a cap, or a lie).
		{name: "an absurd total on a short page", fake: &fakeAPI{images: fakeImages(33), totalLie: 1 << 40}, wantUp: true, wantCalls: 3},
		{name: "a total beyond the last page: 400 ModelArts.6400 ends it", fake: &fakeAPI{images: fakeImages(300), maxPage: 100, totalLie: 450}, wantUp: true, wantCalls: 6},
		{name: "a page size capped, the limit asked echoed in size", fake: &fakeAPI{images: fakeImages(450), maxPage: 200, echoLimit: true}, wantUp: true, wantCalls: 4},
		{name: "offset ignored", fake: &fakeAPI{images: fakeImages(300), maxPage: 100, ignoreOffset: true}, wantCalls: 0},
		// The page cap, then one by one: the 60 IDs each scrape.
		{name: "new records forever", fake: &fakeAPI{images: fakeImages(60), maxPage: 100, totalLie: 1 << 40, inventIDs: true}, wantCalls: 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			s := NewScraper(log.NewLogfmtLogger(logs), []Project{{Name: "p", Client: tt.fake, ImageIDs: idsOf(tt.fake.images), Concurrency: 4}})
			var calls []int64
			for range 3 {
				before := tt.fake.calls()
				res := s.Scrape(context.Background())[0]
				calls = append(calls, tt.fake.calls()-before)
				up := 0
				for _, r := range res.Images {
					if r.Err == nil {
						up++
					}
				}
				if tt.wantUp && up != len(res.Images) {
					t.Errorf("%d of %d images up:\n%s", up, len(res.Images), logs.take())
				}
			}
			if tt.wantCalls > 0 && (calls[1] != tt.wantCalls || calls[2] != tt.wantCalls) {
				t.Errorf("calls per scrape %v, want %d after the first", calls, tt.wantCalls)
			}
			if calls[0] > 2*maxListPages+showImageBudget {
				t.Errorf("calls per scrape %v: unbounded", calls)
			}
		})
	}
}

// TestDuplicatesKeepTheNewest: an image listed twice (the listing shifted
// while it was paged) is exported once, with its most recent values, and the
// conflict is logged once.
func TestDuplicatesKeepTheNewest(t *testing.T) {
	t.Parallel()
	f := &fakeAPI{images: fakeImages(150), maxPage: 100}
	newer := f.images[0]
	newer.UpdateAt, newer.Status = 2_000_000_000_000, "ERROR"
	f.images[120] = newer // the same id on page 1, updated since page 0
	ids := idsOf(f.images[:100])
	logs := &lockedBuffer{}
	s := NewScraper(log.NewLogfmtLogger(logs), []Project{{Name: "p", Client: f, ImageIDs: append(ids, idsOf(f.images[100:120])...), Concurrency: 4}})
	for range 3 {
		res := s.Scrape(context.Background())[0]
		if got := res.Images[0].Image; got == nil || got.Status != "ERROR" {
			t.Fatalf("image listed twice: %+v, want the newer record", got)
		}
	}
	if n := strings.Count(logs.take(), "listed twice"); n != 1 {
		t.Errorf("the conflict was logged %d times over 3 scrapes, want once", n)
	}
}

// scrapeExposition scrapes s once within timeout and renders the result.
func scrapeExposition(t *testing.T, s *Scraper, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return exposition(t, s.Scrape(ctx))
}

// TestNotFoundMeansNotFound: only ShowImage's answer that the image does
// not exist sets modelarts_image_not_found; a 404 from the API gateway (a
// wrong base path) is an endpoint problem, logged once.
func TestNotFoundMeansNotFound(t *testing.T) {
	t.Parallel()
	ids := modelartstest.SampleIDs()
	for _, as404 := range []bool{false, true} {
		t.Run(fmt.Sprintf("missing image as 404 %v", as404), func(t *testing.T) {
			sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages(), NotFoundAs404: as404})
			defer sim.Close()
			sim.DeleteImage(ids[0])
			s, _ := simScraper(t, sim, ids, nil)
			text := scrapeExposition(t, s, 10*time.Second)
			for i, id := range ids {
				want := map[bool]string{true: "1", false: "0"}[i == 0]
				if got, _ := sampleValue(t, text, "modelarts_image_not_found", `id="`+id+`"`); got != want {
					t.Errorf("image %s: not_found = %q, want %s", id, got, want)
				}
			}
		})
	}
	t.Run("wrong base path", func(t *testing.T) {
		sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
		defer sim.Close()
		for _, n := range []int{1, len(ids)} { // one by one, and listed
			s, logs := simScraper(t, sim, ids[:n], func(p *Project) {
				*p = simProjectAt(t, sim.URL+"/modelarts", sim.ProjectID(), ids[:n], modelartstest.DemoSecretKey)
			})
			for range 2 {
				text := scrapeExposition(t, s, 10*time.Second)
				if got, _ := sampleValue(t, text, "modelarts_up"); got != "0" {
					t.Errorf("%d images: modelarts_up = %q, want 0", n, got)
				}
				for _, id := range ids[:n] {
					up, _ := sampleValue(t, text, "modelarts_image_up", `id="`+id+`"`)
					gone, _ := sampleValue(t, text, "modelarts_image_not_found", `id="`+id+`"`)
					if up != "0" || gone != "0" {
						t.Errorf("%d images: image %s up %q, not found %q; want 0, 0", n, id, up, gone)
					}
				}
			}
			lines := logs.take()
			if c := strings.Count(lines, "\n"); c != 2 || !strings.Contains(lines, "modelarts_endpoint") || !strings.Contains(lines, sim.URL+"/modelarts/v1/") {
				t.Errorf("%d images: %d log lines over 2 scrapes, want 2 naming the URL and modelarts_endpoint:\n%s", n, c, lines)
			}
		}
	})
}

// TestOneImageCostsOnlyItself: a 403 on one image, or a first image slower
// than the scrape, downs that image only; refused credentials cost one call.
func TestOneImageCostsOnlyItself(t *testing.T) {
	t.Parallel()
	ids := modelartstest.SampleIDs()
	tests := []struct {
		name      string
		fault     modelartstest.Fault
		refuse403 bool
		secret    string
		wantUp    string
		wantDown  []string
		wantCalls int // in the first scrape, at most
	}{
		{name: "403 ModelArts.0112 on the first image",
			fault:  modelartstest.Fault{Kind: modelartstest.FaultStatus, Operation: modelartstest.OpShowImage, ImageID: ids[0], Status: 403, ErrorCode: "ModelArts.0112"},
			wantUp: "1", wantDown: ids[:1], wantCalls: len(ids)},
		{name: "first image slower than the scrape",
			fault:  modelartstest.Fault{Kind: modelartstest.FaultDelay, Operation: modelartstest.OpShowImage, ImageID: ids[0], Delay: time.Minute},
			wantUp: "1", wantDown: ids[:1], wantCalls: len(ids)},
		{name: "wrong secret key, refused with 401", secret: "wrong", wantUp: "0", wantDown: ids, wantCalls: 1},
		{name: "wrong secret key, refused with 403 ModelArts.0206", secret: "wrong", refuse403: true, wantUp: "0", wantDown: ids, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages(), RefuseWith403: tt.refuse403})
			defer sim.Close()
			if tt.fault.Kind != "" {
				sim.AddFault(tt.fault)
			}
			s, _ := simScraper(t, sim, ids, func(p *Project) {
				if tt.secret != "" {
					*p = simProject(t, sim, ids, tt.secret)
				}
			})
			preferShow(s)
			text := scrapeExposition(t, s, 3*time.Second) // the slow first call holds the others 2 s (modelarts firstContactWait)
			if got, _ := sampleValue(t, text, "modelarts_up"); got != tt.wantUp {
				t.Errorf("modelarts_up = %q, want %s", got, tt.wantUp)
			}
			for _, id := range ids {
				want := map[bool]string{true: "0", false: "1"}[slices.Contains(tt.wantDown, id)]
				if got, _ := sampleValue(t, text, "modelarts_image_up", `id="`+id+`"`); got != want {
					t.Errorf("image %s: up = %q, want %s", id, got, want)
				}
			}
			if calls := apiCalls(sim); calls > tt.wantCalls {
				t.Errorf("%d calls, want at most %d", calls, tt.wantCalls)
			}
		})
	}
}

// TestBelieveNoBad200: an answer about another image, or without id or
// status, downs that image; impossible values export no series and are
// logged once, not every scrape.
func TestBelieveNoBad200(t *testing.T) {
	t.Parallel()
	ids := modelartstest.SampleIDs()
	target := modelartstest.SampleIDTrainingActive
	tests := []struct {
		name     string
		kind     modelartstest.FaultKind
		change   func(*modelarts.Image)
		wantDown bool
		missing  string // the series the target must not have
		logged   string
	}{
		{name: "another image's body", kind: modelartstest.FaultOtherImage, wantDown: true, logged: "Failed to fetch image"},
		{name: "{}", kind: modelartstest.FaultEmptyObject, wantDown: true, logged: "Failed to fetch image"},
		{name: "negative size", kind: modelartstest.FaultNegativeSize, missing: "modelarts_image_size_bytes", logged: "negative size"},
		{name: "create_at before 1970", change: func(img *modelarts.Image) { img.CreateAt = -5 },
			missing: "modelarts_image_created_timestamp_seconds", logged: "create_at out of range"},
		{name: "update_at after year 9999", change: func(img *modelarts.Image) { img.UpdateAt = 1 << 60 },
			missing: "modelarts_image_updated_timestamp_seconds", logged: "update_at out of range"},
	}
	for _, tt := range tests {
		for _, oneByOne := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/one by one %v", tt.name, oneByOne), func(t *testing.T) {
				sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
				defer sim.Close()
				if tt.kind != "" {
					sim.AddFault(modelartstest.Fault{Kind: tt.kind, ImageID: target})
				}
				if tt.change != nil {
					img, _ := sim.Image(target)
					tt.change(&img)
					sim.SetImage(img)
				}
				s, logs := simScraper(t, sim, ids, nil)
				if oneByOne {
					preferShow(s)
				}
				var text string
				for range 3 {
					text = scrapeExposition(t, s, 10*time.Second)
				}
				for _, id := range ids {
					want := map[bool]string{true: "0", false: "1"}[id == target && tt.wantDown]
					if got, _ := sampleValue(t, text, "modelarts_image_up", `id="`+id+`"`); got != want {
						t.Errorf("image %s: up = %q, want %s", id, got, want)
					}
				}
				if tt.missing != "" && strings.Contains(text, tt.missing+`{arch="`) && lineOf(strings.ReplaceAll(text, `project="p"`, `project="victim"`), tt.missing, target) != "" {
					t.Errorf("the image exports %s", tt.missing)
				}
				lines := logs.take()
				n := strings.Count(lines, tt.logged)
				if want := map[bool]int{true: 3, false: 1}[tt.wantDown]; n != want {
					t.Errorf("%q logged %d times over 3 scrapes, want %d:\n%s", tt.logged, n, want, lines)
				}
				if tt.wantDown && !requestIDRe.MatchString(lines) {
					t.Errorf("the failure is logged without its request id:\n%s", lines)
				}
			})
		}
	}
}

// pagesOf is the ListImage calls a listing of images takes, a page of each
// type, at size records a page.
func pagesOf(images []modelarts.Image, size int) int {
	n := map[string]int{"BUILD_IN": 0, "DEDICATED": 0}
	for _, img := range images {
		n[img.Type]++
	}
	return max((n["BUILD_IN"]+size-1)/size, 1) + max((n["DEDICATED"]+size-1)/size, 1)
}

// TestBadCredentialsCostOneCall: a wrong key costs one call, however many
// images, listed or fetched one by one.
func TestBadCredentialsCostOneCall(t *testing.T) {
	t.Parallel()
	images := modelartstest.GenerateImages(2000, 2)
	sim := modelartstest.NewServer(modelartstest.Options{Images: images})
	defer sim.Close()
	for _, n := range []int{2, 10, 2000} {
		sim.ResetCounters()
		res := scrapeOnce(simProject(t, sim, idsOf(images[:n]), "wrong-secret-key"))
		if got := sim.Requests(""); got != 1 {
			t.Errorf("%d IDs: %d calls with a wrong key, want 1", n, got)
		}
		for _, r := range res.Images {
			if res.Up || r.Err == nil {
				t.Fatalf("%d IDs: up %v, image %s error %v; want down", n, res.Up, r.ID, r.Err)
			}
		}
	}
}

// TestFailedListingCausesNoStorm: when the listing fails, the IDs it lacks
// are fetched one by one in turns, showImageBudget a scrape, never all at once.
func TestFailedListingCausesNoStorm(t *testing.T) {
	t.Parallel()
	f := &fakeAPI{images: fakeImages(5000), listErr: serverErr()}
	s := NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: f, ImageIDs: idsOf(f.images), Concurrency: 10}})
	up := map[string]bool{}
	for range 3 {
		res := s.Scrape(context.Background())[0]
		for _, r := range res.Images {
			if r.Err == nil {
				up[r.ID] = true
			} else if !strings.Contains(r.Err.Error(), "not listed") {
				t.Fatalf("image %s: err = %v; want the listing's error", r.ID, r.Err)
			}
		}
	}
	if f.listCalls.Load() != 6 || f.showCalls.Load() != 3*showImageBudget || len(up) != 3*showImageBudget {
		t.Errorf("ListImage %d, ShowImage %d, %d images up over 3 scrapes; want 6 (a page of each type), %d, %d in turns",
			f.listCalls.Load(), f.showCalls.Load(), len(up), 3*showImageBudget, 3*showImageBudget)
	}
}

// TestFailedPageFallsBackForFewImages: a page fails, and the few IDs it held
// are fetched one by one.
func TestFailedPageFallsBackForFewImages(t *testing.T) {
	t.Parallel()
	f := &fakeAPI{images: fakeImages(1040), listErr: serverErr(), listErrFrom: 1} // the pages after the first fail
	wanted := idsOf(f.images[960:])                                               // 40 on the first page, 40 on the second
	assertAllUp(t, scrapeOnce(Project{Name: "p", Client: f, ImageIDs: append(idsOf(f.images[:20]), wanted...), Concurrency: 10}), 100)
	if f.listCalls.Load() != 3 || f.showCalls.Load() != 40 {
		t.Errorf("ListImage %d, ShowImage %d; want 3, 40", f.listCalls.Load(), f.showCalls.Load())
	}
}

// TestDiscovery: configured and discovered images are exported once each;
// configured IDs a listing returned cost no further call.
func TestDiscovery(t *testing.T) {
	t.Parallel()
	images := modelartstest.GenerateImages(300, 3)
	var builtIn, dedicated []string
	for _, img := range images {
		if img.Type == "BUILD_IN" {
			builtIn = append(builtIn, img.ID)
		} else {
			dedicated = append(dedicated, img.ID)
		}
	}
	const missing = "00000000-0000-4000-8000-000000000404"
	sim := modelartstest.NewServer(modelartstest.Options{Images: images})
	defer sim.Close()
	p := simProject(t, sim, []string{builtIn[0], dedicated[0], dedicated[1], missing}, modelartstest.DemoSecretKey)
	p.Discovery = &modelarts.ListOptions{Type: "BUILD_IN"}
	res := scrapeOnce(p)
	wantIDs := len(builtIn) + 3
	if len(res.Images) != wantIDs {
		t.Fatalf("%d images, want %d (%d discovered, 3 more configured)", len(res.Images), wantIDs, len(builtIn))
	}
	// BUILD_IN for discovery, DEDICATED for the configured IDs, ShowImage for the one no listing has.
	if sim.Requests(modelartstest.OpListImage) != 2 || sim.Requests(modelartstest.OpShowImage) != 1 {
		t.Errorf("ListImage %d, ShowImage %d calls; want 2, 1", sim.Requests(modelartstest.OpListImage), sim.Requests(modelartstest.OpShowImage))
	}
	if n, err := testutil.GatherAndCount(gatherer([]ProjectResult{res}), "modelarts_image_up"); err != nil || n != wantIDs {
		t.Errorf("%d modelarts_image_up series, want %d", n, wantIDs)
	}
}

// TestDiscoveredImageGoneIsForgotten: an image a complete discovery listing
// no longer returns has no series, and its last good value is dropped.
func TestDiscoveredImageGoneIsForgotten(t *testing.T) {
	t.Parallel()
	f := &fakeAPI{images: fakeImages(10)}
	s := NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: f, Concurrency: 2, Discovery: &modelarts.ListOptions{}}})
	if n := len(s.Scrape(context.Background())[0].Images); n != 10 {
		t.Fatalf("%d images, want 10", n)
	}
	f.images = f.images[1:]
	if n := len(s.Scrape(context.Background())[0].Images); n != 9 {
		t.Errorf("%d images after one vanished, want 9", n)
	}
	if n := len(s.states[0].images); n != 9 {
		t.Errorf("%d last good values kept, want 9", n)
	}
}

// TestOneBadImageSparesItsPage: when one element of a ListImage page does not
// decode, that image alone reports down, naming the field; the others are
// up, and nothing is fetched again one by one.
func TestOneBadImageSparesItsPage(t *testing.T) {
	t.Parallel()
	images := modelartstest.GenerateImages(200, 4)
	bad := images[120].ID
	for _, tt := range []struct {
		name      string
		maxPage   int
		discovery bool
	}{
		{name: "configured, one page", maxPage: 1000},
		{name: "configured, pages of 50", maxPage: 50},
		{name: "discovered, pages of 50", maxPage: 50, discovery: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sim := modelartstest.NewServer(modelartstest.Options{Images: images, MaxPageSize: tt.maxPage})
			defer sim.Close()
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
			if got, want := sim.Requests(modelartstest.OpListImage), pagesOf(images, tt.maxPage); got != want {
				t.Errorf("%d ListImage calls, want %d", got, want)
			}
			if got := sim.Requests(modelartstest.OpShowImage); got != 0 {
				t.Errorf("%d ShowImage calls, want 0", got)
			}
		})
	}
}

// TestListingForbidden: a policy that allows ShowImage but not ListImage
// (403 ModelArts.0108 on the listing): the images are fetched one by one in
// turns, and from the next scrape on, all of them, without listing.
func TestListingForbidden(t *testing.T) {
	t.Parallel()
	images := modelartstest.GenerateImages(60, 5)
	sim := modelartstest.NewServer(modelartstest.Options{Images: images})
	defer sim.Close()
	sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultStatus, Operation: modelartstest.OpListImage, Status: 403, ErrorCode: "ModelArts.0108"})
	s, _ := simScraper(t, sim, idsOf(images), nil)
	first := s.Scrape(context.Background())[0]
	up := 0
	for _, r := range first.Images {
		if r.Err == nil {
			up++
		}
	}
	if !first.Up || up != showImageBudget {
		t.Errorf("first scrape: up %v, %d images up; want true, %d (one turn)", first.Up, up, showImageBudget)
	}
	sim.ResetCounters()
	assertAllUp(t, s.Scrape(context.Background())[0], len(images))
	if n := sim.Requests(modelartstest.OpListImage); n != 0 {
		t.Errorf("%d ListImage calls in the second scrape, want 0", n)
	}
}
