// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/crypto/bcrypt"

	"github.com/modelarts-exporter/modelarts_exporter/internal/testca"
	"github.com/modelarts-exporter/modelarts_exporter/internal/testproxy"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// TestBinaryWebConfigTLSAndBasicAuth serves the metrics over TLS with basic
// auth through --web.config.file, with a generated certificate and a bcrypt
// hash: only a client that trusts the CA and sends a known user's password
// gets in (the reload endpoint too), plain HTTP is not served, and neither
// the password nor its hash is logged.
func TestBinaryWebConfigTLSAndBasicAuth(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	dir := t.TempDir()
	cfgPath := testConfig(t, dir, sim, modelartstest.SampleIDs()[:1])
	ca := testca.New(t, dir)
	pool, certFile, keyFile := ca.Pool, ca.CertFile, ca.KeyFile
	const user, password = "prometheus", "Scrape-Pa55-word-for-tests"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web-config.yml")
	if err := os.WriteFile(webConfig, fmt.Appendf(nil, "tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  %s: %s\n",
		certFile, keyFile, user, hash), 0o600); err != nil {
		t.Fatal(err)
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer trusting.CloseIdleConnections()
	exp := startExporter(t, exporterOptions{scheme: "https", client: trusting, user: user, password: password},
		"--config.file="+cfgPath, "--web.config.file="+webConfig)

	get := func(client *http.Client, url, u, p string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if u != "" {
			req.SetBasicAuth(u, p)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), nil
	}
	base := "https://" + exp.addr
	code, body, err := get(trusting, base+"/metrics", user, password)
	if err != nil || code != http.StatusOK || !strings.Contains(body, `modelarts_image_up{id="`+modelartstest.SampleIDs()[0]+`",project="aksk"} 1`) {
		t.Errorf("TLS + right password: %d %v\n%.500s", code, err, body)
	}
	for _, tc := range []struct{ name, user, password string }{
		{"no credentials", "", ""},
		{"wrong password", user, "wrong"},
		{"unknown user", "admin", password},
	} {
		if code, _, err := get(trusting, base+"/metrics", tc.user, tc.password); err != nil || code != http.StatusUnauthorized {
			t.Errorf("%s: %d %v, want 401", tc.name, code, err)
		}
	}
	if code, _, err := get(trusting, base+"/-/reload", "", ""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("reload without credentials: %d %v, want 401", code, err)
	}
	// Plain HTTP is not served, and a client that does not trust the CA refuses the server.
	if code, _, err := get(http.DefaultClient, "http://"+exp.addr+"/metrics", user, password); err == nil && code == http.StatusOK {
		t.Error("plain HTTP served the metrics")
	}
	untrusting := &http.Client{Transport: &http.Transport{}}
	defer untrusting.CloseIdleConnections()
	if _, _, err := get(untrusting, base+"/metrics", user, password); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA: %v, want a certificate error", err)
	}
	if logs := exp.logs.String(); strings.Contains(logs, password) || strings.Contains(logs, string(hash)) {
		t.Error("the web password or its hash is logged")
	}
}

