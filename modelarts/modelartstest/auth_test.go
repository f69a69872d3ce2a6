// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSignedRequestAccepted(t *testing.T) {
	s, clock := startServer(t, Options{})
	r := signedGet(t, s, clock, imagePath(s, SampleIDPyTorchBuiltin))
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, body %s", r.status, r.body)
	}
	r = signedGet(t, s, clock, listPath(s, "limit=2&offset=1&name=res"))
	if r.status != http.StatusOK {
		t.Fatalf("list: status = %d, body %s", r.status, r.body)
	}
}

// TestQueryWithSpaces sends a value the way huaweicloud-sdk-go-v3
// core/request/default_http_request.go (fillQueryParams) does: space as %20.
func TestQueryWithSpaces(t *testing.T) {
	s, clock := startServer(t, Options{})
	for i, name := range []string{"my image", "my-image", "myimage"} {
		img := SampleImages()[2]
		img.ID, img.Name = fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", i), name
		s.SetImage(img)
	}
	req := newRequest(t, s, listPath(s, "name=my%20image&type=DEDICATED"))
	demoSigner(clock).sign(req, nil)
	r := do(t, req)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, body %s", r.status, r.body)
	}
	page := decode[wireImageList](t, r)
	if len(page.Data) != 1 || page.Data[0].Name != "my image" {
		t.Errorf("name=my%%20image listed %+v", page.Data)
	}
}

func TestTamperedRequestsRejected(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(req *http.Request)
	}{
		{"path", func(req *http.Request) {
			req.URL.Path = strings.Replace(req.URL.Path, SampleIDPyTorchBuiltin, SampleIDFrozen, 1)
		}},
		{"query", func(req *http.Request) { req.URL.RawQuery = "limit=3" }},
		{"signed header", func(req *http.Request) { req.Header.Set("X-Project-Id", "0123") }},
		{"method", func(req *http.Request) { req.Method = http.MethodHead }},
		{"signature", func(req *http.Request) {
			a := req.Header.Get("Authorization")
			last := "0" // change the last hex digit, whatever it was
			if strings.HasSuffix(a, "0") {
				last = "1"
			}
			req.Header.Set("Authorization", a[:len(a)-1]+last)
		}},
		{"access key's secret", func(req *http.Request) {
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "Access="+DemoAccessKey, "Access=OTHERKEY", 1))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := startServer(t, Options{Keys: map[string]string{DemoAccessKey: DemoSecretKey, "OTHERKEY": "other-secret"}})
			req := newRequest(t, s, imagePath(s, SampleIDPyTorchBuiltin)+"?limit=2")
			demoSigner(clock).sign(req, nil)
			tt.tamper(req)
			r := do(t, req)
			if req.Method == http.MethodHead {
				if r.status != http.StatusUnauthorized {
					t.Fatalf("status = %d, want 401", r.status)
				}
				return
			}
			expectError(t, r, http.StatusUnauthorized, CodeSignatureFailed)
			b := decode[modelArtsErrorBody](t, r)
			if b.ErrorMsg != MsgSignatureFailed || b.RequestID != r.header.Get("X-Request-Id") || b.RequestID == "" {
				t.Errorf("body %s, X-Request-Id %q", r.body, r.header.Get("X-Request-Id"))
			}
		})
	}
}

func TestSignedBody(t *testing.T) {
	s, clock := startServer(t, Options{})
	body := []byte(`{"auth":{}}`)
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/v3/projects?name=eu-de", bytes.NewReader(body))
	demoSigner(clock).sign(req, body)
	if r := do(t, req); r.status != http.StatusOK {
		t.Fatalf("status = %d, body %s", r.status, r.body)
	}
	req, _ = http.NewRequest(http.MethodGet, s.URL+"/v3/projects?name=eu-de", strings.NewReader(`{"auth":[]}`))
	demoSigner(clock).sign(req, body)
	expectError(t, do(t, req), http.StatusUnauthorized, CodeSignatureFailed)
}

