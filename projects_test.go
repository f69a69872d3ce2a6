// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto/tls"
	"fmt"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/modelarts-exporter/modelarts_exporter/internal/testca"
	"github.com/modelarts-exporter/modelarts_exporter/internal/testproxy"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// victimProject is the YAML of a project called victim on endpoint (ModelArts
// and IAM) with the simulator's demo credentials of auth ("aksk" or "token":
// no project id then, so IAM is on the path); extra (lines indented by 4
// spaces) follows.
func victimProject(sim *modelartstest.Server, auth, endpoint string, ids []string, extra string) string {
	if auth == "aksk" {
		return akskProject(sim, "victim", endpoint, ids, extra)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: victim\n    region: %s\n    modelarts_endpoint: %s\n    iam_endpoint: %s\n", sim.Region(), endpoint, endpoint)
	fmt.Fprintf(&b, "    auth:\n      domain_name: %s\n      username: %s\n      password: %s\n    images:\n",
		modelartstest.DemoDomain, modelartstest.DemoUser, modelartstest.DemoPassword)
	for _, id := range ids {
		fmt.Fprintf(&b, "      - %s\n", id)
	}
	return b.String() + extra
}

// TestOutboundProxy proves that proxy_url and the HTTP_PROXY, HTTPS_PROXY and
// NO_PROXY variables carry the API calls, for plain and TLS endpoints, with
// both kinds of auth, through the clients newProjects builds on a (re)load.
//
// Go never sends requests for localhost or a loopback address through a
// proxy taken from the environment. The environment cases therefore name the
// endpoint 0.0.0.0 on a closed port: not loopback to Go's proxy rules, but a
// local address that refuses a direct connection at once, so the calls can
// only succeed through the proxy, which connects to the simulator whatever
// the address (TLS verifies the certificate's name "localhost" through
// tls_config.server_name). No name is looked up. proxy_url has no such
// exception and is tested on 127.0.0.1.
func TestOutboundProxy(t *testing.T) {
	const refused = "connection refused"
	cases := []struct {
		name     string
		tls      bool
		env      map[string]string // "PROXY" is replaced by the proxy's URL
		proxyURL bool              // set proxy_url instead
		anyAddr  bool              // the endpoint is 0.0.0.0 on a closed port, not the simulator's 127.0.0.1:port
		caFile   bool
		wantUp   bool
		// what the proxy must have seen
		wantForwarded, wantTunnels bool
		wantLogged                 string
	}{
		{name: "proxy_url, http", proxyURL: true, wantUp: true, wantForwarded: true},
		{name: "proxy_url, https through CONNECT, tls_config.ca_file", proxyURL: true, tls: true, caFile: true, wantUp: true, wantTunnels: true},
		{name: "proxy_url, https, no ca_file: verification through the tunnel", proxyURL: true, tls: true, wantTunnels: true, wantLogged: "certificate signed by unknown authority"},
		{name: "HTTP_PROXY", env: map[string]string{"HTTP_PROXY": "PROXY"}, anyAddr: true, wantUp: true, wantForwarded: true},
		{name: "HTTPS_PROXY", env: map[string]string{"HTTPS_PROXY": "PROXY"}, tls: true, caFile: true, anyAddr: true, wantUp: true, wantTunnels: true},
		{name: "NO_PROXY names the endpoint", env: map[string]string{"HTTP_PROXY": "PROXY", "NO_PROXY": "0.0.0.0"}, anyAddr: true, wantLogged: refused},
		{name: "HTTPS_PROXY does not apply to http", env: map[string]string{"HTTPS_PROXY": "PROXY"}, anyAddr: true, wantLogged: refused},
		{name: "no proxy at all", anyAddr: true, wantLogged: refused},
	}
	for _, tc := range cases {
		for _, auth := range []string{"aksk", "token"} {
			t.Run(tc.name+"/"+auth, func(t *testing.T) {
				defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
				// The environment of the machine running the tests must not change the outcome.
				for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD"} {
					t.Setenv(k, "")
				}
				dir := t.TempDir()
				sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
				defer sim.Close()
				ca := testca.New(t, dir)
				backend := httptest.NewUnstartedServer(sim.Handler())
				backend.Config.ErrorLog = stdlog.New(io.Discard, "", 0)
				if tc.tls {
					backend.TLS = &tls.Config{Certificates: []tls.Certificate{ca.ServerCert}, MinVersion: tls.VersionTLS12}
					backend.StartTLS()
				} else {
					backend.Start()
				}
				defer backend.Close()
				proxy := testproxy.New(t, backend.Listener.Addr().String())
				defer proxy.Close()

				endpoint, extra := backend.URL, ""
				if tc.anyAddr {
					_, port, _ := strings.Cut(freeAddress(t), ":")
					endpoint = strings.Replace(backend.URL, backend.Listener.Addr().String(), "0.0.0.0:"+port, 1)
					if tc.tls {
						extra += "    tls_config:\n      server_name: localhost\n"
					}
				}
				if tc.proxyURL {
					extra += "    proxy_url: " + proxy.URL + "\n"
				}
				if tc.caFile {
					if !strings.Contains(extra, "tls_config:") {
						extra += "    tls_config:\n"
					}
					extra += "      ca_file: " + ca.CAFile + "\n"
				}
				for k, val := range tc.env {
					t.Setenv(k, strings.ReplaceAll(val, "PROXY", proxy.URL))
				}
				victimIDs := modelartstest.SampleIDs()[:3]
				cfg := "projects:\n" + victimProject(sim, auth, endpoint, victimIDs, extra) +
					akskProject(sim, "bystander", sim.URL, modelartstest.SampleIDs()[:1], "")
				path := filepath.Join(dir, "modelarts_exporter.yml")
				if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
					t.Fatal(err)
				}
				logs := &syncBuffer{}
				// The environment is read when the projects are built, as on a (re)load.
				exp := newExporter(log.NewLogfmtLogger(logs), prometheus.NewRegistry(), &flags{configFile: path, maxTimeout: time.Minute})
				if err := exp.reload(); err != nil {
					t.Fatal(err)
				}
				rec := get(http.HandlerFunc(exp.serveMetrics), "/metrics", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"5"}})
				families := parseText(t, rec.Body.String())

				want := 0.0
				if tc.wantUp {
					want = 1
				}
				for _, id := range victimIDs {
					if got := value(t, families, "modelarts_image_up", map[string]string{"project": "victim", "id": id}); got != want {
						t.Errorf("image %s up = %v, want %v\n%s", id, got, want, logs)
					}
				}
				// The bystander on 127.0.0.1 without proxy_url never uses the proxy.
				if got := value(t, families, "modelarts_image_up", map[string]string{"project": "bystander"}); got != 1 {
					t.Errorf("bystander up = %v, want 1", got)
				}
				if got := proxy.Forwarded.Load() > 0; got != tc.wantForwarded {
					t.Errorf("proxy forwarded requests: %v, want %v", got, tc.wantForwarded)
				}
				if got := proxy.Tunnels.Load() > 0; got != tc.wantTunnels {
					t.Errorf("proxy tunnelled: %v, want %v", got, tc.wantTunnels)
				}
				if tc.anyAddr && (tc.wantForwarded || tc.wantTunnels) && !proxy.Asked(strings.TrimPrefix(strings.TrimPrefix(endpoint, "https://"), "http://")) {
					t.Errorf("the proxy was not asked for %s", endpoint)
				}
				if tc.wantLogged != "" && !strings.Contains(logs.String(), tc.wantLogged) {
					t.Errorf("the log does not say %q", tc.wantLogged)
				}
			})
		}
	}
}
