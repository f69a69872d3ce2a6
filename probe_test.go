// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// get answers a GET of target with header, in process.
func get(mux http.Handler, target string, header http.Header) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	mux.ServeHTTP(rec, req)
	return rec
}

// parseText decodes an answer in the text format, by family name.
func parseText(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	return families
}

// startTwoProjects runs the exporter in process with the projects alpha (two
// sample images) and beta (three) of one simulator, fetches shared for an hour.
func startTwoProjects(t *testing.T) (*modelartstest.Server, *exporter, *http.ServeMux) {
	t.Helper()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	t.Cleanup(sim.Close)
	ids := modelartstest.SampleIDs()
	exp, mux, _ := startInProcess(t, writeConfig(t, "global:\n  min_refresh_interval: 1h\nprojects:\n"+
		akskProject(sim, "alpha", sim.URL, ids[:2], "")+akskProject(sim, "beta", sim.URL, ids[2:5], "")), options{})
	return sim, exp, mux
}

// TestProbe: /probe?project=NAME serves that project's series alone, with
// its up and duration and none of the exporter's own metrics, from the
// fetches the metrics path shares; a missing or unknown project is a 400
// that lists the configured ones.
func TestProbe(t *testing.T) {
	t.Parallel()
	sim, _, mux := startTwoProjects(t)

	for _, tt := range []struct{ target, problem string }{
		{"/probe", "Missing project parameter"},
		{"/probe?project=", "Missing project parameter"},
		{"/probe?project=gamma", `Unknown project "gamma"`},
	} {
		rec := get(mux, tt.target, nil)
		want := tt.problem + ": ask for /probe?project=NAME with one of the configured projects: alpha, beta.\n"
		if rec.Code != http.StatusBadRequest || rec.Body.String() != want {
			t.Errorf("GET %s: %d %q, want 400 %q", tt.target, rec.Code, rec.Body, want)
		}
	}

	if rec := get(mux, "/metrics", nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "modelarts_exporter_config_last_reload_successful 1") {
		t.Fatalf("/metrics: %d, without the exporter's own metrics:\n%s", rec.Code, rec.Body)
	}
	calls := sim.Stats().Requests
	for _, project := range []string{"alpha", "beta"} {
		rec := get(mux, "/probe?project="+project, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("/probe?project=%s: %d %s", project, rec.Code, rec.Body)
		}
		families := parseText(t, rec.Body.String())
		for _, name := range []string{"modelarts_up", "modelarts_scrape_duration_seconds"} {
			if mf := families[name]; mf == nil || len(mf.Metric) != 1 {
				t.Errorf("%s: %s is not one series:\n%s", project, name, rec.Body)
			}
		}
		if v := gaugeValue(families, "modelarts_up", map[string]string{"project": project}); v != 1 {
			t.Errorf("%s: modelarts_up = %v, want 1", project, v)
		}
		for name, mf := range families {
			if !strings.HasPrefix(name, "modelarts_") || strings.HasPrefix(name, "modelarts_exporter_") || strings.HasPrefix(name, "modelarts_api_") {
				t.Errorf("%s: %s is one of the exporter's own metrics", project, name)
			}
			for _, m := range mf.Metric {
				for _, l := range m.Label {
					if l.GetName() == "project" && l.GetValue() != project {
						t.Errorf("%s: a series of %s: %s", project, l.GetValue(), name)
					}
				}
			}
		}
	}
	if after := sim.Stats().Requests; len(after) != len(calls) || after["ShowImage"] != calls["ShowImage"] || after["ListImage"] != calls["ListImage"] {
		t.Errorf("API calls %v after the scrape of /metrics, %v after the probes: within min_refresh_interval they share its fetch", calls, after)
	}
}

