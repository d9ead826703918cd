package events_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/infracast/auth/events"
)

func appendN(t *testing.T, st *events.Store, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := st.Append(context.Background(), events.Message{
			Subject: events.Subject("user", fmt.Sprintf("u%d", i)), ExpectSeq: 0,
			ID: fmt.Sprintf("m%d", i), Data: []byte(`{}`),
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// Consume delivers every event in order from the start sequence, and returns
// the callback's error as it is, never calling the callback again afterwards.
func TestConsumeDeliversInOrderAndStopsOnTheCallbacksError(t *testing.T) {
	st := openStore(t)
	appendN(t, st, 1, 50)
	stop := errors.New("enough")
	var got []uint64
	var afterReturn atomic.Bool
	err := st.Consume(context.Background(), 11, func(r events.Record) error {
		if afterReturn.Load() {
			t.Error("callback ran after Consume returned")
		}
		got = append(got, r.StreamSeq)
		if r.Pending != uint64(50-r.StreamSeq) {
			t.Errorf("seq %d: pending %d, want %d", r.StreamSeq, r.Pending, 50-r.StreamSeq)
		}
		if r.StreamSeq == 40 {
			return stop
		}
		return nil
	})
	afterReturn.Store(true)
	if !errors.Is(err, stop) {
		t.Fatalf("Consume: %v, want the callback's error", err)
	}
	if len(got) != 30 || got[0] != 11 || got[29] != 40 {
		t.Fatalf("delivered %v", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("out of order: %v", got)
		}
	}
}

// Ending the context ends Consume with the context's error, also while it is
// waiting for events that do not come.
func TestConsumeEndsWithItsContext(t *testing.T) {
	st := openStore(t)
	appendN(t, st, 1, 3)
	ctx, cancel := context.WithCancel(context.Background())
	seen := make(chan uint64, 10)
	done := make(chan error, 1)
	go func() {
		done <- st.Consume(ctx, 1, func(r events.Record) error { seen <- r.StreamSeq; return nil })
	}()
	for want := uint64(1); want <= 3; want++ {
		if got := <-seen; got != want {
			t.Fatalf("delivered %d, want %d", got, want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Consume: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Consume did not return after its context ended")
	}
}

// A consumer deleted under Consume (by an operator, or lost with its server)
// ends it with ErrUnavailable at once, so that the runner starts again from
// its last applied event.
func TestConsumeEndsWhenItsConsumerIsDeleted(t *testing.T) {
	st := openStore(t)
	appendN(t, st, 1, 3)
	seen := make(chan uint64, 10)
	done := make(chan error, 1)
	go func() {
		done <- st.Consume(context.Background(), 1, func(r events.Record) error { seen <- r.StreamSeq; return nil })
	}()
	for range 3 {
		<-seen
	}
	ctx := context.Background()
	deleted := 0
	stream, err := st.JetStream().Stream(ctx, st.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	for l := stream.ListConsumers(ctx); ; {
		info, ok := <-l.Info()
		if !ok {
			break
		}
		if err := st.JetStream().DeleteConsumer(ctx, st.StreamName(), info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatal(err)
		}
		deleted++
	}
	if deleted == 0 {
		t.Fatal("no consumer to delete")
	}
	select {
	case err := <-done:
		if !errors.Is(err, events.ErrUnavailable) {
			t.Fatalf("Consume: %v, want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Consume did not notice its consumer was deleted")
	}
}
