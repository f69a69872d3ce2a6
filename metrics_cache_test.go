// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/modelarts-exporter/modelarts_exporter/collector"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// Accept headers of the three formats.
const (
	acceptOpenMetrics = "application/openmetrics-text;version=1.0.0"
	acceptProtobuf    = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
	// acceptPrometheus is what Prometheus sends by default.
	acceptPrometheus = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)

// fixedResults are two projects of the same n generated images; in the
// first, one image failed (no values); in the second, one is in an
// undocumented status.
func fixedResults(n int) []collector.ProjectResult {
	at := time.Unix(1_800_000_000, 0)
	var results []collector.ProjectResult
	for _, name := range []string{"a", "b"} {
		p := collector.ProjectResult{Name: name, Up: true, Duration: 1500 * time.Millisecond}
		for _, img := range modelartstest.GenerateImages(n, 7) {
			p.Images = append(p.Images, collector.ImageResult{ID: img.ID, Image: &img, LastSuccess: at})
		}
		results = append(results, p)
	}
	if n > 1 {
		results[0].Images[0].Image, results[0].Images[0].Err = nil, errors.New("boom")
		results[1].Images[1].Image.Status = "FROZEN"
	}
	return results
}

// fixedRegistry stands for the exporter's own registry, with values that do
// not change between gatherings.
func fixedRegistry() *prometheus.Registry {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "modelarts_exporter_test", Help: "A gauge."}, []string{"k"})
	g.WithLabelValues("v").Set(2.5)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "modelarts_api_test_total", Help: "A counter."})
	c.Add(3)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "modelarts_api_test_seconds", Help: "A histogram.", Buckets: []float64{0.1, 1}})
	h.Observe(0.5)
	reg := prometheus.NewRegistry()
	reg.MustRegister(g, c, h)
	return reg
}

// record answers a GET of target with the given Accept and Accept-Encoding.
func record(h http.Handler, target, accept, encoding string) *http.Response {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// plainBody returns the body of resp, decompressed by Go's gzip.Reader when
// gzipped; it must be one gzip member that spans the whole body.
func plainBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		return body
	}
	in := bytes.NewReader(body)
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	if in.Len() != 0 {
		t.Fatalf("%d bytes after the gzip member", in.Len())
	}
	return plain
}

// decodeFamilies decodes an answer in the format of header, by name.
func decodeFamilies(t *testing.T, header http.Header, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.ResponseFormat(header))
	fams := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			return fams
		}
		if err != nil {
			t.Fatalf("decoding %s: %v", header.Get("Content-Type"), err)
		}
		if fams[mf.GetName()] != nil {
			t.Fatalf("family %s twice", mf.GetName())
		}
		fams[mf.GetName()] = mf
	}
}

// TestExpositionMatchesPromhttp: for every format, an answer (a cache miss,
// then a hit) has promhttp's headers and decodes to the families promhttp
// serves for the image families, whole, and the own registry; so for every
// content encoding the text answer (the negotiation does not depend on the
// format). The 1,100 images of the "in parts" cases are encoded in two parts
// (their gzip answer is TestGzipAnswerIsTheIdentityAnswer's).
func TestExpositionMatchesPromhttp(t *testing.T) {
	t.Parallel()
	few, many, reg := fixedResults(10), fixedResults(550), fixedRegistry()
	all := func(results []collector.ProjectResult) prometheus.Gatherer {
		return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
			mfs, err := reg.Gather()
			keep := func(mf *dto.MetricFamily, _ bool) error {
				mfs = append(mfs, proto.Clone(mf).(*dto.MetricFamily))
				return nil
			}
			_ = collector.EmitValueFamilies(results, 0, keep)
			_ = collector.EmitScrapeFamilies(results, 0, keep)
			slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
			return mfs, err
		})
	}
	allEncodings := []string{"", "gzip", "gzip, deflate, br", "identity;q=0.5, gzip;q=0.2", "*", "gzip;q=0", "br", ", gzip",
		"gzip;q=0.5;level=1", "identity;q=0.5, gzip;q=1;foo=bar", "identity;q=0.9, gzip;q=1.5", "gzip;q=.5",
		"gzip;q=+0.5, identity;q=0.1", "gzip;q=0x1p-1, identity;q=0.1"}
	for _, tc := range []struct {
		name, accept, query string
		openMetrics         bool
		inParts             bool
		allEncodings        bool
	}{
		{name: "text in parts", inParts: true},
		{name: "openmetrics in parts", accept: acceptOpenMetrics, openMetrics: true, inParts: true},
		{name: "text", allEncodings: true},
		{name: "openmetrics, not offered (promhttp's default)", accept: acceptOpenMetrics},
		{name: "openmetrics", accept: acceptOpenMetrics, openMetrics: true},
		{name: "protobuf", accept: acceptProtobuf},
		{name: "prometheus", accept: acceptPrometheus},
		{name: "prometheus, openmetrics offered", accept: acceptPrometheus, openMetrics: true},
		{name: "names selected", query: "?name[]=modelarts_image_status&name[]=modelarts_up&name[]=modelarts_api_test_total"},
	} {
		results, encs := few, allEncodings[:2]
		switch {
		case tc.inParts:
			results, encs = many, allEncodings[:1]
		case tc.allEncodings:
			encs = allEncodings
		}
		for _, enc := range encs {
			t.Run(tc.name+"/"+enc, func(t *testing.T) {
				x := newExposition(log.NewNopLogger(), reg)
				want := promhttp.HandlerFor(all(results), promhttp.HandlerOpts{EnableOpenMetrics: tc.openMetrics})
				if tc.openMetrics {
					x.formats = expfmt.DefaultOpenMetricsAcceptedFormats()
				}
				got := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { x.serve(w, r, results) })
				for range 2 {
					g, w := record(got, "/metrics"+tc.query, tc.accept, enc), record(want, "/metrics"+tc.query, tc.accept, enc)
					for _, h := range []string{"Content-Type", "Content-Encoding", "Vary"} {
						if !slices.Equal(g.Header[h], w.Header[h]) {
							t.Errorf("%s: %q, promhttp %q", h, g.Header[h], w.Header[h])
						}
					}
					gb, wb := plainBody(t, g), plainBody(t, w)
					if expfmt.ResponseFormat(w.Header).FormatType() == expfmt.TypeProtoDelim {
						compareFamilies(t, decodeFamilies(t, g.Header, gb), decodeFamilies(t, w.Header, wb))
					} else {
						compareBlocks(t, gb, wb)
					}
				}
			})
		}
	}
}

