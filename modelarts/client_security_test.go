// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts_test

import (
	"context"
	"strings"
	"testing"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// TestErrorsScrubEchoedCredentials: a server or gateway that quotes the
// credentials it received back in its error message (X-Security-Token is
// sent on every AK/SK request) must not get them into the client's errors,
// which end in log lines. The password is already scrubbed from IAM's
// answers (token.go); the security token is not.
func TestErrorsScrubEchoedCredentials(t *testing.T) {
	t.Skip("known bug, reported: client.go passes error_msg into APIError.Message without removing the " +
		"security token (or the IAM token) the request carried; remove this Skip once fixed")
	const ak, sk, securityToken = "TEMPKEYEXAMPLE000000", "TempSecretKeyExample0000000000000000000", "SecurityTokenCanary-9f8e7d6c5b4a"
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer sim.Close()
	sim.AddKey(ak, sk, securityToken)
	sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultStatus, Status: 401, ErrorMsg: "security token " + securityToken + " expired"})
	client, err := modelarts.NewClient(modelarts.Config{
		Endpoint:    sim.URL,
		ProjectID:   sim.ProjectID(),
		Credentials: modelarts.Credentials{AccessKey: ak, SecretKey: sk, SecurityToken: securityToken},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.ShowImage(context.Background(), modelartstest.SampleIDs()[0])
	if err == nil {
		t.Fatal("want the 401")
	}
	if strings.Contains(err.Error(), securityToken) {
		t.Errorf("the security token is in the error: %v", err)
	}
}
