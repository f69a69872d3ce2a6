// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	commonconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// Fake values used by the fixtures in testdata/.
const (
	fakeProjectID = "0123456789abcdef0123456789abcdef"
	fakeAccessKey = "FAKEACCESSKEY0000000"
	fakeImage1    = "11111111-2222-4333-8444-555555555555"
	fakeImage2    = "66666666-7777-4888-9999-aaaaaaaaaaaa"
)

// fakeSecrets are every secret value found in the fixtures, inline or in a file.
var fakeSecrets = []string{
	"FAKE-inline-secret-key-not-real",
	"FAKE-secret-key-from-file",
	"FAKE-security-token-from-file",
	"FAKE-password-from-file",
	"FAKE-inline-password-not-real",
	"FAKE-tls-client-key-not-real",
	"FAKE-proxy-password",
}

func mustURL(t *testing.T, s string) commonconfig.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return commonconfig.URL{URL: u}
}

// testdataPath is the absolute path of a file in testdata/, as Load keeps the *_file paths.
func testdataPath(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadGood(t *testing.T) {
	otcEndpoints := func(p ProjectConfig, region string) ProjectConfig {
		p.ModelArtsEndpoint = "https://modelarts." + region + ".otc.t-systems.com"
		p.IAMEndpoint = "https://iam." + region + ".otc.t-systems.com"
		return p
	}
	tests := []struct {
		file string
		want *Config
	}{
		{
			file: "good_ak_sk_minimal.yml",
			want: &Config{
				Global: DefaultGlobalConfig,
				Projects: []ProjectConfig{otcEndpoints(ProjectConfig{
					Name:      "prod",
					Cloud:     "otc",
					Region:    "eu-de",
					ProjectID: fakeProjectID,
					Auth:      AuthConfig{AccessKey: fakeAccessKey, SecretKey: "FAKE-inline-secret-key-not-real"},
					Images:    []string{fakeImage1},
				}, "eu-de")},
			},
		},
		{
			file: "good_password_without_project_id.yml",
			want: &Config{
				Global: DefaultGlobalConfig,
				Projects: []ProjectConfig{otcEndpoints(ProjectConfig{
					Name:   "dev",
					Cloud:  "otc",
					Region: "eu-nl",
					Auth: AuthConfig{
						DomainName:   "fake-domain",
						Username:     "fake-user",
						Password:     "FAKE-password-from-file", // trailing "  \r\n" trimmed
						PasswordFile: testdataPath(t, "secrets/password.txt"),
					},
					Discovery: &DiscoveryConfig{},
				}, "eu-nl")},
			},
		},
		{
			file: "good_huaweicloud.yml",
			want: &Config{
				Global: DefaultGlobalConfig,
				Projects: []ProjectConfig{{
					Name:              "hw-sg",
					Cloud:             "huaweicloud",
					Region:            "ap-southeast-3",
					ProjectID:         fakeProjectID, // lowercased
					ModelArtsEndpoint: "https://modelarts.ap-southeast-3.myhuaweicloud.com",
					IAMEndpoint:       "https://iam.ap-southeast-3.myhuaweicloud.com",
					Auth: AuthConfig{
						AccessKey:     fakeAccessKey,
						SecretKey:     "FAKE-secret-key-from-file",
						SecretKeyFile: testdataPath(t, "secrets/secret_key.txt"),
					},
					Discovery: &DiscoveryConfig{Type: "DEDICATED", ServiceType: "TRAIN"},
				}},
			},
		},
		{
			file: "good_ecs_metadata.yml",
			want: &Config{
				Global: DefaultGlobalConfig,
				Projects: []ProjectConfig{
					otcEndpoints(ProjectConfig{
						Name: "agency", Cloud: "otc", Region: "eu-de", ProjectID: fakeProjectID,
						Auth:      AuthConfig{CredentialsFrom: "ecs_metadata", MetadataEndpoint: "http://169.254.169.254"},
						Discovery: &DiscoveryConfig{},
					}, "eu-de"),
					otcEndpoints(ProjectConfig{
						Name: "private-metadata", Cloud: "otc", Region: "eu-nl", ProjectID: fakeProjectID,
						Auth:      AuthConfig{CredentialsFrom: "ecs_metadata", MetadataEndpoint: "http://127.0.0.1:8080"},
						Discovery: &DiscoveryConfig{},
					}, "eu-nl"),
				},
			},
		},
		{
			file: "good_regions.yml",
			want: &Config{
				Global: DefaultGlobalConfig,
				Projects: []ProjectConfig{
					{
						Name:              "swiss",
						Cloud:             "otc",
						Region:            "eu-ch2",
						ProjectID:         fakeProjectID,
						ModelArtsEndpoint: "https://modelarts.eu-ch2.sc.otc.t-systems.com",
						IAMEndpoint:       "https://iam-pub.eu-ch2.sc.otc.t-systems.com",
						Auth:              AuthConfig{AccessKey: fakeAccessKey, SecretKey: "FAKE-inline-secret-key-not-real"},
						Discovery:         &DiscoveryConfig{Type: "BUILD_IN"},
					},
					{
						Name:              "hw-hk",
						Cloud:             "huaweicloud",
						Region:            "ap-southeast-1",
						ProjectID:         fakeProjectID,
						ModelArtsEndpoint: "https://modelarts.ap-southeast-1.myhuaweicloud.cn",
						IAMEndpoint:       "https://iam.ap-southeast-1.myhuaweicloud.com",
						Auth:              AuthConfig{AccessKey: fakeAccessKey, SecretKey: "FAKE-inline-secret-key-not-real"},
						Discovery:         &DiscoveryConfig{},
					},
					{
						Name:              "hw-new",
						Cloud:             "huaweicloud",
						Region:            "ap-southeast-9",
						ProjectID:         fakeProjectID,
						ModelArtsEndpoint: "https://modelarts.ap-southeast-9.myhuaweicloud.com",
						IAMEndpoint:       "https://iam.ap-southeast-9.myhuaweicloud.com",
						Auth:              AuthConfig{AccessKey: fakeAccessKey, SecretKey: "FAKE-inline-secret-key-not-real"},
						Discovery:         &DiscoveryConfig{},
					},
					{
						Name:              "private",
						Cloud:             "otc",
						Region:            "eu-private-1",
						ProjectID:         fakeProjectID,
						ModelArtsEndpoint: "https://modelarts.private.example.internal",
						IAMEndpoint:       "https://iam.private.example.internal",
						Auth:              AuthConfig{AccessKey: fakeAccessKey, SecretKey: "FAKE-inline-secret-key-not-real"},
						Discovery:         &DiscoveryConfig{},
					},
				},
			},
		},
		{
			file: "good_full.yml",
			want: &Config{
				Global: GlobalConfig{
					ScrapeTimeout:      model.Duration(45 * time.Second),
					Concurrency:        4,
					MinRefreshInterval: model.Duration(time.Minute),
					ServeStaleFor:      model.Duration(10 * time.Minute),
				},
				Projects: []ProjectConfig{
					{
						Name:              "prod",
						Cloud:             "otc",
						Region:            "eu-de",
						ProjectID:         fakeProjectID,
						ModelArtsEndpoint: "https://modelarts.example.internal/prefix",
						IAMEndpoint:       "http://127.0.0.1:8080",
						Auth: AuthConfig{
							AccessKey:         fakeAccessKey,
							SecretKey:         "FAKE-secret-key-from-file",
							SecretKeyFile:     testdataPath(t, "secrets/secret_key.txt"),
							SecurityToken:     "FAKE-security-token-from-file",
							SecurityTokenFile: testdataPath(t, "secrets/security_token.txt"),
						},
						Images: []string{fakeImage1, fakeImage2},
						Discovery: &DiscoveryConfig{
							Type:        "DEDICATED",
							Namespace:   "fake-namespace",
							Name:        "fake-image",
							ServiceType: "INFERENCE",
							WorkspaceID: "0",
						},
						RateLimit: 2.5,
						RateBurst: 5,
						TLSConfig: commonconfig.TLSConfig{
							CAFile:     filepath.Join("testdata", "certs", "ca.pem"),
							Cert:       "FAKE-CERTIFICATE",
							Key:        "FAKE-tls-client-key-not-real",
							ServerName: "modelarts.example.internal",
							MinVersion: commonconfig.TLSVersion(tls.VersionTLS12),
						},
						ProxyURL: mustURL(t, "http://fake-proxy-user:FAKE-proxy-password@proxy.example.internal:3128"),
					},
					{
						Name:              "dev",
						Cloud:             "huaweicloud",
						Region:            "cn-north-4",
						ProjectID:         "fedcba9876543210fedcba9876543210",
						ModelArtsEndpoint: "https://modelarts.cn-north-4.myhuaweicloud.com",
						IAMEndpoint:       "https://iam.cn-north-4.myhuaweicloud.com",
						Auth: AuthConfig{
							DomainName: "fake-domain",
							Username:   "fake-user",
							Password:   "FAKE-inline-password-not-real",
						},
						Images:    []string{fakeImage1},
						RateLimit: 1,
						RateBurst: 1,
					},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := Load(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				// The secrets are fake: print them in full to see the difference.
				commonconfig.MarshalSecretValue = true
				defer func() { commonconfig.MarshalSecretValue = false }()
				g, _ := yaml.Marshal(got)
				w, _ := yaml.Marshal(tt.want)
				t.Errorf("Load mismatch\ngot:\n%s\nwant:\n%s", g, w)
			}
		})
	}
}

func TestLoadBad(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"bad_unknown_field.yml", `line 7: unknown field "secret" in projects[0] "prod".auth (valid fields: access_key, credentials_from, domain_name, metadata_endpoint, password, password_file, secret_key, secret_key_file, security_token, security_token_file, username)`},
		{"bad_unknown_field_in_tls_config.yml", `line 12: unknown field "ca_fiel" in projects[0] "prod".tls_config (valid fields: ca, ca_file, ca_ref, cert, cert_file, cert_ref, insecure_skip_verify, key, key_file, key_ref, max_version, min_version, server_name)`},
		{"bad_many_unknown_fields.yml", `line 1: unknown field "projcts" at the top level (valid fields: global, projects)
line 3: unknown field "concurency" in global (valid fields: concurrency, min_refresh_interval, scrape_timeout, serve_stale_for)
line 7: unknown field "projectid" in projects[0] "prod" (valid fields: auth, cloud, discovery, iam_endpoint, images, modelarts_endpoint, name, project_id, proxy_url, rate_burst, rate_limit, region, tls_config)
line 11: unknown field "foo" in projects[0] "prod".auth (valid fields: access_key, credentials_from, domain_name, metadata_endpoint, password, password_file, secret_key, secret_key_file, security_token, security_token_file, username)`},
		{"bad_tls_config_ca_twice.yml", `line 11: projects[0] "prod".tls_config: at most one of ca, ca_file & ca_ref must be configured`},
		{"bad_duplicate_key.yml", `line 4: projects[0] "prod".region: "region" is set twice (first at line 3); keep one`},
		{"bad_duration.yml", `line 2: global.scrape_timeout: not a valid duration string: "soon"`},
		{"bad_type.yml", "line 10: projects[0] \"prod\".rate_burst: cannot unmarshal !!str `many` into int"},
		{"bad_syntax.yml", `invalid YAML: line 1: did not find expected '-' indicator`},
		{"bad_empty_file.yml", `configuration is empty; it needs at least a "projects" list`},
		{"bad_two_documents.yml", `line 10: a second YAML document starts here; the configuration must be one document, remove the "---" separator and merge the two`},

		{"bad_missing_secret_key.yml", `projects[0] "prod".auth: access key authentication needs access_key and secret_key (or secret_key_file); missing: secret_key`},
		{"bad_both_auth_ways.yml", `projects[0] "prod".auth: set either the access key fields (access_key, secret_key) or the password fields (domain_name, username, password), not both`},
		{"bad_half_password_auth.yml", `projects[0] "dev".auth: password authentication needs domain_name, username and password (or password_file); missing: domain_name`},
		{"bad_secret_key_and_file.yml", `projects[0] "prod".auth: secret_key and secret_key_file are both set; keep only one of them`},
		{"bad_security_token_with_password.yml", `projects[0] "dev".auth.security_token: only used with access key authentication (temporary AK/SK); remove it`},
		{"bad_unreadable_secret_key_file.yml", `projects[0] "prod".auth.secret_key_file: cannot read "testdata/secrets/does_not_exist.txt": no such file or directory (a relative path starts from the configuration file's directory)`},
		{"bad_empty_secret_file.yml", `projects[0] "prod".auth.secret_key_file: "testdata/secrets/empty.txt" is empty; write the secret into it`},
		{"bad_image_uuid.yml", `projects[0] "prod".images[0]: "11111111-2222-4333-8444-55555555555g" is not an image ID; image IDs are UUIDs like 0f3c8a2e-5b7d-4e1a-9c6f-2d8b4a1e7c93`},
		{"bad_duplicate_image.yml", `projects[0] "prod".images[2]: 11111111-2222-4333-8444-555555555555 is already listed as images[0]; remove one of the two`},
		{"bad_duplicate_project_name.yml", `projects[1] "prod".name: "prod" is already the name of projects[0]; project names must be unique`},
		{"bad_project_name.yml", `projects[0] "prod eu".name: "prod eu" is not a safe label value; use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit`},
		{"bad_unknown_cloud.yml", `projects[0] "prod".cloud: unknown cloud "aws"; use "otc" (Open Telekom Cloud, the default) or "huaweicloud"`},
		{"bad_endpoint_url.yml", `projects[0] "prod".modelarts_endpoint: "modelarts.eu-de.otc.t-systems.com" is not an absolute http:// or https:// URL; write it like "https://modelarts.eu-de.otc.t-systems.com", or leave it out to use the default`},
		{"bad_endpoint_query.yml", `projects[0] "prod".iam_endpoint: "https://iam.example.internal/?x=1" must not have a query ("?..."); remove it`},
		{"bad_endpoint_empty_fragment.yml", `projects[0] "prod".modelarts_endpoint: "https://modelarts.example.internal/#" must not have a fragment ("#..."); remove it`},
		{"bad_shared_key_two_secrets.yml", `projects[1] "staging".auth: uses access key FAKEACCESSKEY0000000 with another secret key than projects[0]; one of them is wrong: give both the same`},
		{"bad_unknown_otc_region.yml", `projects[0] "prod".region: "eu-fr" is not an Open Telekom Cloud region with known endpoints (eu-ch2, eu-de, eu-nl); for another region set both modelarts_endpoint and iam_endpoint`},
		{"bad_missing_region.yml", `projects[0] "prod".region: required; set the region of the project, e.g. "eu-de"`},
		{"bad_ak_sk_without_project_id.yml", `projects[0] "prod".project_id: required with access_key authentication; copy the ID of the project from the console: My Credentials → Projects`},
		{"bad_project_id.yml", `projects[0] "prod".project_id: "0123456789abcdef" is not a project ID; it is 32 hexadecimal characters, shown in the console under My Credentials → Projects`},
		{"bad_no_images_no_discovery.yml", `projects[0] "prod": nothing to export; list image IDs under images, or add "discovery: {}" to export every image of the project`},
		{"bad_discovery_type.yml", `projects[0] "prod".discovery.type: "SHARED" is not an image type; use one of BUILD_IN, DEDICATED, or leave it out for both`},
		{"bad_service_type.yml", `projects[0] "prod".discovery.service_type: "serving" is not a service type; use one of COMMON, INFERENCE, TRAIN, DEV, UNKNOWN, or leave it out for all`},
		{"bad_credentials_from_and_keys.yml", `projects[0] "prod".auth: set either credentials_from or the credential fields (access_key, secret_key_file), not both`},
		{"bad_credentials_from_unknown.yml", `projects[0] "prod".auth.credentials_from: unknown source "instance_profile"; use "ecs_metadata" (the temporary keys of the ECS or CCE node's agency) or "environment" (HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK)`},
		{"bad_metadata_endpoint_without_ecs_metadata.yml", `projects[0] "prod".auth.metadata_endpoint: only used with credentials_from: ecs_metadata; remove it`},
		{"bad_metadata_endpoint_url.yml", `projects[0] "prod".auth.metadata_endpoint: "169.254.169.254" is not an absolute http:// or https:// URL; write it like "http://169.254.169.254", or leave it out to use the default`},
		{"bad_environment_variable_missing.yml", `projects[0] "prod".auth: credentials_from: environment needs the environment variables HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK; not set: HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK`},
		{"bad_ecs_metadata_without_project_id.yml", `projects[0] "prod".project_id: required with credentials_from: ecs_metadata; copy the ID of the project from the console: My Credentials → Projects`},
		{"bad_concurrency_zero.yml", `global.concurrency: 0 is out of range; use 1 to 256 (default 10)`},
		{"bad_no_projects.yml", `projects: no project configured; add at least one entry under projects`},
		{"bad_many_errors.yml", `global.concurrency: 1000 is out of range; use 1 to 256 (default 10)
projects[0] "prod".cloud: unknown cloud "aws"; use "otc" (Open Telekom Cloud, the default) or "huaweicloud"
projects[0] "prod".region: required; set the region of the project, e.g. "eu-de"
projects[0] "prod".auth: access key authentication needs access_key and secret_key (or secret_key_file); missing: secret_key
projects[0] "prod".images[0]: "not-a-uuid" is not an image ID; image IDs are UUIDs like 0f3c8a2e-5b7d-4e1a-9c6f-2d8b4a1e7c93
projects[1] "prod".name: "prod" is already the name of projects[0]; project names must be unique
projects[1] "prod".auth: password authentication needs domain_name, username and password (or password_file); missing: domain_name, password
projects[1] "prod": nothing to export; list image IDs under images, or add "discovery: {}" to export every image of the project`},
	}
	setEnv(t, nil)
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := Load(filepath.Join("testdata", tt.file))
			if err == nil {
				t.Fatalf("Load succeeded, want error %q\n%s", tt.want, cfg.Summary())
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("wrong error\ngot:  %s\nwant: %s", got, tt.want)
			}
			for _, s := range fakeSecrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error contains secret %q", s)
				}
			}
		})
	}
	// Every bad fixture is tested.
	files, err := filepath.Glob(filepath.Join("testdata", "bad_*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("fixture %s has no test", f)
		}
	}
}

