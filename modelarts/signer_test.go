// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	vpcsURL = "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0"
	vpcsAK  = "QTWAOYTTINDUT2QVKYUC"
	vpcsSK  = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
)

// TestPublishedVectors reproduces the three signatures published in the API
// description from the building blocks.
func TestPublishedVectors(t *testing.T) {
	tests := []struct {
		name          string
		url           string
		headers       map[string]string
		signedHeaders []string
		secretKey     string
		want          string
	}{
		{
			name:          "vpcs signing content-type;host;x-sdk-date",
			url:           vpcsURL,
			headers:       map[string]string{"Content-Type": "application/json", "X-Sdk-Date": "20191115T033655Z"},
			signedHeaders: []string{"content-type", "host", "x-sdk-date"},
			secretKey:     vpcsSK,
			want:          "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe",
		},
		{
			name:          "vpcs signing host;x-sdk-date",
			url:           vpcsURL,
			headers:       map[string]string{"Content-Type": "application/json", "X-Sdk-Date": "20191115T033655Z"},
			signedHeaders: []string{"host", "x-sdk-date"},
			secretKey:     vpcsSK,
			want:          "faafba090046ef84c81ca330e77576d8746733ddfcf0317aaeb59cff50da39a7",
		},
		{
			name:          "path signing x-sdk-date",
			url:           "https://example.huaweicloud.com/path?limit=1",
			headers:       map[string]string{"X-Sdk-Date": "20060102T150405Z"},
			signedHeaders: []string{"x-sdk-date"},
			secretKey:     "SecretKey",
			want:          "5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, http.MethodGet, tt.url, tt.headers)
			canonical := canonicalRequest(req, tt.signedHeaders, emptyBodySHA256)
			got := signature(tt.secretKey, req.Header.Get("X-Sdk-Date"), canonical)
			if got != tt.want {
				t.Errorf("signature = %s, want %s\ncanonical request:\n%s", got, tt.want, canonical)
			}
		})
	}
}

// TestSignerSignPublishedVector signs the first vector end to end: Sign picks
// content-type, host and x-sdk-date on its own and keeps the given date.
func TestSignerSignPublishedVector(t *testing.T) {
	req := newRequest(t, http.MethodGet, vpcsURL, map[string]string{
		"Content-Type": "application/json",
		"X-Sdk-Date":   "20191115T033655Z",
	})
	s := &Signer{AccessKey: vpcsAK, SecretKey: vpcsSK}
	if err := s.Sign(req); err != nil {
		t.Fatal(err)
	}
	want := "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, " +
		"Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
	if got := req.Header.Get("Authorization"); got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}
	if got := req.Header.Get("X-Sdk-Date"); got != "20191115T033655Z" {
		t.Errorf("X-Sdk-Date changed to %q", got)
	}
}

func TestSignerSetsHeaders(t *testing.T) {
	now := time.Date(2024, 3, 9, 7, 5, 3, 999, time.FixedZone("CET", 3600))
	tests := []struct {
		name        string
		signer      Signer
		headers     map[string]string
		wantDate    string
		wantToken   string
		wantSigned  string
		wantErrText string
	}{
		{
			name:       "date from the clock in UTC",
			signer:     Signer{AccessKey: "ak", SecretKey: "sk", Now: func() time.Time { return now }},
			headers:    map[string]string{"Content-Type": "application/json", "X-Project-Id": "pid"},
			wantDate:   "20240309T060503Z",
			wantSigned: "content-type;host;x-project-id;x-sdk-date",
		},
		{
			name:       "temporary credentials add and sign the security token",
			signer:     Signer{AccessKey: "ak", SecretKey: "sk", SecurityToken: "sts-token", Now: func() time.Time { return now }},
			wantDate:   "20240309T060503Z",
			wantToken:  "sts-token",
			wantSigned: "host;x-sdk-date;x-security-token",
		},
		{
			name:       "unsigned headers stay unsigned",
			signer:     Signer{AccessKey: "ak", SecretKey: "sk", Now: func() time.Time { return now }},
			headers:    map[string]string{"User-Agent": "test", "Accept": "*/*"},
			wantDate:   "20240309T060503Z",
			wantSigned: "host;x-sdk-date",
		},
		{
			name:        "malformed preset date",
			signer:      Signer{AccessKey: "ak", SecretKey: "sk"},
			headers:     map[string]string{"X-Sdk-Date": "2024-03-09T06:05:03Z"},
			wantErrText: "is not of the form",
		},
		{
			name:        "no secret key",
			signer:      Signer{AccessKey: "ak"},
			wantErrText: "access key and secret key are required",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, http.MethodGet, "https://modelarts.example.com/v1/pid/images", tt.headers)
			err := tt.signer.Sign(req)
			if tt.wantErrText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrText) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErrText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := req.Header.Get("X-Sdk-Date"); got != tt.wantDate {
				t.Errorf("X-Sdk-Date = %q, want %q", got, tt.wantDate)
			}
			if got := req.Header.Get("X-Security-Token"); got != tt.wantToken {
				t.Errorf("X-Security-Token = %q, want %q", got, tt.wantToken)
			}
			signed := strings.Split(req.Header.Get("Authorization"), "SignedHeaders=")[1]
			if signed, _, _ = strings.Cut(signed, ","); signed != tt.wantSigned {
				t.Errorf("SignedHeaders = %q, want %q", signed, tt.wantSigned)
			}
			// The signature must be what the building blocks give for the
			// request as it now is: an independent check of Sign's wiring.
			canonical := canonicalRequest(req, strings.Split(tt.wantSigned, ";"), emptyBodySHA256)
			want := signature(tt.signer.SecretKey, tt.wantDate, canonical)
			if !strings.HasSuffix(req.Header.Get("Authorization"), "Signature="+want) {
				t.Errorf("Authorization = %q, want signature %s", req.Header.Get("Authorization"), want)
			}
		})
	}
}

