// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

// Package collector fetches the images of the configured projects and turns
// the results into Prometheus metric families.
package collector

import (
	"cmp"
	"encoding/binary"
	"hash/maphash"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// The metric families, in the order a registry gathers them (by name).
const (
	famCreated = iota
	famInfo
	famLastSuccess
	famNotFound
	famSize
	famStatus
	famImageUp
	famUpdated
	famDuration
	famUp
	famCount
)

var families = [famCount]struct{ name, help string }{
	famCreated:     {"modelarts_image_created_timestamp_seconds", "Time the image was created, in seconds since the Unix epoch (create_at)."},
	famInfo:        {"modelarts_image_info", "Descriptive fields of the image; always 1. List fields are sorted and comma-joined."},
	famLastSuccess: {"modelarts_image_last_success_timestamp_seconds", "Time the image was last fetched successfully, in seconds since the Unix epoch: the age of the values exported. No series before the first success."},
	famNotFound:    {"modelarts_image_not_found", "1 when ShowImage says the image does not exist (HTTP 404, or 400 with ModelArts.6404 or ModelArts.6797), else 0."},
	famSize:        {"modelarts_image_size_bytes", "Size of the image in bytes: the API's size field, documented in KB, times 1024. No series when the API sends no size (built-in images)."},
	famStatus:      {"modelarts_image_status", "Status of the image as a state set: 1 for the current status, 0 for the other documented ones (INIT, CREATING, CREATE_FAILED, ERROR, DELETED, ACTIVE). An undocumented status gets a series of its own."},
	famImageUp:     {"modelarts_image_up", "1 when the image's values come from a successful fetch (this scrape's, or one shared within min_refresh_interval), else 0; with serve_stale_for, a 0 may come with the last good values."},
	famUpdated:     {"modelarts_image_updated_timestamp_seconds", "Time the image was last updated, in seconds since the Unix epoch (update_at)."},
	famDuration:    {"modelarts_scrape_duration_seconds", "Time spent fetching the project's images for this scrape (by the fetch it shared, within min_refresh_interval)."},
	famUp:          {"modelarts_up", "0 when the project's credentials were refused, its endpoint or project_id is wrong, or the API could not be reached in this scrape, else 1."},
}

// sortedStatuses are the documented states in label order.
var sortedStatuses = slices.Sorted(slices.Values(modelarts.Statuses))

// Families returns the metric families of results as a registry would
// gather them: families by name, series by label values, byte for byte.
// They are ScrapeFamilies and ValueFamilies merged.
func Families(results []ProjectResult) []*dto.MetricFamily {
	var fams [famCount][]*dto.Metric
	scrapeSeries(&fams, results)
	valueSeries(&fams, results)
	return gathered(&fams)
}

// ScrapeFamilies returns the families of the outcome of this scrape (up,
// durations, image health), which change with every scrape, as Families
// orders them.
func ScrapeFamilies(results []ProjectResult) []*dto.MetricFamily {
	var fams [famCount][]*dto.Metric
	scrapeSeries(&fams, results)
	return gathered(&fams)
}

// ValueFamilies returns the families of the images' values (size, status,
// timestamps, info), as Families orders them. They change only when
// ValueFingerprint does.
func ValueFamilies(results []ProjectResult) []*dto.MetricFamily {
	var fams [famCount][]*dto.Metric
	valueSeries(&fams, results)
	return gathered(&fams)
}

// imageEntry is an image result and the project it belongs to.
type imageEntry struct {
	project string
	r       *ImageResult
}

func imageEntries(results []ProjectResult, keep func(*ImageResult) bool) []imageEntry {
	var all []imageEntry
	for i := range results {
		for j := range results[i].Images {
			if r := &results[i].Images[j]; keep(r) {
				all = append(all, imageEntry{results[i].Name, r})
			}
		}
	}
	return all
}

// scrapeSeries adds the series of the projects' and images' health. The
// label pairs of an image are made once and shared by its series; the order
// comes from sorting the images once, not the series each has.
func scrapeSeries(fams *[famCount][]*dto.Metric, results []ProjectResult) {
	for i := range results {
		p := &results[i]
		project := label("project", p.Name)
		fams[famUp] = append(fams[famUp], gauge([]*dto.LabelPair{project}, boolValue(p.Up)))
		fams[famDuration] = append(fams[famDuration], gauge([]*dto.LabelPair{project}, p.Duration.Seconds()))
	}
	// Labels id, project.
	all := imageEntries(results, func(*ImageResult) bool { return true })
	slices.SortFunc(all, func(a, b imageEntry) int {
		return cmp.Or(cmp.Compare(a.r.ID, b.r.ID), cmp.Compare(a.project, b.project))
	})
	for _, e := range all {
		pairs := []*dto.LabelPair{label("id", e.r.ID), label("project", e.project)}
		fams[famImageUp] = append(fams[famImageUp], gauge(pairs, boolValue(e.r.Err == nil && e.r.Image != nil)))
		fams[famNotFound] = append(fams[famNotFound], gauge(pairs, boolValue(imageNotFound(e.r.Err))))
		if !e.r.LastSuccess.IsZero() {
			fams[famLastSuccess] = append(fams[famLastSuccess], gauge(pairs, float64(e.r.LastSuccess.UnixMilli())/1000))
		}
	}
}

// valueSeries adds the series of the images' values, in the order of their
// labels arch, id, name, project, (status,) type, visibility.
func valueSeries(fams *[famCount][]*dto.Metric, results []ProjectResult) {
	all := imageEntries(results, func(r *ImageResult) bool { return r.Image != nil })
	slices.SortFunc(all, func(a, b imageEntry) int {
		x, y := a.r.Image, b.r.Image
		return cmp.Or(cmp.Compare(x.Arch, y.Arch), cmp.Compare(a.r.ID, b.r.ID), cmp.Compare(x.Name, y.Name), cmp.Compare(a.project, b.project))
	})
	for _, e := range all {
		imageFamilies(fams, e.project, e.r.ID, e.r.Image)
	}
}

// gathered returns the families that have series, by name.
func gathered(fams *[famCount][]*dto.Metric) []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, famCount)
	for i, ms := range fams {
		if len(ms) > 0 {
			out = append(out, &dto.MetricFamily{Name: &families[i].name, Help: &families[i].help, Type: dto.MetricType_GAUGE.Enum(), Metric: ms})
		}
	}
	return out
}

