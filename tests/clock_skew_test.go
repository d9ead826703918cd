package tests

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/http/service"
)

// Replicas whose clocks disagree within the tolerance docs/operations.md
// states ("Clocks": each within 1 s of the event store's, two within
// domain.ClockSkewTolerance of each other), from an outside check (19b).

// skewPair starts two replicas of one deployment, b's clock skew ahead of
// a's (behind when negative). The harness's clocks stand still unless
// advanced.
func skewPair(t *testing.T, skew time.Duration, opts ...Option) (a, b *Instance, ca, cb *Clock) {
	t.Helper()
	d := NewDeployment(t, 1)
	t0 := time.Now().UTC()
	ca, cb = NewClockAt(t0), NewClockAt(t0.Add(skew))
	a = d.StartReplica(t, append([]Option{WithClock(ca)}, opts...)...)
	b = d.StartReplica(t, append([]Option{WithClock(cb)}, opts...)...)
	return a, b, ca, cb
}

// TestSkewRefreshRetryOnReplicaAhead: a refresh applied on a whose answer
// was lost, retried on b — whose clock is ahead of a's within the
// tolerance — before the interval is over by a's clock, gets the same
// successor. Before, b decided on its own clock against a's rotation time,
// took the retry for theft and revoked the session (19b: 3 s ahead, the
// console's retry at 7 s).
func TestSkewRefreshRetryOnReplicaAhead(t *testing.T) {
	t.Parallel()
	interval := service.DefaultRefreshReuseInterval
	for _, c := range []struct{ skew, after time.Duration }{
		{domain.ClockSkewTolerance, interval - 2*time.Second}, // the console's last retry (docs/console.md: the interval less 2 s)
		{time.Second, interval - time.Second},
	} {
		t.Run(fmt.Sprintf("b_ahead_%s_retry_after_%s", c.skew, c.after), func(t *testing.T) {
			t.Parallel()
			a, b, ca, cb := skewPair(t, c.skew, WithRotation())
			a.CreateUser(a.AdminToken(), "alice", "alice-passphrase", map[string]string{"prod": "viewer"})
			rt := a.Login("alice", "alice-passphrase").String("refresh_token")
			Eventually(t, 10*time.Second, func() error {
				if _, ok := b.Svc.Model.SessionByRefreshHash(commands.HashToken(rt)); !ok {
					return Errorf("b has not applied the login")
				}
				return nil
			})
			first := refresh(t, a, rt)
			expectStatus(t, "refresh on a", first, 200)
			arrived(t, a, b)
			ca.Advance(c.after)
			cb.Advance(c.after)
			retry := refresh(t, b, rt)
			expectStatus(t, "the retry on b", retry, 200)
			if retry.String("refresh_token") != first.String("refresh_token") {
				t.Fatalf("the retry on b got another successor: %s", retry.Raw)
			}
			arrived(t, b, a)
			expectStatus(t, "the successor on a", refresh(t, a, first.String("refresh_token")), 200)
		})
	}
}

