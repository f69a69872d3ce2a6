// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeIAM issues numbered tokens ("token-1", "token-2", ...) valid for
// lifetime on clock, or answers status/body when set.
type fakeIAM struct {
	t        *testing.T
	clock    *fakeClock
	lifetime time.Duration
	noIssued bool          // leave issued_at out
	release  chan struct{} // when set, every answer waits for it

	mu     sync.Mutex
	status int // 0: issue a token
	body   string
	calls  int
	bodies []map[string]any
	paths  []string
}

func newFakeIAM(t *testing.T, clock *fakeClock) *fakeIAM {
	return &fakeIAM{t: t, clock: clock, lifetime: 24 * time.Hour}
}

func (f *fakeIAM) fail(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body = status, body
}

func (f *fakeIAM) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeIAM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.release != nil {
		<-f.release
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.t.Errorf("IAM request body: %v", err)
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("IAM request: %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	f.mu.Lock()
	f.calls++
	n, status, errBody := f.calls, f.status, f.body
	f.bodies = append(f.bodies, body)
	f.paths = append(f.paths, r.URL.Path)
	f.mu.Unlock()

	if status != 0 {
		writeJSON(w, status, errBody)
		return
	}
	now := f.clock.Now().UTC()
	issued := fmt.Sprintf(`"issued_at":%q,`, now.Format("2006-01-02T15:04:05.000000Z"))
	if f.noIssued {
		issued = ""
	}
	w.Header().Set("X-Subject-Token", fmt.Sprintf("token-%d", n))
	writeJSON(w, http.StatusCreated, fmt.Sprintf(`{"token":{%s"expires_at":%q,"methods":["password"],
		"project":{"id":%q,"name":"eu-de","domain":{"id":"d1","name":"dom"}},
		"user":{"id":"u1","name":"user","domain":{"id":"d1","name":"dom"}},"roles":[{"id":"r","name":"te_admin"}],"catalog":[]}}`,
		issued, now.Add(f.lifetime).Format("2006-01-02T15:04:05.000000Z"), testProjectID))
}

// fakeAPI answers ShowImage 200 to the accepted tokens and refuses the others
// with refusal (401 ModelArts.0203 when 0).
type fakeAPI struct {
	t        *testing.T
	refusal  int    // the status of a refusal; 0 means 401
	code     string // the error code of a refusal; "" means ModelArts.0203
	mu       sync.Mutex
	accepted map[string]bool // nil: any token
	tokens   []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := r.Header.Get("X-Auth-Token")
	if r.Header.Get("Authorization") != "" {
		f.t.Errorf("token request carries an Authorization header")
	}
	f.mu.Lock()
	f.tokens = append(f.tokens, tok)
	ok := tok != "" && (f.accepted == nil || f.accepted[tok])
	f.mu.Unlock()
	if !ok {
		writeJSON(w, cmp.Or(f.refusal, 401), `{"error_code":"`+cmp.Or(f.code, "ModelArts.0203")+`","error_msg":"Invalid token."}`)
		return
	}
	writeJSON(w, 200, `{"id":"x","status":"ACTIVE"}`)
}

func (f *fakeAPI) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tokens...)
}

// newTokenClient returns a password-auth client against iam and api with a
// configured project id; mutate may change the configuration.
func newTokenClient(t *testing.T, iam, api http.Handler, clock *fakeClock, mutate func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		Endpoint:    startServer(t, api),
		IAMEndpoint: startServer(t, iam),
		Region:      "eu-de",
		ProjectID:   testProjectID,
		Credentials: Credentials{DomainName: "dom", Username: "user", Password: testPassword},
		now:         clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c := NewClient(cfg)
	return c
}

func testStart() *fakeClock { return newFakeClock(time.Date(2024, 3, 9, 6, 0, 0, 0, time.UTC)) }

