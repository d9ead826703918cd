package commands

import (
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
	for _, pw := range []string{
		"babygirl", "chocolate", "qwertyui", "asdfasdf", "11223344", "123456789a",
		"qwerty1234", "passwordpassword",
		"password", "Password", "PASSWORD1", "iloveyou", "Sunshine", "trustno1", "1q2w3e4r5t",
	} {
		refused(t, pw, p.Check(pw))
	}
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
