// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commonconfig "github.com/prometheus/common/config"

	"github.com/modelarts-exporter/modelarts_exporter/collector"
	"github.com/modelarts-exporter/modelarts_exporter/config"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// newProjects builds one API client per configured project. cfg has passed
// config validation; shared is the process's, kept across reloads. What can
// still fail is what only building the clients finds out, such as a
// tls_config file that does not hold a certificate.
func newProjects(cfg *config.Config, metrics *apiMetrics, userAgent string, shared *modelarts.Shared) ([]collector.Project, error) {
	projects := make([]collector.Project, 0, len(cfg.Projects))
	for _, pc := range cfg.Projects {
		httpClient, err := newHTTPClient(pc)
		if err != nil {
			return nil, fmt.Errorf("project %q: tls_config or proxy_url: %w", pc.Name, err)
		}
		client, err := modelarts.NewClient(modelarts.Config{
			Endpoint:    pc.ModelArtsEndpoint,
			IAMEndpoint: pc.IAMEndpoint,
			Region:      pc.Region,
			ProjectID:   pc.ProjectID,
			Credentials: credentials(pc.Auth),
			HTTPClient:  httpClient,
			Observer:    metrics.forProject(pc.Name),
			UserAgent:   userAgent,
			RateLimit:   pc.RateLimit,
			RateBurst:   pc.RateBurst,
			Shared:      shared,
		})
		if err != nil {
			return nil, fmt.Errorf("project %q: %w", pc.Name, err)
		}
		projects = append(projects, collector.Project{
			Name:               pc.Name,
			Client:             client,
			ImageIDs:           pc.Images,
			Discovery:          discoveryFilters(pc.Discovery),
			Concurrency:        cfg.Global.Concurrency,
			MinRefreshInterval: time.Duration(cfg.Global.MinRefreshInterval),
			ServeStaleFor:      time.Duration(cfg.Global.ServeStaleFor),
		})
	}
	return projects, nil
}

// credentials are the client's credentials of a project. A secret that came
// from a file is left out: the client reads the file itself, again whenever
// it changes.
func credentials(a config.AuthConfig) modelarts.Credentials {
	unlessFile := func(secret commonconfig.Secret, file string) string {
		if file != "" {
			return ""
		}
		return string(secret)
	}
	return modelarts.Credentials{
		AccessKey:         a.AccessKey,
		SecretKey:         unlessFile(a.SecretKey, a.SecretKeyFile),
		SecretKeyFile:     a.SecretKeyFile,
		SecurityToken:     unlessFile(a.SecurityToken, a.SecurityTokenFile),
		SecurityTokenFile: a.SecurityTokenFile,
		MetadataEndpoint:  a.MetadataEndpoint,
		DomainName:        a.DomainName,
		Username:          a.Username,
		Password:          unlessFile(a.Password, a.PasswordFile),
		PasswordFile:      a.PasswordFile,
	}
}

// discoveryFilters turns the discovery section into ListImage filters; nil
// when discovery is off.
func discoveryFilters(d *config.DiscoveryConfig) *modelarts.ListOptions {
	if d == nil {
		return nil
	}
	return &modelarts.ListOptions{
		Type:        d.Type,
		Namespace:   d.Namespace,
		Name:        d.Name,
		ServiceType: d.ServiceType,
		WorkspaceID: d.WorkspaceID,
	}
}

// idleConnTimeout closes a connection to the API idle this long (net/http's
// default; prometheus/common's is 5 minutes): after a burst of scrapes,
// the pools shrink back within a minute and a half.
const idleConnTimeout = 90 * time.Second

// newHTTPClient builds the outbound HTTP client of one project with
// prometheus/common, the ecosystem's shape for TLS and proxy settings.
// TLS verification stays on unless the configuration turns it off; without a
// proxy_url, HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment apply.
func newHTTPClient(pc config.ProjectConfig) (*http.Client, error) {
	hc := commonconfig.HTTPClientConfig{
		TLSConfig:       pc.TLSConfig,
		FollowRedirects: false, // a signed request must not be replayed elsewhere
		EnableHTTP2:     true,
	}
	if pc.ProxyURL.URL != nil {
		hc.ProxyURL = pc.ProxyURL
	} else {
		hc.ProxyFromEnvironment = true
	}
	return commonconfig.NewClientFromConfig(hc, "modelarts_"+pc.Name, commonconfig.WithIdleConnTimeout(idleConnTimeout))
}

// apiMetrics counts the exporter's own API traffic. Unlike the image metrics,
// these live across scrapes on the exporter's registry.
type apiMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newAPIMetrics creates the API traffic metrics and registers them with reg.
func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	m := &apiMetrics{
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

// forProject returns the observer a project's client reports its requests to.
func (m *apiMetrics) forProject(project string) modelarts.Observer {
	return projectObserver{metrics: m, project: project}
}

type projectObserver struct {
	metrics *apiMetrics
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
