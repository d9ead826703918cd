package http

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/infracast/auth/http/invisible"
)

// The CSV exports (the audit log's pages, the access review) are read by
// spreadsheets, which run a cell that starts like a formula. Following
// OWASP's CSV-injection guidance, every cell is quoted (so no separator a
// spreadsheet may use, ',' or ';', splits one), and a cell — and each part of
// one after a ',', ';' or tab, for a reader that ignores the quotes — that
// starts, after any spaces, with = + - @, a tab or a carriage return gets an
// apostrophe before that character
// (outside check 14d: a User-Agent "Mozilla/5.0;=cmd|' /C calc'!A0;x" went
// out unquoted, and a spreadsheet splitting on ';' ran it).

// csvFormulaStart holds the characters a spreadsheet may take for the start
// of a formula.
const csvFormulaStart = "=+-@\t\r"

// csvHidden reports whether r is neutralised in a CSV cell: the characters
// the console and the CLI show as escapes (invisible.Rune: C1 controls —
// CSI and OSC act on a terminal that reads UTF-8 controls —, direction
// marks, overrides and isolates — they reorder what follows, in a
// spreadsheet or a terminal —, zero-width and other format characters).
// Anyone may write them — a User-Agent, a SCIM display name — and the CSV
// export gave them raw (an outside check, 20a), then only some of them
// (re-check 20r2: U+200F, U+061C, U+200B). The C0 controls are the CSV's
// own (a tab or a line break in a quoted cell is data). The JSON answers
// keep them exact.
func csvHidden(r rune) bool { return invisible.Rune(r) }

// csvShown writes each csvHidden character of s as its \u escape (six
// characters, "\u202e"; above U+FFFF a UTF-16 surrogate pair, as JSON
// escapes it), as the CLI shows it: in a text cell, visible text; inside a
// JSON string, the same character once decoded.
func csvShown(s string) string {
	if !strings.ContainsFunc(s, csvHidden) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i, r := range s {
		if csvHidden(r) {
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
				continue
			}
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		b.WriteString(s[i : i+size]) // an invalid byte as it was
	}
	return b.String()
}

// csvSafe defuses a text cell: its hidden characters as escapes
// (csvShown), then an apostrophe before the cell, and before each part of it
// after a ',', ';' or tab, that starts like a formula (spaces before it
// aside).
func csvSafe(s string) string {
	s = csvShown(s)
	if !strings.ContainsAny(s, csvFormulaStart) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	start := true
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if start && strings.IndexByte(csvFormulaStart, ch) >= 0 {
			b.WriteByte('\'')
		}
		b.WriteByte(ch)
		// A tab separates too (tab-separated pasting), and spaces before a
		// part are what a spreadsheet that trims them skips (outside check
		// 18v: "Mozilla/5.0\t=HYPERLINK(…)" and "x; =2+2" went out as they were).
		start = ch == ',' || ch == ';' || ch == '\t' || start && ch == ' '
	}
	return b.String()
}

// csvSafeJSON defuses a cell holding a JSON document without changing what
// it decodes to: a ',' or ';' inside a string becomes \u002c or \u003b, so
// the only separators left are JSON's own commas (between members, before a
// '"', a bracket, a literal or a number). Its hidden characters, which
// valid JSON holds only inside strings, become \u escapes (csvShown).
func csvSafeJSON(doc []byte) string {
	if bytes.ContainsFunc(doc, csvHidden) {
		doc = []byte(csvShown(string(doc)))
	}
	if !bytes.ContainsAny(doc, ",;") {
		return csvSafe(string(doc))
	}
	var b strings.Builder
	b.Grow(len(doc) + 16)
	inString, escaped := false, false
	for _, ch := range doc {
		switch {
		case escaped:
			escaped = false
		case inString && ch == '\\':
			escaped = true
		case ch == '"':
			inString = !inString
		case inString && ch == ',':
			b.WriteString(`\u002c`)
			continue
		case inString && ch == ';':
			b.WriteString(`\u003b`)
			continue
		}
		b.WriteByte(ch)
	}
	out := b.String()
	if out != "" && strings.IndexByte(csvFormulaStart, out[0]) >= 0 {
		return "'" + out
	}
	return out
}

// writeCSV writes rows as RFC 4180 with CRLF line ends, every cell quoted
// (a '"' in one doubled). The cells are defused already (csvSafe,
// csvSafeJSON).
func writeCSV(buf *bytes.Buffer, rows [][]string) {
	for _, row := range rows {
		for i, cell := range row {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.WriteByte('"')
			buf.WriteString(strings.ReplaceAll(cell, `"`, `""`))
			buf.WriteByte('"')
		}
		buf.WriteString("\r\n")
	}
}
