// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package config

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonconfig "github.com/prometheus/common/config"
)

// setEnv gives the variables credentials_from: environment reads the values
// in vars, "" (as good as unset) if not there, for the rest of the test.
func setEnv(t *testing.T, vars map[string]string) {
	for _, name := range []string{envAccessKey, envSecretKey, envSecurityToken, envProjectID} {
		t.Setenv(name, vars[name])
	}
}

// TestCredentialSources loads every way of giving credentials and checks what
// the loaded AuthConfig holds for the client, and that --config.check shows no secret.
func TestCredentialSources(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"sk": "FAKE-sk-from-file\n", "st": "FAKE-st-from-file\n", "pw": "FAKE-pw-from-file\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	abs := func(name string) string { return filepath.Join(dir, name) }
	env := map[string]string{
		"HUAWEICLOUD_SDK_AK":             "ENVACCESSKEY00000000",
		"HUAWEICLOUD_SDK_SK":             "FAKE-sk-from-env",
		"HUAWEICLOUD_SDK_SECURITY_TOKEN": "FAKE-st-from-env",
		"HUAWEICLOUD_SDK_PROJECT_ID":     "FEDCBA9876543210FEDCBA9876543210",
	}
	withoutToken := map[string]string{"HUAWEICLOUD_SDK_AK": env["HUAWEICLOUD_SDK_AK"], "HUAWEICLOUD_SDK_SK": env["HUAWEICLOUD_SDK_SK"]}
	tests := []struct {
		name, auth string
		projectID  string // in the file
		env        map[string]string
		want       AuthConfig
		wantID     string
		wantErr    string
	}{
		{
			name: "AK/SK inline", auth: "{access_key: AK, secret_key: FAKE-sk-inline}", projectID: fakeProjectID,
			want: AuthConfig{AccessKey: "AK", SecretKey: "FAKE-sk-inline"},
		},
		{
			name: "AK/SK and security token from files", auth: "{access_key: AK, secret_key_file: sk, security_token_file: ./st}", projectID: fakeProjectID,
			want: AuthConfig{AccessKey: "AK", SecretKey: "FAKE-sk-from-file", SecretKeyFile: abs("sk"), SecurityToken: "FAKE-st-from-file", SecurityTokenFile: abs("st")},
		},
		{
			name: "password from a file", auth: "{domain_name: D, username: U, password_file: " + abs("pw") + "}",
			want: AuthConfig{DomainName: "D", Username: "U", Password: "FAKE-pw-from-file", PasswordFile: abs("pw")},
		},
		{
			name: "ECS metadata", auth: "{credentials_from: ecs_metadata}", projectID: fakeProjectID, env: env,
			want: AuthConfig{CredentialsFrom: "ecs_metadata", MetadataEndpoint: "http://169.254.169.254"},
		},
		{
			name: "environment, project id too", auth: "{credentials_from: Environment}", env: env,
			want:   AuthConfig{CredentialsFrom: "environment", AccessKey: "ENVACCESSKEY00000000", SecretKey: "FAKE-sk-from-env", SecurityToken: "FAKE-st-from-env"},
			wantID: "fedcba9876543210fedcba9876543210",
		},
		{
			name: "environment, the file's project id wins", auth: "{credentials_from: environment}", projectID: fakeProjectID, env: env,
			want: AuthConfig{CredentialsFrom: "environment", AccessKey: "ENVACCESSKEY00000000", SecretKey: "FAKE-sk-from-env", SecurityToken: "FAKE-st-from-env"},
		},
		{
			name: "environment without token and project id", auth: "{credentials_from: environment}", env: withoutToken,
			wantErr: `projects[0] "p".project_id: required with credentials_from: environment; copy the ID of the project from the console: My Credentials → Projects, or set HUAWEICLOUD_SDK_PROJECT_ID`,
		},
		{
			name: "environment without the secret key", auth: "{credentials_from: environment}", projectID: fakeProjectID,
			env:     map[string]string{"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": ""},
			wantErr: `projects[0] "p".auth: credentials_from: environment needs the environment variables HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK; not set: HUAWEICLOUD_SDK_SK`,
		},
		{
			name: "environment with a bad project id", auth: "{credentials_from: environment}",
			env:     map[string]string{"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "FAKE-sk", "HUAWEICLOUD_SDK_PROJECT_ID": "eu-de"},
			wantErr: `projects[0] "p".project_id: "eu-de" (from HUAWEICLOUD_SDK_PROJECT_ID) is not a project ID; it is 32 hexadecimal characters, shown in the console under My Credentials → Projects`,
		},
		{
			name: "environment with metadata_endpoint", auth: "{credentials_from: environment, metadata_endpoint: http://169.254.169.254}", projectID: fakeProjectID, env: env,
			wantErr: `projects[0] "p".auth.metadata_endpoint: only used with credentials_from: ecs_metadata; remove it`,
		},
		{
			name: "the project id variable is only for credentials_from: environment", auth: "{access_key: AK, secret_key: FAKE-sk}", env: env,
			wantErr: `projects[0] "p".project_id: required with access_key authentication; copy the ID of the project from the console: My Credentials → Projects`,
		},
		{
			name: "password and credentials_from", auth: "{credentials_from: environment, domain_name: D, username: U, password: FAKE-pw}", env: env,
			wantErr: `projects[0] "p".auth: set either credentials_from or the credential fields (domain_name, username, password), not both`,
		},
		{
			name: "a security token alone and credentials_from", auth: "{credentials_from: ecs_metadata, security_token: FAKE-st}", projectID: fakeProjectID,
			wantErr: `projects[0] "p".auth: set either credentials_from or the credential fields (security_token), not both`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := ""
			if tt.projectID != "" {
				id = "    project_id: " + tt.projectID + "\n"
			}
			in := fmt.Sprintf("projects:\n  - name: p\n    region: eu-de\n%s    auth: %s\n    discovery: {}\n", id, tt.auth)
			setEnv(t, tt.env)
			cfg, err := LoadReader(strings.NewReader(in), dir)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error\ngot:  %v\nwant: %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := cfg.Projects[0]
			if p.Auth != tt.want {
				t.Errorf("auth\ngot:  %#v\nwant: %#v", p.Auth, tt.want) // fake secrets: printed as <secret>
				for _, f := range [][2]commonconfig.Secret{{p.Auth.SecretKey, tt.want.SecretKey}, {p.Auth.SecurityToken, tt.want.SecurityToken}, {p.Auth.Password, tt.want.Password}} {
					if f[0] != f[1] {
						t.Errorf("secret %q, want %q", f[0], f[1])
					}
				}
			}
			wantID := cmp.Or(tt.wantID, tt.projectID)
			if p.ProjectID != wantID {
				t.Errorf("project_id %q, want %q", p.ProjectID, wantID)
			}
			summary := cfg.Summary()
			for _, s := range []commonconfig.Secret{p.Auth.SecretKey, p.Auth.SecurityToken, p.Auth.Password} {
				if s != "" && strings.Contains(summary, string(s)) {
					t.Errorf("summary shows the secret %q:\n%s", s, summary)
				}
			}
		})
	}
}

