// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package config

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"

	commonconfig "github.com/prometheus/common/config"
)

const (
	cloudOTC, cloudHuaweiCloud       = "otc", "huaweicloud"
	fromECSMetadata, fromEnvironment = "ecs_metadata", "environment" // credentials_from
	defaultMetadataEndpoint          = "http://169.254.169.254"
	// as huaweicloud-sdk-go-v3 core/auth/provider/env_provider.go reads them
	envAccessKey, envSecretKey     = "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"
	envSecurityToken, envProjectID = "HUAWEICLOUD_SDK_SECURITY_TOKEN", "HUAWEICLOUD_SDK_PROJECT_ID"
	maxSecretFileSize              = 64 << 10 // a secret is a line, not a log
)

var (
	// projectNameRE: the name becomes a label value and appears in logs and URLs.
	projectNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	// regionRE: a region is part of the default endpoints' host names.
	regionRE    = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	projectIDRE = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
	uuidRE      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// errorList collects the problems of one file.
type errorList []error

func (l *errorList) addf(format string, args ...any) { *l = append(*l, fmt.Errorf(format, args...)) }

// addIf adds the message if bad, and returns bad.
func (l *errorList) addIf(bad bool, format string, args ...any) bool {
	if bad {
		l.addf(format, args...)
	}
	return bad
}

// projectPath names a project in messages: `projects[1] "prod"`, or `projects[1]`
// (no other name quotes to a string ending in ` ""`).
func projectPath(i int, name string) string {
	return strings.TrimSuffix(fmt.Sprintf("projects[%d] %q", i, name), ` ""`)
}

// finish validates a decoded configuration, completes it (normalised names,
// secrets, endpoints) and returns every problem found.
func (c *Config) finish(baseDir string) []error {
	var errs errorList
	g, d := c.Global, DefaultGlobalConfig
	errs.addIf(g.Concurrency < 1 || g.Concurrency > 256, "global.concurrency: %d is out of range; use 1 to 256 (default %d)", g.Concurrency, d.Concurrency)
	errs.addIf(g.ScrapeTimeout <= 0, "global.scrape_timeout: %s must be greater than 0s; use e.g. %s (the default)", g.ScrapeTimeout, d.ScrapeTimeout)
	errs.addIf(g.MinRefreshInterval < 0, "global.min_refresh_interval: must not be negative; use 0s to refresh on every scrape")
	errs.addIf(g.ServeStaleFor < 0, "global.serve_stale_for: must not be negative; use 0s to never serve stale values")
	errs.addIf(len(c.Projects) == 0, "projects: no project configured; add at least one entry under projects")
	for i := range c.Projects {
		p := &c.Projects[i]
		path := projectPath(i, p.Name)
		if !errs.addIf(p.Name == "", `%s.name: required; give every project a unique name (it is the value of the "project" label)`, path) &&
			!errs.addIf(!projectNameRE.MatchString(p.Name),
				"%s.name: %q is not a safe label value; use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", path, p.Name) {
			j := slices.IndexFunc(c.Projects[:i], func(q ProjectConfig) bool { return q.Name == p.Name })
			errs.addIf(j >= 0, "%s.name: %q is already the name of projects[%d]; project names must be unique", path, p.Name, j)
		}
		p.finish(path, baseDir, &errs)
	}
	checkSharedCredentials(c.Projects, &errs)
	return errs
}

// checkSharedCredentials refuses projects that give one access key, or one IAM
// user, different secrets: one of them is wrong, and as the client pauses a
// refused access key or user (not a pair), the wrong one would be retried at
// every scrape.
func checkSharedCredentials(projects []ProjectConfig, errs *errorList) {
	// uses are a project's access key and IAM user, each with its secret ("" if none).
	uses := func(p ProjectConfig) [2]struct{ what, secret string } {
		return [2]struct{ what, secret string }{
			{"access key " + p.Auth.AccessKey + " with another secret key", string(p.Auth.SecretKey)},
			{"IAM user " + p.Auth.DomainName + "/" + p.Auth.Username + " of " + p.IAMEndpoint + " with another password", string(p.Auth.Password)},
		}
	}
	for i, p := range projects {
		for k, u := range uses(p) {
			j := slices.IndexFunc(projects[:i], func(q ProjectConfig) bool { v := uses(q)[k]; return v.what == u.what && v.secret != "" })
			errs.addIf(j >= 0 && u.secret != "" && u.secret != uses(projects[j])[k].secret,
				"%s.auth: uses %s than projects[%d]; one of them is wrong: give both the same", projectPath(i, p.Name), u.what, j)
		}
	}
}

func (p *ProjectConfig) finish(path, baseDir string, errs *errorList) {
	p.finishPlace(path, errs)
	p.finishProjectID(path, p.Auth.finish(path+".auth", baseDir, errs), errs)
	p.checkImages(path, errs)
	errs.addIf(math.IsNaN(p.RateLimit) || math.IsInf(p.RateLimit, 0) || p.RateLimit < 0,
		"%s.rate_limit: %v is not allowed; use 0 for no limit, or the number of API requests per second", path, p.RateLimit)
	if !errs.addIf(p.RateBurst < 0, "%s.rate_burst: %d is negative; use 0 (meaning 1) or more", path, p.RateBurst) && p.RateBurst == 0 && p.RateLimit > 0 {
		p.RateBurst = 1
	}
	p.TLSConfig.SetDirectory(baseDir)
	u := p.ProxyURL.URL
	errs.addIf(u != nil && (!slices.Contains([]string{"http", "https", "socks5"}, u.Scheme) || u.Host == ""),
		`%s.proxy_url: %q is not a proxy URL; write it like "http://proxy.example.com:3128" (http, https or socks5)`, path, p.ProxyURL.Redacted())
}

// finishPlace checks the cloud, region and endpoints and fills in the endpoints.
func (p *ProjectConfig) finishPlace(path string, errs *errorList) {
	cloud := strings.ToLower(cmp.Or(p.Cloud, cloudOTC))
	ok := !errs.addIf(cloud != cloudOTC && cloud != cloudHuaweiCloud, `%s.cloud: unknown cloud %q; use "otc" (Open Telekom Cloud, the default) or "huaweicloud"`, path, p.Cloud)
	ok = !errs.addIf(p.Region == "", `%s.region: required; set the region of the project, e.g. "eu-de"`, path) &&
		!errs.addIf(!regionRE.MatchString(p.Region), `%s.region: %q is not a region name; use lowercase letters, digits and '-', e.g. "eu-de"`, path, p.Region) && ok
	p.Cloud = cloud
	p.ModelArtsEndpoint = checkEndpoint(p.ModelArtsEndpoint, path+".modelarts_endpoint", "https://modelarts.eu-de.otc.t-systems.com", errs)
	p.IAMEndpoint = checkEndpoint(p.IAMEndpoint, path+".iam_endpoint", "https://iam.eu-de.otc.t-systems.com", errs)
	e, known := otcRegions[p.Region]
	if p.Cloud == cloudHuaweiCloud {
		e, known = endpoints{cmp.Or(huaweiModelArts[p.Region], "https://modelarts."+p.Region+".myhuaweicloud.com"), "https://iam." + p.Region + ".myhuaweicloud.com"}, true
	}
	if ok && (p.ModelArtsEndpoint == "" || p.IAMEndpoint == "") && // a valid place and an endpoint to fill in
		!errs.addIf(!known, "%s.region: %q is not an Open Telekom Cloud region with known endpoints (%s); for another region set both modelarts_endpoint and iam_endpoint",
			path, p.Region, strings.Join(slices.Sorted(maps.Keys(otcRegions)), ", ")) {
		p.ModelArtsEndpoint, p.IAMEndpoint = cmp.Or(p.ModelArtsEndpoint, e.modelArts), cmp.Or(p.IAMEndpoint, e.iam)
	}
}

// endpoints are the ModelArts and IAM endpoints of one region.
type endpoints struct{ modelArts, iam string }

// otcRegions are the Open Telekom Cloud regions with known endpoints; Swiss
// Cloud (eu-ch2) has its own domain and IAM "iam-pub".
var otcRegions = map[string]endpoints{
	"eu-de":  {"https://modelarts.eu-de.otc.t-systems.com", "https://iam.eu-de.otc.t-systems.com"},
	"eu-nl":  {"https://modelarts.eu-nl.otc.t-systems.com", "https://iam.eu-nl.otc.t-systems.com"},
	"eu-ch2": {"https://modelarts.eu-ch2.sc.otc.t-systems.com", "https://iam-pub.eu-ch2.sc.otc.t-systems.com"},
}

// huaweiModelArts are the Huawei Cloud regions whose ModelArts endpoint is not
// https://modelarts.{region}.myhuaweicloud.com, from huaweicloud-sdk-python-v3
// huaweicloud-sdk-modelarts/huaweicloudsdkmodelarts/v1/region/modelarts_region.py
// (commit fa0251239c0dd7a6eecae9eb592441e2e304eafc); regions not there, newer
// ones included, get the pattern. IAM has no exceptions (iam_region.py).
var huaweiModelArts = map[string]string{
	"ap-southeast-1": "https://modelarts.ap-southeast-1.myhuaweicloud.cn",
}

// finishProjectID checks project_id, taken from the environment for
// credentials_from: environment; kind is the authentication that needs one.
func (p *ProjectConfig) finishProjectID(path, kind string, errs *errorList) {
	from, orSet := "", "" // where the ID came from, or where it could
	if p.ProjectID == "" && p.Auth.CredentialsFrom == fromEnvironment {
		p.ProjectID = os.Getenv(envProjectID)
		from, orSet = " (from "+envProjectID+")", ", or set "+envProjectID
	}
	if p.ProjectID == "" {
		errs.addIf(kind != "", "%s.project_id: required with %s; copy the ID of the project from the console: My Credentials → Projects%s", path, kind, orSet)
	} else if !errs.addIf(!projectIDRE.MatchString(p.ProjectID),
		"%s.project_id: %q%s is not a project ID; it is 32 hexadecimal characters, shown in the console under My Credentials → Projects", path, p.ProjectID, from) {
		p.ProjectID = strings.ToLower(p.ProjectID)
	}
}

// checkImages lowercases the image IDs and checks them and the discovery filters.
func (p *ProjectConfig) checkImages(path string, errs *errorList) {
	for i, id := range p.Images {
		if !errs.addIf(!uuidRE.MatchString(id), "%s.images[%d]: %q is not an image ID; image IDs are UUIDs like 0f3c8a2e-5b7d-4e1a-9c6f-2d8b4a1e7c93", path, i, id) {
			p.Images[i] = strings.ToLower(id) // no earlier ID left as written is a UUID
			j := slices.Index(p.Images[:i], p.Images[i])
			errs.addIf(j >= 0, "%s.images[%d]: %s is already listed as images[%d]; remove one of the two", path, i, p.Images[i], j)
		}
	}
	if d := p.Discovery; d != nil {
		d.Type = checkEnum(d.Type, []string{"BUILD_IN", "DEDICATED"}, path+".discovery.type", "an image type", "both", errs)
		d.ServiceType = checkEnum(d.ServiceType, []string{"COMMON", "INFERENCE", "TRAIN", "DEV", "UNKNOWN"}, path+".discovery.service_type", "a service type", "all", errs)
	}
	errs.addIf(p.Discovery == nil && len(p.Images) == 0, "%s: nothing to export; list image IDs under images, or add \"discovery: {}\" to export every image of the project", path)
}

// finish checks the credentials and reads the secret files or the environment.
// It returns the authentication that needs a project_id, or "" (a password or wrong credentials).
func (a *AuthConfig) finish(path, baseDir string, errs *errorList) string {
	for _, s := range a.secretFields() {
		errs.addIf(*s.value != "" && *s.file != "", "%s: %s and %s_file are both set; keep only one of them", path, s.name, s.name)
	}
	errs.addIf(a.MetadataEndpoint != "" && !strings.EqualFold(a.CredentialsFrom, fromECSMetadata),
		"%s.metadata_endpoint: only used with credentials_from: %s; remove it", path, fromECSMetadata)
	ak := names(flag{a.AccessKey != "", "access_key"}, flag{a.SecretKey != "", "secret_key"}, flag{a.SecretKeyFile != "", "secret_key_file"})
	pw := names(flag{a.DomainName != "", "domain_name"}, flag{a.Username != "", "username"}, flag{a.Password != "", "password"}, flag{a.PasswordFile != "", "password_file"})
	token := names(flag{a.SecurityToken != "" && a.SecurityTokenFile == "", "security_token"}, flag{a.SecurityTokenFile != "", "security_token_file"})
	if a.CredentialsFrom != "" {
		return a.finishFrom(path, names(flag{ak != "", ak}, flag{token != "", token}, flag{pw != "", pw}), errs)
	}
	if errs.addIf(ak != "" && pw != "", "%s: set either the access key fields (%s) or the password fields (%s), not both", path, ak, pw) ||
		errs.addIf(ak+pw+token == "",
			"%s: no credentials; set access_key and secret_key (or secret_key_file), or domain_name, username and password (or password_file), or credentials_from (%s or %s)",
			path, fromECSMetadata, fromEnvironment) {
		return ""
	}
	kind, needs := "access_key authentication", "access key authentication needs access_key and secret_key (or secret_key_file)"
	missing := names(flag{a.AccessKey == "", "access_key"}, flag{a.SecretKey == "" && a.SecretKeyFile == "", "secret_key"})
	if pw != "" {
		// token names one field at most: security_token counts only without security_token_file.
		errs.addIf(token != "", "%s.%s: only used with access key authentication (temporary AK/SK); remove it", path, token)
		kind, needs = "", "password authentication needs domain_name, username and password (or password_file)"
		missing = names(flag{a.DomainName == "", "domain_name"}, flag{a.Username == "", "username"},
			flag{a.Password == "" && a.PasswordFile == "", "password"})
	}
	errs.addIf(missing != "", "%s: %s; missing: %s", path, needs, missing)
	a.readSecretFiles(path, baseDir, errs)
	return kind
}

// flag is a field name and whether a condition holds for it.
type flag struct {
	set  bool
	name string
}

// names lists the names of the flags set, for a message: "a, b".
func names(flags ...flag) string {
	var out []string
	for _, f := range flags {
		if f.set {
			out = append(out, f.name)
		}
	}
	return strings.Join(out, ", ")
}

// finishFrom checks credentials_from, given the other credential fields set,
// and reads the credentials of the environment.
func (a *AuthConfig) finishFrom(path, others string, errs *errorList) string {
	from := strings.ToLower(a.CredentialsFrom)
	if errs.addIf(from != fromECSMetadata && from != fromEnvironment,
		"%s.credentials_from: unknown source %q; use %q (the temporary keys of the ECS or CCE node's agency) or %q (%s and %s)",
		path, a.CredentialsFrom, fromECSMetadata, fromEnvironment, envAccessKey, envSecretKey) {
		return ""
	}
	a.CredentialsFrom = from // even when refusing the other fields below: finishProjectID reads it
	if errs.addIf(others != "", "%s: set either credentials_from or the credential fields (%s), not both", path, others) {
		return ""
	}
	if from == fromECSMetadata {
		a.MetadataEndpoint = cmp.Or(checkEndpoint(a.MetadataEndpoint, path+".metadata_endpoint", defaultMetadataEndpoint, errs), defaultMetadataEndpoint)
		return "credentials_from: " + from
	}
	a.AccessKey = os.Getenv(envAccessKey)
	a.SecretKey, a.SecurityToken = commonconfig.Secret(os.Getenv(envSecretKey)), commonconfig.Secret(os.Getenv(envSecurityToken))
	missing := names(flag{a.AccessKey == "", envAccessKey}, flag{a.SecretKey == "", envSecretKey})
	if errs.addIf(missing != "", "%s: credentials_from: %s needs the environment variables %s and %s; not set: %s", path, from, envAccessKey, envSecretKey, missing) {
		return ""
	}
	return "credentials_from: " + from
}

// secretField is a secret and the field naming the file it can be read from.
type secretField struct {
	name  string
	value *commonconfig.Secret
	file  *string
}

func (a *AuthConfig) secretFields() []secretField {
	return []secretField{
		{"secret_key", &a.SecretKey, &a.SecretKeyFile},
		{"security_token", &a.SecurityToken, &a.SecurityTokenFile},
		{"password", &a.Password, &a.PasswordFile},
	}
}

// readSecretFiles reads each secret given as a file, without trailing white
// space, and keeps the file's absolute path for the client to read it again.
func (a *AuthConfig) readSecretFiles(path, baseDir string, errs *errorList) {
	for _, s := range a.secretFields() {
		if *s.file == "" || *s.value != "" {
			continue
		}
		file := commonconfig.JoinDir(baseDir, *s.file)
		var b []byte
		f, err := os.Open(file)
		if err == nil {
			b, err = io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
			_ = f.Close() // read only: nothing to lose
		}
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err // the message names the file
		}
		v := strings.TrimRightFunc(string(b), unicode.IsSpace)
		switch {
		case err != nil && !filepath.IsAbs(*s.file):
			errs.addf("%s.%s_file: cannot read %q: %w (a relative path starts from the configuration file's directory)", path, s.name, file, err)
		case err != nil:
			errs.addf("%s.%s_file: cannot read %q: %w", path, s.name, file, err)
		case len(b) > maxSecretFileSize:
			errs.addf("%s.%s_file: %q is larger than %d bytes; it must hold the secret only", path, s.name, file, maxSecretFileSize)
		case v == "":
			errs.addf("%s.%s_file: %q is empty; write the secret into it", path, s.name, file)
		default:
			abs, _ := filepath.Abs(file) // "" only without a working directory: then keep the path as written
			*s.value, *s.file = commonconfig.Secret(v), cmp.Or(abs, *s.file)
		}
	}
}

