// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// TestScrapeTimeout: the API work of a scrape ends early enough for the
// answer, rendered in about the time the last one took, to reach whoever
// waits for it before they give up, whatever the timeout header says.
func TestScrapeTimeout(t *testing.T) {
	const (
		ms = time.Millisecond
		s  = time.Second
	)
	cases := []struct {
		name       string
		header     string
		offset     time.Duration
		lastRender time.Duration
		fallback   time.Duration
		maxTimeout time.Duration
		want       time.Duration
	}{
		{"header minus offset", "10", 500 * ms, 0, 30 * s, 0, 9500 * ms},
		{"no offset", "2.5", 0, 0, 30 * s, 0, 2500 * ms},
		{"header minus offset and the last render", "10", 500 * ms, 1300 * ms, 30 * s, 0, 8200 * ms},
		{"a slow render leaves the API half the header", "5", 500 * ms, 4 * s, 30 * s, 0, 2500 * ms},
		{"header below the offset: half of it", "0.2", 500 * ms, 0, 30 * s, 0, 100 * ms},
		{"header at the offset: half of it", "0.5", 500 * ms, 0, 30 * s, 0, 250 * ms},

		{"no header: scrape_timeout minus offset", "", 500 * ms, 0, 30 * s, 0, 29500 * ms},
		{"no header: scrape_timeout minus offset and the last render", "", 500 * ms, 2 * s, 30 * s, 0, 27500 * ms},
		{"no header, offset above scrape_timeout: half of it", "", 10 * s, 0, 4 * s, 0, 2 * s},
		{"garbage", "garbage", 500 * ms, 0, 7 * s, 0, 6500 * ms},
		{"negative", "-3", 500 * ms, 0, 7 * s, 0, 6500 * ms},
		{"zero", "0", 500 * ms, 0, 7 * s, 0, 6500 * ms},
		{"NaN", "NaN", 500 * ms, 0, 7 * s, 0, 6500 * ms},
		{"Inf", "Inf", 500 * ms, 0, 7 * s, 0, 6500 * ms},
		{"+Infinity", "+Infinity", 500 * ms, 0, 7 * s, 0, 6500 * ms},
		{"-Inf", "-Inf", 500 * ms, 0, 7 * s, 0, 6500 * ms},
		{"1e10 seconds", "1e10", 500 * ms, 0, 7 * s, 0, 6500 * ms},
		{"1e300 seconds", "1e300", 500 * ms, 0, 7 * s, 0, 6500 * ms},
		{"out of float range", "1e400", 500 * ms, 0, 7 * s, 0, 6500 * ms},
		{"just above a day", "86400.5", 500 * ms, 0, 7 * s, 0, 6500 * ms},
		{"a day", "86400", 500 * ms, 0, 7 * s, 0, 24*time.Hour - 500*ms},

		{"max-timeout bounds the header", "600", 500 * ms, 0, 30 * s, 2 * time.Minute, 2 * time.Minute},
		{"max-timeout above the header", "60", 500 * ms, 0, 30 * s, 2 * time.Minute, 59500 * ms},
		{"max-timeout bounds the fallback", "", 500 * ms, 0, 30 * s, 10 * s, 10 * s},
		{"max-timeout bounds an absurd header's fallback", "1e10", 500 * ms, 0, 30 * s, 10 * s, 10 * s},
	}
	for _, tc := range cases {
		_, got := scrapeTimeout(tc.header, tc.offset, tc.lastRender, tc.fallback, tc.maxTimeout)
		if got != tc.want {
			t.Errorf("%s: scrapeTimeout(%q, offset %v, last render %v, fallback %v, max %v) = %v, want %v",
				tc.name, tc.header, tc.offset, tc.lastRender, tc.fallback, tc.maxTimeout, got, tc.want)
		}
	}
}

// TestMain removes the binary exporterBinary built, if a test built it.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// exporterBinary builds the exporter once per package run, for the few tests
// that need a process of its own: signals, exit codes, what main prints, and
// serving through exporter-toolkit's --web.config.file.
func exporterBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "modelarts_exporter_test"); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "modelarts_exporter")
}