func TestLoadErrorsAreJoined(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "bad_many_errors.yml"))
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("error %T is not a joined error", err)
	}
	if n := len(joined.Unwrap()); n != 8 {
		t.Errorf("got %d errors, want 8", n)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "does_not_exist.yml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want a not-exist error", err)
	}
	if want := "read configuration: open testdata/does_not_exist.yml: no such file or directory"; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
}

func TestLoadReader(t *testing.T) {
	minimal := `
projects:
  - name: p
    region: eu-de
    project_id: ` + fakeProjectID + `
    auth:
      access_key: ` + fakeAccessKey + `
      secret_key_file: sk.txt
    images: [` + strings.ToUpper(fakeImage1) + `]
`
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "relative secret file resolved against baseDir", in: minimal},
		{name: "comments only", in: "# nothing here\n", wantErr: `configuration is empty; it needs at least a "projects" list`},
		{name: "null document", in: "---\n~\n", wantErr: `configuration is empty; it needs at least a "projects" list`},
		{name: "not a mapping", in: "- a\n- b\n", wantErr: `line 1: the configuration must be a mapping with "global" and "projects" keys`},
		{name: "null global keeps the defaults", in: "global:\n" + minimal},
		{name: "projects not a list", in: "projects: prod\n", wantErr: "line 1: projects: cannot unmarshal !!str `prod` into []config.ProjectConfig"},
		{
			name: "unknown top-level key holding an anchor",
			in: `
common: &common
  region: eu-de
`,
			wantErr: `line 2: unknown field "common" at the top level (valid fields: global, projects)`,
		},
		{
			name: "merged auth",
			in: `
projects:
  - name: a
    region: eu-de
    project_id: ` + fakeProjectID + `
    auth: &auth
      access_key: ` + fakeAccessKey + `
      secret_key_file: sk.txt
    discovery: {}
  - name: b
    region: eu-nl
    project_id: ` + fakeProjectID + `
    auth:
      <<: *auth
    discovery: {}
`,
		},
		{
			name: "unknown field in merged mapping",
			in: `
projects:
  - name: a
    region: eu-de
    project_id: ` + fakeProjectID + `
    auth: &auth
      access_key: ` + fakeAccessKey + `
      secret_key_file: sk.txt
      secret_token: x
    discovery: {}
  - name: b
    region: eu-nl
    auth:
      <<: *auth
    discovery: {}
`,
			wantErr: `line 9: unknown field "secret_token" in projects[0] "a".auth (valid fields: access_key, credentials_from, domain_name, metadata_endpoint, password, password_file, secret_key, secret_key_file, security_token, security_token_file, username)`,
		},
		{
			name:    "user info in endpoint is not echoed",
			in:      strings.Replace(minimal, "    region: eu-de\n", "    region: eu-de\n    iam_endpoint: https://u:FAKE-endpoint-password@iam.example\n", 1),
			wantErr: `projects[0] "p".iam_endpoint: must not contain a user name or password; credentials belong under auth`,
		},
		{
			name:    "negative rate limit",
			in:      minimal + "    rate_limit: -1\n    rate_burst: -2\n",
			wantErr: "projects[0] \"p\".rate_limit: -1 is not allowed; use 0 for no limit, or the number of API requests per second\nprojects[0] \"p\".rate_burst: -2 is negative; use 0 (meaning 1) or more",
		},
		{
			name:    "a tag the value does not fit",
			in:      minimal + "    rate_burst: !!int many\n",
			wantErr: "line 10: projects[0] \"p\".rate_burst: cannot decode !!str `many` as a !!int",
		},
		{
			name:    "NaN rate limit",
			in:      minimal + "    rate_limit: .nan\n",
			wantErr: `projects[0] "p".rate_limit: NaN is not allowed; use 0 for no limit, or the number of API requests per second`,
		},
		{
			name:    "zero scrape timeout",
			in:      "global:\n  scrape_timeout: 0s\n" + minimal,
			wantErr: `global.scrape_timeout: 0s must be greater than 0s; use e.g. 30s (the default)`,
		},
		{
			name:    "bad proxy URL",
			in:      minimal + "    proxy_url: ftp://proxy.example\n",
			wantErr: `projects[0] "p".proxy_url: "ftp://proxy.example" is not a proxy URL; write it like "http://proxy.example.com:3128" (http, https or socks5)`,
		},
		{
			name:    "no credentials",
			in:      strings.Replace(strings.Replace(minimal, "      access_key: "+fakeAccessKey+"\n", "", 1), "      secret_key_file: sk.txt\n", "", 1),
			wantErr: `projects[0] "p".auth: no credentials; set access_key and secret_key (or secret_key_file), or domain_name, username and password (or password_file), or credentials_from (ecs_metadata or environment)`,
		},
		{
			name:    "unknown OTC region",
			in:      strings.Replace(minimal, "region: eu-de", "region: eu-es", 1),
			wantErr: `projects[0] "p".region: "eu-es" is not an Open Telekom Cloud region with known endpoints (eu-ch2, eu-de, eu-nl); for another region set both modelarts_endpoint and iam_endpoint`,
		},
		{
			name: "unknown OTC region with both endpoints",
			in:   strings.Replace(minimal, "region: eu-de", "region: eu-es\n    modelarts_endpoint: http://127.0.0.1:1\n    iam_endpoint: http://127.0.0.1:2", 1),
		},
		{
			name: "unknown Huawei Cloud region",
			in:   strings.Replace(minimal, "region: eu-de", "cloud: HuaweiCloud\n    region: xx-new-1", 1),
		},
		{
			name:    "bad region",
			in:      strings.Replace(minimal, "region: eu-de", "region: eu-de.evil.example/x", 1),
			wantErr: `projects[0] "p".region: "eu-de.evil.example/x" is not a region name; use lowercase letters, digits and '-', e.g. "eu-de"`,
		},
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sk.txt"), []byte("FAKE-secret-key-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadReader(strings.NewReader(tt.in), dir)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErr)
				}
				if err.Error() != tt.wantErr {
					t.Fatalf("wrong error\ngot:  %s\nwant: %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "FAKE-") {
					t.Errorf("error shows a secret: %s", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if cfg.Global != DefaultGlobalConfig {
				t.Errorf("global = %+v, want the defaults", cfg.Global)
			}
			for _, p := range cfg.Projects {
				if p.Auth.SecretKey != "FAKE-secret-key-from-file" {
					t.Errorf("project %s: secret key %q not read from sk.txt", p.Name, string(p.Auth.SecretKey))
				}
				for _, id := range p.Images {
					if id != strings.ToLower(id) {
						t.Errorf("image %s not lowercased", id)
					}
				}
			}
		})
	}
}