// TestSkewRevokeNearExpiry: an access token revoked through a replica whose
// clock is ahead, just past exp plus the leeway by that clock, while a
// replica behind still accepts it: the revocation is written, and the
// other replica refuses the token. Before, the revoking replica answered
// 200 and wrote nothing (19b).
func TestSkewRevokeNearExpiry(t *testing.T) {
	t.Parallel()
	ttl := func(c *service.Config) { c.AccessTTL = time.Minute }
	skew := domain.ClockSkewTolerance
	a, b, ca, cb := skewPair(t, -skew, ttl) // a is ahead of b
	a.CreateUser(a.AdminToken(), "alice", "alice-passphrase", map[string]string{"prod": "viewer"})
	tok := b.Login("alice", "alice-passphrase").String("token")
	expectStatus(t, "the token on b", me(t, b, tok), 200)
	arrived(t, b, a)
	// By a's clock: exp + 31 s; by b's: exp + 29 s, within the leeway.
	step := time.Minute + 31*time.Second - skew
	ca.Advance(step)
	cb.Advance(step)
	expectStatus(t, "the token on b before the revocation", me(t, b, tok), 200)
	expectStatus(t, "revoke on a", a.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": tok}), 200)
	arrived(t, a, b)
	expectBody(t, "the revoked token on b", me(t, b, tok), 401, bodyUnauthorized)
}

// TestSkewCredentialCheck: a token issued on a, whose clock is ahead of b's:
// b accepts it (the leeway on iat), and b's credential check says usable —
// before, not_yet_issued. Its session revoked through b a moment later: the
// answer's since is not before its issued_at, and a note names the
// revocation's own (earlier) time.
func TestSkewCredentialCheck(t *testing.T) {
	t.Parallel()
	skew := domain.ClockSkewTolerance
	a, b, ca, cb := skewPair(t, -skew)
	adminB := b.AdminToken()
	id := a.CreateUser(a.AdminToken(), "alice", "alice-passphrase", map[string]string{"prod": "viewer"})
	tok := a.Login("alice", "alice-passphrase").String("token")
	arrived(t, a, b)
	expectStatus(t, "the token on b", me(t, b, tok), 200)
	check := func(what string) Response {
		r := b.Do("POST", "/api/v1/audit/credential-check", adminB, map[string]string{"token": tok})
		expectStatus(t, what, r, 200)
		return r
	}
	if r := check("the check on b"); r.JSON["usable"] != true {
		t.Fatalf("b accepts the token, its check says otherwise: %s", r.Raw)
	}

	ca.Advance(time.Second)
	cb.Advance(time.Second)
	sid := me(t, a, tok).String("session_id")
	expectStatus(t, "revoke the session on b", b.Do("DELETE", "/api/v1/users/"+id+"/sessions/"+sid, adminB, nil), 204)
	arrived(t, b, a)
	expectBody(t, "the token on a", me(t, a, tok), 401, bodyUnauthorized)
	ca.Advance(time.Minute)
	cb.Advance(time.Minute)
	r := check("the check after the revocation")
	var out struct {
		Usable   bool     `json:"usable"`
		Reason   string   `json:"reason"`
		IssuedAt string   `json:"issued_at"`
		Notes    []string `json:"notes"`
		Since    *struct {
			Time     string `json:"time"`
			Sequence uint64 `json:"sequence"`
		} `json:"since"`
	}
	if err := json.Unmarshal(r.Raw, &out); err != nil {
		t.Fatal(err)
	}
	if out.Usable || out.Reason != "revoked" || out.Since == nil || out.Since.Sequence == 0 {
		t.Fatalf("after the revocation: %s", r.Raw)
	}
	since, err1 := time.Parse(time.RFC3339Nano, out.Since.Time)
	issued, err2 := time.Parse(time.RFC3339Nano, out.IssuedAt)
	if err1 != nil || err2 != nil {
		t.Fatalf("times: %v %v in %s", err1, err2, r.Raw)
	}
	if since.Before(issued) {
		t.Fatalf("since %s is before issued_at %s: %s", out.Since.Time, out.IssuedAt, r.Raw)
	}
	if !strings.Contains(strings.Join(out.Notes, "\n"), "before its issued_at") {
		t.Fatalf("no note on the revocation's own time: %s", r.Raw)
	}
}

// TestSkewClockOffsetMetricAndWarning: a replica whose clock is 5 s behind
// the event store's shows it in infracast_clock_offset_seconds and logs a
// warning that names the offset and the fix.
func TestSkewClockOffsetMetricAndWarning(t *testing.T) {
	t.Parallel()
	logs := &LogBuffer{}
	in := StartLogged(t, logs, WithClock(NewClockAt(time.Now().Add(-5*time.Second))))
	re := regexp.MustCompile(`(?m)^infracast_clock_offset_seconds (\S+)$`)
	Eventually(t, 10*time.Second, func() error {
		m := re.FindStringSubmatch(string(in.Do("GET", "/metrics", "", nil).Raw))
		if m == nil {
			return Errorf("no infracast_clock_offset_seconds in /metrics")
		}
		// The clock stands still: its offset only grows more negative.
		if v, err := strconv.ParseFloat(m[1], 64); err != nil || v > -4.5 {
			return Errorf("infracast_clock_offset_seconds %s, want about -5 or less", m[1])
		}
		return nil
	})
	Eventually(t, 10*time.Second, func() error {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Level, Msg, Offset string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "WARN" &&
				strings.Contains(rec.Msg, "clock") && strings.Contains(rec.Msg, "NTP") && strings.HasPrefix(rec.Offset, "-5") {
				return nil
			}
		}
		return Errorf("no warning about the clock naming its offset and NTP:\n%s", logs.String())
	})
}
