// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"unicode"
)

// maxReadmeLines keeps the README a front door (issue 11): details go to docs/.
const maxReadmeLines = 350

// TestReadmeIsAFrontDoor: README.md stays within maxReadmeLines lines.
func TestReadmeIsAFrontDoor(t *testing.T) {
	t.Parallel()
	text, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.TrimSuffix(string(text), "\n"), "\n") + 1; n > maxReadmeLines {
		t.Errorf("README.md has %d lines, at most %d: move details to docs/ and link to them", n, maxReadmeLines)
	}
}

// TestDocLinksResolve checks the relative links of README.md, docs/ and,
// once they exist, the chart's and the mixin's READMEs.
func TestDocLinksResolve(t *testing.T) {
	t.Parallel()
	files, err := fs.Glob(os.DirFS("."), "docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "README.md")
	for _, f := range []string{"charts/modelarts-exporter/README.md", "mixin/README.md"} {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		}
	}
	for _, problem := range brokenLinks(os.DirFS("."), files) {
		t.Error(problem)
	}
}

// TestBrokenLinksBites shows that each kind of broken link is reported, and
// that what GitHub resolves is not.
func TestBrokenLinksBites(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"README.md": {Data: []byte("# Top\n\n## Try it — in `one` minute!\n\n## Try it — in `one` minute!\n\n" +
			"[a](#try-it--in-one-minute) [b](#try-it--in-one-minute-1) [c](docs/x.md#the-flag---configfile)\n" +
			"[d](#nope) [e](missing.md) [f](docs/x.md#nope) [g](../outside.md) [h](main.go#L3)\n" +
			"`[i](#in-code)` [j](https://example.com/#x) <a href=\"docs/\">k</a> [l](deploy/)\n" +
			"```\n[m](#in-a-fence)\n```\n[n]: docs/gone.md\n")},
		"docs/x.md": {Data: []byte("### The flag `--config.file`\n\nBack to the [README](../README.md#top).\n")},
		"main.go":   {Data: []byte("package main\n")},
	}
	got := brokenLinks(fsys, []string{"README.md", "docs/x.md"})
	want := []string{
		`README.md:8: link "#nope": no heading with that anchor in README.md`,
		`README.md:8: link "missing.md": missing.md does not exist`,
		`README.md:8: link "docs/x.md#nope": no heading with that anchor in docs/x.md`,
		`README.md:8: link "../outside.md": it leaves the repository`,
		`README.md:8: link "main.go#L3": anchors are checked in Markdown files only; link to the file`,
		`README.md:9: link "deploy/": deploy does not exist`,
		`README.md:13: link "docs/gone.md": docs/gone.md does not exist`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("brokenLinks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

var (
	// An inline link or image [text](target "title"), an HTML href, and a
	// reference definition [label]: target.
	linkRE = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)|href="([^"]+)"|^\s{0,3}\[[^\]^][^\]]*\]:\s+<?([^\s>]+)`)
	// Inline code spans: links in them are text.
	codeSpanRE = regexp.MustCompile("`[^`]*`")
	headingRE  = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$`)
	fenceRE    = regexp.MustCompile("^\\s{0,3}(```|~~~)")
	// What GitHub shows of a heading's Markdown: link and image texts, not
	// their targets, and no HTML tags.
	headingLinkRE = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTagRE     = regexp.MustCompile(`<[^>]+>`)
)

// brokenLinks returns one message for each relative link in files that does
// not resolve in fsys: to a file or directory, and for Markdown files to a
// heading's anchor.
func brokenLinks(fsys fs.FS, files []string) []string {
	anchors := map[string]map[string]bool{} // by file, read once
	anchorsOf := func(name string) (map[string]bool, error) {
		if a, ok := anchors[name]; ok {
			return a, nil
		}
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		anchors[name] = headingAnchors(string(text))
		return anchors[name], nil
	}
	var problems []string
	for _, file := range files {
		text, err := fs.ReadFile(fsys, file)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		inFence := false
		for i, line := range strings.Split(string(text), "\n") {
			if fenceRE.MatchString(line) {
				inFence = !inFence
				continue
			}
			if inFence {
				continue
			}
			for _, m := range linkRE.FindAllStringSubmatch(codeSpanRE.ReplaceAllString(line, ""), -1) {
				target := m[1] + m[2] + m[3]
				if msg := checkLink(fsys, file, target, anchorsOf); msg != "" {
					problems = append(problems, fmt.Sprintf("%s:%d: link %q: %s", file, i+1, target, msg))
				}
			}
		}
	}
	return problems
}

// checkLink says why target, a link in file, does not resolve, or "".
func checkLink(fsys fs.FS, file, target string, anchorsOf func(string) (map[string]bool, error)) string {
	if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
		return ""
	}
	ref, fragment, _ := strings.Cut(target, "#")
	name := file
	if ref != "" {
		name = path.Join(path.Dir(file), ref)
		if !fs.ValidPath(name) {
			return "it leaves the repository"
		}
		if _, err := fs.Stat(fsys, name); err != nil {
			return name + " does not exist"
		}
	}
	if fragment == "" {
		return ""
	}
	if !strings.HasSuffix(name, ".md") {
		return "anchors are checked in Markdown files only; link to the file"
	}
	a, err := anchorsOf(name)
	if err != nil {
		return err.Error()
	}
	if !a[fragment] {
		return "no heading with that anchor in " + name
	}
	return ""
}

// headingAnchors returns the anchors GitHub gives the headings of a Markdown
// text; a repeated heading gets -1, -2, ... appended.
func headingAnchors(text string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if fenceRE.MatchString(line) {
			inFence = !inFence
			continue
		}
		m := headingRE.FindStringSubmatch(line)
		if inFence || m == nil {
			continue
		}
		slug := githubSlug(m[2])
		if n := seen[slug]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

// githubSlug is GitHub's anchor for a heading: the text shown, lower-cased,
// without punctuation other than - and _, each space a hyphen.
func githubSlug(heading string) string {
	text := htmlTagRE.ReplaceAllString(headingLinkRE.ReplaceAllString(heading, "$1"), "")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