// imageFamilies adds the series of one image's values.
func imageFamilies(fams *[famCount][]*dto.Metric, project, id string, img *modelarts.Image) {
	// Label values are passed on as they are: Prometheus wants valid UTF-8,
	// and they are. Project names and configured IDs are validated ASCII;
	// everything else was decoded by encoding/json, which replaces invalid
	// UTF-8 with U+FFFD.
	arch, idp, name, proj := label("arch", img.Arch), label("id", id), label("name", img.Name), label("project", project)
	typ, vis := label("type", img.Type), label("visibility", img.Visibility)
	pairs := []*dto.LabelPair{arch, idp, name, proj, typ, vis}
	if img.Size != nil {
		fams[famSize] = append(fams[famSize], gauge(pairs, float64(*img.Size)*1024))
	}
	status := strings.ToUpper(strings.TrimSpace(img.Status))
	states := sortedStatuses
	if status != "" && !slices.Contains(states, status) {
		states = slices.Insert(slices.Clone(states), sortedIndex(states, status), status)
	}
	backing := make([]*dto.LabelPair, 7*len(states)) // one allocation for the label sets of all states
	for i, s := range states {
		pairs := append(backing[7*i:7*i:7*i+7], arch, idp, name, proj, statusLabel(s), typ, vis)
		fams[famStatus] = append(fams[famStatus], gauge(pairs, boolValue(s == status)))
	}
	if img.CreateAt > 0 {
		fams[famCreated] = append(fams[famCreated], gauge(pairs, float64(img.CreateAt)/1000))
	}
	if img.UpdateAt > 0 {
		fams[famUpdated] = append(fams[famUpdated], gauge(pairs, float64(img.UpdateAt)/1000))
	}
	fams[famInfo] = append(fams[famInfo], gauge([]*dto.LabelPair{
		arch, label("dev_services", joinSorted(img.DevServices)), idp, name, label("namespace", img.Namespace),
		label("origin", img.Origin), proj, label("resource_categories", joinSorted(img.ResourceCategories)),
		label("service_type", img.ServiceType), label("swr_path", img.SWRPath), label("tag", img.Tag), typ, vis,
		label("workspace_id", img.WorkspaceID),
	}, 1))
}

