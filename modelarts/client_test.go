// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
)

// TestShowImageRequest checks what goes on the wire, and that the signature
// verifies against the request as the server received it.
func TestShowImageRequest(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wantPath := "/prefix/v1/" + testProjectID + "/images/" + testImageID
		switch {
		case r.Method != http.MethodGet || r.URL.Path != wantPath || r.URL.RawQuery != "":
			t.Errorf("request = %s %s, want GET %s", r.Method, r.URL, wantPath)
		case r.Header.Get("Content-Type") != "application/json":
			t.Errorf("Content-Type = %q", r.Header.Get("Content-Type"))
		case r.Header.Get("X-Project-Id") != testProjectID:
			t.Errorf("X-Project-Id = %q", r.Header.Get("X-Project-Id"))
		case r.Header.Get("User-Agent") != "modelarts_exporter/test":
			t.Errorf("User-Agent = %q", r.Header.Get("User-Agent"))
		case r.Header.Get("X-Sdk-Date") != "20240309T060503Z":
			t.Errorf("X-Sdk-Date = %q", r.Header.Get("X-Sdk-Date"))
		}
		verifySignature(t, r, testAK, testSK, "content-type;host;x-project-id;x-sdk-date")
		writeJSON(w, http.StatusOK, showImageExample)
	})
	clock := newFakeClock(time.Date(2024, 3, 9, 6, 5, 3, 0, time.UTC))
	c, _ := newAKSKClient(t, handler, func(cfg *Config) {
		cfg.Endpoint += "/prefix/"
		cfg.now = clock.Now
	})
	img, err := c.ShowImage(context.Background(), testImageID)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(3376133259)
	want := &Image{
		ID: testImageID, Name: "pytorch1.8-cuda10.2-cudnn7-ubuntu18.04", Arch: "x86_64", Type: "BUILD_IN",
		Status: "ACTIVE", Description: "CPU and GPU general algorithm development and training, preconfigured with AI engine PyTorch1.8",
		ServiceType: "COMMON", SWRPath: "swr.xxx.com/atelier/pytorch_1_8:pytorch_1.8.0-cuda_10.2",
		Tag: "pytorch_1.8.0-cuda_10.2", WorkspaceID: "0", DevServices: []string{"NOTEBOOK", "SSH"},
		ResourceCategories: []string{"GPU", "CPU"}, Size: &size, CreateAt: 1638234504492, UpdateAt: 1638234504493,
	}
	if !reflect.DeepEqual(img, want) {
		t.Errorf("image = %+v\nwant    %+v", img, want)
	}
}

// verifySignature recomputes the SDK-HMAC-SHA256 signature of r on the
// server side.
func verifySignature(t *testing.T, r *http.Request, ak, sk, wantSigned string) {
	t.Helper()
	auth := r.Header.Get("Authorization")
	prefix := "SDK-HMAC-SHA256 Access=" + ak + ", SignedHeaders=" + wantSigned + ", Signature="
	if !strings.HasPrefix(auth, prefix) {
		t.Errorf("Authorization = %q, want prefix %q", auth, prefix)
		return
	}
	canonical := canonicalRequest(r, strings.Split(wantSigned, ";"), emptyBodySHA256)
	want := signature(sk, r.Header.Get("X-Sdk-Date"), canonical)
	if got := strings.TrimPrefix(auth, prefix); got != want {
		t.Errorf("signature = %s, server computes %s over\n%s", got, want, canonical)
	}
}

