// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package e2e

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/modelarts-exporter/modelarts_exporter/internal/procs"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

const (
	// probeJob is the /probe job of the shard servers.
	probeJob = "modelarts_probe"
	// replicaRefresh is the replicas' min_refresh_interval.
	replicaRefresh = 4 * time.Second
	// loadWindow is how long the test drives probes through the proxy.
	loadWindow = 8 * time.Second
)

// replicaProjects are the projects of the replicas, one image each (so one
// fetch is one ShowImage call), named so that hashmod splits them over both shards.
var replicaProjects = map[string]string{
	"team-a": modelartstest.SampleIDPyTorchBuiltin,
	"team-b": modelartstest.SampleIDMindSporeBuiltin,
	"team-c": modelartstest.SampleIDError,
	"team-d": modelartstest.SampleIDFrozen,
}

// hashmodShard is Prometheus' relabel action hashmod of one source label:
// the last 8 bytes of the value's MD5, big-endian, modulo modulus.
func hashmodShard(value string, modulus uint64) uint64 {
	sum := md5.Sum([]byte(value))
	return binary.BigEndian.Uint64(sum[8:]) % modulus
}

// checkProbe starts two exporter replicas with min_refresh_interval behind a
// round-robin TCP proxy (a Kubernetes Service) and two Prometheus servers
// that split the projects with hashmod, each scraping /probe through the
// proxy with one target per project. They stop when t ends.
func (s *stack) checkProbe(t *testing.T) {
	addrs := procs.FreeAddrs(t, 4)
	replicaAddrs, shardAddrs := addrs[:2], addrs[2:]
	cfg := s.writeReplicaConfig(t)
	for i, addr := range replicaAddrs {
		p := procs.Start(t, s.tmp, fmt.Sprintf("replica-%d", i), exporterBin, "--config.file="+cfg, "--web.listen-address="+addr)
		must(t, p.WaitReady("http://"+addr+"/-/ready"))
	}
	proxy := startProxy(t, replicaAddrs)
	t.Logf("replicas at %v behind the round-robin proxy %s (min_refresh_interval %s)", replicaAddrs, proxy.addr, replicaRefresh)

	shards := make([]promAPI, 2)
	for i, addr := range shardAddrs {
		path := s.writeShardConfig(t, i, proxy.addr)
		p := procs.Start(t, s.tmp, fmt.Sprintf("prometheus-shard-%d", i), "prometheus", "--config.file="+path,
			"--storage.tsdb.path="+filepath.Join(s.tmp, fmt.Sprintf("prometheus-shard-%d", i)), "--web.listen-address="+addr)
		must(t, p.WaitReady("http://"+addr+"/-/ready"))
		shards[i] = promAPI{base: "http://" + addr}
	}
	run(t, "hashmod puts each project in one shard, with its own modelarts_up and no exporter-own metrics", func(t *testing.T) {
		s.checkShards(t, shards)
	})
	run(t, "both replicas behind one address answer every project within min_refresh_interval's call bound", func(t *testing.T) {
		s.checkReplicas(t, proxy, replicaAddrs)
	})
}

// checkShards: each project's series arrive, with its labels, in exactly the
// shard hashmod assigns it, with the project's own modelarts_up; the shards
// hold none of the exporter's own metrics.
func (s *stack) checkShards(t *testing.T, shards []promAPI) {
	var split [2][]string
	for _, project := range sortedKeys(replicaProjects) {
		split[hashmodShard(project, 2)] = append(split[hashmodShard(project, 2)], project)
	}
	if len(split[0]) == 0 || len(split[1]) == 0 {
		t.Fatalf("hashmod puts every project in one shard (%v): rename replicaProjects", split)
	}
	must(t, poll(s.ctx, "each project's series in its shard alone", 30*time.Second, func() error {
		for shard, projects := range split {
			for _, project := range projects {
				if err := probedSeries(s.ctx, shards[shard], project, s.images[replicaProjects[project]]); err != nil {
					return fmt.Errorf("shard %d: %w", shard, err)
				}
				if err := expectNone(s.ctx, shards[1-shard], fmt.Sprintf(`{project=%q}`, project)); err != nil {
					return stopPolling(fmt.Errorf("shard %d: %w", 1-shard, err))
				}
			}
			if err := expectNone(s.ctx, shards[shard], `{__name__=~"modelarts_exporter_.+|modelarts_api_.+|go_.+|process_.+"}`); err != nil {
				return stopPolling(fmt.Errorf("shard %d: the exporter's own metrics came through /probe: %w", shard, err))
			}
		}
		return nil
	}))
	t.Logf("hashmod over 2 shards: shard 0 has %v, shard 1 has %v, each project in one shard only, as md5 predicts; instance=project, job=%s, its own modelarts_up 1 and image series; no exporter-own metrics",
		split[0], split[1], probeJob)
}

