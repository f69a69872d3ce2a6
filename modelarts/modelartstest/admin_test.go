// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"io"
	"net/http"
	"strconv"
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

	const id = "abcdefab-0000-4000-8000-000000000042"
	r := adminDo(t, s, http.MethodPut, "/-/sim/images/"+id,
		`{"name":"added-by-curl","status":"INIT","type":"DEDICATED","arch":"x86_64","size":1024,"workspace_id":"0"}`)
	expectStatus(t, r, http.StatusOK)
	img := decode[modelarts.Image](t, signedGet(t, s, clock, imagePath(s, id)))
	if img.Name != "added-by-curl" || img.Status != "INIT" || img.Size == nil || *img.Size != 1024 {
		t.Fatalf("ShowImage after PUT: %+v", img)
	}

	r = adminDo(t, s, http.MethodPut, "/-/sim/images/"+id+"/status", `{"status":"ERROR","status_message":"disk full"}`)
	expectStatus(t, r, http.StatusOK)
	img = decode[modelarts.Image](t, signedGet(t, s, clock, imagePath(s, id)))
	if img.Status != "ERROR" || img.StatusMessage != "disk full" {
		t.Fatalf("after status PUT: %+v", img)
	}
	got := decode[modelarts.Image](t, adminDo(t, s, http.MethodGet, "/-/sim/images/"+id, ""))
	if got.Status != "ERROR" {
		t.Errorf("admin GET: %+v", got)
	}

	expectStatus(t, adminDo(t, s, http.MethodDelete, "/-/sim/images/"+id, ""), http.StatusNoContent)
	expectError(t, signedGet(t, s, clock, imagePath(s, id)), http.StatusBadRequest, CodeImageNotFound)

	// Mistakes are refused with a reason.
	expectStatus(t, adminDo(t, s, http.MethodDelete, "/-/sim/images/"+id, ""), http.StatusNotFound)
	expectStatus(t, adminDo(t, s, http.MethodGet, "/-/sim/images/"+id, ""), http.StatusNotFound)
	expectStatus(t, adminDo(t, s, http.MethodPut, "/-/sim/images/"+id+"/status", `{"status":"ERROR"}`), http.StatusNotFound)
	expectStatus(t, adminDo(t, s, http.MethodPut, "/-/sim/images/"+SampleIDError+"/status", `{"state":"ERROR"}`), http.StatusBadRequest)
	expectStatus(t, adminDo(t, s, http.MethodPut, "/-/sim/images/"+id, `{"title":"not a field"}`), http.StatusBadRequest)
	expectStatus(t, adminDo(t, s, http.MethodPut, "/-/sim/images/"+id, `{"id":"other"}`), http.StatusBadRequest)
	expectStatus(t, adminDo(t, s, http.MethodPost, "/-/sim/images", `{}`), http.StatusMethodNotAllowed)
}

func TestAdminFaults(t *testing.T) {
	s, clock := startServer(t, Options{})
	r := adminDo(t, s, http.MethodPost, "/-/sim/faults", `{"kind":"status","operation":"ShowImage","status":429,"count":1}`)
	expectStatus(t, r, http.StatusCreated)
	first := decode[map[string]int](t, r)["id"]

	listed := decode[[]activeFault](t, adminDo(t, s, http.MethodGet, "/-/sim/faults", ""))
	if len(listed) != 1 || listed[0].ID != first || listed[0].Fault.Status != 429 || listed[0].Remaining != 1 {
		t.Fatalf("faults: %+v", listed)
	}
	expectError(t, signedGet(t, s, clock, imagePath(s, SampleIDError)), 429, CodeThrottled)
	expectStatus(t, signedGet(t, s, clock, imagePath(s, SampleIDError)), http.StatusOK)

	r = adminDo(t, s, http.MethodPost, "/-/sim/faults", `{"kind":"raw","status":503,"delay":"10ms"}`)
	expectStatus(t, r, http.StatusCreated)
	second := decode[map[string]int](t, r)["id"]
	expectStatus(t, signedGet(t, s, clock, listPath(s, "")), 503)
	expectStatus(t, adminDo(t, s, http.MethodDelete, "/-/sim/faults/"+strconv.Itoa(second), ""), http.StatusNoContent)
	expectStatus(t, adminDo(t, s, http.MethodDelete, "/-/sim/faults/"+strconv.Itoa(second), ""), http.StatusNotFound)
	expectStatus(t, signedGet(t, s, clock, listPath(s, "")), http.StatusOK)

	adminDo(t, s, http.MethodPost, "/-/sim/faults", `{"kind":"reset"}`)
	expectStatus(t, adminDo(t, s, http.MethodDelete, "/-/sim/faults", ""), http.StatusNoContent)
	expectStatus(t, signedGet(t, s, clock, listPath(s, "")), http.StatusOK)

	expectStatus(t, adminDo(t, s, http.MethodPost, "/-/sim/faults", `{"kind":"status"}`), http.StatusBadRequest)
	expectStatus(t, adminDo(t, s, http.MethodPost, "/-/sim/faults", `{"kind":"status","stauts":500}`), http.StatusBadRequest)
}

