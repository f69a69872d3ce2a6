// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

// Package testproxy is a forward HTTP proxy for tests, which also tunnels
// CONNECT and counts what it carried.
package testproxy

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy connects to one backend whatever host a request names, as a proxy in
// front of a private cloud would: the client's host never resolves the API's
// name itself. The Host header, and so an AK/SK signature, is kept.
type Proxy struct {
	// URL is the proxy's address, e.g. for proxy_url or HTTP_PROXY.
	URL string
	// Forwarded counts plain HTTP requests, Tunnels CONNECT tunnels.
	Forwarded, Tunnels atomic.Int64

	backend   string // host:port
	hosts     sync.Map
	transport *http.Transport
	srv       *httptest.Server
	closeOnce sync.Once
}

// New starts a proxy to backend (host:port); it stops when the test ends.
func New(t testing.TB, backend string) *Proxy {
	t.Helper()
	p := &Proxy{backend: backend}
	p.transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", p.backend)
		},
	}
	p.srv = httptest.NewServer(p)
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.URL = p.srv.URL
	t.Cleanup(p.Close)
	return p
}

// Close stops the proxy and closes its connections; it may be called more
// than once (a goroutine-leak check wants it done before the test ends).
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		p.srv.Close()
		p.transport.CloseIdleConnections()
	})
}

// Asked reports whether a request named host.
func (p *Proxy) Asked(host string) bool {
	_, ok := p.hosts.Load(host)
	return ok
}

// ServeHTTP forwards a proxy request or opens a CONNECT tunnel.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.hosts.Store(r.Host, true)
	if r.Method == http.MethodConnect {
		p.Tunnels.Add(1)
		p.tunnel(w)
		return
	}
	if !r.URL.IsAbs() {
		http.Error(w, "not a proxy request: "+r.RequestURI, http.StatusBadRequest)
		return
	}
	p.Forwarded.Add(1)
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Header.Del("Proxy-Authorization")
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (p *Proxy) tunnel(w http.ResponseWriter) {
	upstream, err := net.Dial("tcp", p.backend)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		_ = upstream.Close()
		return
	}
	_, _ = io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
	var once sync.Once
	closeBoth := func() { once.Do(func() { _ = conn.Close(); _ = upstream.Close() }) }
	go func() { _, _ = io.Copy(upstream, conn); closeBoth() }()
	go func() { _, _ = io.Copy(conn, upstream); closeBoth() }()
}
