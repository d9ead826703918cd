package commands

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/infracast/auth/domain"
)

// TestBlocklistHoldsTheCommonPasswords: the embedded list unpacks, holds at
// least 100,000 entries, sorted and without repeats, each lowercased and no
// shorter than the length rule lets through, and among them the passwords
// every breach corpus starts with.
func TestBlocklistHoldsTheCommonPasswords(t *testing.T) {
	w := commonPasswords()
	if n := w.Len(); n < 100000 {
		t.Fatalf("the blocklist holds %d entries, want at least 100,000", n)
	}
	for i := 0; i < w.Len(); i++ {
		e := w.at(i)
		if i > 0 && w.at(i-1) >= e {
			t.Fatalf("entry %d %q is not after %q: not sorted or repeated", i, e, w.at(i-1))
		}
		if e != strings.ToLower(e) || !utf8.ValidString(e) || utf8.RuneCountInString(e) < blocklistMinRunes {
			t.Fatalf("entry %d %q: not lowercased UTF-8 of at least %d characters", i, e, blocklistMinRunes)
		}
	}
	for _, p := range []string{
		"password", "12345678", "123456789", "1234567890", "qwertyuiop", "iloveyou",
		"sunshine", "princess", "football", "baseball", "superman", "trustno1",
		"1qaz2wsx", "password1", "password123", "qwerty123", "starwars", "michelle",
		"computer", "whatever", "abcd1234", "letmein1", "welcome1", "passw0rd",
	} {
		if !w.contains(p) {
			t.Errorf("%q is not on the blocklist", p)
		}
	}
	for _, p := range []string{"", "correcthorse", "zz-not-a-common-password-zz", "~~~~~~~~~~~~"} {
		if w.contains(p) {
			t.Errorf("%q is on the blocklist", p)
		}
	}
	if NewPasswordsMinLength := mustPasswords(t).MinLength; NewPasswordsMinLength < blocklistMinRunes {
		t.Fatalf("MinLength %d is below the blocklist's shortest entries (%d): shorter common passwords would pass",
			NewPasswordsMinLength, blocklistMinRunes)
	}
}

func mustPasswords(t testing.TB) *Passwords {
	t.Helper()
	p, err := NewPasswords(HashParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// refused fails the test unless err is the policy's validation error on the
// password field (the API answers it as 400 VALIDATION_ERROR naming the field).
func refused(t *testing.T, what string, err error) {
	t.Helper()
	var v *domain.ValidationError
	if !errors.As(err, &v) || v.Field != "password" {
		t.Errorf("%s: want a validation error on the password, got %v", what, err)
	}
}

// TestCheckRefusesCommonPasswords: the passwords the old ~150-entry list let
// through, and well-known ones in any case, are refused by Check.
func TestCheckRefusesCommonPasswords(t *testing.T) {
	p := mustPasswords(t)
	who := PasswordContext{Username: "someone", Email: "someone@example.com"}
	for _, pw := range []string{
		"babygirl", "chocolate", "qwertyui", "asdfasdf", "11223344", "123456789a",
		"qwerty1234", "passwordpassword",
		"password", "Password", "PASSWORD1", "iloveyou", "Sunshine", "trustno1", "1q2w3e4r5t",
	} {
		refused(t, pw, p.Check(pw, who))
	}
}

// TestCheckRefusesContextWords (NIST SP 800-63B §5.1.1.2, context-specific
// words): a password equal to the username, in any case, to the email
// address or its local part, or to the service's name is refused, and so is
// one that is such a word with too little, or only a common password, around
// it. A strong random password, and one whose part beside the username
// stands on its own, are accepted.
func TestCheckRefusesContextWords(t *testing.T) {
	p := mustPasswords(t)
	alice := PasswordContext{Username: "alice.smith", Email: "Alice.Smith+auth@Example.com"}
	for _, pw := range []string{
		"alice.smith", "ALICE.SMITH", "Alice.Smith", "aLiCe.SmItH", // the username
		"alice.smith+auth@example.com", "Alice.Smith+Auth@Example.COM", // the email address
		"alice.smith+auth", // its local part
		"alice.smith2024", "alice.smith!!", "Alice.SmithAlice.Smith", "123alice.smith",
		"alice.smith-password", "password@alice.smith", "Alice.Smith-Qwerty123",
		"infracast", "infracast-auth", "InfracastAuth", "infracast2024!", "infracast-password",
	} {
		refused(t, pw, p.Check(pw, alice))
	}
	// The email local part, also when the username is another word.
	bob := PasswordContext{Username: "rbrown", Email: "robert.brown@example.com"}
	for _, pw := range []string{"robert.brown", "Robert.Brown", "robert.brown1", "robert.brown@example.com"} {
		refused(t, pw, p.Check(pw, bob))
	}
	random := make([]byte, 18)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{
		base64.RawURLEncoding.EncodeToString(random),
		"alice.smith-correct-horse-battery", // what is left is a password of its own
		"correcthorse",
		"bob-has-a-long-secret", // a username shorter than 4 characters is not looked for
	} {
		who := alice
		if strings.HasPrefix(pw, "bob") {
			who = PasswordContext{Username: "bob", Email: "bob@example.com"}
		}
		if err := p.Check(pw, who); err != nil {
			t.Errorf("%q refused: %v", pw, err)
		}
	}
	// Without a context (no username or email known), only the service's name counts.
	if err := p.Check("alice.smith", PasswordContext{}); err != nil {
		t.Errorf("alice.smith without a context: %v", err)
	}
	refused(t, "infracast-auth without a context", p.Check("infracast-auth", PasswordContext{}))
}

// BenchmarkBlocklistLookup: one Check-sized lookup (lowercasing included),
// on an entry and on a strong password that is not one.
func BenchmarkBlocklistLookup(b *testing.B) {
	w := commonPasswords()
	for _, c := range []struct{ name, pw string }{
		{"hit", "Chocolate"},
		{"miss", "Xq7-vLm2-Rt9w-Kp4z"},
	} {
		b.Run(c.name, func(b *testing.B) {
			want := c.name == "hit"
			for b.Loop() {
				if w.contains(strings.ToLower(c.pw)) != want {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}

// BenchmarkCheck: the whole policy check of a password that passes, context
// words included (the argon2id hash that follows costs milliseconds).
func BenchmarkCheck(b *testing.B) {
	p := mustPasswords(b)
	who := PasswordContext{Username: "alice.smith", Email: "alice.smith@example.com"}
	for b.Loop() {
		if err := p.Check("Xq7-vLm2-Rt9w-Kp4z", who); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBlocklistLoad: unpacking the embedded list, and the heap it keeps
// (heap-B: live heap after loading minus before, after a collection each).
func BenchmarkBlocklistLoad(b *testing.B) {
	var before, after runtime.MemStats
	var kept int64
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		w, err := loadWordList(commonPasswordsGz)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		kept = int64(after.HeapAlloc) - int64(before.HeapAlloc)
		runtime.KeepAlive(w)
		b.StartTimer()
	}
	b.ReportMetric(float64(kept), "heap-B")
	b.ReportMetric(float64(len(commonPasswordsGz)), "embedded-B")
}
