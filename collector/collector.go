// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

// Package collector turns the results of a scrape of the ModelArts API into
// Prometheus metrics.
package collector

import (
	"errors"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

const namespace = "modelarts"

var imageLabels = []string{"project", "id", "name", "arch", "type", "visibility"}

// The descriptors are built once; they are immutable and shared by every scrape.
var (
	sizeDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "image", "size_bytes"),
		"Size of the image in bytes: the API's size field, documented in KB, times 1024. No series when the API sends no size (built-in images).",
		imageLabels, nil)
	statusDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "image", "status"),
		"Status of the image as a state set: 1 for the current status, 0 for the other documented ones (INIT, CREATING, CREATE_FAILED, ERROR, DELETED, ACTIVE). An undocumented status gets a series of its own.",
		append(slices.Clone(imageLabels), "status"), nil)
	createdDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "image", "created_timestamp_seconds"),
		"Time the image was created, in seconds since the Unix epoch (create_at).",
		imageLabels, nil)
	updatedDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "image", "updated_timestamp_seconds"),
		"Time the image was last updated, in seconds since the Unix epoch (update_at).",
		imageLabels, nil)
	infoDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "image", "info"),
		"Descriptive fields of the image; always 1. List fields are sorted and comma-joined.",
		append(slices.Clone(imageLabels), "service_type", "origin", "namespace", "tag", "swr_path", "workspace_id", "dev_services", "resource_categories"), nil)
	imageUpDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "image", "up"),
		"1 when the image's values come from a successful fetch (this scrape's, or one shared within min_refresh_interval), else 0; with serve_stale_for, a 0 may come with the last good values.",
		[]string{"project", "id"}, nil)
	lastSuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "image", "last_success_timestamp_seconds"),
		"Time the image was last fetched successfully, in seconds since the Unix epoch: the age of the values exported. No series before the first success.",
		[]string{"project", "id"}, nil)
	notFoundDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "image", "not_found"),
		"1 when ShowImage says the image does not exist (HTTP 404, or 400 with ModelArts.6404 or ModelArts.6797), else 0.",
		[]string{"project", "id"}, nil)
	upDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "", "up"),
		"0 when the project's credentials were refused or the API could not be reached in this scrape, else 1.",
		[]string{"project"}, nil)
	durationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "scrape", "duration_seconds"),
		"Time spent fetching the project's images for this scrape (by the fetch it shared, within min_refresh_interval).",
		[]string{"project"}, nil)
)

// ImageCollector exports the results of one scrape as constant metrics.
type ImageCollector struct {
	results []ProjectResult
}

var _ prometheus.Collector = (*ImageCollector)(nil)

// NewImageCollector returns a collector that exports results.
func NewImageCollector(results []ProjectResult) (*ImageCollector, error) {
	seen := make(map[string]bool, len(results))
	for _, r := range results {
		if seen[r.Name] {
			return nil, errors.New("duplicate project " + r.Name)
		}
		seen[r.Name] = true
	}
	return &ImageCollector{results: results}, nil
}

// Describe sends every descriptor Collect can emit.
func (c *ImageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sizeDesc, statusDesc, createdDesc, updatedDesc, infoDesc, imageUpDesc, lastSuccessDesc, notFoundDesc, upDesc, durationDesc} {
		ch <- d
	}
}

// Collect sends the metrics of every project and image.
func (c *ImageCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.results {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, boolValue(p.Up), p.Name)
		ch <- prometheus.MustNewConstMetric(durationDesc, prometheus.GaugeValue, p.Duration.Seconds(), p.Name)
		for _, r := range p.Images {
			collectImage(ch, p.Name, r)
		}
	}
}

func collectImage(ch chan<- prometheus.Metric, project string, r ImageResult) {
	ch <- prometheus.MustNewConstMetric(imageUpDesc, prometheus.GaugeValue, boolValue(r.Err == nil && r.Image != nil), project, r.ID)
	ch <- prometheus.MustNewConstMetric(notFoundDesc, prometheus.GaugeValue, boolValue(imageNotFound(r.Err)), project, r.ID)
	if !r.LastSuccess.IsZero() {
		ch <- prometheus.MustNewConstMetric(lastSuccessDesc, prometheus.GaugeValue, float64(r.LastSuccess.UnixMilli())/1000, project, r.ID)
	}
	img := r.Image
	if img == nil {
		return
	}
	// Label values are passed on as they are: Prometheus wants valid UTF-8,
	// and they are. Project names and configured IDs are validated ASCII;
	// everything else was decoded by encoding/json, which replaces invalid
	// UTF-8 with U+FFFD.
	labels := []string{project, r.ID, img.Name, img.Arch, img.Type, img.Visibility}

	if img.Size != nil {
		ch <- prometheus.MustNewConstMetric(sizeDesc, prometheus.GaugeValue, float64(*img.Size)*1024, labels...)
	}
	status := strings.ToUpper(strings.TrimSpace(img.Status))
	for _, s := range modelarts.Statuses {
		ch <- prometheus.MustNewConstMetric(statusDesc, prometheus.GaugeValue, boolValue(s == status), append(labels, s)...)
	}
	if status != "" && !slices.Contains(modelarts.Statuses, status) {
		ch <- prometheus.MustNewConstMetric(statusDesc, prometheus.GaugeValue, 1, append(labels, status)...)
	}
	if img.CreateAt > 0 {
		ch <- prometheus.MustNewConstMetric(createdDesc, prometheus.GaugeValue, float64(img.CreateAt)/1000, labels...)
	}
	if img.UpdateAt > 0 {
		ch <- prometheus.MustNewConstMetric(updatedDesc, prometheus.GaugeValue, float64(img.UpdateAt)/1000, labels...)
	}
	ch <- prometheus.MustNewConstMetric(infoDesc, prometheus.GaugeValue, 1, append(labels,
		img.ServiceType, img.Origin, img.Namespace, img.Tag, img.SWRPath, img.WorkspaceID,
		joinSorted(img.DevServices), joinSorted(img.ResourceCategories))...)
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
