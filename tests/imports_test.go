package tests

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// importRules are the module's layering, enforced on each package's
// transitive dependencies (in the style of tailscale's dependency tests:
// a rule is a package, what it must never reach, and why). domain/ has its
// own, stricter test: only the standard library (domain/imports_test.go).
var importRules = []struct {
	pkg    string
	denied []string
	why    string
}{
	{"events", []string{"events/commands", "projections", "http", "http/service"},
		"the event store and envelope sit below both sides: the write side and the read side build on them, never the reverse"},
	{"events/commands", []string{"projections", "http", "http/service"},
		"the write side decides against the reads it declares (commands.State), not against the read side's types: it can be tested with a fake and the read models can change shape freely"},
	{"projections", []string{"events/commands", "http", "http/service"},
		"the read side only applies events: it never issues commands, or a replay could write"},
	{"http", []string{"http/service"},
		"the HTTP layer declares the interfaces it consumes; the wiring (http/service) imports it, not the other way round"},
	{"events/natstest", []string{"events/commands", "projections", "http", "http/service"},
		"the NATS test harness starts servers and opens the store, nothing of the service above"},
	{"http/client", []string{"domain", "events", "events/commands", "projections", "http", "http/service",
		"github.com/gofiber/fiber/v2", "github.com/valyala/fasthttp", "github.com/nats-io/nats.go", "github.com/nats-io/nats-server/v2"},
		"resource services import the client: it speaks the public HTTP API only, so it must not drag in the service's internals, its web framework or NATS"},
	{"http/invisible", []string{"domain", "events", "events/commands", "projections", "http", "http/service", "http/client",
		"github.com/gofiber/fiber/v2", "github.com/valyala/fasthttp", "github.com/nats-io/nats.go", "github.com/nats-io/nats-server/v2"},
		"the CLI and the CSV exports share its one definition of the characters shown as escapes: it stands alone, so both may import it"},
	{"cmd/infracast", []string{"domain", "events", "events/commands", "projections", "http", "http/service",
		"github.com/gofiber/fiber/v2", "github.com/nats-io/nats.go", "github.com/nats-io/nats-server/v2"},
		"the admin CLI is a client of the public API, through http/client, like any other"},
}

// TestImportBoundaries fails when a package reaches, directly or through
// another package, a package its layer must not depend on.
func TestImportBoundaries(t *testing.T) {
	const module = "github.com/infracast/auth/"
	out, err := exec.Command("go", "list", "-json", "github.com/infracast/auth/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		deps[strings.TrimPrefix(p.ImportPath, module)] = p.Deps
	}
	for _, r := range importRules {
		d, ok := deps[r.pkg]
		if !ok {
			t.Errorf("package %s not found: update the rules", r.pkg)
			continue
		}
		for _, dep := range d {
			for _, denied := range r.denied {
				// A denied entry is a package of this module, or (with a
				// dot in its first element) another module, any of whose
				// packages is denied.
				if dep == module+denied || (strings.Contains(strings.Split(denied, "/")[0], ".") && (dep == denied || strings.HasPrefix(dep, denied+"/"))) {
					t.Errorf("%s depends on %s: not allowed, because %s", r.pkg, denied, r.why)
				}
			}
		}
	}
}
