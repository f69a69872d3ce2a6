// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

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

// pagingServer has n generated images of every type, listed without type.
func pagingServer(t *testing.T, n int) (*Server, *fakeClock) {
	t.Helper()
	return startServer(t, Options{Images: GenerateImages(n, 7), UntypedListing: UntypedAll})
}

func idsOf(images []modelarts.Image) []string {
	ids := make([]string, len(images))
	for i, img := range images {
		ids[i] = img.ID
	}
	return ids
}

// TestListImagePaging pins the paging of terraform-provider-huaweicloud PR 3026
// and chnsz/golangsdk PR 334: offset picks the page, size is the page size.
func TestListImagePaging(t *testing.T) {
	servers := map[int]*Server{}
	var clock *fakeClock
	for _, n := range []int{33, 250} {
		servers[n], clock = pagingServer(t, n)
	}
	tests := []struct {
		images             int
		query              string
		from, to           int // the records expected, in the default order
		size, current, pgs int
	}{
		{33, "", 0, 33, 200, 0, 1},
		{33, "offset=199", 0, 33, 200, 0, 1},
		{33, "limit=10&offset=15", 10, 20, 10, 1, 4},
		{33, "limit=10&offset=30", 30, 33, 10, 3, 4},
		{33, "limit=11&offset=33", 33, 33, 11, 3, 3}, // starts at the end: empty, not an error
		{33, "limit=5000", 0, 33, DefaultMaxPageSize, 0, 1},
		{250, "", 0, 200, 200, 0, 2},
		{250, "offset=200", 200, 250, 200, 1, 2},
		{250, "limit=100&offset=150", 100, 200, 100, 1, 3},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.images)+"/"+tt.query, func(t *testing.T) {
			s := servers[tt.images]
			ids, page := listIDs(t, s, clock, tt.query)
			if want := idsOf(s.Images())[tt.from:tt.to]; !slices.Equal(ids, want) {
				t.Errorf("ids = %v, want records %d..%d %v", ids, tt.from, tt.to-1, want)
			}
			if page.Size != tt.size || page.Current != tt.current || page.Pages != tt.pgs || page.Total != int64(tt.images) {
				t.Errorf("size %d current %d pages %d total %d; want %d %d %d %d",
					page.Size, page.Current, page.Pages, page.Total, tt.size, tt.current, tt.pgs, tt.images)
			}
		})
	}
	// An empty page has data [], not null.
	r := signedGet(t, servers[33], clock, listPath(servers[33], "limit=11&offset=33"))
	if page := decode[map[string]json.RawMessage](t, r); string(page["data"]) != "[]" {
		t.Errorf("empty page: data = %s", page["data"])
	}
}

func TestListImagePastTheEnd(t *testing.T) {
	s, clock := pagingServer(t, 33)
	tests := []struct{ query, msg string }{
		{"offset=200", "fromIndex(200) > toIndex(33)"}, // the PR's example
		{"offset=233", "fromIndex(200) > toIndex(33)"},
		{"limit=10&offset=40", "fromIndex(40) > toIndex(33)"},
		{"limit=10&offset=40&name=no-such-image", "fromIndex(40) > toIndex(0)"},
		{"offset=200&name=no-such-image", "fromIndex(200) > toIndex(0)"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := signedGet(t, s, clock, listPath(s, tt.query))
			expectError(t, r, http.StatusBadRequest, CodeInvalidRequest)
			if msg := decode[modelArtsErrorBody](t, r).ErrorMsg; msg != tt.msg {
				t.Errorf("error_msg = %q, want %q", msg, tt.msg)
			}
		})
	}
	// No match at all is an empty first page, not an error.
	if ids, page := listIDs(t, s, clock, "name=no-such-image"); len(ids) != 0 || page.Total != 0 || page.Pages != 0 {
		t.Errorf("no match: %v %+v", ids, page)
	}
}

func TestListImageCurrentFromOne(t *testing.T) {
	s, clock := startServer(t, Options{CurrentFromOne: true})
	if _, page := listIDs(t, s, clock, "type=DEDICATED&limit=2&offset=2"); page.Current != 2 {
		t.Errorf("current = %d, want 2", page.Current)
	}
}

func TestListImageOrder(t *testing.T) {
	// Ties on update_at and name, so that the id decides.
	images := []modelarts.Image{
		{ID: "c", Name: "beta", CreateAt: 3, UpdateAt: 20},
		{ID: "a", Name: "alpha", CreateAt: 1, UpdateAt: 20},
		{ID: "d", Name: "alpha", CreateAt: 2, UpdateAt: 10},
		{ID: "b", Name: "gamma", CreateAt: 4, UpdateAt: 30},
	}
	for i := range images {
		images[i].Type = "DEDICATED"
	}
	s, clock := startServer(t, Options{Images: images})
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"b", "c", "a", "d"}}, // update_at DESC, then id DESC
		{"sort_dir=ASC", []string{"d", "a", "c", "b"}},
		{"sort_key=update_at&sort_dir=desc", []string{"b", "c", "a", "d"}},
		{"sort_key=create_at", []string{"b", "c", "d", "a"}},
		{"sort_key=create_at&sort_dir=ASC", []string{"a", "d", "c", "b"}},
		{"sort_key=name&sort_dir=ASC", []string{"a", "d", "c", "b"}},
		{"sort_key=name", []string{"b", "c", "d", "a"}},
		{"sort_dir=ASC&limit=2&offset=2", []string{"c", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			if ids, _ := listIDs(t, s, clock, "type=DEDICATED&"+tt.query); !slices.Equal(ids, tt.want) {
				t.Errorf("ids = %v, want %v", ids, tt.want)
			}
		})
	}
	if got := idsOf(s.Images()); !slices.Equal(got, tests[0].want) {
		t.Errorf("Images() = %v, want the default order %v", got, tests[0].want)
	}

	// A status change bumps update_at: the image moves to the front while a
	// client pages, as on the service.
	clock.Advance(time.Second)
	s.SetStatus("d", modelarts.StatusError)
	if ids, _ := listIDs(t, s, clock, "type=DEDICATED&limit=2"); !slices.Equal(ids, []string{"d", "b"}) {
		t.Errorf("after SetStatus: first page %v, want [d b]", ids)
	}
}

