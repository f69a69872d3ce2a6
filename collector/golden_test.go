// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenResults scrapes a fixed simulator state: every sample image (one in
// an undocumented status, one failing, one deleted) in a project with
// configured IDs, and the same images discovered in another.
func goldenResults(t *testing.T) []ProjectResult {
	t.Helper()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	t.Cleanup(sim.Close)
	ids := modelartstest.SampleIDs()
	sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultUnknownStatus, ImageID: ids[1], Value: "FROZEN"})
	sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultStatus, Operation: modelartstest.OpShowImage, ImageID: ids[2], Status: 500})
	const deleted = "00000000-0000-4000-8000-000000000404"
	configured := simProject(t, sim, append(ids, deleted), modelartstest.DemoSecretKey)
	configured.Name = "configured"
	discovered := simProject(t, sim, nil, modelartstest.DemoSecretKey)
	discovered.Name, discovered.Discovery = "discovered", &modelarts.ListOptions{}
	clock := newTestClock()
	s := newScraper(log.NewNopLogger(), []Project{configured, discovered}, clock.Now)
	preferShow(s) // the configured project fetches one by one: the 500 hits one image
	res := s.Scrape(context.Background())
	for i := range res {
		res[i].Duration = 1500 * time.Millisecond // not the data's: pinned
	}
	return res
}

// TestGoldenExposition pins every series of a fixed simulator state, byte
// for byte (node_exporter's e2e-output.txt), and runs promtool check metrics
// on it when promtool is installed. go test ./collector -run Golden -update
// rewrites the file.
func TestGoldenExposition(t *testing.T) {
	got := exposition(t, goldenResults(t))
	path := filepath.Join("testdata", "e2e-output.txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the exposition differs from %s (go test ./collector -run Golden -update rewrites it):\n%s", path, diffLines(string(want), got))
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("MODELARTS_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool is required (MODELARTS_REQUIRE_PROMTOOL) but not on PATH")
		}
		t.Skip("promtool not installed")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(got)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// diffLines lists the lines only in want (-) and only in got (+).
func diffLines(want, got string) string {
	var b strings.Builder
	for _, l := range missingFrom(strings.Split(want, "\n"), strings.Split(got, "\n")) {
		b.WriteString("- " + l + "\n")
	}
	for _, l := range missingFrom(strings.Split(got, "\n"), strings.Split(want, "\n")) {
		b.WriteString("+ " + l + "\n")
	}
	return b.String()
}
