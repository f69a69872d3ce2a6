// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// unreadable makes path unreadable for the exporter. chmod 000 does not stop
// root, and CI runs the tests as root: then the file is replaced by a
// directory of the same name, which no user can read as a file. It returns
// how it did it.
func unreadable(t *testing.T, path string) string {
	t.Helper()
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(path); err != nil {
		return "chmod 000"
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	return "replaced by a directory (running as root: chmod 000 does not stop reads)"
}

// restore puts the good configuration back, whatever unreadable did.
func restore(t *testing.T, path string, content []byte) {
	t.Helper()
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadFaults breaks the configuration file in three ways and reloads
// (POST /-/reload; SIGHUP takes the same path, see TestBinaryReload): the
// answer is a 500 saying why, the failure is logged, the running
// configuration keeps serving, ..._config_last_reload_successful says 0 and
// its success timestamp stays, and a good file recovers.
func TestReloadFaults(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	breakages := []struct {
		name    string
		apply   func(t *testing.T, path string) string
		wantErr string // in the log and in the answer to POST /-/reload
	}{
		{"broken file", func(t *testing.T, path string) string {
			if err := os.WriteFile(path, []byte("projects:\n  - name: [unclosed\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return "syntax error"
		}, "line"},
		{"missing file", func(t *testing.T, path string) string {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return "removed"
		}, "no such file or directory"},
		{"unreadable file", unreadable, "read configuration"},
	}
	ids := modelartstest.SampleIDs()[:2]
	cfgPath := testConfig(t, t.TempDir(), sim, ids)
	good, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	_, mux, logs := startInProcess(t, cfgPath, options{lifecycle: true})
	reload := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/-/reload", nil))
		return rec
	}
	for _, b := range breakages {
		t.Run(b.name, func(t *testing.T) {
			_, families := scrapeIn(t, mux)
			loadedAt := value(t, families, "modelarts_exporter_config_last_reload_success_timestamp_seconds", nil)
			t.Logf("configuration file %s", b.apply(t, cfgPath))
			logsBefore := len(logs.String())
			if rec := reload(); rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), b.wantErr) {
				t.Errorf("POST /-/reload: %d %q, want 500 saying %q", rec.Code, rec.Body, b.wantErr)
			}
			_, families = scrapeIn(t, mux)
			if v := value(t, families, "modelarts_exporter_config_last_reload_successful", nil); v != 0 {
				t.Errorf("reload_successful = %v, want 0", v)
			}
			for _, project := range []string{"aksk", "token"} {
				for _, id := range ids {
					if v := gaugeValue(families, "modelarts_image_up", map[string]string{"project": project, "id": id}); v != 1 {
						t.Errorf("the old configuration stopped serving: image_up{%s,%s} = %v", project, id, v)
					}
				}
			}
			if v := value(t, families, "modelarts_exporter_config_last_reload_success_timestamp_seconds", nil); v != loadedAt {
				t.Errorf("success timestamp moved on a failed reload: %v -> %v", loadedAt, v)
			}
			logged := logs.String()[logsBefore:]
			if !strings.Contains(logged, "Error reloading configuration") || !strings.Contains(logged, b.wantErr) {
				t.Errorf("the failed reload is not logged with %q:\n%s", b.wantErr, logged)
			}

			// A good file again: the next reload succeeds.
			restore(t, cfgPath, good)
			if rec := reload(); rec.Code != http.StatusOK {
				t.Fatalf("POST /-/reload with the good file: %d %s", rec.Code, rec.Body)
			}
			if _, families := scrapeIn(t, mux); value(t, families, "modelarts_exporter_config_last_reload_successful", nil) != 1 {
				t.Error("reload_successful is not 1 after a good reload")
			}
		})
	}
}

// TestScrapeFlood sends many scrapes at once against a slow API: only
// --web.max-requests of them reach the API, the rest are refused at once
// and counted, health checks still answer, and the goroutines go back down.
// Not parallel: it counts the goroutines of the test process.
func TestScrapeFlood(t *testing.T) {
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	ids := modelartstest.SampleIDs()[:3]
	_, mux, _ := startInProcess(t, testConfig(t, t.TempDir(), sim, ids), options{maxRequests: 2})
	addr := listen(t, mux, idleTimeout)
	scrapeIn(t, mux) // the token is fetched

	const (
		flood   = 12
		latency = time.Second // long enough for every request of the flood to arrive while two do API work
	)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	fetch := func(path string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	run := func() map[int]int {
		codes := make(chan int, flood)
		var wg sync.WaitGroup
		for range flood {
			wg.Go(func() { codes <- fetch("/metrics") })
		}
		time.Sleep(latency / 4)
		healthStart := time.Now()
		if code := fetch("/-/healthy"); code != http.StatusOK {
			t.Errorf("/-/healthy during the flood: %d", code)
		}
		if d := time.Since(healthStart); d > latency/2 {
			t.Errorf("/-/healthy took %v during the flood", d)
		}
		wg.Wait()
		close(codes)
		count := map[int]int{}
		for c := range codes {
			count[c]++
		}
		return count
	}

	sim.SetLatency(latency)
	run() // warm-up: the connection pools to the API fill up
	sim.SetLatency(0)
	time.Sleep(100 * time.Millisecond)
	baseline := runtime.NumGoroutine()
	sim.SetLatency(latency)
	sim.ResetCounters()
	start := time.Now()
	count := run()
	if count[http.StatusOK] != 2 || count[http.StatusServiceUnavailable] != flood-2 {
		t.Errorf("answers %v, want 2 x 200 and %d x 503", count, flood-2)
	}
	// Two scrapes, two projects, three images each: at most 12 API calls.
	if n := sim.Requests(modelartstest.OpShowImage); n > 2*2*len(ids) {
		t.Errorf("%d ShowImage calls for 2 admitted scrapes, want at most %d", n, 2*2*len(ids))
	}
	if d := time.Since(start); d > 5*latency {
		t.Errorf("the flood took %v", d)
	}

	sim.SetLatency(0)
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > baseline+3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines 10s after the flood, %d before", runtime.NumGoroutine(), baseline)
		}
	}
	_, families := scrapeIn(t, mux)
	if v := value(t, families, "modelarts_exporter_scrapes_rejected_total", nil); v != 2*(flood-2) {
		t.Errorf("scrapes_rejected_total = %v, want %d", v, 2*(flood-2))
	}
}

// TestScrapeMaxTimeout: whatever timeout a client claims, the API work of a
// scrape ends at --scrape.max-timeout, and the images it could not fetch
// report down.
func TestScrapeMaxTimeout(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	const maxTimeout = 200 * time.Millisecond
	_, mux, _ := startInProcess(t, testConfig(t, t.TempDir(), sim, modelartstest.SampleIDs()[:2]), options{maxTimeout: maxTimeout})
	scrapeIn(t, mux)
	sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultDelay, Delay: time.Minute})

	start := time.Now()
	rec := get(mux, "/metrics", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"3600"}})
	if d := time.Since(start); d > maxTimeout+2*time.Second {
		t.Errorf("the scrape took %v with --scrape.max-timeout=%v", d, maxTimeout)
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", rec.Code, rec.Body)
	}
	families := parseText(t, rec.Body.String())
	for _, id := range modelartstest.SampleIDs()[:2] {
		if v := value(t, families, "modelarts_image_up", map[string]string{"project": "aksk", "id": id}); v != 0 {
			t.Errorf("image_up{%s} = %v, want 0 after the deadline", id, v)
		}
	}
}
