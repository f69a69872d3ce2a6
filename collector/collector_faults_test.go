// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"crypto/tls"
	"io"
	stdlog "log"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modelarts-exporter/modelarts_exporter/internal/testca"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// faultEnv is what one fault case runs against.
type faultEnv struct {
	sim       *modelartstest.Server
	tlsURL    string // the simulator behind TLS with a private CA
	ca        *testca.CA
	closedURL string // a port nothing listens on
}

// faultCase is one way the cloud misbehaves, and what the exporter must make of it.
type faultCase struct {
	name string
	// target is the one image the fault is aimed at; empty when the fault
	// hits the whole victim project.
	target string
	// fault is added to the simulator after the baseline scrape; for an image
	// fault, ImageID is set to target.
	fault *modelartstest.Fault
	// setup does what fault cannot, after the baseline scrape.
	setup func(env *faultEnv)
	// victim changes the victim project for the faulted scrape; the scraper
	// is then built anew, as after a reload.
	victim func(env *faultEnv, v victim) victim
	// timeout is the deadline of the faulted scrapes (default 2s).
	timeout time.Duration

	// keep: the image must stay up (unknown fields and enum values are no fault).
	keep bool
	// projectDown tells, per auth, whether every image of the victim goes down.
	projectDown map[string]bool
	// projectWide tells, per auth, whether the failure concerns the whole
	// project (IAM failing): it is logged once, not once per image.
	projectWide map[string]bool
	// logged must appear in every failure log line.
	logged []string
	// requestID: the failure log line must carry the request id, because an
	// answer (at least its headers) arrived.
	requestID bool
	// check runs further assertions on the faulted scrape.
	check func(t *testing.T, auth string, env *faultEnv, text string)
}

var requestIDRe = regexp.MustCompile(`request_id=[0-9a-f]{32}\b`)

