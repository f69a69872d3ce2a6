// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"crypto/tls"
	"io"
	stdlog "log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modelarts-exporter/modelarts_exporter/internal/testca"
	"github.com/modelarts-exporter/modelarts_exporter/internal/testproxy"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// unsetProxyEnv clears every proxy variable for the test, so that the
// environment of the machine running the tests cannot change the outcome.
func unsetProxyEnv(t *testing.T) {
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD"} {
		t.Setenv(k, "")
	}
}

// TestOutboundProxy proves that proxy_url and the HTTP_PROXY, HTTPS_PROXY and
// NO_PROXY variables carry the API calls, for plain and TLS endpoints, with
// both kinds of auth.
//
// Go never sends requests for loopback hosts through a proxy taken from the
// environment. The environment cases therefore name the endpoint
// modelarts.sim.invalid, a name that cannot resolve: the calls can only
// succeed through the proxy, which connects to the simulator whatever the
// name. proxy_url has no such exception and is tested on 127.0.0.1.
func TestOutboundProxy(t *testing.T) {
	const fakeHost = "modelarts.sim.invalid"
	cases := []struct {
		name     string
		tls      bool
		env      map[string]string // "PROXY" is replaced by the proxy's URL
		proxyURL bool              // set proxy_url instead
		fakeHost bool              // the endpoint is fakeHost:port, not 127.0.0.1:port
		caFile   bool
		wantUp   bool
		// what the proxy must have seen
		wantForwarded, wantTunnels bool
		wantLogged                 string
	}{
		{name: "proxy_url, http", proxyURL: true, wantUp: true, wantForwarded: true},
		{name: "proxy_url, https through CONNECT, tls_config.ca_file", proxyURL: true, tls: true, caFile: true, wantUp: true, wantTunnels: true},
		{name: "proxy_url, https, no ca_file: verification through the tunnel", proxyURL: true, tls: true, wantTunnels: true, wantLogged: "certificate signed by unknown authority"},
		{name: "HTTP_PROXY", env: map[string]string{"HTTP_PROXY": "PROXY"}, fakeHost: true, wantUp: true, wantForwarded: true},
		{name: "HTTPS_PROXY", env: map[string]string{"HTTPS_PROXY": "PROXY"}, tls: true, caFile: true, fakeHost: true, wantUp: true, wantTunnels: true},
		{name: "NO_PROXY names the endpoint", env: map[string]string{"HTTP_PROXY": "PROXY", "NO_PROXY": ".sim.invalid"}, fakeHost: true, wantLogged: "lookup " + fakeHost},
		{name: "HTTPS_PROXY does not apply to http", env: map[string]string{"HTTPS_PROXY": "PROXY"}, fakeHost: true, wantLogged: "lookup " + fakeHost},
		{name: "no proxy at all", fakeHost: true, wantLogged: "lookup " + fakeHost},
	}
	for _, tc := range cases {
		for _, auth := range []string{"aksk", "token"} {
			t.Run(tc.name+"/"+auth, func(t *testing.T) {
				defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
				unsetProxyEnv(t)
				dir := t.TempDir()
				sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
				defer sim.Close()
				ca := testca.New(t, dir, fakeHost)
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

				v := victim{auth: auth, endpoint: backend.URL, images: modelartstest.SampleIDs()[:3]}
				if tc.fakeHost {
					v.endpoint = strings.Replace(backend.URL, "127.0.0.1", fakeHost, 1)
				}
				if tc.proxyURL {
					v.extraYAML += "    proxy_url: " + proxy.URL + "\n"
				}
				if tc.caFile {
					v.extraYAML += "    tls_config:\n      ca_file: " + ca.CAFile + "\n"
				}
				for k, val := range tc.env {
					t.Setenv(k, strings.ReplaceAll(val, "PROXY", proxy.URL))
				}
				logs := &lockedBuffer{}
				// The environment is read when the projects are built, as on a (re)load.
				scraper := newFaultScraper(t, faultConfig(t, dir, sim, v, modelartstest.SampleIDs()[:1]), logs)
				text := scrapeText(t, scraper, 5*time.Second)

				want := "0"
				if tc.wantUp {
					want = "1"
				}
				for _, id := range v.images {
					if got, _ := sampleValue(t, text, "modelarts_image_up", `project="victim"`, `id="`+id+`"`); got != want {
						t.Errorf("image %s up = %q, want %s\n%s", id, got, want, logs.take())
					}
				}
				// The bystander on 127.0.0.1 without proxy_url never uses the proxy.
				if got, _ := sampleValue(t, text, "modelarts_image_up", `project="bystander"`); got != "1" {
					t.Errorf("bystander up = %q, want 1", got)
				}
				if got := proxy.Forwarded.Load() > 0; got != tc.wantForwarded {
					t.Errorf("proxy forwarded requests: %v, want %v", got, tc.wantForwarded)
				}
				if got := proxy.Tunnels.Load() > 0; got != tc.wantTunnels {
					t.Errorf("proxy tunnelled: %v, want %v", got, tc.wantTunnels)
				}
				if tc.fakeHost && (tc.wantForwarded || tc.wantTunnels) && !proxy.Asked(strings.TrimPrefix(strings.TrimPrefix(v.endpoint, "https://"), "http://")) {
					t.Errorf("the proxy was not asked for %s", v.endpoint)
				}
				if tc.wantLogged != "" && !strings.Contains(logs.take(), tc.wantLogged) {
					t.Errorf("the log does not say %q", tc.wantLogged)
				}
			})
		}
	}
}