func compareFamilies(t *testing.T, got, want map[string]*dto.MetricFamily) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("promhttp served no family")
	}
	for name, mf := range want {
		if !proto.Equal(got[name], mf) {
			t.Errorf("family %s differs from promhttp's", name)
		}
	}
	for name := range got {
		if want[name] == nil {
			t.Errorf("family %s not served by promhttp", name)
		}
	}
}

// compareBlocks compares two text answers family by family, byte for byte:
// each family is contiguous, but the families need not be in name order.
func compareBlocks(t *testing.T, got, want []byte) {
	t.Helper()
	g, w := textBlocks(t, got), textBlocks(t, want)
	if len(w) == 0 {
		t.Fatal("promhttp served no family")
	}
	for name, b := range w {
		if g[name] != b {
			t.Errorf("family %s differs from promhttp's:\n%s\npromhttp:\n%s", name, g[name], b)
		}
	}
	for name := range g {
		if _, ok := w[name]; !ok {
			t.Errorf("family %s not served by promhttp", name)
		}
	}
	if bytes.HasSuffix(want, []byte("# EOF\n")) != bytes.HasSuffix(got, []byte("# EOF\n")) {
		t.Error("the answer and promhttp's do not end alike")
	}
}

// textBlocks splits a text answer into its families: the lines from a
// comment line naming a new family to the next; # EOF is one of its own.
func textBlocks(t *testing.T, body []byte) map[string]string {
	t.Helper()
	blocks := map[string]*strings.Builder{}
	var name string
	for line := range strings.Lines(string(body)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "#" {
			next := "# EOF"
			if len(f) >= 3 {
				next = f[2]
			}
			if _, dup := blocks[next]; dup && next != name {
				t.Fatalf("family %s is not contiguous", next)
			}
			name = next
		}
		if blocks[name] == nil {
			blocks[name] = &strings.Builder{}
		}
		blocks[name].WriteString(line)
	}
	out := make(map[string]string, len(blocks))
	for name, b := range blocks {
		out[name] = b.String()
	}
	return out
}

// TestGzipAnswerIsTheIdentityAnswer: a gzipped answer (cached deflate part,
// fresh part, trailer) decompresses with Go's gzip.Reader, gzip -d and zcat
// to the identity answer, byte for byte, for each format, with and without
// image values, on a miss and on a hit; so the text answer of 1,100 images,
// whose values are encoded in two parts. The text answer passes promtool.
func TestGzipAnswerIsTheIdentityAnswer(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 550} {
		results := fixedResults(n)
		if n == 0 {
			results = nil
		}
		x := newExposition(log.NewNopLogger(), fixedRegistry())
		x.formats = expfmt.DefaultOpenMetricsAcceptedFormats()
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { x.serve(w, r, results) })
		accepts := []string{"", acceptOpenMetrics, acceptProtobuf}
		if n > 1 {
			accepts = accepts[:1]
		}
		for _, accept := range accepts {
			t.Run(fmt.Sprintf("images=%d/%s", 2*n, accept), func(t *testing.T) {
				identity := plainBody(t, record(h, "/metrics", accept, ""))
				for range 2 { // a miss, then a hit
					resp := record(h, "/metrics", accept, "gzip")
					body, err := io.ReadAll(resp.Body)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body = io.NopCloser(bytes.NewReader(body))
					if got := plainBody(t, resp); !bytes.Equal(got, identity) {
						t.Fatalf("gunzipped answer (%d bytes) differs from the identity answer (%d bytes)", len(got), len(identity))
					}
					gzipCLI(t, body, identity)
				}
				if accept == "" {
					promtoolCheck(t, string(identity))
				}
			})
		}
	}
}

