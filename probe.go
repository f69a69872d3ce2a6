// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/modelarts-exporter/modelarts_exporter/collector"
)

// serveProbe answers GET /probe?project=NAME, the multi-target pattern of
// blackbox_exporter: the series of that project alone, with its
// modelarts_up and modelarts_scrape_duration_seconds, and none of the
// exporter's own metrics. It shares the fetches, slots and deadline rules
// of the metrics path.
func (h *scrapeHandler) serveProbe(w http.ResponseWriter, r *http.Request) {
	st := h.e.state.Load()
	name := r.URL.Query().Get("project")
	if names := st.scraper.ProjectNames(); !slices.Contains(names, name) {
		problem := "Missing project parameter"
		if name != "" {
			problem = fmt.Sprintf("Unknown project %q", name)
		}
		http.Error(w, fmt.Sprintf("%s: ask for /probe?project=NAME with one of the configured projects: %s.",
			problem, strings.Join(names, ", ")), http.StatusBadRequest)
		return
	}
	h.answer(w, r, st, h.probe, &h.probeLastRender, func(ctx context.Context) []collector.ProjectResult {
		return st.scraper.ScrapeProject(ctx, name)
	})
}
