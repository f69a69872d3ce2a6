// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// The conditions of the scale benchmarks (make bench): every API call takes
// benchLatency, the simulator serves at most benchConcurrency calls at once,
// and the exporter sends at most as many (global.concurrency).
const (
	benchLatency     = 20 * time.Millisecond
	benchConcurrency = 10
)

var benchSizes = []int{10, 1_000, 10_000}

// benchScraper is a scraper of one project configuring every image of sim.
func benchScraper(b *testing.B, url, projectID string, ids []string, p func(*Project)) *Scraper {
	b.Helper()
	project := simProjectAt(b, url, projectID, ids, modelartstest.DemoSecretKey)
	project.Concurrency = benchConcurrency
	if p != nil {
		p(&project)
	}
	return NewScraper(log.NewNopLogger(), []Project{project})
}

// scrapeAllUp scrapes and fails the benchmark unless every image is up.
func scrapeAllUp(b *testing.B, s *Scraper, want int) {
	res := s.Scrape(context.Background())[0]
	if !res.Up || len(res.Images) != want {
		b.Fatalf("up = %v, %d images; want true, %d", res.Up, len(res.Images), want)
	}
	for _, r := range res.Images {
		if r.Err != nil {
			b.Fatalf("image %s: %v", r.ID, r.Err)
		}
	}
}

// BenchmarkScrape is one full scrape of n configured images against the
// simulator with latency, and its ratio to two lower bounds:
//
//   - ratio: to calls × latency ÷ concurrency, the bound, which
//     ignores that calls come in whole rounds and that a listing's first
//     page tells how many more there are;
//   - ratio_rounds: to rounds × latency, where rounds = 1 + ⌈(calls−1) ÷
//     concurrency⌉ is the least number of latency periods those calls take
//     when one goes first.
func BenchmarkScrape(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("images=%d", n), func(b *testing.B) {
			images := modelartstest.GenerateImages(n, 1)
			sim := modelartstest.NewServer(modelartstest.Options{Images: images, Latency: benchLatency, MaxInFlight: benchConcurrency})
			b.Cleanup(sim.Close)
			s := benchScraper(b, sim.URL, sim.ProjectID(), idsOf(images), nil)
			scrapeAllUp(b, s, n) // connections open, strategy learnt
			sim.ResetCounters()
			b.ResetTimer()
			for b.Loop() {
				scrapeAllUp(b, s, n)
			}
			reportCalls(b, sim.Requests(""))
		})
	}
}

// reportCalls reports calls/op and the ratios of BenchmarkScrape.
func reportCalls(b *testing.B, total int) {
	calls := float64(total) / float64(b.N)
	perOp := b.Elapsed().Seconds() / float64(b.N)
	bound := calls * benchLatency.Seconds() / benchConcurrency
	rounds := 1 + math.Ceil((calls-1)/benchConcurrency)
	b.ReportMetric(calls, "calls/op")
	b.ReportMetric(perOp/bound, "ratio")
	b.ReportMetric(perOp/(rounds*benchLatency.Seconds()), "ratio_rounds")
}

// BenchmarkTwoScrapers: two Prometheus servers scrape 10,000 images.
//   - concurrent: both at the same moment, min_refresh_interval 0: they
//     share the fetch in flight;
//   - within_interval: one after the other, min_refresh_interval 30s: the
//     second is answered from the first's fetch (second_calls/op).
func BenchmarkTwoScrapers(b *testing.B) {
	const n = 10_000
	images := modelartstest.GenerateImages(n, 1)
	sim := modelartstest.NewServer(modelartstest.Options{Images: images, Latency: benchLatency, MaxInFlight: benchConcurrency})
	b.Cleanup(sim.Close)

	b.Run("concurrent", func(b *testing.B) {
		s := benchScraper(b, sim.URL, sim.ProjectID(), idsOf(images), nil)
		scrapeAllUp(b, s, n)
		sim.ResetCounters()
		for b.Loop() {
			var wg sync.WaitGroup
			wg.Go(func() { scrapeAllUp(b, s, n) })
			wg.Go(func() { scrapeAllUp(b, s, n) })
			wg.Wait()
		}
		b.ReportMetric(float64(sim.Requests(""))/float64(b.N), "calls/op")
	})
	b.Run("within_interval", func(b *testing.B) {
		clock := newTestClock()
		project := simProjectAt(b, sim.URL, sim.ProjectID(), idsOf(images), modelartstest.DemoSecretKey)
		project.Concurrency, project.MinRefreshInterval = benchConcurrency, 30*time.Second
		s := newScraper(log.NewNopLogger(), []Project{project}, clock.Now)
		scrapeAllUp(b, s, n)
		sim.ResetCounters()
		second := 0
		for b.Loop() {
			clock.Advance(30 * time.Second)
			scrapeAllUp(b, s, n)
			before := sim.Requests("")
			scrapeAllUp(b, s, n)
			second += sim.Requests("") - before
		}
		b.ReportMetric(float64(sim.Requests(""))/float64(b.N), "calls/op")
		b.ReportMetric(float64(second)/float64(b.N), "second_calls/op")
	})
}

