package events

import "strings"

// ackSequences reads, from the reply subject of a message a JetStream
// consumer delivered, its stream and consumer sequences and how many
// messages were pending after it: what jetstream.Msg.Metadata reads, without
// allocating the rest of it (Consume's loop runs once per event of a replay).
// ok=false for a subject it does not read: Consume then asks Metadata, which
// knows every form and says what is wrong.
//
// The forms (nats.go's internal/parser.GetMetadataFields):
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>
//	$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>[.<token>...]
func ackSequences(reply string) (stream, consumer, pending uint64, ok bool) {
	rest, found := strings.CutPrefix(reply, "$JS.ACK.")
	if !found {
		return 0, 0, 0, false
	}
	var tokens [12]string
	n := 2 // "$JS", "ACK"
	for n < len(tokens) {
		tok, after, more := strings.Cut(rest, ".")
		tokens[n] = tok
		n++
		if !more {
			rest = ""
			break
		}
		rest = after
	}
	off := 0
	switch {
	case n == 9 && rest == "":
	case n >= 11:
		off = 2
	default:
		return 0, 0, 0, false
	}
	stream, ok1 := parseDecimal(tokens[5+off])
	consumer, ok2 := parseDecimal(tokens[6+off])
	pending, ok3 := parseDecimal(tokens[8+off])
	if !ok1 || !ok2 || !ok3 {
		return 0, 0, 0, false
	}
	return stream, consumer, pending, true
}

// parseDecimal parses an unsigned decimal of at most 19 digits.
func parseDecimal(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