func TestListImageUntyped(t *testing.T) {
	builtIn := []string{SampleIDMindSporeBuiltin, SampleIDPyTorchBuiltin}
	dedicated := []string{SampleIDFrozen, SampleIDError, SampleIDCreateFailed, SampleIDNotebookCreating,
		SampleIDInferenceInit, SampleIDTrainingActive, SampleIDDeleted}
	all := slices.Concat(dedicated, builtIn)
	tests := []struct {
		mode, query string
		want        []string
	}{
		{UntypedBuildIn, "", builtIn},
		{UntypedAll, "", all},
		{UntypedBuildIn, "type=DEDICATED", dedicated},
		{UntypedAll, "type=DEDICATED", dedicated},
		{UntypedBuildIn, "type=BUILD_IN", builtIn},
		{UntypedAll, "type=BUILD_IN", builtIn},
		{UntypedBuildIn, "type=", builtIn}, // an empty value is no value
	}
	for _, tt := range tests {
		t.Run(tt.mode+"/"+tt.query, func(t *testing.T) {
			s, clock := startServer(t, Options{UntypedListing: tt.mode})
			if ids, _ := listIDs(t, s, clock, tt.query); !slices.Equal(ids, tt.want) {
				t.Errorf("ids = %v, want %v", ids, tt.want)
			}
			// Switching at run time gives the other reading.
			other := map[string]string{UntypedBuildIn: UntypedAll, UntypedAll: UntypedBuildIn}[tt.mode]
			if err := s.SetUntypedListing(other); err != nil {
				t.Fatal(err)
			}
			if _, page := listIDs(t, s, clock, ""); page.Total != int64(map[string]int{UntypedBuildIn: 2, UntypedAll: 9}[other]) {
				t.Errorf("after SetUntypedListing(%s): total %d", other, page.Total)
			}
		})
	}
	if err := New(Options{}).SetUntypedListing("DEDICATED"); err == nil {
		t.Error("SetUntypedListing accepted DEDICATED")
	}
}

// TestUntypedListingEnv checks that servers made without the option follow
// the environment, which is how the suite runs under both readings.
func TestUntypedListingEnv(t *testing.T) {
	tests := []struct {
		env, option, want string
	}{
		{"", "", UntypedBuildIn},
		{UntypedAll, "", UntypedAll},
		{UntypedBuildIn, "", UntypedBuildIn},
		{UntypedAll, UntypedBuildIn, UntypedBuildIn}, // the option wins
		{UntypedBuildIn, UntypedAll, UntypedAll},
	}
	for _, tt := range tests {
		t.Run(tt.env+"/"+tt.option, func(t *testing.T) {
			t.Setenv(UntypedListingEnv, tt.env)
			if got := New(Options{UntypedListing: tt.option}).untypedListing(); got != tt.want {
				t.Errorf("untyped listing %s, want %s", got, tt.want)
			}
		})
	}
	for _, bad := range []struct{ env, option string }{{"all", ""}, {"DEDICATED", ""}, {"", "everything"}} {
		t.Run("panics/"+bad.env+bad.option, func(t *testing.T) {
			t.Setenv(UntypedListingEnv, bad.env)
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			New(Options{UntypedListing: bad.option})
		})
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
		{"type=DEDICATED&name=resnet50", []string{SampleIDInferenceInit, SampleIDTrainingActive, SampleIDDeleted}},
		{"type=DEDICATED&name=resnet50-finetune&name_fuzzy_match=false", []string{SampleIDTrainingActive, SampleIDDeleted}},
		{"type=DEDICATED&name=resnet50&name_fuzzy_match=false", nil},
		{"type=DEDICATED&namespace=team-edge", []string{SampleIDFrozen, SampleIDError}},
		{"type=DEDICATED&service_type=INFERENCE", []string{SampleIDError, SampleIDInferenceInit}},
		{"type=BUILD_IN", []string{SampleIDMindSporeBuiltin, SampleIDPyTorchBuiltin}},
		{"type=BUILD_IN&namespace=atelier", []string{SampleIDMindSporeBuiltin}},
		{"type=BUILD_IN&workspace_id=ws-1", []string{extra.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			ids, page := listIDs(t, s, clock, tt.query)
			if !slices.Equal(ids, tt.want) || page.Total != int64(len(tt.want)) {
				t.Fatalf("got %v (total %d), want %v", ids, page.Total, tt.want)
			}
		})
	}
	// Without workspace_id, the documented default "0" applies.
	if _, page := listIDs(t, s, clock, "type=DEDICATED"); page.Total != 7 {
		t.Errorf("default workspace: total %d", page.Total)
	}
}

func TestListImageBadParameters(t *testing.T) {
	s, clock := startServer(t, Options{})
	for _, q := range []string{
		"limit=0", "limit=-1", "limit=abc", "limit=", "offset=-1", "offset=1.5",
		"name_fuzzy_match=maybe", "sort_dir=sideways", "sort_key=size", "sort_key=id",
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
