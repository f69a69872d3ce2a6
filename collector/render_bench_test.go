// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// renderResults is one project of n generated images, all fetched.
func renderResults(n int) []ProjectResult {
	images := modelartstest.GenerateImages(n, 1)
	res := ProjectResult{Name: "prod", Up: true, Duration: time.Second, Images: make([]ImageResult, n)}
	at := time.Unix(1_800_000_000, 0)
	for i := range images {
		res.Images[i] = ImageResult{ID: images[i].ID, Image: &images[i], LastSuccess: at}
	}
	return []ProjectResult{res}
}

// renderExporter writes results as text as /metrics does: the value
// families, then the scrape families, in parts.
func renderExporter(w io.Writer, results []ProjectResult) error {
	enc := NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	if err := EmitValueFamilies(results, enc.PartImages(), enc.Emit); err != nil {
		return err
	}
	return EmitScrapeFamilies(results, enc.PartImages(), enc.Emit)
}

// gathered returns the families of results whole, by name, as a registry
// would gather them, copied out of the storage the Emit functions reuse.
func gathered(results []ProjectResult) []*dto.MetricFamily {
	var mfs []*dto.MetricFamily
	keep := func(mf *dto.MetricFamily, _ bool) error {
		mfs = append(mfs, proto.Clone(mf).(*dto.MetricFamily))
		return nil
	}
	_ = EmitValueFamilies(results, 0, keep)
	_ = EmitScrapeFamilies(results, 0, keep)
	slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return mfs
}

// renderFloor is the floor: a hand-written text writer of the same series,
// from the same data, in the same order. TestRenderFloorMatches keeps it
// honest: its bytes are the exporter's.
func renderFloor(w io.Writer, results []ProjectResult) error {
	type entry struct {
		project string
		r       *ImageResult
	}
	var all []entry
	for i := range results {
		for j := range results[i].Images {
			all = append(all, entry{results[i].Name, &results[i].Images[j]})
		}
	}
	byID := slices.Clone(all)
	slices.SortFunc(byID, func(a, b entry) int { return cmp.Or(cmp.Compare(a.r.ID, b.r.ID), cmp.Compare(a.project, b.project)) })
	images := slices.DeleteFunc(slices.Clone(all), func(e entry) bool { return e.r.Image == nil })
	slices.SortFunc(images, func(a, b entry) int {
		x, y := a.r.Image, b.r.Image
		return cmp.Or(cmp.Compare(x.Arch, y.Arch), cmp.Compare(a.r.ID, b.r.ID), cmp.Compare(x.Name, y.Name), cmp.Compare(a.project, b.project))
	})
	b := make([]byte, 0, 1<<20)
	q := func(name, v string) {
		b = append(b, name...)
		b = append(b, '=', '"')
		b = append(b, v...)
		b = append(b, '"')
	}
	num := func(v float64) { b = append(b, ' '); b = strconv.AppendFloat(b, v, 'g', -1, 64); b = append(b, '\n') }
	head := func(i int) {
		b = append(b, "# HELP "+families[i].name+" "+families[i].help+"\n# TYPE "+families[i].name+" gauge\n"...)
	}
	img := func(name string, e entry, status string) {
		x := e.r.Image
		b = append(b, name...)
		b = append(b, '{')
		q("arch", x.Arch)
		b = append(b, ',')
		q("id", e.r.ID)
		b = append(b, ',')
		q("name", x.Name)
		b = append(b, ',')
		q("project", e.project)
		if status != "" {
			b = append(b, ',')
			q("status", status)
		}
		b = append(b, ',')
		q("type", x.Type)
		b = append(b, ',')
		q("visibility", x.Visibility)
		b = append(b, '}')
	}
	health := func(i int, value func(*ImageResult) (float64, bool)) {
		head(i)
		for _, e := range byID {
			if v, ok := value(e.r); ok {
				b = append(b, families[i].name+`{id="`...)
				b = append(b, e.r.ID...)
				b = append(b, `",project="`...)
				b = append(b, e.project...)
				b = append(b, `"}`...)
				num(v)
			}
		}
	}
	perImage := func(i int, value func(*ImageResult) (float64, bool)) {
		head(i)
		for _, e := range images {
			if v, ok := value(e.r); ok {
				img(families[i].name, e, "")
				num(v)
			}
		}
	}
	perImage(famCreated, func(r *ImageResult) (float64, bool) { return float64(r.Image.CreateAt) / 1000, r.Image.CreateAt > 0 })
	head(famInfo)
	for _, e := range images {
		x := e.r.Image
		b = append(b, families[famInfo].name+"{"...)
		for k, kv := range [][2]string{{"arch", x.Arch}, {"dev_services", joinSorted(x.DevServices)}, {"id", e.r.ID}, {"name", x.Name},
			{"namespace", x.Namespace}, {"origin", x.Origin}, {"project", e.project}, {"resource_categories", joinSorted(x.ResourceCategories)},
			{"service_type", x.ServiceType}, {"swr_path", x.SWRPath}, {"tag", x.Tag}, {"type", x.Type}, {"visibility", x.Visibility}, {"workspace_id", x.WorkspaceID}} {
			if k > 0 {
				b = append(b, ',')
			}
			q(kv[0], kv[1])
		}
		b = append(b, '}')
		num(1)
	}
	perImage(famSize, func(r *ImageResult) (float64, bool) {
		if r.Image.Size == nil {
			return 0, false
		}
		return float64(*r.Image.Size) * 1024, true
	})
	head(famStatus)
	for _, e := range images {
		status := strings.ToUpper(strings.TrimSpace(e.r.Image.Status))
		states := sortedStatuses
		if i, found := slices.BinarySearch(states, status); !found && status != "" {
			states = slices.Insert(slices.Clone(states), i, status)
		}
		for _, s := range states {
			img(families[famStatus].name, e, s)
			num(boolValue(s == status))
		}
	}
	perImage(famUpdated, func(r *ImageResult) (float64, bool) { return float64(r.Image.UpdateAt) / 1000, r.Image.UpdateAt > 0 })
	health(famLastSuccess, func(r *ImageResult) (float64, bool) {
		return float64(r.LastSuccess.UnixMilli()) / 1000, !r.LastSuccess.IsZero()
	})
	health(famNotFound, func(r *ImageResult) (float64, bool) { return boolValue(imageNotFound(r.Err)), true })
	health(famImageUp, func(r *ImageResult) (float64, bool) { return boolValue(r.Err == nil && r.Image != nil), true })
	for _, i := range []int{famDuration, famUp} {
		head(i)
		for _, p := range results {
			b = append(b, families[i].name+`{project="`...)
			b = append(b, p.Name...)
			b = append(b, `"}`...)
			num(map[int]float64{famDuration: p.Duration.Seconds(), famUp: boolValue(p.Up)}[i])
		}
	}
	_, err := w.Write(b)
	return err
}

