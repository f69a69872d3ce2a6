// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

func int64p(v int64) *int64 { return &v }

// exampleImage is the ShowImage example of the API reference, with a size.
func exampleImage(status string) *modelarts.Image {
	return &modelarts.Image{
		ID:                 "278e88d1-5b71-4766-8502-b3ba72e824d9",
		Name:               "pytorch1.8-cuda10.2-cudnn7-ubuntu18.04",
		Arch:               "x86_64",
		Type:               "BUILD_IN",
		Visibility:         "PUBLIC",
		Status:             status,
		ServiceType:        "COMMON",
		SWRPath:            "swr.xxx.com/atelier/pytorch_1_8:tag",
		Tag:                "tag",
		WorkspaceID:        "0",
		DevServices:        []string{"SSH", "NOTEBOOK"},
		ResourceCategories: []string{"GPU", "CPU"},
		Size:               int64p(3376133),
		CreateAt:           1638234504492,
		UpdateAt:           1638234504999,
	}
}

const imageID = "278e88d1-5b71-4766-8502-b3ba72e824d9"

// statusLines renders the expected state set of one image.
func statusLines(arch, current string) string {
	var b strings.Builder
	states := append([]string{}, modelarts.Statuses...)
	known := false
	for _, s := range states {
		known = known || s == current
	}
	if !known && current != "" {
		states = append(states, current)
	}
	for _, s := range states {
		v := 0
		if s == current {
			v = 1
		}
		fmt.Fprintf(&b, "modelarts_image_status{arch=%q,id=%q,name=\"pytorch1.8-cuda10.2-cudnn7-ubuntu18.04\",project=\"prod\",status=%q,type=\"BUILD_IN\",visibility=\"PUBLIC\"} %d\n", arch, imageID, s, v)
	}
	return b.String()
}

const statusHelp = `# HELP modelarts_image_status Status of the image as a state set: 1 for the current status, 0 for the other documented ones, and a series of its own for an undocumented status.
# TYPE modelarts_image_status gauge
`

