package domain

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"strings"
	"sync"
	"testing"
)

// Each aggregate takes only its own commands: a command is typed by the
// aggregate it belongs to (UserCommand, SessionCommand, …, closed sets), so
// that handing an aggregate another one's command, or anything else, is a
// compile error rather than a refusal at run time. This test holds that
// guarantee: it type-checks small programs against this package, as the
// compiler would, and expects each wrong call to be refused.
func TestWrongCommandDoesNotCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the package from source")
	}
	t.Parallel()
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
		err := typeCheckCall(t, tc.call)
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
		if err := typeCheckCall(t, call); err != nil {
			t.Errorf("%s: %v; want it to compile", call, err)
		}
	}
}

// sourceImporter type-checks imported packages from their source; it is
// shared, so that this package and the standard library are checked once.
var sourceImporter = sync.OnceValue(func() types.ImporterFrom {
	return importer.ForCompiler(token.NewFileSet(), "source", nil).(types.ImporterFrom)
})

// typeCheckCall type-checks a program that makes call, and returns the first
// type error.
func typeCheckCall(t *testing.T, call string) error {
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
		Importer: sourceImporter(),
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
