// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build load

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/modelarts-exporter/modelarts_exporter/internal/procs"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// envDuration and envInt read the knobs of make load.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 60s", name, v)
	}
	return d
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// TestLoad runs many concurrent scrapers against the exporter while the
// simulator's faults are switched on and off, and checks that no scrape
// fails, that no image outside the faulted ones reports down, and that the
// exporter's goroutines and memory stay flat. Settings (make load):
//
//	LOAD_DURATION  how long the load runs (default 60s)
//	LOAD_SCRAPERS  concurrent scrapers (default 20; keep it at or below --web.max-requests, 40)
//	LOAD_IMAGES    images per project (default 50)
func TestLoad(t *testing.T) {
	requireBinaries(t)
	duration := envDuration(t, "LOAD_DURATION", 60*time.Second)
	scrapers := envInt(t, "LOAD_SCRAPERS", 20)
	dir := keepOnFailure(t, "modelarts-load-")
	sim, simURL := startSimulator(t, dir, strconv.Itoa(envInt(t, "LOAD_IMAGES", 50)))
	var ids []string
	for _, img := range simImages(t, simURL) {
		ids = append(ids, img.ID)
	}
	if len(ids) < 4 {
		t.Fatalf("the simulator has %d images, want at least 4", len(ids))
	}
	faultedIDs := ids[1:4] // not the first: with it the whole project would be tried alone first
	faulted := map[string]bool{}
	for _, id := range faultedIDs {
		faulted[id] = true
	}
	expURL := startLoadExporter(t, dir, simURL, ids)

	began := time.Now()
	idle, err := readSample(expURL, began) // one scrape: token fetched, pools opened
	if err == nil {
		time.Sleep(time.Second)
		idle, err = readSample(expURL, began)
	}
	must(t, err)

	t.Logf("%d scrapers for %v against %d images x 2 projects (AK/SK and token); faults on %d images, switched every 2s",
		scrapers, duration, len(ids), len(faultedIDs))
	runCtx, cancel := context.WithTimeout(t.Context(), duration)
	defer cancel()
	res := &result{}
	var wg sync.WaitGroup
	for range scrapers {
		wg.Go(func() { scraper(runCtx, expURL, faulted, res) })
	}
	var toggles, expiries atomic.Int64
	var adminErr atomic.Value
	wg.Go(func() { switchFaults(runCtx, simURL, faultedIDs, &toggles, &expiries, &adminErr) })

	// The exporter's health every 2s.
	var samples []sample
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if smp, err := readSample(expURL, began); err == nil {
					samples = append(samples, smp)
				}
			case <-runCtx.Done():
				return
			}
		}
	})
	wg.Wait()
	must(t, t.Context().Err())

	// After the load: faults off, then the simulator stops, which closes every
	// connection to it. Idle keep-alive connections would otherwise outlive the
	// load by minutes (prometheus/common keeps them 5 minutes), and with them
	// two goroutines and a descriptor each. With the API gone, the exporter
	// must be back where it was before the load.
	_ = doJSON(t.Context(), http.MethodDelete, simURL+"/-/sim/faults", nil, http.StatusNoContent, nil)
	sim.Stop()
	time.Sleep(3 * time.Second)
	after, err := readSample(expURL, began)
	if err != nil {
		t.Fatalf("the exporter after the load: %v", err)
	}

	// The first third of the samples is the warm-up (connection pools fill);
	// the second third is compared with the last. Goroutines and file
	// descriptors by their maximum; memory by its median, because a sample
	// taken while the oversized fault is on sees capped (1 MiB) oversized bodies in flight.
	third := len(samples) / 3
	early, late := window(samples[third:2*third]), window(samples[2*third:])
	const mib = 1 << 20
	slices.Sort(res.latencies)
	pct := func(p float64) time.Duration {
		if len(res.latencies) == 0 {
			return 0
		}
		return res.latencies[min(len(res.latencies)-1, int(p*float64(len(res.latencies))))]
	}
	t.Logf(`summary
  duration            %v, %d scrapers, %d images x 2 projects
  scrapes             %d (%.1f/s), failed %d
  latency             p50 %v, p99 %v, max %v
  faults switched on  %d times (%d kinds, on %d images), tokens expired %d times
  faulted images down %d observations (expected: the faults bite)
  other images down   %d observations (must be 0)
  rejected scrapes    %v (503 from --web.max-requests)
  goroutines          before %v -> under load max %v early, %v late -> after %v
  heap alloc          before %.1f MiB -> under load median %.1f MiB early, %.1f MiB late -> after %.1f MiB
  resident memory     before %.1f MiB -> under load median %.1f MiB early, %.1f MiB late -> after %.1f MiB
  open fds            before %v -> under load max %v early, %v late -> after %v
  ("after": 3s after the load, with the simulator stopped so that idle API connections close)
  examples            %s`,
		duration, scrapers, len(ids),
		res.scrapes.Load(), float64(res.scrapes.Load())/duration.Seconds(), res.failed.Load(),
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond),
		toggles.Load(), len(faults), len(faultedIDs), expiries.Load(),
		res.faultedDown.Load(), res.strayDown.Load(), after.rejectedScrapes,
		idle.goroutines, early.goroutines, late.goroutines, after.goroutines,
		idle.heapAlloc/mib, early.heapAlloc/mib, late.heapAlloc/mib, after.heapAlloc/mib,
		idle.rss/mib, early.rss/mib, late.rss/mib, after.rss/mib,
		idle.openFDs, early.openFDs, late.openFDs, after.openFDs,
		strings.Join(res.examples, "\n                      "))

	t.Run("the simulator's admin API took every switch", func(t *testing.T) {
		if err, _ := adminErr.Load().(error); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no scrape fails", func(t *testing.T) {
		if n := res.failed.Load(); n > 0 {
			t.Fatalf("%d of %d scrapes failed, want 0", n, res.scrapes.Load())
		}
	})
	t.Run("no image without a fault reports down", func(t *testing.T) {
		if n := res.strayDown.Load(); n > 0 {
			t.Fatalf("%d times an image without a fault reported modelarts_image_up 0, want 0", n)
		}
	})
	t.Run("the faults bite: faulted images report down", func(t *testing.T) {
		if res.faultedDown.Load() == 0 {
			t.Fatal("no faulted image was ever seen down, want some")
		}
	})
	t.Run("goroutines, descriptors and memory stay flat under load", func(t *testing.T) {
		if len(samples) < 6 {
			t.Fatalf("%d samples of the exporter's metrics, want at least 6 (LOAD_DURATION of 14s or more)", len(samples))
		}
		// Goroutines and descriptors follow the connection pools, which grow
		// until scrapers x concurrency x projects connections are open: a leak
		// of one per scrape or per failed call (thousands in a minute) is far
		// beyond this tolerance, the pools' fluctuation is not.
		if late.goroutines > early.goroutines*1.5+50 {
			t.Errorf("goroutines grew under load: %v early, %v late; want at most x1.5+50", early.goroutines, late.goroutines)
		}
		if late.openFDs > early.openFDs*1.5+50 {
			t.Errorf("open file descriptors grew under load: %v early, %v late; want at most x1.5+50", early.openFDs, late.openFDs)
		}
		if late.heapAlloc > early.heapAlloc*1.5+32*mib {
			t.Errorf("heap grew under load: median %.1f MiB early, %.1f MiB late; want at most x1.5+32 MiB", early.heapAlloc/mib, late.heapAlloc/mib)
		}
		if late.rss > early.rss*1.5+64*mib {
			t.Errorf("resident memory grew under load: median %.1f MiB early, %.1f MiB late; want at most x1.5+64 MiB", early.rss/mib, late.rss/mib)
		}
	})
	t.Run("goroutines and descriptors come back down after the load", func(t *testing.T) {
		if after.goroutines > idle.goroutines+10 {
			t.Errorf("goroutines: %v before the load, %v after; want at most 10 more", idle.goroutines, after.goroutines)
		}
		if after.openFDs > idle.openFDs+10 {
			t.Errorf("file descriptors: %v before the load, %v after; want at most 10 more", idle.openFDs, after.openFDs)
		}
	})
}

