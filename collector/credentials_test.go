// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// reloadStorm scrapes n projects with creds, rebuilding every client (as a
// reload does) before each of scrapes scrapes; the clients share one
// modelarts.Shared, as the process's do. It returns the last results.
func reloadStorm(t *testing.T, sim *modelartstest.Server, n, scrapes int, creds modelarts.Credentials) []ProjectResult {
	t.Helper()
	shared := modelarts.NewShared()
	ids := modelartstest.SampleIDs()
	var res []ProjectResult
	for range scrapes {
		projects := make([]Project, n)
		for i := range projects {
			client := modelarts.NewClient(modelarts.Config{
				Endpoint: sim.URL, IAMEndpoint: sim.URL, ProjectID: sim.ProjectID(), Region: sim.Region(),
				Credentials: creds, Shared: shared,
			})
			projects[i] = Project{Name: fmt.Sprintf("p%d", i), Client: client, ImageIDs: ids, Concurrency: 10}
		}
		s := NewScraper(log.NewNopLogger(), projects)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res = s.Scrape(ctx)
		cancel()
		s.Close()
	}
	return res
}

// TestCredentialsCannotBeBurned: however many projects share a refused
// credential, and however often the configuration is reloaded, the cloud
// sees one refused attempt, not one per project and scrape.
func TestCredentialsCannotBeBurned(t *testing.T) {
	t.Parallel()
	demoUser := func(password string) modelarts.Credentials {
		return modelarts.Credentials{DomainName: modelartstest.DemoDomain, Username: modelartstest.DemoUser, Password: password}
	}
	tests := []struct {
		name      string
		creds     modelarts.Credentials
		projects  int
		scrapes   int
		fault     *modelartstest.Fault
		op        string // the operation whose refused or failed calls are counted
		status    int
		maxCalls  int
		refuse403 bool
	}{
		{name: "six projects, a wrong secret key, 12 reloads", creds: modelarts.Credentials{AccessKey: modelartstest.DemoAccessKey, SecretKey: "wrong"},
			projects: 6, scrapes: 12, maxCalls: 1},
		{name: "the same, refused with 403 ModelArts.0206", creds: modelarts.Credentials{AccessKey: modelartstest.DemoAccessKey, SecretKey: "wrong"},
			projects: 6, scrapes: 12, maxCalls: 1, refuse403: true},
		{name: "three projects, a wrong password, 8 reloads", creds: demoUser("wrong"),
			projects: 3, scrapes: 8, op: modelartstest.OpCreateToken, status: 401, maxCalls: 1},
		{name: "IAM answering 500, 8 reloads", creds: demoUser(modelartstest.DemoPassword),
			fault:    &modelartstest.Fault{Kind: modelartstest.FaultStatus, Operation: modelartstest.OpCreateToken, Status: 500},
			projects: 3, scrapes: 8, op: modelartstest.OpCreateToken, maxCalls: 1},
		{name: "ModelArts refusing every token, 8 reloads", creds: demoUser(modelartstest.DemoPassword),
			fault:    &modelartstest.Fault{Kind: modelartstest.FaultStatus, Status: 401, ErrorCode: "ModelArts.0203"},
			projects: 3, scrapes: 8, op: modelartstest.OpCreateToken, maxCalls: 2}, // a token, and the one that replaced it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages(), RefuseWith403: tt.refuse403})
			defer sim.Close()
			if tt.fault != nil {
				sim.AddFault(*tt.fault)
			}
			res := reloadStorm(t, sim, tt.projects, tt.scrapes, tt.creds)
			got := sim.RefusedSignatures(modelartstest.DemoAccessKey)
			what := "refused signatures"
			if tt.op != "" {
				got, what = sim.Requests(tt.op), tt.op+" requests"
				if tt.status != 0 {
					got, what = sim.RequestsWithStatus(tt.op, tt.status), fmt.Sprintf("%s answered %d", tt.op, tt.status)
				}
			}
			t.Logf("%d projects, %d scrapes with a reload before each: %d %s", tt.projects, tt.scrapes, got, what)
			if got > tt.maxCalls {
				t.Errorf("%d %s, want at most %d", got, what, tt.maxCalls)
			}
			for _, p := range res {
				if p.Up {
					t.Errorf("project %s up", p.Name)
				}
			}
			if sim.Locked(modelartstest.DemoAccessKey) {
				t.Error("the access key got locked")
			}
		})
	}
}

