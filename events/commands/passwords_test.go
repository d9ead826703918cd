package commands

import (
	"context"
	"strings"
	"testing"

	"github.com/alexedwards/argon2id"
)

// verifies is p.Verify of a request that does not end, nothing checked
// before the argon2id: the test fails on an error.
func verifies(t *testing.T, p *Passwords, password, hash string) bool {
	t.Helper()
	ok, err := p.Verify(context.Background(), Claimant{}, password, hash, nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return ok
}

// decoy is p.Decoy as verifies is p.Verify.
func decoy(t *testing.T, p *Passwords, password, hash string) {
	t.Helper()
	if err := p.Decoy(context.Background(), Claimant{}, password, hash, nil); err != nil {
		t.Fatalf("decoy: %v", err)
	}
}

// refusedSaying fails the test unless err is the policy's validation error on
// the password whose message contains want.
func refusedSaying(t *testing.T, what string, err error, want string) {
	t.Helper()
	refused(t, what, err)
	if err != nil && !strings.Contains(err.Error(), want) {
		t.Errorf("%s: the message %q does not say %q", what, err, want)
	}
}

// TestPasswordsAreNormalized (NIST SP 800-63B §5.1.1.2: verifiers SHOULD
// apply NFKC or NFKD): a password hashed in one Unicode form verifies in the
// other — composed (NFC) and decomposed (NFD) accents, full-width letters —
// and a wrong one still does not.
func TestPasswordsAreNormalized(t *testing.T) {
	p := mustPasswords(t)
	for _, c := range []struct{ set, typed string }{
		{"caf\u00e9-zebra-quiet", "cafe\u0301-zebra-quiet"}, // NFC set, NFD typed
		{"cafe\u0301-zebra-quiet", "caf\u00e9-zebra-quiet"}, // and the reverse
		{"Åsa-\u1e9b\u0323-lantern", "A\u030asa-\u017f\u0323\u0307-lantern"},
		{"ｗｉｄｅ-ｐａｓｓｗｏｒｄ-9", "wide-password-9"}, // NFKC: full-width letters
	} {
		h, err := p.Hash(context.Background(), Claimant{}, c.set)
		if err != nil {
			t.Fatal(err)
		}
		if !verifies(t, p, c.typed, h) {
			t.Errorf("set %+q, typed %+q: refused", c.set, c.typed)
		}
		if !verifies(t, p, c.set, h) {
			t.Errorf("set %+q: refused as set", c.set)
		}
		if verifies(t, p, c.typed+"x", h) || verifies(t, p, strings.ToUpper(c.typed), h) {
			t.Errorf("set %+q: a wrong password verifies", c.set)
		}
	}
	// Length rules count the normalised form: eight characters typed as
	// sixteen code points (e + U+0301) are eight, and pass.
	if err := p.Check(strings.Repeat("e\u0301", 4)+"zq7k", PasswordContext{}); err != nil {
		t.Errorf("eight characters in NFD: %v", err)
	}
	refusedSaying(t, "seven characters in NFD", p.Check(strings.Repeat("e\u0301", 4)+"zq7", PasswordContext{}), "at least 8")
}

// TestPasswordHashesMadeBeforeNormalizationStillVerify: a hash made the old
// way — argon2id of the password as typed, no mark — verifies against the
// password as typed, and only that: the other Unicode form of it does not
// (one argon2id a verification, never a second try). Old and new hashes
// both remain PHC strings the argon2id library reads.
func TestPasswordHashesMadeBeforeNormalizationStillVerify(t *testing.T) {
	p := mustPasswords(t)
	for _, raw := range []string{"cafe\u0301-zebra-quiet", "caf\u00e9-zebra-quiet", "plain-ascii-words", "ｗｉｄｅ-ｐａｓｓ"} {
		old, err := argon2id.CreateHash(raw, p.params)
		if err != nil {
			t.Fatal(err)
		}
		if !verifies(t, p, raw, old) {
			t.Errorf("old hash of %+q: refused", raw)
		}
		if other := normalize(raw); other != raw && verifies(t, p, other, old) {
			t.Errorf("old hash of %+q: its NFKC form %+q verifies (a second try?)", raw, other)
		}
	}
	h, err := p.Hash(context.Background(), Claimant{}, "plain-ascii-words")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h, "p=1"+nfkcParam+"$") {
		t.Fatalf("a new hash is not marked: %s", h)
	}
	// An older build's library reads the marked hash (it ignores what
	// follows p=…): a rolling upgrade or a rollback still signs in the
	// passwords whose NFKC form is the one typed.
	if ok, err := argon2id.ComparePasswordAndHash("plain-ascii-words", h); !ok || err != nil {
		t.Errorf("the argon2id library does not verify a marked hash: %v %v", ok, err)
	}
	if verifies(t, p, "plain-ascii-words", "") || verifies(t, p, "", "") {
		t.Error("an unknown user (the dummy hash) verifies")
	}
}

