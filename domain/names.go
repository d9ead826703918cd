package domain

import (
	"unicode"
)

// hiddenRune reports a character that shows nothing of itself but changes
// how the text around it reads, or shows as blank space that is not a
// space: a control character (Cc: C0, DEL, C1), an invisible formatting one
// (Cf: the bidirectional overrides and isolates U+202A–202E and
// U+2066–2069, the marks U+200E/U+200F/U+061C, zero-width characters, the
// BOM), the line and paragraph separators U+2028/U+2029 (Zl, Zp), and the
// fillers that draw nothing: HANGUL FILLER U+3164 and its halfwidth form
// U+FFA0, the Hangul choseong/jungseong fillers U+115F/U+1160, BRAILLE
// PATTERN BLANK U+2800 and COMBINING GRAPHEME JOINER U+034F. A name an admin
// types is shown to other admins; with these in it, "\u202eyek nimda" reads
// as "admin key", the console's sentence around it runs backwards, and a
// name of fillers alone shows as nothing.
func hiddenRune(r rune) bool {
	switch r {
	case '\u3164', '\uffa0', '\u115f', '\u1160', '\u2800', '\u034f':
		return true
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

// hasHiddenRune reports whether s holds a hiddenRune, or is not valid UTF-8
// (an invalid byte reads as U+FFFD, which shows, but is not what was sent).
func hasHiddenRune(s string) bool {
	for _, r := range s {
		if hiddenRune(r) || r == unicode.ReplacementChar {
			return true
		}
	}
	return false
}

// hasHiddenRuneInName is hasHiddenRune for names people read (keys, SCIM
// connections, passkeys, groups): a ZERO WIDTH JOINER or NON-JOINER
// (U+200D, U+200C) between two visible characters is part of how the name
// is written — an emoji sequence ("👩\u200d💻"), a Persian word ("گروه\u200cها")
// — and passes; anywhere else (at an end, beside a space or another hidden
// character) it hides, and is refused. (A re-check: identity providers'
// group names with them could no longer be mapped.)
func hasHiddenRuneInName(s string) bool {
	var prev rune = -1
	pending := false // a joiner after a visible character, waiting for the next
	for _, r := range s {
		switch {
		case r == unicode.ReplacementChar:
			return true
		case r == '\u200c' || r == '\u200d':
			if pending || prev < 0 || !visible(prev) {
				return true
			}
			pending = true
		case hiddenRune(r):
			return true
		default:
			if pending && !visible(r) {
				return true
			}
			pending = false
		}
		prev = r
	}
	return pending
}

// visible: a character that draws something — not a space, not hidden.
func visible(r rune) bool {
	return !unicode.IsSpace(r) && !hiddenRune(r) && r != '\u200c' && r != '\u200d'
}

// hiddenMessage is the complaint about a field that holds a hiddenRune.
const hiddenMessage = "must not contain control or invisible characters (direction overrides, zero-width characters, line separators, blank fillers)"

// checkNoHidden refuses a value of field that holds a hiddenRune (or is not
// valid UTF-8). Commands check what they are given; events already stored
// are never checked again, so they replay as before.
func checkNoHidden(field, v string) error {
	if hasHiddenRune(v) {
		return Invalid(field, hiddenMessage)
	}
	return nil
}
