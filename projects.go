// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	commonconfig "github.com/prometheus/common/config"

	"github.com/modelarts-exporter/modelarts_exporter/collector"
	"github.com/modelarts-exporter/modelarts_exporter/config"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// newProjects builds one API client per project; it fails only on what building one finds out (tls_config).
func newProjects(cfg *config.Config, metrics apiMetrics, userAgent string, shared *modelarts.Shared) ([]collector.Project, error) {
	projects := make([]collector.Project, 0, len(cfg.Projects))
	for _, pc := range cfg.Projects {
		// Without a proxy_url, HTTPS_PROXY, HTTP_PROXY and NO_PROXY apply; a signed request must not follow a redirect.
		hc := commonconfig.HTTPClientConfig{TLSConfig: pc.TLSConfig, EnableHTTP2: true,
			ProxyConfig: commonconfig.ProxyConfig{ProxyURL: pc.ProxyURL, ProxyFromEnvironment: pc.ProxyURL.URL == nil}}
		httpClient, err := commonconfig.NewClientFromConfig(hc, "modelarts_"+pc.Name, commonconfig.WithIdleConnTimeout(idleConnTimeout))
		if err != nil {
			return nil, fmt.Errorf("project %q: tls_config or proxy_url: %w", pc.Name, err)
		}
		client := modelarts.NewClient(modelarts.Config{
			Endpoint:    pc.ModelArtsEndpoint,
			IAMEndpoint: pc.IAMEndpoint,
			Region:      pc.Region,
			ProjectID:   pc.ProjectID,
			Credentials: credentials(pc.Auth),
			HTTPClient:  httpClient,
			Observer:    apiMetrics{metrics.requests.MustCurryWith(prometheus.Labels{"project": pc.Name}), metrics.duration},
			UserAgent:   userAgent,
			RateLimit:   pc.RateLimit,
			RateBurst:   pc.RateBurst,
			Shared:      shared,
		})
		var discovery *modelarts.ListOptions
		if d := pc.Discovery; d != nil {
			discovery = &modelarts.ListOptions{Type: d.Type, Namespace: d.Namespace, Name: d.Name, ServiceType: d.ServiceType, WorkspaceID: d.WorkspaceID}
		}
		projects = append(projects, collector.Project{
			Name:               pc.Name,
			Client:             client,
			ImageIDs:           pc.Images,
			Discovery:          discovery,
			Concurrency:        cfg.Global.Concurrency,
			MinRefreshInterval: time.Duration(cfg.Global.MinRefreshInterval),
			ServeStaleFor:      time.Duration(cfg.Global.ServeStaleFor),
		})
	}
	return projects, nil
}

// credentials are those of a project; where a secret has a file, the client reads the file again.
func credentials(a config.AuthConfig) modelarts.Credentials {
	return modelarts.Credentials{
		AccessKey:         a.AccessKey,
		SecretKey:         string(a.SecretKey),
		SecretKeyFile:     a.SecretKeyFile,
		SecurityToken:     string(a.SecurityToken),
		SecurityTokenFile: a.SecurityTokenFile,
		MetadataEndpoint:  a.MetadataEndpoint,
		DomainName:        a.DomainName,
		Username:          a.Username,
		Password:          string(a.Password),
		PasswordFile:      a.PasswordFile,
	}
}

// idleConnTimeout is net/http's default (prometheus/common's is 5 minutes), so pools shrink soon after a burst.
const idleConnTimeout = 90 * time.Second

// apiMetrics counts the exporter's API traffic on its own registry; curried with a project,
// it is what that project's client reports its requests to.
type apiMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newAPIMetrics(reg prometheus.Registerer) apiMetrics {
	own := promauto.With(reg)
	return apiMetrics{
		requests: own.NewCounterVec(prometheus.CounterOpts{
			Name: "modelarts_api_requests_total",
			Help: "HTTP requests the exporter sent to the ModelArts and IAM APIs, by project, operation and HTTP status code (\"error\" when no response arrived).",
		}, []string{"project", "operation", "code"}),
		duration: own.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "modelarts_api_request_duration_seconds",
			Help:    "Latency of the exporter's HTTP requests to the ModelArts and IAM APIs, by operation.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"operation"}),
	}
}

func (m apiMetrics) ObserveRequest(operation string, statusCode int, d time.Duration) {
	code := "error"
	if statusCode > 0 {
		code = strconv.Itoa(statusCode)
	}
	m.requests.WithLabelValues(operation, code).Inc()
	m.duration.WithLabelValues(operation).Observe(d.Seconds())
}
