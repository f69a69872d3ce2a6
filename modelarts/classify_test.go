// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestShowImageBelievesNoBad200: a 200 answer about another image, or
// without id or status, is a malformed response with the request id; the id
// is compared in any case and returned in lower case.
func TestShowImageBelievesNoBad200(t *testing.T) {
	upper := strings.ToUpper(testImageID)
	tests := []struct {
		name      string
		ask       string
		body      string
		wantCause string // "": success
	}{
		{name: "same id in upper case", ask: testImageID, body: `{"id":"` + upper + `","status":"ACTIVE"}`},
		{name: "asked in upper case", ask: upper, body: `{"id":"` + testImageID + `","status":"ACTIVE"}`},
		{
			name: "another image", ask: testImageID, body: `{"id":"00000000-0000-0000-0000-000000000000","status":"ACTIVE"}`,
			wantCause: "answer is about image 00000000-0000-0000-0000-000000000000, not " + testImageID,
		},
		{name: "empty object", ask: testImageID, body: `{}`, wantCause: "answer has no id"},
		{name: "no id", ask: testImageID, body: `{"status":"ACTIVE"}`, wantCause: "answer has no id"},
		{name: "no status", ask: testImageID, body: `{"id":"` + testImageID + `"}`, wantCause: "answer has no status"},
		{name: "empty status", ask: testImageID, body: `{"id":"` + testImageID + `","status":""}`, wantCause: "answer has no status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Request-Id", "req-9")
				writeJSON(w, http.StatusOK, tt.body)
			})
			c, _ := newAKSKClient(t, handler, nil)
			img, err := c.ShowImage(context.Background(), tt.ask)
			if tt.wantCause == "" {
				if err != nil {
					t.Fatal(err)
				}
				if img.ID != testImageID {
					t.Errorf("ID = %q, want %q", img.ID, testImageID)
				}
				return
			}
			apiErr := AsAPIError(err)
			if img != nil || !errors.Is(err, ErrMalformedResponse) || apiErr == nil {
				t.Fatalf("ShowImage = %+v, %v; want ErrMalformedResponse", img, err)
			}
			if apiErr.Operation != OpShowImage || apiErr.StatusCode != 200 || apiErr.RequestID != "req-9" ||
				apiErr.Cause == nil || apiErr.Cause.Error() != tt.wantCause {
				t.Errorf("APIError = %#v, want ShowImage, 200, req-9, cause %q", apiErr, tt.wantCause)
			}
		})
	}
}

// TestEndpointErrors: a 404 from the API gateway (APIG.0101, or without a
// ModelArts error code) means the base URL or the region is wrong: not
// ErrNotFound, and the error names the URL called (without the query) and
// the setting to check.
func TestEndpointErrors(t *testing.T) {
	const apig = `{"error_code":"APIG.0101","error_msg":"The API does not exist or has not been published in the environment"}`
	tests := []struct {
		name     string
		body     string
		call     func(*Client) error
		password bool   // else AK/SK
		wantPath string // of the URL named
		wantText string // after "; check "
	}{
		{
			name: "ShowImage APIG.0101", body: apig,
			call:     func(c *Client) error { _, err := c.ShowImage(context.Background(), testImageID); return err },
			wantPath: "/v1/" + testProjectID + "/images/" + testImageID, wantText: "modelarts_endpoint and region",
		},
		{
			name: "ListImage without body, query left out",
			call: func(c *Client) error {
				_, err := c.ListImages(context.Background(), ListOptions{Limit: 10, Name: "secret-ish name"})
				return err
			},
			wantPath: "/v1/" + testProjectID + "/images", wantText: "modelarts_endpoint and region",
		},
		{
			name: "ListProjects", body: `<html><title>404</title></html>`,
			call:     func(c *Client) error { _, err := c.resolveProjectID(context.Background()); return err },
			wantPath: "/v3/projects", wantText: "iam_endpoint and region",
		},
		{
			name: "CreateToken", password: true,
			call:     func(c *Client) error { _, err := c.ShowImage(context.Background(), testImageID); return err },
			wantPath: "/v3/auth/tokens", wantText: "iam_endpoint and region",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, http.StatusNotFound, tt.body)
			})
			c, srv := newAKSKClient(t, handler, func(cfg *Config) {
				cfg.IAMEndpoint, cfg.Region = "", "eu-de"
				if tt.wantPath == "/v3/projects" {
					cfg.ProjectID = ""
				}
				if tt.password || tt.wantPath == "/v3/projects" {
					cfg.IAMEndpoint = cfg.Endpoint
				}
				if tt.password {
					cfg.Credentials = Credentials{DomainName: "dom", Username: "user", Password: testPassword}
				}
			})
			err := tt.call(c)
			if !errors.Is(err, ErrEndpoint) || errors.Is(err, ErrNotFound) {
				t.Fatalf("err = %v, want ErrEndpoint and not ErrNotFound", err)
			}
			wantURL := srv.URL + tt.wantPath
			if apiErr := AsAPIError(err); apiErr == nil || apiErr.URL != wantURL {
				t.Errorf("APIError = %#v, want URL %s", apiErr, wantURL)
			}
			if want := ": called " + wantURL + "; check " + tt.wantText; !strings.HasSuffix(err.Error(), want) {
				t.Errorf("err = %v\nwant it to end in %q", err, want)
			}
			assertNoSecrets(t, err)
		})
	}
}

