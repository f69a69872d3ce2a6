// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	commonconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// yamlErrorRE splits an entry of a *yaml.TypeError: its line, then an unknown field and
// its Go type, a key set twice and its first line, or another problem.
var yamlErrorRE = regexp.MustCompile(`^line (\d+): (?:field (.+) not found in type (\S+)|mapping key (".*") already defined at line (\d+)|(.*))$`)

// decode reads one YAML document strictly into a Config with the defaults, each
// problem with its line and field path. It also returns the secrets as written.
func decode(data []byte) (*Config, []string, []error) {
	cfg := &Config{Global: DefaultGlobalConfig}
	root, err := parseOne(data)
	if err != nil {
		return cfg, nil, []error{err}
	}
	t := &tree{paths: map[int]string{}}
	t.walk(root, "")
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err = dec.Decode(cfg)
	var te *yaml.TypeError
	var errs []error
	switch {
	case errors.As(err, &te):
		for i, msg := range te.Errors {
			if !slices.Contains(te.Errors[:i], msg) { // a merged mapping repeats its errors
				errs = append(errs, t.explain(msg))
			}
		}
	case err != nil:
		if errs = t.selfChecks(); len(errs) == 0 {
			errs = []error{fmt.Errorf("invalid configuration: %s", yamlText(err))}
		}
	}
	return cfg, t.secrets, errs
}

// parseOne returns the root of the only document in data.
func parseOne(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc, next yaml.Node
	err := dec.Decode(&doc)
	if err == nil {
		if err = dec.Decode(&next); err == nil {
			return nil, fmt.Errorf(`line %d: a second YAML document starts here; the configuration must be one document, remove the "---" separator and merge the two`, next.Line)
		}
	}
	switch {
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("invalid YAML: %s", yamlText(err))
	case len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null":
		return nil, errors.New(`configuration is empty; it needs at least a "projects" list`)
	case doc.Content[0].Kind != yaml.MappingNode:
		return nil, fmt.Errorf(`line %d: the configuration must be a mapping with "global" and "projects" keys`, doc.Content[0].Line)
	}
	return doc.Content[0], nil
}

// tree is what decode learns from the node tree: the field path of each line,
// the secrets as written, and the values yaml.v3 would report without a line.
type tree struct {
	paths   map[int]string
	secrets []string
	checked []checked
}

// checked is a value that yaml.v3 reports without a line (and stops at) when it
// fails: one whose type has UnmarshalYAML, or a tag it does not fit.
type checked struct {
	node *yaml.Node
	path string
	into any
}

func (t *tree) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := strings.TrimPrefix(path+"."+k.Value, ".")
			t.at(k.Line, p)
			switch k.Value {
			case "secret_key", "security_token", "password", "key":
				t.secrets = appendScalars(t.secrets, v, map[*yaml.Node]bool{})
			case "proxy_url":
				for _, s := range appendScalars(nil, v, map[*yaml.Node]bool{}) {
					t.secrets = append(t.secrets, urlPassword(s))
				}
				t.checked = append(t.checked, checked{v, p, new(commonconfig.URL)})
			case "tls_config":
				t.checked = append(t.checked, checked{v, p, new(commonconfig.TLSConfig)})
			case "scrape_timeout", "min_refresh_interval", "serve_stale_for":
				t.checked = append(t.checked, checked{v, p, new(model.Duration)})
			}
			t.walk(v, p)
		}
	case yaml.ScalarNode:
		if n.Style&yaml.TaggedStyle != 0 {
			t.checked = append(t.checked, checked{n, path, new(any)})
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if path == "projects" {
				p = projectPath(i, nameOf(c))
			}
			t.walk(c, p)
			t.at(c.Line, p) // after its fields: a field on the element's first line is more precise
		}
	}
}

func (t *tree) at(line int, path string) {
	if _, ok := t.paths[line]; !ok {
		t.paths[line] = path
	}
}

// explain words one of yaml.v3's "line N: ..." entries with the field path.
func (t *tree) explain(msg string) error {
	m := yamlErrorRE.FindStringSubmatch(msg)
	if m == nil {
		return errors.New(msg)
	}
	line, _ := strconv.Atoi(m[1])
	path := t.paths[line]
	switch {
	case m[2] != "":
		where := "at the top level"
		if in := strings.TrimSuffix(path, "."+m[2]); in != m[2] && in != "" {
			where = "in " + in
		}
		return fmt.Errorf("line %d: unknown field %q %s (valid fields: %s)", line, m[2], where, validFields(m[3]))
	case path == "":
		return errors.New(msg)
	case m[4] != "":
		return fmt.Errorf("line %d: %s: %s is set twice (first at line %s); keep one", line, path, m[4], m[5])
	}
	return fmt.Errorf("line %d: %s: %s", line, path, m[6])
}

// selfChecks decodes each checked value alone, to find which failed and where.
func (t *tree) selfChecks() []error {
	var errs []error
	for _, c := range t.checked {
		err := c.node.Decode(c.into)
		var te *yaml.TypeError
		var urlErr *url.Error
		switch {
		case err == nil || errors.As(err, &te): // the strict decode reports type errors
			continue
		case errors.As(err, &urlErr):
			err = fmt.Errorf("not a valid URL: %w", urlErr.Err) // not the URL, which may hold a password
		}
		errs = append(errs, fmt.Errorf("line %d: %s: %s", c.node.Line, c.path, yamlText(err)))
	}
	return errs
}

// validFields lists the keys of a type as yaml.v3 names it (tls_config's is "plain").
func validFields(typeName string) string {
	var names []string
	for _, v := range []any{Config{}, GlobalConfig{}, ProjectConfig{}, AuthConfig{}, DiscoveryConfig{}, commonconfig.TLSConfig{}} {
		if t := reflect.TypeOf(v); t.String() == strings.Replace(typeName, "config.plain", "config.TLSConfig", 1) {
			for i := range t.NumField() {
				if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
					names = append(names, name)
				}
			}
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// appendScalars appends the values and keys of n and below, each node once (&a [*a] loops).
func appendScalars(values []string, n *yaml.Node, seen map[*yaml.Node]bool) []string {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if seen[n] {
		return values
	}
	seen[n] = true
	if n.Kind == yaml.ScalarNode {
		return append(values, n.Value)
	}
	for _, c := range n.Content {
		values = appendScalars(values, c, seen)
	}
	return values
}

// nameOf returns the name in a project's node, "" if it has none yet.
func nameOf(n *yaml.Node) string {
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Value == "name" && v.Kind == yaml.ScalarNode {
			return v.Value
		}
	}
	return ""
}

func yamlText(err error) string { return strings.TrimPrefix(err.Error(), "yaml: ") }
