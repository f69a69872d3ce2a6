// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

// Command e2e runs the real stack on loopback and checks the deploy/
// artefacts against it: modelarts-simulator with the sample images,
// modelarts_exporter, Debian's prometheus with deploy/prometheus/ (plus a
// small overlay: fast intervals, loopback targets, shortened `for:`) and
// prometheus-alertmanager; the status page in headless Chromium; /probe
// scraped by two Prometheus shards (hashmod) through a round-robin proxy in
// front of two exporter replicas. scripts/e2e.sh (make e2e) runs it.
//
// Everything it starts listens on free loopback ports and lives in a
// temporary directory; it is stopped on success, on failure and on SIGINT or
// SIGTERM, and killed by the kernel should the checker die (Pdeathsig).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

type options struct {
	repo         string
	exporter     string
	simulator    string
	prometheus   string
	alertmanager string
	promtool     string
	amtool       string
	chromium     string
	timeout      time.Duration
	interval     time.Duration
	forDuration  string
	keep         bool
}

func main() { os.Exit(runMain()) }

func runMain() int {
	var o options
	flag.StringVar(&o.repo, "repo", ".", "Root of the repository (deploy/ is read from here).")
	flag.StringVar(&o.exporter, "exporter", "./modelarts_exporter", "The exporter binary.")
	flag.StringVar(&o.simulator, "simulator", "./modelarts-simulator", "The simulator binary.")
	flag.StringVar(&o.prometheus, "prometheus", "prometheus", "The prometheus binary.")
	flag.StringVar(&o.alertmanager, "alertmanager", "prometheus-alertmanager", "The Alertmanager binary.")
	flag.StringVar(&o.promtool, "promtool", "promtool", "The promtool binary.")
	flag.StringVar(&o.amtool, "amtool", "amtool", "The amtool binary; skipped when not found.")
	flag.StringVar(&o.chromium, "chromium", "chromium", "The Chromium binary that loads the status page headless.")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "Bound on the whole run.")
	flag.DurationVar(&o.interval, "interval", time.Second, "Scrape and rule evaluation interval of the overlay.")
	flag.StringVar(&o.forDuration, "for", "2s", "What every `for:` of the shipped rules becomes in the overlay.")
	flag.BoolVar(&o.keep, "keep", false, "Keep the temporary directory (logs, TSDB) even on success.")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	tmp, err := os.MkdirTemp("", "modelarts-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	e := &e2e{opts: o, tmp: tmp, began: time.Now()}
	err = e.run(ctx)
	e.stopAll()
	if err != nil {
		fmt.Printf("\nFAIL after %.1fs: %v\n", time.Since(e.began).Seconds(), err)
		for _, p := range e.procs {
			fmt.Printf("\n--- last lines of %s ---\n%s\n", p.logPath, p.tail(15))
		}
		fmt.Printf("\nLogs, configurations and TSDB kept in %s\n", tmp)
		return 1
	}
	if o.keep {
		fmt.Printf("Kept %s\n", tmp)
	} else {
		_ = os.RemoveAll(tmp)
	}
	fmt.Printf("\nPASS: %d checks in %.1fs\n", e.checks, time.Since(e.began).Seconds())
	return 0
}

// e2e is one run.
type e2e struct {
	opts   options
	tmp    string
	began  time.Time
	checks int
	procs  []*proc

	simURL, exporterURL, promURL, amURL string
	exporterAddr                        string
	exporterProc                        *proc
	exporterConfig                      string
	promStarted                         time.Time
	prom                                promAPI
	hook                                *webhook
}

func (e *e2e) logf(format string, args ...any) {
	fmt.Printf("[%5.1fs] %s\n", time.Since(e.began).Seconds(), fmt.Sprintf(format, args...))
}

// ok records a passed check.
func (e *e2e) ok(format string, args ...any) {
	e.checks++
	e.logf("ok  "+format, args...)
}

func (e *e2e) stopAll() {
	if e.hook != nil {
		e.hook.close()
	}
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].stop(5 * time.Second)
	}
}

func (e *e2e) start(name string, args ...string) (*proc, error) {
	p, err := start(e.tmp, name, args...)
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	return p, nil
}