// TestSecretsNeverInErrors gives every secret field the YAML tags and shapes
// that make the decoder, or a check after it, quote a value, and asserts that
// no 6-character piece of the secret is in the error.
func TestSecretsNeverInErrors(t *testing.T) {
	const (
		long   = "Zq7-Kx9-Wv2-Lm4-Pj8"
		short  = "Qh5-Tn3x" // 8 bytes: yaml.v3 quotes it whole
		second = "Yb6-Rc1-Ud0-Fs5"
	)
	// A field: where the secret goes, given the text of its value; wrap makes
	// that text of the secret; whole says whether every line of it is secret.
	type field struct {
		name  string
		place func(value string) (auth, project string)
		wrap  func(secret string) string
		whole bool
	}
	id := func(s string) string { return s }
	fields := []field{
		{"secret_key", func(v string) (string, string) { return "      access_key: AK\n      secret_key: " + v + "\n", "" }, id, true},
		{"security_token", func(v string) (string, string) {
			return "      access_key: AK\n      secret_key: FAKE-sk\n      security_token: " + v + "\n", ""
		}, id, true},
		{"password", func(v string) (string, string) {
			return "      domain_name: D\n      username: U\n      password: " + v + "\n", ""
		}, id, true},
		{"tls_config.key", func(v string) (string, string) {
			return "      access_key: AK\n      secret_key: FAKE-sk\n", "    tls_config:\n      cert: FAKE-CERT\n      key: " + v + "\n"
		}, id, true},
		{"proxy_url password", func(v string) (string, string) {
			return "      access_key: AK\n      secret_key: FAKE-sk\n", "    proxy_url: " + v + "\n"
		}, func(s string) string { return "http://proxyuser:" + s + "@proxy.example:3128" }, false},
	}
	// A shape: the value's text, given the secret's text and a second line; the
	// lines added to the project (project) and after it (after).
	shapes := []struct {
		name           string
		value          func(s, s2 string) string
		project, after string
	}{
		{name: "!!int", value: func(s, _ string) string { return "!!int " + s }},
		{name: "!!float", value: func(s, _ string) string { return "!!float " + s }},
		{name: "!!bool", value: func(s, _ string) string { return "!!bool " + s }},
		{name: "!!binary", value: func(s, _ string) string { return "!!binary " + s }},
		{name: "!!timestamp", value: func(s, _ string) string { return "!!timestamp " + s }},
		{name: "!!null", value: func(s, _ string) string { return "!!null " + s }},
		{name: "list", value: func(s, _ string) string { return "[" + s + "]" }},
		{name: "map", value: func(s, _ string) string { return "{" + s + ": 1}" }},
		{name: "multi-line block, !!int", value: func(s, s2 string) string { return "!!int |\n        " + s + "\n        " + s2 }},
		{name: "multi-line block in an int field", value: func(s, s2 string) string { return "&s |\n        " + s + "\n        " + s2 }, project: "    rate_burst: *s\n"},
		{name: "alias in an int field", value: func(s, _ string) string { return "&s " + s }, project: "    rate_burst: *s\n"},
		{name: "alias as the images", value: func(s, _ string) string { return "&s " + s }, project: "    images: *s\n"},
		{name: "alias as the scrape timeout", value: func(s, _ string) string { return "&s " + s }, after: "global:\n  scrape_timeout: *s\n"},
		{
			name: "alias as a region and a name", value: func(s, _ string) string { return "&s " + s },
			after: "  - {name: *s, region: *s, project_id: " + fakeProjectID + ", auth: {access_key: AK, secret_key: FAKE-sk}, discovery: {}}\n",
		},
	}
	for _, f := range fields {
		for _, secret := range []string{long, short} {
			for _, sh := range shapes {
				t.Run(f.name+"/"+secret+"/"+sh.name, func(t *testing.T) {
					auth, project := f.place(sh.value(f.wrap(secret), second))
					project += sh.project
					if !strings.Contains(project, "images:") {
						project += "    discovery: {}\n"
					}
					in := "projects:\n  - name: p\n    region: eu-de\n    project_id: " + fakeProjectID + "\n    auth:\n" + auth + project + sh.after
					_, err := LoadReader(strings.NewReader(in), "")
					if err == nil {
						t.Fatalf("no error for\n%s", in)
					}
					secrets := []string{secret}
					if f.whole {
						secrets = append(secrets, second)
					}
					for _, s := range secrets {
						for i := 0; i+6 <= len(s); i++ {
							if strings.Contains(err.Error(), s[i:i+6]) {
								t.Fatalf("the error shows %q of the secret %q:\n%v\nconfiguration:\n%s", s[i:i+6], s, err, in)
							}
						}
					}
				})
			}
		}
	}
}
