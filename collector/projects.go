// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"fmt"
	"time"

	commonconfig "github.com/prometheus/common/config"

	"github.com/modelarts-exporter/modelarts_exporter/config"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// NewProjects builds one API client per configured project. cfg must have
// passed config validation; shared is the process's, kept across reloads.
func NewProjects(cfg *config.Config, metrics *APIMetrics, userAgent string, shared *modelarts.Shared) ([]Project, error) {
	projects := make([]Project, 0, len(cfg.Projects))
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
			Credentials: modelarts.Credentials{
				AccessKey:         pc.Auth.AccessKey,
				SecretKey:         unlessFile(pc.Auth.SecretKey, pc.Auth.SecretKeyFile),
				SecretKeyFile:     pc.Auth.SecretKeyFile,
				SecurityToken:     unlessFile(pc.Auth.SecurityToken, pc.Auth.SecurityTokenFile),
				SecurityTokenFile: pc.Auth.SecurityTokenFile,
				MetadataEndpoint:  pc.Auth.MetadataEndpoint,
				DomainName:        pc.Auth.DomainName,
				Username:          pc.Auth.Username,
				Password:          unlessFile(pc.Auth.Password, pc.Auth.PasswordFile),
				PasswordFile:      pc.Auth.PasswordFile,
			},
			HTTPClient: httpClient,
			Observer:   metrics.ForProject(pc.Name),
			UserAgent:  userAgent,
			RateLimit:  pc.RateLimit,
			RateBurst:  pc.RateBurst,
			Shared:     shared,
		})
		if err != nil {
			return nil, fmt.Errorf("project %q: %w", pc.Name, err)
		}
		projects = append(projects, Project{
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

// unlessFile is a secret read from the configuration, or "" when it came
// from file: the client reads the file itself, again whenever it changes.
func unlessFile(secret commonconfig.Secret, file string) string {
	if file != "" {
		return ""
	}
	return string(secret)
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
