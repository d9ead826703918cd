package events

import (
	"testing"
)

// TestAckSequencesAsNATS: the reply subjects of both forms are read as
// nats.go's Metadata reads them; anything else is left to Metadata.
func TestAckSequencesAsNATS(t *testing.T) {
	for _, c := range []struct {
		reply                    string
		stream, consumer, pendng uint64
		ok                       bool
	}{
		{"$JS.ACK.AUTH.c1.1.42.7.1700000000000000000.99", 42, 7, 99, true},
		{"$JS.ACK.hub.ACCHASH.AUTH.c1.1.42.7.1700000000000000000.0.rand", 42, 7, 0, true},
		{"$JS.ACK._.ACCHASH.AUTH.c1.1.42.7.1700000000000000000.5", 42, 7, 5, true},
		{"$JS.ACK.hub.ACCHASH.AUTH.c1.1.42.7.17.5.t.future", 42, 7, 5, true},
		{"$JS.ACK.AUTH.c1.1.42.7.17", 0, 0, 0, false},                     // 8 tokens
		{"$JS.ACK.hub.ACCHASH.AUTH.c1.1.42.7.17", 0, 0, 0, false},         // 10 tokens
		{"$JS.ACK.AUTH.c1.1.x.7.17.5", 0, 0, 0, false},                    // not a number
		{"$JS.ACK.AUTH.c1.1..7.17.5", 0, 0, 0, false},                     // empty
		{"$JS.ACK.AUTH.c1.1.99999999999999999999.7.17.5", 0, 0, 0, false}, // too long
		{"$JS.NAK.AUTH.c1.1.42.7.17.5", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	} {
		s, cs, p, ok := ackSequences(c.reply)
		if ok != c.ok || s != c.stream || cs != c.consumer || p != c.pendng {
			t.Errorf("%q: %d %d %d %v, want %d %d %d %v", c.reply, s, cs, p, ok, c.stream, c.consumer, c.pendng, c.ok)
		}
	}
}