func TestTokenRequest(t *testing.T) {
	user := map[string]any{"name": "user", "password": testPassword, "domain": map[string]any{"name": "dom"}}
	identity := map[string]any{"methods": []any{"password"}, "password": map[string]any{"user": user}}
	tests := []struct {
		name      string
		projectID string
		iamSuffix string
		wantScope map[string]any
	}{
		{name: "scope by project id", projectID: testProjectID, wantScope: map[string]any{"id": testProjectID}},
		{name: "scope by region name", wantScope: map[string]any{"name": "eu-de"}},
		{name: "IAM endpoint ending in /v3", projectID: testProjectID, iamSuffix: "/v3", wantScope: map[string]any{"id": testProjectID}},
		{name: "IAM endpoint ending in /v3/", projectID: testProjectID, iamSuffix: "/v3/", wantScope: map[string]any{"id": testProjectID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testStart()
			iam := newFakeIAM(t, clock)
			api := &fakeAPI{t: t}
			c := newTokenClient(t, iam, api, clock, func(cfg *Config) {
				cfg.ProjectID = tt.projectID
				cfg.IAMEndpoint += tt.iamSuffix
			})
			if _, err := c.ShowImage(context.Background(), "x"); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"auth": map[string]any{
				"identity": identity,
				"scope":    map[string]any{"project": tt.wantScope},
			}}
			if !reflect.DeepEqual(iam.bodies[0], want) {
				t.Errorf("IAM body = %v\nwant       %v", iam.bodies[0], want)
			}
			if iam.paths[0] != "/v3/auth/tokens" {
				t.Errorf("IAM path = %s", iam.paths[0])
			}
			if got := api.seen(); !reflect.DeepEqual(got, []string{"token-1"}) {
				t.Errorf("API saw tokens %v", got)
			}
		})
	}
}

// TestTokenProjectID: without a configured project id, the token's project is used.
func TestTokenProjectID(t *testing.T) {
	clock := testStart()
	iam := newFakeIAM(t, clock)
	var paths []string
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path+" "+r.Header.Get("X-Project-Id"))
		writeJSON(w, 200, `{"id":"x","status":"ACTIVE"}`)
	})
	c := newTokenClient(t, iam, api, clock, func(cfg *Config) { cfg.ProjectID = "" })
	id, err := c.resolveProjectID(context.Background())
	if err != nil || id != testProjectID {
		t.Fatalf("ProjectID = %q, %v", id, err)
	}
	if _, err := c.ShowImage(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if want := "/v1/" + testProjectID + "/images/x " + testProjectID; len(paths) != 1 || paths[0] != want {
		t.Errorf("API requests = %v, want [%s]", paths, want)
	}
	if iam.count() != 1 {
		t.Errorf("%d IAM calls, want 1", iam.count())
	}
}

func TestTokenIAMErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		header    map[string]string
		wantClass error
		wantText  string
	}{
		{
			name: "wrong password", status: 401,
			body:      `{"error":{"code":401,"message":"The username or password is wrong.","title":"Unauthorized"}}`,
			wantClass: ErrUnauthorized,
			wantText:  `show image x: CreateToken: credentials refused (HTTP 401 "The username or password is wrong.")`,
		},
		{
			name: "IAM echoing the password is scrubbed", status: 401,
			body:      `{"error":{"code":401,"message":"password ` + testPassword + ` is wrong","title":"Unauthorized"}}`,
			wantClass: ErrUnauthorized,
			wantText:  `show image x: CreateToken: credentials refused (HTTP 401 "password <secret> is wrong")`,
		},
		{
			name: "title only", status: 403,
			body:      `{"error":{"code":403,"title":"Forbidden"}}`,
			wantClass: ErrForbidden,
			wantText:  `show image x: CreateToken: forbidden (HTTP 403 "Forbidden")`,
		},
		{
			name: "IAM down", status: 503,
			header:    map[string]string{"X-Request-Id": "iam-req"},
			body:      `<html><head><title>503 Service Temporarily Unavailable</title></head></html>`,
			wantClass: ErrServer,
			wantText:  `show image x: CreateToken: server error (HTTP 503 "503 Service Temporarily Unavailable") request_id=iam-req`,
		},
		{
			name: "no X-Subject-Token", status: 201,
			body:      `{"token":{"expires_at":"2099-01-01T00:00:00.000000Z"}}`,
			wantClass: ErrMalformedResponse,
			wantText:  `show image x: CreateToken: malformed response (HTTP 201): no X-Subject-Token header in the answer`,
		},
		{
			name: "unparsable expires_at", status: 201, header: map[string]string{"X-Subject-Token": "t"},
			body:      `{"token":{"expires_at":"tomorrow"}}`,
			wantClass: ErrMalformedResponse,
			wantText:  `show image x: CreateToken: malformed response (HTTP 201): token.expires_at "tomorrow" is not an RFC 3339 time`,
		},
		{
			name: "expired on arrival", status: 201, header: map[string]string{"X-Subject-Token": "t"},
			body:      `{"token":{"expires_at":"2001-01-01T00:00:00Z"}}`,
			wantClass: ErrMalformedResponse,
			wantText:  `show image x: CreateToken: malformed response (HTTP 201): token.expires_at 2001-01-01T00:00:00Z is not in the future`,
		},
		{
			name: "garbage body", status: 201, header: map[string]string{"X-Subject-Token": "t"},
			body:      `{"token":`,
			wantClass: ErrMalformedResponse,
			wantText:  `show image x: CreateToken: malformed response (HTTP 201): decode body: unexpected end of JSON input`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var iamCalls, apiCalls atomic.Int32
			iam := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				iamCalls.Add(1)
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				writeJSON(w, tt.status, tt.body)
			})
			api := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { apiCalls.Add(1) })
			obs := &recordingObserver{}
			c := newTokenClient(t, iam, api, testStart(), func(cfg *Config) { cfg.Observer = obs })
			_, err := c.ShowImage(context.Background(), "x")
			if !errors.Is(err, tt.wantClass) {
				t.Fatalf("err = %v, want class %v", err, tt.wantClass)
			}
			if err.Error() != tt.wantText {
				t.Errorf("err = %s\nwant  %s", err, tt.wantText)
			}
			if apiErr := AsAPIError(err); apiErr == nil || apiErr.Operation != "CreateToken" {
				t.Errorf("APIError = %#v", apiErr)
			}
			if apiCalls.Load() != 0 || iamCalls.Load() != 1 {
				t.Errorf("API calls = %d (want 0), IAM calls = %d (want 1)", apiCalls.Load(), iamCalls.Load())
			}
			if got, want := obs.observations(), []observation{{"CreateToken", tt.status}}; !reflect.DeepEqual(got, want) {
				t.Errorf("observations = %v, want %v", got, want)
			}
			assertNoSecrets(t, err)
		})
	}
}

func TestTokenIAMUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c := newTokenClient(t, http.NotFoundHandler(), &fakeAPI{t: t}, testStart(), func(cfg *Config) {
		cfg.IAMEndpoint = "http://" + addr
	})
	_, err = c.ShowImage(context.Background(), "x")
	if !errors.Is(err, ErrUnreachable) || !strings.HasPrefix(err.Error(), "show image x: CreateToken: unreachable: Post ") {
		t.Fatalf("err = %v, want CreateToken ErrUnreachable", err)
	}
	assertNoSecrets(t, err)
}

