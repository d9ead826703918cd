package domain

import (
	"errors"
	"testing"
)

// TestNamesRefuseHiddenCharacters: the names admins type and other admins
// read — an API key's, a SCIM connection's, a passkey's — refuse control and
// invisible formatting characters: a key named "\u202eyek nimda" showed in the
// console as "admin key", and reversed the console's sentence around it (an
// outside check). Nor line separators or fillers that draw nothing, which made
// a name show as blank (outside check 12r2). Names in any script, with emoji
// (and their variation selector), pass.
func TestNamesRefuseHiddenCharacters(t *testing.T) {
	hidden := []string{
		"\u202eyek nimda",      // RIGHT-TO-LEFT OVERRIDE
		"ci \u2066key\u2069",   // LEFT-TO-RIGHT ISOLATE … POP DIRECTIONAL ISOLATE
		"prod\u200fkey",        // RIGHT-TO-LEFT MARK
		"admin\u200bkey",       // ZERO WIDTH SPACE
		"key\ufeff",            // BYTE ORDER MARK
		"tab\tkey",             // control
		"nul\x00key",           // control
		"c1\u0085key",          // C1 control (NEXT LINE)
		"bad\xffutf8",          // not UTF-8
		"arabic \u061c letter", // ARABIC LETTER MARK
		// … and (outside check 12r2) line and paragraph separators and the
		// fillers that draw nothing, alone (a name that shows blank) or within:
		"ci\u2028key",         // LINE SEPARATOR
		"ci\u2029key",         // PARAGRAPH SEPARATOR
		"\u3164",              // HANGUL FILLER
		" \u3164 \u3164 ",     // … between spaces
		"\uffa0",              // HALFWIDTH HANGUL FILLER
		"\u115f\u1160",        // HANGUL CHOSEONG/JUNGSEONG FILLER
		"\u2800\u2800",        // BRAILLE PATTERN BLANK
		"\u034f",              // COMBINING GRAPHEME JOINER
		"admin\u3164key",      // a filler within a name
		"\u2800 \u00a0\u034f", // nothing visible at all
	}
	fine := []string{"ci-cd-integration", "Ключ для prod", "מפתח ייצור", "مفتاح", "deploy 🔑 key", "café — nightly", "한글 키", "ops ❤\ufe0f key", "ℌ𝔢𝔩𝔩𝔬"}
	check := func(what string, f func(string) error) {
		t.Helper()
		for _, name := range hidden {
			var ve *ValidationError
			if err := f(name); !errors.As(err, &ve) || ve.Field != "name" {
				t.Errorf("%s %q: %v, want a validation error of name", what, name, err)
			}
		}
		for _, name := range fine {
			if err := f(name); err != nil {
				t.Errorf("%s %q: %v", what, name, err)
			}
		}
	}
	check("API key", func(name string) error {
		_, err := DecideAPIKey(APIKey{}, keyCreateWith(func(c *CreateAPIKey) { c.Name = name }))
		return err
	})
	check("SCIM connection", func(name string) error {
		_, err := CheckSCIMConnectionName(name)
		return err
	})
	check("passkey", ValidPasskeyName)
}

// TestNamesKeepJoinersBetweenVisibleCharacters: a zero width joiner or
// non-joiner between two visible characters is part of the name — an emoji
// sequence, a Persian word — and passes (a re-check: identity providers'
// group names with them could no longer be mapped); anywhere else it hides.
func TestNamesKeepJoinersBetweenVisibleCharacters(t *testing.T) {
	for _, name := range []string{"Dev 👩\u200d💻", "گروه\u200cها", "👨\u200d👩\u200d👧 family"} {
		if hasHiddenRuneInName(name) {
			t.Errorf("%q refused", name)
		}
		if _, err := CheckSCIMConnectionName(name); err != nil {
			t.Errorf("SCIM connection %q: %v", name, err)
		}
	}
	for _, name := range []string{"\u200dkey", "key\u200d", "a \u200db", "a\u200d b", "a\u200d\u200db", "a\u200c\u202eb", "\u200c"} {
		if !hasHiddenRuneInName(name) {
			t.Errorf("%q passed", name)
		}
	}
	// Addresses and identifiers stay strict.
	if !hasHiddenRune("gr\u200coup") {
		t.Error("a joiner passed the strict check")
	}
}