// TestStatusClasses maps every documented answer to its error class.
func TestStatusClasses(t *testing.T) {
	longText := strings.Repeat("busy ", 500)
	tests := []struct {
		name          string
		status        int
		header        map[string]string
		body          string
		wantClass     error
		wantCode      string
		wantMessage   string
		wantRequestID string
	}{
		{
			name: "404", status: 404,
			body:      `{"error_code":"ModelArts.6404","error_msg":"Image not found."}`,
			wantClass: ErrNotFound, wantCode: "ModelArts.6404", wantMessage: "Image not found.",
		},
		{
			name: "404 without body is the gateway's", status: 404,
			wantClass: ErrEndpoint,
		},
		{
			name: "404 APIG.0101 is the gateway's", status: 404,
			body:      `{"error_code":"APIG.0101","error_msg":"The API does not exist or has not been published in the environment","request_id":"gw-404"}`,
			wantClass: ErrEndpoint, wantCode: "APIG.0101", wantRequestID: "gw-404",
			wantMessage: "The API does not exist or has not been published in the environment",
		},
		{
			name: "404 HTML page", status: 404,
			body:      `<html><head><title>404 Not Found</title></head></html>`,
			wantClass: ErrEndpoint, wantMessage: "404 Not Found",
		},
		{
			name: "400 with ModelArts.6400 is the end of the listing", status: 400,
			body:      `{"error_code":"ModelArts.6400","error_msg":"Invalid request payload fromIndex(200), please check."}`,
			wantClass: ErrEndOfList, wantCode: "ModelArts.6400", wantMessage: "Invalid request payload fromIndex(200), please check.",
		},
		{
			name: "400 with ModelArts.6404 is not found", status: 400,
			body:      `{"error_code":"ModelArts.6404","error_msg":"Image 278e88d1 not found."}`,
			wantClass: ErrNotFound, wantCode: "ModelArts.6404", wantMessage: "Image 278e88d1 not found.",
		},
		{
			name: "400 with ModelArts.6797 is not found", status: 400,
			body:      `{"error_code":"ModelArts.6797","error_msg":"Specified image 278e88d1 cannot be found."}`,
			wantClass: ErrNotFound, wantCode: "ModelArts.6797", wantMessage: "Specified image 278e88d1 cannot be found.",
		},
		{
			name: "400 with another code", status: 400,
			body:      `{"error_code":"ModelArts.0101","error_msg":"Invalid parameter."}`,
			wantClass: ErrUnexpectedStatus, wantCode: "ModelArts.0101", wantMessage: "Invalid parameter.",
		},
		{
			name: "401 token expired", status: 401,
			body:      `{"error_code":"ModelArts.0202","error_msg":"Token expired."}`,
			wantClass: ErrUnauthorized, wantCode: "ModelArts.0202", wantMessage: "Token expired.",
		},
		{
			name: "401 signature failed from the gateway", status: 401,
			body:      `{"error_code":"APIG.0301","error_msg":"Incorrect IAM authentication information: verify aksk signature fail","request_id":"gw-req-1"}`,
			wantClass: ErrUnauthorized, wantCode: "APIG.0301",
			wantMessage: "Incorrect IAM authentication information: verify aksk signature fail", wantRequestID: "gw-req-1",
		},
		{
			name: "403 project mismatch", status: 403,
			body:      `{"error_code":"ModelArts.0210","error_msg":"The project ID in the URL does not match the token."}`,
			wantClass: ErrForbidden, wantCode: "ModelArts.0210", wantMessage: "The project ID in the URL does not match the token.",
		},
		{
			name: "403 no permission", status: 403,
			body:      `{"error_code":"ModelArts.0108","error_msg":"No permission."}`,
			wantClass: ErrForbidden, wantCode: "ModelArts.0108", wantMessage: "No permission.",
		},
		{
			name: "429 gateway throttling, request id from the body", status: 429,
			body:      `{"error_code":"APIG.0308","error_msg":"The throttling threshold has been reached","request_id":"body-req"}`,
			wantClass: ErrThrottled, wantCode: "APIG.0308", wantMessage: "The throttling threshold has been reached",
			wantRequestID: "body-req",
		},
		{
			name: "429 system busy, header request id wins", status: 429,
			header:    map[string]string{"X-Request-Id": "hdr-req"},
			body:      `{"error_code":"ModelArts.2799","error_msg":"System busy.","request_id":"body-req"}`,
			wantClass: ErrThrottled, wantCode: "ModelArts.2799", wantMessage: "System busy.", wantRequestID: "hdr-req",
		},
		{
			name: "500", status: 500,
			body:      `{"error_code":"ModelArts.0001","error_msg":"Internal error.\n\tRetry later."}`,
			wantClass: ErrServer, wantCode: "ModelArts.0001", wantMessage: "Internal error. Retry later.",
		},
		{
			name: "502 HTML page from a gateway", status: 502,
			header: map[string]string{"Content-Type": "text/html"},
			body: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n" +
				strings.Repeat("<!-- padding -->\r\n", 100) + "</body>\r\n</html>\r\n",
			wantClass: ErrServer, wantMessage: "502 Bad Gateway",
		},
		{
			name: "503 long plain text is cut", status: 503,
			header:    map[string]string{"Content-Type": "text/plain"},
			body:      longText,
			wantClass: ErrServer, wantMessage: strings.TrimSpace(longText[:197]) + "...",
		},
		{
			name: "302 is not followed", status: 302,
			header:    map[string]string{"Location": "https://elsewhere.example.com/"},
			wantClass: ErrUnexpectedStatus,
		},
		{
			name: "204", status: 204,
			wantClass: ErrUnexpectedStatus,
		},
		{
			name: "418", status: 418,
			body:      `{"error_code":"X.1","error_msg":"teapot"}`,
			wantClass: ErrUnexpectedStatus, wantCode: "X.1", wantMessage: "teapot",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			c, srv := newAKSKClient(t, handler, nil)
			img, err := c.ShowImage(context.Background(), testImageID)
			if img != nil {
				t.Errorf("image = %+v, want nil", img)
			}
			if !errors.Is(err, tt.wantClass) {
				t.Fatalf("err = %v, want class %v", err, tt.wantClass)
			}
			apiErr := AsAPIError(err)
			if apiErr == nil {
				t.Fatalf("err = %v is no *APIError", err)
			}
			want := APIError{
				Operation: "ShowImage", StatusCode: tt.status, ErrorCode: tt.wantCode,
				Message: tt.wantMessage, RequestID: tt.wantRequestID, Class: tt.wantClass,
				URL: srv.URL + "/v1/" + testProjectID + "/images/" + testImageID,
			}
			if *apiErr != want {
				t.Errorf("APIError = %#v\nwant       %#v", *apiErr, want)
			}
			if len([]rune(apiErr.Message)) > 200 || strings.ContainsAny(apiErr.Message, "<>\n") {
				t.Errorf("Message is not short and clean: %q", apiErr.Message)
			}
			if !strings.HasPrefix(err.Error(), "show image "+testImageID+": ShowImage: ") {
				t.Errorf("err text = %q, want the operation context first", err)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("%d requests, want exactly 1 (no retries)", n)
			}
			assertNoSecrets(t, err)
		})
	}
}