// freeAddress returns a loopback address nothing listens on: free for a
// server to take, and refused at once to a client (no DNS, no timeout).
func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// testConfig writes a configuration for sim with both auth schemes.
func testConfig(t *testing.T, dir string, sim *modelartstest.Server, ids []string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "sk"), []byte("DemoSecretKeyExampleNotARealSecret000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var list strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&list, "      - %s\n", id)
	}
	cfg := fmt.Sprintf(`global:
  scrape_timeout: 10s
projects:
  - name: aksk
    region: eu-de
    project_id: %[1]s
    modelarts_endpoint: %[2]s
    iam_endpoint: %[2]s
    auth:
      access_key: DEMOACCESSKEYEXAMPLE
      secret_key_file: sk
    images:
%[3]s  - name: token
    region: eu-de
    modelarts_endpoint: %[2]s
    iam_endpoint: %[2]s
    auth:
      domain_name: demo-domain
      username: demo-user
      password: demo-password
    images:
%[3]s`, sim.ProjectID(), sim.URL, list.String())
	path := filepath.Join(dir, "modelarts_exporter.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeConfig writes cfg as the configuration file of a new temporary
// directory and returns its path.
func writeConfig(t testing.TB, cfg string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "modelarts_exporter.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// akskProject is the YAML of one project that signs with the simulator's demo
// key against endpoint and lists ids; extra (lines indented by 4 spaces) follows.
func akskProject(sim *modelartstest.Server, name, endpoint string, ids []string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `  - name: %s
    region: eu-de
    project_id: %s
    modelarts_endpoint: %s
    auth:
      access_key: %s
      secret_key: %s
    images:
`, name, sim.ProjectID(), endpoint, modelartstest.DemoAccessKey, modelartstest.DemoSecretKey)
	for _, id := range ids {
		fmt.Fprintf(&b, "      - %s\n", id)
	}
	return b.String() + extra
}

// options are the flags of run that shape an exporter in process.
type options struct {
	offset, maxTimeout time.Duration // --scrape.timeout-offset, --scrape.max-timeout (0: a minute)
	maxRequests        int           // --web.max-requests (0: no limit)
	lifecycle          bool          // --web.enable-lifecycle
	logLevel           string        // --log.level (default info); the format is logfmt
}

// startInProcess builds the exporter as run does, without a process: loaded
// from the configuration file at path, with run's logger writing to logs
// (shown when the test fails), and its routes, the metrics at /metrics.
func startInProcess(t testing.TB, path string, o options) (exp *exporter, mux *http.ServeMux, logs *syncBuffer) {
	t.Helper()
	if o.logLevel == "" {
		o.logLevel = "info"
	}
	if o.maxTimeout == 0 {
		o.maxTimeout = time.Minute
	}
	logs = &syncBuffer{}
	logger, _ := newLogger(logs, o.logLevel, "logfmt")
	exp = newExporter(logger, prometheus.NewRegistry(), &flags{configFile: path, metricsPath: "/metrics", lifecycle: o.lifecycle,
		timeoutOffset: o.offset, maxTimeout: o.maxTimeout, maxRequests: o.maxRequests})
	if err := exp.reload(); err != nil {
		t.Fatal(err)
	}
	mux = exp.routes()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("exporter log:\n%s", logs)
		}
	})
	return exp, mux, logs
}

// listen serves h with the exporter's server (newServer, idle timeout idle)
// on a loopback port until the test ends, and returns its address.
func listen(t *testing.T, h http.Handler, idle time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(h, idle)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// scrapeIn scrapes the metrics path of h in process, as Prometheus does
// with a 10 s timeout, and decodes the answer.
func scrapeIn(t *testing.T, h http.Handler) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	rec := get(h, "/metrics", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"10"}})
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", rec.Code, rec.Body)
	}
	return rec.Body.String(), parseText(t, rec.Body.String())
}

// waitFor calls scrape until cond holds of its families, for up to 10 seconds.
func waitFor(t *testing.T, what string, scrape func() map[string]*dto.MetricFamily, cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if families := scrape(); cond(families) {
			return families
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s still not: %s", what)
		}
	}
}

type runningExporter struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// exporterOptions change how startExporter runs the binary and checks that
// it is up.
type exporterOptions struct {
	// scheme of the health check, default "http".
	scheme string
	// client for the health check, default http.DefaultClient.
	client *http.Client
	// user and password for the health check, when set.
	user, password string
}

