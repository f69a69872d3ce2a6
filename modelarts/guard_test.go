// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeyIsAcceptedOnlyPastTheSignatureCheck: a key counts as accepted, and
// its calls stop going one at a time, only on a 2xx or on a 4xx with a
// ModelArts error code that refuses nothing: the gateway's 404 (a wrong base
// path), 429 or 5xx come before the signature is checked. After one of them,
// six projects calling at once with a wrong key send one bad signature.
func TestKeyIsAcceptedOnlyPastTheSignatureCheck(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		code     string // "": no JSON body
		accepted bool
	}{
		{name: "gateway 404, wrong base path", status: 404, code: "APIG.0101"},
		{name: "404 without body", status: 404},
		{name: "gateway 429", status: 429, code: "APIG.0308"},
		{name: "gateway 400", status: 400, code: "APIG.0201"},
		{name: "gateway 502", status: 502, code: "APIG.0202"},
		{name: "403 ModelArts.0210", status: 403, code: "ModelArts.0210", accepted: true},
		{name: "400 ModelArts.6404", status: 400, code: "ModelArts.6404", accepted: true},
		{name: "200", status: 200, accepted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var checking atomic.Bool // the path is fixed: the key is checked, and refused
			var refused atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case checking.Load():
					refused.Add(1)
					time.Sleep(100 * time.Millisecond) // every caller is waiting by now
					writeJSON(w, 401, `{"error_code":"APIG.0301","error_msg":"verify aksk signature fail"}`)
				case tt.status == 200:
					writeJSON(w, 200, showImageExample)
				case tt.code == "":
					w.WriteHeader(tt.status)
				default:
					writeJSON(w, tt.status, `{"error_code":"`+tt.code+`","error_msg":"m"}`)
				}
			}))
			t.Cleanup(srv.Close)
			shared := NewShared()
			newClient := func() *Client {
				c := NewClient(Config{Endpoint: srv.URL, ProjectID: testProjectID,
					Credentials: Credentials{AccessKey: testAK, SecretKey: testSK}, Shared: shared})
				return c
			}
			_, _ = newClient().ShowImage(context.Background(), testImageID)
			checking.Store(true)
			var wg sync.WaitGroup
			for range 6 {
				wg.Go(func() { _, _ = newClient().ShowImage(context.Background(), testImageID) })
			}
			wg.Wait()
			switch n := refused.Load(); {
			case !tt.accepted && n != 1:
				t.Errorf("%d bad signatures from six projects at once, want 1: the key was never accepted", n)
			case tt.accepted && n < 2:
				t.Errorf("%d calls, want the six at once: the key was accepted", n)
			}
		})
	}
}

// TestConcurrentLoginsWithANewPassword: projects of different scopes that
// start at once with a password IAM never accepted log in one at a time: a
// wrong password costs one failed login, a failing IAM one request.
func TestConcurrentLoginsWithANewPassword(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		class  error
	}{
		{name: "wrong password", status: 401, body: `{"error":{"code":401,"message":"The username or password is wrong."}}`, class: ErrUnauthorized},
		{name: "IAM 500", status: 500, body: `{"error_code":"IAM.0001","error_msg":"busy"}`, class: ErrServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testStart()
			iam := newFakeIAM(t, clock)
			iam.fail(tt.status, tt.body)
			iam.release = make(chan struct{})
			iamURL, apiURL := startServer(t, iam), startServer(t, &fakeAPI{t: t})
			scopes := []string{testProjectID, ""}
			for i := range 4 {
				scopes = append(scopes, fmt.Sprintf("%032x", i))
			}
			clients := reloadTokenClients(t, NewShared(), iamURL, apiURL, clock, testPassword, scopes)
			errs := make(chan error, len(clients))
			for _, c := range clients {
				go func() { _, err := c.ShowImage(context.Background(), "x"); errs <- err }()
			}
			time.Sleep(100 * time.Millisecond) // every client is logging in
			close(iam.release)
			for range clients {
				if err := <-errs; !errors.Is(err, tt.class) || !AsAPIError(err).FromIAM() {
					t.Errorf("err = %v, want IAM's %v", err, tt.class)
				}
			}
			if n := iam.count(); n != 1 {
				t.Errorf("%d token requests from %d scopes at once, want 1", n, len(scopes))
			}
		})
	}
}