// TestToken401RenewsOnceAndRetriesOnce: a refused token (401, or 403 invalid
// token: expired, revoked) is replaced once and the request retried once,
// never more; a 403 that a new token does not mend is not retried.
func TestToken401RenewsOnceAndRetriesOnce(t *testing.T) {
	tests := []struct {
		name       string
		refusal    int
		code       string
		accepted   map[string]bool
		wantErr    error
		wantTokens []string
		wantObs    []observation
	}{
		{
			name:       "renewed token accepted",
			accepted:   map[string]bool{"token-2": true},
			wantTokens: []string{"token-1", "token-2"},
			wantObs:    []observation{{"CreateToken", 201}, {"ShowImage", 401}, {"CreateToken", 201}, {"ShowImage", 200}},
		},
		{
			name:       "renewed token refused too",
			accepted:   map[string]bool{},
			wantErr:    ErrUnauthorized,
			wantTokens: []string{"token-1", "token-2"},
			wantObs:    []observation{{"CreateToken", 201}, {"ShowImage", 401}, {"CreateToken", 201}, {"ShowImage", 401}},
		},
		{
			name: "403 invalid token, renewed token accepted", refusal: 403, code: "ModelArts.0203",
			accepted:   map[string]bool{"token-2": true},
			wantTokens: []string{"token-1", "token-2"},
			wantObs:    []observation{{"CreateToken", 201}, {"ShowImage", 403}, {"CreateToken", 201}, {"ShowImage", 200}},
		},
		{
			name: "403 project mismatch is not retried", refusal: 403, code: "ModelArts.0210",
			accepted:   map[string]bool{"token-2": true},
			wantErr:    ErrForbidden,
			wantTokens: []string{"token-1"},
			wantObs:    []observation{{"CreateToken", 201}, {"ShowImage", 403}},
		},
		{
			name: "403 no permission is not retried", refusal: 403, code: "ModelArts.0108",
			accepted:   map[string]bool{"token-2": true},
			wantErr:    ErrForbidden,
			wantTokens: []string{"token-1"},
			wantObs:    []observation{{"CreateToken", 201}, {"ShowImage", 403}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testStart()
			iam := newFakeIAM(t, clock)
			api := &fakeAPI{t: t, refusal: tt.refusal, code: tt.code, accepted: tt.accepted}
			obs := &recordingObserver{}
			c := newTokenClient(t, iam, api, clock, func(cfg *Config) { cfg.Observer = obs })
			if _, err := c.tokens.projectToken(context.Background()); err != nil {
				t.Fatal(err)
			}
			_, err := c.ShowImage(context.Background(), "x")
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := api.seen(); !reflect.DeepEqual(got, tt.wantTokens) {
				t.Errorf("API saw tokens %v, want %v", got, tt.wantTokens)
			}
			if got := obs.observations(); !reflect.DeepEqual(got, tt.wantObs) {
				t.Errorf("observations = %v, want %v", got, tt.wantObs)
			}
		})
	}
}

// TestTokenRenewal: a token is renewed when less than an hour, or less than
// a tenth of its lifetime, remains, whichever is smaller.
func TestTokenRenewal(t *testing.T) {
	tests := []struct {
		name     string
		lifetime time.Duration
		noIssued bool
		keep     time.Duration // still no renewal at this age
		renew    time.Duration // renewed at this age
	}{
		{name: "24h token: one hour before", lifetime: 24 * time.Hour, keep: 22*time.Hour + 59*time.Minute, renew: 23*time.Hour + time.Second},
		{name: "10m token: a tenth before", lifetime: 10 * time.Minute, keep: 8*time.Minute + 59*time.Second, renew: 9*time.Minute + time.Second},
		{name: "no issued_at: expires_at counts", lifetime: 24 * time.Hour, noIssued: true, keep: 22*time.Hour + 59*time.Minute, renew: 23*time.Hour + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testStart()
			iam := newFakeIAM(t, clock)
			iam.lifetime, iam.noIssued = tt.lifetime, tt.noIssued
			api := &fakeAPI{t: t}
			c := newTokenClient(t, iam, api, clock, nil)
			show := func() {
				t.Helper()
				if _, err := c.ShowImage(context.Background(), "x"); err != nil {
					t.Fatal(err)
				}
			}
			show()
			clock.Advance(tt.keep)
			show()
			if n := iam.count(); n != 1 {
				t.Errorf("at age %v: %d token requests, want 1", tt.keep, n)
			}
			clock.Advance(tt.renew - tt.keep)
			show()
			show()
			if n := iam.count(); n != 2 {
				t.Errorf("at age %v: %d token requests, want 2", tt.renew, n)
			}
			if got, want := api.seen(), []string{"token-1", "token-1", "token-2", "token-2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("API saw tokens %v, want %v", got, want)
			}
		})
	}
}