// probedSeries checks what one shard holds of one project.
func probedSeries(ctx context.Context, shard promAPI, project string, img modelarts.Image) error {
	sel := fmt.Sprintf(`job=%q,instance=%q`, probeJob, project)
	v, err := shard.query(ctx, `modelarts_up{`+sel+`} == 1`)
	if err != nil || len(v) != 1 || string(v[0].Metric["project"]) != project {
		return fmt.Errorf("modelarts_up{%s} == 1: %v %v", sel, v, err)
	}
	v, err = shard.query(ctx, `count by (project) ({`+sel+`,project!=""})`)
	if err != nil || len(v) != 1 || string(v[0].Metric["project"]) != project {
		return fmt.Errorf("the projects of target %s: %v %v, want %s alone", project, v, err, project)
	}
	v, err = shard.query(ctx, `modelarts_image_status{`+sel+`} == 1`)
	if err != nil || len(v) != 1 {
		return fmt.Errorf("modelarts_image_status{%s} == 1: %v %v", sel, v, err)
	}
	return labelsEqual(v[0].Metric, map[string]string{"project": project, "id": img.ID, "name": img.Name, "status": strings.ToUpper(img.Status)})
}

// checkReplicas probes every project through the proxy, a new connection
// each time, for loadWindow: every replica must answer every project, and
// each must fetch a project at most once per min_refresh_interval however
// often it is asked.
func (s *stack) checkReplicas(t *testing.T, proxy *rrProxy, replicas []string) {
	before, err := replicaCalls(s.ctx, replicas)
	must(t, err)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	served := map[string]int{} // "replica project" → answers
	start := time.Now()
	for time.Since(start) < loadWindow {
		for project := range replicaProjects {
			replica, err := probeThrough(s.ctx, client, proxy, project)
			must(t, err)
			served[fmt.Sprintf("%d %s", replica, project)]++
		}
		time.Sleep(100 * time.Millisecond)
	}
	window := time.Since(start)
	after, err := replicaCalls(s.ctx, replicas)
	must(t, err)
	// Fetches in the window, plus one for reading the counters at the end.
	bound := int(window/replicaRefresh) + 2
	var report []string
	for r := range replicas {
		for _, project := range sortedKeys(replicaProjects) {
			n := served[fmt.Sprintf("%d %s", r, project)]
			calls := after[r][project] - before[r][project]
			if n == 0 {
				t.Fatalf("replica %d never answered a probe of %s through the proxy", r, project)
			}
			if calls > float64(bound) || calls < 1 {
				t.Fatalf("replica %d: %v ShowImage calls for %s in %.1fs while answering %d probes; want 1 to %d (min_refresh_interval %s)",
					r, calls, project, window.Seconds(), n, bound, replicaRefresh)
			}
			report = append(report, fmt.Sprintf("%d/%s %d probes %v calls", r, project, n, calls))
		}
	}
	t.Logf("2 replicas behind one address: each answered every project, with at most %d ShowImage calls per project in %.1fs (min_refresh_interval %s): %s",
		bound, window.Seconds(), replicaRefresh, strings.Join(report, ", "))
}

// probeThrough asks the proxy for one project's probe on a new connection
// and returns which replica answered; the answer must be that project's.
func probeThrough(ctx context.Context, client *http.Client, proxy *rrProxy, project string) (int, error) {
	var local string
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { local = info.Conn.LocalAddr().String() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, "http://"+proxy.addr+"/probe?project="+project, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("probe of %s through the proxy: %s %v", project, resp.Status, err)
	}
	if want := fmt.Sprintf("modelarts_up{project=%q} 1\n", project); !strings.Contains(string(body), want) {
		return 0, fmt.Errorf("probe of %s through the proxy lacks %q:\n%s", project, want, body)
	}
	replica, ok := proxy.backendOf(local)
	if !ok {
		return 0, fmt.Errorf("the proxy has no record of the connection from %s", local)
	}
	return replica, nil
}

