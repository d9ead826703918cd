package projections_test

import (
	"context"
	"testing"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/natstest"
)

// TestRunnerReadyWithTheStreamsTailMissing: a stream whose last messages
// are missing (an outside check, 18r, cut its last block short: /ready and
// every /api/v1 route answered 503 forever) — the runner catches up with
// the last event stored, and follows the events appended after.
func TestRunnerReadyWithTheStreamsTailMissing(t *testing.T) {
	st := natstest.StoreWithDeletes(t, events.StoreConfig{})
	for _, id := range []string{"user-1", "user-2", "user-3"} {
		appendEvent(t, st, "user", id, 0, domain.UserCreated{UserID: id, Username: id})
	}
	ctx := context.Background()
	stream, err := st.JetStream().Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{3, 2} {
		if err := stream.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	r := run(t, st)
	waitReady(t, r, "with the stream's last events missing")
	seq := appendEvent(t, st, "user", "user-4", 0, domain.UserCreated{UserID: "user-4", Username: "user-4"})
	waitFor(t, r, seq)
}
