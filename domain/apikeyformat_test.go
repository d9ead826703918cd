package domain

import (
	"strings"
	"testing"
)

func TestAPIKeyFormat(t *testing.T) {
	var r [32]byte
	for i := range r {
		r[i] = byte(i * 7)
	}
	k := FormatAPIKey(KeyEnvLive, r)
	if !strings.HasPrefix(k, "ic_live_") || len(k) != len("ic_live_")+49 {
		t.Fatalf("key %q", k)
	}
	if env, err := ParseAPIKey(k); err != nil || env != KeyEnvLive {
		t.Fatalf("parse: %q %v", env, err)
	}
	if env, err := ParseAPIKey(FormatAPIKey(KeyEnvTest, r)); err != nil || env != KeyEnvTest {
		t.Fatalf("parse test key: %q %v", env, err)
	}
	var max [32]byte
	for i := range max {
		max[i] = 0xff
	}
	if _, err := ParseAPIKey(FormatAPIKey(KeyEnvLive, max)); err != nil {
		t.Fatalf("all-ones key: %v", err)
	}
	// Every single-character typo is caught by the checksum or the alphabet.
	for i := len("ic_live_"); i < len(k); i++ {
		for _, c := range []byte{'0', 'a', 'Z', '-'} {
			if k[i] == c {
				continue
			}
			typo := k[:i] + string(c) + k[i+1:]
			if _, err := ParseAPIKey(typo); err == nil {
				t.Fatalf("typo at %d accepted: %s", i, typo)
			}
		}
	}
	for _, bad := range []string{"", "ic_", "ic_live_", "ic_prod_" + k[8:], k + "x", k[:len(k)-1], "Bearer " + k, strings.ToUpper(k)} {
		if _, err := ParseAPIKey(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseAPIKey(f *testing.F) {
	var r [32]byte
	f.Add(FormatAPIKey(KeyEnvLive, r))
	f.Add("ic_test_abc")
	f.Add("ic_live_" + strings.Repeat("z", 49))
	f.Fuzz(func(t *testing.T, s string) {
		env, err := ParseAPIKey(s)
		if err != nil {
			return
		}
		if env != KeyEnvLive && env != KeyEnvTest {
			t.Fatalf("env %q", env)
		}
		if len(s) != len("ic_")+len(env)+1+keyBodyLen+keyChecksumLen {
			t.Fatalf("accepted length %d", len(s))
		}
	})
}
