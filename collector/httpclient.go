// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"net/http"
	"time"

	commonconfig "github.com/prometheus/common/config"

	"github.com/modelarts-exporter/modelarts_exporter/config"
)

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
	if err := hc.Validate(); err != nil {
		return nil, err
	}
	return commonconfig.NewClientFromConfig(hc, "modelarts_"+pc.Name, commonconfig.WithIdleConnTimeout(idleConnTimeout))
}
