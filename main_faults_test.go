// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// do sends one request to the exporter and returns the status and body.
func (e *runningExporter) do(t *testing.T, method, path string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+e.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitFor scrapes until cond holds, for up to 10 seconds.
func (e *runningExporter) waitFor(t *testing.T, what string, cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, families := e.scrape(t)
		if cond(families) {
			return families
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s still not: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gaugeValue returns the value of the series of name with labels, or -1 when
// there is none (unlike value, it does not fail the test).
func gaugeValue(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	mf := families[name]
	if mf == nil {
		return -1
	}
	for _, m := range mf.GetMetric() {
		match := true
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				found = found || (lp.GetName() == k && lp.GetValue() == v)
			}
			match = match && found
		}
		if match {
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

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

// TestBinaryReloadFaults breaks the configuration file in three ways and
// reloads through both paths: the running configuration keeps serving,
// ..._config_last_reload_successful says 0, and a good file recovers.
func TestBinaryReloadFaults(t *testing.T) {
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
	for _, via := range []string{"SIGHUP", "POST /-/reload"} {
		t.Run(via, func(t *testing.T) {
			dir := t.TempDir()
			cfgPath := testConfig(t, dir, sim, modelartstest.SampleIDs()[:2])
			good, err := os.ReadFile(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			exp := startExporter(t, "--config.file="+cfgPath, "--web.enable-lifecycle")

			reload := func(t *testing.T) (int, string) {
				if via == "SIGHUP" {
					if err := exp.cmd.Process.Signal(syscall.SIGHUP); err != nil {
						t.Fatal(err)
					}
					return 0, ""
				}
				return exp.do(t, http.MethodPost, "/-/reload", nil)
			}
			for _, b := range breakages {
				t.Run(b.name, func(t *testing.T) {
					_, families := exp.scrape(t)
					loadedAt := value(t, families, "modelarts_exporter_config_last_reload_success_timestamp_seconds", nil)
					how := b.apply(t, cfgPath)
					t.Logf("configuration file %s", how)
					logsBefore := len(exp.logs.String())
					code, body := reload(t)
					if via != "SIGHUP" && (code != http.StatusInternalServerError || !strings.Contains(body, b.wantErr)) {
						t.Errorf("POST /-/reload: %d %q, want 500 saying %q", code, body, b.wantErr)
					}
					families = exp.waitFor(t, "reload_successful 0", func(f map[string]*dto.MetricFamily) bool {
						return gaugeValue(f, "modelarts_exporter_config_last_reload_successful", nil) == 0
					})
					for _, project := range []string{"aksk", "token"} {
						for _, id := range modelartstest.SampleIDs()[:2] {
							if v := gaugeValue(families, "modelarts_image_up", map[string]string{"project": project, "id": id}); v != 1 {
								t.Errorf("the old configuration stopped serving: image_up{%s,%s} = %v", project, id, v)
							}
						}
					}
					if v := gaugeValue(families, "modelarts_exporter_config_last_reload_success_timestamp_seconds", nil); v != loadedAt {
						t.Errorf("success timestamp moved on a failed reload: %v -> %v", loadedAt, v)
					}
					logged := exp.logs.String()[logsBefore:]
					if !strings.Contains(logged, "Error reloading configuration") || !strings.Contains(logged, b.wantErr) {
						t.Errorf("the failed reload is not logged with %q:\n%s", b.wantErr, logged)
					}

					// A good file again: the next reload succeeds.
					restore(t, cfgPath, good)
					reload(t)
					exp.waitFor(t, "reload_successful 1", func(f map[string]*dto.MetricFamily) bool {
						return gaugeValue(f, "modelarts_exporter_config_last_reload_successful", nil) == 1
					})
				})
			}
		})
	}
}

// TestBinaryScrapeFlood sends many scrapes at once against a slow API: only
// --web.max-requests of them reach the API, the rest are refused at once,
// health checks still answer, and the goroutines go back down.
func TestBinaryScrapeFlood(t *testing.T) {
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	dir := t.TempDir()
	ids := modelartstest.SampleIDs()[:3]
	cfgPath := testConfig(t, dir, sim, ids)
	exp := startExporter(t, "--config.file="+cfgPath, "--web.max-requests=2")
	exp.scrape(t) // the token is fetched

	const flood = 12
	sim.SetLatency(1500 * time.Millisecond)
	run := func() map[int]int {
		client := &http.Client{Transport: &http.Transport{}}
		defer client.CloseIdleConnections()
		codes := make(chan int, flood)
		var wg sync.WaitGroup
		for range flood {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, "http://"+exp.addr+"/metrics", nil)
				req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					codes <- 0
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				codes <- resp.StatusCode
			})
		}
		time.Sleep(300 * time.Millisecond)
		healthStart := time.Now()
		if code, _ := exp.do(t, http.MethodGet, "/-/healthy", nil); code != http.StatusOK {
			t.Errorf("/-/healthy during the flood: %d", code)
		}
		if d := time.Since(healthStart); d > time.Second {
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
	settled := func() float64 {
		time.Sleep(500 * time.Millisecond)
		_, families := exp.scrape(t)
		return value(t, families, "go_goroutines", nil)
	}

	run() // warm-up: the connection pools to the API fill up
	sim.SetLatency(0)
	baseline := settled()
	sim.SetLatency(1500 * time.Millisecond)
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
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("the flood took %v", d)
	}

	sim.SetLatency(0)
	families := exp.waitFor(t, "goroutines back to the baseline", func(f map[string]*dto.MetricFamily) bool {
		return gaugeValue(f, "go_goroutines", nil) <= baseline+3
	})
	t.Logf("go_goroutines: %v before the flood, %v after", baseline, value(t, families, "go_goroutines", nil))
	if v := value(t, families, "modelarts_exporter_scrapes_rejected_total", nil); v != 2*(flood-2) {
		t.Errorf("scrapes_rejected_total = %v, want %d", v, 2*(flood-2))
	}
}

// TestBinaryScrapeMaxTimeout: whatever timeout a client claims, the API work
// of a scrape ends at --scrape.max-timeout, and the images it could not fetch
// report down.
func TestBinaryScrapeMaxTimeout(t *testing.T) {
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	dir := t.TempDir()
	cfgPath := testConfig(t, dir, sim, modelartstest.SampleIDs()[:2])
	exp := startExporter(t, "--config.file="+cfgPath, "--scrape.max-timeout=1s")
	exp.scrape(t)
	sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultDelay, Delay: time.Minute})

	start := time.Now()
	code, body := exp.do(t, http.MethodGet, "/metrics", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"3600"}})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the scrape took %v with --scrape.max-timeout=1s", d)
	}
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range modelartstest.SampleIDs()[:2] {
		if v := value(t, families, "modelarts_image_up", map[string]string{"project": "aksk", "id": id}); v != 0 {
			t.Errorf("image_up{%s} = %v, want 0 after the deadline", id, v)
		}
	}
}

func TestNegativeLimitsRefused(t *testing.T) {
	for _, flag := range []string{"--web.max-requests=-1", "--scrape.max-timeout=-1s"} {
		if code := run([]string{flag, "--config.file=/nonexistent"}); code != 2 {
			t.Errorf("%s: exit %d, want 2", flag, code)
		}
	}
}
