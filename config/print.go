// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package config

import (
	"fmt"
	"net/url"
	"strings"

	commonconfig "github.com/prometheus/common/config"
)

// Printing secrets: commonconfig.Secret marshals to YAML and JSON as "<secret>", but
// it is a plain string to fmt, so %v of a Config would show every key. AuthConfig
// and ProjectConfig therefore implement fmt.Formatter and print a copy with the
// secrets replaced by "<secret>" (and a proxy password by "xxxxx", as
// commonconfig.URL.Redacted does). This covers Config, *Config, []ProjectConfig
// and so on, for every verb. A Secret printed on its own, such as
// fmt.Sprint(cfg.Projects[0].Auth.SecretKey), is still its value: use it only
// where the value is needed.

const redacted = "<secret>"

func redact(s commonconfig.Secret) commonconfig.Secret {
	if s == "" {
		return ""
	}
	return redacted
}

// Aliases, so the method-less copies declared in Format keep the types' names in %#v.
type (
	authConfig    = AuthConfig
	projectConfig = ProjectConfig
)

// Format implements fmt.Formatter: the secrets print as "<secret>".
func (a AuthConfig) Format(f fmt.State, verb rune) {
	type AuthConfig authConfig // same fields, no Format method
	c := AuthConfig(a)
	c.SecretKey = redact(c.SecretKey)
	c.SecurityToken = redact(c.SecurityToken)
	c.Password = redact(c.Password)
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), c) // Format cannot report errors
}

// Format implements fmt.Formatter: the secrets print as "<secret>", a proxy
// password as "xxxxx".
func (p ProjectConfig) Format(f fmt.State, verb rune) {
	type ProjectConfig projectConfig // same fields, no Format method
	c := ProjectConfig(p)
	c.TLSConfig.Key = redact(c.TLSConfig.Key)
	switch u := c.ProxyURL.URL; {
	case u == nil:
		// URL's String, promoted from *url.URL, would dereference nil.
		c.ProxyURL = commonconfig.URL{URL: &url.URL{}}
	case u.User != nil:
		if _, ok := u.User.Password(); ok {
			r := *u
			r.User = url.UserPassword(u.User.Username(), "xxxxx")
			c.ProxyURL = commonconfig.URL{URL: &r}
		}
	}
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), c) // Format cannot report errors
}

// Summary describes the configuration for people, as printed by --config.check:
// per project its cloud, region, endpoints, where the credentials come from (the
// access key ID is shown, secrets never are), images and discovery; then the global settings.
func (c *Config) Summary() string {
	var b strings.Builder
	line := func(key, format string, args ...any) {
		fmt.Fprintf(&b, "  %-22s %s\n", key+":", fmt.Sprintf(format, args...))
	}
	plural := "s"
	if len(c.Projects) == 1 {
		plural = ""
	}
	fmt.Fprintf(&b, "%d project%s\n", len(c.Projects), plural)
	for _, p := range c.Projects {
		fmt.Fprintf(&b, "project %q\n", p.Name)
		line("cloud", "%s", p.Cloud)
		line("region", "%s", p.Region)
		if p.ProjectID != "" {
			line("project_id", "%s", p.ProjectID)
		} else {
			line("project_id", "(from the IAM token)")
		}
		line("modelarts_endpoint", "%s", p.ModelArtsEndpoint)
		line("iam_endpoint", "%s", p.IAMEndpoint)
		line("credentials", "%s", p.Auth.summary())
		line("images", "%d", len(p.Images))
		if d := p.Discovery; d != nil {
			var filters []string
			for _, kv := range [][2]string{
				{"type", d.Type}, {"namespace", d.Namespace}, {"name", d.Name},
				{"service_type", d.ServiceType}, {"workspace_id", d.WorkspaceID},
			} {
				if kv[1] != "" {
					filters = append(filters, fmt.Sprintf("%s=%q", kv[0], kv[1]))
				}
			}
			if len(filters) == 0 {
				line("discovery", "on (every image)")
			} else {
				line("discovery", "on (%s)", strings.Join(filters, ", "))
			}
		} else {
			line("discovery", "off")
		}
		if p.RateLimit > 0 {
			line("rate_limit", "%g requests/s, burst %d", p.RateLimit, p.RateBurst)
		} else {
			line("rate_limit", "none")
		}
		if p.ProxyURL.URL != nil {
			line("proxy_url", "%s", p.ProxyURL.Redacted())
		}
		if t := tlsSummary(p.TLSConfig); t != "" {
			line("tls_config", "%s", t)
		}
	}
	g := c.Global
	fmt.Fprintf(&b, "global\n")
	line("scrape_timeout", "%s", g.ScrapeTimeout)
	line("concurrency", "%d", g.Concurrency)
	line("min_refresh_interval", "%s", g.MinRefreshInterval)
	line("serve_stale_for", "%s", g.ServeStaleFor)
	return b.String()
}

// summary words where the credentials come from; it never shows a secret.
func (a AuthConfig) summary() string {
	source := func(s commonconfig.Secret, file string) string {
		if file != "" {
			return "from " + file + " (re-read when it changes)"
		}
		return "inline"
	}
	switch {
	case a.CredentialsFrom == CredentialsFromECSMetadata:
		return fmt.Sprintf("ECS metadata service %s (temporary keys, refreshed before expiry)", a.MetadataEndpoint)
	case a.CredentialsFrom == CredentialsFromEnvironment:
		vars := envAccessKey + ", " + envSecretKey
		if a.SecurityToken != "" {
			vars += ", " + envSecurityToken
		}
		return fmt.Sprintf("environment (%s), access key %s", vars, a.AccessKey)
	case a.AccessKey != "" && a.SecretKeyFile == "" && a.SecurityTokenFile == "":
		s := "AK/SK inline, access key " + a.AccessKey
		if a.SecurityToken != "" {
			s += ", with a security token"
		}
		return s
	case a.AccessKey != "":
		s := fmt.Sprintf("AK/SK, access key %s, secret key %s", a.AccessKey, source(a.SecretKey, a.SecretKeyFile))
		if a.SecurityToken != "" {
			s += ", security token " + source(a.SecurityToken, a.SecurityTokenFile)
		}
		return s
	}
	pw := "password inline"
	if a.PasswordFile != "" {
		pw = "password_file " + a.PasswordFile + ", re-read when it changes"
	}
	return fmt.Sprintf("IAM password of user %q in domain %q (%s)", a.Username, a.DomainName, pw)
}

// tlsSummary lists what a tls_config sets, without the inline certificates and key.
func tlsSummary(t commonconfig.TLSConfig) string {
	var parts []string
	add := func(name, inline, file, ref string) {
		switch {
		case file != "":
			parts = append(parts, fmt.Sprintf("%s_file %q", name, file))
		case ref != "":
			parts = append(parts, fmt.Sprintf("%s_ref %q", name, ref))
		case inline != "":
			parts = append(parts, name+" inline")
		}
	}
	add("ca", t.CA, t.CAFile, t.CARef)
	add("cert", t.Cert, t.CertFile, t.CertRef)
	add("key", string(t.Key), t.KeyFile, t.KeyRef)
	if t.ServerName != "" {
		parts = append(parts, fmt.Sprintf("server_name %q", t.ServerName))
	}
	if t.MinVersion != 0 {
		parts = append(parts, "min_version "+t.MinVersion.String())
	}
	if t.MaxVersion != 0 {
		parts = append(parts, "max_version "+t.MaxVersion.String())
	}
	if t.InsecureSkipVerify {
		parts = append(parts, "certificate verification DISABLED (insecure_skip_verify)")
	}
	return strings.Join(parts, ", ")
}
