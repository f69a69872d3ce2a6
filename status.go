// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/common/version"

	"github.com/modelarts-exporter/modelarts_exporter/collector"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

//go:embed status.html
var statusHTML string

var statusTemplate = template.Must(template.New("status").Parse(statusHTML))

// maxStatusImages bounds the images listed per project, the down ones first.
const maxStatusImages = 1000

// serveStatus serves each project's and image's newest results, without an API call.
func (e *exporter) serveStatus(w http.ResponseWriter, _ *http.Request) {
	data := statusData{Version: version.Info(), MetricsPath: e.f.metricsPath}
	now := time.Now()
	for _, p := range e.state.Load().scraper.Latest() { // routes are served once a configuration is applied
		data.Projects = append(data.Projects, statusOfProject(p, now))
	}
	var page bytes.Buffer
	if err := statusTemplate.Execute(&page, data); err != nil {
		level.Error(e.logger).Log("msg", "Error rendering the status page", "err", err)
		http.Error(w, "Error rendering the status page; see the exporter's log.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = page.WriteTo(w)
}

type statusData struct {
	Version, MetricsPath string
	Projects             []statusProject
}

type statusProject struct {
	Name              string
	Fetched, Up       bool
	Age, Duration     string
	Err, RequestID    string
	Total, Down, More int
	Images            []statusImage
}

type statusImage struct {
	ID, Name, Status string
	Up               bool
	LastSuccess      string
	Err, RequestID   string
}

func statusOfProject(p collector.ProjectResult, now time.Time) statusProject {
	sp := statusProject{Name: p.Name, Fetched: !p.Start.IsZero(), Up: p.Up, Total: len(p.Images)}
	if sp.Fetched {
		sp.Age, sp.Duration = ago(now, p.Start), p.Duration.Round(time.Millisecond).String()
	}
	sp.Err, sp.RequestID = errorText(p.Err)
	for _, r := range p.Images {
		si := statusImage{ID: r.ID, Up: r.Err == nil && r.Image != nil, LastSuccess: "never"} // Up as modelarts_image_up
		if r.Image != nil {
			si.Name, si.Status = r.Image.Name, r.Image.Status
		}
		if !r.LastSuccess.IsZero() {
			si.LastSuccess = ago(now, r.LastSuccess)
		}
		si.Err, si.RequestID = errorText(r.Err)
		if !si.Up {
			sp.Down++
		}
		sp.Images = append(sp.Images, si)
	}
	slices.SortFunc(sp.Images, func(a, b statusImage) int { // the down ones first, then by ID
		if a.Up == b.Up {
			return strings.Compare(a.ID, b.ID)
		}
		if a.Up {
			return 1
		}
		return -1
	})
	sp.More = max(len(sp.Images)-maxStatusImages, 0)
	sp.Images = sp.Images[:len(sp.Images)-sp.More]
	return sp
}

// errorText returns err's text and the request id of the failed API call, if any.
func errorText(err error) (text, requestID string) {
	if err != nil {
		text = err.Error()
	}
	if apiErr := modelarts.AsAPIError(err); apiErr != nil {
		requestID = apiErr.RequestID
	}
	return text, requestID
}

func ago(now, t time.Time) string {
	return now.Sub(t).Round(time.Second).String() + " ago"
}
