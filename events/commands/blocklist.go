package commands

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/binary"
	"io"
	"strings"
	"sync"
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

// isCommonPassword reports whether password is on the blocklist, compared
// case-insensitively.
func isCommonPassword(password string) bool {
	return commonPasswords().contains(strings.ToLower(password))
}

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