func TestGlobalDefaultsPerField(t *testing.T) {
	in := `
global:
  concurrency: 3
projects:
  - name: p
    region: eu-de
    auth: {domain_name: fake-domain, username: fake-user, password: FAKE-password}
    discovery: {}
`
	cfg, err := LoadReader(strings.NewReader(in), "")
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultGlobalConfig
	want.Concurrency = 3
	if cfg.Global != want {
		t.Errorf("global = %+v, want %+v", cfg.Global, want)
	}
	if want.ScrapeTimeout != model.Duration(30*time.Second) || DefaultGlobalConfig.Concurrency != 10 ||
		DefaultGlobalConfig.MinRefreshInterval != 0 || DefaultGlobalConfig.ServeStaleFor != 0 {
		t.Errorf("DefaultGlobalConfig = %+v", DefaultGlobalConfig)
	}
}

// Strictness must hold inside types with a yaml.v2-style UnmarshalYAML, such as
// commonconfig.TLSConfig.
func TestStrictInsideTLSConfig(t *testing.T) {
	in := "projects:\n  - name: p\n    tls_config:\n      insecure_skip_verify: true\n      bogus: 1\n"
	_, err := LoadReader(strings.NewReader(in), "")
	want := `line 5: unknown field "bogus" in projects[0] "p".tls_config (valid fields: ca, ca_file, ca_ref, cert, cert_file, cert_ref, insecure_skip_verify, key, key_file, key_ref, max_version, min_version, server_name)`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "good_full.yml"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"yaml":          string(y),
		"Summary":       cfg.Summary(),
		"%v *Config":    fmt.Sprintf("%v", cfg),
		"%+v *Config":   fmt.Sprintf("%+v", cfg),
		"%#v *Config":   fmt.Sprintf("%#v", cfg),
		"%s auth":       fmt.Sprintf("%s", cfg.Projects[0].Auth),
		"%+v Config":    fmt.Sprintf("%+v", *cfg),
		"%+v project":   fmt.Sprintf("%+v", cfg.Projects[0]),
		"%v *project":   fmt.Sprintf("%v", &cfg.Projects[1]),
		"%+v projects":  fmt.Sprintf("%+v", cfg.Projects),
		"%+v auth":      fmt.Sprintf("%+v", cfg.Projects[1].Auth),
		"%#v auth":      fmt.Sprintf("%#v", cfg.Projects[0].Auth),
		"Sprint auth":   fmt.Sprint(cfg.Projects[0].Auth),
		"%q auth":       fmt.Sprintf("%q", cfg.Projects[0].Auth),
		"%v *auth":      fmt.Sprintf("%v", &cfg.Projects[0].Auth),
		"%v tls_config": fmt.Sprintf("%+v", cfg.Projects[0]),
	}
	for name, out := range outputs {
		for _, s := range fakeSecrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows secret %q:\n%s", name, s, out)
			}
		}
		if strings.Contains(out, "%!") {
			t.Errorf("%s has a formatting error:\n%s", name, out)
		}
		if !strings.Contains(out, "<secret>") {
			t.Errorf("%s has no <secret>:\n%s", name, out)
		}
	}
	// The redaction works on copies: the values stay usable.
	if cfg.Projects[0].Auth.SecretKey != "FAKE-secret-key-from-file" || cfg.Projects[0].TLSConfig.Key != "FAKE-tls-client-key-not-real" {
		t.Error("printing changed the configuration")
	}
	if p, _ := cfg.Projects[0].ProxyURL.User.Password(); p != "FAKE-proxy-password" {
		t.Error("printing changed the proxy URL")
	}
	// The summary shows the access key ID, not the secrets.
	if s := cfg.Summary(); !strings.Contains(s, fakeAccessKey) {
		t.Errorf("summary lacks the access key ID:\n%s", s)
	}
}

