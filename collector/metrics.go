// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// APIMetrics counts the exporter's own API traffic. Unlike the image metrics,
// these live across scrapes on the exporter's registry.
type APIMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewAPIMetrics creates the API traffic metrics and registers them with reg.
func NewAPIMetrics(reg prometheus.Registerer) *APIMetrics {
	m := &APIMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "modelarts",
			Subsystem: "api",
			Name:      "requests_total",
			Help:      "HTTP requests the exporter sent to the ModelArts and IAM APIs, by project, operation and HTTP status code (\"error\" when no response arrived).",
		}, []string{"project", "operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "modelarts",
			Subsystem: "api",
			Name:      "request_duration_seconds",
			Help:      "Latency of the exporter's HTTP requests to the ModelArts and IAM APIs, by operation.",
			Buckets:   []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"operation"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// ForProject returns the observer a project's client reports its requests to.
func (m *APIMetrics) ForProject(project string) modelarts.Observer {
	return projectObserver{metrics: m, project: project}
}

type projectObserver struct {
	metrics *APIMetrics
	project string
}

func (o projectObserver) ObserveRequest(operation string, statusCode int, d time.Duration) {
	code := "error"
	if statusCode > 0 {
		code = strconv.Itoa(statusCode)
	}
	o.metrics.requests.WithLabelValues(o.project, operation, code).Inc()
	o.metrics.duration.WithLabelValues(operation).Observe(d.Seconds())
}