// TestCollectStatus: the status is a state set of the documented states,
// normalised to upper case, with an undocumented status as a series of its own.
func TestCollectStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, status, want string
	}{
		{"init", "INIT", "INIT"},
		{"creating", "CREATING", "CREATING"},
		{"create failed", "CREATE_FAILED", "CREATE_FAILED"},
		{"error", "ERROR", "ERROR"},
		{"deleted", "DELETED", "DELETED"},
		{"active", "ACTIVE", "ACTIVE"},
		{"lowercase status is normalised", "active", "ACTIVE"},
		{"undocumented status gets its own series", "frozen", "FROZEN"},
		{"empty status: every documented state 0", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := gatherer([]ProjectResult{{Name: "prod", Up: true, Images: []ImageResult{{ID: imageID, Image: exampleImage(tc.status)}}}})
			want := statusHelp + statusLines("x86_64", tc.want)
			if err := testutil.GatherAndCompare(c, strings.NewReader(want), "modelarts_image_status"); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestCollectImage pins every series of a fetched image (size in bytes,
// timestamps in seconds, info with sorted lists) and of its project, and
// lints them.
func TestCollectImage(t *testing.T) {
	t.Parallel()
	img := exampleImage("ACTIVE")
	c := gatherer([]ProjectResult{{
		Name: "prod", Up: true, Duration: 1500 * time.Millisecond,
		Images: []ImageResult{{ID: imageID, Image: img}},
	}})
	const labels = `arch="x86_64",id="278e88d1-5b71-4766-8502-b3ba72e824d9",name="pytorch1.8-cuda10.2-cudnn7-ubuntu18.04",project="prod",type="BUILD_IN",visibility="PUBLIC"`
	want := `# HELP modelarts_image_created_timestamp_seconds Time the image was created, in seconds since the Unix epoch (create_at).
# TYPE modelarts_image_created_timestamp_seconds gauge
modelarts_image_created_timestamp_seconds{` + labels + `} 1.638234504492e+09
# HELP modelarts_image_info Descriptive fields of the image, list fields sorted and comma-joined; always 1.
# TYPE modelarts_image_info gauge
modelarts_image_info{arch="x86_64",dev_services="NOTEBOOK,SSH",id="278e88d1-5b71-4766-8502-b3ba72e824d9",name="pytorch1.8-cuda10.2-cudnn7-ubuntu18.04",namespace="",origin="",project="prod",resource_categories="CPU,GPU",service_type="COMMON",swr_path="swr.xxx.com/atelier/pytorch_1_8:tag",tag="tag",type="BUILD_IN",visibility="PUBLIC",workspace_id="0"} 1
# HELP modelarts_image_not_found 1 when ShowImage says the image does not exist (HTTP 404, or 400 with ModelArts.6404 or ModelArts.6797), else 0.
# TYPE modelarts_image_not_found gauge
modelarts_image_not_found{id="278e88d1-5b71-4766-8502-b3ba72e824d9",project="prod"} 0
# HELP modelarts_image_size_bytes Size of the image in bytes (the API's size in KB times 1024); no series when the API sends none.
# TYPE modelarts_image_size_bytes gauge
modelarts_image_size_bytes{` + labels + `} 3.457160192e+09
# HELP modelarts_image_up 1 when the image's values come from a successful fetch (this scrape's or one shared within min_refresh_interval), else 0.
# TYPE modelarts_image_up gauge
modelarts_image_up{id="278e88d1-5b71-4766-8502-b3ba72e824d9",project="prod"} 1
# HELP modelarts_image_updated_timestamp_seconds Time the image was last updated, in seconds since the Unix epoch (update_at).
# TYPE modelarts_image_updated_timestamp_seconds gauge
modelarts_image_updated_timestamp_seconds{` + labels + `} 1.638234504999e+09
# HELP modelarts_scrape_duration_seconds Time spent fetching the project's images for this scrape (by the fetch it shared, within min_refresh_interval).
# TYPE modelarts_scrape_duration_seconds gauge
modelarts_scrape_duration_seconds{project="prod"} 1.5
# HELP modelarts_up 0 when the project's credentials were refused, its endpoint or project_id is wrong, or the API could not be reached in this scrape, else 1.
# TYPE modelarts_up gauge
modelarts_up{project="prod"} 1
`
	names := []string{
		"modelarts_image_created_timestamp_seconds", "modelarts_image_info", "modelarts_image_not_found",
		"modelarts_image_size_bytes", "modelarts_image_up", "modelarts_image_updated_timestamp_seconds",
		"modelarts_scrape_duration_seconds", "modelarts_up",
	}
	if err := testutil.GatherAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestCollectMissingFields: an image without size or timestamps has no
// series for them, and its arch is passed on as the API sends it.
func TestCollectMissingFields(t *testing.T) {
	t.Parallel()
	img := exampleImage("ACTIVE")
	img.Size = nil
	img.CreateAt, img.UpdateAt = 0, 0
	img.Arch = "aarch64"
	c := gatherer([]ProjectResult{{Name: "prod", Up: true, Images: []ImageResult{{ID: imageID, Image: img}}}})
	for _, name := range []string{"modelarts_image_size_bytes", "modelarts_image_created_timestamp_seconds", "modelarts_image_updated_timestamp_seconds"} {
		if n, _ := testutil.GatherAndCount(c, name); n != 0 {
			t.Errorf("%s: got %d series for an image without the field, want 0", name, n)
		}
	}
	// The lowercase arch is passed on as the API sends it.
	want := statusHelp + statusLines("aarch64", "ACTIVE")
	if err := testutil.GatherAndCompare(c, strings.NewReader(want), "modelarts_image_status"); err != nil {
		t.Error(err)
	}
}

// TestCollectFailedImages: a failed image has image_up 0 and no value
// series; not_found is 1 only for ShowImage's answer that it does not exist.
func TestCollectFailedImages(t *testing.T) {
	t.Parallel()
	notFound := &modelarts.APIError{Operation: "ShowImage", StatusCode: 400, ErrorCode: "ModelArts.6404", Class: modelarts.ErrNotFound}
	serverErr := &modelarts.APIError{Operation: "ShowImage", StatusCode: 500, Class: modelarts.ErrServer}
	listNotFound := &modelarts.APIError{Operation: "ListImage", StatusCode: 404, Class: modelarts.ErrNotFound}
	noProject := &modelarts.APIError{Operation: "ListProjects", Class: modelarts.ErrNotFound}
	c := gatherer([]ProjectResult{{Name: "prod", Up: true, Images: []ImageResult{
		{ID: "00000000-0000-0000-0000-000000000001", Err: fmt.Errorf("show image: %w", notFound)},
		{ID: "00000000-0000-0000-0000-000000000002", Err: serverErr},
		{ID: "00000000-0000-0000-0000-000000000003", Err: fmt.Errorf("not listed: %w", listNotFound)},
		{ID: "00000000-0000-0000-0000-000000000004", Err: fmt.Errorf("show image: resolve project id: %w", noProject)},
		{ID: imageID, Image: exampleImage("ACTIVE")},
	}}})
	want := `# HELP modelarts_image_not_found 1 when ShowImage says the image does not exist (HTTP 404, or 400 with ModelArts.6404 or ModelArts.6797), else 0.
# TYPE modelarts_image_not_found gauge
modelarts_image_not_found{id="00000000-0000-0000-0000-000000000001",project="prod"} 1
modelarts_image_not_found{id="00000000-0000-0000-0000-000000000002",project="prod"} 0
modelarts_image_not_found{id="00000000-0000-0000-0000-000000000003",project="prod"} 0
modelarts_image_not_found{id="00000000-0000-0000-0000-000000000004",project="prod"} 0
modelarts_image_not_found{id="278e88d1-5b71-4766-8502-b3ba72e824d9",project="prod"} 0
# HELP modelarts_image_up 1 when the image's values come from a successful fetch (this scrape's or one shared within min_refresh_interval), else 0.
# TYPE modelarts_image_up gauge
modelarts_image_up{id="00000000-0000-0000-0000-000000000001",project="prod"} 0
modelarts_image_up{id="00000000-0000-0000-0000-000000000002",project="prod"} 0
modelarts_image_up{id="00000000-0000-0000-0000-000000000003",project="prod"} 0
modelarts_image_up{id="00000000-0000-0000-0000-000000000004",project="prod"} 0
modelarts_image_up{id="278e88d1-5b71-4766-8502-b3ba72e824d9",project="prod"} 1
`
	if err := testutil.GatherAndCompare(c, strings.NewReader(want), "modelarts_image_up", "modelarts_image_not_found"); err != nil {
		t.Error(err)
	}
	// Only the image that was fetched has data series.
	if n, _ := testutil.GatherAndCount(c, "modelarts_image_info"); n != 1 {
		t.Errorf("modelarts_image_info: got %d series, want 1", n)
	}
	if problems, err := testutil.GatherAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestCollectInvalidUTF8FromTheAPI: label values are passed on unchecked
// because the JSON decoder already replaced the invalid UTF-8 of an answer,
// which Prometheus would refuse: the scrape does not fail.
func TestCollectInvalidUTF8FromTheAPI(t *testing.T) {
	t.Parallel()
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	t.Cleanup(sim.Close)
	id := modelartstest.SampleIDs()[0]
	sim.AddFault(modelartstest.Fault{Kind: modelartstest.FaultRaw, Operation: modelartstest.OpShowImage, ImageID: id, Status: 200, ContentType: "application/json",
		Body: "{\"id\":\"" + id + "\",\"name\":\"bad\xffname\",\"status\":\"W\xfeIRD\",\"arch\":\"x86_64\xc3\"}"})
	res := scrapeOnce(simProject(t, sim, []string{id}, modelartstest.DemoSecretKey))
	if r := res.Images[0]; r.Err != nil || r.Image == nil {
		t.Fatalf("image: %v", r.Err)
	}
	want := "modelarts_image_status{arch=\"x86_64\uFFFD\",id=\"" + id + "\",name=\"bad\uFFFDname\",project=\"p\",status=\"W\uFFFDIRD\",type=\"\",visibility=\"\"} 1"
	if text := exposition(t, []ProjectResult{res}); !strings.Contains(text, want) { // exposition lints the families
		t.Errorf("the exposition lacks %s:\n%s", want, text)
	}
}

// gatherer serves the families of results, as /metrics does.
func gatherer(results []ProjectResult) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return gathered(results), nil })
}