// TestRenderFloorMatches: the floor of BenchmarkRender writes the exporter's bytes.
func TestRenderFloorMatches(t *testing.T) {
	results := renderResults(300)
	var got, want bytes.Buffer
	if err := renderExporter(&want, results); err != nil {
		t.Fatal(err)
	}
	if err := renderFloor(&got, results); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("the floor differs from the exporter:\n%s", diffLines(want.String(), got.String()))
	}
}

// BenchmarkRender renders n images' series as text: the exporter's path
// (Families, encoded by client_golang's expfmt) and the floor, a hand-written
// writer of the same bytes. Compare them within one run.
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 50_000} {
		results := renderResults(n)
		var buf bytes.Buffer
		if err := renderExporter(&buf, results); err != nil {
			b.Fatal(err)
		}
		series := float64(bytes.Count(buf.Bytes(), []byte("\n")) - 2*famCount)
		for _, w := range []struct {
			name   string
			render func(io.Writer, []ProjectResult) error
		}{{"exporter", renderExporter}, {"floor", renderFloor}} {
			b.Run(fmt.Sprintf("images=%d/%s", n, w.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if err := w.render(&buf, results); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(series, "series")
				b.ReportMetric(float64(testing.AllocsPerRun(1, func() { buf.Reset(); _ = w.render(&buf, results) }))/series, "allocs/series")
			})
		}
	}
}

