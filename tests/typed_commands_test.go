package tests

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
// aggregate it belongs to (domain.UserCommand, SessionCommand, …, closed
// sets), so handing an aggregate — or the write side's Execute* — another
// one's command, or anything else, is a compile error rather than a refusal
// at run time. These tests hold that guarantee: they type-check small
// programs against the packages (go/types, on the export data that
// "go list -export" builds), as the compiler would, and expect each wrong
// call to be refused and each right one to compile.
func TestWrongCommandDoesNotCompile(t *testing.T) {
	t.Parallel()
	imp := exportImporter(t, "github.com/infracast/auth/domain", "github.com/infracast/auth/events/commands")
	wrong := []struct{ call, want string }{
		// The domain's deciders.
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
		// The write side.
		{`s.ExecuteUser(ctx, meta, "user-1", domain.RevokeSession{})`, "does not implement domain.UserCommand"},
		{`s.ExecuteUser(ctx, meta, "user-1", struct{}{})`, "does not implement domain.UserCommand"},
		{`s.ExecuteSession(ctx, meta, "sess-1", domain.Deactivate{})`, "does not implement domain.SessionCommand"},
		{`s.ExecuteAPIKey(ctx, meta, "key-1", domain.RevokeSession{})`, "does not implement domain.APIKeyCommand"},
	}
	for _, tc := range wrong {
		err := typeCheckCall(t, imp, tc.call)
		if err == nil {
			t.Errorf("%s compiles; want a type error", tc.call)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error saying %q", tc.call, err, tc.want)
		}
	}
	// The right commands compile, so the refusals above are not a broken set-up.
	for _, call := range []string{
		`domain.DecideUser(domain.User{}, domain.Deactivate{})`,
		`domain.DecideSession(domain.Session{}, domain.RevokeSession{})`,
		`domain.DecideAPIKey(domain.APIKey{}, domain.RevokeAPIKey{})`,
		`domain.DecideSigningKey(domain.SigningKey{}, domain.RetireSigningKey{})`,
		`domain.DecideSSOProvider(domain.SSOProvider{}, domain.DeleteSSOProvider{})`,
		`s.ExecuteUser(ctx, meta, "user-1", domain.Deactivate{})`,
		`s.ExecuteSession(ctx, meta, "sess-1", domain.RevokeSession{})`,
		`s.ExecuteAPIKey(ctx, meta, "key-1", domain.RevokeAPIKey{})`,
	} {
		if err := typeCheckCall(t, imp, call); err != nil {
			t.Errorf("%s: %v; want it to compile", call, err)
		}
	}
}

// typeCheckCall type-checks a function that makes call (with s, ctx and meta
// in scope, and a type own that tries to join the user commands), and
// returns the first type error.
func typeCheckCall(t *testing.T, imp types.Importer, call string) error {
	t.Helper()
	src := `package p

import (
	"context"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

type own struct{}

func (own) userCommand() {}

func caller(ctx context.Context, s *commands.Service, meta events.Meta) {
	` + call + `
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatalf("parse %q: %v", call, err)
	}
	var first error
	conf := types.Config{Importer: imp, Error: func(err error) {
		if first == nil {
			first = err
		}
	}}
	if _, err := conf.Check("p", fset, []*ast.File{f}, nil); err != nil && first == nil {
		first = err
	}
	if first != nil && strings.Contains(first.Error(), "could not import") {
		t.Fatalf("type-checking %q: %v", call, first)
	}
	return first
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
