// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
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
	Regex      string          `json:"regex"`
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

// option is one choice of a template variable: the value queries get and the
// text the picker shows.
type option struct{ value, text string }

var (
	// labelValuesRE parses Grafana's label_values(metric{...}, label) and label_values(label).
	labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(?:(.+?)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)
	// queryResultRE parses Grafana's query_result(expr).
	queryResultRE = regexp.MustCompile(`^\s*query_result\((.+)\)\s*$`)
)

// selectedLabels maps the labels the panels filter on to their variables: with
// one value selected, a query that filters on it returns only that value.
var selectedLabels = map[string]string{"job": "job", "instance": "instance", "project": "project", "id": "image"}

// checkDashboard runs every query of deploy/grafana/modelarts-images.json
// against Prometheus, the way Grafana would, and requires data: the template
// variables' queries, and every panel's queries once with "All" selected and
// once with one job, instance, project and image (picked by id) selected.
func (s *stack) checkDashboard(t *testing.T) {
	path := filepath.Join(repo, "deploy", "grafana", "modelarts-images.json")
	raw, err := os.ReadFile(path)
	must(t, err)
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// The image is picked by id: two sample images share its name. There is
	// no cluster label in this stack: cluster stays at All.
	want := map[string]string{"job": jobName, "instance": s.exporterAddr, "project": projectAKSK, "image": modelartstest.SampleIDTrainingActive}
	var all, one map[string]string
	run(t, "template variables list the stack's job, instance, project and image, with All and with one value selected", func(t *testing.T) {
		all, one = s.checkVariables(t, path, d.Templating.List, want)
	})

	run(t, "every panel's queries return data, with All and with one value selected only its series", func(t *testing.T) {
		var panels []dashPanel
		for _, p := range d.Panels {
			panels = append(panels, p)
			panels = append(panels, p.Panels...)
		}
		end := time.Now()
		queries := 0
		for _, p := range panels {
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Fatalf("panel %d %q has no queries, want at least one", p.ID, p.Title)
			}
			for _, q := range p.Targets {
				if err := s.checkPanelQuery(q, all, s.promStarted, end, nil); err != nil {
					t.Fatalf("panel %q query %s (All selected): %v", p.Title, q.RefID, err)
				}
				if err := s.checkPanelQuery(q, one, s.promStarted, end, want); err != nil {
					t.Fatalf("panel %q query %s (one value selected): %v", p.Title, q.RefID, err)
				}
				queries += 2
			}
		}
		t.Logf("all %d dashboard panels return data: %d queries, each with All and with job=%s instance=%s project=%s image=%s",
			countPanels(panels), queries, jobName, s.exporterAddr, projectAKSK, want["image"])
	})
}

// checkVariables evaluates the query variables the way Grafana does, after
// the data source variable, each with the ones before it, and returns the
// selection with All and with the wanted values.
func (s *stack) checkVariables(t *testing.T, path string, vars []dashVariable, want map[string]string) (all, one map[string]string) {
	if len(vars) == 0 || vars[0].Name != "datasource" || vars[0].Type != "datasource" || string(vars[0].Query) != `"prometheus"` {
		t.Fatalf("%s: the first template variable must be datasource, a prometheus data source variable", path)
	}
	var names []string
	for _, v := range vars[1:] {
		names = append(names, v.Name)
	}
	if w := []string{"cluster", "job", "instance", "project", "image"}; !slices.Equal(names, w) {
		t.Fatalf("%s: query variables %q, want %q", path, names, w)
	}
	all, _, err := s.selectVariables(vars[1:], want, true)
	if err != nil {
		t.Fatalf("with All selected: %v", err)
	}
	one, opts, err := s.selectVariables(vars[1:], want, false)
	if err != nil {
		t.Fatalf("with one value selected: %v", err)
	}
	var sameName int
	for _, o := range opts["image"] {
		if o.value == want["image"] && o.text != sampleImageName {
			t.Fatalf("variable image: %s shown as %q, want its name %q", o.value, o.text, sampleImageName)
		}
		if o.text == sampleImageName {
			sameName++
		}
	}
	t.Logf("job, instance, project and image list %s, %s, %s and %s (shown as %q, one of %d images of that name)",
		jobName, s.exporterAddr, projectAKSK, want["image"], sampleImageName, sameName)
	return all, one
}

// sampleImageName is the name of the sample image the dashboard check
// selects by its id.
const sampleImageName = "resnet50-finetune"

