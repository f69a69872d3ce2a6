// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

// Package config loads, checks and holds the exporter's configuration file.
//
// A Config only comes out of Load or LoadReader fully checked: defaults applied,
// secret files read, names normalised, endpoints filled in. Nothing else in this
// package hands out a Config, so validation cannot be skipped.
package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/common/model"
)

// The clouds a project can live in (ProjectConfig.Cloud).
const (
	// CloudOTC is Open Telekom Cloud, the default.
	CloudOTC = "otc"
	// CloudHuaweiCloud is Huawei Cloud.
	CloudHuaweiCloud = "huaweicloud"
)

// The values of AuthConfig.CredentialsFrom.
const (
	// CredentialsFromECSMetadata: temporary AK/SK and security token of the
	// ECS/CCE agency, from the metadata service.
	CredentialsFromECSMetadata = "ecs_metadata"
	// CredentialsFromEnvironment: HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK and
	// HUAWEICLOUD_SDK_SECURITY_TOKEN, read when the configuration is loaded.
	CredentialsFromEnvironment = "environment"
)

// DefaultMetadataEndpoint is the ECS metadata service used by ecs_metadata.
const DefaultMetadataEndpoint = "http://169.254.169.254"

// DefaultGlobalConfig holds the values used for the fields omitted under "global"
// (or for the whole section when it is omitted).
var DefaultGlobalConfig = GlobalConfig{
	ScrapeTimeout:      model.Duration(30 * time.Second),
	Concurrency:        10,
	MinRefreshInterval: 0,
	ServeStaleFor:      0,
}

// Load reads and checks the configuration file at path. Relative *_file paths in
// it (secret files, tls_config files) are resolved against the file's directory.
//
// Every problem found is reported: the error joins them (errors.Join), one per line,
// each naming the field at fault, e.g. `projects[1] "prod".auth: ...`.
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

// load is LoadReader with the environment to read credentials_from: environment from.
func load(r io.Reader, baseDir string, env lookupEnv) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	cfg, err := decode(data)
	if err != nil {
		// Validating a half-decoded file would only add noise: fix these first.
		return nil, err
	}
	if errs := cfg.finish(baseDir, env); len(errs) > 0 {
		return nil, scrubSecrets(errs, cfg.secrets())
	}
	return cfg, nil
}
