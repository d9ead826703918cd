package tests

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestBenchCommandRunsEveryCase runs the benchmark command of issue 7 (go run
// ./cmd/infracast-auth-bench) with every case, very short: it must exit 0 and
// print one JSON object per figure with the documented fields (no baseline
// and ratio for a figure without a baseline), so that the command the README
// and docs/performance.md name keeps working. The figures of so short a run
// mean nothing and are not checked.
func TestBenchCommandRunsEveryCase(t *testing.T) {
	t.Parallel()
	bin, err := goBuild("../cmd/infracast-auth-bench")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-duration", "200ms", "-replay-events", "2000", "-memory-entries", "2000",
		"-scale-users", "2000", "-scale-tail", "500", "-audit-events", "20000", "-json")
	// Bounded as on the machine the figures come from: the login case makes
	// 4×GOMAXPROCS users at the production argon2id cost.
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	want := []string{"validate_jwt", "validate_apikey", "gateway", "middleware", "middleware.offline", "login", "refresh", "refresh.vs_read_stream", "append_replay", "propagation", "catch_up.list", "catch_up.not_found", "catch_up.login", "scim_propagation", "memory.apikey", "memory.revoked_token",
		"memory.user", "memory.session", "startup.snapshot",
		"audit.access_tenant", "audit.access_user", "audit.page", "audit.memory", "audit.startup"}
	// gateway.vs_nginx, gateway.bare_vs_nginx, nginx_proxy and
	// nginx_forward_auth give figures where nginx is installed; without it,
	// they are skipped.
	if nginxInstalled() {
		want = slices.Insert(want, slices.Index(want, "gateway")+1, "gateway.vs_nginx", "gateway.bare_vs_nginx", "nginx_proxy",
			"nginx_forward_auth", "nginx_forward_auth.connections", "nginx_forward_auth.nginx_bound")
	}
	// console gives figures where chromium is installed (CI installs it).
	if chromiumInstalled() {
		want = append(want, "console", "console.assets_gzip")
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		for _, f := range []string{"name", "value", "unit"} {
			if _, ok := r[f]; !ok {
				t.Fatalf("%s lacks %q: %s", r["name"], f, line)
			}
		}
		// Every figure has a baseline and a ratio but the audit latencies,
		// held to a bound of their own, which print none
		// (docs/performance.md).
		name, _ := r["name"].(string)
		noBaseline := slices.Contains([]string{"audit.access_tenant", "audit.access_user", "audit.page"}, name)
		for _, f := range []string{"baseline", "ratio"} {
			if _, ok := r[f]; ok == noBaseline {
				t.Fatalf("%s: %q present %v: %s", name, f, ok, line)
			}
		}
		// A rate or a time must be positive. A memory figure at 2,000
		// entries is a resident-set growth of a few pages, within what the
		// runtime returns to the OS meanwhile: it may come out negative.
		if v, ok := r["value"].(float64); !ok || (v <= 0 && !strings.HasPrefix(r["name"].(string), "memory.")) {
			t.Errorf("%s: value %v", r["name"], r["value"])
		}
		got = append(got, r["name"].(string))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("figures %v, want %v\n%s", got, want, stderr.String())
	}
}

// chromiumInstalled: the bench finds a Chromium (as chromiumBinary does), so
// its console case runs.
func chromiumInstalled() bool {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if _, err := exec.LookPath(name); err == nil {
			return true
		}
	}
	return false
}

// nginxInstalled: the bench finds an nginx (as nginxBinary does), so its
// nginx cases run.
func nginxInstalled() bool {
	if _, err := exec.LookPath("nginx"); err == nil {
		return true
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}
