package tests

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/alexedwards/argon2id"
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

// TestPasswordBlocklistAndContextWords (NIST SP 800-63B §5.1.1.2): a password
// on the embedded list of the 100,000 most common breached passwords is
// refused in any case, and so is one built on the username, the email address
// (or its local part) or the service's name, on creation and on a change by
// the user or an admin: 400 VALIDATION_ERROR naming the password, nothing
// appended. A strong random password is accepted.
func TestPasswordBlocklistAndContextWords(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	create := func(name, email, pw string) Response {
		return in.Do("POST", "/api/v1/users", admin, map[string]any{
			"username": name, "email": email, "password": pw,
			"tenants": []map[string]string{{"id": "prod", "role": "viewer"}},
		})
	}
	before := head(t, in)
	// Accepted by the old list of ~150 entries; all on the new one.
	for i, pw := range []string{
		"babygirl", "chocolate", "qwertyui", "asdfasdf", "11223344", "123456789a",
		"qwerty1234", "passwordpassword", "BabyGirl", "CHOCOLATE", "Password1",
	} {
		expectError(t, "listed "+pw, create(fmt.Sprintf("listed%d", i), fmt.Sprintf("listed%d@example.com", i), pw),
			400, "VALIDATION_ERROR", "password", "common")
	}
	// Context words: the username in any case, the email address and its
	// local part, the service's name, and those with little or a common
	// password around them.
	const name, email = "wendeline", "W.Okonkwo-Reyes@example.com"
	for _, pw := range []string{
		"wendeline", "WENDELINE", "Wendeline", "wendeline1!", "Wendeline2024", "wendeline-password",
		"w.okonkwo-reyes", "W.Okonkwo-Reyes", "w.okonkwo-reyes@example.com", "W.Okonkwo-Reyes123",
		"infracast", "infracast-auth", "Infracast2024!",
	} {
		expectError(t, "context "+pw, create(name, email, pw), 400, "VALIDATION_ERROR", "password", "username")
	}
	if h := head(t, in); h != before {
		t.Fatalf("refused passwords appended %d events", h-before)
	}
	random := make([]byte, 18)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	strong := base64.RawURLEncoding.EncodeToString(random)
	r := create(name, email, strong)
	if r.Status != 201 {
		t.Fatalf("strong random password refused: %d %s", r.Status, r.Raw)
	}
	uid := r.String("id")
	tok := in.Login(name, strong).String("token")
	path := "/api/v1/users/" + uid + "/password"
	before = head(t, in)
	expectError(t, "change to the username", in.Do("POST", path, tok, map[string]string{"password": "WendeLine", "current_password": strong}),
		400, "VALIDATION_ERROR", "password", "username")
	expectError(t, "admin resets to the email's local part", in.Do("POST", path, admin, map[string]string{"password": "w.okonkwo-reyes!"}),
		400, "VALIDATION_ERROR", "password", "username")
	expectError(t, "admin resets to a listed password", in.Do("POST", path, admin, map[string]string{"password": "qwerty1234"}),
		400, "VALIDATION_ERROR", "password", "common")
	if h := head(t, in); h != before {
		t.Fatalf("refused password changes appended %d events", h-before)
	}
	expectStatus(t, "change to a strong password", in.Do("POST", path, tok, map[string]string{"password": strong + "-2", "current_password": strong}), 204)
}

