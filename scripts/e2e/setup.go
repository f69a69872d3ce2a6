// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
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

// simImages reads the simulator's images through its admin API: the truth
// the exported values are compared with.
func (e *e2e) simImages(ctx context.Context) (map[string]modelarts.Image, error) {
	var list []modelarts.Image
	if err := doJSON(ctx, http.MethodGet, e.simURL+"/-/sim/images", nil, http.StatusOK, &list); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errors.New("the simulator has no images")
	}
	images := make(map[string]modelarts.Image, len(list))
	for _, img := range list {
		images[img.ID] = img
	}
	return images, nil
}

// akskImages are the images of the AK/SK project: every sample image and one
// that does not exist.
func akskImages() []string {
	return append(modelartstest.SampleIDs(), missingID)
}

func (e *e2e) writeExporterConfig() (string, error) {
	dir := filepath.Join(e.tmp, "exporter")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	for name, secret := range map[string]string{
		"secret_key": modelartstest.DemoSecretKey,
		"password":   modelartstest.DemoPassword,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret+"\n"), 0o600); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by scripts/e2e: the simulator's fake demo credentials.
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
`, projectAKSK, modelartstest.DefaultRegion, modelartstest.DefaultProjectID, e.simURL, e.simURL, modelartstest.DemoAccessKey)
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
`, projectToken, modelartstest.DefaultRegion, e.simURL, e.simURL, modelartstest.DemoDomain, modelartstest.DemoUser)
	for _, id := range tokenImages {
		fmt.Fprintf(&b, "      - %s\n", id)
	}
	path := filepath.Join(dir, "modelarts_exporter.yml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// writeAlertmanagerConfig routes every alert to the checker's webhook, fast.
func (e *e2e) writeAlertmanagerConfig(ctx context.Context) (string, error) {
	cfg := fmt.Sprintf(`# Written by scripts/e2e.
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
`, e.hook.url)
	path := filepath.Join(e.tmp, "alertmanager.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", err
	}
	if _, err := exec.LookPath(e.opts.amtool); err == nil {
		if out, err := run(ctx, e.opts.amtool, "check-config", path); err != nil {
			return "", fmt.Errorf("amtool check-config: %w\n%s", err, out)
		}
		e.ok("amtool check-config passes on the Alertmanager configuration")
	}
	return path, nil
}

// writePrometheusConfig writes the overlay of deploy/prometheus/: the shipped
// prometheus.yml with its intervals shortened, its targets on loopback and its
// rule files replaced by copies whose `for:` durations are shortened. Nothing
// else changes, so the scrape job and the rule expressions under test are the
// shipped ones. The overlay passes promtool check config, too.
func (e *e2e) writePrometheusConfig(ctx context.Context, exporterAddr, amAddr string) (string, error) {
	shipped := filepath.Join(e.opts.repo, "deploy", "prometheus", "prometheus.yml")
	raw, err := os.ReadFile(shipped)
	if err != nil {
		return "", err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return "", fmt.Errorf("%s: %w", shipped, err)
	}
	interval := e.opts.interval.String()

	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
	}
	global["scrape_interval"], global["evaluation_interval"] = interval, interval
	cfg["global"] = global

	// Rule files: copies with shortened `for:`.
	ruleFiles, _ := cfg["rule_files"].([]any)
	if len(ruleFiles) == 0 {
		return "", fmt.Errorf("%s: no rule_files", shipped)
	}
	rulesDir := filepath.Join(e.tmp, "rules")
	if err := os.MkdirAll(rulesDir, 0o700); err != nil {
		return "", err
	}
	for i, rf := range ruleFiles {
		name, _ := rf.(string)
		src := name
		if !filepath.IsAbs(src) {
			src = filepath.Join(filepath.Dir(shipped), name)
		}
		rules, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		short, n := shortenFor(rules, e.opts.forDuration)
		dst := filepath.Join(rulesDir, fmt.Sprintf("%d_%s", i, filepath.Base(name)))
		if err := os.WriteFile(dst, short, 0o600); err != nil {
			return "", err
		}
		e.logf("overlay: %s with its %d `for:` durations set to %s", name, n, e.opts.forDuration)
		ruleFiles[i] = dst
	}

	// Alertmanager on loopback.
	alerting, _ := cfg["alerting"].(map[string]any)
	ams, _ := alerting["alertmanagers"].([]any)
	if len(ams) == 0 {
		return "", fmt.Errorf("%s: no alerting.alertmanagers", shipped)
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
		return "", fmt.Errorf("%s: no scrape job %q", shipped, jobName)
	}
	if _, ok := job["scrape_interval"]; !ok {
		return "", fmt.Errorf("%s: job %s sets no scrape_interval", shipped, jobName)
	}
	job["scrape_interval"], job["scrape_timeout"] = interval, interval
	job["static_configs"] = []any{map[string]any{"targets": []any{exporterAddr}}}
	cfg["scrape_configs"] = []any{job}

	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(e.tmp, "prometheus.yml")
	if err := os.WriteFile(path, append([]byte("# Written by scripts/e2e: the overlay of "+shipped+".\n"), out...), 0o600); err != nil {
		return "", err
	}
	if out, err := run(ctx, e.opts.promtool, "check", "config", path); err != nil {
		return "", fmt.Errorf("promtool check config on the overlay: %w\n%s", err, out)
	}
	e.ok("promtool check config passes on the overlay %s", path)
	return path, nil
}

// webhook receives Alertmanager's notifications.
type webhook struct {
	url    string
	srv    *http.Server
	mu     sync.Mutex
	alerts []webhookAlert
}

type webhookAlert struct {
	Status string            `json:"status"`
	Labels map[string]string `json:"labels"`
}

func startWebhook() (*webhook, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
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
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
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

func (h *webhook) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = h.srv.Shutdown(ctx)
}

func hasLabels(labels, want map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}
