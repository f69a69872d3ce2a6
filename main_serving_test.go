// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// serveExporter serves the routes of an exporter of n generated images of a
// simulator (discovered, shared by the scrapes of an hour) with the
// exporter's server, on a loopback port; the images are fetched already.
func serveExporter(t *testing.T, n, maxRequests int, idle time.Duration) (addr string, logs *syncBuffer) {
	t.Helper()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.GenerateImages(n, 3)})
	t.Cleanup(sim.Close)
	path := writeConfig(t, "global:\n  min_refresh_interval: 1h\nprojects:\n"+akskProject(sim, "p", sim.URL, nil, "    discovery: {}\n"))
	_, mux, logs := startInProcess(t, path, options{maxRequests: maxRequests, logLevel: "debug"})
	scrapeIn(t, mux)
	return listen(t, mux, idle), logs
}

// TestStalledReadersCannotLockPrometheusOut: clients that ask for a large
// answer and never read it hold no scrape slot, and their answers end at the
// scrape's timeout (and a second); Prometheus' own scrape meanwhile gets its
// answer. The API work is done before they come (min_refresh_interval), so
// that the test waits for no API call, only for the deadlines.
func TestStalledReadersCannotLockPrometheusOut(t *testing.T) {
	const slots = 5
	// An answer of about 4.5 MB, more than the sockets buffer.
	addr, logs := serveExporter(t, 2000, slots, idleTimeout)
	// The stalled clients' X-Prometheus-Scrape-Timeout-Seconds: their answers
	// end a second later, and under the race detector rendering 4.5 MB takes
	// more than one.
	const timeout = 2 * time.Second
	var stalled []net.Conn
	stalledStart := time.Now()
	for range 2 * slots {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		if _, err := fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: e\r\nX-Prometheus-Scrape-Timeout-Seconds: %v\r\n\r\n", timeout.Seconds()); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	// Once their API work is done, their slots are free although they do not
	// read: Prometheus' scrape gets its answer before their answers' deadline
	// (the timeout and a second).
	for {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
		req.Header.Set("Accept-Encoding", "identity") // the answer serveExporter's scrape cached
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("Prometheus' scrape: %v", err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK && n > 1<<20 && time.Since(stalledStart) < timeout+time.Second {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Since(stalledStart) > timeout {
			t.Fatalf("Prometheus' scrape: %d, %d bytes %v after the stalled clients came; want 200 and the whole answer before their deadline",
				resp.StatusCode, n, time.Since(stalledStart))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The stalled answers end at their deadline (the timeout, and 1 s more): the
	// server gives up their connections, which a client that reads now sees
	// end, cut short. (The clients over the limit got a short 503.)
	time.Sleep(time.Until(stalledStart.Add(timeout + 2*time.Second)))
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

	// What the stalled answers took until their deadline says nothing of
	// rendering: the next scrape keeps for its render what the last answer
	// sent in full took, not seconds.
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	_, field, _ := strings.Cut(lines[len(lines)-1], "last_render=")
	field, _, _ = strings.Cut(field, " ")
	if last, err := time.ParseDuration(field); err != nil || last >= timeout {
		t.Errorf("the scrape after the stalled answers kept %q (%v) for its render, want what a full answer took, under %v:\n%s",
			field, err, timeout, lines[len(lines)-1])
	}
}

// TestIdleConnectionsAreClosed: the exporter's server closes a keep-alive
// connection idle past its idle timeout.
func TestIdleConnectionsAreClosed(t *testing.T) {
	t.Parallel()
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