func TestErrorText(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-42")
		writeJSON(w, 400, `{"error_code":"ModelArts.6404","error_msg":"Image not found."}`)
	})
	c, _ := newAKSKClient(t, handler, nil)
	_, err := c.ShowImage(context.Background(), testImageID)
	want := `show image ` + testImageID + `: ShowImage: not found (HTTP 400 ModelArts.6404 "Image not found.") request_id=req-42`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
}

// TestDecoding covers the 200 answers: documented, extended, odd and broken.
func TestDecoding(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		maxBody     int64
		wantErrText string // empty: success
		check       func(*testing.T, *Image)
	}{
		{
			name: "unknown fields are ignored",
			body: `{"id":"x","status":"ACTIVE","size":12,"brand_new":{"nested":[1,2,3]},"tags":null}`,
			check: func(t *testing.T, img *Image) {
				if img.ID != "x" || img.Status != "ACTIVE" || img.Size == nil || *img.Size != 12 {
					t.Errorf("image = %+v", img)
				}
			},
		},
		{
			name: "missing size stays nil",
			body: `{"id":"x","status":"ACTIVE","type":"BUILD_IN"}`,
			check: func(t *testing.T, img *Image) {
				if img.Size != nil {
					t.Errorf("Size = %d, want nil", *img.Size)
				}
			},
		},
		{
			name: "size null stays nil",
			body: `{"id":"x","status":"ACTIVE","size":null}`,
			check: func(t *testing.T, img *Image) {
				if img.Size != nil {
					t.Errorf("Size = %d, want nil", *img.Size)
				}
			},
		},
		{
			name: "enum values in another case are kept",
			body: `{"id":"x","status":"active","arch":"aarch64","type":"SOMETHING_NEW"}`,
			check: func(t *testing.T, img *Image) {
				if img.Status != "active" || img.Arch != "aarch64" || img.Type != "SOMETHING_NEW" {
					t.Errorf("image = %+v", img)
				}
			},
		},
		{name: "size as a string", body: `{"id":"x","size":"3376133259"}`, wantErrText: "Image.size of type int64"},
		{name: "create_at as a string", body: `{"id":"x","create_at":"1638234504492"}`, wantErrText: "cannot unmarshal"},
		{name: "truncated JSON", body: `{"id":"x","status":"ACT`, wantErrText: "unexpected end of JSON input"},
		{name: "garbage", body: `<html>oops</html>`, wantErrText: "invalid character"},
		{name: "empty body", body: ``, wantErrText: "unexpected end of JSON input"},
		{name: "array instead of object", body: `[]`, wantErrText: "cannot unmarshal array"},
		{
			name: "body over the cap", body: `{"id":"x","description":"` + strings.Repeat("a", 2000) + `"}`,
			maxBody: 1024, wantErrText: "response body exceeds 1024 bytes",
		},
		{
			name: "body at the cap", body: `{"id":"x","status":"ACTIVE","description":"` + strings.Repeat("a", 1024-45) + `"}`,
			maxBody: 1024,
			check: func(t *testing.T, img *Image) {
				if len(img.Description) != 1024-45 {
					t.Errorf("description has %d bytes", len(img.Description))
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, http.StatusOK, tt.body)
			})
			c, _ := newAKSKClient(t, handler, func(cfg *Config) { cfg.maxBodyBytes = tt.maxBody })
			img, err := c.ShowImage(context.Background(), "x")
			if tt.wantErrText == "" {
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, img)
				return
			}
			if !errors.Is(err, ErrMalformedResponse) || !strings.Contains(err.Error(), tt.wantErrText) {
				t.Fatalf("err = %v, want ErrMalformedResponse with %q", err, tt.wantErrText)
			}
			if apiErr := AsAPIError(err); apiErr == nil || apiErr.StatusCode != 200 || apiErr.Operation != "ShowImage" {
				t.Errorf("APIError = %#v", apiErr)
			}
		})
	}
}

