package http

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// truncate cuts at a character boundary, never past n bytes, and gives
// valid UTF-8 (outside check 15h: half an "é" became a longer U+FFFD).
func TestTruncateAtACharacter(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	for _, c := range []struct{ in, want string }{
		{"curl/8.0", "curl/8.0"},
		{a(256), a(256)},
		{a(257), a(256)},
		{a(255) + "é", a(255)},                               // é is 2 bytes: not half of it
		{a(254) + "é", a(254) + "é"},                         // exactly 256
		{a(254) + "€", a(254)},                               // € is 3 bytes
		{a(253) + "😀x", a(253)},                              // 4 bytes
		{a(10) + "\xff\xfe" + a(5), a(10) + "\uFFFD" + a(5)}, // invalid bytes: one U+FFFD
		{a(254) + "\xff", a(254)},                            // its U+FFFD would pass 256 bytes
	} {
		got := truncate(c.in, 256)
		if got != c.want {
			t.Errorf("truncate(%q…%q): %d bytes ending %q, want %d bytes ending %q", c.in[:3], c.in[max(0, len(c.in)-5):],
				len(got), got[max(0, len(got)-5):], len(c.want), c.want[max(0, len(c.want)-5):])
		}
		if len(got) > 256 || !utf8.ValidString(got) {
			t.Errorf("truncate: %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
		}
	}
}