// TestCheckLooksPastSpacesAndInvisibleCharacters: the blocklist and the
// context words are looked up without spaces at the ends and without
// invisible characters (zero-width space and joiners, word joiner, byte
// order mark, soft hyphen), and a password of only those is blank; the
// password keeps them otherwise (inner spaces, a strong one with a space at
// its end).
func TestCheckLooksPastSpacesAndInvisibleCharacters(t *testing.T) {
	p := mustPasswords(t)
	who := PasswordContext{Username: "alice.smith", Email: "alice.smith@example.com"}
	for _, pw := range []string{
		"password123 ", " iloveyou123", "\tpassword123\n", "\u00a0password123\u3000",
		"password\u200b123", "pass\u200cword\u200d123", "\u2060password123\ufeff", "pass\u00adword123",
		"iloveyou\ufe0f", "\u200bALICE.SMITH2024", "alice.smith\u200b!!",
		"pass\u2800word123", "password\x00123", "pass\tword123", "\u3164password123",
	} {
		refused(t, pw, p.Check(pw, who))
	}
	for _, pw := range []string{
		strings.Repeat("\u200b", 8), strings.Repeat(" ", 8), strings.Repeat("\t", 8), "\n\n\n\n\n\n\n\n",
		strings.Repeat("\ufeff", 12), "\u200b \u2060 \u200d \u200c ", "", strings.Repeat("\u2800", 8), strings.Repeat("\x00", 8),
	} {
		refusedSaying(t, "blank "+strings.ToValidUTF8(pw, "?"), p.Check(pw, who), "must not be blank")
	}
	// Shorter than the minimum once the invisible characters and the
	// spaces at the ends are gone.
	for _, pw := range []string{"zq7k-x2 ", "   zq7kx2", "zq7\u200b\u200b\u200bkx2"} {
		refusedSaying(t, pw, p.Check(pw, who), "at least 8 characters")
	}
	for _, pw := range []string{"correct horse battery", " correct-horse-battery ", "Xq7-vLm2-Rt9w-Kp4z "} {
		if err := p.Check(pw, who); err != nil {
			t.Errorf("%q refused: %v", pw, err)
		}
	}
	// Spaces are kept in what is hashed: without them it is another password.
	h, err := p.Hash(context.Background(), Claimant{}, " correct-horse-battery ")
	if err != nil {
		t.Fatal(err)
	}
	if verifies(t, p, "correct-horse-battery", h) || !verifies(t, p, " correct-horse-battery ", h) {
		t.Error("spaces at the ends are not part of the stored password")
	}
}

// TestCheckRefusesTheReplacementCharacter: a new password with U+FFFD — what
// a JSON decoder makes of an invalid byte or a lone surrogate — is refused
// with a message that names it, and so is one that is not UTF-8 at all; a
// hash made before of such a password still verifies (logins do not change).
func TestCheckRefusesTheReplacementCharacter(t *testing.T) {
	p := mustPasswords(t)
	for _, pw := range []string{"\ufffd-zq7k-strong-enough", "zq7k-strong-enough-\ufffd", strings.Repeat("\ufffd", 10)} {
		refusedSaying(t, pw, p.Check(pw, PasswordContext{}), "U+FFFD")
	}
	refusedSaying(t, "raw 0xff", p.Check("zq7k-strong-\xff-enough", PasswordContext{}), "valid UTF-8")
	old, err := argon2id.CreateHash("zq7k-strong-\ufffd-enough", p.params)
	if err != nil {
		t.Fatal(err)
	}
	if !verifies(t, p, "zq7k-strong-\ufffd-enough", old) {
		t.Error("an old hash of a password with U+FFFD no longer verifies")
	}
}

// TestCheckBoundsTheBytes: at most MaxPasswordBytes bytes of UTF-8 of the
// normalised form, with a message that says so.
func TestCheckBoundsTheBytes(t *testing.T) {
	p := mustPasswords(t)
	at := strings.Repeat("zq7k-", MaxPasswordBytes/5) + strings.Repeat("x", MaxPasswordBytes%5)
	if err := p.Check(at, PasswordContext{}); err != nil {
		t.Errorf("%d bytes: %v", len(at), err)
	}
	refusedSaying(t, "one byte more", p.Check(at+"x", PasswordContext{}), "at most 4096 bytes")
	// U+FDFA is 3 bytes and 33 in NFKC: 200 of them are 600 bytes typed and
	// 6,600 normalised.
	refusedSaying(t, "long once normalised", p.Check(strings.Repeat("\ufdfa", 200), PasswordContext{}), "at most 4096 bytes")
}

// TestVerifyAndDecoyRunAtTheHashsCost: a verification runs one argon2id at
// the cost recorded in the hash, whatever the hasher's own (LastRun tells
// which); Decoy runs the same one, against the dummy hash (the hasher's
// cost) when given none, and has no outcome to tell.
func TestVerifyAndDecoyRunAtTheHashsCost(t *testing.T) {
	old := mustPasswords(t)
	h, err := old.Hash(context.Background(), Claimant{}, "a-stored-passphrase")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := NewPasswords(HashParams{MemoryKiB: 128, Iterations: 2, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	stored := HashParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}
	if got := old.LastRun(); got != stored {
		t.Fatalf("a hash ran at %+v, want %+v", got, stored)
	}
	for _, c := range []struct {
		what string
		run  func()
		want HashParams
	}{
		{"Verify", func() { verifies(t, cur, "a-stored-passphrase", h) }, stored},
		{"Decoy", func() { decoy(t, cur, "a-stored-passphrase", h) }, stored},
		{"Verify without a hash", func() { verifies(t, cur, "a-guess", "") }, HashParams{MemoryKiB: 128, Iterations: 2, Parallelism: 1}},
		{"Decoy without a hash", func() { decoy(t, cur, "a-guess", "") }, HashParams{MemoryKiB: 128, Iterations: 2, Parallelism: 1}},
	} {
		runs := cur.Runs()
		c.run()
		if n := cur.Runs() - runs; n != 1 {
			t.Errorf("%s: %d argon2id, want 1", c.what, n)
		}
		if got := cur.LastRun(); got != c.want {
			t.Errorf("%s: ran at %+v, want %+v", c.what, got, c.want)
		}
	}
}