// startLoadExporter starts the exporter with two projects over every image,
// one per authentication scheme, with the simulator's fake demo credentials,
// and returns its URL.
func startLoadExporter(t *testing.T, dir, simURL string, ids []string) string {
	writeFile(t, filepath.Join(dir, "sk"), modelartstest.DemoSecretKey+"\n")
	cfgPath := filepath.Join(dir, "modelarts_exporter.yml")
	writeFile(t, cfgPath, fmt.Sprintf(`global:
  scrape_timeout: 5s
projects:
  - name: aksk
    region: %[3]s
    project_id: %[4]s
    modelarts_endpoint: %[1]s
    iam_endpoint: %[1]s
    auth: {access_key: %[5]s, secret_key_file: sk}
    images: %[2]s
  - name: token
    region: %[3]s
    modelarts_endpoint: %[1]s
    iam_endpoint: %[1]s
    auth: {domain_name: %[6]s, username: %[7]s, password: %[8]s}
    images: %[2]s
`, simURL, "["+strings.Join(ids, ", ")+"]", modelartstest.DefaultRegion, modelartstest.DefaultProjectID,
		modelartstest.DemoAccessKey, modelartstest.DemoDomain, modelartstest.DemoUser, modelartstest.DemoPassword))
	addr := procs.FreeAddrs(t, 1)[0]
	exp := procs.Start(t, dir, "exporter", exporterBin, "--web.listen-address="+addr, "--config.file="+cfgPath)
	must(t, exp.WaitReady("http://"+addr+"/-/healthy"))
	t.Cleanup(func() {
		if exp.Exited() {
			t.Errorf("the exporter exited during the load, want it running (log %s)", exp.Log)
		}
	})
	return "http://" + addr
}

