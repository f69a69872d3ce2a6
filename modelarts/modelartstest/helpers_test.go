// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/internal/fakeclock"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock = fakeclock.Clock

func newFakeClock() *fakeClock {
	return fakeclock.New(time.Date(2025, 7, 28, 12, 0, 0, 0, time.UTC))
}

// startServer starts a server with the sample images and a fake clock.
func startServer(t *testing.T, opts Options) (*Server, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	if opts.Images == nil {
		opts.Images = SampleImages()
	}
	s := NewServer(opts)
	t.Cleanup(s.Close)
	return s, clock
}

// testSigner signs requests the way a client does. It is written apart from
// sign.go so that the server's verification is tested against a second
// reading of the algorithm: it only handles paths of unreserved characters,
// which is all the tests send, and encodes spaces in the query as %20.
type testSigner struct {
	ak, sk string
	now    func() time.Time
	// signedHeaders, lowercase and sorted; default host;x-project-id;x-sdk-date.
	signedHeaders []string
}

func (ts testSigner) sign(req *http.Request, body []byte) {
	req.Header.Set("X-Sdk-Date", ts.now().UTC().Format("20060102T150405Z"))
	signed := ts.signedHeaders
	if signed == nil {
		signed = []string{"host", "x-project-id", "x-sdk-date"}
	}
	var headers strings.Builder
	for _, h := range signed {
		v := req.Header.Get(h)
		if h == "host" {
			v = req.URL.Host
		}
		headers.WriteString(h + ":" + strings.TrimSpace(v) + "\n")
	}
	path := req.URL.Path
	if !strings.HasSuffix(path, "/") {
		path += "/"
	}
	bodySum := sha256.Sum256(body)
	canonical := strings.Join([]string{
		req.Method, path, sortedQuery(req.URL.Query()), headers.String(),
		strings.Join(signed, ";"), hex.EncodeToString(bodySum[:]),
	}, "\n")
	reqSum := sha256.Sum256([]byte(canonical))
	toSign := "SDK-HMAC-SHA256\n" + req.Header.Get("X-Sdk-Date") + "\n" + hex.EncodeToString(reqSum[:])
	mac := hmac.New(sha256.New, []byte(ts.sk))
	mac.Write([]byte(toSign))
	req.Header.Set("Authorization", "SDK-HMAC-SHA256 Access="+ts.ak+", SignedHeaders="+
		strings.Join(signed, ";")+", Signature="+hex.EncodeToString(mac.Sum(nil)))
}

func sortedQuery(v url.Values) string {
	esc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	var pairs []string
	for k, vs := range v {
		for _, x := range vs {
			pairs = append(pairs, esc(k)+"="+esc(x))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

func demoSigner(clock *fakeClock) testSigner {
	return testSigner{ak: DemoAccessKey, sk: DemoSecretKey, now: clock.Now}
}

// newRequest builds a GET for the server with X-Project-Id set.
func newRequest(t *testing.T, s *Server, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Project-Id", s.ProjectID())
	return req
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends req and reads the whole answer.
func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// signedGet sends a GET signed with the demo key.
func signedGet(t *testing.T, s *Server, clock *fakeClock, path string) response {
	t.Helper()
	req := newRequest(t, s, path)
	demoSigner(clock).sign(req, nil)
	return do(t, req)
}

func imagePath(s *Server, id string) string { return "/v1/" + s.ProjectID() + "/images/" + id }

func listPath(s *Server, query string) string {
	p := "/v1/" + s.ProjectID() + "/images"
	if query != "" {
		p += "?" + query
	}
	return p
}

// errorCode is error_code of a ModelArts or gateway error body.
func errorCode(t *testing.T, r response) string {
	t.Helper()
	var b modelArtsErrorBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return b.ErrorCode
}

func expectError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if got := errorCode(t, r); got != code {
		t.Fatalf("error_code = %q, want %q; body %s", got, code, r.body)
	}
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, r.body, err)
	}
	return v
}

// httptestRecorder serves one GET through the handler without a network.
func httptestRecorder(s *Server, path string) int {
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code
}
