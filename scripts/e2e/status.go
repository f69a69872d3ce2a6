// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

import (
	"context"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// The rows of the status page as the browser's DOM has them.
var (
	projectRowRE = regexp.MustCompile(`<tr class="project[^"]*" data-project="([^"]*)" data-up="([01])">`)
	imageRowRE   = regexp.MustCompile(`<tr class="image[^"]*" data-project="([^"]*)" data-id="([^"]*)" data-status="([^"]*)" data-up="([01])">\s*<td>[^<]*</td><td>([^<]*)</td>`)
)

// checkStatusPage loads the exporter's status page in headless Chromium:
// the DOM must list every project up and every image with the simulator's
// status (the missing one down, without status), and a screenshot is saved
// to .e2e/status.png.
func (e *e2e) checkStatusPage(ctx context.Context, images map[string]modelarts.Image) error {
	profile := filepath.Join(e.tmp, "chromium")
	browse := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
			"--user-data-dir=" + profile}, append(args, e.exporterURL+"/")...)
		cmd := exec.CommandContext(ctx, e.opts.chromium, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("%s %s: %w\n%s", e.opts.chromium, strings.Join(args, " "), err, stderr.String())
		}
		return string(out), nil
	}
	want := map[string]string{} // "project id" → "status up"
	for _, id := range akskImages() {
		want[projectAKSK+" "+id] = imageState(images, id)
	}
	for _, id := range tokenImages {
		want[projectToken+" "+id] = imageState(images, id)
	}

	var listed []string
	err := poll(ctx, "the browser's DOM of the status page", 30*time.Second, func() error {
		dom, err := browse("--dump-dom")
		if err != nil {
			return stopPolling(err)
		}
		projects := projectRowRE.FindAllStringSubmatch(dom, -1)
		if len(projects) != 2 {
			return fmt.Errorf("%d project rows, want 2:\n%s", len(projects), dom)
		}
		for _, p := range projects {
			if p[2] != "1" {
				return fmt.Errorf("project %s is listed down", p[1])
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
	})
	if err != nil {
		return err
	}
	e.ok("headless Chromium's DOM of %s/ lists both projects up and all %d images with the simulator's status:\n      %s",
		e.exporterURL, len(listed), strings.Join(listed, "\n      "))

	shot, err := filepath.Abs(filepath.Join(e.opts.repo, ".e2e", "status.png"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		return err
	}
	if _, err := browse("--screenshot="+shot, "--window-size=1400,1600"); err != nil {
		return err
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		return fmt.Errorf("no screenshot at %s: %v", shot, err)
	}
	e.ok("screenshot of the status page saved to %s", shot)
	return nil
}

// imageState is how the status page must list an image of the simulator:
// its status and up, or no status and down when it does not exist.
func imageState(images map[string]modelarts.Image, id string) string {
	img, ok := images[id]
	if !ok {
		return " 0"
	}
	return img.Status + " 1"
}