// replicaCalls reads each replica's ShowImage calls per project from its /metrics.
func replicaCalls(ctx context.Context, replicas []string) ([]map[string]float64, error) {
	out := make([]map[string]float64, len(replicas))
	for i, addr := range replicas {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		if err != nil {
			return nil, err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return nil, err
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("replica %d /metrics: %w", i, err)
		}
		out[i] = map[string]float64{}
		for _, m := range families["modelarts_api_requests_total"].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["operation"] == "ShowImage" {
				out[i][labels["project"]] += m.GetCounter().GetValue()
			}
		}
	}
	return out, nil
}

func expectNone(ctx context.Context, p promAPI, expr string) error {
	v, err := p.query(ctx, expr)
	if err != nil {
		return err
	}
	if len(v) != 0 {
		return fmt.Errorf("%s: want no series, got %v", expr, v)
	}
	return nil
}

func (s *stack) writeReplicaConfig(t *testing.T) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by the e2e test: the replicas' projects, one image each.\nglobal:\n  min_refresh_interval: %s\nprojects:\n", replicaRefresh)
	for _, project := range sortedKeys(replicaProjects) {
		fmt.Fprintf(&b, `  - name: %s
    region: %s
    project_id: %s
    modelarts_endpoint: %s
    auth:
      access_key: %s
      secret_key_file: secret_key
    images: [%s]
`, project, modelartstest.DefaultRegion, modelartstest.DefaultProjectID, s.simURL, modelartstest.DemoAccessKey, replicaProjects[project])
	}
	path := filepath.Join(s.tmp, "exporter", "replicas.yml") // next to the secret_key of writeExporterConfig
	writeFile(t, path, b.String())
	return path
}

// writeShardConfig writes the configuration of shard i of 2: one /probe
// target per project, all sent to the proxy, kept when hashmod says i.
func (s *stack) writeShardConfig(t *testing.T, i int, proxyAddr string) string {
	cfg := fmt.Sprintf(`# Written by the e2e test: shard %[1]d of 2 of the /probe job (docs/operations.md).
global:
  scrape_interval: %[2]s
  scrape_timeout: %[2]s
scrape_configs:
  - job_name: %[3]s
    metrics_path: /probe
    static_configs:
      - targets: [%[4]s]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_project
      - source_labels: [__param_project]
        target_label: instance
      - target_label: __address__
        replacement: %[5]s
      - source_labels: [__param_project]
        modulus: 2
        target_label: __tmp_shard
        action: hashmod
      - source_labels: [__tmp_shard]
        regex: "%[1]d"
        action: keep
`, i, interval, probeJob, strings.Join(sortedKeys(replicaProjects), ", "), proxyAddr)
	path := filepath.Join(s.tmp, fmt.Sprintf("prometheus-shard-%d.yml", i))
	writeFile(t, path, cfg)
	runOK(t, "promtool", "check", "config", path)
	return path
}

// rrProxy hands each connection to the next backend in turn, as a
// Kubernetes Service does, and remembers which backend got which client.
type rrProxy struct {
	addr     string
	backends []string
	mu       sync.Mutex
	next     int
	byClient map[string]int
}

// startProxy serves until t ends; open connections end when their replica
// is stopped.
func startProxy(t *testing.T, backends []string) *rrProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	p := &rrProxy{addr: ln.Addr().String(), backends: backends, byClient: map[string]int{}}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			i := p.next
			p.next = (p.next + 1) % len(p.backends)
			p.byClient[conn.RemoteAddr().String()] = i
			p.mu.Unlock()
			go p.pipe(conn, p.backends[i])
		}
	}()
	return p
}

func (p *rrProxy) pipe(client net.Conn, backend string) {
	defer func() { _ = client.Close() }()
	server, err := net.DialTimeout("tcp", backend, 5*time.Second)
	if err != nil {
		return
	}
	defer func() { _ = server.Close() }()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(server, client)
		_ = server.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(client, server)
	_ = client.(*net.TCPConn).CloseWrite()
	<-done
}

func (p *rrProxy) backendOf(client string) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.byClient[client]
	return i, ok
}