func TestSignatureDateChecks(t *testing.T) {
	tests := []struct {
		name   string
		signer func(*fakeClock) testSigner
		ok     bool
	}{
		{"14 minutes behind", func(c *fakeClock) testSigner {
			return testSigner{ak: DemoAccessKey, sk: DemoSecretKey, now: func() time.Time { return c.Now().Add(-14 * time.Minute) }}
		}, true},
		{"16 minutes behind", func(c *fakeClock) testSigner {
			return testSigner{ak: DemoAccessKey, sk: DemoSecretKey, now: func() time.Time { return c.Now().Add(-16 * time.Minute) }}
		}, false},
		{"16 minutes ahead", func(c *fakeClock) testSigner {
			return testSigner{ak: DemoAccessKey, sk: DemoSecretKey, now: func() time.Time { return c.Now().Add(16 * time.Minute) }}
		}, false},
		{"x-sdk-date not signed", func(c *fakeClock) testSigner {
			return testSigner{ak: DemoAccessKey, sk: DemoSecretKey, now: c.Now, signedHeaders: []string{"host", "x-project-id"}}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := startServer(t, Options{})
			req := newRequest(t, s, imagePath(s, SampleIDPyTorchBuiltin))
			tt.signer(clock).sign(req, nil)
			if !strings.Contains(req.Header.Get("Authorization"), "x-sdk-date") {
				req.Header.Set("X-Sdk-Date", clock.Now().Format(sdkDateLayout))
			}
			r := do(t, req)
			if tt.ok {
				if r.status != http.StatusOK {
					t.Fatalf("status = %d, body %s", r.status, r.body)
				}
				return
			}
			expectError(t, r, http.StatusUnauthorized, CodeSignatureFailed)
		})
	}
}

func TestTemporaryKeyNeedsSecurityToken(t *testing.T) {
	s, clock := startServer(t, Options{})
	s.AddKey("TEMPKEY", "temp-secret", "security-token-value")
	signer := testSigner{ak: "TEMPKEY", sk: "temp-secret", now: clock.Now}

	req := newRequest(t, s, imagePath(s, SampleIDFrozen))
	signer.sign(req, nil)
	expectError(t, do(t, req), http.StatusUnauthorized, CodeSignatureFailed)

	req = newRequest(t, s, imagePath(s, SampleIDFrozen))
	req.Header.Set("X-Security-Token", "security-token-value")
	signer.signedHeaders = []string{"host", "x-project-id", "x-sdk-date", "x-security-token"}
	signer.sign(req, nil)
	if r := do(t, req); r.status != http.StatusOK {
		t.Fatalf("status = %d, body %s", r.status, r.body)
	}
}

func TestLockoutAfterConsecutiveFailures(t *testing.T) {
	for _, refuse403 := range []bool{false, true} {
		t.Run("RefuseWith403="+strconv.FormatBool(refuse403), func(t *testing.T) {
			testLockout(t, refuse403)
		})
	}
}

func testLockout(t *testing.T, refuse403 bool) {
	s, clock := startServer(t, Options{RefuseWith403: refuse403})
	status, code, msg, lockedMsg := http.StatusUnauthorized, CodeSignatureFailed, MsgSignatureFailed, MsgKeyLocked
	if refuse403 {
		status, code, msg, lockedMsg = http.StatusForbidden, CodeAKSKInvalid, "Invalid AK/SK.", "Invalid AK/SK."
	}
	bad := testSigner{ak: DemoAccessKey, sk: "wrong-secret", now: clock.Now}
	good := demoSigner(clock)
	send := func(ts testSigner) response {
		req := newRequest(t, s, imagePath(s, SampleIDPyTorchBuiltin))
		ts.sign(req, nil)
		return do(t, req)
	}

	// A success in between starts the count again.
	for range LockoutThreshold - 1 {
		send(bad)
	}
	if r := send(good); r.status != http.StatusOK {
		t.Fatalf("after %d failures: status = %d", LockoutThreshold-1, r.status)
	}
	for i := range LockoutThreshold {
		r := send(bad)
		expectError(t, r, status, code)
		if decode[modelArtsErrorBody](t, r).ErrorMsg != msg {
			t.Fatalf("failure %d: %s", i+1, r.body)
		}
	}
	if !s.Locked(DemoAccessKey) {
		t.Fatal("key not locked after the failures")
	}
	r := send(good)
	expectError(t, r, status, code)
	if decode[modelArtsErrorBody](t, r).ErrorMsg != lockedMsg {
		t.Fatalf("locked key: %s", r.body)
	}

	clock.Advance(LockoutDuration - time.Second)
	if r := send(good); r.status != status {
		t.Fatalf("just before the lock ends: status = %d", r.status)
	}
	clock.Advance(time.Second)
	if r := send(good); r.status != http.StatusOK {
		t.Fatalf("after the lock: status = %d, body %s", r.status, r.body)
	}
	if got := s.RequestsWithStatus(OpShowImage, status); got != 2*LockoutThreshold+1 {
		t.Errorf("%ds counted: %d", status, got)
	}
}

