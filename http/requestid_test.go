package http

import (
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// TestRequestID: "req-" and a ULID of the request's start, distinct from
// request to request.
func TestRequestID(t *testing.T) {
	start := time.Date(2026, 12, 6, 13, 5, 7, 123_456_789, time.UTC)
	seen := make(map[string]bool)
	for i := 0; i < 10000; i++ {
		id := requestID(start)
		rest, ok := strings.CutPrefix(id, "req-")
		if !ok {
			t.Fatalf("%q lacks the req- prefix", id)
		}
		u, err := ulid.ParseStrict(rest)
		if err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		if got := ulid.Time(u.Time()); !got.Equal(start.Truncate(time.Millisecond)) {
			t.Fatalf("%q is of %v, want %v", id, got, start.Truncate(time.Millisecond))
		}
		if seen[id] {
			t.Fatalf("%q made twice", id)
		}
		seen[id] = true
	}
	if a := testing.AllocsPerRun(100, func() { requestID(start) }); a != 1 {
		t.Errorf("requestID: %v allocations, want 1 (the string)", a)
	}
}
