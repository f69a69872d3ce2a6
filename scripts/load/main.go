// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

// Command load runs many concurrent scrapers against the exporter while the
// simulator's faults are switched on and off, and checks that no scrape
// fails, that no image outside the faulted ones reports down, and that the
// exporter's goroutines and memory stay flat. scripts/load.sh runs it after
// make build; settings come from the environment:
//
//	LOAD_DURATION  how long the load runs (default 60s)
//	LOAD_SCRAPERS  concurrent scrapers (default 20; keep it at or below --web.max-requests, 40)
//	LOAD_IMAGES    images per project (default 50)
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func main() { os.Exit(run()) }

type settings struct {
	exporter, simulator string
	duration            time.Duration
	scrapers, images    int
}

func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 60s", name, v)
	}
	return d, nil
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive number", name, v)
	}
	return n, nil
}

func run() int {
	s := settings{exporter: "./modelarts_exporter", simulator: "./modelarts-simulator"}
	if len(os.Args) == 3 {
		s.exporter, s.simulator = os.Args[1], os.Args[2]
	}
	var err error
	if s.duration, err = envDuration("LOAD_DURATION", 60*time.Second); err == nil {
		if s.scrapers, err = envInt("LOAD_SCRAPERS", 20); err == nil {
			s.images, err = envInt("LOAD_IMAGES", 50)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := load(ctx, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		return 1
	}
	if !ok {
		return 1
	}
	return 0
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// process is a started program whose output goes to a file.
type process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the program has exited
}

func start(dir, name, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = f.Close(); close(p.done) }()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func waitHealthy(ctx context.Context, base string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/-/healthy")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not healthy: %v", base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// faults are switched on, one after the other, for the faulted images only.
var faults = []map[string]any{
	{"kind": "status", "status": 429},
	{"kind": "status", "status": 429, "error_code": "ModelArts.4206"},
	{"kind": "status", "status": 500},
	{"kind": "raw", "status": 502},
	{"kind": "raw", "status": 503},
	{"kind": "delay", "delay": "10s"}, // beyond the scrape deadline
	{"kind": "malformed_json"},
	{"kind": "truncated_json"},
	{"kind": "reset"},
	{"kind": "oversized", "size": 9 << 20},
	{"kind": "wrong_types"},
}

func admin(method, url string, body any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %s %s", method, url, resp.Status, msg)
	}
	return nil
}

// sample is the exporter's own health at one moment.
type sample struct {
	at              time.Duration
	goroutines      float64
	heapAlloc, rss  float64
	openFDs         float64
	rejectedScrapes float64
}

func readSample(base string, since time.Time) (sample, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return sample{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return sample{}, err
	}
	get := func(name string) float64 {
		mf := families[name]
		if mf == nil || len(mf.GetMetric()) == 0 {
			return -1
		}
		m := mf.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return sample{
		at:              time.Since(since),
		goroutines:      get("go_goroutines"),
		heapAlloc:       get("go_memstats_heap_alloc_bytes"),
		rss:             get("process_resident_memory_bytes"),
		openFDs:         get("process_open_fds"),
		rejectedScrapes: get("modelarts_exporter_scrapes_rejected_total"),
	}, nil
}

// result counts what the scrapers saw.
type result struct {
	scrapes, failed, strayDown, faultedDown atomic.Int64
	mu                                      sync.Mutex
	latencies                               []time.Duration
	examples                                []string
}

func (r *result) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.examples) < 10 {
		r.examples = append(r.examples, fmt.Sprintf(format, args...))
	}
}

func scraper(ctx context.Context, base string, faulted map[string]bool, res *result) {
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, base+"/metrics", nil)
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "3")
		begin := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			res.failed.Add(1)
			res.note("scrape: %v", err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		res.scrapes.Add(1)
		res.mu.Lock()
		res.latencies = append(res.latencies, time.Since(begin))
		res.mu.Unlock()
		if err != nil || resp.StatusCode != http.StatusOK {
			res.failed.Add(1)
			res.note("scrape: HTTP %d %v: %.200s", resp.StatusCode, err, body)
			continue
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			res.failed.Add(1)
			res.note("parse: %v", err)
			continue
		}
		for _, m := range families["modelarts_image_up"].GetMetric() {
			if m.GetGauge().GetValue() == 1 {
				continue
			}
			var id, project string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "id":
					id = l.GetValue()
				case "project":
					project = l.GetValue()
				}
			}
			if faulted[id] {
				res.faultedDown.Add(1)
			} else {
				res.strayDown.Add(1)
				res.note("image %s of project %s down although no fault is aimed at it", id, project)
			}
		}
	}
}