func TestCanonicalURI(t *testing.T) {
	tests := []struct {
		path string
		want string
	}{
		{"", "/"},
		{"/", "/"},
		{"/v1/pid/images", "/v1/pid/images/"},
		{"/v1/pid/images/", "/v1/pid/images/"},
		{"/a b", "/a%20b/"},
		{"/a%20b", "/a%20b/"},
		{"/a+b", "/a%2Bb/"},
		{"/caf\u00e9/\u955c\u50cf", "/caf%C3%A9/%E9%95%9C%E5%83%8F/"},
		{"/caf%c3%a9", "/caf%C3%A9/"},
		{"/keep-_.~AZaz09", "/keep-_.~AZaz09/"},
		{"/a%2Fb/c", "/a%2Fb/c/"},
		{"/a;b=c,d", "/a%3Bb%3Dc%2Cd/"},
		{"//double", "//double/"},
		{"/100%", "/100%25/"}, // not a valid escape: encoded as it stands
	}
	for _, tt := range tests {
		if got := canonicalURI(tt.path); got != tt.want {
			t.Errorf("canonicalURI(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct {
		rawQuery string
		want     string
	}{
		{"", ""},
		{"limit=1", "limit=1"},
		{"b=2&a=3&a=1&a=2", "a=1&a=2&a=3&b=2"},
		{"name=my+image", "name=my%20image"},
		{"name=my%20image", "name=my%20image"},
		{"name=a%2Bb", "name=a%2Bb"},
		{"name=%E9%95%9C%E5%83%8F", "name=%E9%95%9C%E5%83%8F"},
		{"flag", "flag="},
		{"k%20ey=v&k+ey=a", "k%20ey=a&k%20ey=v"},
		{"x=%2F%3F%26%3D", "x=%2F%3F%26%3D"},
		{"tilde=~&dash=-_.", "dash=-_.&tilde=~"},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.rawQuery)
		if err != nil {
			t.Fatalf("ParseQuery(%q): %v", tt.rawQuery, err)
		}
		if got := canonicalQuery(q); got != tt.want {
			t.Errorf("canonicalQuery(%q) = %q, want %q", tt.rawQuery, got, tt.want)
		}
	}
}

func TestCanonicalHeaders(t *testing.T) {
	req := newRequest(t, http.MethodGet, "http://127.0.0.1:8080/v1", map[string]string{
		"Content-Type": "  application/json ",
		"X-Sdk-Date":   "20240309T060503Z",
	})
	req.Header.Add("X-Project-Id", "a")
	req.Header.Add("X-Project-Id", " b")
	got := canonicalHeaders(req, []string{"X-Sdk-Date", "host", "content-type", "x-project-id"})
	want := "content-type:application/json\nhost:127.0.0.1:8080\nx-project-id:a,b\nx-sdk-date:20240309T060503Z\n"
	if got != want {
		t.Errorf("CanonicalHeaders = %q, want %q", got, want)
	}
	if v := req.Header.Values("X-Project-Id"); v[1] != " b" {
		t.Errorf("CanonicalHeaders changed the request header to %q", v)
	}
	req.Host = "virtual.example.com"
	if got := canonicalHeaders(req, []string{"host"}); got != "host:virtual.example.com\n" {
		t.Errorf("CanonicalHeaders with req.Host = %q", got)
	}
}

// TestSignBody checks that a body is hashed and still sent whole afterwards.
func TestSignBody(t *testing.T) {
	const body = `{"a":1}`
	const bodyHash = "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
	for _, replayable := range []bool{true, false} {
		req, err := http.NewRequest(http.MethodPost, "https://iam.example.com/v3/x", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if !replayable {
			req.GetBody = nil
			req.Body = io.NopCloser(strings.NewReader(body))
		}
		req.Header.Set("X-Sdk-Date", "20240309T060503Z")
		if err := (&Signer{AccessKey: "ak", SecretKey: "sk"}).Sign(req); err != nil {
			t.Fatal(err)
		}
		canonical := canonicalRequest(req, []string{"host", "x-sdk-date"}, bodyHash)
		want := signature("sk", "20240309T060503Z", canonical)
		if !strings.HasSuffix(req.Header.Get("Authorization"), want) {
			t.Errorf("replayable=%v: signature does not cover the body hash", replayable)
		}
		if got, _ := io.ReadAll(req.Body); string(got) != body {
			t.Errorf("replayable=%v: body after signing = %q, want %q", replayable, got, body)
		}
	}
}

// TestSigningRoundTripperSignsAClone checks the sigv4 shape: the caller's
// request is left alone, and every attempt gets a fresh date and signature.
func TestSigningRoundTripperSignsAClone(t *testing.T) {
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Clone())
	}))
	defer srv.Close()
	clock := newFakeClock(time.Date(2024, 3, 9, 6, 5, 3, 0, time.UTC))
	rt := fixedKeys("ak", "sk", "", http.DefaultTransport, clock.Now)
	req := newRequest(t, http.MethodGet, srv.URL+"/v1/pid/images", nil)
	for range 2 {
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		clock.Advance(time.Second)
	}
	if req.Header.Get("Authorization") != "" || req.Header.Get("X-Sdk-Date") != "" {
		t.Errorf("the caller's request was modified: %v", req.Header)
	}
	if len(seen) != 2 || seen[0].Get("X-Sdk-Date") == seen[1].Get("X-Sdk-Date") {
		t.Fatalf("want two requests with different dates, got %v", seen)
	}
}