// TestBodyCaps: a ShowImage answer (about 1 KB) is capped at 1 MiB, a
// ListImage page at 8 MiB; a non-zero Config.MaxBodyBytes caps both.
func TestBodyCaps(t *testing.T) {
	tests := []struct {
		name    string
		list    bool
		size    int
		maxBody int64
		wantErr string // "" for success
	}{
		{name: "ShowImage at its cap", size: 1 << 20},
		{name: "ShowImage over its cap", size: 1<<20 + 1, wantErr: "response body exceeds 1048576 bytes"},
		{name: "ListImage page over the ShowImage cap", list: true, size: 4 << 20},
		{name: "ListImage at its cap", list: true, size: 8 << 20},
		{name: "ListImage over its cap", list: true, size: 8<<20 + 1, wantErr: "response body exceeds 8388608 bytes"},
		{name: "ShowImage within MaxBodyBytes", size: 2 << 20, maxBody: 2 << 20},
		{name: "ListImage over MaxBodyBytes", list: true, size: 2<<20 + 1, maxBody: 2 << 20, wantErr: "response body exceeds 2097152 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const head, tail = `{"id":"x","status":"ACTIVE","data":[],"x_padding":"`, `"}`
			body := head + strings.Repeat("a", tt.size-len(head)-len(tail)) + tail
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, http.StatusOK, body)
			})
			c, _ := newAKSKClient(t, handler, func(cfg *Config) { cfg.maxBodyBytes = tt.maxBody })
			var err error
			if tt.list {
				_, err = c.ListImages(context.Background(), ListOptions{})
			} else {
				_, err = c.ShowImage(context.Background(), "x")
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (!errors.Is(err, ErrMalformedResponse) || !strings.Contains(fmt.Sprint(err), tt.wantErr)):
				t.Fatalf("err = %v, want ErrMalformedResponse with %q", err, tt.wantErr)
			}
		})
	}
}

