// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// reloadTokenClients builds, like a reload, one password client per scope
// (a project id, or "" for the region) with shared, against iam and api.
func reloadTokenClients(t *testing.T, shared *Shared, iamURL, apiURL string, clock *fakeClock, password string, scopes []string) []*Client {
	t.Helper()
	var clients []*Client
	for _, projectID := range scopes {
		c := NewClient(Config{
			Endpoint: apiURL, IAMEndpoint: iamURL, Region: "eu-de", ProjectID: projectID,
			Credentials: Credentials{DomainName: "dom", Username: "user", Password: password},
			now:         clock.Now,
			Shared:      shared,
		})
		clients = append(clients, c)
	}
	return clients
}

// TestIAMFailuresAreSharedAcrossClientsAndReloads: the token sources and the
// memory of a refused password live in Shared. Three projects sharing a wrong
// password, eight scrapes with a reload between them: one failed login in
// five minutes, whatever the scopes. IAM answering 500 to a reload storm: one
// token request per user per 30 s, whatever the scopes.
func TestIAMFailuresAreSharedAcrossClientsAndReloads(t *testing.T) {
	const (
		wrong = `{"error":{"code":401,"message":"The username or password is wrong.","title":"Unauthorized"}}`
		busy  = `{"error_code":"IAM.0001","error_msg":"busy"}`
	)
	tests := []struct {
		name      string
		status    int
		body      string
		scopes    []string // of the three projects
		interval  time.Duration
		perWindow int    // token requests in each interval
		wantText  string // in the error of the last project, whose scope waits for another's failure
	}{
		{name: "wrong password, one scope", status: 401, body: wrong, scopes: []string{testProjectID, testProjectID, testProjectID}, interval: refusalPause, perWindow: 1},
		{name: "wrong password, three scopes", status: 401, body: wrong, scopes: []string{testProjectID, "", "fedcba9876543210fedcba9876543210"}, interval: refusalPause, perWindow: 1,
			wantText: "not sent: IAM refused this password at "},
		{name: "IAM 500, one scope", status: 500, body: busy, scopes: []string{testProjectID, testProjectID, testProjectID}, interval: renewRetryInterval, perWindow: 1},
		{name: "IAM 500, two scopes", status: 500, body: busy, scopes: []string{testProjectID, "", ""}, interval: renewRetryInterval, perWindow: 1,
			wantText: "; the exporter waits 30s before asking it again, until "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testStart()
			iam := newFakeIAM(t, clock)
			iam.fail(tt.status, tt.body)
			iamURL, apiURL := startServer(t, iam), startServer(t, &fakeAPI{t: t})
			shared := NewShared()
			for window := 1; window <= 2; window++ {
				var last error
				for scrape := range 8 { // a scrape and a reload, spread over the interval
					for _, c := range reloadTokenClients(t, shared, iamURL, apiURL, clock, testPassword, tt.scopes) {
						_, err := c.ShowImage(context.Background(), "x")
						if AsAPIError(err) == nil || !AsAPIError(err).FromIAM() {
							t.Fatalf("scrape %d: err = %v, want the IAM failure", scrape, err)
						}
						assertNoSecrets(t, err)
						last = err
					}
					clock.Advance(tt.interval / 8)
				}
				if !strings.Contains(last.Error(), tt.wantText) {
					t.Errorf("last error %q does not say %q", last, tt.wantText)
				}
				if n := iam.count(); n != tt.perWindow*window {
					t.Fatalf("after %d intervals of %v: %d token requests, want %d", window, tt.interval, n, tt.perWindow*window)
				}
			}
		})
	}
}

