// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

func adminDo(t *testing.T, s *Server, method, path, body string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func expectStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d; body %s", r.status, want, r.body)
	}
}

func TestAdminImages(t *testing.T) {
	s, clock := startServer(t, Options{})
	expectStatus(t, adminDo(t, s, http.MethodGet, "/-/healthy", ""), http.StatusOK)

	list := decode[[]modelarts.Image](t, adminDo(t, s, http.MethodGet, "/-/sim/images", ""))
	if len(list) != len(SampleIDs()) {
		t.Fatalf("%d images", len(list))
	}

	id := SampleIDPyTorchBuiltin // the image of the README example
	r := adminDo(t, s, http.MethodPut, "/-/sim/images/"+id+"/status", `{"status":"ERROR","status_message":"disk full"}`)
	expectStatus(t, r, http.StatusOK)
	img := decode[modelarts.Image](t, signedGet(t, s, clock, imagePath(s, id)))
	if img.Status != "ERROR" || img.StatusMessage != "disk full" {
		t.Fatalf("after status PUT: %+v", img)
	}

	// Mistakes are refused with a reason.
	expectStatus(t, adminDo(t, s, http.MethodPut, "/-/sim/images/missing/status", `{"status":"ERROR"}`), http.StatusNotFound)
	expectStatus(t, adminDo(t, s, http.MethodPut, "/-/sim/images/"+id+"/status", `{"state":"ERROR"}`), http.StatusBadRequest)
}

func TestAdminFaults(t *testing.T) {
	s, clock := startServer(t, Options{})
	r := adminDo(t, s, http.MethodPost, "/-/sim/faults", `{"kind":"status","operation":"ShowImage","status":429,"count":1}`)
	expectStatus(t, r, http.StatusCreated)
	expectError(t, signedGet(t, s, clock, imagePath(s, SampleIDError)), 429, CodeThrottled)
	expectStatus(t, signedGet(t, s, clock, imagePath(s, SampleIDError)), http.StatusOK)

	expectStatus(t, adminDo(t, s, http.MethodPost, "/-/sim/faults", `{"kind":"raw","status":503}`), http.StatusCreated)
	expectStatus(t, signedGet(t, s, clock, listPath(s, "")), 503)
	expectStatus(t, adminDo(t, s, http.MethodDelete, "/-/sim/faults", ""), http.StatusNoContent)
	expectStatus(t, signedGet(t, s, clock, listPath(s, "")), http.StatusOK)

	expectStatus(t, adminDo(t, s, http.MethodPost, "/-/sim/faults", `{"kind":"status"}`), http.StatusBadRequest)
	expectStatus(t, adminDo(t, s, http.MethodPost, "/-/sim/faults", `{"kind":"status","stauts":500}`), http.StatusBadRequest)
}

func TestAdminExpireTokens(t *testing.T) {
	s, _ := startServer(t, Options{})
	tok := createToken(t, s, tokenBodyFor(DemoDomain, DemoUser, DemoPassword, `{"name":"eu-de"}`)).header.Get("X-Subject-Token")
	expectStatus(t, adminDo(t, s, http.MethodPost, "/-/sim/tokens/expire", ""), http.StatusNoContent)
	req := newRequest(t, s, imagePath(s, SampleIDError))
	req.Header.Set("X-Auth-Token", tok)
	expectError(t, do(t, req), http.StatusUnauthorized, CodeTokenExpired)
}