func (e *e2e) run(ctx context.Context) error {
	e.logf("temporary directory %s", e.tmp)
	addrs, err := freeAddrs(4)
	if err != nil {
		return err
	}
	simAddr, exporterAddr, promAddr, amAddr := addrs[0], addrs[1], addrs[2], addrs[3]
	e.simURL, e.exporterURL = "http://"+simAddr, "http://"+exporterAddr
	e.promURL, e.amURL = "http://"+promAddr, "http://"+amAddr
	e.exporterAddr = exporterAddr
	e.prom = promAPI{base: e.promURL}

	if e.hook, err = startWebhook(); err != nil {
		return err
	}

	// The simulator, with the sample images: every status, and more.
	sim, err := e.start("simulator", e.opts.simulator, "--web.listen-address="+simAddr, "--images=sample")
	if err != nil {
		return err
	}
	if err := sim.waitHealthy(ctx, e.simURL+"/-/healthy"); err != nil {
		return err
	}
	e.logf("simulator up at %s", e.simURL)
	images, err := e.simImages(ctx)
	if err != nil {
		return err
	}

	// The exporter.
	if e.exporterConfig, err = e.writeExporterConfig(); err != nil {
		return err
	}
	e.exporterProc, err = e.start("exporter", e.opts.exporter,
		"--config.file="+e.exporterConfig, "--web.listen-address="+exporterAddr, "--log.level=debug",
		"--web.enable-lifecycle") // checks.go reloads over HTTP
	if err != nil {
		return err
	}
	if err := e.exporterProc.waitHealthy(ctx, e.exporterURL+"/-/healthy"); err != nil {
		return err
	}
	e.logf("exporter up at %s", e.exporterURL)

	// Alertmanager, then Prometheus with the shipped files and the overlay.
	amConfig, err := e.writeAlertmanagerConfig(ctx)
	if err != nil {
		return err
	}
	am, err := e.start("alertmanager", e.opts.alertmanager,
		"--config.file="+amConfig,
		"--storage.path="+filepath.Join(e.tmp, "alertmanager"),
		"--web.listen-address="+amAddr,
		"--cluster.listen-address=")
	if err != nil {
		return err
	}
	promConfig, err := e.writePrometheusConfig(ctx, exporterAddr, amAddr)
	if err != nil {
		return err
	}
	e.promStarted = time.Now()
	prom, err := e.start("prometheus", e.opts.prometheus,
		"--config.file="+promConfig,
		"--storage.tsdb.path="+filepath.Join(e.tmp, "prometheus"),
		"--web.listen-address="+promAddr)
	if err != nil {
		return err
	}
	if err := am.waitHealthy(ctx, e.amURL+"/-/ready"); err != nil {
		return err
	}
	e.logf("alertmanager up at %s", e.amURL)
	if err := prom.waitHealthy(ctx, e.promURL+"/-/ready"); err != nil {
		return err
	}
	e.logf("prometheus up at %s", e.promURL)

	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"series", func(ctx context.Context) error { return e.checkSeries(ctx, images) }},
		{"status page in a headless browser", func(ctx context.Context) error { return e.checkStatusPage(ctx, images) }},
		{"/probe: relabeling, hashmod shards, replicas behind one address", func(ctx context.Context) error { return e.checkProbe(ctx, images) }},
		{"alerts from the sample images", func(ctx context.Context) error { return e.checkBaselineAlerts(ctx, images) }},
		{"dashboard", e.checkDashboard},
		{"alerts still exactly the expected ones", func(ctx context.Context) error { return e.checkBaselineAlerts(ctx, images) }},
		{"image flipped to ERROR", func(ctx context.Context) error { return e.checkFlipToError(ctx, images) }},
		{"API faults", func(ctx context.Context) error { return e.checkAPIFaults(ctx, images) }},
		{"failed reload", e.checkFailedReload},
		{"exporter down", e.checkExporterDown},
	}
	for _, s := range steps {
		e.logf("== %s", s.name)
		if err := s.f(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// forRE matches the `for:` of a rule in a rule file.
var forRE = regexp.MustCompile(`(?m)^(\s+for:\s*)(\S+)(\s*(#.*)?)$`)

// shortenFor rewrites every `for:` duration to d and reports how many it
// rewrote.
func shortenFor(rules []byte, d string) ([]byte, int) {
	n := len(forRE.FindAll(rules, -1))
	return forRE.ReplaceAll(rules, []byte("${1}"+d+"${3}")), n
}

// sortedKeys returns the keys of a set, sorted.
func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// noValue reports template output that used a label the alert does not have.
func noValue(s string) bool {
	return strings.Contains(s, "<no value>") || strings.Contains(s, "{{") || strings.TrimSpace(s) == ""
}
