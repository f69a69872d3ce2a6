// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/internal/fakeclock"
)

const (
	testProjectID = "0123456789abcdef0123456789abcdef"
	testImageID   = "278e88d1-5b71-4766-8502-b3ba72e824d9"
	testAK        = "TESTACCESSKEY0000001"
	testSK        = "test-secret-key-must-never-leak"
	testPassword  = "test-password-must-never-leak"
)

// showImageExample is the example answer of the API reference, plus fields
// newer servers send that the reference does not list.
const showImageExample = `{
  "arch" : "x86_64",
  "create_at" : 1638234504492,
  "description" : "CPU and GPU general algorithm development and training, preconfigured with AI engine PyTorch1.8",
  "dev_services" : [ "NOTEBOOK", "SSH" ],
  "id" : "278e88d1-5b71-4766-8502-b3ba72e824d9",
  "name" : "pytorch1.8-cuda10.2-cudnn7-ubuntu18.04",
  "resource_categories" : [ "GPU", "CPU" ],
  "service_type" : "COMMON",
  "status" : "ACTIVE",
  "swr_path" : "swr.xxx.com/atelier/pytorch_1_8:pytorch_1.8.0-cuda_10.2",
  "tag" : "pytorch_1.8.0-cuda_10.2",
  "type" : "BUILD_IN",
  "update_at" : 1638234504493,
  "workspace_id" : "0",
  "size" : 3376133259,
  "flavor_type" : "GPU",
  "swr_instance_id" : "abc",
  "tags" : [ {"key": "k", "value": "v"} ],
  "show_name" : "PyTorch"
}`

// fakeClock is a settable clock for signing dates and token expiry.
type fakeClock = fakeclock.Clock

func newFakeClock(t time.Time) *fakeClock { return fakeclock.New(t) }

// observation is one Observer call.
type observation struct {
	operation string
	status    int
}

type recordingObserver struct {
	mu   sync.Mutex
	seen []observation
}

func (o *recordingObserver) ObserveRequest(operation string, statusCode int, duration time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if duration < 0 {
		panic("negative duration")
	}
	o.seen = append(o.seen, observation{operation, statusCode})
}

func (o *recordingObserver) observations() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observation(nil), o.seen...)
}

// newAKSKClient starts srv with handler and returns an AK/SK client for it
// with a configured project id; mutate may change the configuration.
func newAKSKClient(t *testing.T, handler http.Handler, mutate func(*Config)) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	cfg := Config{
		Endpoint:    srv.URL,
		ProjectID:   testProjectID,
		Credentials: Credentials{AccessKey: testAK, SecretKey: testSK},
		UserAgent:   "modelarts_exporter/test",
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c := NewClient(cfg)
	return c, srv
}

// writeJSON answers status with a JSON body.
func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// assertNoSecrets fails when err's text holds one of the test secrets.
func assertNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, secret := range []string{testSK, testPassword} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error text holds a secret: %v", err)
		}
	}
}

// fixedKeys signs with configured access keys, without files, through next.
func fixedKeys(accessKey, secretKey, securityToken string, next http.RoundTripper, now func() time.Time) *signingRoundTripper {
	return &signingRoundTripper{accessKey: accessKey, secretKey: &secret{value: secretKey}, securityToken: &secret{value: securityToken},
		shared: NewShared(), now: now, next: next}
}

// isUnreserved reports whether the canonical forms leave c as it is: A-Z a-z 0-9 - _ . ~.
func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~", c) >= 0
}