// fingerprintSeed makes ValueFingerprint stable within the process.
var fingerprintSeed = maphash.MakeSeed()

// ValueFingerprint hashes everything ValueFamilies exports (project names,
// IDs and the exported fields of the images), by value: results with equal
// contents hash alike, whatever their pointers; a change of any exported
// value changes the hash (but for a chance of 2^-64). Keep it in step with
// imageFamilies.
func ValueFingerprint(results []ProjectResult) uint64 {
	var h maphash.Hash
	h.SetSeed(fingerprintSeed)
	for i := range results {
		p := &results[i]
		hashString(&h, p.Name)
		for j := range p.Images {
			r := &p.Images[j]
			if img := r.Image; img != nil {
				_ = h.WriteByte(1)
				for _, s := range [...]string{r.ID, img.Arch, img.Name, img.Type, img.Visibility, img.Status,
					img.Namespace, img.Origin, img.ServiceType, img.SWRPath, img.Tag, img.WorkspaceID} {
					hashString(&h, s)
				}
				hashStrings(&h, img.DevServices)
				hashStrings(&h, img.ResourceCategories)
				var b [25]byte // the size (if any), create_at, update_at
				if img.Size != nil {
					b[0] = 1
					binary.LittleEndian.PutUint64(b[1:], uint64(*img.Size))
				}
				binary.LittleEndian.PutUint64(b[9:], uint64(img.CreateAt))
				binary.LittleEndian.PutUint64(b[17:], uint64(img.UpdateAt))
				_, _ = h.Write(b[:])
			}
		}
		_ = h.WriteByte(0)
	}
	return h.Sum64()
}

// hashString hashes s with its length, so that neighbours cannot trade bytes.
func hashString(h *maphash.Hash, s string) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(len(s)))
	_, _ = h.Write(b[:])
	_, _ = h.WriteString(s)
}

func hashStrings(h *maphash.Hash, ss []string) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(len(ss)))
	_, _ = h.Write(b[:])
	for _, s := range ss {
		hashString(h, s)
	}
}

func sortedIndex(sorted []string, s string) int {
	i, _ := slices.BinarySearch(sorted, s)
	return i
}

// statusLabels are the label pairs of the documented states, shared by every image.
var statusLabels = func() map[string]*dto.LabelPair {
	m := map[string]*dto.LabelPair{}
	for _, s := range modelarts.Statuses {
		m[s] = label("status", s)
	}
	return m
}()

func statusLabel(s string) *dto.LabelPair {
	if p, ok := statusLabels[s]; ok {
		return p
	}
	return label("status", s)
}

// label returns a label pair in one allocation.
func label(name, value string) *dto.LabelPair {
	l := &struct {
		pair        dto.LabelPair
		name, value string
	}{name: name, value: value}
	l.pair.Name, l.pair.Value = &l.name, &l.value
	return &l.pair
}

// gauge returns a gauge sample in one allocation.
func gauge(pairs []*dto.LabelPair, v float64) *dto.Metric {
	g := &struct {
		metric dto.Metric
		gauge  dto.Gauge
		value  float64
	}{value: v}
	g.gauge.Value, g.metric.Gauge, g.metric.Label = &g.value, &g.gauge, pairs
	return &g.metric
}

func joinSorted(values []string) string {
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	return strings.Join(sorted, ",")
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
