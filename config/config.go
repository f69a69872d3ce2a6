// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

// Package config loads and checks the exporter's configuration file; a Config
// comes only out of Load or LoadReader, so validation cannot be skipped.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	ScrapeTimeout      model.Duration `yaml:"scrape_timeout"`       // used when Prometheus sends no X-Prometheus-Scrape-Timeout-Seconds
	Concurrency        int            `yaml:"concurrency"`          // bounds the API calls in flight per project
	MinRefreshInterval model.Duration `yaml:"min_refresh_interval"` // scrapes closer together share one set of API calls
	ServeStaleFor      model.Duration `yaml:"serve_stale_for"`      // how long an image's last good values are served after fetching it failed
}

// DefaultGlobalConfig holds the values of the fields omitted under "global".
var DefaultGlobalConfig = GlobalConfig{ScrapeTimeout: model.Duration(30 * time.Second), Concurrency: 10}

// ProjectConfig is one cloud project (region) of Cloud "otc" (Open Telekom Cloud,
// the default) or "huaweicloud"; the endpoints are the region's unless set.
type ProjectConfig struct {
	Name              string     `yaml:"name"`
	Cloud             string     `yaml:"cloud"`
	Region            string     `yaml:"region"`
	ProjectID         string     `yaml:"project_id,omitempty"`
	ModelArtsEndpoint string     `yaml:"modelarts_endpoint"`
	IAMEndpoint       string     `yaml:"iam_endpoint"`
	Auth              AuthConfig `yaml:"auth"`

	Images    []string         `yaml:"images,omitempty"`     // the image IDs (UUIDs) to export
	Discovery *DiscoveryConfig `yaml:"discovery,omitempty"`  // when set, every image ListImage returns for these filters is exported too
	RateLimit float64          `yaml:"rate_limit,omitempty"` // API requests per second; 0 means no limit
	RateBurst int              `yaml:"rate_burst,omitempty"` // the burst allowed on top of RateLimit (default: 1)

	// TLSConfig and ProxyURL shape the outbound HTTP client like prometheus/common's HTTPClientConfig.
	TLSConfig commonconfig.TLSConfig `yaml:"tls_config,omitempty"`
	ProxyURL  commonconfig.URL       `yaml:"proxy_url,omitempty"`
}

// AuthConfig is one way to authenticate: AK/SK (optionally with a security
// token), an IAM password, or CredentialsFrom "ecs_metadata" or "environment".
// After loading, a *_file field holds the file's absolute path and the secret
// beside it the file's content; "environment" fills in the access key fields.
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

// Format prints c as YAML with every verb, where secrets print as "<secret>"
// (to fmt, a commonconfig.Secret is a plain string).
func (c Config) Format(f fmt.State, _ rune) { writeYAML(f, c) }

// Format prints p as YAML, as Config.Format.
func (p ProjectConfig) Format(f fmt.State, _ rune) { writeYAML(f, p) }

// Format prints a as YAML, as Config.Format.
func (a AuthConfig) Format(f fmt.State, _ rune) { writeYAML(f, a) }

// Summary is what --config.check prints: the completed configuration.
func (c *Config) Summary() string { return fmt.Sprint(c) }

func writeYAML(w io.Writer, v any) {
	b, err := yaml.Marshal(v)
	if err != nil {
		b = fmt.Appendf(nil, "cannot print the configuration: %v", err)
	}
	_, _ = w.Write(b) // Format cannot report errors
}

// Load reads and checks the configuration file at path, resolving relative
// *_file paths against its directory. The error joins every problem found.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	defer func() { _ = f.Close() }() // read only: nothing to lose
	return LoadReader(f, filepath.Dir(path))
}

// LoadReader is Load for a configuration read from r, with relative paths from baseDir.
func LoadReader(r io.Reader, baseDir string) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	cfg, secrets, errs := decode(data)
	if len(errs) == 0 { // checking a half-decoded file would only add noise
		errs = cfg.finish(baseDir)
	}
	if len(errs) > 0 {
		for _, p := range cfg.Projects { // and the secrets read from files and the environment
			secrets = append(secrets, string(p.Auth.SecretKey), string(p.Auth.SecurityToken), string(p.Auth.Password))
		}
		return nil, scrubSecrets(errs, secrets)
	}
	return cfg, nil
}

const redacted = "<secret>"

// scrubSecrets joins errs with every secret hidden in their messages: as it is
// (6 bytes or longer), in Go quotes, and in yaml.v3's backquotes, which cut a
// value longer than 10 bytes to its first 7 ("`Secretv...`").
func scrubSecrets(errs []error, secrets []string) error {
	secrets = slices.SortedFunc(slices.Values(secrets), func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	var pairs []string
	for _, s := range secrets {
		if s != "" {
			pairs = append(pairs, "`"+s+"`", "`"+redacted+"`", strconv.Quote(s), strconv.Quote(redacted))
		}
		if len(s) > 10 {
			pairs = append(pairs, "`"+s[:7]+"...`", "`"+redacted+"`")
		}
		if len(s) >= 6 {
			pairs = append(pairs, s, redacted)
		}
	}
	r := strings.NewReplacer(pairs...)
	for i, err := range errs {
		if msg := r.Replace(err.Error()); msg != err.Error() {
			errs[i] = errors.New(msg)
		}
	}
	return errors.Join(errs...)
}

// urlPassword returns the password in a URL as written, "" if none; the URL need not parse.
func urlPassword(s string) string {
	_, rest, _ := strings.Cut(s, "://")
	_, pw, _ := strings.Cut(rest[:max(strings.LastIndex(rest, "@"), 0)], ":") // no "@", no password
	return pw
}
