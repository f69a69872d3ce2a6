// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeMetadata is an ECS metadata service: numbered temporary keys
// ("AK-1", "SK-1", "ST-1", ...) valid for lifetime on clock.
type fakeMetadata struct {
	t           *testing.T
	clock       *fakeClock
	lifetime    time.Duration
	tokenStatus int // answer to PUT token: 0 gives a session token

	mu       sync.Mutex
	failing  bool // GET securitykey answers 500
	keys     int  // GET securitykey answered
	sessions []string
}

func (f *fakeMetadata) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/meta-data/latest/api/token":
		if got := r.Header.Get("X-Metadata-Token-Ttl-Seconds"); got != "21600" {
			f.t.Errorf("X-Metadata-Token-Ttl-Seconds = %q", got)
		}
		if f.tokenStatus != 0 {
			w.WriteHeader(f.tokenStatus)
			return
		}
		_, _ = w.Write([]byte("session-token"))
	case r.Method == http.MethodGet && r.URL.Path == "/openstack/latest/securitykey":
		f.mu.Lock()
		defer f.mu.Unlock()
		f.sessions = append(f.sessions, r.Header.Get("X-Metadata-Token"))
		if f.failing {
			writeJSON(w, 500, `{"error":"down"}`)
			return
		}
		f.keys++
		writeJSON(w, 200, fmt.Sprintf(`{"credential":{"access":"AK-%d","secret":"SK-%d","securitytoken":"ST-%d","expires_at":%q}}`,
			f.keys, f.keys, f.keys, f.clock.Now().Add(f.lifetime).UTC().Format("2006-01-02T15:04:05.000000Z")))
	default:
		f.t.Errorf("metadata request %s %s", r.Method, r.URL)
		w.WriteHeader(404)
	}
}

func (f *fakeMetadata) fail(failing bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = failing
}

func (f *fakeMetadata) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.keys
}

// metadataAPI answers requests signed with the keys fakeMetadata handed out,
// recording the access key of each.
type metadataAPI struct {
	t      *testing.T
	mu     sync.Mutex
	access []string
}

func (a *metadataAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, after, _ := strings.Cut(r.Header.Get("Authorization"), "Access=")
	ak, _, _ := strings.Cut(after, ",")
	n := strings.TrimPrefix(ak, "AK-")
	if got := r.Header.Get("X-Security-Token"); got != "ST-"+n {
		a.t.Errorf("X-Security-Token = %q, want ST-%s", got, n)
	}
	verifySignature(a.t, r, ak, "SK-"+n, "content-type;host;x-project-id;x-sdk-date;x-security-token")
	a.mu.Lock()
	a.access = append(a.access, ak)
	a.mu.Unlock()
	writeJSON(w, 200, `{"id":"x","status":"ACTIVE"}`)
}

// newMetadataClient returns a client of the API at apiURL that signs with the
// keys of the metadata service at mdURL.
func newMetadataClient(t *testing.T, md *fakeMetadata, mdURL, apiURL string, shared *Shared) *Client {
	t.Helper()
	c := NewClient(Config{
		Endpoint: apiURL, ProjectID: testProjectID,
		Credentials: Credentials{MetadataEndpoint: mdURL},
		now:         md.clock.Now,
		Shared:      shared,
	})
	return c
}

// TestMetadataSessionToken: the session token is sent when the service gives
// one; 404, 405 and 503 mean none, and the keys are asked for without.
func TestMetadataSessionToken(t *testing.T) {
	tests := []struct {
		status      int
		wantSession string
	}{
		{status: 0, wantSession: "session-token"},
		{status: 404}, {status: 405}, {status: 503},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			md := &fakeMetadata{t: t, clock: testStart(), lifetime: 24 * time.Hour, tokenStatus: tt.status}
			api := &metadataAPI{t: t}
			c := newMetadataClient(t, md, startServer(t, md), startServer(t, api), nil)
			if _, err := c.ShowImage(context.Background(), "x"); err != nil {
				t.Fatal(err)
			}
			if len(md.sessions) != 1 || md.sessions[0] != tt.wantSession {
				t.Errorf("X-Metadata-Token sent: %q, want %q", md.sessions, tt.wantSession)
			}
		})
	}
}

