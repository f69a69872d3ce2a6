// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/modelarts-exporter/modelarts_exporter/config"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// victim describes the project a fault is aimed at.
type victim struct {
	auth      string // "aksk" or "token"
	endpoint  string // ModelArts and IAM endpoint
	images    []string
	extraYAML string // more lines of the project, indented by 4 spaces
}

// faultConfig is a configuration with the victim project and a bystander
// project (AK/SK, on the simulator) that no fault is aimed at.
func faultConfig(t *testing.T, dir string, sim *modelartstest.Server, v victim, bystanderImages []string) *config.Config {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "sk"), []byte(modelartstest.DemoSecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_timeout: 10s\n  concurrency: 4\nprojects:\n")
	fmt.Fprintf(&b, "  - name: victim\n    region: %s\n    modelarts_endpoint: %s\n    iam_endpoint: %s\n", sim.Region(), v.endpoint, v.endpoint)
	switch v.auth {
	case "aksk":
		fmt.Fprintf(&b, "    project_id: %s\n    auth:\n      access_key: %s\n      secret_key_file: sk\n", sim.ProjectID(), modelartstest.DemoAccessKey)
	case "token":
		// No project id: it comes from the token, so IAM is on the path.
		fmt.Fprintf(&b, "    auth:\n      domain_name: %s\n      username: %s\n      password: %s\n",
			modelartstest.DemoDomain, modelartstest.DemoUser, modelartstest.DemoPassword)
	default:
		t.Fatalf("unknown auth %q", v.auth)
	}
	b.WriteString(v.extraYAML)
	b.WriteString("    images:\n")
	for _, id := range v.images {
		fmt.Fprintf(&b, "      - %s\n", id)
	}
	fmt.Fprintf(&b, "  - name: bystander\n    region: %s\n    project_id: %s\n    modelarts_endpoint: %s\n    iam_endpoint: %s\n",
		sim.Region(), sim.ProjectID(), sim.URL, sim.URL)
	fmt.Fprintf(&b, "    auth:\n      access_key: %s\n      secret_key_file: sk\n    images:\n", modelartstest.DemoAccessKey)
	for _, id := range bystanderImages {
		fmt.Fprintf(&b, "      - %s\n", id)
	}
	cfg, err := config.LoadReader(strings.NewReader(b.String()), dir)
	if err != nil {
		t.Fatalf("test configuration: %v\n%s", err, b.String())
	}
	return cfg
}

// lockedBuffer is a log destination that tests read while scrapes write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// take returns what was logged since the last take.
func (l *lockedBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

// newFaultScraper builds the projects of cfg the way the exporter does and a
// scraper that logs to logs.
func newFaultScraper(t *testing.T, cfg *config.Config, logs *lockedBuffer) *Scraper {
	t.Helper()
	projects, err := NewProjects(cfg, NewAPIMetrics(prometheus.NewRegistry()), "modelarts_exporter/test", modelarts.NewShared())
	if err != nil {
		t.Fatal(err)
	}
	return NewScraper(log.NewLogfmtLogger(log.NewSyncWriter(logs)), projects)
}

// scrapeText runs one scrape within timeout and returns its exposition,
// without the scrape durations (they differ from scrape to scrape).
func scrapeText(t *testing.T, s *Scraper, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	mfs, err := prometheus.Gatherers{gatherer(s.Scrape(ctx))}.Gather() // checks consistency like a registry
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if mf.GetName() == "modelarts_scrape_duration_seconds" {
			continue
		}
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

// seriesLines returns the sample lines of an exposition, without comments.
func seriesLines(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// sampleValue returns the value of the one series of name whose labels
// contain every one of labels (given as `k="v"`), and whether there is one.
func sampleValue(t *testing.T, text, name string, labels ...string) (string, bool) {
	t.Helper()
	found, value := 0, ""
	for _, line := range seriesLines(text) {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(line, l)
		}
		if match {
			found++
			value = line[strings.LastIndexByte(line, ' ')+1:]
		}
	}
	if found > 1 {
		t.Fatalf("%d series %s%v, want at most 1", found, name, labels)
	}
	return value, found == 1
}
