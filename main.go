// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

// Command modelarts_exporter exports the size, status and timestamps of
// ModelArts development images to Prometheus.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	sloggokit "github.com/tjhop/slog-gokit"

	"github.com/modelarts-exporter/modelarts_exporter/collector"
	"github.com/modelarts-exporter/modelarts_exporter/config"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

const exporterName = "modelarts_exporter"

func main() { os.Exit(run(os.Args[1:])) }

type flags struct {
	configFile, metricsPath, logLevel, logFormat string
	configCheck, lifecycle                       bool
	timeoutOffset, maxTimeout                    time.Duration
	maxRequests                                  int
	toolkit                                      *web.FlagConfig
}

func run(args []string) int {
	f, ok := parseFlags(args)
	if !ok {
		return 2
	}
	logger, toolkitLogger := newLogger(os.Stderr, f.logLevel, f.logFormat)
	level.Info(logger).Log("msg", "Starting "+exporterName, "version", version.Info())
	level.Info(logger).Log("msg", "Build context", "build_context", version.BuildContext())

	cfg, err := config.Load(f.configFile)
	if err != nil {
		reportConfigErrors(logger, f, err)
		return 1
	}
	if f.configCheck {
		fmt.Print(cfg.Summary())
		fmt.Printf("Configuration file %s is valid.\n", f.configFile)
		return 0
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), versioncollector.NewCollector(exporterName))
	exp := newExporter(logger, reg, f)
	if err := exp.apply(cfg); err != nil {
		level.Error(logger).Log("msg", "Error setting up the configured projects", "err", err)
		return 1
	}
	level.Info(logger).Log("msg", "Loaded configuration", "file", f.configFile, "projects", len(cfg.Projects))
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			_ = exp.reload()
		}
	}()
	// exporter-toolkit serves with TLS, basic auth and socket activation until the server fails.
	if err := web.ListenAndServe(newServer(exp.routes(), idleTimeout), f.toolkit, toolkitLogger); !errors.Is(err, http.ErrServerClosed) {
		level.Error(logger).Log("msg", "Error running the HTTP server", "err", err)
		return 1
	}
	return 0
}

// parseFlags returns false after saying on standard error what is wrong.
func parseFlags(args []string) (*flags, bool) {
	app := kingpin.New(exporterName, "Prometheus exporter for ModelArts development images on Open Telekom Cloud and Huawei Cloud.")
	f := &flags{}
	app.Flag("config.file", "Path to the configuration file.").Default("modelarts_exporter.yml").StringVar(&f.configFile)
	app.Flag("config.check", "Validate the configuration file, print it as checked (secrets hidden) and exit: 0 when valid, 1 when not.").BoolVar(&f.configCheck)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&f.metricsPath)
	app.Flag("scrape.timeout-offset", "Time kept from the scrape timeout (X-Prometheus-Scrape-Timeout-Seconds, else global.scrape_timeout), besides the last render's time, to render the answer.").Default("0.5s").DurationVar(&f.timeoutOffset)
	app.Flag("scrape.max-timeout", "Upper bound of the time one scrape may spend on API calls (0: no bound).").Default("2m").DurationVar(&f.maxTimeout)
	app.Flag("web.max-requests", "Maximum number of scrapes of the metrics path and /probe doing API work at once (0: no limit); more are answered 503 at once.").Default("40").IntVar(&f.maxRequests)
	app.Flag("log.level", "Only log messages with the given severity or above. One of: [debug, info, warn, error].").Default("info").EnumVar(&f.logLevel, "debug", "info", "warn", "error")
	app.Flag("web.enable-lifecycle", "Allow reloading the configuration with POST /-/reload (SIGHUP always reloads).").BoolVar(&f.lifecycle)
	app.Flag("log.format", "Output format of log messages. One of: [logfmt, json].").Default("logfmt").EnumVar(&f.logFormat, "logfmt", "json")
	f.toolkit = kingpinflag.AddFlags(app, ":9713")
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v (see --help)\n", exporterName, err)
		return nil, false
	}
	if f.maxRequests < 0 || f.maxTimeout < 0 || f.timeoutOffset < 0 {
		fmt.Fprintf(os.Stderr, "%s: --web.max-requests, --scrape.max-timeout and --scrape.timeout-offset must not be negative\n", exporterName)
		return nil, false
	}
	if p := f.metricsPath; slices.Contains([]string{"/probe", "/-/healthy", "/-/ready", "/-/reload"}, p) ||
		!strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t{}") { // net/http would panic on the last
		fmt.Fprintf(os.Stderr, "%s: --web.telemetry-path %q is taken by another endpoint or not a plain path; use one such as /metrics\n",
			exporterName, p)
		return nil, false
	}
	return f, true
}

