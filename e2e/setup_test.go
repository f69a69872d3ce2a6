// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// The two projects of the exporter's configuration: one per authentication
// scheme, both on the simulator.
const (
	projectAKSK  = "e2e-aksk"
	projectToken = "e2e-token"
	// missingID is configured but does not exist: modelarts_image_not_found 1.
	missingID = "00000000-0000-4000-8000-000000000404"
	// jobName is the scrape job of deploy/prometheus/prometheus.yml.
	jobName = "modelarts_exporter"
)

// tokenImages are the images of the token project; none of them fails.
var tokenImages = []string{modelartstest.SampleIDPyTorchBuiltin, modelartstest.SampleIDFrozen}

// akskImages are the images of the AK/SK project: every sample image and one
// that does not exist.
func akskImages() []string {
	return append(modelartstest.SampleIDs(), missingID)
}

func (s *stack) writeExporterConfig(t *testing.T) string {
	dir := filepath.Join(s.tmp, "exporter")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "secret_key"), modelartstest.DemoSecretKey+"\n")
	writeFile(t, filepath.Join(dir, "password"), modelartstest.DemoPassword+"\n")
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by the e2e test: the simulator's fake demo credentials.
global:
  scrape_timeout: 10s
  concurrency: 4
projects:
  - name: %s
    region: %s
    project_id: %s
    modelarts_endpoint: %s
    iam_endpoint: %s
    auth:
      access_key: %s
      secret_key_file: secret_key
    images:
`, projectAKSK, modelartstest.DefaultRegion, modelartstest.DefaultProjectID, s.simURL, s.simURL, modelartstest.DemoAccessKey)
	for _, id := range akskImages() {
		fmt.Fprintf(&b, "      - %s\n", id)
	}
	fmt.Fprintf(&b, `  - name: %s
    region: %s
    modelarts_endpoint: %s
    iam_endpoint: %s
    auth:
      domain_name: %s
      username: %s
      password_file: password
    images:
`, projectToken, modelartstest.DefaultRegion, s.simURL, s.simURL, modelartstest.DemoDomain, modelartstest.DemoUser)
	for _, id := range tokenImages {
		fmt.Fprintf(&b, "      - %s\n", id)
	}
	path := filepath.Join(dir, "modelarts_exporter.yml")
	writeFile(t, path, b.String())
	return path
}

// writeAlertmanagerConfig routes every alert to the test's webhook, fast, and
// checks the file with amtool.
func (s *stack) writeAlertmanagerConfig(t *testing.T) string {
	path := filepath.Join(s.tmp, "alertmanager.yml")
	writeFile(t, path, fmt.Sprintf(`# Written by the e2e test.
route:
  receiver: e2e-webhook
  group_by: [alertname, project, id]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: e2e-webhook
    webhook_configs:
      - url: %s
        send_resolved: false
`, s.hook.url))
	runOK(t, "amtool", "check-config", path)
	return path
}

// writePrometheusConfig writes the overlay of deploy/prometheus/: the shipped
// prometheus.yml with its intervals shortened, its targets on loopback and its
// rule files replaced by copies whose `for:` durations are shortened. Nothing
// else changes, so the scrape job and the rule expressions under test are the
// shipped ones. The overlay must pass promtool check config, too.
func (s *stack) writePrometheusConfig(t *testing.T, amAddr string) string {
	shipped := filepath.Join(repo, "deploy", "prometheus", "prometheus.yml")
	raw, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("%s: %v", shipped, err)
	}
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
	}
	global["scrape_interval"], global["evaluation_interval"] = interval.String(), interval.String()
	cfg["global"] = global

	// Rule files: copies with shortened `for:`.
	ruleFiles, _ := cfg["rule_files"].([]any)
	if len(ruleFiles) == 0 {
		t.Fatalf("%s: no rule_files", shipped)
	}
	rulesDir := filepath.Join(s.tmp, "rules")
	if err := os.MkdirAll(rulesDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for i, rf := range ruleFiles {
		name, _ := rf.(string)
		src := name
		if !filepath.IsAbs(src) {
			src = filepath.Join(filepath.Dir(shipped), name)
		}
		rules, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		short, n := shortenFor(rules, forDuration)
		dst := filepath.Join(rulesDir, fmt.Sprintf("%d_%s", i, filepath.Base(name)))
		writeFile(t, dst, string(short))
		t.Logf("overlay: %s with its %d `for:` durations set to %s", name, n, forDuration)
		ruleFiles[i] = dst
	}

	// Alertmanager on loopback.
	alerting, _ := cfg["alerting"].(map[string]any)
	if ams, _ := alerting["alertmanagers"].([]any); len(ams) == 0 {
		t.Fatalf("%s: no alerting.alertmanagers", shipped)
	}
	cfg["alerting"] = map[string]any{"alertmanagers": []any{
		map[string]any{"static_configs": []any{map[string]any{"targets": []any{amAddr}}}},
	}}

	// The exporter's job on loopback; other jobs are dropped.
	var job map[string]any
	jobs, _ := cfg["scrape_configs"].([]any)
	for _, j := range jobs {
		if m, _ := j.(map[string]any); m != nil && m["job_name"] == jobName {
			job = m
		}
	}
	if job == nil {
		t.Fatalf("%s: no scrape job %q", shipped, jobName)
	}
	if _, ok := job["scrape_interval"]; !ok {
		t.Fatalf("%s: job %s sets no scrape_interval", shipped, jobName)
	}
	job["scrape_interval"], job["scrape_timeout"] = interval.String(), interval.String()
	job["static_configs"] = []any{map[string]any{"targets": []any{s.exporterAddr}}}
	cfg["scrape_configs"] = []any{job}

	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.tmp, "prometheus.yml")
	writeFile(t, path, "# Written by the e2e test: the overlay of "+shipped+".\n"+string(out))
	runOK(t, "promtool", "check", "config", path)
	return path
}

// forRE matches the `for:` of a rule in a rule file.
var forRE = regexp.MustCompile(`(?m)^(\s+for:\s*)(\S+)(\s*(#.*)?)$`)

// shortenFor rewrites every `for:` duration to d and reports how many it
// rewrote.
func shortenFor(rules []byte, d string) ([]byte, int) {
	n := len(forRE.FindAll(rules, -1))
	return forRE.ReplaceAll(rules, []byte("${1}"+d+"${3}")), n
}

// webhook receives Alertmanager's notifications.
type webhook struct {
	url    string
	mu     sync.Mutex
	alerts []webhookAlert
}

type webhookAlert struct {
	Status string            `json:"status"`
	Labels map[string]string `json:"labels"`
}

// startWebhook serves the receiver until t ends.
func startWebhook(t *testing.T) *webhook {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &webhook{url: "http://" + ln.Addr().String() + "/webhook"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Alerts []webhookAlert `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.alerts = append(h.alerts, msg.Alerts...)
		h.mu.Unlock()
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return h
}

// received returns the notified alerts whose labels include want.
func (h *webhook) received(want map[string]string) []webhookAlert {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []webhookAlert
	for _, a := range h.alerts {
		if hasLabels(a.Labels, want) {
			out = append(out, a)
		}
	}
	return out
}

func hasLabels(labels, want map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}
