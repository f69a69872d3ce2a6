// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"

	commonconfig "github.com/prometheus/common/config"
)

// maxSecretFileSize bounds what is read from a *_file: a secret is a line, not a log.
const maxSecretFileSize = 64 << 10

var (
	// projectNameRE: the name becomes a label value and appears in logs and URLs.
	projectNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	// regionRE: a region is part of the default endpoints' host names.
	regionRE    = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	projectIDRE = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
	uuidRE      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

	discoveryTypes = []string{"BUILD_IN", "DEDICATED"}
	serviceTypes   = []string{"COMMON", "INFERENCE", "TRAIN", "DEV", "UNKNOWN"}
)

// projectPath names a project in messages: `projects[1] "prod"`, or `projects[1]`
// while it has no name.
func projectPath(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("projects[%d]", i)
	}
	return fmt.Sprintf("projects[%d] %q", i, name)
}

// errorList collects the problems of one file.
type errorList []error

func (l *errorList) addf(format string, args ...any) {
	*l = append(*l, fmt.Errorf(format, args...))
}

// lookupEnv reads an environment variable, like os.LookupEnv.
type lookupEnv func(string) (string, bool)

// The environment variables of credentials_from: environment, as in
// huaweicloud-sdk-go-v3 core/auth/provider/env_provider.go.
const (
	envAccessKey     = "HUAWEICLOUD_SDK_AK"
	envSecretKey     = "HUAWEICLOUD_SDK_SK"
	envSecurityToken = "HUAWEICLOUD_SDK_SECURITY_TOKEN"
	envProjectID     = "HUAWEICLOUD_SDK_PROJECT_ID"
)

// finish validates a decoded configuration and completes it: defaults, normalised
// names, secrets read from files and the environment, endpoints filled in. It
// returns every problem found.
func (c *Config) finish(baseDir string, env lookupEnv) []error {
	var errs errorList
	c.Global.check(&errs)
	if len(c.Projects) == 0 {
		errs.addf("projects: no project configured; add at least one entry under projects")
	}
	names := map[string]int{}
	for i := range c.Projects {
		p := &c.Projects[i]
		path := projectPath(i, p.Name)
		switch {
		case p.Name == "":
			errs.addf(`%s.name: required; give every project a unique name (it is the value of the "project" label)`, path)
		case !projectNameRE.MatchString(p.Name):
			errs.addf("%s.name: %q is not a safe label value; use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", path, p.Name)
		default:
			if j, dup := names[p.Name]; dup {
				errs.addf("%s.name: %q is already the name of projects[%d]; project names must be unique", path, p.Name, j)
			} else {
				names[p.Name] = i
			}
		}
		p.finish(path, baseDir, env, &errs)
	}
	checkSharedCredentials(c.Projects, &errs)
	return errs
}

// checkSharedCredentials refuses projects that give one access key, or one
// IAM user, different secrets: one of them is wrong, and as the exporter
// keeps one guard per credential, the wrong one would be tried again at
// every scrape instead of once per pause.
func checkSharedCredentials(projects []ProjectConfig, errs *errorList) {
	type first struct {
		index  int
		secret string
	}
	seen := map[string]first{}
	for i, p := range projects {
		a := p.Auth
		for _, c := range []struct{ id, secret, what string }{
			{"key " + a.AccessKey, string(a.SecretKey), "access key " + a.AccessKey + " with another secret key"},
			{"user " + p.IAMEndpoint + " " + a.DomainName + "/" + a.Username, string(a.Password), "IAM user " + a.DomainName + "/" + a.Username + " with another password"},
		} {
			if c.secret == "" {
				continue
			}
			if f, ok := seen[c.id]; !ok {
				seen[c.id] = first{i, c.secret}
			} else if f.secret != c.secret {
				errs.addf("%s.auth: uses %s than projects[%d]; one of them is wrong: give both the same", projectPath(i, p.Name), c.what, f.index)
			}
		}
	}
}

func (g *GlobalConfig) check(errs *errorList) {
	if g.Concurrency < 1 || g.Concurrency > 256 {
		errs.addf("global.concurrency: %d is out of range; use 1 to 256 (default %d)", g.Concurrency, DefaultGlobalConfig.Concurrency)
	}
	if g.ScrapeTimeout <= 0 {
		errs.addf("global.scrape_timeout: %s must be greater than 0s; use e.g. %s (the default)", g.ScrapeTimeout, DefaultGlobalConfig.ScrapeTimeout)
	}
	if g.MinRefreshInterval < 0 {
		errs.addf("global.min_refresh_interval: must not be negative; use 0s to refresh on every scrape")
	}
	if g.ServeStaleFor < 0 {
		errs.addf("global.serve_stale_for: must not be negative; use 0s to never serve stale values")
	}
}

