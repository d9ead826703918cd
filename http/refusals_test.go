package http

import (
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// TestRefusalLogBounded: the refusal log writes at most one line per
// (reason, caller) a minute, and remembers at most refusalLogKeys pairs:
// a flood of callers cannot grow it, nor the log (the rest is held back).
func TestRefusalLogBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newRefusalLog(slog.New(slog.DiscardHandler), func() time.Time { return now }, nil)
	k := refusalKey{"FORBIDDEN", "user-1"}
	if ok, _ := l.allow(k); !ok {
		t.Fatal("the first line was held back")
	}
	for range 5 {
		if ok, _ := l.allow(k); ok {
			t.Fatal("a second line within the minute")
		}
	}
	now = now.Add(refusalLogEvery)
	if ok, n := l.allow(k); !ok || n != 5 {
		t.Fatalf("a minute later: %v, %d held back, want a line saying 5", ok, n)
	}
	written := 0
	for i := range 3 * refusalLogKeys {
		if ok, _ := l.allow(refusalKey{"FORBIDDEN", fmt.Sprint("user-x", i)}); ok {
			written++
		}
	}
	if len(l.seen) > refusalLogKeys {
		t.Fatalf("%d pairs remembered, want at most %d", len(l.seen), refusalLogKeys)
	}
	if written > refusalLogBurst {
		t.Fatalf("%d lines at once, want at most the burst, %d", written, refusalLogBurst)
	}
	// The minute over: the old pairs are forgotten for new ones.
	now = now.Add(refusalLogEvery)
	l.all = newRefusalLog(nil, nil, nil).all // the burst anew
	if ok, _ := l.allow(refusalKey{"FORBIDDEN", "user-new"}); !ok {
		t.Fatal("a new caller after the minute was held back")
	}
}