// gzipCLI checks that gzip -d and zcat decompress body to want.
func gzipCLI(t *testing.T, body, want []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "answer.gz")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{{"gzip", "-d", "-c", path}, {"zcat", path}} {
		if _, err := exec.LookPath(argv[0]); err != nil {
			t.Logf("%s not installed", argv[0])
			continue
		}
		var stderr bytes.Buffer
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stderr = &stderr
		got, err := cmd.Output()
		if err != nil || stderr.Len() > 0 || !bytes.Equal(got, want) {
			t.Fatalf("%s: %v %s: %d bytes, want the %d of the identity answer", strings.Join(argv, " "), err, stderr.String(), len(got), len(want))
		}
	}
}

// scrapeFamilies scrapes h with encoding and decodes the answer.
func scrapeFamilies(t *testing.T, h http.Handler, encoding string) map[string]*dto.MetricFamily {
	t.Helper()
	resp := record(h, "/metrics", "", encoding)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return decodeFamilies(t, resp.Header, plainBody(t, resp))
}

// statusOf returns the status the state set of image id says is current.
func statusOf(fams map[string]*dto.MetricFamily, id string) string {
	for _, m := range fams["modelarts_image_status"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["id"] == id && m.GetGauge().GetValue() == 1 {
			return labels["status"]
		}
	}
	return ""
}

// TestValueCacheFollowsTheValues: with a fetch per scrape, a scrape whose
// fetch brings equal values encodes no value family (the cache compares
// values, not pointers); a changed status is in the next answer, identity
// and gzipped alike.
func TestValueCacheFollowsTheValues(t *testing.T) {
	t.Parallel()
	images := modelartstest.GenerateImages(30, 5)
	sim := modelartstest.NewServer(modelartstest.Options{Images: images})
	t.Cleanup(sim.Close)
	id := images[3].ID
	sim.SetStatus(id, "ACTIVE")
	exp, h, _ := startInProcess(t, writeConfig(t, "global:\n  min_refresh_interval: 0s\nprojects:\n"+akskProject(sim, "p", sim.URL, []string{id, images[4].ID}, "")), options{})
	calls := func() (n int) {
		for _, c := range sim.Stats().Requests {
			n += c
		}
		return n
	}
	encoded := &exp.exposition.valueEncodings
	var last map[string]*dto.MetricFamily
	for i, step := range []struct {
		status, encoding string
		miss             bool
	}{
		{"ACTIVE", "", true}, {"ACTIVE", "", false},
		{"ERROR", "", true}, {"ERROR", "gzip", true}, {"ERROR", "gzip", false},
		{"ACTIVE", "gzip", true}, {"ACTIVE", "", true}, {"ACTIVE", "gzip", false},
	} {
		if i > 0 && step.status != statusOf(last, id) {
			sim.SetStatus(id, step.status) // and update_at
		}
		before, callsBefore := encoded.Load(), calls()
		fams := scrapeFamilies(t, h, step.encoding)
		last = fams
		if got := statusOf(fams, id); got != step.status {
			t.Errorf("scrape %d: status %q, want %q", i, got, step.status)
		}
		if calls() == callsBefore {
			t.Errorf("scrape %d made no API call; the test needs a fetch per scrape", i)
		}
		if n := encoded.Load() - before; (n > 0) != step.miss {
			t.Errorf("scrape %d (%s, %q): the value families encoded %d times, want a miss: %v", i, step.status, step.encoding, n, step.miss)
		}
	}
}

// BenchmarkScrapeAnswer: a scrape of 10,000 images answered from the shared
// fetch (min_refresh_interval, no API call), through the metrics handler
// and an HTTP server, identity and gzipped, with the value cache (a hit)
// and without (what a miss costs).
func BenchmarkScrapeAnswer(b *testing.B) {
	const n = 10_000
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.GenerateImages(n, 1)})
	b.Cleanup(sim.Close)
	exp, h, _ := startInProcess(b, writeConfig(b, "global:\n  min_refresh_interval: 1h\n  scrape_timeout: 1m\nprojects:\n"+akskProject(sim, "p", sim.URL, nil, "    discovery: {}\n")), options{})
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	scrape := func(encoding string) int64 {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		req.Header.Set("Accept-Encoding", encoding)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		size, err := io.Copy(io.Discard, resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		return size
	}
	scrape("identity") // the shared fetch
	for _, c := range []struct {
		name     string
		uncached bool
	}{{"hit", false}, {"off", true}} {
		for _, encoding := range []string{"identity", "gzip"} {
			b.Run(fmt.Sprintf("images=%d/%s/cache=%s", n, encoding, c.name), func(b *testing.B) {
				exp.exposition.uncached = c.uncached
				size := scrape(encoding) // fills the cache
				calls := sim.Stats().Requests
				for b.Loop() {
					scrape(encoding)
				}
				if after := sim.Stats().Requests; fmt.Sprint(after) != fmt.Sprint(calls) {
					b.Fatalf("API calls during the benchmark: %v, then %v", calls, after)
				}
				b.ReportMetric(float64(size), "bytes")
			})
		}
	}
	exp.exposition.uncached = false
}