// checkEndpoint checks an endpoint override and returns it without trailing slashes.
func checkEndpoint(s, path, example string, errs *errorList) string {
	u, err := url.Parse(s)
	switch {
	case s == "": // not set: the caller's default applies
	case err == nil && u.User != nil:
		errs.addf("%s: must not contain a user name or password; credentials belong under auth", path)
	case err != nil && strings.Contains(s, "@"): // the value may hold a password: not repeated
		errs.addf("%s: not a valid URL (value not shown, it may contain credentials); write it like %q, or leave it out to use the default", path, example)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		errs.addf("%s: %q is not an absolute http:// or https:// URL; write it like %q, or leave it out to use the default", path, s, example)
	case u.RawQuery != "" || u.ForceQuery:
		errs.addf("%s: %q must not have a query (\"?...\"); remove it", path, s)
	case u.Fragment != "" || strings.Contains(s, "#"): // an empty one too: the client appends paths
		errs.addf("%s: %q must not have a fragment (\"#...\"); remove it", path, s)
	default:
		return strings.TrimRight(s, "/")
	}
	return s
}

// checkEnum normalises an optional enumerated value to upper case and checks it.
func checkEnum(v string, valid []string, path, what, emptyMeans string, errs *errorList) string {
	up := strings.ToUpper(v)
	errs.addIf(v != "" && !slices.Contains(valid, up), "%s: %q is not %s; use one of %s, or leave it out for %s", path, v, what, strings.Join(valid, ", "), emptyMeans)
	return up
}
