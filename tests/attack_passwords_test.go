package tests

import (
	"strings"
	"testing"
)

// TestPasswordPolicy (NIST SP 800-63B): a minimum length, no composition
// rules, common passwords refused, long Unicode passwords accepted whole — no
// truncation: changing the last character of a 64-character password fails.
func TestPasswordPolicy(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	create := func(name, pw string) Response {
		return in.Do("POST", "/api/v1/users", admin, map[string]any{
			"username": name, "email": name + "@example.com", "password": pw,
			"tenants": []map[string]string{{"id": "prod", "role": "viewer"}},
		})
	}
	for _, pw := range []string{"short", "1234567", "password123", "Password123", "qwertyuiop", "changeme"} {
		r := create("weak"+strings.ToLower(pw[:3]), pw)
		if r.Status != 400 || r.ErrorCode() != "VALIDATION_ERROR" {
			t.Errorf("password %q accepted: %d %s", pw, r.Status, r.Raw)
		}
		if !strings.Contains(string(r.Raw), "password") {
			t.Errorf("error for %q does not name the field: %s", pw, r.Raw)
		}
	}
	// No composition rules: eight lowercase letters that are not common work.
	if r := create("plain", "correcthorse"); r.Status != 201 {
		t.Fatalf("plain password refused: %d %s", r.Status, r.Raw)
	}
	// 64 characters, most of them multi-byte (200+ bytes).
	long := string([]rune(strings.Repeat("ключ🔑", 13))[:63]) + "Ω"
	if n := len([]rune(long)); n != 64 {
		t.Fatalf("test password has %d characters", n)
	}
	if r := create("unicode", long); r.Status != 201 {
		t.Fatalf("64-character Unicode password refused: %d %s", r.Status, r.Raw)
	}
	if r := login(in, "unicode", long); r.Status != 200 {
		t.Fatalf("login with the 64-character password: %d %s", r.Status, r.Raw)
	}
	wrongLast := string([]rune(long)[:63]) + "Ω̃"
	if r := login(in, "unicode", wrongLast); r.Status != 401 {
		t.Fatalf("changed last character accepted (truncation?): %d", r.Status)
	}
	if r := login(in, "unicode", string([]rune(long)[:63])); r.Status != 401 {
		t.Fatalf("password without its last character accepted: %d", r.Status)
	}
}