// selectVariables evaluates the query variables in order, each with the
// selection of the ones before, and selects "All" or the wanted value of each
// (the others stay at "All"). A wanted value must be among the options either
// way. It returns the selection and each variable's options.
func (s *stack) selectVariables(vars []dashVariable, want map[string]string, all bool) (map[string]string, map[string][]option, error) {
	sel := map[string]string{}
	options := map[string][]option{}
	for _, v := range vars {
		opts, err := s.variableOptions(v, sel)
		if err != nil {
			return nil, nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		options[v.Name] = opts
		w, wanted := want[v.Name]
		if wanted && !slices.ContainsFunc(opts, func(o option) bool { return o.value == w }) {
			return nil, nil, fmt.Errorf("variable %s: options %v lack %q", v.Name, opts, w)
		}
		switch {
		case wanted && !all:
			sel[v.Name] = grafanaRegexEscape(w)
		case !v.IncludeAll:
			return nil, nil, fmt.Errorf("variable %s: no All option", v.Name)
		case v.AllValue != "":
			sel[v.Name] = v.AllValue
		default:
			// Grafana's All without a custom value: the options found.
			if len(opts) == 0 {
				return nil, nil, fmt.Errorf("variable %s: no values for All", v.Name)
			}
			var values []string
			for _, o := range opts {
				values = append(values, grafanaRegexEscape(o.value))
			}
			sel[v.Name] = strings.Join(values, "|")
			if len(values) > 1 {
				sel[v.Name] = "(" + sel[v.Name] + ")"
			}
		}
	}
	return sel, options, nil
}

// variableOptions runs a query variable's query with the selection so far and
// applies its regex, as Grafana does.
func (s *stack) variableOptions(v dashVariable, sel map[string]string) ([]option, error) {
	q, err := substitute(variableQuery(v), sel, 0)
	if err != nil {
		return nil, err
	}
	var lines []string
	if m := labelValuesRE.FindStringSubmatch(q); m != nil {
		if lines, err = s.prom.labelValues(s.ctx, m[2], m[1]); err != nil {
			return nil, err
		}
	} else if m := queryResultRE.FindStringSubmatch(q); m != nil {
		vec, err := s.prom.query(s.ctx, m[1])
		if err != nil {
			return nil, err
		}
		for _, s := range vec {
			lines = append(lines, queryResultLine(s))
		}
	} else {
		return nil, fmt.Errorf("%q is neither label_values(...) nor query_result(...)", q)
	}
	return applyVariableRegex(v.Regex, lines)
}

// queryResultLine is how Grafana's query_result shows a sample to the
// variable's regex: name{label="value",...} value timestamp_ms, labels in
// Prometheus' (sorted) order.
func queryResultLine(s *model.Sample) string {
	var labels []string
	for name, value := range s.Metric {
		if name != model.MetricNameLabel {
			labels = append(labels, fmt.Sprintf(`%s="%s"`, name, value))
		}
	}
	sort.Strings(labels)
	return fmt.Sprintf("%s{%s} %s %d", s.Metric[model.MetricNameLabel], strings.Join(labels, ","), s.Value, int64(s.Timestamp))
}

// applyVariableRegex filters and maps a variable's raw values with its regex
// the way Grafana does: /re/ searches, named groups value and text pick the
// value and the text, else the first group is both; duplicates of a value go.
func applyVariableRegex(regex string, lines []string) ([]option, error) {
	var re *regexp.Regexp
	if regex != "" {
		body, _ := strings.CutPrefix(regex, "/")
		body, ok := strings.CutSuffix(body, "/")
		if !ok {
			return nil, fmt.Errorf("regex %s: only the /.../ form without flags is supported here", regex)
		}
		var err error
		if re, err = regexp.Compile(body); err != nil {
			return nil, fmt.Errorf("regex %s: %w", regex, err)
		}
	}
	var opts []option
	for _, l := range lines {
		o := option{l, l}
		if re != nil {
			m := re.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			v, t := re.SubexpIndex("value"), re.SubexpIndex("text")
			switch {
			case v >= 0 || t >= 0:
				o = option{group(m, v, t), group(m, t, v)}
			case len(m) > 1:
				o = option{m[1], m[1]}
			}
		}
		if !slices.ContainsFunc(opts, func(p option) bool { return p.value == o.value }) {
			opts = append(opts, o)
		}
	}
	return opts, nil
}

// group returns submatch i, or j where there is no group i.
func group(m []string, i, j int) string {
	if i < 0 {
		i = j
	}
	return m[i]
}

// grafanaRegexEscape escapes a selected value as Grafana's Prometheus data
// source does for a multi-value variable inside =~"...".
func grafanaRegexEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\\\`)
		case strings.ContainsRune(`$^*{}[]'+?.()|`, r):
			b.WriteString(`\\`)
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// checkPanelQuery runs one panel query with a selection and requires data.
// With values selected (want), every series that carries a label the query
// filters on must have the selected value.
func (s *stack) checkPanelQuery(q dashQuery, sel map[string]string, start, end time.Time, want map[string]string) error {
	expr, err := substitute(q.Expr, sel, end.Sub(start))
	if err != nil {
		return err
	}
	var series []model.Metric
	if q.Instant {
		v, err := s.prom.query(s.ctx, expr)
		if err != nil {
			return err
		}
		if !vectorHasNumber(v) {
			return fmt.Errorf("no data: %s", expr)
		}
		for _, s := range v {
			series = append(series, s.Metric)
		}
	} else {
		m, err := s.prom.queryRange(s.ctx, expr, start, end, interval)
		if err != nil {
			return err
		}
		if !matrixHasNumber(m) {
			return fmt.Errorf("no data: %s", expr)
		}
		for _, s := range m {
			series = append(series, s.Metric)
		}
	}
	for label, variable := range selectedLabels {
		if want == nil || !strings.Contains(q.Expr, fmt.Sprintf(`%s=~"$%s"`, label, variable)) {
			continue
		}
		for _, m := range series {
			if v, ok := m[model.LabelName(label)]; ok && string(v) != want[variable] {
				return fmt.Errorf("%s=%q selected, but a series has %s: %s", variable, want[variable], m, expr)
			}
		}
	}
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
func substitute(expr string, vars map[string]string, rng time.Duration) (string, error) {
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