// reportConfigErrors says why the configuration file did not load, one problem a line.
func reportConfigErrors(logger log.Logger, f *flags, err error) {
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	if f.configCheck {
		fmt.Fprintf(os.Stderr, "Configuration file %s is invalid:\n", f.configFile)
	}
	for _, e := range errs {
		if f.configCheck {
			fmt.Fprintf(os.Stderr, "  - %v\n", e)
		} else {
			level.Error(logger).Log("msg", "Error loading configuration", "file", f.configFile, "err", e)
		}
	}
}

// newLogger returns the logger writing to w and exporter-toolkit's slog bridge to it. ts and
// caller go on top of the level filter, or caller would name level.go; the bridge, which adds
// its own time and source, gets the filtered logger without them.
func newLogger(w io.Writer, lvl, format string) (log.Logger, *slog.Logger) {
	logger := log.NewLogfmtLogger(log.NewSyncWriter(w))
	if format == "json" {
		logger = log.NewJSONLogger(log.NewSyncWriter(w))
	}
	var slogLevel slog.Level // info unless lvl names another
	_ = slogLevel.UnmarshalText([]byte(lvl))
	logger = level.NewFilter(logger, level.Allow(level.ParseDefault(lvl, level.InfoValue())))
	toolkit := slog.New(sloggokit.NewGoKitHandler(logger, slogLevel))
	return log.With(logger, "ts", log.DefaultTimestampUTC, "caller", log.DefaultCaller), toolkit
}

// exporter serves the applied configuration's state, which a reload swaps. At most
// f.maxRequests (0: any number of) scrapes of the metrics path and /probe do API work at
// once, the excess gets 503. A scrape leaves inFlight before its answer is written, so a
// client that does not read cannot hold a place.
type exporter struct {
	logger     log.Logger
	f          *flags
	inFlight   atomic.Int64
	exposition *exposition // the answer of the metrics path
	apiMetrics apiMetrics
	shared     *modelarts.Shared // the credential guards, kept across reloads

	reloadMu      sync.Mutex
	state         atomic.Pointer[state]
	reloadSuccess prometheus.Gauge
	reloadTime    prometheus.Gauge
	rejected      prometheus.Counter
}

// state is one applied configuration.
type state struct {
	scraper       *collector.Scraper
	scrapeTimeout time.Duration
	probes        map[string]*exposition // by project: the answers of /probe, without the exporter's own metrics
}

func newExporter(logger log.Logger, reg *prometheus.Registry, f *flags) *exporter {
	own := promauto.With(reg)
	return &exporter{logger: logger, f: f, exposition: newExposition(logger, reg), apiMetrics: newAPIMetrics(reg), shared: modelarts.NewShared(),
		reloadSuccess: own.NewGauge(prometheus.GaugeOpts{Name: "modelarts_exporter_config_last_reload_successful",
			Help: "1 when the last configuration load or reload succeeded, else 0."}),
		reloadTime: own.NewGauge(prometheus.GaugeOpts{Name: "modelarts_exporter_config_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful configuration load or reload, in seconds since the Unix epoch."}),
		rejected: own.NewCounter(prometheus.CounterOpts{Name: "modelarts_exporter_scrapes_rejected_total",
			Help: "Requests to the metrics path or /probe answered 503 because --web.max-requests scrapes were already doing API work."}),
	}
}

// apply swaps in a scraper for cfg and records the success; a failure changes nothing.
func (e *exporter) apply(cfg *config.Config) error {
	projects, err := newProjects(cfg, e.apiMetrics, exporterName+"/"+version.Version, e.shared)
	if err != nil {
		return err
	}
	old := e.state.Load()
	probes := make(map[string]*exposition, len(projects))
	for _, p := range projects { // a project still configured keeps its cached answer
		probes[p.Name] = newExposition(e.logger, prometheus.Gatherers{})
		if old != nil && old.probes[p.Name] != nil {
			probes[p.Name] = old.probes[p.Name]
		}
	}
	e.state.Store(&state{
		scraper:       collector.NewScraper(e.logger, projects),
		scrapeTimeout: time.Duration(cfg.Global.ScrapeTimeout),
		probes:        probes,
	})
	if old != nil {
		old.scraper.Close()
	}
	e.reloadSuccess.Set(1)
	e.reloadTime.SetToCurrentTime()
	return nil
}

// reload loads the configuration file again; on failure the running one keeps
// serving. SIGHUP and POST /-/reload both end here.
func (e *exporter) reload() error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	cfg, err := config.Load(e.f.configFile)
	if err == nil {
		err = e.apply(cfg)
	}
	if err != nil {
		e.reloadSuccess.Set(0)
		level.Error(e.logger).Log("msg", "Error reloading configuration; the previous configuration keeps serving", "file", e.f.configFile, "err", err)
		return err
	}
	level.Info(e.logger).Log("msg", "Reloaded configuration", "file", e.f.configFile, "projects", len(cfg.Projects))
	return nil
}

