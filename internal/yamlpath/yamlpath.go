// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

// Package yamlpath reads values out of decoded YAML documents, for the tests
// of the shipped manifests and of the Helm chart.
package yamlpath

// Get walks v, a decoded YAML value: a string steps into a map, an int into
// a list. A missing step gives nil.
func Get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k < 0 || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}
