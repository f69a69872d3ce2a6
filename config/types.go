// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package config

import (
	commonconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Config is the whole configuration file.
type Config struct {
	Global   GlobalConfig    `yaml:"global"`
	Projects []ProjectConfig `yaml:"projects"`
}

// GlobalConfig holds settings shared by every project.
type GlobalConfig struct {
	// ScrapeTimeout is used when Prometheus sends no X-Prometheus-Scrape-Timeout-Seconds.
	ScrapeTimeout model.Duration `yaml:"scrape_timeout"`
	// Concurrency bounds the API calls in flight per project.
	Concurrency int `yaml:"concurrency"`
	// MinRefreshInterval: scrapes closer together than this share one set of API calls.
	MinRefreshInterval model.Duration `yaml:"min_refresh_interval"`
	// ServeStaleFor: how long the last good values of an image are served after fetching it failed.
	ServeStaleFor model.Duration `yaml:"serve_stale_for"`
}

// ProjectConfig is one cloud project (region).
type ProjectConfig struct {
	Name              string `yaml:"name"`
	Cloud             string `yaml:"cloud"`
	Region            string `yaml:"region"`
	ProjectID         string `yaml:"project_id"`
	ModelArtsEndpoint string `yaml:"modelarts_endpoint"`
	IAMEndpoint       string `yaml:"iam_endpoint"`

	Auth AuthConfig `yaml:"auth"`

	// Images are the image IDs (UUIDs) to export.
	Images []string `yaml:"images"`
	// Discovery, when set, also exports every image ListImage returns for these filters.
	Discovery *DiscoveryConfig `yaml:"discovery"`

	// RateLimit is the client-side limit in API requests per second; 0 means none.
	RateLimit float64 `yaml:"rate_limit"`
	// RateBurst is the burst allowed on top of RateLimit (default: 1).
	RateBurst int `yaml:"rate_burst"`

	// TLSConfig and ProxyURL shape the outbound HTTP client like prometheus/common's HTTPClientConfig.
	TLSConfig commonconfig.TLSConfig `yaml:"tls_config"`
	ProxyURL  commonconfig.URL       `yaml:"proxy_url"`
}

// AuthConfig is exactly one way to authenticate: AK/SK (secret inline or in
// secret_key_file, optionally a security token), an IAM password (inline or in
// password_file), or CredentialsFrom.
//
// After loading: a *_file field holds the file's absolute path, and the secret
// field beside it what the file held at load time. With CredentialsFrom
// "environment", AccessKey, SecretKey and SecurityToken hold the HUAWEICLOUD_SDK_*
// variables; with "ecs_metadata", MetadataEndpoint is set and nothing else.
type AuthConfig struct {
	AccessKey         string              `yaml:"access_key"`
	SecretKey         commonconfig.Secret `yaml:"secret_key"`
	SecretKeyFile     string              `yaml:"secret_key_file"`
	SecurityToken     commonconfig.Secret `yaml:"security_token"`
	SecurityTokenFile string              `yaml:"security_token_file"`

	DomainName   string              `yaml:"domain_name"`
	Username     string              `yaml:"username"`
	Password     commonconfig.Secret `yaml:"password"`
	PasswordFile string              `yaml:"password_file"`

	// CredentialsFrom takes the credentials from outside the file:
	// CredentialsFromECSMetadata or CredentialsFromEnvironment.
	CredentialsFrom string `yaml:"credentials_from"`
	// MetadataEndpoint is the ECS metadata service (ecs_metadata only; default DefaultMetadataEndpoint).
	MetadataEndpoint string `yaml:"metadata_endpoint"`
}

// DiscoveryConfig are ListImage filters; an empty value is not sent.
type DiscoveryConfig struct {
	Type        string `yaml:"type"`
	Namespace   string `yaml:"namespace"`
	Name        string `yaml:"name"`
	ServiceType string `yaml:"service_type"`
	WorkspaceID string `yaml:"workspace_id"`
}