// TestTruncatedBody: the connection closes before Content-Length bytes arrived.
func TestTruncatedBody(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"id":"x","status":`))
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})
	c, _ := newAKSKClient(t, handler, nil)
	_, err := c.ShowImage(context.Background(), "x")
	if !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("err = %v, want ErrMalformedResponse", err)
	}
}

func TestListImages(t *testing.T) {
	tests := []struct {
		name      string
		opts      ListOptions
		wantQuery url.Values
	}{
		{name: "no options", opts: ListOptions{}, wantQuery: url.Values{}},
		{
			name: "every option",
			opts: ListOptions{
				Limit: 50, Offset: 100, Name: "py torch", Namespace: "atelier",
				ServiceType: "COMMON", Type: "DEDICATED", WorkspaceID: "0",
			},
			wantQuery: url.Values{
				"limit": {"50"}, "offset": {"100"}, "name": {"py torch"}, "namespace": {"atelier"},
				"service_type": {"COMMON"}, "type": {"DEDICATED"}, "workspace_id": {"0"},
			},
		},
		{
			name: "some options", opts: ListOptions{Type: "BUILD_IN", Limit: 200},
			wantQuery: url.Values{"limit": {"200"}, "type": {"BUILD_IN"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/"+testProjectID+"/images" {
					t.Errorf("path = %s", r.URL.Path)
				}
				if got := r.URL.Query(); !reflect.DeepEqual(got, tt.wantQuery) {
					t.Errorf("query = %v, want %v", got, tt.wantQuery)
				}
				verifySignature(t, r, testAK, testSK, "content-type;host;x-project-id;x-sdk-date")
				writeJSON(w, http.StatusOK, `{"current":0,"pages":3,"size":1,"total":3,"data":[`+showImageExample+`],"extra":true}`)
			})
			c, _ := newAKSKClient(t, handler, nil)
			list, err := c.ListImages(context.Background(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if list.Total != 3 || list.Pages != 3 || list.Size != 1 || len(list.Data) != 1 || list.Data[0].ID != testImageID {
				t.Errorf("list = %+v", list)
			}
		})
	}
}

// TestListImagesKeepsTheGoodElements: an element of data that does not
// decode, or lacks id or status, goes to Invalid, with its id (lower-cased)
// when that can be read, and an error naming the field and the page's
// request id; the other elements come as usual, their ids lower-cased. A
// page that decodes cleanly takes the one-pass path, one with an
// undecodable element the per-element one: both sort alike.
func TestListImagesKeepsTheGoodElements(t *testing.T) {
	const prefix = "ListImage: malformed response (HTTP 200) request_id=req-1: "
	tests := []struct {
		name        string
		data        string
		wantData    []string
		wantInvalid [][2]string // id, error text after prefix
	}{
		{
			name:     "clean page",
			data:     `{"id":"A","status":"ACTIVE"},{"status":"ACTIVE"},{"id":"C"},{"id":"d","status":""},{"id":"E","status":"active"}`,
			wantData: []string{"a", "e"},
			wantInvalid: [][2]string{
				{"", "data[1] has no id"}, {"c", "data[2] has no status"}, {"d", "data[3] has no status"},
			},
		},
		{
			name:     "page with undecodable elements",
			data:     `{"id":"a","status":"ACTIVE"},{"id":"B","size":"12"},{"id":7},{"status":"ACTIVE"},{"id":"E"},{"id":"F","status":"ACTIVE","size":3}`,
			wantData: []string{"a", "f"},
			wantInvalid: [][2]string{
				{"b", "decode data[1]: json: cannot unmarshal string into Go struct field Image.size of type int64"},
				{"", "decode data[2]: json: cannot unmarshal number into Go struct field Image.id of type string"},
				{"", "data[3] has no id"},
				{"e", "data[4] has no status"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Request-Id", "req-1")
				writeJSON(w, http.StatusOK, `{"total":9,"data":[`+tt.data+`]}`)
			})
			c, _ := newAKSKClient(t, handler, nil)
			list, err := c.ListImages(context.Background(), ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, img := range list.Data {
				ids = append(ids, img.ID)
			}
			if !reflect.DeepEqual(ids, tt.wantData) || list.Total != 9 || list.Records() != len(tt.wantData)+len(tt.wantInvalid) {
				t.Errorf("data ids = %v, want %v; %d records, total %d", ids, tt.wantData, list.Records(), list.Total)
			}
			if len(list.Invalid) != len(tt.wantInvalid) {
				t.Fatalf("invalid = %+v", list.Invalid)
			}
			for i, w := range tt.wantInvalid {
				got := list.Invalid[i]
				if got.ID != w[0] || !errors.Is(got.Err, ErrMalformedResponse) || got.Err.Error() != prefix+w[1] {
					t.Errorf("invalid[%d] = %q, %v\nwant %q, %s", i, got.ID, got.Err, w[0], prefix+w[1])
				}
			}
		})
	}
}

func TestListImagesErrorContext(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 429, `{"error_code":"APIG.0308","error_msg":"The throttling threshold has been reached"}`)
	})
	c, _ := newAKSKClient(t, handler, nil)
	_, err := c.ListImages(context.Background(), ListOptions{})
	if !errors.Is(err, ErrThrottled) || !strings.HasPrefix(err.Error(), "list images: ListImage: throttled (HTTP 429") {
		t.Errorf("err = %v", err)
	}
}

// TestUnreachable: no HTTP answer at all.
func TestUnreachable(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		c := NewClient(Config{
			Endpoint: "http://" + addr, ProjectID: testProjectID,
			Credentials: Credentials{AccessKey: testAK, SecretKey: testSK},
		})
		_, err = c.ShowImage(context.Background(), testImageID)
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
		var opErr *net.OpError
		if !errors.As(err, &opErr) {
			t.Errorf("err = %v does not keep the network error", err)
		}
		assertNoSecrets(t, err)
	})

	t.Run("context deadline", func(t *testing.T) {
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		})
		c, _ := newAKSKClient(t, handler, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := c.ShowImage(ctx, testImageID)
		if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrUnreachable and context.DeadlineExceeded", err)
		}
	})

	t.Run("deadline while reading the body", func(t *testing.T) {
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"id":`))
			_ = http.NewResponseController(w).Flush()
			<-r.Context().Done()
		})
		c, _ := newAKSKClient(t, handler, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := c.ShowImage(ctx, testImageID)
		if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrUnreachable and context.DeadlineExceeded", err)
		}
	})
}

