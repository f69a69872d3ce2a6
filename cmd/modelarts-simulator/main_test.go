// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// syncBuffer is a log sink the test can read while the program writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var listeningRE = regexp.MustCompile(`msg=Listening address=(\S+)`)

// start runs the program with args and returns its base URL, its log and a
// function that stops it and returns the exit code.
func start(t *testing.T, args ...string) (string, *syncBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"--web.listen-address=127.0.0.1:0"}, args...), logs) }()
	stop := func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(10 * time.Second):
			t.Fatal("the program did not stop")
			return -1
		}
	}
	t.Cleanup(func() { cancel() })
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := listeningRE.FindStringSubmatch(logs.String()); m != nil {
			return "http://" + m[1], logs, stop
		}
		select {
		case code := <-done:
			t.Fatalf("the program exited with %d: %s", code, logs.String())
		default:
		}
	}
	t.Fatalf("no Listening line: %s", logs.String())
	return "", nil, nil
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func TestRunServesAndStops(t *testing.T) {
	url, logs, stop := start(t, "--images=25", "--region=eu-nl", "--project-id=0123456789abcdef0123456789abcdef")
	if code, _ := get(t, url+"/-/healthy"); code != http.StatusOK {
		t.Fatalf("healthy: %d", code)
	}
	code, body := get(t, url+"/-/sim/images")
	var images []map[string]any
	if err := json.Unmarshal(body, &images); code != http.StatusOK || err != nil || len(images) != 25 {
		t.Fatalf("images: %d %v, %d images", code, err, len(images))
	}
	// An API call without credentials is refused as the real API does.
	if code, _ := get(t, url+"/v1/0123456789abcdef0123456789abcdef/images"); code != http.StatusUnauthorized {
		t.Errorf("unauthenticated call: %d", code)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	out := logs.String()
	for _, want := range []string{
		"msg=\"Point the exporter here\"", "project_id=0123456789abcdef0123456789abcdef", "region=eu-nl",
		"endpoint=" + url, "msg=\"Shutting down\"",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, modelartstest.DemoSecretKey) || strings.Contains(out, modelartstest.DemoPassword) {
		t.Errorf("a secret reached the log:\n%s", out)
	}
}

func TestPasswordTokenWithFlags(t *testing.T) {
	url, _, stop := start(t, "--user=alice", "--password=s3cret", "--domain=acme", "--images=none")
	defer stop()
	tokenReq := func(password string) int {
		body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"alice","password":"` +
			password + `","domain":{"name":"acme"}}}},"scope":{"project":{"name":"eu-de"}}}}`
		resp, err := http.Post(url+"/v3/auth/tokens", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := tokenReq("s3cret"); code != http.StatusCreated {
		t.Errorf("right password: %d", code)
	}
	if code := tokenReq(modelartstest.DemoPassword); code != http.StatusUnauthorized {
		t.Errorf("demo password: %d", code)
	}
}

func TestInitialImages(t *testing.T) {
	tests := []struct {
		spec string
		n    int
		ok   bool
	}{
		{"sample", len(modelartstest.SampleIDs()), true},
		{"none", 0, true},
		{"0", 0, true},
		{"10000", 10000, true},
		{"-1", 0, false},
		{"lots", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		images, err := initialImages(tt.spec, 1)
		if (err == nil) != tt.ok || len(images) != tt.n {
			t.Errorf("initialImages(%q) = %d images, %v", tt.spec, len(images), err)
		}
	}
}

func TestSecretKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sk")
	if err := os.WriteFile(path, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &flags{secretKey: "flag-secret", secretKeyFile: path}
	if got, err := f.secret(); err != nil || got != "file-secret" {
		t.Errorf("secret() = %q, %v", got, err)
	}
	f.secretKeyFile = filepath.Join(dir, "missing")
	if _, err := f.secret(); err == nil {
		t.Error("missing file accepted")
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte(" \n"), 0o600)
	f.secretKeyFile = empty
	if _, err := f.secret(); err == nil {
		t.Error("empty file accepted")
	}
}

func TestBadCommandLine(t *testing.T) {
	logs := &syncBuffer{}
	if code := run(context.Background(), []string{"--images=lots"}, logs); code != 1 {
		t.Errorf("bad --images: exit %d", code)
	}
	if code := run(context.Background(), []string{"--no-such-flag"}, logs); code != 2 {
		t.Errorf("unknown flag: exit %d", code)
	}
	if code := run(context.Background(), []string{"--web.listen-address=256.0.0.1:1"}, logs); code != 1 {
		t.Errorf("bad address: exit %d", code)
	}
}

func TestUntypedListingFlag(t *testing.T) {
	tests := []struct {
		env  string
		args []string
		want string // "" for a refused command line
	}{
		{"", nil, modelartstest.UntypedBuildIn},
		{"ALL", nil, modelartstest.UntypedAll},
		{"BUILD_IN", nil, modelartstest.UntypedBuildIn},
		{"", []string{"--untyped-listing=ALL"}, modelartstest.UntypedAll},
		{"ALL", []string{"--untyped-listing=BUILD_IN"}, modelartstest.UntypedBuildIn},
		{"everything", nil, ""},
		{"", []string{"--untyped-listing=DEDICATED"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.env+strings.Join(tt.args, " "), func(t *testing.T) {
			t.Setenv(modelartstest.UntypedListingEnv, tt.env)
			f, err := parseFlags(tt.args)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("accepted, untyped listing %q", f.untypedListing)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts, _ := f.options(); opts.UntypedListing != tt.want {
				t.Errorf("UntypedListing = %q, want %q", opts.UntypedListing, tt.want)
			}
		})
	}
}

func TestReadingsFlags(t *testing.T) {
	t.Setenv(modelartstest.UntypedListingEnv, "")
	url, logs, stop := start(t, "--untyped-listing=ALL", "--refuse-with-403", "--images=none", "--metadata-session-token=405")
	defer stop()
	// The metadata service answers the session token request with 405.
	put, _ := http.NewRequest(http.MethodPut, url+modelartstest.MetadataTokenPath, nil)
	put.Header.Set("X-Metadata-Token-Ttl-Seconds", "21600")
	putResp, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	_ = putResp.Body.Close()
	if putResp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("session token under --metadata-session-token=405: %d", putResp.StatusCode)
	}
	// A bad token is refused with 403 under --refuse-with-403.
	req, _ := http.NewRequest(http.MethodGet, url+"/v1/"+modelartstest.DefaultProjectID+"/images", nil)
	req.Header.Set("X-Auth-Token", "MIIbogus")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("bad token: %d", resp.StatusCode)
	}
	// A wrong base path is the gateway's APIG.0101.
	if code, body := get(t, url+"/prefix/v1/"+modelartstest.DefaultProjectID+"/images"); code != http.StatusNotFound ||
		!strings.Contains(string(body), modelartstest.CodeAPINotFound) {
		t.Errorf("wrong base path: %d %s", code, body)
	}
	// Answered calls come after the log line that states the readings.
	for _, want := range []string{"untyped_listing=ALL", "refuse_with_403=true", "metadata_session_token=405"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

func TestMetadataFlags(t *testing.T) {
	url, logs, stop := start(t, "--images=none", "--metadata-session-token=required", "--temporary-key-ttl=90m")
	defer stop()
	securityKey := func(session string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url+modelartstest.SecurityKeyPath, nil)
		if session != "" {
			req.Header.Set("X-Metadata-Token", session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	if code, _ := securityKey(""); code != http.StatusUnauthorized {
		t.Errorf("no session token under --metadata-session-token=required: %d", code)
	}
	req, _ := http.NewRequest(http.MethodPut, url+modelartstest.MetadataTokenPath, nil)
	req.Header.Set("X-Metadata-Token-Ttl-Seconds", "21600")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	session, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	code, body := securityKey(string(session))
	var got struct {
		Credential struct {
			ExpiresAt string `json:"expires_at"`
		} `json:"credential"`
	}
	if err := json.Unmarshal(body, &got); code != http.StatusOK || err != nil {
		t.Fatalf("securitykey: %d %v %s", code, err, body)
	}
	expires, err := time.Parse(time.RFC3339Nano, got.Credential.ExpiresAt)
	if ttl := time.Until(expires); err != nil || ttl < 89*time.Minute || ttl > 90*time.Minute {
		t.Errorf("expires_at %s: %v, %v from now under --temporary-key-ttl=90m", got.Credential.ExpiresAt, err, ttl)
	}
	for _, want := range []string{"metadata_endpoint=" + url, "metadata_session_token=required", "temporary_key_ttl=1h30m0s"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	if _, err := parseFlags([]string{"--metadata-session-token=always"}); err == nil {
		t.Error("--metadata-session-token=always accepted")
	}
}

// TestSecurityTokenFlag: --security-token makes the access key a temporary one.
func TestSecurityTokenFlag(t *testing.T) {
	f, err := parseFlags([]string{"--access-key=TEMPKEY", "--secret-key=temp-secret", "--security-token=tok"})
	if err != nil {
		t.Fatal(err)
	}
	url, _, stop := start(t, "--images=none", "--access-key=TEMPKEY", "--secret-key=temp-secret", "--security-token=tok")
	defer stop()
	for _, token := range []string{"", "tok"} {
		req, _ := http.NewRequest(http.MethodGet, url+"/v3/projects", nil)
		if token != "" {
			req.Header.Set("X-Security-Token", token)
		}
		sign(t, req, f.accessKey, f.secretKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		want := http.StatusOK
		if token == "" {
			want = http.StatusUnauthorized
		}
		if resp.StatusCode != want {
			t.Errorf("security token %q: %d, want %d", token, resp.StatusCode, want)
		}
	}
}

// sign signs req with the client's signer, which signs X-Security-Token when
// req carries it.
func sign(t *testing.T, req *http.Request, accessKey, secretKey string) {
	t.Helper()
	s := &modelarts.Signer{AccessKey: accessKey, SecretKey: secretKey}
	if err := s.Sign(req); err != nil {
		t.Fatal(err)
	}
}
