package tests

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// configProblems runs the binary with the settings env (on a new data folder
// and a free port) and returns what it printed as an error: a configuration
// it refuses ends the process at once, before the store is opened, with
// every problem named as the variable a user sets. (service.Config.Validate
// names the fields of the Config; the command names the settings.)
func configProblems(t *testing.T, env ...string) error {
	t.Helper()
	p := startBinary(t, append([]string{"INFRACAST_LISTEN=" + freeAddr(t), "INFRACAST_DATA_DIR=" + t.TempDir()}, env...)...)
	if err := p.exited(t, 30*time.Second); err == nil {
		t.Fatalf("exited 0 with %v:\n%s", env, p.output())
	}
	return errors.New(p.output())
}

// TestShippedOriginSettings: the built binary takes the origin settings as
// browsers send origins — an internationalised public URL, a CORS origin
// with its default port — and refuses at start, naming the variable, what
// no browser could match: a CORS wildcard, an IP address written
// otherwise than browsers do, an IPv6 zone (this session's changes to the
// README's rows for INFRACAST_PUBLIC_URL and INFRACAST_CORS_ORIGINS).
func TestShippedOriginSettings(t *testing.T) {
	err := configProblems(t, "INFRACAST_CORS_ORIGINS=https://*.com", "INFRACAST_PUBLIC_URL=http://127.000.000.001:8080",
		"INFRACAST_SSO_RETURN_TO_ALLOWLIST=http://[fe80::1%25eth0]:18443")
	for _, want := range []string{"INFRACAST_CORS_ORIGINS", "INFRACAST_PUBLIC_URL", "INFRACAST_SSO_RETURN_TO_ALLOWLIST", "write the IP address as browsers show it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refused start does not say %q:\n%s", want, err)
		}
	}

	addr := freeAddr(t)
	p := startBinary(t, "INFRACAST_LISTEN="+addr, "INFRACAST_DATA_DIR="+t.TempDir(), "INFRACAST_BOOTSTRAP_PASSWORD="+shippedAdminPassword,
		"INFRACAST_ARGON2_MEMORY_KIB=64", "INFRACAST_ARGON2_ITERATIONS=1",
		"INFRACAST_PUBLIC_URL=https://Bücher.example/", "INFRACAST_CORS_ORIGINS=https://App.Example.com:443")
	waitReady(t, "http://"+addr, p)
	req, _ := http.NewRequest("OPTIONS", "http://"+addr+"/api/v1/auth/me", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "GET")
	res, rerr := http.DefaultClient.Do(req)
	if rerr != nil {
		t.Fatal(rerr)
	}
	res.Body.Close()
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
		t.Errorf("a preflight from https://app.example.com: Access-Control-Allow-Origin %q", got)
	}
	md, rerr := http.Get("http://" + addr + "/api/v1/auth/sso/saml/metadata")
	if rerr != nil {
		t.Fatal(rerr)
	}
	body, rerr := io.ReadAll(md.Body)
	md.Body.Close()
	if rerr != nil {
		t.Fatal(rerr)
	}
	if !strings.Contains(string(body), `entityID="https://xn--bcher-kva.example/`) {
		t.Errorf("the SAML metadata of a public URL https://Bücher.example/: %s", body)
	}
}