// BenchmarkScrapeCPU is the exporter's own cost of one scrape of 10,000
// images: no latency, and the API's answers replayed from memory, so that
// the simulator's JSON encoding does not count. cpu-ms/op is the process's
// user+system CPU time per scrape; -benchmem adds B/op and allocs/op (the
// replaying server's share is a copy of each body).
func BenchmarkScrapeCPU(b *testing.B) {
	const n = 10_000
	url, projectID, ids := replayServer(b, n)
	s := benchScraper(b, url, projectID, ids, nil)
	scrapeAllUp(b, s, n)
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		scrapeAllUp(b, s, n)
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}

// BenchmarkHeapAfterScrapes scrapes 10,000 images 1,000 times and reports
// the live heap after a GC at scrape 10 and at scrape 1,000, and the growth
// in between. Run it with -benchtime=1x. (Rendering allocates per request
// and keeps nothing; BenchmarkRender measures it.)
func BenchmarkHeapAfterScrapes(b *testing.B) {
	const n, scrapes = 10_000, 1_000
	url, projectID, ids := replayServer(b, n)
	s := benchScraper(b, url, projectID, ids, nil)
	var at10, at1000 uint64
	for b.Loop() {
		for i := 1; i <= scrapes; i++ {
			scrapeAllUp(b, s, n)
			switch i {
			case 10:
				at10 = liveHeap()
			case scrapes:
				at1000 = liveHeap()
			}
		}
	}
	b.ReportMetric(float64(at10)/(1<<20), "heap-MB@10")
	b.ReportMetric(float64(at1000)/(1<<20), "heap-MB@1000")
	b.ReportMetric((float64(at1000)-float64(at10))/(1<<20), "growth-MB")
}

// renderText gathers the families of results, checking their consistency
// as a registry would, and encodes them in the text format.
func renderText(results []ProjectResult) (string, error) {
	mfs, err := prometheus.Gatherers{gatherer(results)}.Gather()
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return "", err
		}
	}
	return buf.String(), nil
}

// replayServer serves n generated images: each distinct request is answered
// once by the simulator, then from memory.
func replayServer(b *testing.B, n int) (url, projectID string, ids []string) {
	images := modelartstest.GenerateImages(n, 1)
	sim := modelartstest.New(modelartstest.Options{Images: images})
	b.Cleanup(sim.Close)
	srv := httptest.NewServer(&replay{next: sim.Handler(), bodies: map[string][]byte{}})
	b.Cleanup(srv.Close)
	return srv.URL, sim.ProjectID(), idsOf(images)
}

// replay answers a GET from memory once next answered it with 200.
type replay struct {
	next   http.Handler
	mu     sync.Mutex
	bodies map[string][]byte
}

func (r *replay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	key := req.URL.RequestURI()
	r.mu.Lock()
	body, ok := r.bodies[key]
	r.mu.Unlock()
	if !ok {
		rec := httptest.NewRecorder()
		r.next.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		body = rec.Body.Bytes()
		r.mu.Lock()
		r.bodies[key] = body
		r.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// liveHeap is HeapAlloc right after a full GC.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
