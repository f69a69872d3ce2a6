// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

func TestShowImage(t *testing.T) {
	s, clock := startServer(t, Options{})
	r := signedGet(t, s, clock, imagePath(s, SampleIDPyTorchBuiltin))
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, body %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != contentTypeJSON {
		t.Errorf("Content-Type = %q", ct)
	}
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["size"]; ok {
		t.Errorf("built-in image has a size: %s", r.body)
	}
	img := decode[modelarts.Image](t, r)
	if img.ID != SampleIDPyTorchBuiltin || img.Arch != "x86_64" || img.Type != "BUILD_IN" ||
		img.Status != modelarts.StatusActive || img.CreateAt != 1638234504492 || img.WorkspaceID != "0" {
		t.Errorf("image = %+v", img)
	}

	r = signedGet(t, s, clock, imagePath(s, SampleIDTrainingActive))
	if img := decode[modelarts.Image](t, r); img.Size == nil || *img.Size != 3297005 {
		t.Errorf("size of %s: %s", SampleIDTrainingActive, r.body)
	}
}

func TestShowImageNotFound(t *testing.T) {
	for _, as404 := range []bool{false, true} {
		t.Run("NotFoundAs404="+strconv.FormatBool(as404), func(t *testing.T) {
			s, clock := startServer(t, Options{NotFoundAs404: as404})
			want := http.StatusBadRequest
			if as404 {
				want = http.StatusNotFound
			}
			id := "00000000-0000-4000-8000-000000000000"
			r := signedGet(t, s, clock, imagePath(s, id))
			expectError(t, r, want, CodeImageNotFound)
			if msg := decode[modelArtsErrorBody](t, r).ErrorMsg; msg != "Image "+id+" not found" {
				t.Errorf("error_msg = %q", msg)
			}
		})
	}
}

func TestWrongProject(t *testing.T) {
	s, clock := startServer(t, Options{})
	other := "ffffffffffffffffffffffffffffffff"
	expectError(t, signedGet(t, s, clock, "/v1/"+other+"/images/"+SampleIDError), http.StatusForbidden, CodeProjectMismatch)
	expectError(t, signedGet(t, s, clock, "/v1/"+other+"/images"), http.StatusForbidden, CodeProjectMismatch)

	// X-Project-Id that differs from the URL.
	req := newRequest(t, s, imagePath(s, SampleIDError))
	req.Header.Set("X-Project-Id", other)
	demoSigner(clock).sign(req, nil)
	expectError(t, do(t, req), http.StatusForbidden, CodeProjectMismatch)
}

func TestRequestIDsAreUnique(t *testing.T) {
	s, clock := startServer(t, Options{})
	seen := map[string]bool{}
	for range 20 {
		r := signedGet(t, s, clock, imagePath(s, SampleIDError))
		id := r.header.Get("X-Request-Id")
		if id == "" || seen[id] {
			t.Fatalf("X-Request-Id %q empty or repeated", id)
		}
		seen[id] = true
	}
}

func listIDs(t *testing.T, s *Server, clock *fakeClock, query string) ([]string, wireImageList) {
	t.Helper()
	r := signedGet(t, s, clock, listPath(s, query))
	if r.status != http.StatusOK {
		t.Fatalf("list %q: status = %d, body %s", query, r.status, r.body)
	}
	page := decode[wireImageList](t, r)
	ids := make([]string, len(page.Data))
	for i, img := range page.Data {
		ids[i] = img.ID
	}
	return ids, page
}

func TestListImagePaging(t *testing.T) {
	images := GenerateImages(25, 7)
	s, clock := startServer(t, Options{Images: images, MaxPageSize: 10})
	all := s.Images()

	var got []string
	for offset := 0; ; offset += 4 {
		ids, page := listIDs(t, s, clock, "limit=4&offset="+strconv.Itoa(offset))
		if page.Total != 25 || page.Pages != 7 || page.Size != len(ids) || page.Current != offset/4 {
			t.Fatalf("offset %d: page %+v", offset, page)
		}
		if len(ids) == 0 {
			break
		}
		got = append(got, ids...)
	}
	if len(got) != len(all) {
		t.Fatalf("paged %d images, want %d", len(got), len(all))
	}
	for i := range got {
		if got[i] != all[i].ID {
			t.Fatalf("image %d = %s, want %s (order not stable)", i, got[i], all[i].ID)
		}
	}

	// The limit is capped at MaxPageSize; the default limit is 200, capped too.
	for _, q := range []string{"limit=50", ""} {
		ids, page := listIDs(t, s, clock, q)
		if len(ids) != 10 || page.Size != 10 || page.Pages != 3 {
			t.Errorf("%q: %d images, page %+v", q, len(ids), page)
		}
	}

	// DESC reverses the order.
	ids, _ := listIDs(t, s, clock, "limit=3&sort_dir=DESC")
	if ids[0] != all[len(all)-1].ID {
		t.Errorf("DESC starts with %s, want %s", ids[0], all[len(all)-1].ID)
	}
	// Past the end: empty data, not null.
	r := signedGet(t, s, clock, listPath(s, "offset=1000"))
	if page := decode[map[string]json.RawMessage](t, r); string(page["data"]) != "[]" {
		t.Errorf("data past the end = %s", page["data"])
	}
}

