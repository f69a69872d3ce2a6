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
	famInfo:        {"modelarts_image_info", "Descriptive fields of the image, list fields sorted and comma-joined; always 1."},
	famLastSuccess: {"modelarts_image_last_success_timestamp_seconds", "Time the image was last fetched successfully, in seconds since the Unix epoch."},
	famNotFound:    {"modelarts_image_not_found", "1 when ShowImage says the image does not exist (HTTP 404, or 400 with ModelArts.6404 or ModelArts.6797), else 0."},
	famSize:        {"modelarts_image_size_bytes", "Size of the image in bytes (the API's size in KB times 1024); no series when the API sends none."},
	famStatus:      {"modelarts_image_status", "Status of the image as a state set: 1 for the current status, 0 for the other documented ones, and a series of its own for an undocumented status."},
	famImageUp:     {"modelarts_image_up", "1 when the image's values come from a successful fetch (this scrape's or one shared within min_refresh_interval), else 0."},
	famUpdated:     {"modelarts_image_updated_timestamp_seconds", "Time the image was last updated, in seconds since the Unix epoch (update_at)."},
	famDuration:    {"modelarts_scrape_duration_seconds", "Time spent fetching the project's images for this scrape (by the fetch it shared, within min_refresh_interval)."},
	famUp:          {"modelarts_up", "0 when the project's credentials were refused, its endpoint or project_id is wrong, or the API could not be reached in this scrape, else 1."},
}

// sortedStatuses are the documented states in label order.
var sortedStatuses = slices.Sorted(slices.Values(modelarts.Statuses))

// Emit receives the families of an answer in order, each whole or in parts
// (continued: more series of the part before's family). mf is valid only
// until Emit returns: its storage is reused for the next part.
type Emit func(mf *dto.MetricFamily, continued bool) error

// EmitScrapeFamilies emits the families that change with every scrape (image
// health, durations, up), by name, at most partImages images (or projects) a
// part; 0: whole families.
func EmitScrapeFamilies(results []ProjectResult, partImages int, emit Emit) error {
	all := imageEntries(results, func(*ImageResult) bool { return true })
	slices.SortFunc(all, func(a, b imageEntry) int {
		return cmp.Or(cmp.Compare(a.r.ID, b.r.ID), cmp.Compare(a.project, b.project))
	})
	projects := make([]imageEntry, len(results))
	for i := range results {
		projects[i] = imageEntry{project: results[i].Name, p: &results[i]}
	}
	b := newBuilder(partImages, max(len(all), len(results)), scrapeEntry)
	if err := b.emit(all, emit, scrapeSeries, famLastSuccess, famNotFound, famImageUp); err != nil {
		return err
	}
	return b.emit(projects, emit, scrapeSeries, famDuration, famUp)
}

// EmitValueFamilies emits the families of the images' values (size, status,
// timestamps, info) as EmitScrapeFamilies does; they change with ValueFingerprint.
func EmitValueFamilies(results []ProjectResult, partImages int, emit Emit) error {
	all := imageEntries(results, func(r *ImageResult) bool { return r.Image != nil })
	slices.SortFunc(all, func(a, b imageEntry) int {
		x, y := a.r.Image, b.r.Image
		return cmp.Or(cmp.Compare(x.Arch, y.Arch), cmp.Compare(a.r.ID, b.r.ID), cmp.Compare(x.Name, y.Name), cmp.Compare(a.project, b.project))
	})
	return newBuilder(partImages, len(all), valueEntry).emit(all, emit, valueSeries, famCreated, famInfo, famSize, famStatus, famUpdated)
}

// imageEntry is an image result and the project it belongs to, or a
// project's result.
type imageEntry struct {
	project string
	r       *ImageResult
	p       *ProjectResult
}

func imageEntries(results []ProjectResult, keep func(*ImageResult) bool) []imageEntry {
	var all []imageEntry
	for i := range results {
		for j := range results[i].Images {
			if r := &results[i].Images[j]; keep(r) {
				all = append(all, imageEntry{project: results[i].Name, r: r})
			}
		}
	}
	return all
}

