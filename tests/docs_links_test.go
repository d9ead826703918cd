package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// TestDocsLinksAndCitedTestsExist keeps the documentation true as the code
// moves: every relative link of README.md and docs/*.md leads to a file of
// the repository and, with a #fragment into a Markdown file, to one of its
// headings (GitHub's anchors); every test or benchmark the documents name as
// evidence (TestX, BenchmarkX) is a function of a _test.go file.
func TestDocsLinksAndCitedTestsExist(t *testing.T) {
	t.Parallel()
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, "../README.md")
	funcs := testFuncs(t)
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	cited := regexp.MustCompile(`\b(?:Test|Benchmark)[A-Z][A-Za-z0-9_]*`)
	links, names := 0, 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			file, frag, _ := strings.Cut(target, "#")
			path := doc
			if file != "" {
				path = filepath.Join(filepath.Dir(doc), file)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: link %q: no such file", doc, target)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(path, ".md") && !markdownAnchors(t, path)[frag] {
				t.Errorf("%s: link %q: %s has no heading with that anchor", doc, target, path)
			}
		}
		for _, name := range cited.FindAllString(string(b), -1) {
			names++
			if !funcs[name] {
				t.Errorf("%s names %s, which no _test.go file defines", doc, name)
			}
		}
	}
	if links < 50 || names < 50 {
		t.Fatalf("found only %d relative links and %d cited tests: the patterns no longer match the documents", links, names)
	}
}

// testFuncs lists the Test and Benchmark functions of the repository.
func testFuncs(t *testing.T) map[string]bool {
	t.Helper()
	def := regexp.MustCompile(`(?m)^func ((?:Test|Benchmark)[A-Za-z0-9_]*)\(`)
	out := make(map[string]bool)
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range def.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// markdownAnchors returns the anchors GitHub gives the headings of a
// Markdown file (outside code blocks): lower case, letters, digits, "-" and
// "_" kept, spaces made "-", the rest dropped; a repeated one gets "-1", "-2".
func markdownAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	linkText := regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	out := make(map[string]bool)
	fenced := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "```") {
			fenced = !fenced
			continue
		}
		h := strings.TrimLeft(l, "#")
		if fenced || len(h) == len(l) || len(l)-len(h) > 6 || !strings.HasPrefix(h, " ") {
			continue
		}
		h = linkText.ReplaceAllString(strings.ReplaceAll(strings.TrimSpace(h), "`", ""), "$1")
		var s strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case r == ' ':
				s.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				s.WriteRune(r)
			}
		}
		anchor := s.String()
		for i := 1; out[anchor]; i++ {
			anchor = fmt.Sprintf("%s-%d", s.String(), i)
		}
		out[anchor] = true
	}
	return out
}