func TestListImageCurrentFromOne(t *testing.T) {
	s, clock := startServer(t, Options{CurrentFromOne: true})
	if _, page := listIDs(t, s, clock, "limit=2&offset=2"); page.Current != 2 {
		t.Errorf("current = %d, want 2", page.Current)
	}
}

func TestListImageFilters(t *testing.T) {
	s, clock := startServer(t, Options{})
	extra := SampleImages()[0]
	extra.ID, extra.Name, extra.WorkspaceID = "99999999-0000-4000-8000-000000000001", "resnet50-finetune", "ws-1"
	s.SetImage(extra)

	tests := []struct {
		query string
		want  []string
	}{
		{"name=resnet50", []string{SampleIDDeleted, SampleIDTrainingActive, SampleIDInferenceInit}},
		{"name=resnet50-finetune&name_fuzzy_match=false", []string{SampleIDDeleted, SampleIDTrainingActive}},
		{"name=resnet50&name_fuzzy_match=false", nil},
		{"namespace=team-edge", []string{SampleIDError, SampleIDFrozen}},
		{"service_type=INFERENCE", []string{SampleIDInferenceInit, SampleIDError}},
		{"type=BUILD_IN", []string{SampleIDPyTorchBuiltin, SampleIDMindSporeBuiltin}},
		{"type=BUILD_IN&namespace=atelier", []string{SampleIDMindSporeBuiltin}},
		{"workspace_id=ws-1", []string{extra.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			ids, page := listIDs(t, s, clock, tt.query)
			if len(ids) != len(tt.want) || page.Total != int64(len(tt.want)) {
				t.Fatalf("got %v (total %d), want %v", ids, page.Total, tt.want)
			}
			for i := range ids {
				if ids[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", ids, tt.want)
				}
			}
		})
	}
	// Without workspace_id, the documented default "0" applies.
	if _, page := listIDs(t, s, clock, ""); page.Total != int64(len(SampleIDs())) {
		t.Errorf("default workspace: total %d", page.Total)
	}
}

func TestListImageBadParameters(t *testing.T) {
	s, clock := startServer(t, Options{})
	for _, q := range []string{
		"limit=0", "limit=-1", "limit=abc", "limit=", "offset=-1", "offset=1.5",
		"name_fuzzy_match=maybe", "sort_dir=sideways",
	} {
		t.Run(q, func(t *testing.T) {
			expectError(t, signedGet(t, s, clock, listPath(s, q)), http.StatusBadRequest, CodeParameterError)
		})
	}
}

func TestMutations(t *testing.T) {
	s, clock := startServer(t, Options{})
	if !s.SetStatus(SampleIDInferenceInit, modelarts.StatusActive) {
		t.Fatal("SetStatus: image not found")
	}
	img := decode[modelarts.Image](t, signedGet(t, s, clock, imagePath(s, SampleIDInferenceInit)))
	if img.Status != modelarts.StatusActive || img.UpdateAt != clock.Now().UnixMilli() {
		t.Errorf("after SetStatus: %+v", img)
	}
	if !s.DeleteImage(SampleIDInferenceInit) || s.DeleteImage(SampleIDInferenceInit) {
		t.Fatal("DeleteImage did not report existence")
	}
	expectError(t, signedGet(t, s, clock, imagePath(s, SampleIDInferenceInit)), http.StatusBadRequest, CodeImageNotFound)
	if s.SetStatus("nope", "ERROR") {
		t.Error("SetStatus of a missing image reported success")
	}

	// SetImage copies: changing the caller's image changes nothing.
	mine := SampleImages()[2]
	mine.ID = "11111111-2222-4333-8444-555555555555"
	s.SetImage(mine)
	*mine.Size = 1
	mine.DevServices[0] = "CHANGED"
	got, _ := s.Image(mine.ID)
	if *got.Size == 1 || got.DevServices[0] == "CHANGED" {
		t.Errorf("stored image shares memory with the caller's: %+v", got)
	}
	if len(s.Images()) != len(SampleIDs()) {
		t.Errorf("Images() has %d images", len(s.Images()))
	}
}