// window sums up samples: the maximum of goroutines and descriptors, the
// median of memory.
func window(samples []sample) sample {
	var w sample
	var heap, rss []float64
	for _, smp := range samples {
		w.goroutines = max(w.goroutines, smp.goroutines)
		w.openFDs = max(w.openFDs, smp.openFDs)
		heap = append(heap, smp.heapAlloc)
		rss = append(rss, smp.rss)
	}
	if len(samples) > 0 {
		slices.Sort(heap)
		slices.Sort(rss)
		w.heapAlloc, w.rss = heap[len(heap)/2], rss[len(rss)/2]
	}
	return w
}

func load(ctx context.Context, s settings) (ok bool, err error) {
	dir, err := os.MkdirTemp("", "modelarts_load")
	if err != nil {
		return false, err
	}
	defer func() {
		if ok {
			_ = os.RemoveAll(dir) // else the logs stay for a look
		}
	}()
	simAddr, err := freePort()
	if err != nil {
		return false, err
	}
	sim, err := start(dir, "simulator", s.simulator, "--web.listen-address="+simAddr, "--images="+strconv.Itoa(s.images))
	if err != nil {
		return false, err
	}
	defer sim.stop()
	simURL := "http://" + simAddr
	if err := waitHealthy(ctx, simURL); err != nil {
		return false, err
	}
	resp, err := http.Get(simURL + "/-/sim/images")
	if err != nil {
		return false, err
	}
	var images []struct {
		ID string `json:"id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&images)
	_ = resp.Body.Close()
	if err != nil || len(images) < 4 {
		return false, fmt.Errorf("simulator images: %v (%d)", err, len(images))
	}
	ids := make([]string, len(images))
	for i, img := range images {
		ids[i] = img.ID
	}
	faultedIDs := ids[1:4] // not the first: with it the whole project would be tried alone first
	faulted := map[string]bool{}
	for _, id := range faultedIDs {
		faulted[id] = true
	}

	// The simulator's defaults: demo key and demo user (fake credentials).
	if err := os.WriteFile(filepath.Join(dir, "sk"), []byte("DemoSecretKeyExampleNotARealSecret000000\n"), 0o600); err != nil {
		return false, err
	}
	idList := "[" + strings.Join(ids, ", ") + "]"
	cfg := fmt.Sprintf(`global:
  scrape_timeout: 5s
projects:
  - name: aksk
    region: eu-de
    project_id: 5d1c6a0f8e2b4c3d9a7e6f5b4c3d2e1f
    modelarts_endpoint: %[1]s
    iam_endpoint: %[1]s
    auth: {access_key: DEMOACCESSKEYEXAMPLE, secret_key_file: sk}
    images: %[2]s
  - name: token
    region: eu-de
    modelarts_endpoint: %[1]s
    iam_endpoint: %[1]s
    auth: {domain_name: demo-domain, username: demo-user, password: demo-password}
    images: %[2]s
`, simURL, idList)
	cfgPath := filepath.Join(dir, "modelarts_exporter.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return false, err
	}
	expAddr, err := freePort()
	if err != nil {
		return false, err
	}
	exp, err := start(dir, "exporter", s.exporter, "--web.listen-address="+expAddr, "--config.file="+cfgPath)
	if err != nil {
		return false, err
	}
	defer exp.stop()
	expURL := "http://" + expAddr
	if err := waitHealthy(ctx, expURL); err != nil {
		return false, err
	}

	began := time.Now()
	idle, err := readSample(expURL, began) // one scrape: token fetched, pools opened
	if err == nil {
		time.Sleep(time.Second)
		idle, err = readSample(expURL, began)
	}
	if err != nil {
		return false, err
	}

	fmt.Printf("load: %d scrapers for %v against %d images x 2 projects (AK/SK and token); faults on %d images, switched every 2s\n",
		s.scrapers, s.duration, len(ids), len(faultedIDs))
	runCtx, cancel := context.WithTimeout(ctx, s.duration)
	defer cancel()
	res := &result{}
	var wg sync.WaitGroup
	for range s.scrapers {
		wg.Go(func() { scraper(runCtx, expURL, faulted, res) })
	}

	// The fault switch: each fault on for 1s, off for 1s; tokens expire every 5s.
	var toggles, expiries atomic.Int64
	var adminErr atomic.Value
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 0; runCtx.Err() == nil; i++ {
			var err error
			if i%2 == 0 {
				f := faults[(i/2)%len(faults)]
				for _, id := range faultedIDs {
					withID := map[string]any{"image_id": id}
					for k, v := range f {
						withID[k] = v
					}
					if err = admin(http.MethodPost, simURL+"/-/sim/faults", withID); err != nil {
						break
					}
				}
				toggles.Add(1)
			} else {
				err = admin(http.MethodDelete, simURL+"/-/sim/faults", nil)
			}
			if err == nil && i%5 == 4 {
				err = admin(http.MethodPost, simURL+"/-/sim/tokens/expire", nil)
				expiries.Add(1)
			}
			if err != nil {
				adminErr.Store(err)
			}
			select {
			case <-tick.C:
			case <-runCtx.Done():
			}
		}
		_ = admin(http.MethodDelete, simURL+"/-/sim/faults", nil)
	})

	// The exporter's health every 2s.
	var samples []sample
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if smp, err := readSample(expURL, began); err == nil {
					samples = append(samples, smp)
				}
			case <-runCtx.Done():
				return
			}
		}
	})
	wg.Wait()
	if ctx.Err() != nil {
		return false, errors.New("interrupted")
	}

	// After the load: faults off, then the simulator stops, which closes every
	// connection to it. Idle keep-alive connections would otherwise outlive the
	// load by minutes (prometheus/common keeps them 5 minutes), and with them
	// two goroutines and a descriptor each. With the API gone, the exporter
	// must be back where it was before the load.
	_ = admin(http.MethodDelete, simURL+"/-/sim/faults", nil)
	sim.stop()
	time.Sleep(3 * time.Second)
	after, err := readSample(expURL, began)
	if err != nil {
		return false, fmt.Errorf("the exporter after the load: %w", err)
	}

	ok = true
	fail := func(format string, args ...any) {
		ok = false
		fmt.Printf("FAIL: "+format+"\n", args...)
	}
	if err, _ := adminErr.Load().(error); err != nil {
		fail("simulator admin API: %v", err)
	}
	if exp.exited() {
		fail("the exporter exited: %v (log %s)", exp.cmd.ProcessState, exp.log)
	}
	if n := res.failed.Load(); n > 0 {
		fail("%d failed scrapes", n)
	}
	if n := res.strayDown.Load(); n > 0 {
		fail("%d times an image without a fault reported down", n)
	}
	if res.faultedDown.Load() == 0 {
		fail("no faulted image was ever seen down: the faults did not bite")
	}
	if len(samples) < 6 {
		fail("only %d samples of the exporter's metrics", len(samples))
	}

	// Flat: the last third of the run against the first third (after a warm-up
	// third), with a tolerance; and after the load against before it.
	// The first third of the samples is the warm-up (connection pools fill);
	// the second third is compared with the last. Goroutines and file
	// descriptors by their maximum; memory by its median, because a sample
	// taken while the oversized fault is on sees capped (1 MiB) oversized bodies in flight.
	third := len(samples) / 3
	early, late := window(samples[third:2*third]), window(samples[2*third:])
	const mib = 1 << 20
	if third > 0 {
		// Goroutines and descriptors follow the connection pools, which grow
		// until scrapers x concurrency x projects connections are open: a leak
		// of one per scrape or per failed call (thousands in a minute) is far
		// beyond this tolerance, the pools' fluctuation is not.
		if late.goroutines > early.goroutines*1.5+50 {
			fail("goroutines grew under load: %v early, %v late", early.goroutines, late.goroutines)
		}
		if late.openFDs > early.openFDs*1.5+50 {
			fail("open file descriptors grew under load: %v early, %v late", early.openFDs, late.openFDs)
		}
		if late.heapAlloc > early.heapAlloc*1.5+32*mib {
			fail("heap grew under load: median %.1f MiB early, %.1f MiB late", early.heapAlloc/mib, late.heapAlloc/mib)
		}
		if late.rss > early.rss*1.5+64*mib {
			fail("resident memory grew under load: median %.1f MiB early, %.1f MiB late", early.rss/mib, late.rss/mib)
		}
	}
	if after.goroutines > idle.goroutines+10 {
		fail("goroutines did not come back down: %v before the load, %v after", idle.goroutines, after.goroutines)
	}
	if after.openFDs > idle.openFDs+10 {
		fail("file descriptors did not come back down: %v before the load, %v after", idle.openFDs, after.openFDs)
	}

	slices.Sort(res.latencies)
	pct := func(p float64) time.Duration {
		if len(res.latencies) == 0 {
			return 0
		}
		return res.latencies[min(len(res.latencies)-1, int(p*float64(len(res.latencies))))]
	}
	fmt.Printf(`
summary
  duration            %v, %d scrapers, %d images x 2 projects
  scrapes             %d (%.1f/s), failed %d
  latency             p50 %v, p99 %v, max %v
  faults switched on  %d times (%d kinds, on %d images), tokens expired %d times
  faulted images down %d observations (expected: the faults bite)
  other images down   %d observations (must be 0)
  rejected scrapes    %v (503 from --web.max-requests)
  goroutines          before %v -> under load max %v early, %v late -> after %v
  heap alloc          before %.1f MiB -> under load median %.1f MiB early, %.1f MiB late -> after %.1f MiB
  resident memory     before %.1f MiB -> under load median %.1f MiB early, %.1f MiB late -> after %.1f MiB
  open fds            before %v -> under load max %v early, %v late -> after %v
  ("after": 3s after the load, with the simulator stopped so that idle API connections close)
`,
		s.duration, s.scrapers, len(ids),
		res.scrapes.Load(), float64(res.scrapes.Load())/s.duration.Seconds(), res.failed.Load(),
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond),
		toggles.Load(), len(faults), len(faultedIDs), expiries.Load(),
		res.faultedDown.Load(), res.strayDown.Load(), after.rejectedScrapes,
		idle.goroutines, early.goroutines, late.goroutines, after.goroutines,
		idle.heapAlloc/mib, early.heapAlloc/mib, late.heapAlloc/mib, after.heapAlloc/mib,
		idle.rss/mib, early.rss/mib, late.rss/mib, after.rss/mib,
		idle.openFDs, early.openFDs, late.openFDs, after.openFDs)
	for _, e := range res.examples {
		fmt.Println("  example:", e)
	}
	if ok {
		fmt.Println("PASS")
	} else {
		fmt.Printf("FAIL (logs: %s, %s kept)\n", exp.log, sim.log)
	}
	return ok, nil
}
