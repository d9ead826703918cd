package domain

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestSessionsOverLimit: the sessions a login over the limit ends are the
// least recently used (ties by ID) of those started before its own, as
// many as bring the sessions up to its own to the limit; never the one
// just started, nor one started after it; none at or under the limit,
// without a limit, or when the login's own session is not live.
func TestSessionsOverLimit(t *testing.T) {
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	live := []SessionUse{
		{ID: "sess-d", StartSeq: 40, LastUsedAt: at(4)},
		{ID: "sess-b", StartSeq: 20, LastUsedAt: at(9)}, // refreshed last: used most recently
		{ID: "sess-c", StartSeq: 30, LastUsedAt: at(2)},
		{ID: "sess-a", StartSeq: 10, LastUsedAt: at(2)}, // ties with sess-c: the older ID first
		{ID: "sess-new", StartSeq: 50, LastUsedAt: at(10)},
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
		// Only the sessions started before keep: those after it are the
		// logins' at once whose own check ends what is beyond (re-check
		// 20r1: two logins at limit 1 ended each other's session). keep
		// is spared even when it is not the most recently used (a clock
		// stepped back between two replicas).
		{"the first session's login ends none", live, 1, "sess-a", nil},
		{"a middle login ends only earlier ones", live, 1, "sess-c", []string{"sess-a", "sess-b"}},
		{"the earlier count under the limit", live, 3, "sess-c", nil},
		{"keep is spared whatever its time", live, 2, "sess-d", []string{"sess-a", "sess-c"}},
		{"keep not live: none", live, 1, "sess-gone", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SessionsOverLimit(slices.Clone(tc.live), tc.limit, tc.keep); !slices.Equal(got, tc.want) {
				t.Errorf("SessionsOverLimit(limit %d) = %v, want %v", tc.limit, got, tc.want)
			}
		})
	}
}

// TestSessionsOverLimitLoginsAtOnce: however the logins of a user at once
// see each other's sessions, once each has ended what it chose the user
// has at most the limit, and at least the last one's session.
func TestSessionsOverLimitLoginsAtOnce(t *testing.T) {
	for limit := 1; limit <= 3; limit++ {
		// Sessions 1..5 started in that order; login i sees sessions up
		// to i and, when it saw far, those after it (another replica).
		for seen := range 6 {
			all := make([]SessionUse, 5)
			for i := range all {
				// Times in the reverse of the stream's order: two replicas' clocks.
				all[i] = SessionUse{ID: fmt.Sprintf("sess-%d", i), StartSeq: uint64(i + 1), LastUsedAt: t0.Add(time.Duration(5-i) * time.Second)}
			}
			ended := map[string]bool{}
			for i := range all {
				view := all[:max(i+1, min(seen, len(all)))]
				for _, id := range SessionsOverLimit(slices.Clone(view), limit, all[i].ID) {
					ended[id] = true
				}
			}
			if ended[all[4].ID] {
				t.Errorf("limit %d, seen %d: the last session was ended", limit, seen)
			}
			if n := len(all) - len(ended); n > limit || n < 1 {
				t.Errorf("limit %d, seen %d: %d sessions left, want 1..%d", limit, seen, n, limit)
			}
		}
	}
}
