package domain

import (
	"unicode"
)

// hiddenRune reports a character that shows nothing of itself but changes
// how the text around it reads: a control character (Cc: C0, DEL, C1) or
// an invisible formatting one (Cf: the bidirectional overrides and
// isolates U+202A–202E and U+2066–2069, the marks U+200E/U+200F/U+061C,
// zero-width characters, the BOM). A name an admin types is shown to other
// admins; with these in it, "\u202eyek nimda" reads as "admin key", and
// the console's sentence around it runs backwards.
func hiddenRune(r rune) bool {
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r)
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