func faultCases() []faultCase {
	target := modelartstest.SampleIDTrainingActive
	imageFault := func(f modelartstest.Fault) *modelartstest.Fault { f.ImageID = target; return &f }
	bothDown := map[string]bool{"aksk": true, "token": true}
	return []faultCase{
		{
			name: "429 APIG.0308", target: target,
			fault:  imageFault(modelartstest.Fault{Kind: modelartstest.FaultStatus, Status: 429}),
			logged: []string{"code=429", "error_code=APIG.0308", "throttled"}, requestID: true,
		},
		{
			name: "429 ModelArts.4206", target: target,
			fault:  imageFault(modelartstest.Fault{Kind: modelartstest.FaultStatus, Status: 429, ErrorCode: "ModelArts.4206", ErrorMsg: "System busy"}),
			logged: []string{"code=429", "error_code=ModelArts.4206", "throttled"}, requestID: true,
		},
		{
			name: "500", target: target,
			fault:  imageFault(modelartstest.Fault{Kind: modelartstest.FaultStatus, Status: 500}),
			logged: []string{"code=500", "error_code=ModelArts.0001", "server error"}, requestID: true,
		},
		{
			name: "502 HTML page from a gateway", target: target,
			fault:  imageFault(modelartstest.Fault{Kind: modelartstest.FaultRaw, Status: 502}),
			logged: []string{"code=502", "502 Bad Gateway"}, requestID: true,
		},
		{
			name: "503 HTML page from a gateway", target: target,
			fault:  imageFault(modelartstest.Fault{Kind: modelartstest.FaultRaw, Status: 503, Body: "<!DOCTYPE html><html><head><title>Service Unavailable</title><style>body{}</style></head><body><h1>Down for maintenance</h1></body></html>"}),
			logged: []string{"code=503", "Service Unavailable"}, requestID: true,
		},
		{
			name: "slower than the scrape deadline", target: target, timeout: 500 * time.Millisecond, // the fetch publishes 50 ms before: room on a loaded machine
			fault:  imageFault(modelartstest.Fault{Kind: modelartstest.FaultDelay, Delay: 5 * time.Second}),
			logged: []string{"unreachable", "context deadline exceeded"},
		},
		{
			name: "connection reset mid-body", target: target,
			fault:  imageFault(modelartstest.Fault{Kind: modelartstest.FaultReset}),
			logged: []string{"code=200", "malformed response", "read body"}, requestID: true,
		},
		{
			name: "malformed JSON", target: target,
			fault:  imageFault(modelartstest.Fault{Kind: modelartstest.FaultMalformedJSON}),
			logged: []string{"code=200", "malformed response", "decode body"}, requestID: true,
		},
		{
			name: "truncated JSON", target: target,
			fault:  imageFault(modelartstest.Fault{Kind: modelartstest.FaultTruncatedJSON}),
			logged: []string{"code=200", "malformed response", "read body", "unexpected EOF"}, requestID: true,
		},
		{
			name: "oversized body", target: target,
			fault:  imageFault(modelartstest.Fault{Kind: modelartstest.FaultOversized, Size: modelarts.DefaultMaxBodyBytes + 1<<20}),
			logged: []string{"code=200", "malformed response", "exceeds 1048576 bytes"}, requestID: true,
		},
		{
			name: "size as a string", target: target,
			fault:  imageFault(modelartstest.Fault{Kind: modelartstest.FaultWrongTypes}),
			logged: []string{"code=200", "malformed response", "cannot unmarshal string"}, requestID: true,
		},
		{
			name: "unknown fields", target: target, keep: true,
			fault: imageFault(modelartstest.Fault{Kind: modelartstest.FaultUnknownFields}),
		},
		{
			name: "unknown status", target: target, keep: true,
			fault: imageFault(modelartstest.Fault{Kind: modelartstest.FaultUnknownStatus, Value: "quarantined"}),
			check: func(t *testing.T, _ string, _ *faultEnv, text string) {
				for _, want := range []struct{ status, value string }{{"QUARANTINED", "1"}, {"ACTIVE", "0"}} {
					got, ok := sampleValue(t, text, "modelarts_image_status", `project="victim"`, `id="`+target+`"`, `status="`+want.status+`"`)
					if !ok || got != want.value {
						t.Errorf("status %s of the image = %q (found %v), want %s", want.status, got, ok, want.value)
					}
				}
			},
		},
		{
			name: "image vanishes between scrapes", target: target,
			setup:  func(env *faultEnv) { env.sim.DeleteImage(target) },
			logged: []string{"code=400", "error_code=ModelArts.6404", "not found"}, requestID: true,
			check: func(t *testing.T, _ string, _ *faultEnv, text string) {
				if got, _ := sampleValue(t, text, "modelarts_image_not_found", `project="victim"`, `id="`+target+`"`); got != "1" {
					t.Errorf("modelarts_image_not_found = %q, want 1", got)
				}
			},
		},
		{
			name:        "token expires mid-run",
			setup:       func(env *faultEnv) { env.sim.ExpireTokens() },
			projectDown: map[string]bool{},
			check: func(t *testing.T, auth string, env *faultEnv, _ string) {
				want := map[string]int{"aksk": 0, "token": 1}[auth] // renewed once, not once per image
				if got := env.sim.Requests(modelartstest.OpCreateToken); got != want {
					t.Errorf("CreateToken calls after the expiry = %d, want %d", got, want)
				}
			},
		},
		{
			name: "IAM down while ModelArts is up, token cached",
			setup: func(env *faultEnv) {
				env.sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultStatus, Operation: modelartstest.OpCreateToken, Status: 503})
				env.sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultStatus, Operation: modelartstest.OpListProjects, Status: 503})
			},
			projectDown: map[string]bool{},
		},
		{
			name: "IAM down while ModelArts is up, no token yet",
			setup: func(env *faultEnv) {
				env.sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultStatus, Operation: modelartstest.OpCreateToken, Status: 503})
				env.sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultStatus, Operation: modelartstest.OpListProjects, Status: 503})
			},
			victim: func(_ *faultEnv, v victim) victim { return v }, // a fresh client: no token cached
			// AK/SK with a configured project id does not need IAM at all.
			projectDown: map[string]bool{"token": true}, projectWide: map[string]bool{"token": true},
			logged: []string{"CreateToken", "code=503", "server error"}, requestID: true,
			check: func(t *testing.T, auth string, env *faultEnv, text string) {
				want := map[string]int{"aksk": 0, "token": 1}[auth] // one login attempt, not one per image or per scrape
				if got := env.sim.Requests(modelartstest.OpCreateToken); got != want {
					t.Errorf("CreateToken calls = %d, want %d", got, want)
				}
				// IAM answered, but no call reached ModelArts.
				wantUp := map[string]string{"aksk": "1", "token": "0"}[auth]
				if got, _ := sampleValue(t, text, "modelarts_up", `project="victim"`); got != wantUp {
					t.Errorf("modelarts_up = %q, want %s", got, wantUp)
				}
			},
		},
		{
			name: "endpoint refuses connections",
			victim: func(env *faultEnv, v victim) victim {
				v.endpoint = env.closedURL
				return v
			},
			projectDown: bothDown, projectWide: map[string]bool{"token": true}, // IAM is not reached either
			logged: []string{"unreachable", "dial tcp 127.0.0.1:", "connection refused"},
		},
		{
			name: "TLS with a private CA, ca_file configured",
			victim: func(env *faultEnv, v victim) victim {
				v.endpoint = env.tlsURL
				v.roots = env.ca.Pool
				return v
			},
			projectDown: map[string]bool{},
		},
		{
			name: "TLS with a private CA, no ca_file: verification stays on",
			victim: func(env *faultEnv, v victim) victim {
				v.endpoint = env.tlsURL
				return v
			},
			projectDown: bothDown, projectWide: map[string]bool{"token": true}, // IAM is not reached either
			logged: []string{"unreachable", "certificate signed by unknown authority"},
		},
	}
}

