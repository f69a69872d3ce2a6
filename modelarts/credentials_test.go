// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeSecret writes value to file with a modification time of its own, so
// that a rewrite of the same size is seen too.
func writeSecret(t *testing.T, file, value string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(file, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(file, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// TestKeyFilesAreReadAgainWhenTheyChange: a rotated secret key or security
// token file is used by the same client; the security token is sent and
// signed; a file that goes away leaves the last good value in use.
func TestKeyFilesAreReadAgainWhenTheyChange(t *testing.T) {
	dir := t.TempDir()
	skFile, tokenFile := filepath.Join(dir, "sk"), filepath.Join(dir, "token")
	var mu sync.Mutex
	want := struct{ sk, token string }{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sk, token := want.sk, want.token
		mu.Unlock()
		if got := r.Header.Get("X-Security-Token"); got != token {
			t.Errorf("X-Security-Token = %q, want %q", got, token)
		}
		verifySignature(t, r, testAK, sk, "content-type;host;x-project-id;x-sdk-date;x-security-token")
		writeJSON(w, 200, `{"id":"x","status":"ACTIVE"}`)
	})
	c, _ := newAKSKClient(t, handler, func(cfg *Config) {
		cfg.Credentials = Credentials{AccessKey: testAK, SecretKeyFile: skFile, SecurityTokenFile: tokenFile}
	})
	mtime := time.Now().Add(-time.Hour)
	for i, step := range []struct{ sk, token string }{
		{"secret-one", "token-one"},
		{"secret-two", "token-one"}, // same size: the modification time tells
		{"secret-two", "token-three-longer"},
	} {
		mtime = mtime.Add(time.Minute)
		writeSecret(t, skFile, step.sk+"\n", mtime)
		writeSecret(t, tokenFile, step.token+" \n", mtime)
		mu.Lock()
		want = step
		mu.Unlock()
		if _, err := c.ShowImage(context.Background(), "x"); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if err := os.Remove(skFile); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShowImage(context.Background(), "x"); err != nil {
		t.Errorf("secret key file gone: the last good key should be used: %v", err)
	}
}

// TestUnreadableSecretFile: a file that never could be read fails the call,
// without request, with an error that names the file and not its content.
func TestUnreadableSecretFile(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	writeSecret(t, empty, " \n", time.Now())
	tests := []struct {
		name  string
		creds Credentials
		want  string
	}{
		{name: "missing secret key file", creds: Credentials{AccessKey: testAK, SecretKeyFile: filepath.Join(dir, "missing")}, want: "read secret key file " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{name: "empty security token file", creds: Credentials{AccessKey: testAK, SecretKey: testSK, SecurityTokenFile: empty}, want: "read security token file " + empty + ": the file is empty"},
		{name: "missing password file", creds: Credentials{DomainName: "d", Username: "u", PasswordFile: filepath.Join(dir, "missing")}, want: "read password file " + filepath.Join(dir, "missing")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Errorf("request sent: %s", r.URL) })
			c, _ := newAKSKClient(t, handler, func(cfg *Config) { cfg.Credentials, cfg.IAMEndpoint = tt.creds, cfg.Endpoint })
			_, err := c.ShowImage(context.Background(), "x")
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrUnauthorized saying %q", err, tt.want)
			}
		})
	}
}

// TestPasswordFileIsReadAgainWhenItChanges: a rotated password is a new
// credential: the same client logs in with it.
func TestPasswordFileIsReadAgainWhenItChanges(t *testing.T) {
	clock := testStart()
	iam := newFakeIAM(t, clock)
	file := filepath.Join(t.TempDir(), "password")
	writeSecret(t, file, "password-one\n", time.Now().Add(-time.Hour))
	c := newTokenClient(t, iam, &fakeAPI{t: t}, clock, func(cfg *Config) {
		cfg.Credentials = Credentials{DomainName: "dom", Username: "user", PasswordFile: file}
	})
	for range 2 {
		if _, err := c.ShowImage(context.Background(), "x"); err != nil {
			t.Fatal(err)
		}
	}
	writeSecret(t, file, "password-two", time.Now())
	if _, err := c.ShowImage(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, body := range iam.bodies {
		got = append(got, body["auth"].(map[string]any)["identity"].(map[string]any)["password"].(map[string]any)["user"].(map[string]any)["password"].(string))
	}
	if strings.Join(got, ",") != "password-one,password-two" {
		t.Errorf("IAM saw passwords %v, want password-one, then password-two", got)
	}
}