// TestPasswordUnicodeFormsSignIn (NIST SP 800-63B §5.1.1.2: verifiers SHOULD
// apply NFKC or NFKD): a user created with a password whose é is one code
// point (NFC) signs in typing it as e and a combining accent (NFD), and the
// reverse; a change of password too. An account whose hash was made before
// passwords were normalised (argon2id of the password as typed) still signs
// in with the password as typed.
func TestPasswordUnicodeFormsSignIn(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	const nfc, nfd = "caf\u00e9-zebra-quiet", "cafe\u0301-zebra-quiet"
	create := func(name, pw string) string {
		t.Helper()
		r := in.Do("POST", "/api/v1/users", admin, map[string]any{
			"username": name, "email": name + "@example.com", "password": pw,
			"tenants": []map[string]string{{"id": "prod", "role": "viewer"}},
		})
		if r.Status != 201 {
			t.Fatalf("create %s: %d %s", name, r.Status, r.Raw)
		}
		return r.String("id")
	}
	signsIn := func(what, name, pw string) {
		t.Helper()
		if r := login(in, name, pw); r.Status != 200 {
			t.Errorf("%s: %s typing %+q: %d %s", what, name, pw, r.Status, r.Raw)
		}
	}
	create("setnfc", nfc)
	signsIn("set in NFC, typed in NFD", "setnfc", nfd)
	signsIn("set in NFC, typed in NFC", "setnfc", nfc)
	id := create("setnfd", nfd)
	signsIn("set in NFD, typed in NFC", "setnfd", nfc)
	signsIn("set in NFD, typed in NFD", "setnfd", nfd)
	if r := login(in, "setnfd", "cafe-zebra-quiet"); r.Status != 401 {
		t.Errorf("without the accent: %d, want 401", r.Status)
	}
	const changed = "r\u00e9sum\u00e9-lantern-fog"
	expectStatus(t, "change to an NFC password", in.Do("POST", "/api/v1/users/"+id+"/password", admin, map[string]string{"password": changed}), 204)
	signsIn("changed in NFC, typed in NFD", "setnfd", "re\u0301sume\u0301-lantern-fog")

	// A hash made before this build: argon2id of the password as typed
	// (NFD here), without the mark. It signs in as before.
	create("oldhash", "zq7k-placeholder-strong")
	old, err := argon2id.CreateHash(nfd, &argon2id.Params{Memory: CheapHash.MemoryKiB, Iterations: CheapHash.Iterations,
		Parallelism: CheapHash.Parallelism, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	forcePasswordHash(t, in, "oldhash", old)
	signsIn("a hash made before normalisation, typed as it was set", "oldhash", nfd)
}

// TestPasswordPolicyLooksPastBlanksAndInvisibles: over HTTP, a new password
// that is a common one with spaces at its ends or invisible characters in it
// is refused as common; one of spaces, tabs or zero-width spaces only is
// refused as blank — not "is required" —, on creation and on a change; one
// with U+FFFD (a lone surrogate escape, or a byte that is not UTF-8, as the
// JSON decoder gives it) is refused naming it; nothing is appended.
func TestPasswordPolicyLooksPastBlanksAndInvisibles(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	create := func(name, pw string) Response {
		return in.Do("POST", "/api/v1/users", admin, map[string]any{
			"username": name, "email": name + "@example.com", "password": pw,
			"tenants": []map[string]string{{"id": "prod", "role": "viewer"}},
		})
	}
	r := create("target", "zq7k-strong-enough")
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	path := "/api/v1/users/" + r.String("id") + "/password"
	before := head(t, in)
	for i, pw := range []string{"password123 ", " iloveyou123", "password\u200b123", "\ufeffqwerty123\u2060"} {
		expectError(t, fmt.Sprintf("common %+q", pw), create(fmt.Sprintf("common%d", i), pw), 400, "VALIDATION_ERROR", "password", "common")
	}
	for i, pw := range []string{strings.Repeat(" ", 8), strings.Repeat("\t", 8), strings.Repeat("\n", 8), strings.Repeat("\u200b", 8)} {
		expectError(t, fmt.Sprintf("blank %+q", pw), create(fmt.Sprintf("blank%d", i), pw), 400, "VALIDATION_ERROR", "password", "must not be blank")
		expectError(t, fmt.Sprintf("change to blank %+q", pw), in.Do("POST", path, admin, map[string]string{"password": pw}),
			400, "VALIDATION_ERROR", "password", "must not be blank")
	}
	for what, body := range map[string]string{
		"a lone surrogate": `{"username":"fffd","email":"fffd@example.com","password":"zq7k-strong-\udc00-enough","tenants":[{"id":"prod","role":"viewer"}]}`,
		"a byte 0xff":      "{\"username\":\"fffd\",\"email\":\"fffd@example.com\",\"password\":\"zq7k-strong-\xff-enough\",\"tenants\":[{\"id\":\"prod\",\"role\":\"viewer\"}]}",
		"U+FFFD itself":    `{"username":"fffd","email":"fffd@example.com","password":"zq7k-strong-\ufffd-enough","tenants":[{"id":"prod","role":"viewer"}]}`,
	} {
		expectError(t, what, in.Do("POST", "/api/v1/users", admin, []byte(body)), 400, "VALIDATION_ERROR", "password", "U+FFFD")
	}
	if h := head(t, in); h != before {
		t.Fatalf("refused passwords appended %d events", h-before)
	}
}