func (p *ProjectConfig) finish(path, baseDir string, env lookupEnv, errs *errorList) {
	if p.Cloud == "" {
		p.Cloud = CloudOTC
	}
	cloud := strings.ToLower(p.Cloud)
	cloudOK := cloud == CloudOTC || cloud == CloudHuaweiCloud
	if cloudOK {
		p.Cloud = cloud
	} else {
		errs.addf(`%s.cloud: unknown cloud %q; use "otc" (Open Telekom Cloud, the default) or "huaweicloud"`, path, p.Cloud)
	}

	regionOK := false
	switch {
	case p.Region == "":
		errs.addf(`%s.region: required; set the region of the project, e.g. "eu-de"`, path)
	case !regionRE.MatchString(p.Region):
		errs.addf(`%s.region: %q is not a region name; use lowercase letters, digits and '-', e.g. "eu-de"`, path, p.Region)
	default:
		regionOK = true
	}

	idFrom := ""
	if v, ok := env(envProjectID); ok && v != "" && p.ProjectID == "" && strings.EqualFold(p.Auth.CredentialsFrom, CredentialsFromEnvironment) {
		p.ProjectID, idFrom = v, " (from "+envProjectID+")"
	}
	if p.ProjectID != "" {
		if projectIDRE.MatchString(p.ProjectID) {
			p.ProjectID = strings.ToLower(p.ProjectID)
		} else {
			errs.addf("%s.project_id: %q%s is not a project ID; it is 32 hexadecimal characters, shown in the console under My Credentials → Projects", path, p.ProjectID, idFrom)
		}
	}

	if kind := p.Auth.finish(path+".auth", baseDir, env, errs); kind != "" && p.ProjectID == "" {
		hint := ""
		if kind == "credentials_from: "+CredentialsFromEnvironment {
			hint = ", or set " + envProjectID
		}
		errs.addf("%s.project_id: required with %s; copy the ID of the project from the console: My Credentials → Projects%s", path, kind, hint)
	}

	p.ModelArtsEndpoint = checkEndpoint(p.ModelArtsEndpoint, path+".modelarts_endpoint", "https://modelarts.eu-de.otc.t-systems.com", errs)
	p.IAMEndpoint = checkEndpoint(p.IAMEndpoint, path+".iam_endpoint", "https://iam.eu-de.otc.t-systems.com", errs)
	if cloudOK && regionOK && (p.ModelArtsEndpoint == "" || p.IAMEndpoint == "") {
		if e, ok := defaultEndpoints(p.Cloud, p.Region); !ok {
			errs.addf("%s.region: %q is not an Open Telekom Cloud region with known endpoints (%s); for another region set both modelarts_endpoint and iam_endpoint", path, p.Region, knownOTCRegions())
		} else {
			if p.ModelArtsEndpoint == "" {
				p.ModelArtsEndpoint = e.modelArts
			}
			if p.IAMEndpoint == "" {
				p.IAMEndpoint = e.iam
			}
		}
	}

	firstAt := map[string]int{}
	for i, id := range p.Images {
		if !uuidRE.MatchString(id) {
			errs.addf("%s.images[%d]: %q is not an image ID; image IDs are UUIDs like 0f3c8a2e-5b7d-4e1a-9c6f-2d8b4a1e7c93", path, i, id)
			continue
		}
		id = strings.ToLower(id)
		p.Images[i] = id
		if j, dup := firstAt[id]; dup {
			errs.addf("%s.images[%d]: %s is already listed as images[%d]; remove one of the two", path, i, id, j)
			continue
		}
		firstAt[id] = i
	}

	if d := p.Discovery; d != nil {
		d.Type = checkEnum(d.Type, discoveryTypes, path+".discovery.type", "an image type", "both", errs)
		d.ServiceType = checkEnum(d.ServiceType, serviceTypes, path+".discovery.service_type", "a service type", "all", errs)
	} else if len(p.Images) == 0 {
		errs.addf("%s: nothing to export; list image IDs under images, or add \"discovery: {}\" to export every image of the project", path)
	}

	if math.IsNaN(p.RateLimit) || math.IsInf(p.RateLimit, 0) || p.RateLimit < 0 {
		errs.addf("%s.rate_limit: %v is not allowed; use 0 for no limit, or the number of API requests per second", path, p.RateLimit)
	}
	if p.RateBurst < 0 {
		errs.addf("%s.rate_burst: %d is negative; use 0 (meaning 1) or more", path, p.RateBurst)
	} else if p.RateBurst == 0 && p.RateLimit > 0 {
		p.RateBurst = 1
	}

	p.TLSConfig.SetDirectory(baseDir)
	if u := p.ProxyURL.URL; u != nil {
		if (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") || u.Host == "" {
			errs.addf(`%s.proxy_url: %q is not a proxy URL; write it like "http://proxy.example.com:3128" (http, https or socks5)`, path, p.ProxyURL.Redacted())
		}
	}
}

