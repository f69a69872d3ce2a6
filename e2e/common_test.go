// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build e2e || load

// Package e2e runs the built programs on loopback. With -tags e2e (make e2e):
// the deploy/ artefacts against Debian's prometheus, prometheus-alertmanager
// and chromium. With -tags load (make load): many concurrent scrapers while
// the simulator's faults are switched on and off. Plain go test builds none
// of it.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/internal/procs"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// repo is the repository's root, seen from this package: deploy/ and the
// binaries of make build are there.
const repo = ".."

var (
	exporterBin  = filepath.Join(repo, "modelarts_exporter")
	simulatorBin = filepath.Join(repo, "modelarts-simulator")
)

// requireBinaries fails the test when make build has not run.
func requireBinaries(t *testing.T) {
	t.Helper()
	for _, bin := range []string{exporterBin, simulatorBin} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%v: run make build first (make e2e and make load do)", err)
		}
	}
}

// startSimulator starts the simulator with --images=images; it returns the
// process and its URL.
func startSimulator(t *testing.T, dir, images string) (*procs.Proc, string) {
	t.Helper()
	addr := procs.FreeAddrs(t, 1)[0]
	p := procs.Start(t, dir, "simulator", simulatorBin, "--web.listen-address="+addr, "--images="+images)
	must(t, p.WaitReady("http://"+addr+"/-/healthy"))
	return p, "http://" + addr
}

// simImages reads the simulator's images through its admin API, in its order.
func simImages(t *testing.T, simURL string) []modelarts.Image {
	t.Helper()
	var list []modelarts.Image
	if err := doJSON(t.Context(), http.MethodGet, simURL+"/-/sim/images", nil, http.StatusOK, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) == 0 {
		t.Fatal("the simulator has no images")
	}
	return list
}

// must ends t with err, which says what was expected and what was seen.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// doJSON sends a request and decodes a JSON answer into out (when not nil).
// Any status but want is an error that quotes the body.
func doJSON(ctx context.Context, method, u string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s, want %d: %.500s", method, u, resp.Status, want, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, u, err)
	}
	return nil
}

// keepOnFailure makes a temporary directory for logs, configurations and
// TSDBs: removed when t passes, kept (and named) when it fails. Register it
// before the programs that write there, so that they are stopped first.
func keepOnFailure(t *testing.T, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs and configurations kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}