// FuzzCanonicalURI checks the invariants of the canonical URI: only
// unreserved characters, "/" and %XX escapes; a trailing "/"; and decoding it
// gives back the decoded segments of the input.
func FuzzCanonicalURI(f *testing.F) {
	for _, seed := range []string{"", "/", "/v1/pid/images/x", "/a b/c%2Fd", "/\u955c\u50cf", "/%zz", "//"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, path string) {
		got := canonicalURI(path)
		if !strings.HasSuffix(got, "/") {
			t.Fatalf("canonicalURI(%q) = %q: no trailing slash", path, got)
		}
		for i := 0; i < len(got); i++ {
			c := got[i]
			switch {
			case c == '/' || isUnreserved(c):
			case c == '%' && i+2 < len(got) && isUpperHex(got[i+1]) && isUpperHex(got[i+2]):
				i += 2
			default:
				t.Fatalf("canonicalURI(%q) = %q: byte %q at %d", path, got, c, i)
			}
		}
		in := strings.Split(path, "/")
		out := strings.Split(strings.TrimSuffix(got, "/"), "/")
		if path != "" && strings.HasSuffix(path, "/") {
			in = in[:len(in)-1] // CanonicalURI adds no segment after a trailing "/"
		}
		if len(in) != len(out) {
			t.Fatalf("canonicalURI(%q) = %q: %d segments, want %d", path, got, len(out), len(in))
		}
		for i := range in {
			want := in[i]
			if raw, err := url.PathUnescape(want); err == nil {
				want = raw
			}
			if dec, err := url.PathUnescape(out[i]); err != nil || dec != want {
				t.Fatalf("canonicalURI(%q) segment %d = %q, decodes to %q (%v), want %q", path, i, out[i], dec, err, want)
			}
		}
	})
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func newRequest(t *testing.T, method, rawURL string, headers map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req
}
