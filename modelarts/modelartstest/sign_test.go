// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"net/http"
	"strings"
	"testing"
)

// The published test vectors of SDK-HMAC-SHA256.
func TestSignatureVectors(t *testing.T) {
	const vpcURL = "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0"
	tests := []struct {
		name          string
		url           string
		headers       map[string]string
		signedHeaders string
		secret        string
		want          string
	}{
		{
			name: "vpcs, content-type;host;x-sdk-date",
			url:  vpcURL,
			headers: map[string]string{
				"Content-Type": "application/json", "X-Sdk-Date": "20191115T033655Z",
			},
			signedHeaders: "content-type;host;x-sdk-date",
			secret:        "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
			want:          "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe",
		},
		{
			name: "vpcs, host;x-sdk-date",
			url:  vpcURL,
			headers: map[string]string{
				"Content-Type": "application/json", "X-Sdk-Date": "20191115T033655Z",
			},
			signedHeaders: "host;x-sdk-date",
			secret:        "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
			want:          "faafba090046ef84c81ca330e77576d8746733ddfcf0317aaeb59cff50da39a7",
		},
		{
			name:          "path, x-sdk-date",
			url:           "https://example.huaweicloud.com/path?limit=1",
			headers:       map[string]string{"X-Sdk-Date": "20060102T150405Z"},
			signedHeaders: "x-sdk-date",
			secret:        "SecretKey",
			want:          "5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			got, err := computeSignature(req, strings.Split(tt.signedHeaders, ";"), hexSHA256(nil), tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("signature = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCanonicalURI(t *testing.T) {
	tests := map[string]string{
		"":                     "/",
		"/":                    "/",
		"/v1/p/images":         "/v1/p/images/",
		"/v1/p/images/":        "/v1/p/images/",
		"/a%20b/c~d":           "/a%20b/c~d/",
		"/a%2Fb/c":             "/a%2Fb/c/",
		"/caf%c3%a9":           "/caf%C3%A9/",
		"/x:y@z":               "/x%3Ay%40z/",
		"/v1/p/images/a+b%2bc": "/v1/p/images/a%2Bb%2Bc/",
	}
	for in, want := range tests {
		if got := canonicalURI(in); got != want {
			t.Errorf("canonicalURI(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := map[string]string{
		"":                    "",
		"b=2&a=1":             "a=1&b=2",
		"a=2&a=1":             "a=1&a=2",
		"name=a+b&x=%2F":      "name=a%20b&x=%2F",
		"flag":                "flag=",
		"k%7E=v~&%C3%A9=%C3%": "",
	}
	for in, want := range tests {
		got, err := canonicalQuery(in)
		if strings.HasSuffix(in, "%C3%") {
			if err == nil {
				t.Errorf("canonicalQuery(%q) accepted a bad escape: %q", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("canonicalQuery(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseAuthorization(t *testing.T) {
	a, err := parseAuthorization("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature=abc")
	if err != nil {
		t.Fatal(err)
	}
	if a.access != "AK" || strings.Join(a.signedHeaders, ";") != "host;x-sdk-date" || a.signature != "abc" {
		t.Errorf("parsed %+v", a)
	}
	for _, bad := range []string{
		"",
		"Bearer xyz",
		"SDK-HMAC-SHA256 Access=AK, Signature=abc",
		"SDK-HMAC-SHA256 Access=AK SignedHeaders=host Signature=abc",
		"AWS4-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=abc",
	} {
		if _, err := parseAuthorization(bad); err == nil {
			t.Errorf("parseAuthorization(%q) accepted it", bad)
		}
	}
}