// TestSecretFilesRereadWhenTheyChange: secret_key_file and password_file are
// read again when they change, so a rotated secret is used without a reload
// (and not paused by the refusal of the old one); a reload uses them too.
func TestSecretFilesRereadWhenTheyChange(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	dir := t.TempDir()
	id := modelartstest.SampleIDs()[0]
	cfg := fmt.Sprintf(`projects:
  - name: aksk
    region: eu-de
    project_id: %[1]s
    modelarts_endpoint: %[2]s
    iam_endpoint: %[2]s
    auth: {access_key: %[3]s, secret_key_file: sk}
    images: [%[4]s]
  - name: token
    region: eu-de
    modelarts_endpoint: %[2]s
    iam_endpoint: %[2]s
    auth: {domain_name: %[5]s, username: %[6]s, password_file: pw}
    images: [%[4]s]
`, sim.ProjectID(), sim.URL, modelartstest.DemoAccessKey, id, modelartstest.DemoDomain, modelartstest.DemoUser)
	cfgPath := filepath.Join(dir, "modelarts_exporter.yml")
	writeFile := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("modelarts_exporter.yml", cfg)
	writeFile("sk", "not-the-secret-key\n")
	writeFile("pw", "not-the-password\n")
	exp, mux, _ := startInProcess(t, cfgPath, options{})
	scrape := func() map[string]*dto.MetricFamily { _, f := scrapeIn(t, mux); return f }

	up := func(f map[string]*dto.MetricFamily, project string) float64 {
		return gaugeValue(f, "modelarts_image_up", map[string]string{"project": project, "id": id})
	}
	if families := scrape(); up(families, "aksk") != 0 || up(families, "token") != 0 {
		t.Fatalf("wrong secrets but images up: aksk %v, token %v", up(families, "aksk"), up(families, "token"))
	}

	// The right secrets, written by a sidecar: picked up without a reload. A
	// changed secret is a new credential, not paused by the refusal of the old.
	writeFile("sk", modelartstest.DemoSecretKey+"\n")
	writeFile("pw", modelartstest.DemoPassword+"\n")
	waitFor(t, "the right secrets in use without a reload", scrape, func(f map[string]*dto.MetricFamily) bool {
		return up(f, "aksk") == 1 && up(f, "token") == 1
	})

	// Rotated to secrets the simulator does not know: down, again without a reload...
	writeFile("sk", "rotated-secret-key\n")
	writeFile("pw", "rotated-password\n")
	waitFor(t, "the rotated secrets in use", scrape, func(f map[string]*dto.MetricFamily) bool {
		return up(f, "aksk") == 0 && up(f, "token") == 0
	})
	// ...and back, through a reload this time.
	writeFile("sk", modelartstest.DemoSecretKey+"\n")
	writeFile("pw", modelartstest.DemoPassword+"\n")
	if err := exp.reload(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the right secrets in use after a reload", scrape, func(f map[string]*dto.MetricFamily) bool {
		return up(f, "aksk") == 1 && up(f, "token") == 1
	})
}

