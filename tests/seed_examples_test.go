package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The seed's examples, verbatim (seed/authentication.txt, "Python Example" and
// "JavaScript Example"). Only the base URL is replaced when they run.
const (
	seedBaseURL = "https://api.infracast.io"

	seedPython = `import requests
# Get token
auth_response = requests.post(
"https://api.infracast.io/api/v1/auth/token",
json={"username": "admin", "password": "secret"}
)
token = auth_response.json()["token"]
# Use token
headers = {"Authorization": f"Bearer {token}"}
nodes = requests.get(
"https://api.infracast.io/api/v1/tenants/my-tenant/nodes",
headers=headers
)
`
	seedJavaScript = `// Get token
const authResponse = await fetch('https://api.infracast.io/api/v1/auth/token', {
method: 'POST',
headers: { 'Content-Type': 'application/json' },
body: JSON.stringify({ username: 'admin', password: 'secret' })
});
const { token } = await authResponse.json();
// Use token
const nodes = await fetch('https://api.infracast.io/api/v1/tenants/my-tenant/nodes', {
headers: { 'Authorization': ` + "`Bearer ${token}`" + ` }
});
`
)

// seedDocPath is where the seed lives in the workspace; when it is there, the
// copies above are checked against it.
var seedDocPath = filepath.Join("..", "..", "shared", "seed", "authentication.txt")

// runExample writes code to dir/name and runs it with the interpreter.
func runExample(t *testing.T, dir, name, code string, argv ...string) string {
	t.Helper()
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], file)...)
	cmd.Dir = dir
	// Loopback must never go through a proxy from the environment.
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", argv[0], name, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestSeedExamplesPythonAndJavaScript runs the seed's Python and JavaScript
// examples as written (base URL aside) against the local server, and checks the
// nodes call is authorized (404: no upstream configured; never 401).
//
// The examples log in as admin/secret. The service's password policy (at least
// 8 characters, also for INFRACAST_BOOTSTRAP_PASSWORD) makes "secret"
// impossible to set through the API or configuration, so the test plants it
// with a sealed user.password_changed event (forcePassword).
func TestSeedExamplesPythonAndJavaScript(t *testing.T) {
	t.Parallel()
	if b, err := os.ReadFile(seedDocPath); err == nil {
		doc := string(b)
		for lang, code := range map[string]string{"Python": seedPython, "JavaScript": seedJavaScript} {
			if !strings.Contains(doc, code) {
				t.Fatalf("the %s example is not the seed's text any more", lang)
			}
		}
	}
	in := Start(t)
	forcePassword(t, in, "admin", "secret")
	dir := t.TempDir()

	t.Run("python", func(t *testing.T) {
		if _, err := exec.LookPath("python3"); err != nil {
			missingTool(t, "python3")
		}
		if err := exec.Command("python3", "-c", "import requests").Run(); err != nil {
			missingTool(t, "the Python module requests")
		}
		code := strings.ReplaceAll(seedPython, seedBaseURL, in.URL) +
			"print(auth_response.status_code, nodes.status_code, nodes.json()['error']['code'])\n"
		out := runExample(t, dir, "example.py", code, "python3")
		t.Logf("python: login, nodes: %s", out)
		if out != "200 404 NOT_FOUND" {
			t.Fatalf("python example printed %q, want 200 404 NOT_FOUND (authorized, no upstream)", out)
		}
	})

	t.Run("javascript", func(t *testing.T) {
		if _, err := exec.LookPath("node"); err != nil {
			missingTool(t, "node")
		}
		code := strings.ReplaceAll(seedJavaScript, seedBaseURL, in.URL) +
			"console.log(authResponse.status, nodes.status, (await nodes.json()).error.code);\n"
		out := runExample(t, dir, "example.mjs", code, "node")
		t.Logf("javascript: login, nodes: %s", out)
		if out != "200 404 NOT_FOUND" {
			t.Fatalf("javascript example printed %q, want 200 404 NOT_FOUND (authorized, no upstream)", out)
		}
	})
}
