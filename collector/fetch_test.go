// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"testing"

	"github.com/go-kit/log"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// simProject is a project on sim with the demo key, as NewProjects builds it.
func simProject(t testing.TB, sim *modelartstest.Server, imageIDs []string, secretKey string) Project {
	t.Helper()
	return simProjectAt(t, sim.URL, sim.ProjectID(), imageIDs, secretKey)
}

// simProjectAt is a project on the simulator at url with the demo key.
func simProjectAt(t testing.TB, url, projectID string, imageIDs []string, secretKey string) Project {
	t.Helper()
	client, err := modelarts.NewClient(modelarts.Config{
		Endpoint:    url,
		ProjectID:   projectID,
		Credentials: modelarts.Credentials{AccessKey: modelartstest.DemoAccessKey, SecretKey: secretKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	return Project{Name: "p", Client: client, ImageIDs: imageIDs, Concurrency: 10}
}

// scrapeOnce scrapes p once with a fresh Scraper.
func scrapeOnce(p Project) ProjectResult {
	return NewScraper(log.NewNopLogger(), []Project{p}).Scrape(context.Background())[0]
}

// assertAllUp fails unless every image of res was fetched.
func assertAllUp(t *testing.T, res ProjectResult, want int) {
	t.Helper()
	if !res.Up || len(res.Images) != want {
		t.Fatalf("up = %v, %d images; want true, %d", res.Up, len(res.Images), want)
	}
	for _, r := range res.Images {
		if r.Err != nil || r.Image == nil || r.Image.ID != r.ID {
			t.Fatalf("image %s: %v", r.ID, r.Err)
		}
	}
}