// TestNeverLeaksSecrets runs the exporter through good scrapes, every fault
// of the simulator, an IAM answer that echoes the password, broken
// configuration files (reloaded, and checked by --config.check) and every
// endpoint: no secret is in a log line (at debug level) or an answer.
func TestNeverLeaksSecrets(t *testing.T) {
	t.Parallel()
	const (
		secretKey     = "SkCanaryQ7f3a9c2e41d0b6e8f1a2b3c4d5e6f7"
		fileSecretKey = "SkCanaryFileZ0x9y8w7v6u5t4s3r2q1p0o9n8"
		securityToken = "StCanaryTokenM4n5b6v7c8x9z0l1k2j3h4g5"
		password      = "PwCanary-h8g7f6e5d4c3b2a1"
		proxyPassword = "ProxyPwCanary-1q2w3e4r5t"
	)
	secrets := []string{secretKey, fileSecretKey, securityToken, password, proxyPassword}

	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	sim.AddKey("TEMPACCESSKEYCANARY0", secretKey, securityToken)
	sim.AddKey("FILEACCESSKEYCANARY0", fileSecretKey, "")
	sim.AddUser(modelartstest.User{Domain: modelartstest.DemoDomain, Name: "canary-user", Password: password})

	dir := t.TempDir()
	for name, content := range map[string]string{"sk": fileSecretKey, "st": securityToken, "pw": password} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ids := modelartstest.SampleIDs()[:3]
	project := func(name, auth string) string {
		return fmt.Sprintf("  - name: %s\n    region: eu-de\n    project_id: %s\n    modelarts_endpoint: %s\n    iam_endpoint: %s\n    auth:\n%s    images: [%s]\n",
			name, sim.ProjectID(), sim.URL, sim.URL, auth, strings.Join(ids, ", "))
	}
	tempAuth := "      access_key: TEMPACCESSKEYCANARY0\n      secret_key: " + secretKey + "\n      security_token_file: st\n"
	fileAuth := "      access_key: FILEACCESSKEYCANARY0\n      secret_key_file: sk\n"
	tokenAuth := "      domain_name: " + modelartstest.DemoDomain + "\n      username: canary-user\n      password_file: pw\n"
	inlineTokenAuth := "      domain_name: " + modelartstest.DemoDomain + "\n      username: canary-user\n      password: " + password + "\n"
	proxy := testproxy.New(t, strings.TrimPrefix(sim.URL, "http://"))
	proxied := &proxy.Forwarded
	proxyURL := strings.Replace(proxy.URL, "http://", "http://proxyuser:"+proxyPassword+"@", 1)
	good := "global:\n  scrape_timeout: 5s\nprojects:\n" + project("temp", tempAuth) + project("file", fileAuth) + project("token", tokenAuth) +
		project("proxied", fileAuth) + "    proxy_url: " + proxyURL + "\n"
	cfgPath := filepath.Join(dir, "modelarts_exporter.yml")
	if err := os.WriteFile(cfgPath, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}

	_, mux, logBuf := startInProcess(t, cfgPath, options{lifecycle: true, logLevel: "debug"})
	do := func(method, path string, header http.Header) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, nil)
		maps.Copy(req.Header, header)
		mux.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	var seen strings.Builder // every answer the exporter gave
	record := func(what string, code int, body string) {
		fmt.Fprintf(&seen, "=== %s: %d\n%s\n", what, code, body)
	}
	scrape := func(what string) string {
		code, body := do(http.MethodGet, "/metrics", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"3"}})
		record(what, code, body)
		if code != http.StatusOK {
			t.Errorf("%s: /metrics answered %d, want 200: the exporter must keep serving", what, code)
		}
		return body
	}

	// Good run: every project up, so every secret was read and used.
	body := scrape("good scrape")
	for _, p := range []string{"temp", "file", "token", "proxied"} {
		if !strings.Contains(body, `modelarts_up{project="`+p+`"} 1`) {
			t.Fatalf("project %s not up in the good run: the test would prove nothing", p)
		}
	}
	if proxied.Load() == 0 {
		t.Fatal("nothing went through the proxy: its password was never used")
	}
	for _, path := range []string{"/", "/-/healthy", "/-/reload", "/nonexistent"} {
		code, body := do(http.MethodGet, path, nil)
		record("GET "+path, code, body)
	}

	// Every fault of the simulator.
	faults := []modelartstest.Fault{
		{Kind: modelartstest.FaultStatus, Status: 401},
		{Kind: modelartstest.FaultStatus, Status: 403},
		{Kind: modelartstest.FaultStatus, Status: 429},
		{Kind: modelartstest.FaultStatus, Status: 429, ErrorCode: "ModelArts.4206"},
		{Kind: modelartstest.FaultStatus, Status: 500},
		{Kind: modelartstest.FaultRaw, Status: 502},
		{Kind: modelartstest.FaultRaw, Status: 503, Body: "<html><title>maintenance</title></html>"},
		{Kind: modelartstest.FaultDelay, Delay: 10 * time.Second},
		{Kind: modelartstest.FaultMalformedJSON},
		{Kind: modelartstest.FaultTruncatedJSON},
		{Kind: modelartstest.FaultReset},
		{Kind: modelartstest.FaultOversized, Size: 9 << 20},
		{Kind: modelartstest.FaultWrongTypes},
		{Kind: modelartstest.FaultUnknownFields},
		{Kind: modelartstest.FaultUnknownStatus},
		// IAM refuses the login and quotes the password back: it is scrubbed.
		{Kind: modelartstest.FaultStatus, Operation: modelartstest.OpCreateToken, Status: 401, ErrorMsg: "The password " + password + " is wrong"},
		{Kind: modelartstest.FaultStatus, Operation: modelartstest.OpCreateToken, Status: 400, ErrorMsg: "bad request for " + password},
		{Kind: modelartstest.FaultRaw, Operation: modelartstest.OpCreateToken, Status: 502, Body: "<html><title>" + password + "</title></html>"},
	}
	for i, f := range faults {
		if f.Operation == modelartstest.OpCreateToken {
			// A fresh configuration, so that the token must be asked for.
			if code, body := do(http.MethodPost, "/-/reload", nil); code != http.StatusOK {
				t.Fatalf("reload: %d %s", code, body)
			}
		}
		remove := sim.AddFault(f)
		scrape(fmt.Sprintf("fault %d: %s %s %d", i, f.Kind, f.Operation, f.Status))
		remove()
	}
	sim.ExpireTokens()
	scrape("tokens expired")

	// Broken configuration files, reloaded (SIGHUP takes the same path) and
	// checked; every one is refused.
	broken := map[string]string{
		"password as a list":     strings.Replace(good, tokenAuth, "      domain_name: d\n      username: u\n      password: ["+password+"]\n", 1),
		"password as a map":      strings.Replace(good, tokenAuth, "      domain_name: d\n      username: u\n      password: {"+password+": 1}\n", 1),
		"password with a colon":  strings.Replace(good, tokenAuth, "      domain_name: d\n      username: u\n      password: "+password+": x\n", 1),
		"unterminated quote":     strings.Replace(good, "secret_key: "+secretKey, `secret_key: "`+secretKey, 1),
		"colon missing":          strings.Replace(good, "secret_key: "+secretKey, "secret_key "+secretKey, 1),
		"secret on its own line": strings.Replace(good, "      secret_key: "+secretKey+"\n", "      secret_key:\n      "+secretKey+"\n", 1),
		"secret key twice":       strings.Replace(good, "      secret_key: "+secretKey+"\n", "      secret_key: "+secretKey+"\n      secret_key_file: sk\n", 1),
		"password and its file":  strings.Replace(good, tokenAuth, inlineTokenAuth+"      password_file: pw\n", 1),
		"proxy url, bad scheme":  strings.Replace(good, "proxy_url: "+proxyURL, "proxy_url: "+strings.Replace(proxyURL, "http://", "ftp://", 1), 1),
		"secret in a good url":   strings.Replace(good, "    modelarts_endpoint: "+sim.URL+"\n", "    modelarts_endpoint: http://user:"+password+"@127.0.0.1:1\n", 1),
		"secret tagged !!int":    strings.Replace(good, "secret_key: "+secretKey, "secret_key: !!int "+secretKey, 1),
		"secret in an int field": strings.Replace(good, "secret_key: "+secretKey, "secret_key: &sk "+secretKey, 1) + "    rate_burst: *sk\n",
	}
	for name, content := range broken {
		if content == good {
			t.Fatalf("broken file %q is not broken: fix the test", name)
		}
		if err := os.WriteFile(cfgPath, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		code, body := do(http.MethodPost, "/-/reload", nil)
		record("POST /-/reload, "+name, code, body)
		if code != http.StatusInternalServerError {
			t.Errorf("broken file %q: reload answered %d, want 500", name, code)
		}
		out, _ := exec.Command(exporterBinary(t), "--config.check", "--config.file="+cfgPath).CombinedOutput()
		record("--config.check, "+name, 0, string(out))
	}
	if err := os.WriteFile(cfgPath, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	code, reloadBody := do(http.MethodPost, "/-/reload", nil)
	record("POST /-/reload, good", code, reloadBody)
	out, _ := exec.Command(exporterBinary(t), "--config.check", "--config.file="+cfgPath).CombinedOutput()
	record("--config.check, good", 0, string(out))
	scrape("final scrape")

	logs := logBuf.String()
	if n := strings.Count(logs, "\n"); n < 50 {
		t.Errorf("only %d log lines: the faults were not exercised", n)
	}
	for _, s := range secrets {
		for _, place := range []struct{ name, text string }{{"the log", logs}, {"an answer", seen.String()}} {
			if i := strings.Index(place.text, s); i >= 0 {
				start, end := max(i-300, 0), min(i+len(s)+100, len(place.text))
				t.Errorf("secret %q found in %s:\n...%s...", s, place.name, place.text[start:end])
			}
		}
	}
}

// TestBinaryConfigCheckRedactsURLUserinfo: --config.check does not quote an
// endpoint or proxy_url that does not parse with the password in its user
// information.
func TestBinaryConfigCheckRedactsURLUserinfo(t *testing.T) {
	t.Parallel()
	const password = "PwCanary-in-a-url-0b1c2d"
	dir := t.TempDir()
	for name, line := range map[string]string{
		"endpoint":  "modelarts_endpoint: http://user:" + password + "@[::1",
		"proxy_url": "proxy_url: http://user:" + password + "@[::1",
	} {
		cfg := "projects:\n  - name: p\n    region: eu-de\n    " + line + "\n    auth: {access_key: AK, secret_key: SK}\n    images: [" + modelartstest.SampleIDs()[0] + "]\n"
		path := filepath.Join(dir, name+".yml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command(exporterBinary(t), "--config.check", "--config.file="+path).CombinedOutput()
		if strings.Contains(string(out), password) {
			t.Errorf("%s: the password of the URL is printed:\n%s", name, out)
		}
	}
}
