package tests

import (
	"strings"
	"testing"
)

// TestShippedUnknownSettingWarned: the built service started with a
// misspelt setting (INFRACAST_LOGIN_MAX_FAILURE, its value a would-be
// secret) warns, naming the variable and the setting it looks like, never
// the value; the CLI's INFRACAST_URL in the same environment is no
// unknown setting (outside check 17a: an unknown variable was ignored
// without a word).
func TestShippedUnknownSettingWarned(t *testing.T) {
	const value = "do-not-log-this-value-7f3a"
	addr := freeAddr(t)
	p := startBinary(t, "INFRACAST_LISTEN="+addr, "INFRACAST_DATA_DIR="+t.TempDir(),
		"INFRACAST_ARGON2_MEMORY_KIB=64", "INFRACAST_ARGON2_ITERATIONS=1", "INFRACAST_BOOTSTRAP_PASSWORD="+shippedAdminPassword,
		"INFRACAST_LOGIN_MAX_FAILURE="+value, "INFRACAST_URL=http://"+addr)
	waitReady(t, "http://"+addr, p)
	p.stop(t)
	out := p.output()
	if !strings.Contains(out, "unknown setting INFRACAST_LOGIN_MAX_FAILURE is ignored; did you mean INFRACAST_LOGIN_MAX_FAILURES?") {
		t.Errorf("no warning of the misspelt setting:\n%s", out)
	}
	if strings.Contains(out, value) || strings.Contains(out, "INFRACAST_URL") {
		t.Errorf("the warning shows the value, or takes the CLI's INFRACAST_URL for a setting:\n%s", out)
	}
}
