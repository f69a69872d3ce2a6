// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts_test

import (
	"context"
	"testing"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// TestQueryValuesSignedAsTheSimulatorChecks: the simulator verifies AK/SK
// signatures on its own; a ListImage with query values that need escaping
// (space, plus, slash, non-ASCII) passes it.
func TestQueryValuesSignedAsTheSimulatorChecks(t *testing.T) {
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	t.Cleanup(sim.Close)
	c := modelarts.NewClient(modelarts.Config{
		Endpoint: sim.URL, ProjectID: sim.ProjectID(),
		Credentials: modelarts.Credentials{AccessKey: modelartstest.DemoAccessKey, SecretKey: modelartstest.DemoSecretKey},
	})
	for _, name := range []string{"my image", "a+b", "a/b", "\u955c\u50cf"} {
		if _, err := c.ListImages(context.Background(), modelarts.ListOptions{Limit: 10, Name: name}); err != nil {
			t.Errorf("ListImages(name %q): %v", name, err)
		}
	}
}
