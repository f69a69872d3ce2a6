// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// victim describes the project a fault is aimed at.
type victim struct {
	auth     string // "aksk" or "token"
	endpoint string // ModelArts and IAM endpoint
	images   []string
	roots    *x509.CertPool // the CAs trusted for the endpoint (tls_config.ca_file); nil: the system's
}

// faultConfig is the projects of a configuration with the victim project and
// a bystander project (AK/SK, on the simulator) that no fault is aimed at,
// built as the exporter builds them: secret key from a file, 4 calls in flight.
func faultConfig(t *testing.T, dir string, sim *modelartstest.Server, v victim, bystanderImages []string) []Project {
	t.Helper()
	skFile := filepath.Join(dir, "sk")
	if err := os.WriteFile(skFile, []byte(modelartstest.DemoSecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := modelarts.NewShared()
	project := func(name string, cfg modelarts.Config, images []string) Project {
		cfg.Region, cfg.Shared, cfg.UserAgent = sim.Region(), shared, "modelarts_exporter/test"
		client := modelarts.NewClient(cfg)
		return Project{Name: name, Client: client, ImageIDs: images, Concurrency: 4}
	}
	aksk := modelarts.Credentials{AccessKey: modelartstest.DemoAccessKey, SecretKeyFile: skFile}
	victimCfg := modelarts.Config{Endpoint: v.endpoint, IAMEndpoint: v.endpoint}
	switch v.auth {
	case "aksk":
		victimCfg.ProjectID, victimCfg.Credentials = sim.ProjectID(), aksk
	case "token":
		// No project id: it comes from the token, so IAM is on the path.
		victimCfg.Credentials = modelarts.Credentials{DomainName: modelartstest.DemoDomain,
			Username: modelartstest.DemoUser, Password: modelartstest.DemoPassword}
	default:
		t.Fatalf("unknown auth %q", v.auth)
	}
	if v.roots != nil {
		victimCfg.HTTPClient = &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: v.roots, MinVersion: tls.VersionTLS12}}}
	}
	return []Project{
		project("victim", victimCfg, v.images),
		project("bystander", modelarts.Config{Endpoint: sim.URL, IAMEndpoint: sim.URL, ProjectID: sim.ProjectID(), Credentials: aksk}, bystanderImages),
	}
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

// newFaultScraper is a scraper of projects that logs to logs.
func newFaultScraper(projects []Project, logs *lockedBuffer) *Scraper {
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

// closedURL returns the URL of a loopback port nothing listens on: a call
// to it is refused at once, with no DNS lookup.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}