// finish checks the credentials, reads the secret files (keeping their absolute
// paths) or the environment. It returns the way of authenticating that needs a
// project_id ("access_key authentication", "credentials_from: ..."), or "" for
// password authentication and for credentials found wrong.
func (a *AuthConfig) finish(path, baseDir string, env lookupEnv, errs *errorList) string {
	type secret struct {
		name, fileName string
		value          *commonconfig.Secret
		file           *string
	}
	secrets := []secret{
		{"secret_key", "secret_key_file", &a.SecretKey, &a.SecretKeyFile},
		{"security_token", "security_token_file", &a.SecurityToken, &a.SecurityTokenFile},
		{"password", "password_file", &a.Password, &a.PasswordFile},
	}
	for _, s := range secrets {
		if *s.value != "" && *s.file != "" {
			errs.addf("%s: %s and %s are both set; keep only one of them", path, s.name, s.fileName)
		}
	}

	var akFields, pwFields, missing []string
	set := func(list *[]string, name string, ok bool) {
		if ok {
			*list = append(*list, name)
		}
	}
	set(&akFields, "access_key", a.AccessKey != "")
	set(&akFields, "secret_key", a.SecretKey != "")
	set(&akFields, "secret_key_file", a.SecretKeyFile != "")
	set(&pwFields, "domain_name", a.DomainName != "")
	set(&pwFields, "username", a.Username != "")
	set(&pwFields, "password", a.Password != "")
	set(&pwFields, "password_file", a.PasswordFile != "")
	token := "security_token"
	if a.SecurityTokenFile != "" {
		token = "security_token_file"
	}
	hasToken := a.SecurityToken != "" || a.SecurityTokenFile != ""

	if a.CredentialsFrom != "" {
		set(&akFields, token, hasToken)
		return a.finishFrom(path, append(akFields, pwFields...), env, errs)
	}
	if a.MetadataEndpoint != "" {
		errs.addf("%s.metadata_endpoint: only used with credentials_from: %s; remove it", path, CredentialsFromECSMetadata)
	}
	kind := ""
	switch {
	case len(akFields) > 0 && len(pwFields) > 0:
		errs.addf("%s: set either the access key fields (%s) or the password fields (%s), not both",
			path, strings.Join(akFields, ", "), strings.Join(pwFields, ", "))
		return ""
	case len(akFields) == 0 && len(pwFields) == 0 && !hasToken:
		errs.addf("%s: no credentials; set access_key and secret_key (or secret_key_file), or domain_name, username and password (or password_file), or credentials_from (%s or %s)",
			path, CredentialsFromECSMetadata, CredentialsFromEnvironment)
		return ""
	case len(pwFields) > 0:
		if hasToken {
			errs.addf("%s.%s: only used with access key authentication (temporary AK/SK); remove it", path, token)
		}
		set(&missing, "domain_name", a.DomainName == "")
		set(&missing, "username", a.Username == "")
		set(&missing, "password", a.Password == "" && a.PasswordFile == "")
		if len(missing) > 0 {
			errs.addf("%s: password authentication needs domain_name, username and password (or password_file); missing: %s", path, strings.Join(missing, ", "))
		}
	default:
		set(&missing, "access_key", a.AccessKey == "")
		set(&missing, "secret_key", a.SecretKey == "" && a.SecretKeyFile == "")
		if len(missing) > 0 {
			errs.addf("%s: access key authentication needs access_key and secret_key (or secret_key_file); missing: %s", path, strings.Join(missing, ", "))
		}
		kind = "access_key authentication"
	}

	for _, s := range secrets {
		if *s.file == "" || *s.value != "" {
			continue
		}
		file := commonconfig.JoinDir(baseDir, *s.file)
		v, err := readSecretFile(file, !filepath.IsAbs(*s.file))
		if err != nil {
			errs.addf("%s.%s: %w", path, s.fileName, err)
			continue
		}
		*s.value = commonconfig.Secret(v)
		if abs, err := filepath.Abs(file); err == nil {
			*s.file = abs // the client reads it again when it changes
		}
	}
	return kind
}