// scrapeSeries adds the series of family f of one image (labels id,
// project) or project (label project).
func scrapeSeries(b *builder, f int, e imageEntry) {
	switch f {
	case famDuration:
		b.gauge(b.labels(b.label("project", e.project)), e.p.Duration.Seconds())
		return
	case famUp:
		b.gauge(b.labels(b.label("project", e.project)), boolValue(e.p.Up))
		return
	}
	pairs := b.labels(b.label("id", e.r.ID), b.label("project", e.project))
	switch f {
	case famImageUp:
		b.gauge(pairs, boolValue(e.r.Err == nil && e.r.Image != nil))
	case famNotFound:
		b.gauge(pairs, boolValue(imageNotFound(e.r.Err)))
	case famLastSuccess:
		if !e.r.LastSuccess.IsZero() {
			b.gauge(pairs, float64(e.r.LastSuccess.UnixMilli())/1000)
		}
	}
}

// valueSeries adds the series of family f of one image's values, labelled
// arch, id, name, project, (status,) type, visibility.
func valueSeries(b *builder, f int, e imageEntry) {
	// Label values are valid UTF-8 as they are: names and IDs are validated
	// ASCII, and encoding/json replaced invalid UTF-8 in the rest.
	img := e.r.Image
	arch, id, name, project := b.label("arch", img.Arch), b.label("id", e.r.ID), b.label("name", img.Name), b.label("project", e.project)
	typ, vis := b.label("type", img.Type), b.label("visibility", img.Visibility)
	switch f {
	case famSize:
		if img.Size != nil {
			b.gauge(b.labels(arch, id, name, project, typ, vis), float64(*img.Size)*1024)
		}
	case famCreated, famUpdated:
		ms := img.CreateAt
		if f == famUpdated {
			ms = img.UpdateAt
		}
		if ms > 0 {
			b.gauge(b.labels(arch, id, name, project, typ, vis), float64(ms)/1000)
		}
	case famStatus:
		status, states := strings.ToUpper(strings.TrimSpace(img.Status)), sortedStatuses
		if i, found := slices.BinarySearch(states, status); status != "" && !found {
			states = slices.Insert(slices.Clone(states), i, status) // an undocumented status: a series of its own
		}
		for _, s := range states {
			b.gauge(b.labels(arch, id, name, project, b.label("status", s), typ, vis), boolValue(s == status))
		}
	case famInfo:
		b.gauge(b.labels(arch, b.label("dev_services", joinSorted(img.DevServices)), id, name,
			b.label("namespace", img.Namespace), b.label("origin", img.Origin), project,
			b.label("resource_categories", joinSorted(img.ResourceCategories)), b.label("service_type", img.ServiceType),
			b.label("swr_path", img.SWRPath), b.label("tag", img.Tag), typ, vis, b.label("workspace_id", img.WorkspaceID)), 1)
	}
}

// perEntry is the most one entry adds to one family: series, label pairs
// made and labels. The storage of a builder is sized by it: whole families
// (protobuf) hold every entry at once.
type perEntry struct{ series, pairs, labels int }

var (
	// A value family of one image: the documented states and an
	// undocumented one; info's pairs; the states' labels.
	valueEntry = perEntry{series: 7, pairs: 16, labels: 7 * 7}
	// A scrape family of one image (id, project) or project (project).
	scrapeEntry = perEntry{series: 1, pairs: 2, labels: 2}
)

// builder holds the series of one part of a family in storage reused for the
// next part. Its slices never grow past their capacity, so pointers into them stay valid.
type builder struct {
	entries int // per part
	series  []sample
	metrics []*dto.Metric
	pairs   []labelPair
	labelsB []*dto.LabelPair
	family  dto.MetricFamily
}

type sample struct {
	metric dto.Metric
	gauge  dto.Gauge
	value  float64
}

type labelPair struct {
	pair        dto.LabelPair
	name, value string
}

func newBuilder(partImages, n int, per perEntry) *builder {
	if partImages <= 0 || partImages > n {
		partImages = n
	}
	k := max(partImages, 1)
	return &builder{entries: k, series: make([]sample, 0, per.series*k), metrics: make([]*dto.Metric, 0, per.series*k),
		pairs: make([]labelPair, 0, per.pairs*k), labelsB: make([]*dto.LabelPair, 0, per.labels*k)}
}

