// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/internal/fakeclock"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// countingObserver counts the requests the client says it sent.
type countingObserver struct {
	mu sync.Mutex
	n  int
}

func (o *countingObserver) ObserveRequest(string, int, time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
}

func (o *countingObserver) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n
}

// TestRefusedAccessKeyIsNotSignedWithAgain: the cloud locks an AK/SK pair
// after five consecutive bad signatures, so after a 401 to a signed request
// (ModelArts, or IAM's project lookup) the client sends nothing signed with
// that key for five minutes and answers the remembered refusal instead. Ten
// scrapes in those five minutes cost one request and never lock the key; the
// first call after them tries again; a new client (a reload) starts afresh.
func TestRefusedAccessKeyIsNotSignedWithAgain(t *testing.T) {
	tests := []struct {
		name      string
		projectID bool // configured; else looked up with ListProjects, which IAM refuses
		refusedOp string
	}{
		{name: "ModelArts refuses the signature", projectID: true, refusedOp: modelartstest.OpListImage},
		{name: "IAM refuses the project lookup", projectID: false, refusedOp: modelartstest.OpListProjects},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refusedAt := time.Date(2026, 11, 26, 12, 0, 1, 0, time.UTC)
			clock := fakeclock.New(refusedAt)
			sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages(), Now: clock.Now})
			t.Cleanup(sim.Close)
			newClient := func(secretKey string, obs modelarts.Observer) *modelarts.Client {
				cfg := modelarts.Config{
					Endpoint: sim.URL, IAMEndpoint: sim.URL, Region: sim.Region(),
					Credentials: modelarts.Credentials{AccessKey: modelartstest.DemoAccessKey, SecretKey: secretKey},
					Observer:    obs,
				}
				if tt.projectID {
					cfg.ProjectID = sim.ProjectID()
				}
				c := modelarts.NewClientWithClock(cfg, clock.Now)
				return c
			}
			obs := &countingObserver{}
			client := newClient("wrong-secret-key", obs)
			ctx := context.Background()
			id := modelartstest.SampleIDs()[0]

			// Ten scrapes 29 s apart, each a ListImage and a ShowImage: 4m50s in all.
			var err error
			for scrape := range 10 {
				clock.Set(refusedAt.Add(time.Duration(scrape) * 29 * time.Second))
				_, err = client.ListImages(ctx, modelarts.ListOptions{Limit: 1000})
				if !errors.Is(err, modelarts.ErrUnauthorized) {
					t.Fatalf("scrape %d: ListImages err = %v, want ErrUnauthorized", scrape, err)
				}
				_, err = client.ShowImage(ctx, id)
				if !errors.Is(err, modelarts.ErrUnauthorized) {
					t.Fatalf("scrape %d: ShowImage err = %v, want ErrUnauthorized", scrape, err)
				}
			}
			if n := sim.Requests(""); n != 1 {
				t.Errorf("%d requests reached the server in 5 minutes after a refusal, want 1", n)
			}
			if n := sim.Requests(tt.refusedOp); n != 1 {
				t.Errorf("%d %s requests, want the one refused", n, tt.refusedOp)
			}
			if n := obs.count(); n != 1 {
				t.Errorf("the observer saw %d requests, want 1: the others were never sent", n)
			}
			if sim.Locked(modelartstest.DemoAccessKey) {
				t.Error("the access key got locked")
			}
			t.Logf("remembered refusal: %v", err)
			for _, want := range []string{
				"not sent: this access key was refused at 2026-11-26T12:00:01Z",
				"waits 5m0s before signing with it again, until 2026-11-26T12:05:01Z",
				"fix the key and reload",
				"HTTP 401", // the remembered refusal
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
			if apiErr := modelarts.AsAPIError(err); apiErr == nil || apiErr.StatusCode != 0 {
				t.Errorf("AsAPIError(err) = %+v, want the unsent call, StatusCode 0", apiErr)
			}
			if strings.Contains(err.Error(), "wrong-secret-key") {
				t.Errorf("error holds the secret key: %v", err)
			}

			// Five minutes after the refusal, one new attempt; refused again,
			// the next call is not sent.
			clock.Set(refusedAt.Add(5 * time.Minute))
			for range 2 {
				if _, err := client.ShowImage(ctx, id); !errors.Is(err, modelarts.ErrUnauthorized) {
					t.Fatalf("after 5m: err = %v, want ErrUnauthorized", err)
				}
			}
			if n := sim.Requests(""); n != 2 {
				t.Errorf("%d requests after 5 minutes, want 2 (one new attempt)", n)
			}
			if sim.Locked(modelartstest.DemoAccessKey) {
				t.Error("the access key got locked")
			}

			// A reload builds a new client: with the right key it works at once.
			if _, err := newClient(modelartstest.DemoSecretKey, nil).ShowImage(ctx, id); err != nil {
				t.Errorf("new client with the right key: %v", err)
			}
		})
	}
}

// TestRefusedKeyIsPausedForEveryClientOfTheProcess: the guard of a key lives
// in the Shared of the process, not in a client. Six projects sharing one
// wrong key, twelve scrapes with a reload (new clients, same Shared) between
// them: one refused signature in five minutes, not 72. A changed secret is a
// different credential and is tried at once.
func TestRefusedKeyIsPausedForEveryClientOfTheProcess(t *testing.T) {
	tests := []struct {
		name      string
		projectID bool // configured; else looked up with ListProjects, which IAM refuses
	}{
		{name: "configured project id", projectID: true},
		{name: "project id looked up", projectID: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
			clock := fakeclock.New(start)
			sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages(), Now: clock.Now})
			t.Cleanup(sim.Close)
			shared := modelarts.NewShared()
			reload := func(secretKey string) []*modelarts.Client {
				var clients []*modelarts.Client
				for range 6 {
					cfg := modelarts.Config{
						Endpoint: sim.URL, IAMEndpoint: sim.URL, Region: sim.Region(),
						Credentials: modelarts.Credentials{AccessKey: modelartstest.DemoAccessKey, SecretKey: secretKey},
						Shared:      shared,
					}
					if tt.projectID {
						cfg.ProjectID = sim.ProjectID()
					}
					c := modelarts.NewClientWithClock(cfg, clock.Now)
					clients = append(clients, c)
				}
				return clients
			}
			ctx := context.Background()
			id := modelartstest.SampleIDs()[0]
			for scrape := range 12 {
				clock.Set(start.Add(time.Duration(scrape) * 24 * time.Second)) // 4m24s in all
				for _, c := range reload("wrong-secret-key") {
					if _, err := c.ShowImage(ctx, id); !errors.Is(err, modelarts.ErrUnauthorized) {
						t.Fatalf("scrape %d: err = %v, want ErrUnauthorized", scrape, err)
					}
				}
			}
			if n := sim.Requests(""); n != 1 {
				t.Errorf("%d requests signed with the wrong key in 5 minutes, want 1", n)
			}
			if sim.Locked(modelartstest.DemoAccessKey) {
				t.Error("the access key got locked")
			}
			for _, c := range reload(modelartstest.DemoSecretKey) {
				if _, err := c.ShowImage(ctx, id); err != nil {
					t.Errorf("the right secret key, during the pause of the wrong one: %v", err)
				}
			}
		})
	}
}
