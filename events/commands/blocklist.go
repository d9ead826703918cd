package commands

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/binary"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

//go:generate sh blocklist/generate.sh

// commonPasswordsGz is the blocklist of NIST SP 800-63B §5.1.1.2 (values
// from breach corpuses, commonly used values): the 100,000 most common
// passwords of at least blocklistMinRunes characters of a public breach list,
// lowercased, sorted, one a line, gzip-compressed (blocklist/README.md names
// the source and its licence; blocklist/generate.sh rebuilds the file).
//
//go:embed blocklist/common-passwords.txt.gz
var commonPasswordsGz []byte

// blocklistMinRunes is the generator's -min: shorter entries of the source
// are left out, because the length rule refuses them before the list is
// asked. A MinLength below it would let those through.
const blocklistMinRunes = 8

// commonPasswords is the blocklist, unpacked on first use (a process that
// never sets a password never pays for it): about 1.3 MB of heap, some 10 ms once.
var commonPasswords = sync.OnceValue(func() *wordList {
	w, err := loadWordList(commonPasswordsGz)
	if err != nil {
		panic("commands: the embedded password blocklist is unreadable: " + err.Error())
	}
	return w
})

// wordList is a sorted set of strings held in one string and an offset per
// entry: the text itself plus 4 bytes an entry, where a map would add some
// 40 bytes an entry (string header, hash buckets) and a []string 16.
// Lookup is a binary search: about 17 string comparisons for 100,000 entries.
type wordList struct {
	text string   // the entries, sorted, each followed by '\n'
	off  []uint32 // off[i] is where entry i starts; off[Len()] is len(text)
}

// loadWordList unpacks a gzip-compressed, sorted list of lines.
func loadWordList(gz []byte) (*wordList, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	if len(gz) >= 4 { // the gzip trailer holds the unpacked size: one exact allocation
		if n := binary.LittleEndian.Uint32(gz[len(gz)-4:]); n < 64<<20 {
			b.Grow(int(n))
		}
	}
	if _, err := io.Copy(&b, zr); err != nil {
		return nil, err
	}
	if err := zr.Close(); err != nil {
		return nil, err
	}
	return newWordList(b.String()), nil
}

// newWordList indexes text: sorted lines, each ended by '\n'.
func newWordList(text string) *wordList {
	off := make([]uint32, 1, strings.Count(text, "\n")+1)
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			off = append(off, uint32(i+1))
		}
	}
	return &wordList{text: text, off: off}
}

// Len is the number of entries.
func (w *wordList) Len() int { return len(w.off) - 1 }

// at returns entry i.
func (w *wordList) at(i int) string { return w.text[w.off[i] : w.off[i+1]-1] }

// contains reports whether s is an entry.
func (w *wordList) contains(s string) bool {
	lo, hi := 0, w.Len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch e := w.at(m); {
		case e == s:
			return true
		case e < s:
			lo = m + 1
		default:
			hi = m
		}
	}
	return false
}

// PasswordContext is what a new password must not be built on (NIST SP
// 800-63B §5.1.1.2, context-specific words): the account's username and
// email address. Every call site that sets a password passes them.
type PasswordContext struct {
	Username, Email string
}

// serviceWords are the service's own names: "infracast" covers
// "infracast-auth" and "infracastauth" too.
var serviceWords = []string{"infracast"}

// contextMinRunes is the shortest context word looked for inside a
// password: shorter ones (a three-letter username) would turn up inside
// unrelated passwords, and a password equal to one is refused by the
// length rule anyway.
const contextMinRunes = 4

// words returns the context words, lowercased, longest first, without
// repeats: the service's names, the username, the email address, its local
// part and that part without a "+tag".
func (c PasswordContext) words() []string {
	ws := append([]string(nil), serviceWords...)
	add := func(w string) {
		w = strings.ToLower(strings.TrimSpace(w))
		if utf8.RuneCountInString(w) < contextMinRunes {
			return
		}
		if !slices.Contains(ws, w) {
			ws = append(ws, w)
		}
	}
	add(c.Username)
	if email := strings.TrimSpace(c.Email); email != "" {
		add(email)
		if at := strings.LastIndexByte(email, '@'); at > 0 {
			local := email[:at]
			add(local)
			if plus := strings.IndexByte(local, '+'); plus > 0 {
				add(local[:plus])
			}
		}
	}
	// Longest first, so that the email address goes before its local part.
	slices.SortStableFunc(ws, func(a, b string) int { return len(b) - len(a) })
	return ws
}

// builtOnContext reports whether lower (a lowercased password) contains a
// context word and what is left without it would not pass on its own: an
// attacker who targets the account knows those words, so they add nothing.
// What is left, trimmed of the punctuation and spaces around it, must have
// at least minRunes characters and not be on the blocklist: "alice2024",
// "Alice-Alice", "password@alice" and "infracast-auth" are refused,
// "alice-correct-horse-battery" is not.
func builtOnContext(lower string, c PasswordContext, minRunes int) bool {
	rest := lower
	for _, w := range c.words() {
		rest = strings.ReplaceAll(rest, w, "")
	}
	if rest == lower {
		return false
	}
	rest = strings.TrimFunc(rest, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
	return utf8.RuneCountInString(rest) < minRunes || commonPasswords().contains(rest)
}
