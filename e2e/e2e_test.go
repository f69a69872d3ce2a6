// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/internal/procs"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// debianPackages are the programs the e2e runs, with the Debian package that
// installs each. A missing one fails the run: CI installs them all.
var debianPackages = map[string]string{
	"prometheus":              "prometheus",
	"promtool":                "prometheus",
	"prometheus-alertmanager": "prometheus-alertmanager",
	"amtool":                  "prometheus-alertmanager",
	"chromium":                "chromium",
}

func requireTools(t *testing.T) {
	t.Helper()
	var missing []string
	packages := map[string]bool{}
	for _, bin := range sortedKeys(debianPackages) {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
			packages[debianPackages[bin]] = true
		}
	}
	if len(missing) > 0 {
		t.Fatalf("not on PATH: %s; on Debian: apt-get install %s", strings.Join(missing, ", "), strings.Join(sortedKeys(packages), " "))
	}
	requireBinaries(t)
}

// runOK runs a command in the repository's root and fails t, with the
// command's output, when it does not exit 0.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), args[0], args[1:]...)
	cmd.Dir = repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v, want exit 0:\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// run runs a subtest and ends t at the first failure: the checks build on the
// state the ones before them left.
func run(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, f) {
		t.FailNow()
	}
}

// TestShippedFiles checks the files of deploy/ with the tools that read them.
func TestShippedFiles(t *testing.T) {
	requireTools(t)
	t.Run("promtool check config accepts the shipped prometheus.yml", func(t *testing.T) {
		runOK(t, "promtool", "check", "config", "deploy/prometheus/prometheus.yml")
	})
	t.Run("promtool check rules accepts the shipped alerts.yml", func(t *testing.T) {
		runOK(t, "promtool", "check", "rules", "deploy/prometheus/alerts.yml")
	})
	t.Run("promtool test rules passes alerts_test.yml", func(t *testing.T) {
		runOK(t, "promtool", "test", "rules", "deploy/prometheus/alerts_test.yml")
	})
	t.Run("--config.check accepts the example configuration", func(t *testing.T) {
		runOK(t, "./modelarts_exporter", "--config.check", "--config.file=deploy/modelarts_exporter.yml")
	})
	t.Run("go test of deploy passes: generated files up to date, alert tests complete, dashboard and manifests", func(t *testing.T) {
		runOK(t, "go", "test", "-count=1", "./deploy")
	})
	t.Run("systemd-analyze verifies the unit and rates its exposure at most 2.0", func(t *testing.T) {
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			t.Skip("systemd-analyze not installed")
		}
		unit, err := os.ReadFile(filepath.Join(repo, "deploy", "systemd", "modelarts_exporter.service"))
		if err != nil {
			t.Fatal(err)
		}
		// verify wants the binary and the credential to exist: point them at ours.
		root, err := filepath.Abs(repo)
		if err != nil {
			t.Fatal(err)
		}
		unit = []byte(strings.NewReplacer(
			"/usr/local/bin/modelarts_exporter", filepath.Join(root, "modelarts_exporter"),
			"/etc/modelarts_exporter/secret_key", filepath.Join(root, "deploy", "demo", "demo_secret_key"),
		).Replace(string(unit)))
		path := filepath.Join(t.TempDir(), "modelarts_exporter.service")
		if err := os.WriteFile(path, unit, 0o600); err != nil {
			t.Fatal(err)
		}
		runOK(t, "systemd-analyze", "verify", path)
		// Exposure on systemd's 0-100 scale (printed as 0.0-10.0).
		out := runOK(t, "systemd-analyze", "security", "--offline=true", "--threshold=20", path)
		t.Log(lastLine(out))
	})
	t.Run("kubectl kustomize renders the Kubernetes manifests", func(t *testing.T) {
		if _, err := exec.LookPath("kubectl"); err != nil {
			t.Skip("kubectl not installed (go test ./deploy checked the manifests)")
		}
		out := runOK(t, "kubectl", "kustomize", "deploy/kubernetes")
		if !strings.Contains(out, "\nkind: Deployment\n") {
			t.Fatalf("no Deployment rendered:\n%s", out)
		}
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// stack is the live stack on loopback.
type stack struct {
	ctx    context.Context
	tmp    string
	images map[string]modelarts.Image // the simulator's, by id

	simURL, exporterURL, promURL, amURL string
	exporterAddr                        string
	exporterProc                        *procs.Proc
	exporterConfig                      string
	promStarted                         time.Time
	prom                                promAPI
	hook                                *webhook
}

// The overlay's timing: scrape and evaluation interval, and what every `for:`
// of the shipped rules becomes.
const (
	interval    = time.Second
	forDuration = "2s"
)

// TestLiveStack starts modelarts-simulator with the sample images,
// modelarts_exporter, prometheus with deploy/prometheus/ plus an overlay
// (fast intervals, loopback targets, shortened `for:`) and
// prometheus-alertmanager, then checks what arrives where.
func TestLiveStack(t *testing.T) {
	requireTools(t)
	s := &stack{ctx: t.Context(), tmp: keepOnFailure(t, "modelarts-e2e-")}
	addrs := procs.FreeAddrs(t, 3)
	s.exporterAddr, s.exporterURL = addrs[0], "http://"+addrs[0]
	s.promURL, s.amURL = "http://"+addrs[1], "http://"+addrs[2]
	s.prom = promAPI{base: s.promURL}
	s.hook = startWebhook(t)

	_, s.simURL = startSimulator(t, s.tmp, "sample")
	s.images = map[string]modelarts.Image{}
	for _, img := range simImages(t, s.simURL) {
		s.images[img.ID] = img
	}

	s.exporterConfig = s.writeExporterConfig(t)
	s.exporterProc = procs.Start(t, s.tmp, "exporter", exporterBin,
		"--config.file="+s.exporterConfig, "--web.listen-address="+s.exporterAddr, "--log.level=debug",
		"--web.enable-lifecycle") // the failed reload goes over HTTP
	if err := s.exporterProc.WaitReady(s.exporterURL + "/-/healthy"); err != nil {
		t.Fatal(err)
	}

	var amConfig, promConfig string
	run(t, "amtool check-config accepts the Alertmanager configuration", func(t *testing.T) {
		amConfig = s.writeAlertmanagerConfig(t)
	})
	run(t, "promtool check config accepts the overlay of the shipped prometheus.yml", func(t *testing.T) {
		promConfig = s.writePrometheusConfig(t, addrs[2])
	})
	am := procs.Start(t, s.tmp, "alertmanager", "prometheus-alertmanager",
		"--config.file="+amConfig, "--storage.path="+filepath.Join(s.tmp, "alertmanager"),
		"--web.listen-address="+addrs[2], "--cluster.listen-address=")
	s.promStarted = time.Now()
	prom := procs.Start(t, s.tmp, "prometheus", "prometheus",
		"--config.file="+promConfig, "--storage.tsdb.path="+filepath.Join(s.tmp, "prometheus"),
		"--web.listen-address="+addrs[1])
	for _, p := range []struct {
		proc *procs.Proc
		url  string
	}{{am, s.amURL}, {prom, s.promURL}} {
		if err := p.proc.WaitReady(p.url + "/-/ready"); err != nil {
			t.Fatal(err)
		}
	}

	run(t, "series", s.checkSeries)
	run(t, "status page in headless Chromium", s.checkStatusPage)
	run(t, "probe through hashmod shards and replicas behind one address", s.checkProbe)
	run(t, "exactly the alerts the sample images call for fire", s.checkBaselineAlerts)
	run(t, "dashboard", s.checkDashboard)
	run(t, "still exactly the alerts the sample images call for after the dashboard", s.checkBaselineAlerts)
	run(t, "image flipped to ERROR", s.checkFlipToError)
	run(t, "API faults", s.checkAPIFaults)
	run(t, "failed reload", s.checkFailedReload)
	run(t, "exporter stopped: up 0 and ModelArtsExporterDown fires", s.checkExporterDown)
}

// sortedKeys returns the keys of a map, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// noValue reports template output that used a label the alert does not have.
func noValue(s string) bool {
	return strings.Contains(s, "<no value>") || strings.Contains(s, "{{") || strings.TrimSpace(s) == ""
}