// TestRefusedCredentials pins both readings of the error code table
// (opentelekomcloud-docs/modelarts api-ref/source/appendix/error_codes.rst):
// refused credentials as 401 (default) or 403.
func TestRefusedCredentials(t *testing.T) {
	type want struct {
		status int
		code   string
	}
	tests := []struct {
		name    string
		send    func(t *testing.T, s *Server, clock *fakeClock) response
		as401   want
		as403   want
		message string // under 403
	}{
		{"bad signature", func(t *testing.T, s *Server, clock *fakeClock) response {
			req := newRequest(t, s, imagePath(s, SampleIDError))
			testSigner{ak: DemoAccessKey, sk: "wrong", now: clock.Now}.sign(req, nil)
			return do(t, req)
		}, want{401, CodeSignatureFailed}, want{403, CodeAKSKInvalid}, "Invalid AK/SK."},
		{"unknown access key", func(t *testing.T, s *Server, clock *fakeClock) response {
			req := newRequest(t, s, imagePath(s, SampleIDError))
			testSigner{ak: "NOSUCHKEY", sk: "x", now: clock.Now}.sign(req, nil)
			return do(t, req)
		}, want{401, CodeSignatureFailed}, want{403, CodeAKSKInvalid}, "Invalid AK/SK."},
		{"unknown token", func(t *testing.T, s *Server, _ *fakeClock) response {
			req := newRequest(t, s, imagePath(s, SampleIDError))
			req.Header.Set("X-Auth-Token", "MIIbogus")
			return do(t, req)
		}, want{401, CodeTokenInvalid}, want{403, CodeTokenInvalid}, "Invalid token."},
		{"expired token", func(t *testing.T, s *Server, _ *fakeClock) response {
			tok := createToken(t, s, tokenBodyFor(DemoDomain, DemoUser, DemoPassword, `{"name":"eu-de"}`)).header.Get("X-Subject-Token")
			s.ExpireTokens()
			req := newRequest(t, s, imagePath(s, SampleIDError))
			req.Header.Set("X-Auth-Token", tok)
			return do(t, req)
		}, want{401, CodeTokenExpired}, want{403, CodeTokenInvalid}, "Invalid token."},
		{"no credentials", func(t *testing.T, s *Server, _ *fakeClock) response {
			return do(t, newRequest(t, s, imagePath(s, SampleIDError)))
		}, want{401, CodeTokenMissing}, want{401, CodeTokenMissing}, "Token doesn't exist."},
	}
	for _, tt := range tests {
		for _, refuse403 := range []bool{false, true} {
			t.Run(tt.name+"/RefuseWith403="+strconv.FormatBool(refuse403), func(t *testing.T) {
				s, clock := startServer(t, Options{RefuseWith403: refuse403})
				w := tt.as401
				if refuse403 {
					w = tt.as403
				}
				r := tt.send(t, s, clock)
				expectError(t, r, w.status, w.code)
				if msg := decode[modelArtsErrorBody](t, r).ErrorMsg; refuse403 && msg != tt.message {
					t.Errorf("error_msg = %q, want %q", msg, tt.message)
				}
				// Switching at run time gives the other reading.
				s.SetRefuseWith403(!refuse403)
				s.ClearLockouts()
				w = map[bool]want{false: tt.as401, true: tt.as403}[!refuse403]
				expectError(t, tt.send(t, s, clock), w.status, w.code)
			})
		}
	}
}