func TestAdminStatsAndTokens(t *testing.T) {
	s, clock := startServer(t, Options{})
	signedGet(t, s, clock, imagePath(s, SampleIDError))
	signedGet(t, s, clock, imagePath(s, "missing"))
	signedGet(t, s, clock, listPath(s, ""))
	adminDo(t, s, http.MethodGet, "/-/sim/images", "") // not counted

	st := decode[Stats](t, adminDo(t, s, http.MethodGet, "/-/sim/stats", ""))
	if st.Requests[OpShowImage] != 2 || st.Requests[OpListImage] != 1 ||
		st.ByStatus[OpShowImage][200] != 1 || st.ByStatus[OpShowImage][400] != 1 || st.Images != len(SampleIDs()) {
		t.Fatalf("stats %+v", st)
	}
	expectStatus(t, adminDo(t, s, http.MethodDelete, "/-/sim/stats", ""), http.StatusNoContent)
	if n := s.Requests(""); n != 0 {
		t.Fatalf("after reset: %d requests", n)
	}

	tok := createToken(t, s, tokenBodyFor(DemoDomain, DemoUser, DemoPassword, `{"name":"eu-de"}`)).header.Get("X-Subject-Token")
	expectStatus(t, adminDo(t, s, http.MethodPost, "/-/sim/tokens/expire", ""), http.StatusNoContent)
	req := newRequest(t, s, imagePath(s, SampleIDError))
	req.Header.Set("X-Auth-Token", tok)
	expectError(t, do(t, req), http.StatusUnauthorized, CodeTokenExpired)
}

func TestAdminSettings(t *testing.T) {
	s, clock := startServer(t, Options{UntypedListing: UntypedBuildIn})
	settingsAre := func(r response, untyped string, refuse bool) {
		t.Helper()
		expectStatus(t, r, http.StatusOK)
		got := decode[map[string]any](t, r)
		if got["untyped_listing"] != untyped || got["refuse_with_403"] != refuse {
			t.Fatalf("settings %s, want %s and %v", r.body, untyped, refuse)
		}
	}
	settingsAre(adminDo(t, s, http.MethodGet, "/-/sim/settings", ""), UntypedBuildIn, false)

	settingsAre(adminDo(t, s, http.MethodPut, "/-/sim/settings", `{"untyped_listing":"ALL"}`), UntypedAll, false)
	if _, page := listIDs(t, s, clock, ""); page.Total != int64(len(SampleIDs())) {
		t.Errorf("untyped listing after PUT ALL: total %d", page.Total)
	}
	settingsAre(adminDo(t, s, http.MethodPut, "/-/sim/settings", `{"refuse_with_403":true}`), UntypedAll, true)
	req := newRequest(t, s, imagePath(s, SampleIDError))
	req.Header.Set("X-Auth-Token", "MIIbogus")
	expectError(t, do(t, req), http.StatusForbidden, CodeTokenInvalid)

	settingsAre(adminDo(t, s, http.MethodPut, "/-/sim/settings", `{"untyped_listing":"BUILD_IN","refuse_with_403":false}`), UntypedBuildIn, false)
	if _, page := listIDs(t, s, clock, ""); page.Total != 2 {
		t.Errorf("untyped listing after PUT BUILD_IN: total %d", page.Total)
	}
	for _, bad := range []string{`{"untyped_listing":"DEDICATED"}`, `{"untyped":"ALL"}`, `{"refuse_with_403":"yes"}`} {
		expectStatus(t, adminDo(t, s, http.MethodPut, "/-/sim/settings", bad), http.StatusBadRequest)
	}
	settingsAre(adminDo(t, s, http.MethodGet, "/-/sim/settings", ""), UntypedBuildIn, false)
}
