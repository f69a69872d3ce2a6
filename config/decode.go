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
	"sort"
	"strconv"
	"strings"

	commonconfig "github.com/prometheus/common/config"
	"go.yaml.in/yaml/v3"
)

// errEmpty is returned for a file without a YAML document, or whose document is null.
var errEmpty = errors.New(`configuration is empty; it needs at least a "projects" list`)

// decode parses data as a single YAML document into a Config with DefaultGlobalConfig
// filled in. Unknown fields, type errors and duplicate keys are all reported, each as
// "line N: <field path>: <problem>".
//
// Two passes: a walk over the YAML node tree against the Go types gives the messages
// (field path, suggestion), and a strict yaml.v3 decode (KnownFields) is the authority
// on what is accepted. Errors the walk missed still come out of the strict decode, so
// strictness does not depend on the walk being complete.
func decode(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errEmpty
		}
		return nil, yamlSyntaxError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlSyntaxError(err)
	default:
		return nil, fmt.Errorf(`line %d: a second YAML document starts here; the configuration must be one document, remove the "---" separator and merge the two`, next.Line)
	}
	if len(doc.Content) == 0 {
		return nil, errEmpty
	}
	root := doc.Content[0]
	if root.ShortTag() == "!!null" {
		return nil, errEmpty
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf(`line %d: the configuration must be a mapping with "global" and "projects" keys, not %s`, root.Line, describeNode(root))
	}

	w := &walker{lines: map[int]bool{}, seen: map[visit]bool{}}
	w.walk(root, reflect.TypeFor[Config](), "")
	sort.SliceStable(w.errs, func(i, j int) bool { return w.errs[i].line < w.errs[j].line })
	errs := make([]error, 0, len(w.errs))
	for _, e := range w.errs {
		errs = append(errs, errors.New(e.msg))
	}

	cfg := &Config{Global: DefaultGlobalConfig}
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(cfg); err != nil {
		var te *yaml.TypeError
		switch {
		case errors.As(err, &te):
			for _, msg := range te.Errors {
				line, rest, ok := splitLine(msg)
				if ok && w.lines[line] {
					continue // already explained, with its field path
				}
				if m := notFoundRE.FindStringSubmatch(rest); ok && m != nil {
					msg = fmt.Sprintf("line %d: unknown field %q", line, m[1])
				}
				errs = append(errs, errors.New(msg))
			}
		case len(errs) == 0:
			errs = append(errs, fmt.Errorf("invalid configuration: %w", err))
		}
	}
	if len(errs) > 0 {
		return nil, scrubSecrets(errs, w.secrets)
	}
	return cfg, nil
}

// yamlSyntaxError words a parse error of yaml.v3 ("yaml: line 3: ...").
func yamlSyntaxError(err error) error {
	return fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

var (
	lineRE     = regexp.MustCompile(`^line (\d+): (.*)$`)
	notFoundRE = regexp.MustCompile(`^field (.*) not found in type \S+$`)
)

// splitLine splits one of yaml.v3's "line N: message" entries.
func splitLine(msg string) (int, string, bool) {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, msg, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, msg, false
	}
	return n, m[2], true
}

// lineError is one problem found by the walker.
type lineError struct {
	line int
	msg  string
}

// visit identifies a node decoded as a type: an anchor used twice is checked once.
type visit struct {
	node *yaml.Node
	typ  reflect.Type
}

// walker checks a YAML node tree against the Go types it decodes into.
type walker struct {
	errs  []lineError
	lines map[int]bool
	seen  map[visit]bool
	// secrets are the values found in secret fields, for scrubSecrets.
	secrets []string
}

func (w *walker) add(line int, format string, args ...any) {
	w.errs = append(w.errs, lineError{line: line, msg: fmt.Sprintf("line %d: ", line) + fmt.Sprintf(format, args...)})
	w.lines[line] = true
}

var (
	obsoleteUnmarshalerType = reflect.TypeFor[interface {
		UnmarshalYAML(func(any) error) error
	}]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	urlType         = reflect.TypeFor[commonconfig.URL]()
	secretType      = reflect.TypeFor[commonconfig.Secret]()
	// scalarStructs are struct types written as a plain YAML scalar.
	scalarStructs = map[reflect.Type]bool{urlType: true}
)

func hasUnmarshaler(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return pt.Implements(obsoleteUnmarshalerType) || pt.Implements(unmarshalerType)
}

