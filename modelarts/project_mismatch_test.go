// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/internal/fakeclock"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// TestProjectMismatchBlindsOnlyItsProject: ModelArts.0210 (the project id in
// the URL does not match the credentials) is ErrForbidden, about that
// project: a typo in one project's id does not pause the key for the other
// projects sharing it.
func TestProjectMismatchBlindsOnlyItsProject(t *testing.T) {
	tests := []struct {
		name        string
		credentials func(sim *modelartstest.Server) modelarts.Credentials
	}{
		{name: "configured key", credentials: func(*modelartstest.Server) modelarts.Credentials {
			return modelarts.Credentials{AccessKey: modelartstest.DemoAccessKey, SecretKey: modelartstest.DemoSecretKey}
		}},
		{name: "temporary keys from the metadata service", credentials: func(sim *modelartstest.Server) modelarts.Credentials {
			return modelarts.Credentials{MetadataEndpoint: sim.URL}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := fakeclock.New(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
			sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages(), Now: clock.Now})
			t.Cleanup(sim.Close)
			shared := modelarts.NewShared()
			newClient := func(projectID string) *modelarts.Client {
				c := modelarts.NewClientWithClock(modelarts.Config{
					Endpoint: sim.URL, ProjectID: projectID, Credentials: tt.credentials(sim), Shared: shared,
				}, clock.Now)
				return c
			}
			typo, good := newClient("f"+sim.ProjectID()[1:]), newClient(sim.ProjectID())
			ctx, id := context.Background(), modelartstest.SampleIDs()[0]
			for scrape := range 3 {
				_, err := typo.ShowImage(ctx, id)
				if !errors.Is(err, modelarts.ErrForbidden) || errors.Is(err, modelarts.ErrUnauthorized) {
					t.Fatalf("scrape %d: wrong project id: err = %v, want ErrForbidden", scrape, err)
				}
				if _, err := good.ShowImage(ctx, id); err != nil {
					t.Fatalf("scrape %d: the other project: %v", scrape, err)
				}
				clock.Advance(time.Minute)
			}
			if n := sim.Requests(modelartstest.OpShowImage); n != 6 {
				t.Errorf("%d ShowImage requests, want 6: nothing held back", n)
			}
		})
	}
}