// TestFaultsEndToEnd aims every fault of the cloud at one image (or at one
// project) of a configuration built the way the exporter builds it, with
// AK/SK and with token auth, and checks what the exposition and the log say.
func TestFaultsEndToEnd(t *testing.T) {
	for _, tc := range faultCases() {
		for _, auth := range []string{"aksk", "token"} {
			t.Run(tc.name+"/"+auth, func(t *testing.T) { runFaultCase(t, tc, auth) })
		}
	}
}

func runFaultCase(t *testing.T, tc faultCase, auth string) {
	// Registered first, so it runs after every server below is closed.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	dir := t.TempDir()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	ca := testca.New(t, dir)
	tlsSrv := httptest.NewUnstartedServer(sim.Handler())
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.ServerCert}, MinVersion: tls.VersionTLS12}
	tlsSrv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // refused handshakes are the point of one case
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	env := &faultEnv{sim: sim, tlsURL: tlsSrv.URL, ca: ca, closedURL: closedURL(t)}

	all := modelartstest.SampleIDs()
	bystanderImages := all
	if tc.target != "" {
		bystanderImages = slices.DeleteFunc(slices.Clone(all), func(id string) bool { return id == tc.target })
	}
	v := victim{auth: auth, endpoint: sim.URL, images: all}
	logs := &lockedBuffer{}
	// One ShowImage call per image, as for projects whose listings cost more
	// calls than they have images: each fault is aimed at one image's call.
	// (Faults in listings: fetch_test.go.)
	scraper := preferShow(newFaultScraper(faultConfig(t, dir, sim, v, bystanderImages), logs))

	baseline := scrapeText(t, scraper, 10*time.Second)
	for _, id := range all {
		if got, _ := sampleValue(t, baseline, "modelarts_image_up", `project="victim"`, `id="`+id+`"`); got != "1" {
			t.Fatalf("baseline: image %s up = %q, want 1\n%s", id, got, logs.take())
		}
	}
	logs.take()

	if tc.fault != nil {
		sim.AddFault(*tc.fault)
	}
	if tc.setup != nil {
		tc.setup(env)
	}
	if tc.victim != nil {
		scraper = preferShow(newFaultScraper(faultConfig(t, dir, sim, tc.victim(env, v), bystanderImages), logs))
	}
	sim.ResetCounters()
	timeout := tc.timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	start := time.Now()
	got := scrapeText(t, scraper, timeout)
	if elapsed := time.Since(start); elapsed > timeout+time.Second {
		t.Errorf("the scrape took %v, deadline %v", elapsed, timeout)
	}
	failures := failureLines(logs.take())

	var down []string // ids of the victim that must be down
	switch {
	case tc.target != "" && !tc.keep:
		down = []string{tc.target}
	case tc.target == "" && tc.projectDown[auth]:
		down = all
	}

	// The affected images are down, the others up.
	for _, id := range all {
		want := "1"
		if slices.Contains(down, id) {
			want = "0"
		}
		if got, _ := sampleValue(t, got, "modelarts_image_up", `project="victim"`, `id="`+id+`"`); got != want {
			t.Errorf("victim image %s: modelarts_image_up = %q, want %s", id, got, want)
		}
	}

	// Every other series is exactly as before the fault.
	unaffected := func(line string) bool {
		switch {
		case len(down) == len(all):
			return !strings.Contains(line, `project="victim"`)
		case len(down) == 1:
			return !strings.Contains(line, `id="`+down[0]+`"`)
		case tc.keep && tc.check != nil: // the status set of the target changes
			return !strings.HasPrefix(line, "modelarts_image_status{") || !strings.Contains(line, `id="`+tc.target+`"`)
		}
		return true
	}
	want := stable(slices.DeleteFunc(seriesLines(baseline), func(l string) bool { return !unaffected(l) }))
	have := stable(slices.DeleteFunc(seriesLines(got), func(l string) bool { return !unaffected(l) }))
	if !slices.Equal(want, have) {
		t.Errorf("series not aimed at by the fault changed:\n--- only before\n%s\n--- only after\n%s",
			strings.Join(missingFrom(want, have), "\n"), strings.Join(missingFrom(have, want), "\n"))
	}

	// Each failed image is logged once, with image, code and request id; a
	// failure of the whole project once for all its images.
	if tc.projectWide[auth] {
		checkProjectLine(t, tc, failures)
		down = nil
	}
	if len(failures) != len(down) && !tc.projectWide[auth] {
		t.Errorf("%d failure log lines, want %d:\n%s", len(failures), len(down), strings.Join(failures, "\n"))
	}
	for _, id := range down {
		var mine []string
		for _, l := range failures {
			if strings.Contains(l, "image="+id) && strings.Contains(l, "project=victim") {
				mine = append(mine, l)
			}
		}
		if len(mine) != 1 {
			t.Errorf("image %s logged %d times, want once", id, len(mine))
			continue
		}
		line := mine[0]
		for _, s := range append([]string{"level=warn"}, tc.logged...) {
			if !strings.Contains(line, s) {
				t.Errorf("log line lacks %q:\n%s", s, line)
			}
		}
		if tc.requestID && !requestIDRe.MatchString(line) {
			t.Errorf("log line lacks the request id:\n%s", line)
		}
		if strings.Contains(line, "<") {
			t.Errorf("log line carries markup:\n%s", line)
		}
	}
	if tc.check != nil {
		tc.check(t, auth, env, got)
	}

	// More scrapes under the same fault: same answer, no growth. Each fetch
	// ends (with its calls) soon after its scrape, or a stuck fetch would
	// pile up. Idle connections are closed before counting: how many the
	// pools keep (three goroutines each with the in-process server) depends on
	// how calls overlapped, not on a leak. Growth is measured from the third
	// scrape on: a connection leaked per scrape adds 12 goroutines, beyond the
	// tolerance of 8. A goroutine that outlives the servers is goleak's to find.
	settle := func() (int, uint64) {
		scraper.Close()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}
	const warmup, more, slack = 2, 4, 8
	var g0 int
	var h0 uint64
	for i := range warmup + more {
		if i == warmup {
			g0, h0 = settle()
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		victim := scraper.Scrape(ctx)[0]
		cancel()
		for _, r := range victim.Images {
			if up, was := r.Err == nil && r.Image != nil, strings.HasSuffix(lineOf(got, "modelarts_image_up", r.ID), " 1"); up != was {
				t.Errorf("a later scrape under the same fault says image %s up %v, the first said %v", r.ID, up, was)
			}
		}
		waitFor(t, "the fetch to end", func() bool { return scraper.Latest()[0].Start.Equal(victim.Start) })
	}
	perScrape := len(down)
	if tc.projectWide[auth] {
		perScrape = 1
	}
	if n := failuresLogged(logs.take()); n != (warmup+more)*perScrape {
		t.Errorf("%d failure log lines over %d more scrapes, want %d", n, warmup+more, (warmup+more)*perScrape)
	}
	var g1 int
	var h1 uint64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if g1, h1 = settle(); g1 <= g0+slack || time.Now().After(deadline) {
			break
		}
	}
	if g1 > g0+slack {
		t.Errorf("goroutines grew from %d to %d over %d scrapes under the fault", g0, g1, more)
	}
	if h1 > h0+16<<20 {
		t.Errorf("live heap grew from %d to %d bytes over %d scrapes under the fault", h0, h1, more)
	}
}