// switchFaults turns each fault on for 1s and off for 1s, in turn, on the
// faulted images, and expires every token every 5s, until ctx ends.
func switchFaults(ctx context.Context, simURL string, faultedIDs []string, toggles, expiries *atomic.Int64, adminErr *atomic.Value) {
	admin := context.WithoutCancel(ctx)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		var err error
		if i%2 == 0 {
			f := faults[(i/2)%len(faults)]
			for _, id := range faultedIDs {
				withID := map[string]any{"image_id": id}
				for k, v := range f {
					withID[k] = v
				}
				if err = doJSON(admin, http.MethodPost, simURL+"/-/sim/faults", withID, http.StatusCreated, nil); err != nil {
					break
				}
			}
			toggles.Add(1)
		} else {
			err = doJSON(admin, http.MethodDelete, simURL+"/-/sim/faults", nil, http.StatusNoContent, nil)
		}
		if err == nil && i%5 == 4 {
			err = doJSON(admin, http.MethodPost, simURL+"/-/sim/tokens/expire", nil, http.StatusNoContent, nil)
			expiries.Add(1)
		}
		if err != nil {
			adminErr.Store(err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
}

// faults are switched on, one after the other, for the faulted images only.
var faults = []map[string]any{
	// Aimed at ShowImage only. A throttled ListImage page is retried after
	// 2-5 s when that fits the shared fetch's deadline, which the health
	// samples (no timeout header: global.scrape_timeout, 5s) stretch past the
	// scrapers' 3s. While it waits, the page holds every image it lists, and
	// the scrapes that end first rightly see them down.
	{"kind": "status", "status": 429, "operation": "ShowImage"},
	{"kind": "status", "status": 429, "error_code": "ModelArts.4206", "operation": "ShowImage"},
	{"kind": "status", "status": 500},
	{"kind": "raw", "status": 502},
	{"kind": "raw", "status": 503},
	// Beyond the scrape deadline. Aimed at ShowImage only: a ListImage page
	// this slow holds every image it lists, which are then rightly down.
	{"kind": "delay", "delay": "10s", "operation": "ShowImage"},
	{"kind": "malformed_json"},
	{"kind": "truncated_json"},
	{"kind": "reset"},
	{"kind": "oversized", "size": 9 << 20},
	{"kind": "wrong_types"},
}

// sample is the exporter's own health at one moment.
type sample struct {
	at              time.Duration
	goroutines      float64
	heapAlloc, rss  float64
	openFDs         float64
	rejectedScrapes float64
}

func readSample(base string, since time.Time) (sample, error) {
	resp, err := httpClient.Get(base + "/metrics")
	if err != nil {
		return sample{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return sample{}, err
	}
	get := func(name string) float64 {
		mf := families[name]
		if mf == nil || len(mf.GetMetric()) == 0 {
			return -1
		}
		m := mf.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return sample{
		at:              time.Since(since),
		goroutines:      get("go_goroutines"),
		heapAlloc:       get("go_memstats_heap_alloc_bytes"),
		rss:             get("process_resident_memory_bytes"),
		openFDs:         get("process_open_fds"),
		rejectedScrapes: get("modelarts_exporter_scrapes_rejected_total"),
	}, nil
}

// result counts what the scrapers saw.
type result struct {
	scrapes, failed, strayDown, faultedDown atomic.Int64
	mu                                      sync.Mutex
	latencies                               []time.Duration
	examples                                []string
}

func (r *result) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.examples) < 10 {
		r.examples = append(r.examples, fmt.Sprintf(format, args...))
	}
}

func scraper(ctx context.Context, base string, faulted map[string]bool, res *result) {
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, base+"/metrics", nil)
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "3")
		begin := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			res.failed.Add(1)
			res.note("scrape: %v", err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		res.scrapes.Add(1)
		res.mu.Lock()
		res.latencies = append(res.latencies, time.Since(begin))
		res.mu.Unlock()
		if err != nil || resp.StatusCode != http.StatusOK {
			res.failed.Add(1)
			res.note("scrape: HTTP %d %v: %.200s", resp.StatusCode, err, body)
			continue
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			res.failed.Add(1)
			res.note("parse: %v", err)
			continue
		}
		for _, m := range families["modelarts_image_up"].GetMetric() {
			if m.GetGauge().GetValue() == 1 {
				continue
			}
			var id, project string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "id":
					id = l.GetValue()
				case "project":
					project = l.GetValue()
				}
			}
			if faulted[id] {
				res.faultedDown.Add(1)
			} else {
				res.strayDown.Add(1)
				res.note("image %s of project %s down although no fault is aimed at it", id, project)
			}
		}
	}
}

// window sums up samples: the maximum of goroutines and descriptors, the
// median of memory.
func window(samples []sample) sample {
	var w sample
	var heap, rss []float64
	for _, smp := range samples {
		w.goroutines = max(w.goroutines, smp.goroutines)
		w.openFDs = max(w.openFDs, smp.openFDs)
		heap = append(heap, smp.heapAlloc)
		rss = append(rss, smp.rss)
	}
	if len(samples) > 0 {
		slices.Sort(heap)
		slices.Sort(rss)
		w.heapAlloc, w.rss = heap[len(heap)/2], rss[len(rss)/2]
	}
	return w
}