// walk checks node n, to be decoded into a value of type t found at path.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	v := visit{node: n, typ: t}
	if w.seen[v] {
		return
	}
	w.seen[v] = true
	switch t {
	case secretType:
		w.secrets = appendScalars(w.secrets, n, map[*yaml.Node]bool{})
	case urlType:
		w.secrets = append(w.secrets, urlPassword(n.Value))
	}

	switch {
	case t.Kind() == reflect.Struct && !scalarStructs[t] && n.Kind == yaml.MappingNode:
		before := len(w.errs)
		w.mapping(n, t, path)
		if len(w.errs) == before && hasUnmarshaler(t) {
			// The type's own checks, such as TLSConfig's "at most one of ca, ca_file".
			w.tryDecode(n, t, path, false)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			w.walk(c, t.Elem(), elementPath(path, i, c))
		}
	default:
		w.tryDecode(n, t, path, true)
	}
}

// mapping checks the keys of a mapping node against the fields of struct type t.
func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string) {
	fields, names := yamlFields(t)
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			w.merge(v, t, path)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.add(k.Line, "%s: a field name must be a plain word, not %s", where(path), describeNode(k))
			continue
		}
		ft, ok := fields[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown field %q %s", k.Value, where(path))
			if s := suggest(k.Value, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			} else {
				msg += fmt.Sprintf(" (valid fields: %s)", strings.Join(names, ", "))
			}
			w.add(k.Line, "%s", msg)
			continue
		}
		if line, dup := first[k.Value]; dup {
			w.add(k.Line, "%s: %q is set twice (first at line %d); keep one", joinPath(path, k.Value), k.Value, line)
			continue
		}
		first[k.Value] = k.Line
		w.walk(v, ft, joinPath(path, k.Value))
	}
}

// merge checks the value of a "<<" merge key: a mapping, or a list of mappings.
func (w *walker) merge(v *yaml.Node, t reflect.Type, path string) {
	for v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		w.walk(v, t, path)
	case yaml.SequenceNode:
		for _, c := range v.Content {
			w.merge(c, t, path)
		}
	}
	// Anything else is a type error, reported by the strict decode.
}

// tryDecode decodes n alone into a new value of type t and reports what fails.
// Type errors are reported only when typeErrs is set: for a struct walked field by
// field they were already found below it.
func (w *walker) tryDecode(n *yaml.Node, t reflect.Type, path string, typeErrs bool) {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		if !typeErrs {
			return
		}
		for _, msg := range te.Errors {
			line, rest, ok := splitLine(msg)
			if !ok {
				line = n.Line
			}
			w.add(line, "%s: %s", fieldName(path), rest)
		}
		return
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		// url.Error quotes the whole URL, which may carry a password.
		err = fmt.Errorf("not a valid URL: %w", urlErr.Err)
	}
	w.add(n.Line, "%s: %s", fieldName(path), strings.TrimPrefix(err.Error(), "yaml: "))
}

// appendScalars appends the values (and keys) of n and of every node below it,
// each node once: an alias may point back up (&a [*a]).
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

// yamlFields returns the YAML keys of struct type t with their Go types, following
// yaml.v3's rules (tag name, else the lowercased field name; ",inline" structs merged).
func yamlFields(t reflect.Type) (map[string]reflect.Type, []string) {
	fields := map[string]reflect.Type{}
	var collect func(t reflect.Type)
	collect = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("yaml")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if strings.Contains(","+opts+",", ",inline,") && f.Type.Kind() == reflect.Struct {
				collect(f.Type)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fields[name] = f.Type
		}
	}
	collect(t)
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	return fields, names
}

// suggest returns the valid name closest to a mistyped one, or "".
func suggest(name string, valid []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	n := norm(name)
	best, bestDist := "", 3
	if len(n) <= 4 {
		bestDist = 2
	}
	for _, v := range valid {
		if d := levenshtein(n, norm(v)); d < bestDist {
			best, bestDist = v, d
		}
	}
	if best != "" {
		return best
	}
	// "secret" for "secret_key": the shortest name the mistyped one begins.
	if len(name) >= 3 {
		for _, v := range valid {
			if strings.HasPrefix(v, strings.ToLower(name)) && (best == "" || len(v) < len(best)) {
				best = v
			}
		}
	}
	return best
}

// levenshtein is the edit distance between a and b, counted in bytes.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// joinPath appends a field name to a field path.
func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// elementPath names element i of the list at path; a project also by its name,
// as in `projects[1] "prod"`.
func elementPath(path string, i int, n *yaml.Node) string {
	p := fmt.Sprintf("%s[%d]", path, i)
	if path != "projects" {
		return p
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return p
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if k, v := n.Content[j], n.Content[j+1]; k.Value == "name" && v.Kind == yaml.ScalarNode && v.Value != "" {
			return projectPath(i, v.Value)
		}
	}
	return p
}

// where words the place of a field path for "unknown field ... <where>".
func where(path string) string {
	if path == "" {
		return "at the top level"
	}
	return "in " + path
}

// fieldName words a field path as the subject of a message.
func fieldName(path string) string {
	if path == "" {
		return "configuration"
	}
	return path
}

// describeNode words what a node is, for "must be X, not <describeNode>".
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	default:
		return "this"
	}
}
