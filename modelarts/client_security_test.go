// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// TestErrorsScrubEchoedCredentials: a server or gateway that quotes the
// credentials it received back in its error message (X-Security-Token is
// sent on every AK/SK request, X-Auth-Token on every request with a token)
// must not get them into the client's errors, which end in log lines. Not
// even a part of them: an IAM token is longer than the message is allowed
// to be, so the message must be scrubbed before it is cut.
func TestErrorsScrubEchoedCredentials(t *testing.T) {
	const ak, sk, securityToken = "TEMPKEYEXAMPLE000000", "TempSecretKeyExample0000000000000000000", "SecurityTokenCanary-9f8e7d6c5b4a"
	tests := []struct {
		name string
		// echo is the operation whose answer quotes the credentials back.
		echo      string
		projectID bool // configured; else looked up with ListProjects
		creds     modelarts.Credentials
	}{
		{
			name: "ShowImage quotes the security token and the secret key", echo: modelartstest.OpShowImage, projectID: true,
			creds: modelarts.Credentials{AccessKey: ak, SecretKey: sk, SecurityToken: securityToken},
		},
		{
			name: "ListProjects quotes the security token and the secret key", echo: modelartstest.OpListProjects,
			creds: modelarts.Credentials{AccessKey: ak, SecretKey: sk, SecurityToken: securityToken},
		},
		{
			name: "ShowImage quotes the IAM token", echo: modelartstest.OpShowImage, projectID: true,
			creds: modelarts.Credentials{DomainName: modelartstest.DemoDomain, Username: modelartstest.DemoUser, Password: modelartstest.DemoPassword},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
			defer sim.Close()
			sim.AddKey(ak, sk, securityToken)
			var sentToken string
			echoing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				isEcho := tt.echo == modelartstest.OpShowImage && strings.HasPrefix(r.URL.Path, "/v1/") ||
					tt.echo == modelartstest.OpListProjects && strings.HasPrefix(r.URL.Path, "/v3/projects")
				if !isEcho {
					sim.Handler().ServeHTTP(w, r)
					return
				}
				sentToken = r.Header.Get("X-Auth-Token")
				msg := "refused: X-Security-Token=" + r.Header.Get("X-Security-Token") + " X-Auth-Token=" + sentToken + " secret key=" + tt.creds.SecretKey
				body, _ := json.Marshal(map[string]string{"error_code": "ModelArts.0203", "error_msg": msg})
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write(body)
			}))
			defer echoing.Close()
			cfg := modelarts.Config{
				Endpoint: echoing.URL, IAMEndpoint: echoing.URL, Region: modelartstest.DefaultRegion,
				Credentials: tt.creds,
			}
			if tt.projectID {
				cfg.ProjectID = sim.ProjectID()
			}
			client := modelarts.NewClient(cfg)
			_, err := client.ShowImage(context.Background(), modelartstest.SampleIDs()[0])
			if err == nil {
				t.Fatal("want the 403")
			}
			if !strings.Contains(err.Error(), "<secret>") {
				t.Errorf("the answer was not quoted as it should: %v", err)
			}
			secrets := []string{tt.creds.SecretKey, tt.creds.SecurityToken}
			if sentToken != "" {
				secrets = append(secrets, sentToken[:24], sentToken[len(sentToken)-24:])
			} else if tt.creds.Password != "" {
				t.Error("no X-Auth-Token was sent")
			}
			for _, secret := range secrets {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("%q is in the error: %v", secret, err)
				}
			}
		})
	}
}
