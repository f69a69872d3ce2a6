// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

// Package config loads and checks the exporter's configuration file. A Config
// only comes out of Load or LoadReader, fully checked and completed, so
// validation cannot be skipped.
package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	commonconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
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

// DefaultGlobalConfig holds the values of the fields omitted under "global".
var DefaultGlobalConfig = GlobalConfig{ScrapeTimeout: model.Duration(30 * time.Second), Concurrency: 10}

// ProjectConfig is one cloud project (region). Cloud is "otc" (Open Telekom
// Cloud, the default) or "huaweicloud"; the endpoints are those of the region
// unless set.
type ProjectConfig struct {
	Name              string     `yaml:"name"`
	Cloud             string     `yaml:"cloud"`
	Region            string     `yaml:"region"`
	ProjectID         string     `yaml:"project_id,omitempty"`
	ModelArtsEndpoint string     `yaml:"modelarts_endpoint"`
	IAMEndpoint       string     `yaml:"iam_endpoint"`
	Auth              AuthConfig `yaml:"auth"`

	// Images are the image IDs (UUIDs) to export.
	Images []string `yaml:"images,omitempty"`
	// Discovery, when set, also exports every image ListImage returns for these filters.
	Discovery *DiscoveryConfig `yaml:"discovery,omitempty"`

	// RateLimit is the client-side limit in API requests per second; 0 means none.
	RateLimit float64 `yaml:"rate_limit,omitempty"`
	// RateBurst is the burst allowed on top of RateLimit (default: 1).
	RateBurst int `yaml:"rate_burst,omitempty"`

	// TLSConfig and ProxyURL shape the outbound HTTP client like prometheus/common's HTTPClientConfig.
	TLSConfig commonconfig.TLSConfig `yaml:"tls_config,omitempty"`
	ProxyURL  commonconfig.URL       `yaml:"proxy_url,omitempty"`
}

// AuthConfig is exactly one way to authenticate: AK/SK (secret inline or in
// secret_key_file, optionally a security token), an IAM password (inline or in
// password_file), or CredentialsFrom: "ecs_metadata" (the temporary keys of
// the ECS or CCE node's agency, from MetadataEndpoint) or "environment".
//
// After loading, a *_file field holds the file's absolute path and the secret
// beside it what the file held. With "environment", AccessKey, SecretKey and
// SecurityToken hold the HUAWEICLOUD_SDK_* variables.
type AuthConfig struct {
	AccessKey         string              `yaml:"access_key,omitempty"`
	SecretKey         commonconfig.Secret `yaml:"secret_key,omitempty"`
	SecretKeyFile     string              `yaml:"secret_key_file,omitempty"`
	SecurityToken     commonconfig.Secret `yaml:"security_token,omitempty"`
	SecurityTokenFile string              `yaml:"security_token_file,omitempty"`

	DomainName   string              `yaml:"domain_name,omitempty"`
	Username     string              `yaml:"username,omitempty"`
	Password     commonconfig.Secret `yaml:"password,omitempty"`
	PasswordFile string              `yaml:"password_file,omitempty"`

	CredentialsFrom  string `yaml:"credentials_from,omitempty"`
	MetadataEndpoint string `yaml:"metadata_endpoint,omitempty"`
}

// DiscoveryConfig are ListImage filters; an empty value is not sent.
type DiscoveryConfig struct {
	Type        string `yaml:"type,omitempty"`
	Namespace   string `yaml:"namespace,omitempty"`
	Name        string `yaml:"name,omitempty"`
	ServiceType string `yaml:"service_type,omitempty"`
	WorkspaceID string `yaml:"workspace_id,omitempty"`
}

// Format prints c as YAML with every verb. A commonconfig.Secret marshals to
// YAML as "<secret>" (a proxy password as "xxxxx"), but to fmt it is a plain
// string: without Format, %v would show the secrets.
func (c Config) Format(f fmt.State, _ rune) { writeYAML(f, c) }

// Format prints p as YAML, as Config.Format.
func (p ProjectConfig) Format(f fmt.State, _ rune) { writeYAML(f, p) }

// Format prints a as YAML, as Config.Format.
func (a AuthConfig) Format(f fmt.State, _ rune) { writeYAML(f, a) }

// Summary is what --config.check prints: the checked configuration, with
// defaults and endpoints filled in and the secret files' absolute paths.
func (c *Config) Summary() string { return fmt.Sprint(c) }

func writeYAML(w io.Writer, v any) {
	b, err := yaml.Marshal(v)
	if err != nil {
		b = fmt.Appendf(nil, "cannot print the configuration: %v", err)
	}
	_, _ = w.Write(b) // Format cannot report errors
}

// Load reads and checks the configuration file at path. Relative *_file paths
// in it are resolved against the file's directory. The error joins every
// problem found (errors.Join), each naming its field.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	defer func() { _ = f.Close() }() // read only: nothing to lose
	return LoadReader(f, filepath.Dir(path))
}

// LoadReader reads and checks a configuration from r. Relative *_file paths are
// resolved against baseDir ("" means the current directory). See Load.
func LoadReader(r io.Reader, baseDir string) (*Config, error) {
	return load(r, baseDir, os.LookupEnv)
}

// load is LoadReader with the environment that credentials_from: environment reads.
func load(r io.Reader, baseDir string, env lookupEnv) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	cfg, secrets, errs := decode(data)
	if len(errs) == 0 { // checking a half-decoded file would only add noise
		errs = cfg.finish(baseDir, env)
	}
	if len(errs) > 0 {
		return nil, scrubSecrets(errs, append(secrets, cfg.secrets()...))
	}
	return cfg, nil
}