// TestAKSKUnauthorizedIsNotRetried: an AK/SK pair is locked after five bad
// signatures, so a 401 must cost exactly one request.
func TestAKSKUnauthorizedIsNotRetried(t *testing.T) {
	var calls atomic.Int32
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("X-Security-Token") != "sts" {
			t.Errorf("X-Security-Token = %q", r.Header.Get("X-Security-Token"))
		}
		verifySignature(t, r, testAK, testSK, "content-type;host;x-project-id;x-sdk-date;x-security-token")
		writeJSON(w, 401, `{"error_code":"APIG.0301","error_msg":"Incorrect IAM authentication information: verify aksk signature fail"}`)
	})
	c, _ := newAKSKClient(t, handler, func(cfg *Config) { cfg.Credentials.SecurityToken = "sts" })
	_, err := c.ShowImage(context.Background(), testImageID)
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d requests, want exactly 1", n)
	}
	if strings.Contains(err.Error(), "sts") && strings.Contains(err.Error(), "X-Security") {
		t.Errorf("err = %v", err)
	}
	assertNoSecrets(t, err)
}

func TestObserverAKSK(t *testing.T) {
	statuses := []int{200, 404, 500}
	var i atomic.Int32
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, statuses[i.Add(1)-1], `{}`)
	})
	obs := &recordingObserver{}
	c, srv := newAKSKClient(t, handler, func(cfg *Config) { cfg.Observer = obs })
	_, _ = c.ShowImage(context.Background(), "a")
	_, _ = c.ShowImage(context.Background(), "b")
	_, _ = c.ListImages(context.Background(), ListOptions{})

	// Never sent: not observed.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = c.ShowImage(ctx, "c")

	// Sent, no answer: status 0.
	srv.Close()
	_, _ = c.ShowImage(context.Background(), "d")

	want := []observation{{"ShowImage", 200}, {"ShowImage", 404}, {"ListImage", 500}, {"ShowImage", 0}}
	if got := obs.observations(); !reflect.DeepEqual(got, want) {
		t.Errorf("observations = %v, want %v", got, want)
	}
}

// TestProjectLookupAKSK: without a configured project id, AK/SK clients ask
// IAM once for the project named after the region.
func TestProjectLookupAKSK(t *testing.T) {
	var iamCalls, apiCalls atomic.Int32
	iam := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iamCalls.Add(1)
		if r.URL.Path != "/v3/projects" || r.URL.Query().Get("name") != "eu-de" {
			t.Errorf("IAM request = %s", r.URL)
		}
		verifySignature(t, r, testAK, testSK, "content-type;host;x-sdk-date")
		writeJSON(w, 200, `{"projects":[{"id":"other","name":"eu-de_sub"},{"id":"`+testProjectID+`","name":"eu-de","enabled":true}],"links":{}}`)
	})
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiCalls.Add(1)
		if r.URL.Path != "/v1/"+testProjectID+"/images/x" || r.Header.Get("X-Project-Id") != testProjectID {
			t.Errorf("API request = %s with X-Project-Id %q", r.URL, r.Header.Get("X-Project-Id"))
		}
		writeJSON(w, 200, `{"id":"x","status":"ACTIVE"}`)
	})
	iamSrv, obs := startServer(t, iam), &recordingObserver{}
	c, _ := newAKSKClient(t, api, func(cfg *Config) {
		cfg.ProjectID = ""
		cfg.Region = "eu-de"
		cfg.IAMEndpoint = iamSrv + "/v3/"
		cfg.Observer = obs
	})
	for range 3 {
		if _, err := c.ShowImage(context.Background(), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if id, err := c.resolveProjectID(context.Background()); err != nil || id != testProjectID {
		t.Errorf("ProjectID = %q, %v", id, err)
	}
	if iamCalls.Load() != 1 || apiCalls.Load() != 3 {
		t.Errorf("IAM calls = %d (want 1), API calls = %d (want 3)", iamCalls.Load(), apiCalls.Load())
	}
	if got := obs.observations()[0]; got != (observation{"ListProjects", 200}) {
		t.Errorf("first observation = %v", got)
	}
}

// TestProjectLookupNotFound: IAM lists no project named after the region. That
// is a configuration problem (ErrNoProject), not a missing image: the error
// must not read as ErrNotFound, and it names the region and the fix.
func TestProjectLookupNotFound(t *testing.T) {
	var iamCalls atomic.Int32
	iam := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iamCalls.Add(1)
		writeJSON(w, 200, `{"projects":[]}`)
	})
	iamSrv := startServer(t, iam)
	clock := newFakeClock(time.Date(2024, 3, 9, 6, 0, 0, 0, time.UTC))
	c, _ := newAKSKClient(t, http.NotFoundHandler(), func(cfg *Config) {
		cfg.ProjectID, cfg.Region, cfg.IAMEndpoint, cfg.now = "", "eu-nl", iamSrv, clock.Now
	})
	for range 2 {
		_, err := c.ShowImage(context.Background(), "x")
		want := `show image x: resolve project id: ListProjects: no project for the region: IAM lists no project named "eu-nl" for these credentials; set project_id or check region`
		if !errors.Is(err, ErrNoProject) || errors.Is(err, ErrNotFound) || err.Error() != want {
			t.Fatalf("err = %v\nwant  %s", err, want)
		}
		if apiErr := AsAPIError(err); apiErr == nil || !apiErr.FromIAM() {
			t.Errorf("AsAPIError(err) = %v, want an IAM error", apiErr)
		}
	}
	if n := iamCalls.Load(); n != 1 {
		t.Errorf("%d IAM calls within the retry interval, want 1", n)
	}
	clock.Advance(renewRetryInterval)
	_, _ = c.ShowImage(context.Background(), "x")
	if n := iamCalls.Load(); n != 2 {
		t.Errorf("%d IAM calls after the retry interval, want 2", n)
	}
}