// TestPartsEncodeAsWholeFamilies: in the text formats, families emitted in
// parts of any size encode to the bytes of whole families.
func TestPartsEncodeAsWholeFamilies(t *testing.T) {
	results := renderResults(50)
	results[0].Images[3].Image, results[0].Images[3].LastSuccess = nil, time.Time{}
	results[0].Images[4].Image.Status = "FROZEN"
	results = append(results, ProjectResult{Name: "other", Images: results[0].Images[10:13]})
	for _, format := range []expfmt.Format{expfmt.NewFormat(expfmt.TypeTextPlain), expfmt.NewFormat(expfmt.TypeOpenMetrics)} {
		render := func(partImages int) string {
			var b strings.Builder
			enc := NewEncoder(&b, format)
			for _, emit := range []func([]ProjectResult, int, Emit) error{EmitValueFamilies, EmitScrapeFamilies} {
				if err := emit(results, partImages, enc.Emit); err != nil {
					t.Fatal(err)
				}
			}
			if err := enc.Close(); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}
		whole := render(0)
		if !strings.Contains(whole, `status="FROZEN"`) || !strings.Contains(whole, `project="other"`) {
			t.Fatalf("%s: the fixture lacks what it tests:\n%s", format, whole)
		}
		for _, n := range []int{1, 2, 7, 49, 1000} {
			if got := render(n); got != whole {
				t.Errorf("%s in parts of %d images differs from whole families:\n%s", format, n, diffLines(whole, got))
			}
		}
	}
}

// TestValueFingerprint: equal values fingerprint alike whatever their
// pointers, and a change of any field of an image that changes
// ValueFamilies (found by reflection: a field added later is covered)
// changes the fingerprint.
func TestValueFingerprint(t *testing.T) {
	base := renderResults(3)
	fp := ValueFingerprint(base)
	if ValueFingerprint(renderResults(3)) != fp {
		t.Fatal("equal values, fresh pointers: the fingerprint differs")
	}
	text := valueText(t, base)
	typ := reflect.TypeFor[modelarts.Image]()
	for i := range typ.NumField() {
		for _, variant := range []int{0, 1} {
			results := renderResults(3)
			img := *results[0].Images[1].Image
			if !mutate(reflect.ValueOf(&img).Elem().Field(i), variant) {
				continue
			}
			results[0].Images[1].Image = &img
			changed := valueText(t, results) != text
			if changed && ValueFingerprint(results) == fp {
				t.Errorf("field %s (variant %d) changes the value families but not the fingerprint", typ.Field(i).Name, variant)
			}
		}
	}
	for _, change := range []func([]ProjectResult){
		func(r []ProjectResult) { r[0].Name = "other" },
		func(r []ProjectResult) { r[0].Images[0].ID += "0" },
		func(r []ProjectResult) { r[0].Images[0].Image = nil },
	} {
		results := renderResults(3)
		change(results)
		if ValueFingerprint(results) == fp {
			t.Errorf("a change of project, ID or presence keeps the fingerprint")
		}
	}
}

// mutate changes v, a field of an image, in one of two ways; false when it
// cannot.
func mutate(v reflect.Value, variant int) bool {
	switch {
	case v.Kind() == reflect.String:
		v.SetString(v.String() + []string{"x", " Y"}[variant])
	case v.Kind() == reflect.Int64:
		v.SetInt(v.Int() + int64(1+variant)*1000)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		v.Set(reflect.Append(v, reflect.ValueOf([]string{"x", ""}[variant])))
	case v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Int64:
		if variant == 0 || v.IsNil() {
			n := int64(7)
			if !v.IsNil() {
				n = v.Elem().Int() + 1
			}
			v.Set(reflect.ValueOf(&n))
		} else {
			v.Set(reflect.Zero(v.Type()))
		}
	default:
		return false
	}
	return true
}

// valueText is the value families of results as text.
func valueText(t *testing.T, results []ProjectResult) string {
	t.Helper()
	var b strings.Builder
	enc := NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	if err := EmitValueFamilies(results, enc.PartImages(), enc.Emit); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestHeaderSkipperAnyChunks: the header is skipped, and only the header,
// however the bytes are split into writes (a '#' inside a series is kept).
func TestHeaderSkipperAnyChunks(t *testing.T) {
	const in = "# HELP m Help.\n# TYPE m gauge\nm{a=\"#x\"} 1\nm{a=\"y\"} 2\n"
	want := in[strings.Index(in, "m{"):]
	for size := 1; size <= len(in); size++ {
		var b strings.Builder
		s := &headerSkipper{w: &b}
		for chunk := range slices.Chunk([]byte(in), size) {
			if n, err := s.Write(chunk); n != len(chunk) || err != nil {
				t.Fatalf("chunks of %d: Write = %d, %v", size, n, err)
			}
		}
		if b.String() != want {
			t.Errorf("chunks of %d: wrote %q, want %q", size, b.String(), want)
		}
	}
}