// TestMetadataRefresh: temporary keys are refreshed at the earlier of 40
// minutes before they expire and half their lifetime, not per call, and
// once for every client sharing the endpoint.
func TestMetadataRefresh(t *testing.T) {
	tests := []struct {
		name     string
		lifetime time.Duration
		refresh  time.Duration // age at which they are refreshed
	}{
		{name: "24h: half the lifetime", lifetime: 24 * time.Hour, refresh: 12 * time.Hour},
		{name: "1h: 40 minutes before", lifetime: time.Hour, refresh: 20 * time.Minute},
		{name: "30m: half the lifetime", lifetime: 30 * time.Minute, refresh: 15 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := &fakeMetadata{t: t, clock: testStart(), lifetime: tt.lifetime}
			api := &metadataAPI{t: t}
			shared := NewShared()
			mdURL, apiURL := startServer(t, md), startServer(t, api)
			call := func() {
				t.Helper()
				for range 3 { // three projects, reloaded before every scrape
					if _, err := newMetadataClient(t, md, mdURL, apiURL, shared).ShowImage(context.Background(), "x"); err != nil {
						t.Fatal(err)
					}
				}
			}
			call()
			md.clock.Advance(tt.refresh - time.Second)
			call()
			if n := md.count(); n != 1 {
				t.Errorf("%d key requests before the refresh, want 1", n)
			}
			md.clock.Advance(time.Second)
			call()
			if n := md.count(); n != 2 {
				t.Errorf("%d key requests at the refresh, want 2", n)
			}
			if got := strings.Join(api.access, ","); got != "AK-1,AK-1,AK-1,AK-1,AK-1,AK-1,AK-2,AK-2,AK-2" {
				t.Errorf("API saw keys %s", got)
			}
		})
	}
}

// TestMetadataServiceDown: while the service fails, the current keys are
// used until they expire, the refresh is retried at most every 30 s; then
// calls fail saying why.
func TestMetadataServiceDown(t *testing.T) {
	md := &fakeMetadata{t: t, clock: testStart(), lifetime: time.Hour}
	api := &metadataAPI{t: t}
	c := newMetadataClient(t, md, startServer(t, md), startServer(t, api), nil)
	show := func() error { _, err := c.ShowImage(context.Background(), "x"); return err }
	if err := show(); err != nil {
		t.Fatal(err)
	}
	md.fail(true)
	md.clock.Advance(20 * time.Minute) // due
	for range 3 {
		if err := show(); err != nil {
			t.Fatalf("keys still valid: %v", err)
		}
	}
	if n := len(md.sessions); n != 2 {
		t.Errorf("%d key requests, want 2: one refresh attempt in 30 s", n)
	}
	md.clock.Advance(30 * time.Second)
	_ = show()
	if n := len(md.sessions); n != 3 {
		t.Errorf("%d key requests, want 3: a new attempt after 30 s", n)
	}
	md.clock.Advance(40 * time.Minute) // expired
	err := show()
	apiErr := AsAPIError(err)
	if apiErr == nil || !apiErr.FromIAM() || apiErr.Operation != OpSecurityKey ||
		!strings.Contains(err.Error(), "the ECS metadata service could not give credentials") {
		t.Fatalf("err = %v, want the metadata service's failure", err)
	}
	if got := strings.Join(api.access, ","); got != "AK-1,AK-1,AK-1,AK-1,AK-1" {
		t.Errorf("API saw keys %s", got)
	}
}

// TestMetadataBypassesProxy: the metadata service (169.254.169.254) is asked
// directly, never through the proxy of the environment.
func TestMetadataBypassesProxy(t *testing.T) {
	p := NewShared().metadataProvider("http://169.254.169.254", time.Now)
	if tr, ok := p.transport.(*http.Transport); !ok || tr.Proxy != nil {
		t.Errorf("metadata transport %T may use a proxy", p.transport)
	}
}