// TestNewClientPicksCredentials: NewClient takes the configuration as config
// validates it, picks the kind of credentials and trims the endpoints.
func TestNewClientPicksCredentials(t *testing.T) {
	tests := []struct {
		name      string
		creds     Credentials
		wantKind  string // "password", "metadata" or "keys"
		wantIAM   string // the token URL, for password auth
		wantLocal string // the metadata endpoint
	}{
		{name: "AK/SK", creds: Credentials{AccessKey: testAK, SecretKey: testSK}, wantKind: "keys"},
		{name: "secret key file", creds: Credentials{AccessKey: testAK, SecretKeyFile: "f"}, wantKind: "keys"},
		{name: "password", creds: Credentials{DomainName: "d", Username: "u", Password: testPassword}, wantKind: "password",
			wantIAM: "https://iam.example.com/v3/auth/tokens"},
		{name: "password file", creds: Credentials{DomainName: "d", Username: "u", PasswordFile: "f"}, wantKind: "password",
			wantIAM: "https://iam.example.com/v3/auth/tokens"},
		{name: "metadata", creds: Credentials{MetadataEndpoint: "http://169.254.169.254/"}, wantKind: "metadata",
			wantLocal: "http://169.254.169.254"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(Config{Endpoint: "https://m.example.com/", IAMEndpoint: "https://iam.example.com/v3/", Region: "eu-de", Credentials: tt.creds})
			kind, iam, local := "keys", "", ""
			switch {
			case c.tokens != nil:
				kind, iam = "password", c.tokens.id.iamURL
			case c.api.client.Transport.(*signingRoundTripper).metadata != nil:
				kind, local = "metadata", c.api.client.Transport.(*signingRoundTripper).metadata.endpoint
			}
			if kind != tt.wantKind || iam != tt.wantIAM || local != tt.wantLocal {
				t.Errorf("kind %s, token URL %q, metadata endpoint %q; want %s, %q, %q", kind, iam, local, tt.wantKind, tt.wantIAM, tt.wantLocal)
			}
			if c.endpoint != "https://m.example.com" || c.projectsURL != "https://iam.example.com/v3/projects?name=eu-de" {
				t.Errorf("endpoint %q, projects URL %q", c.endpoint, c.projectsURL)
			}
		})
	}
}

// TestDefaultHTTPClient: without Config.HTTPClient the client pools enough
// connections per host and leaves the deadline to the caller's context.
func TestDefaultHTTPClient(t *testing.T) {
	c := NewClient(Config{Endpoint: "https://m.example.com", ProjectID: "p", Credentials: Credentials{AccessKey: "a", SecretKey: "s"}})
	if c.api.client.Timeout != 0 {
		t.Errorf("Timeout = %v, want none", c.api.client.Timeout)
	}
	signing, ok := c.api.client.Transport.(*signingRoundTripper)
	if !ok {
		t.Fatalf("transport = %T", c.api.client.Transport)
	}
	base := signing.next.(*observingRoundTripper).next.(*http.Transport)
	if base.MaxIdleConnsPerHost != 64 || base == http.DefaultTransport {
		t.Errorf("base transport: MaxIdleConnsPerHost = %d, shared with DefaultTransport: %v",
			base.MaxIdleConnsPerHost, base == http.DefaultTransport)
	}
}

// TestCustomHTTPClient: the caller's transport is used and its client left alone.
func TestCustomHTTPClient(t *testing.T) {
	var used atomic.Bool
	custom := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Store(true)
		return http.DefaultTransport.RoundTrip(r)
	})}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, `{"id":"x","status":"ACTIVE"}`) })
	c, _ := newAKSKClient(t, handler, func(cfg *Config) { cfg.HTTPClient = custom })
	if _, err := c.ShowImage(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if !used.Load() {
		t.Error("the configured transport was not used")
	}
	if _, ok := custom.Transport.(roundTripFunc); !ok || custom.CheckRedirect != nil {
		t.Error("the configured client was modified")
	}
}