// checkProjectLine checks the one line that logs a failure of the whole project.
func checkProjectLine(t *testing.T, tc faultCase, failures []string) {
	t.Helper()
	if len(failures) != 1 || !strings.Contains(failures[0], "project=victim") {
		t.Fatalf("%d failure log lines, want 1 for the project:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	for _, s := range append([]string{"level=error"}, tc.logged...) {
		if !strings.Contains(failures[0], s) {
			t.Errorf("log line lacks %q:\n%s", s, failures[0])
		}
	}
}

// failureLines returns the log lines about failed image fetches, and about
// failures of whole projects.
func failureLines(logs string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `msg="Failed to fetch image"`) || strings.Contains(l, `msg="Failed to reach the project's images"`) {
			out = append(out, l)
		}
	}
	return out
}

// failuresLogged counts the failed image fetches logged: one per "Failed
// to fetch image" line, and the images of each line about images whose call
// was not made because the scrape's deadline came first.
func failuresLogged(logs string) int {
	n := len(failureLines(logs))
	for _, l := range strings.Split(logs, "\n") {
		if m := notStartedRe.FindStringSubmatch(l); m != nil {
			images, _ := strconv.Atoi(m[1])
			n += images
		}
	}
	return n
}

var notStartedRe = regexp.MustCompile(`msg="Images not fetched: scrape deadline reached" .*images=(\d+)`)

// lineOf returns the victim's series of name for image id.
func lineOf(text, name, id string) string {
	for _, l := range seriesLines(text) {
		if strings.HasPrefix(l, name+"{") && strings.Contains(l, `project="victim"`) && strings.Contains(l, `id="`+id+`"`) {
			return l
		}
	}
	return ""
}

// missingFrom returns the lines of a that b lacks.
func missingFrom(a, b []string) []string {
	var out []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, l)
		}
	}
	return out
}

// volatile are the series whose value is the time of the scrape itself:
// compared by their labels only.
var volatile = []string{"modelarts_image_last_success_timestamp_seconds{"}

// stable drops the values of volatile series.
func stable(lines []string) []string {
	for i, l := range lines {
		for _, prefix := range volatile {
			if strings.HasPrefix(l, prefix) {
				lines[i] = l[:strings.LastIndexByte(l, ' ')]
			}
		}
	}
	return lines
}
