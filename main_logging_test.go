// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// logLine is one line of the log, decoded: the values of its keys, in order,
// as logged (a key logged twice appears twice).
type logLine struct {
	text   string
	fields map[string][]string
}

var logfmtPair = regexp.MustCompile(`(?:^| )([a-z_]+)=("(?:[^"\\]|\\.)*"|\S*)`)

func parseLogLines(t *testing.T, format, logs string) []logLine {
	t.Helper()
	var lines []logLine
	for text := range strings.Lines(logs) {
		l := logLine{text: text, fields: map[string][]string{}}
		if format == "json" {
			var m map[string]any
			if err := json.Unmarshal([]byte(text), &m); err != nil {
				t.Fatalf("not a JSON line: %v\n%s", err, text)
			}
			for k, v := range m {
				l.fields[k] = []string{fmt.Sprint(v)}
			}
		} else {
			for _, m := range logfmtPair.FindAllStringSubmatch(strings.TrimSpace(text), -1) {
				v := m[2]
				if unquoted, err := strconv.Unquote(v); err == nil {
					v = unquoted
				}
				l.fields[m[1]] = append(l.fields[m[1]], v)
			}
		}
		lines = append(lines, l)
	}
	return lines
}

// sourceLine returns line n (a decimal string) of the file at path.
func sourceLine(t *testing.T, path, n string) string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i, err := strconv.Atoi(n)
	lines := strings.Split(string(src), "\n")
	if err != nil || i < 1 || i > len(lines) {
		t.Fatalf("%s has no line %q", path, n)
	}
	return lines[i-1]
}

// TestLogLinesNameTheirCaller runs the logger of run in process: the
// exporter's lines (a reload in main.go, a failed image in the collector)
// and exporter-toolkit's (through the slog bridge, serving with serve) each
// carry one time stamp and one caller, and the caller is the line that
// logged, not level.go. The level filter holds for both.
func TestLogLinesNameTheirCaller(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	const missing = "00000000-0000-4000-8000-000000000404"
	path := filepath.Join(t.TempDir(), "modelarts_exporter.yml")
	cfg := "projects:\n" + akskProject(sim, "p", sim.URL, []string{modelartstest.SampleIDs()[0], missing}, "")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file each message must name as caller; sources holds those of this
	// module, whose named line must be the one that logs the message.
	sources := map[string]string{"main.go": "main.go", "fetch.go": "collector/fetch.go"}
	callers := map[string]string{
		"Reloaded configuration": "main.go",
		"Scrape answered":        "main.go", // debug
		"Failed to fetch image":  "fetch.go",
		"Listening on":           "tls_config.go",
		"TLS is disabled.":       "tls_config.go",
	}
	for _, tc := range []struct{ format, level string }{{"logfmt", "debug"}, {"json", "info"}} {
		t.Run(tc.format+"/"+tc.level, func(t *testing.T) {
			logs := &syncBuffer{}
			logger, toolkitLogger := newLogger(logs, tc.level, tc.format)
			exp := newExporter(logger, prometheus.NewRegistry(), &flags{configFile: path, metricsPath: "/metrics", maxTimeout: time.Minute})
			if err := exp.reload(); err != nil {
				t.Fatal(err)
			}
			mux := exp.routes()
			if rec := get(mux, "/metrics", nil); rec.Code != 200 {
				t.Fatalf("GET /metrics: %d", rec.Code)
			}

			server := newServer(mux, idleTimeout)
			addresses, systemd, webConfig := []string{"127.0.0.1:0"}, false, ""
			served := make(chan error, 1)
			go func() {
				served <- web.ListenAndServe(server, &web.FlagConfig{WebListenAddresses: &addresses, WebSystemdSocket: &systemd, WebConfigFile: &webConfig}, toolkitLogger)
			}()
			for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "TLS is disabled."); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("exporter-toolkit logged no \"TLS is disabled.\" line:\n%s", logs)
				}
			}
			_ = server.Close()
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("serving after Close: %v, want %v", err, http.ErrServerClosed)
			}

			seen := map[string]bool{}
			for _, l := range parseLogLines(t, tc.format, logs.String()) {
				if n := len(l.fields["ts"]) + len(l.fields["time"]); n != 1 {
					t.Errorf("%d time stamps (ts, time), want 1: %s", n, l.text)
				}
				if len(l.fields["caller"]) != 1 {
					t.Errorf("%d callers, want 1: %s", len(l.fields["caller"]), l.text)
					continue
				}
				msg, caller := strings.Join(l.fields["msg"], ""), l.fields["caller"][0]
				file, line, _ := strings.Cut(caller, ":")
				if want, ok := callers[msg]; ok && file != want {
					t.Errorf("caller %s, want %s: %s", caller, want, l.text)
				}
				if path, ok := sources[file]; ok && !strings.Contains(sourceLine(t, path, line), strconv.Quote(msg)) {
					t.Errorf("caller %s: that line does not log %q", caller, msg)
				}
				seen[msg] = true
			}
			for msg := range callers {
				if want := msg != "Scrape answered" || tc.level == "debug"; seen[msg] != want {
					t.Errorf("message %q logged: %v, want %v at level %s\n%s", msg, seen[msg], want, tc.level, logs)
				}
			}
		})
	}
}
