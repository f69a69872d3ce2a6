// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

func TestStatusFaults(t *testing.T) {
	tests := []struct {
		name   string
		fault  Fault
		status int
		code   string
		msg    string
	}{
		{"throttled", Fault{Kind: FaultStatus, Status: 429}, 429, CodeThrottled, MsgThrottled},
		{"system busy", Fault{Kind: FaultStatus, Status: 429, ErrorCode: CodeSystemBusy, ErrorMsg: "System busy."}, 429, CodeSystemBusy, "System busy."},
		{"server error", Fault{Kind: FaultStatus, Status: 500}, 500, CodeInternalError, "Internal Server Error"},
		{"system busy, documented message", Fault{Kind: FaultStatus, Status: 429, ErrorCode: CodeSystemBusy}, 429, CodeSystemBusy, "Excessive number of requests to ShowImage."},
		{"server error", Fault{Kind: FaultStatus, Status: 500}, 500, CodeInternalError, "Internal Server Error"},
		{"unauthorized", Fault{Kind: FaultStatus, Status: 401}, 401, CodeTokenInvalid, "Invalid token."},
		{"bad gateway", Fault{Kind: FaultStatus, Status: 502}, 502, CodeBackendUnavailable, "Backend unavailable"},
		// The 403 rows of opentelekomcloud-docs/modelarts api-ref/source/appendix/error_codes.rst.
		{"forbidden", Fault{Kind: FaultStatus, Status: 403}, 403, CodeProjectMismatch, "The project id in the request URL does not match the token."},
		{"workspace policy", Fault{Kind: FaultStatus, Status: 403, ErrorCode: CodeWorkspacePolicy}, 403, CodeWorkspacePolicy, "Policy doesn't allow ShowImage to be performed."},
		{"policy 401", Fault{Kind: FaultStatus, Status: 401, ErrorCode: CodeWorkspacePolicy}, 401, CodeWorkspacePolicy, "Failed to execute the policy."},
		{"not authorized", Fault{Kind: FaultStatus, Status: 403, ErrorCode: CodeNotAuthorized}, 403, CodeNotAuthorized, "You are not authorized to perform the (ShowImage) operation."},
		{"permission deny", Fault{Kind: FaultStatus, Status: 403, ErrorCode: CodePermissionDenied}, 403, CodePermissionDenied, "Permission deny"},
		{"invalid token 403", Fault{Kind: FaultStatus, Status: 403, ErrorCode: CodeTokenInvalid}, 403, CodeTokenInvalid, "Invalid token."},
		{"invalid AK/SK", Fault{Kind: FaultStatus, Status: 403, ErrorCode: CodeAKSKInvalid}, 403, CodeAKSKInvalid, "Invalid AK/SK."},
		{"InvalidToken", Fault{Kind: FaultStatus, Status: 403, ErrorCode: CodeTokenRejected}, 403, CodeTokenRejected, "InvalidToken"},
		{"undocumented code", Fault{Kind: FaultStatus, Status: 403, ErrorCode: "ModelArts.9999"}, 403, "ModelArts.9999", "The project id in the request URL does not match the token."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := startServer(t, Options{})
			tt.fault.Operation = OpShowImage
			tt.fault.ImageID = SampleIDError
			tt.fault.Headers = map[string]string{"Retry-After": "3"}
			s.AddFault(tt.fault)
			if r := signedGet(t, s, clock, imagePath(s, SampleIDFrozen)); r.status != http.StatusOK {
				t.Errorf("another image: status %d", r.status)
			}
			r := signedGet(t, s, clock, imagePath(s, SampleIDError))
			expectError(t, r, tt.status, tt.code)
			b := decode[modelArtsErrorBody](t, r)
			if b.ErrorMsg != tt.msg {
				t.Errorf("error_msg = %q, want %q", b.ErrorMsg, tt.msg)
			}
			if strings.HasPrefix(tt.code, "APIG.") != (b.RequestID != "") {
				t.Errorf("request_id %q for %s", b.RequestID, tt.code)
			}
			if r.header.Get("Retry-After") != "3" {
				t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
			}
			// The list is not affected.
			if r := signedGet(t, s, clock, listPath(s, "")); r.status != http.StatusOK {
				t.Errorf("ListImage: status %d", r.status)
			}
		})
	}
}

