// Package invisible names the characters that show nothing of themselves
// or act on what shows them, which the CLI (cmd/infracast) and the CSV
// exports (http) write as escapes: one definition, so that both hide the
// same ones (re-check 20r2: the CSV gave U+200F, U+061C and U+200B raw
// while the CLI escaped them). The console's HIDDEN (http/console/src/ui.tsx)
// is the same set. Standard library only: the CLI, a client of the public
// API, imports it (tests/imports_test.go).
package invisible

import "unicode"

// Rune reports whether r is such a character, the C0 controls (U+0000–
// U+001F) aside, which each user writes its own way (the CLI as \t, \x1b;
// a CSV cell holds a tab or a line break as data): DEL and the C1 controls
// (CSI and OSC, U+009B and U+009D, clear the screen or set its title in
// terminals that read UTF-8 controls), the direction marks, embeddings,
// overrides and isolates (U+202E reorders what follows), the line and
// paragraph separators, the invisible operators and fillers, and every
// other format character (Cf) — tags (U+E0041), for one: the service
// refuses them all in names (domain/names.go) — but the zero width
// (non-)joiners, which join emoji and words.
func Rune(r rune) bool {
	switch {
	case r < 0x7f:
		return false
	case r <= 0x9f:
		return true
	case r == 0xad, r == 0x34f, r == 0x61c, r == 0x115f, r == 0x1160, r == 0x180e, r == 0x200b, r == 0x200e, r == 0x200f,
		r == 0x2800, r == 0x3164, r == 0xfeff, r == 0xffa0:
		return true
	case r >= 0x2028 && r <= 0x202e, r >= 0x2060 && r <= 0x2064, r >= 0x2066 && r <= 0x206f, r >= 0xfff9 && r <= 0xfffb:
		return true
	}
	return r != 0x200c && r != 0x200d && unicode.Is(unicode.Cf, r)
}