// TestRightSecretTriedAtOnce: a refused key does not pause the right one:
// fixing the secret works in the next scrape.
func TestRightSecretTriedAtOnce(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	shared := modelarts.NewShared()
	for _, secret := range []string{"wrong", modelartstest.DemoSecretKey} {
		client := modelarts.NewClient(modelarts.Config{Endpoint: sim.URL, ProjectID: sim.ProjectID(), Shared: shared,
			Credentials: modelarts.Credentials{AccessKey: modelartstest.DemoAccessKey, SecretKey: secret}})
		res := scrapeOnce(Project{Name: "p", Client: client, ImageIDs: modelartstest.SampleIDs(), Concurrency: 10})
		if res.Up != (secret == modelartstest.DemoSecretKey) {
			t.Errorf("secret %q: up = %v", secret, res.Up)
		}
	}
}

// TestRotatingCredentials: temporary keys from the ECS metadata service, and
// a secret key file a sidecar rewrites, are picked up without a reload: every
// scrape across several rotations is up, and not one call is refused.
func TestRotatingCredentials(t *testing.T) {
	t.Parallel()
	t.Run("ECS metadata", func(t *testing.T) {
		t.Parallel()
		const ttl = 2 * time.Second
		sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages(), TemporaryKeyTTL: ttl})
		defer sim.Close()
		client := modelarts.NewClient(modelarts.Config{Endpoint: sim.URL, ProjectID: sim.ProjectID(), Shared: modelarts.NewShared(),
			Credentials: modelarts.Credentials{MetadataEndpoint: sim.URL}})
		s := NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: client, ImageIDs: modelartstest.SampleIDs(), Concurrency: 10}})
		// A key is replaced at half its life: three keys take a little more than ttl.
		scrapes := 0
		for end := time.Now().Add(10 * ttl); sim.TemporaryKeysIssued() < 3 && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			assertAllUp(t, s.Scrape(context.Background())[0], len(modelartstest.SampleIDs()))
			scrapes++
		}
		assertAllUp(t, s.Scrape(context.Background())[0], len(modelartstest.SampleIDs())) // with the newest key
		scrapes++
		issued, asked := sim.TemporaryKeysIssued(), sim.Requests(modelartstest.OpSecurityKey)
		if issued < 3 || sim.RefusedSignatures("") != 0 {
			t.Errorf("%d keys issued, %d refused signatures; want at least 3 rotations and none refused", issued, sim.RefusedSignatures(""))
		}
		if asked > 2*issued+2 || asked >= scrapes {
			t.Errorf("the metadata service was asked %d times in %d scrapes: more than when a refresh was due", asked, scrapes)
		}
	})
	t.Run("secret_key_file", func(t *testing.T) {
		t.Parallel()
		sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
		defer sim.Close()
		file := filepath.Join(t.TempDir(), "sk")
		client := modelarts.NewClient(modelarts.Config{Endpoint: sim.URL, ProjectID: sim.ProjectID(), Shared: modelarts.NewShared(),
			Credentials: modelarts.Credentials{AccessKey: "ROTATINGKEY", SecretKeyFile: file}})
		s := NewScraper(log.NewNopLogger(), []Project{{Name: "p", Client: client, ImageIDs: modelartstest.SampleIDs(), Concurrency: 10}})
		for i := range 3 {
			secret := fmt.Sprintf("rotated-secret-%d-0123456789abcdef", i)
			sim.AddKey("ROTATINGKEY", secret, "") // the cloud's new secret, and the sidecar's file
			if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			assertAllUp(t, s.Scrape(context.Background())[0], len(modelartstest.SampleIDs()))
		}
		if n := sim.RefusedSignatures(""); n != 0 {
			t.Errorf("%d refused signatures across rotations, want 0", n)
		}
	})
}