// finishFrom checks credentials_from, given the other credential fields set,
// and fills in the credentials of the environment.
func (a *AuthConfig) finishFrom(path string, others []string, env lookupEnv, errs *errorList) string {
	from := strings.ToLower(a.CredentialsFrom)
	if from != CredentialsFromECSMetadata && from != CredentialsFromEnvironment {
		errs.addf("%s.credentials_from: unknown source %q; use %q (the temporary keys of the ECS or CCE node's agency) or %q (%s and %s)",
			path, a.CredentialsFrom, CredentialsFromECSMetadata, CredentialsFromEnvironment, envAccessKey, envSecretKey)
		return ""
	}
	a.CredentialsFrom = from
	if len(others) > 0 {
		errs.addf("%s: set either credentials_from or the credential fields (%s), not both", path, strings.Join(others, ", "))
		return ""
	}
	if from == CredentialsFromECSMetadata {
		a.MetadataEndpoint = checkEndpoint(a.MetadataEndpoint, path+".metadata_endpoint", DefaultMetadataEndpoint, errs)
		if a.MetadataEndpoint == "" {
			a.MetadataEndpoint = DefaultMetadataEndpoint
		}
		return "credentials_from: " + from
	}
	if a.MetadataEndpoint != "" {
		errs.addf("%s.metadata_endpoint: only used with credentials_from: %s; remove it", path, CredentialsFromECSMetadata)
	}
	var missing []string
	get := func(name string) string {
		v, ok := env(name)
		if !ok || v == "" {
			missing = append(missing, name)
		}
		return v
	}
	a.AccessKey, a.SecretKey = get(envAccessKey), commonconfig.Secret(get(envSecretKey))
	if v, ok := env(envSecurityToken); ok {
		a.SecurityToken = commonconfig.Secret(v)
	}
	if len(missing) > 0 {
		errs.addf("%s: credentials_from: %s needs the environment variables %s and %s; not set: %s",
			path, from, envAccessKey, envSecretKey, strings.Join(missing, ", "))
		return ""
	}
	return "credentials_from: " + from
}

// readSecretFile reads one secret, without its trailing white space.
func readSecretFile(path string, relative bool) (string, error) {
	hint := ""
	if relative {
		hint = " (a relative path starts from the configuration file's directory)"
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w%s", path, osError(err), hint)
	}
	defer func() { _ = f.Close() }() // read only: nothing to lose
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w%s", path, osError(err), hint)
	}
	if len(b) > maxSecretFileSize {
		return "", fmt.Errorf("%q is larger than %d bytes; it must hold the secret only", path, maxSecretFileSize)
	}
	s := strings.TrimRightFunc(string(b), unicode.IsSpace)
	if s == "" {
		return "", fmt.Errorf("%q is empty; write the secret into it", path)
	}
	return s, nil
}

// osError strips the operation and path of a *fs.PathError, which the message already names.
func osError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkEndpoint checks an endpoint override and returns it without trailing slashes.
func checkEndpoint(s, path, example string, errs *errorList) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	switch {
	case err == nil && u.User != nil:
		errs.addf("%s: must not contain a user name or password; credentials belong under auth", path)
	case err != nil && strings.Contains(s, "@"):
		// The value may hold a password: do not repeat it.
		errs.addf("%s: not a valid URL (value not shown, it may contain credentials); write it like %q, or leave it out to use the default", path, example)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		errs.addf("%s: %q is not an absolute http:// or https:// URL; write it like %q, or leave it out to use the default", path, s, example)
	case u.RawQuery != "" || u.ForceQuery:
		errs.addf("%s: %q must not have a query (\"?...\"); remove it", path, s)
	case u.Fragment != "":
		errs.addf("%s: %q must not have a fragment (\"#...\"); remove it", path, s)
	default:
		return strings.TrimRight(s, "/")
	}
	return s
}

// checkEnum normalises an optional enumerated value to upper case and checks it.
func checkEnum(v string, valid []string, path, what, emptyMeans string, errs *errorList) string {
	if v == "" {
		return ""
	}
	up := strings.ToUpper(v)
	for _, ok := range valid {
		if up == ok {
			return up
		}
	}
	errs.addf("%s: %q is not %s; use one of %s, or leave it out for %s", path, v, what, strings.Join(valid, ", "), emptyMeans)
	return v
}
