package domain

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The domain is the pure core: it may import only the standard library.
// An import path whose first element contains a dot (github.com/...,
// golang.org/x/...) is not in the standard library.
func TestDomainImportsOnlyStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		checked++
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatalf("%s: bad import %s", fset.Position(imp.Pos()), imp.Path.Value)
			}
			if !isStandardLibrary(path) {
				t.Errorf("%s: domain imports %q; only the standard library is allowed", fset.Position(imp.Pos()), path)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no Go files checked")
	}
}

func isStandardLibrary(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func TestIsStandardLibrary(t *testing.T) {
	for path, want := range map[string]bool{
		"time":                         true,
		"net/mail":                     true,
		"crypto/subtle":                true,
		"github.com/infracast/auth":    false,
		"github.com/infracast/auth/db": false,
		"golang.org/x/crypto/argon2":   false,
		"example.com":                  false,
	} {
		if got := isStandardLibrary(path); got != want {
			t.Errorf("isStandardLibrary(%q) = %v, want %v", path, got, want)
		}
	}
}