func TestShowImageEmptyID(t *testing.T) {
	var calls atomic.Int32
	c, _ := newAKSKClient(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }), nil)
	_, err := c.ShowImage(context.Background(), "")
	if !errors.Is(err, ErrNotFound) || calls.Load() != 0 {
		t.Errorf("err = %v after %d requests", err, calls.Load())
	}
}

func TestShowImageEscapesID(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if want := "/v1/" + testProjectID + "/images/a%2Fb%3Fc"; r.URL.EscapedPath() != want || r.URL.RawQuery != "" {
			t.Errorf("path = %s ? %s, want %s", r.URL.EscapedPath(), r.URL.RawQuery, want)
		}
		verifySignature(t, r, testAK, testSK, "content-type;host;x-project-id;x-sdk-date")
		writeJSON(w, 404, `{"error_code":"ModelArts.6404","error_msg":"not found"}`)
	})
	c, _ := newAKSKClient(t, handler, nil)
	if _, err := c.ShowImage(context.Background(), "a/b?c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("err = %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// startServer starts h (an extra server such as IAM) for the test and returns its URL.
func startServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSecretsNotPrinted: printing credentials, a configuration or a signer,
// in any verb, shows no secret.
func TestSecretsNotPrinted(t *testing.T) {
	creds := Credentials{AccessKey: testAK, SecretKey: testSK, SecurityToken: testPassword, DomainName: "d", Username: "u", Password: testPassword}
	values := []any{
		creds, &creds,
		Config{Endpoint: "https://m.example.com", Credentials: creds}, &Config{Credentials: creds},
		Signer{AccessKey: testAK, SecretKey: testSK, SecurityToken: testPassword}, &Signer{AccessKey: testAK, SecretKey: testSK},
	}
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			text := fmt.Sprintf(verb, v)
			if strings.Contains(text, testSK) || strings.Contains(text, testPassword) {
				t.Errorf("%s of %T shows a secret: %s", verb, v, text)
			}
			if !strings.Contains(text, testAK) && !strings.Contains(text, "m.example.com") && !strings.Contains(text, "<secret>") {
				t.Errorf("%s of %T shows nothing useful: %s", verb, v, text)
			}
		}
	}
	var logged bytes.Buffer // loggers that look for a String method, not Format
	_ = log.NewJSONLogger(&logged).Log("creds", creds, "signer", values[4])
	_ = log.NewLogfmtLogger(&logged).Log("creds", creds, "signer", values[4])
	if text := logged.String(); strings.Contains(text, testSK) || strings.Contains(text, testPassword) || strings.Count(text, testAK) != 4 {
		t.Errorf("logged credentials show a secret, or not the access key: %s", text)
	}
}

// TestDoneContextSendsNothing: a call whose context is already done (the
// scrape's deadline passed, Prometheus went away) sends no request, to
// ModelArts or IAM, and the Observer hears of none: a request never sent is
// not a failed request. The error is ErrUnreachable and keeps the context's.
func TestDoneContextSendsNothing(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{name: "AK/SK, configured project id"},
		{name: "AK/SK, project id looked up", mutate: func(cfg *Config) { cfg.ProjectID, cfg.Region = "", "eu-de" }},
		{name: "password token", mutate: func(cfg *Config) {
			cfg.Credentials = Credentials{DomainName: "dom", Username: "user", Password: testPassword}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				w.WriteHeader(http.StatusInternalServerError)
			}))
			t.Cleanup(srv.Close)
			obs := &recordingObserver{}
			cfg := Config{
				Endpoint: srv.URL, IAMEndpoint: srv.URL, ProjectID: testProjectID,
				Credentials: Credentials{AccessKey: testAK, SecretKey: testSK},
				Observer:    obs,
			}
			if tt.mutate != nil {
				tt.mutate(&cfg)
			}
			c := NewClient(cfg)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			for _, call := range []func() error{
				func() error { _, err := c.ShowImage(ctx, "x"); return err },
				func() error { _, err := c.ListImages(ctx, ListOptions{}); return err },
			} {
				err := call()
				if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.Canceled) {
					t.Errorf("err = %v, want ErrUnreachable wrapping context.Canceled", err)
				}
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("%d requests reached the server", n)
			}
			if seen := obs.observations(); len(seen) != 0 {
				t.Errorf("observer saw %v for requests never sent", seen)
			}
		})
	}
}
