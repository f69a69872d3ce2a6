// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
)

// promAPI is the part of Prometheus' HTTP API the checks use.
type promAPI struct{ base string }

type promResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func (p promAPI) get(ctx context.Context, path string, params url.Values, out any) error {
	var r promResponse
	u := p.base + path + "?" + params.Encode()
	if err := doJSON(ctx, http.MethodGet, u, nil, http.StatusOK, &r); err != nil {
		return err
	}
	if r.Status != "success" {
		return fmt.Errorf("GET %s: %s: %s", path, r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, out)
}

// query runs an instant query that must return a vector.
func (p promAPI) query(ctx context.Context, expr string) (model.Vector, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: result type %s, want vector", expr, data.ResultType)
	}
	var v model.Vector
	if err := json.Unmarshal(data.Result, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// queryRange runs a range query.
func (p promAPI) queryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) (model.Matrix, error) {
	var data struct {
		ResultType string       `json:"resultType"`
		Result     model.Matrix `json:"result"`
	}
	params := url.Values{
		"query": {expr},
		"start": {strconv.FormatFloat(float64(start.UnixMilli())/1000, 'f', 3, 64)},
		"end":   {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	if err := p.get(ctx, "/api/v1/query_range", params, &data); err != nil {
		return nil, fmt.Errorf("query_range %s: %w", expr, err)
	}
	return data.Result, nil
}

// labelValues is what Grafana's label_values(match, label) asks for.
func (p promAPI) labelValues(ctx context.Context, label, match string) ([]string, error) {
	var values []string
	params := url.Values{}
	if match != "" {
		params.Set("match[]", match)
	}
	if err := p.get(ctx, "/api/v1/label/"+label+"/values", params, &values); err != nil {
		return nil, fmt.Errorf("label values of %s for %s: %w", label, match, err)
	}
	return values, nil
}

// promAlert is an entry of /api/v1/alerts.
type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	Value       string            `json:"value"`
}

func (p promAPI) alerts(ctx context.Context) ([]promAlert, error) {
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	err := p.get(ctx, "/api/v1/alerts", nil, &data)
	return data.Alerts, err
}

// amAlert is an entry of Alertmanager's /api/v2/alerts.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
	Receivers []struct {
		Name string `json:"name"`
	} `json:"receivers"`
}

func amAlerts(ctx context.Context, base string, filters ...string) ([]amAlert, error) {
	params := url.Values{"filter": filters}
	var out []amAlert
	err := doJSON(ctx, http.MethodGet, base+"/api/v2/alerts?"+params.Encode(), nil, http.StatusOK, &out)
	return out, err
}

// vectorHasNumber and matrixHasNumber report whether a result holds a value
// that is a number.
func vectorHasNumber(v model.Vector) bool {
	for _, s := range v {
		if !math.IsNaN(float64(s.Value)) {
			return true
		}
	}
	return false
}

func matrixHasNumber(m model.Matrix) bool {
	for _, ss := range m {
		for _, p := range ss.Values {
			if !math.IsNaN(float64(p.Value)) {
				return true
			}
		}
	}
	return false
}

// errStop wraps an error that ends a poll at once.
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }

func stopPolling(err error) error { return errStop{err} }

// poll calls f every 200ms until it returns nil, returns an error made with
// stopPolling, the timeout passes or ctx ends. The error names what was
// awaited and f's last complaint.
func poll(parent context.Context, what string, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		last := f()
		if last == nil {
			return nil
		}
		var stop errStop
		if errors.As(last, &stop) {
			return fmt.Errorf("%s: %w", what, stop.err)
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return fmt.Errorf("%s: interrupted (%v); last: %w", what, context.Cause(parent), last)
			}
			return fmt.Errorf("%s: not within %s: %w", what, timeout, last)
		case <-tick.C:
		}
	}
}