// emit emits families fams of entries, b.entries at a time, with the series
// add makes of each entry.
func (b *builder) emit(entries []imageEntry, emit Emit, add func(*builder, int, imageEntry), fams ...int) error {
	for _, f := range fams {
		continued := false
		for part := range slices.Chunk(entries, b.entries) {
			b.series, b.metrics, b.pairs, b.labelsB = b.series[:0], b.metrics[:0], b.pairs[:0], b.labelsB[:0]
			for _, e := range part {
				add(b, f, e)
			}
			if len(b.metrics) == 0 {
				continue
			}
			b.family = dto.MetricFamily{Name: &families[f].name, Help: &families[f].help, Type: dto.MetricType_GAUGE.Enum(), Metric: b.metrics}
			if err := emit(&b.family, continued); err != nil {
				return err
			}
			continued = true
		}
	}
	return nil
}

// label returns a label pair made in b's storage.
func (b *builder) label(name, value string) *dto.LabelPair {
	b.pairs = b.pairs[:len(b.pairs)+1]
	l := &b.pairs[len(b.pairs)-1]
	*l = labelPair{name: name, value: value}
	l.pair.Name, l.pair.Value = &l.name, &l.value
	return &l.pair
}

// labels returns the label set pairs, kept in b's storage.
func (b *builder) labels(pairs ...*dto.LabelPair) []*dto.LabelPair {
	n := len(b.labelsB)
	b.labelsB = append(b.labelsB, pairs...)
	return b.labelsB[n:len(b.labelsB):len(b.labelsB)]
}

// gauge adds a gauge series.
func (b *builder) gauge(labels []*dto.LabelPair, v float64) {
	b.series = b.series[:len(b.series)+1]
	s := &b.series[len(b.series)-1]
	*s = sample{value: v}
	s.gauge.Value, s.metric.Gauge, s.metric.Label = &s.value, &s.gauge, labels
	b.metrics = append(b.metrics, &s.metric)
}

// fingerprintSeed makes ValueFingerprint stable within the process.
var fingerprintSeed = maphash.MakeSeed()

// ValueFingerprint hashes by value everything EmitValueFamilies exports (kept
// in step with valueSeries): equal contents hash alike, whatever their pointers.
// A result the Scraper made carries its hash, computed once per fetch, not per scrape.
func ValueFingerprint(results []ProjectResult) uint64 {
	var h maphash.Hash
	h.SetSeed(fingerprintSeed)
	for i := range results {
		fp := results[i].values
		if fp == 0 {
			fp = valuesHash(&results[i])
		}
		_, _ = h.Write(binary.LittleEndian.AppendUint64(nil, fp))
	}
	return h.Sum64()
}

// valuesHash is ValueFingerprint of p alone.
func valuesHash(p *ProjectResult) uint64 {
	var h maphash.Hash
	h.SetSeed(fingerprintSeed)
	hashStrings(&h, p.Name)
	for j := range p.Images {
		r := &p.Images[j]
		if img := r.Image; img != nil {
			_ = h.WriteByte(1)
			hashStrings(&h, r.ID, img.Arch, img.Name, img.Type, img.Visibility, img.Status,
				img.Namespace, img.Origin, img.ServiceType, img.SWRPath, img.Tag, img.WorkspaceID)
			hashStrings(&h, img.DevServices...)
			hashStrings(&h, img.ResourceCategories...)
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
	return h.Sum64()
}

// hashStrings hashes ss with their lengths, so that neighbours cannot trade bytes.
func hashStrings(h *maphash.Hash, ss ...string) {
	var b [8]byte
	_, _ = h.Write(binary.LittleEndian.AppendUint64(b[:0], uint64(len(ss))))
	for _, s := range ss {
		_, _ = h.Write(binary.LittleEndian.AppendUint64(b[:0], uint64(len(s))))
		_, _ = h.WriteString(s)
	}
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
