package domain

import (
	"slices"
	"testing"
	"time"
)

// TestSessionsOverLimit: the sessions a login over the limit ends are the
// least recently used (ties by ID), as many as exceed the limit, never
// the one just started; none at or under the limit, or without a limit.
func TestSessionsOverLimit(t *testing.T) {
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	live := []SessionUse{
		{ID: "sess-d", LastUsedAt: at(4)},
		{ID: "sess-b", LastUsedAt: at(9)}, // refreshed last: used most recently
		{ID: "sess-c", LastUsedAt: at(2)},
		{ID: "sess-a", LastUsedAt: at(2)}, // ties with sess-c: the older ID first
		{ID: "sess-new", LastUsedAt: at(10)},
	}
	for _, tc := range []struct {
		name  string
		live  []SessionUse
		limit int
		keep  string
		want  []string
	}{
		{"no limit", live, 0, "sess-new", nil},
		{"under the limit", live, 6, "sess-new", nil},
		{"at the limit", live, 5, "sess-new", nil},
		{"one over", live, 4, "sess-new", []string{"sess-a"}},
		{"three over", live, 2, "sess-new", []string{"sess-a", "sess-c", "sess-d"}},
		{"limit 1 keeps the new one only", live, 1, "sess-new", []string{"sess-a", "sess-c", "sess-d", "sess-b"}},
		// The new session is never ended, even when it is not the most
		// recently used (a clock stepped back between two replicas).
		{"keep is spared whatever its time", live, 1, "sess-a", []string{"sess-c", "sess-d", "sess-b", "sess-new"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SessionsOverLimit(slices.Clone(tc.live), tc.limit, tc.keep); !slices.Equal(got, tc.want) {
				t.Errorf("SessionsOverLimit(limit %d) = %v, want %v", tc.limit, got, tc.want)
			}
		})
	}
}
