package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/natstest"
)

// TestAckSequencesReadsTheServersReplies: the reply subjects of the embedded
// server's deliveries are read without Metadata, to the same sequences.
func TestAckSequencesReadsTheServersReplies(t *testing.T) {
	st := natstest.EmbeddedStore(t, events.EmbeddedOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		if _, err := st.JetStream().Publish(ctx, "infracast.auth.user.u", []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := st.JetStream().OrderedConsumer(ctx, st.StreamName(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for msg := range batch.Messages() {
		md, err := msg.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		s, c, p, ok := events.AckSequences(msg.Reply())
		if !ok || s != md.Sequence.Stream || c != md.Sequence.Consumer || p != md.NumPending {
			t.Errorf("%q: %d %d %d %v, Metadata %+v", msg.Reply(), s, c, p, ok, md)
		}
		n++
	}
	if n != 3 || batch.Error() != nil {
		t.Fatalf("%d messages, %v", n, batch.Error())
	}
}