// TestRevokedTemporaryKeysAreReplaced: temporary keys the cloud refuses
// (revoked early) are dropped, and the next call asks the metadata service
// for new ones instead of waiting hours for the refresh.
func TestRevokedTemporaryKeysAreReplaced(t *testing.T) {
	tests := []struct {
		name   string
		status int
		code   string
	}{
		{name: "401 APIG.0301", status: 401, code: "APIG.0301"},
		{name: "403 ModelArts.0206", status: 403, code: "ModelArts.0206"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := &fakeMetadata{t: t, clock: testStart(), lifetime: 24 * time.Hour}
			api := &metadataAPI{t: t}
			var revoked atomic.Value // the access key refused
			revoked.Store("")
			refusing := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.Header.Get("Authorization"), "Access="+revoked.Load().(string)+",") {
					writeJSON(w, tt.status, `{"error_code":"`+tt.code+`","error_msg":"refused"}`)
					return
				}
				api.ServeHTTP(w, r)
			})
			c := newMetadataClient(t, md, startServer(t, md), startServer(t, refusing), NewShared())
			show := func() error { _, err := c.ShowImage(context.Background(), "x"); return err }
			if err := show(); err != nil {
				t.Fatal(err)
			}
			revoked.Store("AK-1")
			if err := show(); !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("revoked keys: err = %v, want ErrUnauthorized", err)
			}
			if err := show(); err != nil {
				t.Fatalf("after the refusal: %v, want new keys", err)
			}
			if n := md.count(); n != 2 {
				t.Errorf("%d key requests, want 2", n)
			}
			if got := strings.Join(api.access, ","); got != "AK-1,AK-2" {
				t.Errorf("API accepted keys %s, want AK-1,AK-2", got)
			}
		})
	}
}

// TestSharedForgetsReplacedSecrets: Shared holds one entry per credential
// identity, not one per secret ever used: a rotated key, a changed password
// or refreshed temporary keys replace the entry, and no old password stays
// in memory.
func TestSharedForgetsReplacedSecrets(t *testing.T) {
	tests := []struct {
		name string
		// setup starts the servers and returns a call made with the i-th secret.
		setup                   func(t *testing.T, shared *Shared) func(i int) error
		keys, passwords, tokens int // entries in the end
	}{
		{name: "rotated secret key", keys: 1, setup: rotatingKeys},
		{name: "changed password", passwords: 1, tokens: 2, setup: changingPasswords},
		{name: "refreshed temporary keys", keys: 1, setup: refreshingKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shared := NewShared()
			use := tt.setup(t, shared)
			for i := range 5 {
				if err := use(i); err != nil {
					t.Fatalf("secret %d: %v", i, err)
				}
			}
			shared.mu.Lock()
			defer shared.mu.Unlock()
			var keys, passwords, tokens int
			for id, entry := range shared.entries {
				switch id.(type) {
				case accessKeys:
					keys++
				case passwordID:
					passwords++
				case tokenID:
					tokens++
					if entry.(*tokenSource).password != "password-4" {
						t.Error("a token source holds a replaced password")
					}
				}
			}
			if keys != tt.keys || passwords != tt.passwords || tokens != tt.tokens {
				t.Errorf("after five secrets: %d key guards, %d password guards, %d token sources; want %d, %d, %d",
					keys, passwords, tokens, tt.keys, tt.passwords, tt.tokens)
			}
		})
	}
}

// rotatingKeys returns a call signed with secret key "sk-i" of one access key.
func rotatingKeys(t *testing.T, shared *Shared) func(int) error {
	url := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, `{"id":"x","status":"ACTIVE"}`)
	}))
	return func(i int) error {
		c := NewClient(Config{Endpoint: url, ProjectID: testProjectID, Shared: shared,
			Credentials: Credentials{AccessKey: testAK, SecretKey: fmt.Sprint("sk-", i)}})
		_, err := c.ShowImage(context.Background(), "x")
		return err
	}
}

// changingPasswords returns calls of two scopes with password "password-i" of one user.
func changingPasswords(t *testing.T, shared *Shared) func(int) error {
	clock := testStart()
	iamURL, apiURL := startServer(t, newFakeIAM(t, clock)), startServer(t, &fakeAPI{t: t})
	return func(i int) error {
		for _, c := range reloadTokenClients(t, shared, iamURL, apiURL, clock, fmt.Sprint("password-", i), []string{testProjectID, ""}) {
			if _, err := c.ShowImage(context.Background(), "x"); err != nil {
				return err
			}
		}
		return nil
	}
}

// refreshingKeys returns a call with the temporary keys of a metadata
// service, due for a refresh each time.
func refreshingKeys(t *testing.T, shared *Shared) func(int) error {
	md := &fakeMetadata{t: t, clock: testStart(), lifetime: time.Hour}
	mdURL, apiURL := startServer(t, md), startServer(t, &metadataAPI{t: t})
	return func(int) error {
		md.clock.Advance(20 * time.Minute)
		_, err := newMetadataClient(t, md, mdURL, apiURL, shared).ShowImage(context.Background(), "x")
		return err
	}
}