// TestRefusalEngagesTheKeyGuard: a 401, or a 403 whose code refuses the
// credentials, is ErrUnauthorized, and then nothing is signed with the key
// for a while (the next call sends nothing); any other 403 (0210 included:
// the project id is wrong) is ErrForbidden, about that resource or project
// only, and the next call is sent.
func TestRefusalEngagesTheKeyGuard(t *testing.T) {
	tests := []struct {
		status    int
		code      string // "": no body
		wantClass error
	}{
		{401, "APIG.0301", ErrUnauthorized},
		{403, "ModelArts.0203", ErrUnauthorized},
		{403, "ModelArts.0206", ErrUnauthorized},
		{403, "ModelArts.2784", ErrUnauthorized},
		{403, "ModelArts.0210", ErrForbidden}, // the project id is wrong, not the key
		{403, "ModelArts.0108", ErrForbidden},
		{403, "ModelArts.0112", ErrForbidden},
		{403, "ModelArts.5014", ErrForbidden},
		{403, "APIG.0201", ErrForbidden},
		{403, "", ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status)+" "+tt.code, func(t *testing.T) {
			var requests atomic.Int32
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				body := ""
				if tt.code != "" {
					body = `{"error_code":"` + tt.code + `","error_msg":"refused"}`
				}
				writeJSON(w, tt.status, body)
			})
			c, _ := newAKSKClient(t, handler, nil)
			_, err := c.ShowImage(context.Background(), testImageID)
			if !errors.Is(err, tt.wantClass) {
				t.Fatalf("first call: err = %v, want %v", err, tt.wantClass)
			}
			if apiErr := AsAPIError(err); apiErr == nil || apiErr.ErrorCode != tt.code || apiErr.StatusCode != tt.status {
				t.Errorf("first call: APIError = %#v", apiErr)
			}
			_, err = c.ListImages(context.Background(), ListOptions{})
			engaged := tt.wantClass == ErrUnauthorized
			switch n := requests.Load(); {
			case engaged && n != 1:
				t.Errorf("%d requests, want 1: the key guard should hold back the second call", n)
			case engaged && (!errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "not sent")):
				t.Errorf("second call: err = %v, want the remembered refusal", err)
			case !engaged && n != 2:
				t.Errorf("%d requests, want 2: a 403 about one resource must not hold back the key", n)
			}
		})
	}
}

// TestQueryIsSentAsSigned: query values go on the wire in the canonical
// form (space as %20, "+", "/", "&", "=" and non-ASCII escaped), so the
// signature, computed over the canonical query, covers exactly the bytes
// sent.
func TestQueryIsSentAsSigned(t *testing.T) {
	opts := ListOptions{Limit: 10, Name: "my image+x/y \u955c\u50cf~", Namespace: "a&b=c", Type: "BUILD_IN"}
	const wantRaw = "limit=10&name=my%20image%2Bx%2Fy%20%E9%95%9C%E5%83%8F~&namespace=a%26b%3Dc&type=BUILD_IN"
	var checked atomic.Bool
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checked.Store(true)
		if r.URL.RawQuery != wantRaw {
			t.Errorf("raw query = %s\nwant        %s", r.URL.RawQuery, wantRaw)
		}
		if got := canonicalQuery(r.URL.Query()); got != r.URL.RawQuery {
			t.Errorf("the signature covers %s, the request sent %s", got, r.URL.RawQuery)
		}
		if r.URL.Query().Get("name") != opts.Name {
			t.Errorf("the server reads name %q, want %q", r.URL.Query().Get("name"), opts.Name)
		}
		verifySignature(t, r, testAK, testSK, "content-type;host;x-project-id;x-sdk-date")
		writeJSON(w, http.StatusOK, `{"total":0,"data":[]}`)
	})
	c, _ := newAKSKClient(t, handler, nil)
	if _, err := c.ListImages(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if !checked.Load() {
		t.Fatal("no request reached the server")
	}
}
