// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	Templating struct {
		List []dashVariable `json:"list"`
	} `json:"templating"`
	Panels []dashPanel `json:"panels"`
}

type dashVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	AllValue   string          `json:"allValue"`
	IncludeAll bool            `json:"includeAll"`
}

type dashPanel struct {
	ID      int         `json:"id"`
	Type    string      `json:"type"`
	Title   string      `json:"title"`
	Targets []dashQuery `json:"targets"`
	Panels  []dashPanel `json:"panels"` // of a collapsed row
}

type dashQuery struct {
	RefID   string `json:"refId"`
	Expr    string `json:"expr"`
	Instant bool   `json:"instant"`
	Format  string `json:"format"`
}

// labelValuesRE parses Grafana's label_values(metric{...}, label) and label_values(label).
var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(?:(.+?)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// checkDashboard runs every query of deploy/grafana/modelarts-images.json
// against Prometheus, the way Grafana would, and requires data: the template
// variables' queries, and every panel's queries once with "All" selected and
// once with one project and one image selected.
func (e *e2e) checkDashboard(ctx context.Context) error {
	path := filepath.Join(e.opts.repo, "deploy", "grafana", "modelarts-images.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}

	// Template variables.
	vars := map[string]dashVariable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	for _, name := range []string{"datasource", "project", "image"} {
		if _, ok := vars[name]; !ok {
			return fmt.Errorf("%s: no template variable %q", path, name)
		}
	}
	if ds := vars["datasource"]; ds.Type != "datasource" || string(ds.Query) != `"prometheus"` {
		return fmt.Errorf("%s: variable datasource: type %q query %s, want a prometheus data source variable", path, ds.Type, ds.Query)
	}
	all := map[string]string{}
	for _, name := range []string{"project", "image"} {
		v := vars[name]
		if !v.IncludeAll || v.AllValue != ".*" {
			return fmt.Errorf("%s: variable %s: want includeAll with allValue \".*\"", path, name)
		}
		all[name] = v.AllValue
	}
	one := map[string]string{"project": projectAKSK, "image": "resnet50-finetune"}
	for _, sel := range []map[string]string{all, one} {
		for _, name := range []string{"project", "image"} {
			q := variableQuery(vars[name])
			m := labelValuesRE.FindStringSubmatch(q)
			if m == nil {
				return fmt.Errorf("variable %s: %q is not label_values(...)", name, q)
			}
			match, err := substitute(m[1], sel, 0, e.opts.interval)
			if err != nil {
				return fmt.Errorf("variable %s: %w", name, err)
			}
			values, err := e.prom.labelValues(ctx, m[2], match)
			if err != nil {
				return err
			}
			if want := one[name]; !slices.Contains(values, want) {
				return fmt.Errorf("variable %s (%s with project=%q): values %q lack %q", name, q, sel["project"], values, want)
			}
		}
	}
	e.ok("template variables: datasource is a prometheus data source variable; project and image (label_values) list %q and %q, with All and with one project",
		one["project"], one["image"])

	// Panels.
	var panels []dashPanel
	for _, p := range d.Panels {
		panels = append(panels, p)
		panels = append(panels, p.Panels...)
	}
	end := time.Now()
	start := e.promStarted
	queries := 0
	for _, p := range panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			return fmt.Errorf("panel %d %q has no queries", p.ID, p.Title)
		}
		for _, t := range p.Targets {
			for _, sel := range []map[string]string{all, one} {
				expr, err := substitute(t.Expr, sel, end.Sub(start), e.opts.interval)
				if err != nil {
					return fmt.Errorf("panel %q query %s: %w", p.Title, t.RefID, err)
				}
				if t.Instant {
					v, err := e.prom.query(ctx, expr)
					if err != nil {
						return fmt.Errorf("panel %q: %w", p.Title, err)
					}
					if !vectorHasNumber(v) {
						return fmt.Errorf("panel %q query %s (project=%q image=%q): no data: %s", p.Title, t.RefID, sel["project"], sel["image"], expr)
					}
				} else {
					m, err := e.prom.queryRange(ctx, expr, start, end, e.opts.interval)
					if err != nil {
						return fmt.Errorf("panel %q: %w", p.Title, err)
					}
					if !matrixHasNumber(m) {
						return fmt.Errorf("panel %q query %s (project=%q image=%q): no data: %s", p.Title, t.RefID, sel["project"], sel["image"], expr)
					}
				}
				queries++
			}
		}
	}
	e.ok("all %d dashboard panels return data: %d queries, each with All and with project=%s image=%s",
		countPanels(panels), queries, one["project"], one["image"])
	return nil
}

func countPanels(panels []dashPanel) int {
	n := 0
	for _, p := range panels {
		if p.Type != "row" {
			n++
		}
	}
	return n
}

// variableQuery returns a query variable's query, in either of Grafana's forms.
func variableQuery(v dashVariable) string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var q struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &q) == nil && q.Query != "" {
		return q.Query
	}
	return v.Definition
}

// varRE matches Grafana's $name, ${name} and ${name:format}.
var varRE = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|\$([A-Za-z0-9_]+)`)

// substitute replaces Grafana's variables in expr the way Grafana does for a
// Prometheus data source with a scrape interval equal to the overlay's
// interval: $__rate_interval is four scrape intervals, $__interval one step. An unknown variable is an error.
func substitute(expr string, vars map[string]string, rng, interval time.Duration) (string, error) {
	builtin := map[string]string{
		"__rate_interval": (4 * interval).String(),
		"__interval":      interval.String(),
		"__interval_ms":   fmt.Sprintf("%d", interval.Milliseconds()),
		"__range":         fmt.Sprintf("%ds", int(rng.Seconds())),
		"__range_s":       fmt.Sprintf("%d", int(rng.Seconds())),
		"__range_ms":      fmt.Sprintf("%d", rng.Milliseconds()),
	}
	var unknown []string
	out := varRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := varRE.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		if v, ok := vars[name]; ok {
			return v
		}
		if v, ok := builtin[name]; ok {
			return v
		}
		unknown = append(unknown, m)
		return m
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("unknown variables %s in %s", strings.Join(unknown, ", "), expr)
	}
	return out, nil
}
