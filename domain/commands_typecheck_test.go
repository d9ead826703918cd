package domain

import (
	"bufio"
	"bytes"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Each aggregate takes only its own commands: a command is typed by the
// aggregate it belongs to (UserCommand, SessionCommand, …, closed sets), so
// that handing an aggregate another one's command, or anything else, is a
// compile error rather than a refusal at run time. This test holds that
// guarantee: it type-checks small programs against this package (go/types,
// on the package's export data), as the compiler would, and expects each
// wrong call to be refused.
func TestWrongCommandDoesNotCompile(t *testing.T) {
	t.Parallel()
	imp := exportImporter(t, "github.com/infracast/auth/domain")
	for _, tc := range []struct{ call, want string }{
		{`domain.DecideUser(domain.User{}, domain.RevokeSession{})`, "does not implement domain.UserCommand"},
		{`domain.DecideUser(domain.User{}, struct{ X int }{1})`, "does not implement domain.UserCommand"},
		{`domain.DecideUser(domain.User{}, "hello")`, "does not implement domain.UserCommand"},
		{`domain.DecideSession(domain.Session{}, domain.Deactivate{})`, "does not implement domain.SessionCommand"},
		{`domain.DecideAPIKey(domain.APIKey{}, domain.RevokeSession{})`, "does not implement domain.APIKeyCommand"},
		{`domain.DecideAPIKey(domain.APIKey{}, struct{}{})`, "does not implement domain.APIKeyCommand"},
		{`domain.DecideSigningKey(domain.SigningKey{}, domain.RevokeAPIKey{})`, "does not implement domain.SigningKeyCommand"},
		{`domain.DecideSSOProvider(domain.SSOProvider{}, domain.RetireSigningKey{})`, "does not implement domain.SSOProviderCommand"},
		// Outside the package, no type can join a command set.
		{`domain.DecideUser(domain.User{}, own{})`, "does not implement domain.UserCommand"},
	} {
		err := typeCheckCall(t, imp, tc.call)
		if err == nil {
			t.Errorf("%s compiles; want a type error", tc.call)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error saying %q", tc.call, err, tc.want)
		}
	}
	// The right commands compile, so the refusals above are not a broken
	// set-up.
	for _, call := range []string{
		`domain.DecideUser(domain.User{}, domain.Deactivate{})`,
		`domain.DecideSession(domain.Session{}, domain.RevokeSession{})`,
		`domain.DecideAPIKey(domain.APIKey{}, domain.RevokeAPIKey{})`,
		`domain.DecideSigningKey(domain.SigningKey{}, domain.RetireSigningKey{})`,
		`domain.DecideSSOProvider(domain.SSOProvider{}, domain.DeleteSSOProvider{})`,
	} {
		if err := typeCheckCall(t, imp, call); err != nil {
			t.Errorf("%s: %v; want it to compile", call, err)
		}
	}
}

// exportImporter imports pkgs and their dependencies as the compiler does,
// from their export data, which "go list -export" builds (or finds in the
// build cache).
func exportImporter(t *testing.T, pkgs ...string) types.Importer {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-export", "-deps", "-f", "{{.ImportPath}} {{.Export}}"}, pkgs...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -export: %v\n%s", err, stderr.Bytes())
	}
	exports := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if path, file, ok := strings.Cut(sc.Text(), " "); ok && file != "" {
			exports[path] = file
		}
	}
	return importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, os.ErrNotExist
		}
		return os.Open(file)
	})
}

// typeCheckCall type-checks a program that makes call, and returns the first
// type error.
func typeCheckCall(t *testing.T, imp types.Importer, call string) error {
	t.Helper()
	src := `package p

import "github.com/infracast/auth/domain"

type own struct{}

func (own) userCommand() {}

var _, _ = ` + call + "\n"
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatalf("parse %q: %v", call, err)
	}
	var first error
	conf := types.Config{
		Importer: imp,
		Error: func(err error) {
			if first == nil {
				first = err
			}
		},
	}
	if _, err := conf.Check("p", fset, []*ast.File{f}, nil); err != nil && first == nil {
		first = err
	}
	if first != nil && strings.Contains(first.Error(), "could not import") {
		t.Fatalf("type-checking %q: %v", call, first)
	}
	return first
}