// TestProbeCachesValuesPerProject: probing projects in turn encodes each
// project's unchanged values once, not at every probe.
func TestProbeCachesValuesPerProject(t *testing.T) {
	t.Parallel()
	sim, exp, mux := startTwoProjects(t)
	encoded := func() (n int64) {
		for _, x := range exp.state.Load().probes {
			n += x.valueEncodings.Load()
		}
		return n
	}
	for _, p := range []string{"alpha", "beta"} {
		if rec := get(mux, "/probe?project="+p, nil); rec.Code != http.StatusOK {
			t.Fatalf("probe %s: %d %s", p, rec.Code, rec.Body)
		}
	}
	first := encoded()
	if first == 0 {
		t.Fatal("no value families encoded by the first probes")
	}
	for range 3 {
		for _, p := range []string{"alpha", "beta"} {
			get(mux, "/probe?project="+p, nil)
		}
	}
	if n := encoded(); n != first {
		t.Errorf("value families encoded %d times after probing each project 4 times, want %d (once per project)", n, first)
	}

	// A reload that drops beta drops its cached answer; alpha's stays.
	alpha := exp.state.Load().probes["alpha"]
	if err := os.WriteFile(exp.f.configFile, []byte("global:\n  min_refresh_interval: 1h\nprojects:\n"+
		akskProject(sim, "alpha", sim.URL, modelartstest.SampleIDs()[:2], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := exp.reload(); err != nil {
		t.Fatal(err)
	}
	probes := exp.state.Load().probes
	if _, beta := probes["beta"]; beta || probes["alpha"] != alpha {
		t.Errorf("after a reload without beta: beta cached %v, alpha's cache kept %v; want false, true", beta, probes["alpha"] == alpha)
	}
}

// TestProbeTimeoutAndSlots: a probe's API work ends at its request's
// X-Prometheus-Scrape-Timeout-Seconds, and probes take the slots of
// --web.max-requests with the metrics path.
func TestProbeTimeoutAndSlots(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultDelay, Delay: time.Minute})
	_, mux, _ := startInProcess(t, writeConfig(t, "projects:\n"+akskProject(sim, "alpha", sim.URL, modelartstest.SampleIDs()[:1], "")), options{maxRequests: 1})

	start := time.Now()
	rec := get(mux, "/probe?project=alpha", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"0.2"}})
	if took := time.Since(start); rec.Code != http.StatusOK || took > 2*time.Second {
		t.Fatalf("a probe with a 0.2s timeout against an API that hangs: %d after %v", rec.Code, took)
	}
	if v := gaugeValue(parseText(t, rec.Body.String()), "modelarts_image_up", map[string]string{"project": "alpha"}); v != 0 {
		t.Errorf("modelarts_image_up = %v, want 0 for the image the API did not answer in time", v)
	}

	// A scrape of /metrics holds the one slot, its API call hanging, until
	// its client goes away.
	calls := sim.Stats().Requests["ShowImage"]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, http.MethodGet, "/metrics", nil))
	})
	for deadline := time.Now().Add(5 * time.Second); sim.Stats().Requests["ShowImage"] == calls; time.Sleep(10 * time.Millisecond) { // the slot is taken before the call
		if time.Now().After(deadline) {
			t.Fatal("the scrape of /metrics made no API call")
		}
	}
	rec = get(mux, "/probe?project=alpha", nil)
	cancel()
	wg.Wait()
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("a probe while the one slot does API work for /metrics: %d %s, want 503", rec.Code, rec.Body)
	}
}

// TestReady: /-/ready is 503 until a configuration is applied, then 200.
func TestReady(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	path := writeConfig(t, "projects:\n"+akskProject(sim, "alpha", sim.URL, modelartstest.SampleIDs()[:1], ""))
	exp := newExporter(log.NewNopLogger(), prometheus.NewRegistry(), &flags{configFile: path, metricsPath: "/metrics", maxTimeout: time.Minute})
	mux := exp.routes()
	if rec := get(mux, "/-/ready", nil); rec.Code != http.StatusServiceUnavailable || rec.Body.String() != "Not ready: no configuration loaded yet.\n" {
		t.Errorf("before the configuration: %d %q, want 503", rec.Code, rec.Body)
	}
	if err := exp.reload(); err != nil {
		t.Fatal(err)
	}
	if rec := get(mux, "/-/ready", nil); rec.Code != http.StatusOK || rec.Body.String() != "Ready\n" {
		t.Errorf("with a configuration: %d %q, want 200 Ready", rec.Code, rec.Body)
	}
}
