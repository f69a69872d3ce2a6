// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

func TestCounters(t *testing.T) {
	s, clock := startServer(t, Options{})
	for range 3 {
		signedGet(t, s, clock, imagePath(s, SampleIDError))
	}
	signedGet(t, s, clock, imagePath(s, "missing"))
	signedGet(t, s, clock, listPath(s, "limit=1"))
	createToken(t, s, tokenBodyFor(DemoDomain, DemoUser, DemoPassword, `{"name":"eu-de"}`))
	do(t, newRequest(t, s, "/v3/projects"))

	checks := []struct {
		op     string
		status int
		want   int
	}{
		{OpShowImage, 0, 4}, {OpShowImage, 200, 3}, {OpShowImage, 400, 1},
		{OpListImage, 200, 1}, {OpCreateToken, 201, 1}, {OpListProjects, 401, 1},
	}
	for _, c := range checks {
		got := s.Requests(c.op)
		if c.status != 0 {
			got = s.RequestsWithStatus(c.op, c.status)
		}
		if got != c.want {
			t.Errorf("%s %d: %d, want %d", c.op, c.status, got, c.want)
		}
	}
	if got := s.Requests(""); got != 7 {
		t.Errorf("all operations: %d", got)
	}
	s.ResetCounters()
	if got := s.Requests(OpShowImage); got != 0 {
		t.Errorf("after reset: %d", got)
	}
}

func TestLatency(t *testing.T) {
	s, clock := startServer(t, Options{Latency: 30 * time.Millisecond})
	start := time.Now()
	signedGet(t, s, clock, imagePath(s, SampleIDError))
	if took := time.Since(start); took < 30*time.Millisecond {
		t.Errorf("answered after %v", took)
	}
	s.SetLatency(0)
	start = time.Now()
	adminDo(t, s, http.MethodGet, "/-/sim/images", "")
	if took := time.Since(start); took > 25*time.Millisecond {
		t.Errorf("admin call took %v", took)
	}
}

func TestMaxInFlightQueues(t *testing.T) {
	s, clock := startServer(t, Options{MaxInFlight: 1, Latency: 20 * time.Millisecond})
	start := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { signedGet(t, s, clock, imagePath(s, SampleIDError)) })
	}
	wg.Wait()
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Errorf("4 calls of 20ms one at a time took %v", took)
	}
}

// TestConcurrentAccess mixes API calls, mutations, faults and counters; run
// with -race.
func TestConcurrentAccess(t *testing.T) {
	s, clock := startServer(t, Options{Images: GenerateImages(500, 3)})
	ids := s.Images()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				id := ids[(w*25+i)%len(ids)].ID
				switch i % 5 {
				case 0:
					signedGet(t, s, clock, listPath(s, fmt.Sprintf("limit=50&offset=%d", i*10)))
				case 1:
					s.SetStatus(id, modelarts.StatusError)
				case 2:
					remove := s.AddFault(Fault{Kind: FaultUnknownFields, ImageID: id, Count: 1})
					signedGet(t, s, clock, imagePath(s, id))
					remove()
				case 3:
					img, _ := s.Image(id)
					img.Name += "-x"
					s.SetImage(img)
				default:
					_ = s.Stats()
					_ = s.Requests(OpShowImage)
					signedGet(t, s, clock, imagePath(s, id))
				}
			}
		})
	}
	wg.Wait()
	if got := s.Requests(OpShowImage) + s.Requests(OpListImage); got != 8*(5+5+5) {
		t.Errorf("counted %d calls", got)
	}
}

func TestCloseEndsWaitingCalls(t *testing.T) {
	s := NewServer(Options{Images: SampleImages(), Latency: time.Hour})
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest(http.MethodGet, s.URL+imagePath(s, SampleIDError), nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
	}()
	waitFor(t, func() bool { return s.Stats().InFlight == 1 })
	s.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a waiting call")
	}
}

func TestServeOnOwnListener(t *testing.T) {
	s := New(Options{Images: SampleImages()})
	defer s.Close()
	if code := httptestRecorder(s, "/-/healthy"); code != http.StatusOK {
		t.Fatalf("healthy: %d", code)
	}
	if s.URL != "" {
		t.Errorf("URL = %q for a server without listener", s.URL)
	}
}

// TestUnknownPaths: the API gateway answers a path no API has with 404
// APIG.0101, before authentication, and a known path's other methods with 405.
func TestUnknownPaths(t *testing.T) {
	s, _ := startServer(t, Options{})
	pid := s.ProjectID()
	for _, path := range []string{
		"/prefix/v1/" + pid + "/images",
		"/v2/" + pid + "/images",
		"/v1/" + pid + "/imagez",
		"/v1/" + pid + "/images/" + SampleIDError + "/tags",
		"/v1/" + pid,
		"/",
		"/v3/auth/token",
	} {
		t.Run(path, func(t *testing.T) {
			r := do(t, newRequest(t, s, path))
			expectError(t, r, http.StatusNotFound, CodeAPINotFound)
			b := decode[modelArtsErrorBody](t, r)
			if b.ErrorMsg != MsgAPINotFound || b.RequestID == "" || b.RequestID != r.header.Get("X-Request-Id") {
				t.Errorf("body %s, X-Request-Id %q", r.body, r.header.Get("X-Request-Id"))
			}
		})
	}
	methods := []struct {
		method, path, allow string
	}{
		{http.MethodPost, "/v1/" + pid + "/images", "GET, HEAD"},
		{http.MethodDelete, "/v1/" + pid + "/images/" + SampleIDError, "GET, HEAD"},
		{http.MethodGet, "/v3/auth/tokens", "POST"},
		{http.MethodPost, "/-/sim/images", "GET, HEAD"},
		{http.MethodPatch, "/-/sim/faults", "DELETE, POST"},
	}
	for _, tt := range methods {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := adminDo(t, s, tt.method, tt.path, "")
			expectStatus(t, r, http.StatusMethodNotAllowed)
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
	// A typo in an admin path is the admin API's own 404.
	r := adminDo(t, s, http.MethodGet, "/-/sim/fault", "")
	expectStatus(t, r, http.StatusNotFound)
	if msg := decode[map[string]string](t, r)["error"]; msg == "" {
		t.Errorf("admin 404 body %s", r.body)
	}
	if s.Requests("") != 0 {
		t.Errorf("unknown paths counted as API calls: %+v", s.Stats().Requests)
	}
}