func TestStatusFaultOnIAM(t *testing.T) {
	s, _ := startServer(t, Options{})
	s.AddFault(Fault{Kind: FaultStatus, Operation: OpCreateToken, Status: 401, Count: 1})
	r := createToken(t, s, tokenBodyFor(DemoDomain, DemoUser, DemoPassword, `{"name":"eu-de"}`))
	if b := decode[iamErrorBody](t, r); r.status != 401 || b.Error.Code != 401 || b.Error.Title != "Unauthorized" {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	if r := createToken(t, s, tokenBodyFor(DemoDomain, DemoUser, DemoPassword, `{"name":"eu-de"}`)); r.status != http.StatusCreated {
		t.Fatalf("after the fault: status %d", r.status)
	}
}

func TestFaultCountAndRemoval(t *testing.T) {
	s, clock := startServer(t, Options{})
	s.AddFault(Fault{Kind: FaultStatus, Status: 503, Count: 2})
	statuses := func(n int) []int {
		var out []int
		for range n {
			out = append(out, signedGet(t, s, clock, imagePath(s, SampleIDError)).status)
		}
		return out
	}
	if got := statuses(3); got[0] != 503 || got[1] != 503 || got[2] != 200 {
		t.Fatalf("statuses %v, want 503 503 200", got)
	}

	remove := s.AddFault(Fault{Kind: FaultStatus, Status: 500})
	if got := statuses(3); got[0] != 500 || got[2] != 500 {
		t.Fatalf("statuses %v, want 500s until removed", got)
	}
	remove()
	if got := statuses(1); got[0] != 200 {
		t.Fatalf("after remove: %v", got)
	}
	s.AddFault(Fault{Kind: FaultStatus, Status: 500})
	s.ClearFaults()
	if got := statuses(1); got[0] != 200 {
		t.Fatalf("after ClearFaults: %v", got)
	}
}

func TestFaultForOneImage(t *testing.T) {
	s, clock := startServer(t, Options{})
	s.AddFault(Fault{Kind: FaultStatus, Status: 500, ImageID: SampleIDFrozen})
	if r := signedGet(t, s, clock, imagePath(s, SampleIDError)); r.status != 200 {
		t.Errorf("other image: status %d", r.status)
	}
	if r := signedGet(t, s, clock, imagePath(s, SampleIDFrozen)); r.status != 500 {
		t.Errorf("the image: status %d", r.status)
	}
	// A page without the image is fine, one with it fails (the image is
	// the first in the default order).
	if r := signedGet(t, s, clock, listPath(s, "type=DEDICATED&limit=1&offset=1")); r.status != 200 {
		t.Errorf("page without the image: status %d", r.status)
	}
	if r := signedGet(t, s, clock, listPath(s, "type=DEDICATED&limit=1")); r.status != 500 {
		t.Errorf("page with the image: status %d", r.status)
	}
}

func TestRawFault(t *testing.T) {
	s, clock := startServer(t, Options{})
	s.AddFault(Fault{Kind: FaultRaw, Status: 502})
	r := signedGet(t, s, clock, imagePath(s, SampleIDError))
	if r.status != 502 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(r.body), "502 Bad Gateway") {
		t.Fatalf("status %d, %s: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	s.ClearFaults()
	s.AddFault(Fault{Kind: FaultRaw, Status: 503, ContentType: "text/plain", Body: "upstream connect error"})
	r = signedGet(t, s, clock, listPath(s, ""))
	if r.status != 503 || r.header.Get("Content-Type") != "text/plain" || string(r.body) != "upstream connect error" {
		t.Fatalf("status %d, %s: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
}

func TestDelayFault(t *testing.T) {
	s, clock := startServer(t, Options{})
	s.AddFault(Fault{Kind: FaultDelay, Delay: 50 * time.Millisecond, Count: 1})
	start := time.Now()
	if r := signedGet(t, s, clock, imagePath(s, SampleIDError)); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("answered after %v", took)
	}

	// A client that gives up ends the handler.
	s.AddFault(Fault{Kind: FaultDelay, Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req := newRequest(t, s, imagePath(s, SampleIDError)).WithContext(ctx)
	demoSigner(clock).sign(req, nil)
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	waitFor(t, func() bool { return s.Stats().InFlight == 0 })
	if got := s.RequestsWithStatus(OpShowImage, 0); got != 1 {
		t.Errorf("unanswered calls: %d", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

func TestMalformedJSONFault(t *testing.T) {
	s, clock := startServer(t, Options{})
	s.AddFault(Fault{Kind: FaultMalformedJSON})
	for _, path := range []string{imagePath(s, SampleIDError), listPath(s, "")} {
		r := signedGet(t, s, clock, path)
		if r.status != 200 || json.Valid(r.body) {
			t.Errorf("%s: status %d, valid JSON %q", path, r.status, r.body)
		}
	}
}

// getBody does a signed GET and returns the body read and the read error.
func getBody(t *testing.T, s *Server, clock *fakeClock, path string) (*http.Response, []byte, error) {
	t.Helper()
	req := newRequest(t, s, path)
	demoSigner(clock).sign(req, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestTruncatedJSONFault(t *testing.T) {
	s, clock := startServer(t, Options{})
	s.AddFault(Fault{Kind: FaultTruncatedJSON, Count: 1})
	resp, body, err := getBody(t, s, clock, imagePath(s, SampleIDError))
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read error = %v, want unexpected EOF", err)
	}
	if resp.StatusCode != 200 || len(body) == 0 || json.Valid(body) || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("status %d, X-Request-Id %q, body %q", resp.StatusCode, resp.Header.Get("X-Request-Id"), body)
	}
	if got := s.RequestsWithStatus(OpShowImage, 200); got != 1 {
		t.Errorf("counted %d answers with 200", got)
	}
	if r := signedGet(t, s, clock, imagePath(s, SampleIDError)); r.status != 200 || !json.Valid(r.body) {
		t.Fatalf("after the fault: %d %s", r.status, r.body)
	}
}

func TestResetFault(t *testing.T) {
	s, clock := startServer(t, Options{})
	s.AddFault(Fault{Kind: FaultReset, Operation: OpListImage})
	resp, body, err := getBody(t, s, clock, listPath(s, ""))
	if resp == nil || err == nil {
		t.Fatalf("want the headers, then a read error; got err %v after %d bytes", err, len(body))
	}
	if !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("read error = %v, want a connection reset", err)
	}
	if len(body) == 0 {
		t.Error("no part of the body arrived before the reset")
	}
}

func TestOversizedFault(t *testing.T) {
	s, clock := startServer(t, Options{})
	const size = 3 << 20
	s.AddFault(Fault{Kind: FaultOversized, Size: size})
	for _, path := range []string{imagePath(s, SampleIDError), listPath(s, "")} {
		_, body, err := getBody(t, s, clock, path)
		if err != nil {
			t.Fatal(err)
		}
		if len(body) != size || !json.Valid(body) {
			t.Fatalf("%s: %d bytes, valid %v", path, len(body), json.Valid(body))
		}
	}
	// The normal content is still there.
	_, body, _ := getBody(t, s, clock, imagePath(s, SampleIDError))
	if img := decodeImage(t, body); img.ID != SampleIDError {
		t.Errorf("id = %q", img.ID)
	}
}

func decodeImage(t *testing.T, body []byte) modelarts.Image {
	t.Helper()
	var img modelarts.Image
	if err := json.Unmarshal(body, &img); err != nil {
		t.Fatalf("decode image: %v", err)
	}
	return img
}

func TestWrongTypesFault(t *testing.T) {
	s, clock := startServer(t, Options{})
	s.AddFault(Fault{Kind: FaultWrongTypes})
	r := signedGet(t, s, clock, imagePath(s, SampleIDError))
	var img modelarts.Image
	if err := json.Unmarshal(r.body, &img); err == nil {
		t.Fatalf("wrong types decoded: %s", r.body)
	}
	raw := decode[map[string]any](t, r)
	if raw["size"] != "2097152" {
		t.Errorf("size = %#v", raw["size"])
	}
	// An image without size gets one, as a string.
	r = signedGet(t, s, clock, imagePath(s, SampleIDPyTorchBuiltin))
	if raw := decode[map[string]any](t, r); raw["size"] != "123" {
		t.Errorf("size = %#v", raw["size"])
	}
	page := decode[modelarts.ImageList](t, signedGet(t, s, clock, listPath(s, "type=DEDICATED")))
	if len(page.Data) != 0 || len(page.Invalid) != 7 {
		t.Errorf("list: %d images decoded, %d not; want 0, 7", len(page.Data), len(page.Invalid))
	}
	// Aimed at one image, the fault alters that element of a listing only.
	s.ClearFaults()
	s.AddFault(Fault{Kind: FaultWrongTypes, Operation: OpListImage, ImageID: SampleIDError})
	page = decode[modelarts.ImageList](t, signedGet(t, s, clock, listPath(s, "type=DEDICATED")))
	if len(page.Data) != 6 || len(page.Invalid) != 1 || page.Invalid[0].ID != SampleIDError {
		t.Errorf("list with one image aimed at: %d images decoded, not decoded: %+v", len(page.Data), page.Invalid)
	}
}

func TestUnknownFieldsFault(t *testing.T) {
	s, clock := startServer(t, Options{})
	s.AddFault(Fault{Kind: FaultUnknownFields})
	r := signedGet(t, s, clock, imagePath(s, SampleIDError))
	if img := decodeImage(t, r.body); img.ID != SampleIDError || img.Status != modelarts.StatusError {
		t.Errorf("image = %+v", img)
	}
	if raw := decode[map[string]any](t, r); raw["flavor_type"] == nil || raw["tags"] == nil {
		t.Errorf("no unknown fields: %s", r.body)
	}
	r = signedGet(t, s, clock, listPath(s, "type=DEDICATED"))
	page := decode[modelarts.ImageList](t, r)
	if len(page.Data) != 7 || !strings.Contains(string(r.body), "swr_instance_id") {
		t.Errorf("list: %s", r.body)
	}
}

func TestUnknownStatusFault(t *testing.T) {
	s, clock := startServer(t, Options{})
	s.AddFault(Fault{Kind: FaultUnknownStatus, ImageID: SampleIDTrainingActive})
	page := decode[modelarts.ImageList](t, signedGet(t, s, clock, listPath(s, "type=DEDICATED")))
	if len(page.Data) != 7 {
		t.Fatalf("%d images", len(page.Data))
	}
	for _, img := range page.Data {
		want := sampleStatus(img.ID)
		if img.ID == SampleIDTrainingActive {
			want = "FROZEN"
		}
		if img.Status != want {
			t.Errorf("%s: status %q, want %q", img.ID, img.Status, want)
		}
	}
	s.ClearFaults()
	s.AddFault(Fault{Kind: FaultUnknownStatus, Value: "Suspended"})
	if img := decode[modelarts.Image](t, signedGet(t, s, clock, imagePath(s, SampleIDError))); img.Status != "Suspended" {
		t.Errorf("status %q", img.Status)
	}
}

// sampleStatus is the status SampleImages gives an id.
func sampleStatus(id string) string {
	for _, img := range SampleImages() {
		if img.ID == id {
			return img.Status
		}
	}
	return ""
}

// TestBadImageFaults covers the kinds that answer 200 with a wrong image.
func TestBadImageFaults(t *testing.T) {
	lone := SampleImages()[6] // SampleIDError alone: no other image to send
	tests := []struct {
		name   string
		kind   FaultKind
		images []modelarts.Image
		check  func(t *testing.T, got map[string]any) // the altered image
	}{
		{"other stored image", FaultOtherImage, nil, func(t *testing.T, got map[string]any) {
			if got["id"] != SampleIDFrozen || got["name"] != "tinyml-toolkit" {
				t.Errorf("got %v, want the record of %s", got, SampleIDFrozen)
			}
		}},
		{"same record, other id", FaultOtherImage, []modelarts.Image{lone}, func(t *testing.T, got map[string]any) {
			id, _ := got["id"].(string)
			if id == SampleIDError || !uuidPattern.MatchString(id) || got["name"] != lone.Name {
				t.Errorf("got %v, want %s's record under another UUID", got, SampleIDError)
			}
		}},
		{"empty object", FaultEmptyObject, nil, func(t *testing.T, got map[string]any) {
			if len(got) != 0 {
				t.Errorf("got %v, want {}", got)
			}
		}},
		{"negative size", FaultNegativeSize, nil, func(t *testing.T, got map[string]any) {
			if got["size"] != -5.0 || got["id"] != SampleIDError {
				t.Errorf("got %v, want size -5", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := startServer(t, Options{Images: tt.images})
			s.AddFault(Fault{Kind: tt.kind, ImageID: SampleIDError})
			r := signedGet(t, s, clock, imagePath(s, SampleIDError))
			if r.status != http.StatusOK {
				t.Fatalf("ShowImage: status %d", r.status)
			}
			tt.check(t, decode[map[string]any](t, r))

			// In a listing, only that element changes.
			r = signedGet(t, s, clock, listPath(s, "type=DEDICATED"))
			page := decode[struct{ Data []map[string]any }](t, r)
			var want []string
			for _, img := range s.Images() {
				if img.Type == "DEDICATED" {
					want = append(want, img.ID)
				}
			}
			if len(page.Data) != len(want) {
				t.Fatalf("ListImage: %d elements, want %d", len(page.Data), len(want))
			}
			for i, id := range want {
				if id == SampleIDError {
					tt.check(t, page.Data[i])
				} else if page.Data[i]["id"] != id || page.Data[i]["size"] == -5.0 {
					t.Errorf("element %d = %v, want %s unchanged", i, page.Data[i], id)
				}
			}
		})
	}
}

func TestFaultsApplyAfterAuthentication(t *testing.T) {
	s, _ := startServer(t, Options{})
	s.AddFault(Fault{Kind: FaultStatus, Status: 429})
	r := do(t, newRequest(t, s, imagePath(s, SampleIDError)))
	expectError(t, r, http.StatusUnauthorized, CodeTokenMissing)
}

func TestFaultValidation(t *testing.T) {
	bad := []Fault{
		{Kind: "explode"},
		{Kind: FaultStatus},
		{Kind: FaultStatus, Status: 200},
		{Kind: FaultStatus, Status: 500, Operation: "DeleteImage"},
		{Kind: FaultStatus, Status: 500, Count: -1},
		{Kind: FaultDelay},
		{Kind: FaultOversized},
		{Kind: FaultUnknownStatus, Operation: OpCreateToken},
		{Kind: FaultOtherImage, Operation: OpCreateToken},
		{Kind: FaultEmptyObject, Operation: OpListProjects},
		{Kind: FaultNegativeSize, Operation: OpCreateToken},
		{Kind: FaultStatus, Status: 500, Operation: OpListProjects, ImageID: SampleIDError},
	}
	for _, f := range bad {
		if err := f.Validate(); err == nil {
			t.Errorf("%+v accepted", f)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("AddFault accepted an invalid fault")
		}
	}()
	New(Options{}).AddFault(Fault{Kind: "explode"})
}

func TestFaultJSON(t *testing.T) {
	var f Fault
	err := json.Unmarshal([]byte(`{"kind":"delay","operation":"ShowImage","delay":"1.5s","count":2}`), &f)
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind != FaultDelay || f.Delay != 1500*time.Millisecond || f.Count != 2 || f.Operation != OpShowImage {
		t.Errorf("decoded %+v", f)
	}
	out, _ := json.Marshal(f)
	if !strings.Contains(string(out), `"delay":"1.5s"`) {
		t.Errorf("encoded %s", out)
	}
	if err := json.Unmarshal([]byte(`{"kind":"delay","delay":"soon"}`), &f); err == nil {
		t.Error("bad delay accepted")
	}
}
