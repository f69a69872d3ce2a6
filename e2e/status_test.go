// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The rows of the status page as the browser's DOM has them.
var (
	projectRowRE = regexp.MustCompile(`<tr class="project[^"]*" data-project="([^"]*)" data-up="([01])">`)
	imageRowRE   = regexp.MustCompile(`<tr class="image[^"]*" data-project="([^"]*)" data-id="([^"]*)" data-status="([^"]*)" data-up="([01])">\s*<td>[^<]*</td><td>([^<]*)</td>`)
)

// browse loads the exporter's status page in headless Chromium with args.
func (s *stack) browse(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 60*time.Second)
	defer cancel()
	args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir=" + filepath.Join(s.tmp, "chromium")}, append(args, s.exporterURL+"/")...)
	cmd := exec.CommandContext(ctx, "chromium", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("chromium %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// checkStatusPage: the DOM must list every project up and every image with
// the simulator's status (the missing one down, without status), and a
// screenshot is saved to .e2e/status.png.
func (s *stack) checkStatusPage(t *testing.T) {
	run(t, "the DOM lists both projects up and every image with the simulator's status", func(t *testing.T) {
		want := map[string]string{} // "project id" → "status up"
		for _, id := range akskImages() {
			want[projectAKSK+" "+id] = s.imageState(id)
		}
		for _, id := range tokenImages {
			want[projectToken+" "+id] = s.imageState(id)
		}
		var listed []string
		must(t, poll(s.ctx, "the browser's DOM of the status page", 30*time.Second, func() error {
			dom, err := s.browse("--dump-dom")
			if err != nil {
				return stopPolling(err)
			}
			projects := projectRowRE.FindAllStringSubmatch(dom, -1)
			if len(projects) != 2 {
				return fmt.Errorf("%d project rows, want 2:\n%s", len(projects), dom)
			}
			for _, p := range projects {
				if p[2] != "1" {
					return fmt.Errorf("project %s is listed down, want up", p[1])
				}
			}
			rows := imageRowRE.FindAllStringSubmatch(dom, -1)
			got := map[string]string{}
			listed = listed[:0]
			for _, r := range rows {
				project, id, status, up, name := html.UnescapeString(r[1]), r[2], html.UnescapeString(r[3]), r[4], html.UnescapeString(r[5])
				got[project+" "+id] = status + " " + up
				listed = append(listed, fmt.Sprintf("%s %s %q %s up=%s", project, id, name, status, up))
			}
			for key, state := range want {
				if got[key] != state {
					return fmt.Errorf("%s listed as %q, want %q", key, got[key], state)
				}
			}
			if len(rows) != len(want) {
				return fmt.Errorf("%d image rows, want %d", len(rows), len(want))
			}
			return nil
		}))
		t.Logf("%d images listed:\n%s", len(listed), strings.Join(listed, "\n"))
	})
	run(t, "a screenshot of the page is saved under .e2e", func(t *testing.T) {
		shot, err := filepath.Abs(filepath.Join(repo, ".e2e", "status.png"))
		must(t, err)
		must(t, os.MkdirAll(filepath.Dir(shot), 0o755))
		_, err = s.browse("--screenshot="+shot, "--window-size=1400,1600")
		must(t, err)
		if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
			t.Fatalf("want a screenshot at %s: %v", shot, err)
		}
	})
}

// imageState is how the status page must list an image of the simulator:
// its status and up, or no status and down when it does not exist.
func (s *stack) imageState(id string) string {
	img, ok := s.images[id]
	if !ok {
		return " 0"
	}
	return img.Status + " 1"
}