// TestTokenConcurrentCallers: callers that find no token share one IAM request.
func TestTokenConcurrentCallers(t *testing.T) {
	clock := testStart()
	iam := newFakeIAM(t, clock)
	iam.release = make(chan struct{})
	api := &fakeAPI{t: t}
	c := newTokenClient(t, iam, api, clock, func(cfg *Config) { cfg.ProjectID = "" })

	const callers = 20
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := c.ShowImage(context.Background(), "x")
			errs <- err
		}()
	}
	time.Sleep(100 * time.Millisecond) // let every caller reach the token source
	close(iam.release)
	for range callers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := iam.count(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
	if n := len(api.seen()); n != callers {
		t.Errorf("%d API requests, want %d", n, callers)
	}
}

// TestTokenFailureIsRemembered: a refused password is not tried again for a
// while, so one scrape cannot lock the IAM user.
func TestTokenFailureIsRemembered(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		wait   time.Duration
	}{
		{name: "401", status: 401, body: `{"error":{"code":401,"message":"The username or password is wrong.","title":"Unauthorized"}}`, wait: refusalPause},
		{name: "503", status: 503, body: `{"error_code":"IAM.0001","error_msg":"busy"}`, wait: renewRetryInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testStart()
			iam := newFakeIAM(t, clock)
			iam.fail(tt.status, tt.body)
			c := newTokenClient(t, iam, &fakeAPI{t: t}, clock, nil)
			for range 3 {
				if _, err := c.ShowImage(context.Background(), "x"); AsAPIError(err) == nil || AsAPIError(err).StatusCode != tt.status {
					t.Fatalf("err = %v", err)
				}
			}
			if n := iam.count(); n != 1 {
				t.Errorf("%d token requests, want 1", n)
			}
			clock.Advance(tt.wait - time.Second)
			_, _ = c.ShowImage(context.Background(), "x")
			if n := iam.count(); n != 1 {
				t.Errorf("%d token requests before the retry interval, want 1", n)
			}
			clock.Advance(time.Second)
			iam.fail(0, "")
			if _, err := c.ShowImage(context.Background(), "x"); err != nil {
				t.Fatal(err)
			}
			if n := iam.count(); n != 2 {
				t.Errorf("%d token requests after the retry interval, want 2", n)
			}
		})
	}
}

// TestTokenRenewalFailureKeepsValidToken: when renewal fails, the old token
// is used for as long as it is valid.
func TestTokenRenewalFailureKeepsValidToken(t *testing.T) {
	clock := testStart()
	iam := newFakeIAM(t, clock)
	api := &fakeAPI{t: t}
	c := newTokenClient(t, iam, api, clock, nil)
	if _, err := c.ShowImage(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(23*time.Hour + 30*time.Minute)
	iam.fail(503, `{"error_code":"IAM.0001","error_msg":"busy"}`)
	for range 2 {
		if _, err := c.ShowImage(context.Background(), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if n := iam.count(); n != 2 {
		t.Errorf("%d token requests, want 2 (one renewal attempt)", n)
	}
	clock.Advance(31 * time.Minute) // the old token has expired
	if _, err := c.ShowImage(context.Background(), "x"); !errors.Is(err, ErrServer) {
		t.Errorf("err = %v, want the IAM failure", err)
	}
	if got, want := api.seen(), []string{"token-1", "token-1", "token-1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("API saw tokens %v, want %v", got, want)
	}
}

// TestTokenWaitHonoursContext: a caller whose deadline passes while IAM is
// slow gets ErrUnreachable with the deadline, and the failure is not
// remembered for the next caller.
func TestTokenWaitHonoursContext(t *testing.T) {
	clock := testStart()
	iam := newFakeIAM(t, clock)
	slow := make(chan struct{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-slow:
		case <-r.Context().Done():
			_, _ = io.Copy(io.Discard, r.Body)
			return
		}
		iam.ServeHTTP(w, r)
	})
	c := newTokenClient(t, handler, &fakeAPI{t: t}, clock, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.ShowImage(ctx, "x")
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnreachable and DeadlineExceeded", err)
	}
	if apiErr := AsAPIError(err); apiErr == nil || apiErr.Operation != "CreateToken" {
		t.Errorf("APIError = %#v", apiErr)
	}
	close(slow)
	if _, err := c.ShowImage(context.Background(), "x"); err != nil {
		t.Errorf("next call: %v", err)
	}
}
