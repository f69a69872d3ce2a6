// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// serveExporter serves the routes of an exporter scraping n generated images
// of a simulator with a server from newServer, on a loopback port.
func serveExporter(t *testing.T, n, maxRequests int, idle time.Duration) (addr string, logs *syncBuffer) {
	t.Helper()
	images := modelartstest.GenerateImages(n, 3)
	sim := modelartstest.NewServer(modelartstest.Options{Images: images})
	t.Cleanup(sim.Close)
	ids := make([]string, len(images))
	for i := range images {
		ids[i] = images[i].ID
	}
	path := filepath.Join(t.TempDir(), "modelarts_exporter.yml")
	if err := os.WriteFile(path, []byte("projects:\n"+akskProject(sim, "p", sim.URL, ids, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	logs = &syncBuffer{}
	exp := newExporter(log.NewLogfmtLogger(logs), prometheus.NewRegistry(), path)
	if err := exp.reload(); err != nil {
		t.Fatal(err)
	}
	mux, err := exp.routes("/metrics", exp.metricsHandler(0, time.Minute, maxRequests), false)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(mux, idle)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), logs
}

// TestStalledReadersCannotLockPrometheusOut: clients that ask for a large
// answer and never read it hold no scrape slot, and their answers end at the
// scrape's timeout; Prometheus' own scrape meanwhile gets its answer.
func TestStalledReadersCannotLockPrometheusOut(t *testing.T) {
	const slots = 5
	addr, logs := serveExporter(t, 2000, slots, idleTimeout) // an answer of about 4.5 MB
	var stalled []net.Conn
	stalledStart := time.Now()
	for range 2 * slots {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: e\r\nX-Prometheus-Scrape-Timeout-Seconds: 6\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	// Once their API work is done (it ends at 6 s at the latest), their
	// slots are free although they do not read: Prometheus' scrape gets its
	// answer before their answers' deadline (7 s).
	for {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("Prometheus' scrape: %v", err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK && n > 1<<20 {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Since(stalledStart) > 6500*time.Millisecond {
			t.Fatalf("Prometheus' scrape: %d, %d bytes %v after the stalled clients came; want 200 and the whole answer before their deadline",
				resp.StatusCode, n, time.Since(stalledStart))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The stalled answers end at their deadline (6 s, and 1 s more): the
	// server gives up their connections, which a client that reads now sees
	// end, cut short. (The clients over the limit got a short 503.)
	time.Sleep(time.Until(stalledStart.Add(8 * time.Second)))
	cut := 0
	for i, c := range stalled {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("stalled client %d: %v", i, err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			continue
		}
		_, err = io.Copy(io.Discard, resp.Body)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Errorf("stalled client %d: the answer is still being sent after its deadline", i)
		case err == nil:
			t.Errorf("stalled client %d: the whole answer arrived, want it cut at its deadline", i)
		default:
			cut++
		}
	}
	if cut == 0 {
		t.Error("no stalled answer was cut at its deadline")
	}
	if n := strings.Count(logs.String(), "Answer not sent in full"); n != cut {
		t.Errorf("%d log lines for %d answers cut short, want one each:\n%s", n, cut, logs.String())
	}
	if strings.Contains(logs.String(), "level=error") {
		t.Errorf("clients that went away were logged as errors:\n%s", logs.String())
	}
}

// TestIdleConnectionsAreClosed: a keep-alive connection idle past the idle
// timeout is closed by the server.
func TestIdleConnectionsAreClosed(t *testing.T) {
	addr, _ := serveExporter(t, 1, 0, 200*time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := io.WriteString(c, "GET /-/healthy HTTP/1.1\r\nHost: e\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the answer: %v, want the server to close the idle connection", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("closed after %v idle, want about 200ms", took)
	}
}