// startExporter runs the exporter binary with args until the test ends, and
// waits until it answers /-/healthy.
func startExporter(t *testing.T, opts exporterOptions, args ...string) *runningExporter {
	t.Helper()
	if opts.scheme == "" {
		opts.scheme = "http"
	}
	if opts.client == nil {
		opts.client = http.DefaultClient
	}
	addr := freeAddress(t)
	logs := &syncBuffer{}
	cmd := exec.Command(exporterBinary(t), append([]string{"--web.listen-address=" + addr}, args...)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("exporter log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, opts.scheme+"://"+addr+"/-/healthy", nil)
		if opts.user != "" {
			req.SetBasicAuth(opts.user, opts.password)
		}
		resp, err := opts.client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return &runningExporter{cmd: cmd, addr: addr, logs: logs}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("exporter not healthy after 15s: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// do sends one request to the exporter and returns the status and body.
func (e *runningExporter) do(t *testing.T, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+e.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// scrape scrapes the exporter's /metrics and decodes the answer.
func (e *runningExporter) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := e.do(t, http.MethodGet, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	return parseText(t, body)
}

// gaugeValue returns the value of the series of name with labels, or -1 when
// there is none.
func gaugeValue(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	for _, m := range families[name].GetMetric() {
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

// value is gaugeValue, failing the test when there is no such series.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	v := gaugeValue(families, name, labels)
	if v == -1 {
		t.Fatalf("no series %s%v", name, labels)
	}
	return v
}

// TestAgainstSimulator: a scrape of both kinds of auth against the simulator
// exports every documented image series with the simulator's values, a
// missing image as not found, the API request counters and the exporter's
// own metrics; no secret reaches the answer or the log, promtool accepts the
// answer, and a status changed in the API shows on the next scrape.
func TestAgainstSimulator(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	const missing = "00000000-0000-4000-8000-000000000404"
	ids := append(modelartstest.SampleIDs(), missing)
	_, mux, logs := startInProcess(t, testConfig(t, t.TempDir(), sim, ids), options{logLevel: "debug"})

	body, families := scrapeIn(t, mux)
	for _, project := range []string{"aksk", "token"} {
		if v := value(t, families, "modelarts_up", map[string]string{"project": project}); v != 1 {
			t.Errorf("modelarts_up{project=%q} = %v, want 1", project, v)
		}
		for _, img := range sim.Images() {
			labels := map[string]string{"project": project, "id": img.ID}
			if v := value(t, families, "modelarts_image_up", labels); v != 1 {
				t.Errorf("modelarts_image_up%v = %v, want 1", labels, v)
			}
			labels["status"] = strings.ToUpper(img.Status)
			if v := value(t, families, "modelarts_image_status", labels); v != 1 {
				t.Errorf("modelarts_image_status%v = %v, want 1", labels, v)
			}
			labels = map[string]string{"project": project, "id": img.ID, "name": img.Name, "arch": img.Arch}
			if img.Size != nil {
				if v := value(t, families, "modelarts_image_size_bytes", labels); v != float64(*img.Size)*1024 {
					t.Errorf("modelarts_image_size_bytes%v = %v, want %v", labels, v, *img.Size*1024)
				}
			}
			if v := value(t, families, "modelarts_image_created_timestamp_seconds", labels); v != float64(img.CreateAt)/1000 {
				t.Errorf("created%v = %v, want %v", labels, v, float64(img.CreateAt)/1000)
			}
		}
		notFound := map[string]string{"project": project, "id": missing}
		if v := value(t, families, "modelarts_image_not_found", notFound); v != 1 {
			t.Errorf("modelarts_image_not_found%v = %v, want 1", notFound, v)
		}
		if v := value(t, families, "modelarts_image_up", notFound); v != 0 {
			t.Errorf("modelarts_image_up%v = %v, want 0", notFound, v)
		}
	}
	for _, name := range []string{"modelarts_api_requests_total", "modelarts_api_request_duration_seconds", "modelarts_exporter_config_last_reload_successful"} {
		if families[name] == nil {
			t.Errorf("metric family %s missing", name)
		}
	}
	if v := value(t, families, "modelarts_api_requests_total", map[string]string{"project": "token", "operation": "CreateToken", "code": "201"}); v != 1 {
		t.Errorf("token requests = %v, want 1", v)
	}
	for _, secret := range []string{"DemoSecretKeyExampleNotARealSecret", "demo-password"} {
		if strings.Contains(body, secret) || strings.Contains(logs.String(), secret) {
			t.Errorf("secret %q appears in the metrics or the log", secret)
		}
	}
	promtoolCheck(t, body)

	// A flip in the simulator shows on the next scrape.
	sim.SetStatus(modelartstest.SampleIDPyTorchBuiltin, "ERROR")
	_, families = scrapeIn(t, mux)
	if v := value(t, families, "modelarts_image_status", map[string]string{"project": "aksk", "id": modelartstest.SampleIDPyTorchBuiltin, "status": "ERROR"}); v != 1 {
		t.Errorf("after the flip: ERROR = %v, want 1", v)
	}
}

// promtoolCheck runs `promtool check metrics` on real output when promtool is
// installed; CI sets MODELARTS_REQUIRE_PROMTOOL=1 so it cannot be skipped there.
func promtoolCheck(t *testing.T, body string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("MODELARTS_REQUIRE_PROMTOOL") != "" {
			t.Fatal("MODELARTS_REQUIRE_PROMTOOL is set but promtool is not on PATH (apt-get install prometheus)")
		}
		t.Log("promtool not installed: skipping promtool check metrics")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestBinaryReload: the process reloads on SIGHUP (a broken file is refused,
// logged and the old configuration keeps serving; a good one adds its image)
// and, with --web.enable-lifecycle, on POST /-/reload; its /metrics has the
// go_*, process_* and build_info metrics run registers.
func TestBinaryReload(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	cfgPath := testConfig(t, t.TempDir(), sim, modelartstest.SampleIDs()[:1])
	good, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	exp := startExporter(t, exporterOptions{}, "--config.file="+cfgPath, "--web.enable-lifecycle")
	reloaded := func(want float64) func(map[string]*dto.MetricFamily) bool {
		return func(f map[string]*dto.MetricFamily) bool {
			return gaugeValue(f, "modelarts_exporter_config_last_reload_successful", nil) == want
		}
	}
	scrape := func() map[string]*dto.MetricFamily { return exp.scrape(t) }

	families := scrape()
	for _, name := range []string{"modelarts_exporter_build_info", "go_goroutines", "process_cpu_seconds_total"} {
		if families[name] == nil {
			t.Errorf("metric family %s missing", name)
		}
	}

	// SIGHUP with a broken file: refused and logged; the old configuration keeps serving.
	if err := os.WriteFile(cfgPath, append(good, []byte("  - bogus: true\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := exp.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	families = waitFor(t, "reload_successful 0 after SIGHUP with a broken file", scrape, reloaded(0))
	if v := value(t, families, "modelarts_image_up", map[string]string{"project": "aksk"}); v != 1 {
		t.Errorf("old configuration stopped serving: image_up = %v", v)
	}
	// The gauge is set before the line is logged, and the log is read from a pipe.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(exp.logs.String(), "Error reloading configuration"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("the refused reload is not logged:\n%s", exp.logs)
			break
		}
	}

	// SIGHUP with a good file: a new image appears.
	fixed := strings.Replace(string(good), "    images:\n", "    images:\n      - "+modelartstest.SampleIDError+"\n", 1)
	if err := os.WriteFile(cfgPath, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := exp.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload_successful 1 after SIGHUP with a good file", scrape, reloaded(1))
	// A scrape that overlapped the reload may have used the old projects: take a fresh one.
	if v := gaugeValue(scrape(), "modelarts_image_up", map[string]string{"project": "aksk", "id": modelartstest.SampleIDError}); v != 1 {
		t.Errorf("after SIGHUP: new image up = %v, want 1", v)
	}

	// --web.enable-lifecycle reaches the routes.
	if code, body := exp.do(t, http.MethodPost, "/-/reload"); code != http.StatusOK {
		t.Errorf("POST /-/reload with --web.enable-lifecycle: %d %s", code, body)
	}
}

// TestBinaryConfigCheck: --config.check exits 0 on a good file without
// printing its secrets, and 1 on a bad one, listing what is wrong on
// standard error; --version names the exporter.
func TestBinaryConfigCheck(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	dir := t.TempDir()
	cfgPath := testConfig(t, dir, sim, modelartstest.SampleIDs()[:2])
	out, err := exec.Command(exporterBinary(t), "--config.check", "--config.file="+cfgPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "is valid.") {
		t.Fatalf("--config.check on a good file: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "DemoSecretKeyExampleNotARealSecret") || strings.Contains(string(out), "demo-password") {
		t.Errorf("--config.check prints a secret:\n%s", out)
	}
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("projects: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exporterBinary(t), "--config.check", "--config.file="+bad)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Errorf("--config.check on a bad file: exit %v, want 1\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "is invalid:\n  - ") || !strings.Contains(stderr.String(), "project") {
		t.Errorf("--config.check on a bad file does not list what is wrong on standard error:\n%s", stderr.String())
	}
	out, err = exec.Command(exporterBinary(t), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "modelarts_exporter, version") {
		t.Errorf("--version: %v\n%s", err, out)
	}
}

// TestReloadClosesIdleConnections: a reload closes the idle connections of
// the API clients it replaces instead of leaving them open until they time out.
func TestReloadClosesIdleConnections(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	var open atomic.Int64
	api := httptest.NewUnstartedServer(sim.Handler())
	api.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		switch state {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	api.Start()
	defer api.Close()
	path := writeConfig(t, "projects:\n"+akskProject(sim, "p", api.URL, modelartstest.SampleIDs(), ""))
	exp := newExporter(log.NewNopLogger(), prometheus.NewRegistry(), &flags{configFile: path})
	if err := exp.reload(); err != nil {
		t.Fatal(err)
	}
	if res := exp.state.Load().scraper.Scrape(context.Background()); len(res) != 1 || !res[0].Up {
		t.Fatalf("scrape = %+v", res)
	}
	if open.Load() == 0 {
		t.Fatal("no connection open after the scrape")
	}
	if err := exp.reload(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); open.Load() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections of the replaced configuration still open after the reload", open.Load())
		}
	}
}

// TestReloadEndpoint: POST /-/reload reloads only with --web.enable-lifecycle;
// without it the answer is 403 and nothing is reloaded. Other methods get 405
// either way.
func TestReloadEndpoint(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	path := writeConfig(t, "projects:\n"+akskProject(sim, "p", sim.URL, modelartstest.SampleIDs()[:1], ""))
	for _, tt := range []struct {
		lifecycle bool
		code      int
		body      string
	}{
		{false, http.StatusForbidden, "Lifecycle API is not enabled; start the exporter with --web.enable-lifecycle to reload over HTTP (SIGHUP always reloads).\n"},
		{true, http.StatusOK, "Configuration reloaded.\n"},
	} {
		t.Run(fmt.Sprintf("lifecycle=%v", tt.lifecycle), func(t *testing.T) {
			exp, mux, _ := startInProcess(t, path, options{lifecycle: tt.lifecycle})
			serve := func(method string) *httptest.ResponseRecorder {
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest(method, "/-/reload", nil))
				return rec
			}
			before := exp.state.Load()
			for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
				if rec := serve(method); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodPost {
					t.Errorf("%s: %d, Allow %q; want 405, POST", method, rec.Code, rec.Header().Get("Allow"))
				}
			}
			rec := serve(http.MethodPost)
			if rec.Code != tt.code || rec.Body.String() != tt.body {
				t.Errorf("POST: %d %q, want %d %q", rec.Code, rec.Body, tt.code, tt.body)
			}
			if reloaded := exp.state.Load() != before; reloaded != tt.lifecycle {
				t.Errorf("reloaded: %v, want %v", reloaded, tt.lifecycle)
			}
		})
	}
}

// setRecorder is a gauge that remembers the values it was set to.
type setRecorder struct {
	prometheus.Gauge
	mu   sync.Mutex
	sets []float64
}

func (g *setRecorder) Set(v float64) {
	g.mu.Lock()
	g.sets = append(g.sets, v)
	g.mu.Unlock()
	g.Gauge.Set(v)
}

func (g *setRecorder) values() []float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]float64(nil), g.sets...)
}

// TestReloadRecordsOutcomeOnce: whether the file cannot be loaded or its
// projects cannot be set up, a reload records its outcome in
// ..._config_last_reload_successful once, in one place.
func TestReloadRecordsOutcomeOnce(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad_ca.pem"), []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	project := func(extra string) string {
		return "projects:\n" + akskProject(sim, "p", sim.URL, modelartstest.SampleIDs()[:1], extra)
	}
	tests := []struct {
		name   string
		config string
		want   []float64
	}{
		{"good", project(""), []float64{1}},
		{"file refused by config.Load", "projects: [", []float64{0}},
		{"projects cannot be set up", project("    tls_config:\n      ca_file: bad_ca.pem\n"), []float64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "modelarts_exporter.yml")
			if err := os.WriteFile(path, []byte(tt.config), 0o600); err != nil {
				t.Fatal(err)
			}
			exp := newExporter(log.NewNopLogger(), prometheus.NewRegistry(), &flags{configFile: path})
			gauge := &setRecorder{Gauge: exp.reloadSuccess}
			exp.reloadSuccess = gauge
			err := exp.reload()
			if (err == nil) != (tt.want[0] == 1) {
				t.Fatalf("reload: %v", err)
			}
			if got := gauge.values(); !slices.Equal(got, tt.want) {
				t.Errorf("reload_successful set to %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLargeScrapeAnswersInTime: when the API hangs and serve_stale_for lets
// the scrape answer with old values, the API work ends early enough for the
// answer to be rendered within the timeout of the header: at the header's
// timeout minus --scrape.timeout-offset and the time the last answer took to
// render (at least half of the header's).
//
// The exporter's debug log tells what it planned and what happened; the test
// checks those rather than the time the test's client took, which under the
// load of a parallel, race-detecting test run varies by seconds. The offset
// is below the render time of the 2,000 images, so that the last render
// matters.
func TestLargeScrapeAnswersInTime(t *testing.T) {
	images := modelartstest.GenerateImages(2000, 1)
	sim := modelartstest.NewServer(modelartstest.Options{Images: images})
	defer sim.Close()
	const offset = time.Millisecond
	path := writeConfig(t, "global:\n  serve_stale_for: 10m\nprojects:\n"+akskProject(sim, "aksk", sim.URL, nil, "    discovery: {}\n"))
	_, mux, logs := startInProcess(t, path, options{offset: offset, logLevel: "debug"})
	scrape := func(timeout time.Duration) string {
		t.Helper()
		rec := get(mux, "/metrics", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {fmt.Sprint(timeout.Seconds())}})
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /metrics: %d", rec.Code)
		}
		return rec.Body.String()
	}
	scrape(30 * time.Second)

	sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultDelay, Delay: time.Minute}) // the API hangs
	const header = time.Second
	if body := scrape(header); !strings.Contains(body, `modelarts_image_status{`) {
		t.Error("the answer has no stale image values")
	}

	answered := scrapesAnswered(t, logs.String())
	if len(answered) != 2 {
		t.Fatalf("%d scrapes logged, want 2", len(answered))
	}
	hung := answered[1]
	t.Logf("exporter: %+v", hung)
	if hung["last_render"] != answered[0]["render"] || hung["last_render"] <= offset {
		t.Fatalf("last render %v, want the first scrape's %v, longer than the offset %v",
			hung["last_render"], answered[0]["render"], offset)
	}
	if want := max(header-offset-hung["last_render"], header/2); hung["api_timeout"] != want {
		t.Errorf("API timeout %v, want %v: the header's timeout minus the offset and the last render, at least half of it", hung["api_timeout"], want)
	}
	const windDown = 500 * time.Millisecond // for the scrape to give up and collect what it has
	if hung["api"] > hung["api_timeout"]+windDown {
		t.Errorf("the API work took %v, past its deadline %v", hung["api"], hung["api_timeout"])
	}
}

// scrapesAnswered returns the durations of each "Scrape answered" debug line
// of the exporter's log, by key.
func scrapesAnswered(t *testing.T, logs string) []map[string]time.Duration {
	t.Helper()
	var out []map[string]time.Duration
	for line := range strings.Lines(logs) {
		if !strings.Contains(line, `msg="Scrape answered"`) {
			continue
		}
		fields := map[string]time.Duration{}
		for _, kv := range strings.Fields(line) {
			key, value, ok := strings.Cut(kv, "=")
			if !ok || !slices.Contains([]string{"api_timeout", "last_render", "api", "render"}, key) {
				continue
			}
			d, err := time.ParseDuration(value)
			if err != nil {
				t.Fatalf("%s in %q: %v", key, line, err)
			}
			fields[key] = d
		}
		out = append(out, fields)
	}
	return out
}

// TestNegativeFlagsRefused: a negative --scrape.timeout-offset,
// --web.max-requests or --scrape.max-timeout is a usage error (exit 2),
// found before the configuration is read.
func TestNegativeFlagsRefused(t *testing.T) {
	for _, flag := range []string{"--scrape.timeout-offset=-1s", "--web.max-requests=-1", "--scrape.max-timeout=-1s"} {
		if code := run([]string{flag, "--config.file=/nonexistent"}); code != 2 {
			t.Errorf("%s: exit %d, want 2", flag, code)
		}
	}
}