func TestUnknownKeyIsNotLockedOut(t *testing.T) {
	s, clock := startServer(t, Options{})
	for range LockoutThreshold + 1 {
		req := newRequest(t, s, imagePath(s, SampleIDFrozen))
		testSigner{ak: "NOSUCHKEY", sk: "x", now: clock.Now}.sign(req, nil)
		expectError(t, do(t, req), http.StatusUnauthorized, CodeSignatureFailed)
	}
	if s.Locked("NOSUCHKEY") {
		t.Error("unknown key locked")
	}
}

// tokenBodyFor is the documented password-method body.
func tokenBodyFor(domain, user, password string, scope string) string {
	b := map[string]any{"auth": map[string]any{
		"identity": map[string]any{
			"methods": []string{"password"},
			"password": map[string]any{"user": map[string]any{
				"name": user, "password": password, "domain": map[string]any{"name": domain},
			}},
		},
	}}
	if scope != "" {
		b["auth"].(map[string]any)["scope"] = map[string]any{"project": json.RawMessage(scope)}
	}
	out, _ := json.Marshal(b)
	return string(out)
}

func createToken(t *testing.T, s *Server, body string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/v3/auth/tokens", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

func TestCreateToken(t *testing.T) {
	s, clock := startServer(t, Options{TokenTTL: time.Hour})
	r := createToken(t, s, tokenBodyFor(DemoDomain, DemoUser, DemoPassword, `{"name":"eu-de"}`))
	if r.status != http.StatusCreated {
		t.Fatalf("status = %d, body %s", r.status, r.body)
	}
	tok := r.header.Get("X-Subject-Token")
	if tok == "" {
		t.Fatal("no X-Subject-Token")
	}
	body := decode[tokenBody](t, r)
	if want := clock.Now().Add(time.Hour).Format("2006-01-02T15:04:05.000000Z"); body.Token.ExpiresAt != want {
		t.Errorf("expires_at = %q, want %q", body.Token.ExpiresAt, want)
	}
	if body.Token.Project == nil || body.Token.Project.ID != s.ProjectID() || body.Token.Project.Name != "eu-de" {
		t.Errorf("project = %+v", body.Token.Project)
	}

	withToken := func(path, token string) response {
		req := newRequest(t, s, path)
		req.Header.Set("X-Auth-Token", token)
		return do(t, req)
	}
	if r := withToken(imagePath(s, SampleIDError), tok); r.status != http.StatusOK {
		t.Fatalf("with token: status = %d, body %s", r.status, r.body)
	}
	if r := withToken("/v3/projects?name=eu-de", tok); r.status != http.StatusOK {
		t.Fatalf("projects with token: status = %d, body %s", r.status, r.body)
	}
	expectError(t, withToken(imagePath(s, SampleIDError), "MIIbogus"), http.StatusUnauthorized, CodeTokenInvalid)

	clock.Advance(time.Hour)
	expectError(t, withToken(imagePath(s, SampleIDError), tok), http.StatusUnauthorized, CodeTokenExpired)

	// A fresh token works; ExpireTokens and RevokeTokens end it on demand.
	tok = createToken(t, s, tokenBodyFor(DemoDomain, DemoUser, DemoPassword, `{"id":"`+s.ProjectID()+`"}`)).header.Get("X-Subject-Token")
	if r := withToken(imagePath(s, SampleIDError), tok); r.status != http.StatusOK {
		t.Fatalf("scoped by id: status = %d, body %s", r.status, r.body)
	}
	s.ExpireTokens()
	expectError(t, withToken(imagePath(s, SampleIDError), tok), http.StatusUnauthorized, CodeTokenExpired)
	s.RevokeTokens()
	expectError(t, withToken(imagePath(s, SampleIDError), tok), http.StatusUnauthorized, CodeTokenInvalid)
}

func TestCreateTokenRefused(t *testing.T) {
	s, _ := startServer(t, Options{Users: []User{{Domain: "d", Name: "u", Password: "p"}}})
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"wrong password", tokenBodyFor("d", "u", "x", `{"name":"eu-de"}`), http.StatusUnauthorized},
		{"wrong user", tokenBodyFor("d", "x", "p", `{"name":"eu-de"}`), http.StatusUnauthorized},
		{"wrong domain", tokenBodyFor("x", "u", "p", `{"name":"eu-de"}`), http.StatusUnauthorized},
		{"demo user not configured", tokenBodyFor(DemoDomain, DemoUser, DemoPassword, `{"name":"eu-de"}`), http.StatusUnauthorized},
		{"other project", tokenBodyFor("d", "u", "p", `{"name":"eu-nl"}`), http.StatusUnauthorized},
		{"not JSON", `{"auth":`, http.StatusBadRequest},
		{"no password method", `{"auth":{"identity":{"methods":["token"]}}}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := createToken(t, s, tt.body)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.status, r.body)
			}
			if r.header.Get("X-Subject-Token") != "" {
				t.Error("a token was issued")
			}
			b := decode[iamErrorBody](t, r)
			if b.Error.Code != tt.status || b.Error.Title == "" {
				t.Errorf("body %s", r.body)
			}
			if tt.name == "wrong password" && (b.Error.Message != MsgWrongPassword || b.Error.Title != "Unauthorized") {
				t.Errorf("body %s", r.body)
			}
		})
	}
}

func TestUnscopedToken(t *testing.T) {
	s, _ := startServer(t, Options{})
	r := createToken(t, s, tokenBodyFor(DemoDomain, DemoUser, DemoPassword, ""))
	if r.status != http.StatusCreated {
		t.Fatalf("status = %d, body %s", r.status, r.body)
	}
	if decode[tokenBody](t, r).Token.Project != nil {
		t.Error("unscoped token has a project")
	}
	req := newRequest(t, s, imagePath(s, SampleIDError))
	req.Header.Set("X-Auth-Token", r.header.Get("X-Subject-Token"))
	expectError(t, do(t, req), http.StatusUnauthorized, CodeTokenNotScoped)

	req = newRequest(t, s, "/v3/projects?name=eu-de")
	req.Header.Set("X-Auth-Token", r.header.Get("X-Subject-Token"))
	if r := do(t, req); r.status != http.StatusOK {
		t.Fatalf("projects: status = %d, body %s", r.status, r.body)
	}
}

func TestListProjects(t *testing.T) {
	s, clock := startServer(t, Options{Region: "eu-nl", ProjectID: "0123456789abcdef0123456789abcdef"})
	r := signedGet(t, s, clock, "/v3/projects?name=eu-nl")
	list := decode[projectList](t, r)
	if len(list.Projects) != 1 || list.Projects[0].ID != "0123456789abcdef0123456789abcdef" || list.Projects[0].Name != "eu-nl" {
		t.Fatalf("projects: %s", r.body)
	}
	r = signedGet(t, s, clock, "/v3/projects?name=eu-de")
	if list := decode[projectList](t, r); len(list.Projects) != 0 {
		t.Fatalf("other region: %s", r.body)
	}
	req := newRequest(t, s, "/v3/projects?name=eu-nl")
	expectError(t, do(t, req), http.StatusUnauthorized, CodeTokenMissing)
}

func TestMissingCredentials(t *testing.T) {
	s, _ := startServer(t, Options{})
	r := do(t, newRequest(t, s, imagePath(s, SampleIDError)))
	expectError(t, r, http.StatusUnauthorized, CodeTokenMissing)
	if r.header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
}