// TestChangedPasswordIsTriedAtOnce: a new password is a new credential, not
// paused by the refusal of the old one.
func TestChangedPasswordIsTriedAtOnce(t *testing.T) {
	clock := testStart()
	iam := newFakeIAM(t, clock)
	iam.fail(401, `{"error":{"code":401,"message":"The username or password is wrong."}}`)
	iamURL, apiURL := startServer(t, iam), startServer(t, &fakeAPI{t: t})
	shared := NewShared()
	c := reloadTokenClients(t, shared, iamURL, apiURL, clock, "old-password", []string{testProjectID})[0]
	if _, err := c.ShowImage(context.Background(), "x"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	iam.fail(0, "")
	c = reloadTokenClients(t, shared, iamURL, apiURL, clock, testPassword, []string{testProjectID})[0]
	if _, err := c.ShowImage(context.Background(), "x"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if n := iam.count(); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

// TestTokenSurvivesReloads: clients built by reloads use the cached token.
func TestTokenSurvivesReloads(t *testing.T) {
	clock := testStart()
	iam := newFakeIAM(t, clock)
	api := &fakeAPI{t: t}
	iamURL, apiURL := startServer(t, iam), startServer(t, api)
	shared := NewShared()
	for range 5 {
		for _, c := range reloadTokenClients(t, shared, iamURL, apiURL, clock, testPassword, []string{testProjectID, testProjectID}) {
			if _, err := c.ShowImage(context.Background(), "x"); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(time.Hour)
	}
	if n := iam.count(); n != 1 {
		t.Errorf("%d token requests for five reloads, want 1", n)
	}
}

// TestAcceptedReplacementRefusedLaterIsRenewed: a replacement token the API
// accepted and later refuses (revoked, or expired on the service's side) is
// renewed as any refused token is, not taken for a fresh token refused.
func TestAcceptedReplacementRefusedLaterIsRenewed(t *testing.T) {
	clock := testStart()
	api := &fakeAPI{t: t, accepted: map[string]bool{"token-1": true}}
	c := newTokenClient(t, newFakeIAM(t, clock), api, clock, nil)
	revoke := func(old, next string) {
		api.mu.Lock()
		api.accepted[old], api.accepted[next] = false, true
		api.mu.Unlock()
	}
	show := func(step string) {
		t.Helper()
		if _, err := c.ShowImage(context.Background(), "x"); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	show("first token")
	revoke("token-1", "token-2")
	show("token-1 revoked: token-2 replaces it")
	show("token-2 in use")
	revoke("token-2", "token-3")
	show("token-2 revoked after it was accepted: token-3 replaces it")
	want := []string{"token-1", "token-1", "token-2", "token-2", "token-2", "token-3"}
	if got := api.seen(); !reflect.DeepEqual(got, want) {
		t.Errorf("API saw %v, want %v", got, want)
	}
}

// TestFreshTokenRefusedIsRemembered: when ModelArts refuses the token that
// replaced a refused one (no ModelArts permission, wrong project scope), a
// new token would be refused too: for five minutes calls fail at once and no
// token is made, across reloads. Then the token is tried again, and renewed
// once.
func TestFreshTokenRefusedIsRemembered(t *testing.T) {
	tests := []struct {
		name    string
		refusal int
	}{
		{name: "401", refusal: 401},
		{name: "403 ModelArts.0203", refusal: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testStart()
			iam := newFakeIAM(t, clock)
			api := &fakeAPI{t: t, refusal: tt.refusal, accepted: map[string]bool{}}
			iamURL, apiURL := startServer(t, iam), startServer(t, api)
			shared := NewShared()
			var err error
			for range 10 { // 10 scrapes and reloads in 4m30s
				for _, c := range reloadTokenClients(t, shared, iamURL, apiURL, clock, testPassword, []string{testProjectID, testProjectID}) {
					if _, err = c.ShowImage(context.Background(), "x"); !errors.Is(err, ErrUnauthorized) {
						t.Fatalf("err = %v, want ErrUnauthorized", err)
					}
				}
				clock.Advance(30 * time.Second)
			}
			if n := iam.count(); n != 2 {
				t.Errorf("%d token requests, want 2: one, and its replacement", n)
			}
			if got, want := api.seen(), []string{"token-1", "token-2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("API saw %v, want %v", got, want)
			}
			if !strings.Contains(err.Error(), "ModelArts refused a token that IAM had just issued in place of a refused one") ||
				AsAPIError(err).FromIAM() {
				t.Errorf("error does not say that ModelArts refused a fresh token: %v", err)
			}
			clock.Advance(30 * time.Second) // five minutes after the refusal
			c := reloadTokenClients(t, shared, iamURL, apiURL, clock, testPassword, []string{testProjectID})[0]
			for range 3 {
				_, _ = c.ShowImage(context.Background(), "x")
			}
			if got, want := api.seen(), []string{"token-1", "token-2", "token-3", "token-4"}; !reflect.DeepEqual(got, want) {
				t.Errorf("API saw %v, want a new token, then one renewal: %v", got, want)
			}
		})
	}
}