// routes returns the exporter's HTTP routes; the status page is at / unless the metrics are.
func (e *exporter) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc(e.f.metricsPath, e.serveMetrics)
	mux.HandleFunc("/probe", e.serveProbe)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { _, _ = fmt.Fprintln(w, "Healthy") })
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if e.state.Load() == nil {
			http.Error(w, "Not ready: no configuration loaded yet.", http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "Ready")
	})
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method != http.MethodPost:
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "This endpoint requires a POST request.", http.StatusMethodNotAllowed)
		case !e.f.lifecycle:
			http.Error(w, "Lifecycle API is not enabled; start the exporter with --web.enable-lifecycle to reload over HTTP (SIGHUP always reloads).", http.StatusForbidden)
		default:
			if err := e.reload(); err != nil {
				http.Error(w, fmt.Sprintf("Failed to reload the configuration: %v", err), http.StatusInternalServerError)
				return
			}
			_, _ = fmt.Fprintln(w, "Configuration reloaded.")
		}
	})
	if e.f.metricsPath != "/" {
		mux.HandleFunc("GET /{$}", e.serveStatus)
	}
	return mux
}

// idleTimeout outlasts the usual scrape intervals, yet idle clients cannot pile up connections.
const idleTimeout = 2 * time.Minute

// newServer bounds reading a request; the metrics handler sets its own write deadline.
func newServer(handler http.Handler, idle time.Duration) *http.Server {
	return &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: idle}
}

func (e *exporter) serveMetrics(w http.ResponseWriter, r *http.Request) {
	st := e.state.Load()
	e.answer(w, r, st, e.exposition, st.scraper.Scrape)
}

// serveProbe answers GET /probe?project=NAME (blackbox_exporter's multi-target
// pattern): that project's series alone, under the metrics path's limits.
func (e *exporter) serveProbe(w http.ResponseWriter, r *http.Request) {
	st := e.state.Load()
	name := r.URL.Query().Get("project")
	if st.probes[name] == nil {
		problem := "Missing project parameter"
		if name != "" {
			problem = fmt.Sprintf("Unknown project %q", name)
		}
		http.Error(w, fmt.Sprintf("%s: ask for /probe?project=NAME with one of the configured projects: %s.",
			problem, strings.Join(st.scraper.ProjectNames(), ", ")), http.StatusBadRequest)
		return
	}
	e.answer(w, r, st, st.probes[name], func(ctx context.Context) []collector.ProjectResult {
		return st.scraper.ScrapeProject(ctx, name)
	})
}

// admit takes a place among the scrapes doing API work, if one is free.
func (e *exporter) admit() bool {
	for n := e.inFlight.Load(); e.f.maxRequests == 0 || n < int64(e.f.maxRequests); n = e.inFlight.Load() {
		if e.inFlight.CompareAndSwap(n, n+1) {
			return true
		}
	}
	return false
}

// answer runs scrape within the request's deadline and the limit, and serves its results with x.
func (e *exporter) answer(w http.ResponseWriter, r *http.Request, st *state, x *exposition, scrape func(context.Context) []collector.ProjectResult) {
	if !e.admit() {
		e.rejected.Inc()
		http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", e.f.maxRequests), http.StatusServiceUnavailable)
		return
	}
	release := sync.OnceFunc(func() { e.inFlight.Add(-1) })
	defer release() // also after a panic, which net/http recovers from
	lastRender := time.Duration(x.lastRender.Load())
	wait, timeout := scrapeTimeout(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), e.f.timeoutOffset, lastRender, st.scrapeTimeout, e.f.maxTimeout)
	scrapeStart := time.Now()
	_ = http.NewResponseController(w).SetWriteDeadline(scrapeStart.Add(wait + time.Second))
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()

	results := scrape(ctx)
	release()
	api := time.Since(scrapeStart)
	render := x.serve(w, r, results)
	level.Debug(e.logger).Log("msg", "Scrape answered", "path", r.URL.Path, "api_timeout", timeout, "last_render", lastRender,
		"api", api, "render", render)
}

// maxHeaderTimeout: a longer X-Prometheus-Scrape-Timeout-Seconds is absurd and ignored.
const maxHeaderTimeout = 24 * time.Hour

// scrapeTimeout returns how long the client waits (the header's seconds, else
// fallback) and how long the API calls may take: the wait less offset and
// lastRender (kept to render the answer), but at least half of it, and at most
// maxTimeout when that is not 0.
func scrapeTimeout(header string, offset, lastRender, fallback, maxTimeout time.Duration) (wait, timeout time.Duration) {
	wait = fallback
	if seconds, err := strconv.ParseFloat(header, 64); err == nil && seconds > 0 && seconds <= maxHeaderTimeout.Seconds() {
		wait = time.Duration(seconds * float64(time.Second))
	}
	timeout = min(wait, max(wait-offset-lastRender, wait/2))
	if maxTimeout > 0 {
		timeout = min(timeout, maxTimeout)
	}
	return wait, timeout
}
