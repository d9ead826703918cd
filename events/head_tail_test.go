package events_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/natstest"
)

// TestHeadIsTheLastStoredEvent: with the stream's last messages missing
// (deleted here; an outside check, 18r, cut the last block short), the head
// is the last message that exists — not the stream's last sequence, which
// nobody can deliver and a replica would wait for forever — the loss is
// logged once as a warning, and events appended after it are the head again.
func TestHeadIsTheLastStoredEvent(t *testing.T) {
	ctx := context.Background()
	var logged bytes.Buffer
	st := natstest.StoreWithDeletes(t, events.StoreConfig{Log: slog.New(slog.NewTextHandler(&logged, nil))})
	appendN := func(from, n int) {
		for i := from; i < from+n; i++ {
			if _, err := st.Append(ctx, events.Message{Subject: events.Subject("user", fmt.Sprint("u", i)), ID: fmt.Sprint("c", i), Data: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	head := func(want uint64) {
		t.Helper()
		if got, err := st.Head(ctx); err != nil || got != want {
			t.Fatalf("Head = %d, %v; want %d", got, err, want)
		}
	}
	appendN(0, 5)
	head(5)
	stream, err := st.JetStream().Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{5, 4, 2} { // the tail, and one in the middle
		if err := stream.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	head(3)
	head(3)
	if n := strings.Count(logged.String(), "level=WARN"); n != 1 || !strings.Contains(logged.String(), "missing_from_seq=4 missing_to_seq=5") {
		t.Fatalf("want one warning naming the sequences 4 to 5 missing, got %d:\n%s", n, logged.String())
	}
	appendN(5, 2)
	head(7)
	if strings.Count(logged.String(), "level=WARN") != 1 {
		t.Fatalf("warned again:\n%s", logged.String())
	}
	if err := stream.DeleteMsg(ctx, 7); err != nil {
		t.Fatal(err)
	}
	head(6)
}
