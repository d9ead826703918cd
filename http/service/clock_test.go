package service

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// heldClock is a clock the test sets.
type heldClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *heldClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *heldClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// TestClockCheckWarnsOnceAMinuteAndWhenBack: a replica whose clock is 5 s
// ahead of the event store's shows the offset and warns — once per
// clockWarnEvery while it lasts, not at every measurement — and says so
// once when it is back within the tolerance.
func TestClockCheckWarnsOnceAMinuteAndWhenBack(t *testing.T) {
	c := testConfig(t)
	cl := &heldClock{}
	cl.Set(time.Now().Add(5 * time.Second))
	c.Now = cl.Now
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, c, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	const warning = "clock is off the event store's"
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error { // the first measurement, at start
		if !strings.Contains(logs.String(), warning) {
			return fmt.Errorf("no warning yet:\n%s", logs.String())
		}
		return nil
	})
	if off := s.ClockOffset(); off < 3*time.Second || off > 6*time.Second {
		t.Fatalf("offset %s, want about 5 s", off)
	}
	warnedAt := time.Now()
	for range 3 { // measured again within the minute: no more warnings
		warnedAt = s.checkClock(ctx, warnedAt)
	}
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, logs.String())
	}
	if got := s.checkClock(ctx, warnedAt.Add(-clockWarnEvery)); got.IsZero() || strings.Count(logs.String(), warning) != 2 {
		t.Fatalf("no second warning a minute later:\n%s", logs.String())
	}
	cl.Set(time.Now())
	if got := s.checkClock(ctx, warnedAt); !got.IsZero() || !strings.Contains(logs.String(), "within the tolerance of the event store's again") {
		t.Fatalf("back within the tolerance, not said:\n%s", logs.String())
	}
	if off := s.ClockOffset(); off.Abs() > clockTolerance {
		t.Fatalf("offset %s after the clock was set right", off)
	}
}