// TestSummary pins what --config.check prints: the checked configuration, with
// what loading filled in.
func TestSummary(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "good_full.yml"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(`global:
    scrape_timeout: 45s
    concurrency: 4
    min_refresh_interval: 1m
    serve_stale_for: 10m
projects:
    - name: prod
      cloud: otc
      region: eu-de
      project_id: 0123456789abcdef0123456789abcdef
      modelarts_endpoint: https://modelarts.example.internal/prefix
      iam_endpoint: http://127.0.0.1:8080
      auth:
        access_key: FAKEACCESSKEY0000000
        secret_key: <secret>
        secret_key_file: $TESTDATA/secrets/secret_key.txt
        security_token: <secret>
        security_token_file: $TESTDATA/secrets/security_token.txt
      images:
        - 11111111-2222-4333-8444-555555555555
        - 66666666-7777-4888-9999-aaaaaaaaaaaa
      discovery:
        type: DEDICATED
        namespace: fake-namespace
        name: fake-image
        service_type: INFERENCE
        workspace_id: "0"
      rate_limit: 2.5
      rate_burst: 5
      tls_config:
        cert: FAKE-CERTIFICATE
        key: <secret>
        ca_file: testdata/certs/ca.pem
        server_name: modelarts.example.internal
        insecure_skip_verify: false
        min_version: TLS12
      proxy_url: http://fake-proxy-user:xxxxx@proxy.example.internal:3128
    - name: dev
      cloud: huaweicloud
      region: cn-north-4
      project_id: fedcba9876543210fedcba9876543210
      modelarts_endpoint: https://modelarts.cn-north-4.myhuaweicloud.com
      iam_endpoint: https://iam.cn-north-4.myhuaweicloud.com
      auth:
        domain_name: fake-domain
        username: fake-user
        password: <secret>
      images:
        - 11111111-2222-4333-8444-555555555555
      rate_limit: 1
      rate_burst: 1
`, "$TESTDATA", testdataPath(t, ""))
	if got := cfg.Summary(); got != want {
		t.Errorf("Summary:\n%s\nwant:\n%s", got, want)
	}
}

// FuzzLoadReader checks that no input makes LoadReader panic or return both a
// configuration and an error. The seeds in testdata/fuzz/FuzzLoadReader run with
// every "go test". To fuzz, keep minimisation short or it looks like a stall:
//
//	go test -run '^$' -fuzz FuzzLoadReader -fuzztime 1m -fuzzminimizetime 2s ./config/
func FuzzLoadReader(f *testing.F) {
	for _, name := range []string{"good_full.yml", "good_ak_sk_minimal.yml", "bad_many_errors.yml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := LoadReader(bytes.NewReader(data), dir)
		if err != nil {
			if cfg != nil {
				t.Error("config and error both returned")
			}
			if err.Error() == "" {
				t.Error("empty error message")
			}
			return
		}
		if len(cfg.Projects) == 0 {
			t.Error("a configuration without projects was accepted")
		}
		_ = cfg.Summary()
		_ = fmt.Sprintf("%+v", cfg)
	})
}
