// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/collector"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// TestStatusPage: / shows the newest results without calling the API, with
// what the API sent escaped, the errors and their request ids, the links,
// and no secret: neither the keys in use, nor a refused one, nor a proxy's
// password.
func TestStatusPage(t *testing.T) {
	t.Parallel()
	const (
		hostileID    = "00000000-0000-4000-8000-00000000bad1"
		hostileName  = `<script>alert("owned")</script><img src=x onerror=alert(1)>`
		failingID    = modelartstest.SampleIDTrainingActive
		wrongSecret  = "WrongSecretKeyNotTheRealOne0000000000000"
		proxyPass    = "ProxyPassword1234"
		missingImage = "00000000-0000-4000-8000-000000000404"
	)
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	hostile := modelartstest.SampleImages()[0]
	hostile.ID, hostile.Name = hostileID, hostileName
	sim.SetImage(hostile)
	sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultStatus, ImageID: failingID, Status: http.StatusInternalServerError})
	ids := []string{hostileID, failingID, missingImage, modelartstest.SampleIDError}
	refused := strings.NewReplacer(modelartstest.DemoSecretKey, wrongSecret, modelartstest.DemoAccessKey, "UNKNOWNACCESSKEY0000").
		Replace(akskProject(sim, "refused", sim.URL, ids[:1], ""))
	proxied := akskProject(sim, "proxied", sim.URL, ids[:1], fmt.Sprintf("    proxy_url: http://user:%s@%s\n", proxyPass, freeAddress(t)))
	exp, mux, _ := startInProcess(t, writeConfig(t, "projects:\n"+akskProject(sim, "good", sim.URL, ids, "")+refused+proxied), options{})

	if rec := get(mux, "/", nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "not fetched yet") {
		t.Fatalf("before any scrape: %d, without \"not fetched yet\":\n%s", rec.Code, rec.Body)
	}
	get(mux, "/metrics", nil)
	calls := sim.Stats().Requests
	rec := get(mux, "/", nil)
	page := rec.Body.String()
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("GET /: %d, headers %v", rec.Code, rec.Header())
	}
	if after := sim.Stats().Requests; !reflect.DeepEqual(after, calls) {
		t.Errorf("API calls %v before the status page, %v after: it must make none", calls, after)
	}

	latest := exp.state.Load().scraper.Latest()
	failing := latest[0].Images[1]
	refusal := modelarts.AsAPIError(latest[1].Err)
	if failing.ID != failingID || modelarts.AsAPIError(failing.Err).RequestID == "" || refusal == nil || refusal.RequestID == "" || latest[2].Err == nil {
		t.Fatalf("the setup did not fail as intended: image %s: %v; refused: %v; proxied: %v", failing.ID, failing.Err, latest[1].Err, latest[2].Err)
	}
	for _, want := range []string{
		`<a href="/metrics">`, `<a href="/-/healthy">`, `<a href="/-/ready">`,
		`<a href="/probe?project=good">`, `<a href="/probe?project=refused">`, `<a href="/probe?project=proxied">`,
		`<tr class="project" data-project="good" data-up="1">`,
		`<tr class="project down" data-project="refused" data-up="0">`,
		`<tr class="project down" data-project="proxied" data-up="0">`,
		`data-project="good" data-id="` + modelartstest.SampleIDError + `" data-status="ERROR" data-up="1">`,
		`data-project="good" data-id="` + missingImage + `" data-status="" data-up="0">`,
		`&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;`,
		refusal.RequestID, modelarts.AsAPIError(failing.Err).RequestID,
		"credentials refused", "never",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	for _, secret := range []string{hostileName, "<script", "<img src=x", modelartstest.DemoSecretKey, wrongSecret, proxyPass} {
		if strings.Contains(page, secret) {
			t.Errorf("the page contains %q", secret)
		}
	}
	if t.Failed() {
		t.Log(page)
	}
}

// TestStatusPageCapsImages: a project's images are listed up to
// maxStatusImages, the down ones first, then "… and N more".
func TestStatusPageCapsImages(t *testing.T) {
	t.Parallel()
	images := make([]collector.ImageResult, maxStatusImages+5)
	for i := range images {
		images[i] = collector.ImageResult{ID: fmt.Sprintf("id-%05d", i), Image: &modelarts.Image{Status: "ACTIVE"}}
	}
	images[len(images)-1] = collector.ImageResult{ID: "id-last", Err: errors.New("boom")}
	p := statusOfProject(collector.ProjectResult{Name: "big", Up: true, Images: images, Start: time.Now()}, time.Now())
	if len(p.Images) != maxStatusImages || p.More != 5 || p.Down != 1 || p.Total != len(images) {
		t.Fatalf("%d listed, %d more, %d down of %d; want %d, 5, 1 of %d", len(p.Images), p.More, p.Down, p.Total, maxStatusImages, len(images))
	}
	if first := p.Images[0]; first.ID != "id-last" || first.Up || first.Err != "boom" {
		t.Errorf("first listed: %+v, want the down image", first)
	}
	var page strings.Builder
	if err := statusTemplate.Execute(&page, statusData{Projects: []statusProject{p}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "… and 5 more") {
		t.Errorf("the page does not say that 5 more images are not listed")
	}
}

// TestStatusPageNotOnMetricsPath: with --web.telemetry-path=/ the metrics
// are served at /, without a status page; a path another endpoint has, or
// one net/http cannot route, is refused.
func TestStatusPageNotOnMetricsPath(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	exp, _, _ := startInProcess(t, writeConfig(t, "projects:\n"+akskProject(sim, "alpha", sim.URL, modelartstest.SampleIDs()[:1], "")), options{})
	exp.f.metricsPath = "/"
	mux := exp.routes()
	if rec := get(mux, "/", nil); !strings.Contains(rec.Body.String(), "modelarts_exporter_config_last_reload_successful") {
		t.Errorf("GET / with the metrics at /: %d\n%s", rec.Code, rec.Body)
	}
	for _, path := range []string{"/probe", "metrics", "/a b", "/{x}", ""} {
		if _, ok := parseFlags([]string{"--web.telemetry-path=" + path}); ok {
			t.Errorf("--web.telemetry-path=%q accepted", path)
		}
	}
}
