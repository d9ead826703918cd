package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/natstest"
	"github.com/infracast/auth/projections"
)

func openStore(t *testing.T) *events.Store {
	t.Helper()
	return natstest.EmbeddedStore(t, events.EmbeddedOptions{})
}

func appendEvent(t *testing.T, st *events.Store, agg, id string, expect uint64, e domain.Event) uint64 {
	t.Helper()
	b, err := events.Encode("evt", agg, id, 1, time.Now(), events.Meta{Actor: events.System}, e)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := st.Append(context.Background(), events.Message{Subject: events.Subject(agg, id), ExpectSeq: expect, Data: b})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func run(t *testing.T, st *events.Store) *projections.Runner {
	t.Helper()
	r := projections.NewRunner(st, projections.NewModel(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func waitFor(t *testing.T, r *projections.Runner, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, seq); err != nil {
		t.Fatalf("WaitFor(%d): %v (applied %d)", seq, err, r.Applied())
	}
}

func TestRunnerReplaysSkipsCorruptEventsAndFollows(t *testing.T) {
	st := openStore(t)
	now := time.Now().UTC()
	appendEvent(t, st, "user", "user-1", 0, domain.UserCreated{UserID: "user-1", Username: "Alice", Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleViewer}}})
	// A corrupt and an unknown event in the stream must not stop a replica.
	if _, err := st.JetStream().Publish(context.Background(), "infracast.auth.user.junk", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.JetStream().Publish(context.Background(), "infracast.auth.user.junk", []byte(`{"type":"user.teleported","version":1,"data":{}}`)); err != nil {
		t.Fatal(err)
	}
	seq := appendEvent(t, st, "session", "sess-1", 0, domain.SessionStarted{SessionID: "sess-1", UserID: "user-1", RefreshTokenHash: "h1", StartedAt: now, ExpiresAt: now.Add(time.Hour)})

	r := run(t, st)
	waitFor(t, r, seq)
	if r.Model().Skipped() != 2 {
		t.Fatalf("skipped %d events, want 2", r.Model().Skipped())
	}
	if !r.Ready() {
		t.Fatal("not ready after catching up")
	}
	if u, _, ok := r.Model().UserByName("alice"); !ok || u.Tenants["prod"] != domain.RoleViewer {
		t.Fatalf("user by case-insensitive name: %+v %v", u, ok)
	}
	if _, v := r.Model().Authorize("sess-1", "tok-1", now); v != projections.Valid {
		t.Fatalf("verdict %d", v)
	}

	// Live events: revocation of one token, then deactivation of the user.
	seq = appendEvent(t, st, "session", "sess-1", seq, domain.SessionTokenRevoked{SessionID: "sess-1", TokenID: "tok-1", ExpiresAt: now.Add(time.Hour)})
	waitFor(t, r, seq)
	if _, v := r.Model().Authorize("sess-1", "tok-1", now); v != projections.TokenRevoked {
		t.Fatalf("revoked token verdict %d", v)
	}
	if _, v := r.Model().Authorize("sess-1", "tok-2", now); v != projections.Valid {
		t.Fatalf("other token verdict %d", v)
	}
	// Kept through the verifier's leeway after the token's expiry (it is
	// still accepted then), forgotten after it.
	if n := r.Model().PruneRevokedTokens(now.Add(time.Hour + r.Model().RevokedTokenGrace)); n != 0 {
		t.Fatalf("pruned %d within the grace after the expiry", n)
	}
	if _, v := r.Model().Authorize("sess-1", "tok-1", now); v != projections.TokenRevoked {
		t.Fatalf("revoked token verdict %d after a prune within the grace", v)
	}
	if n := r.Model().PruneRevokedTokens(now.Add(2 * time.Hour)); n != 1 {
		t.Fatalf("pruned %d", n)
	}
	seq = appendEvent(t, st, "user", "user-1", 1, domain.UserDeactivated{UserID: "user-1"})
	waitFor(t, r, seq)
	if _, v := r.Model().Authorize("sess-1", "tok-2", now); v != projections.UserInactive {
		t.Fatalf("deactivated user verdict %d", v)
	}
	if _, v := r.Model().Authorize("sess-1", "tok-2", now.Add(2*time.Hour)); v != projections.UserInactive {
		t.Fatalf("verdict %d", v)
	}
}

func TestPasswordChangeRevokesOtherSessions(t *testing.T) {
	st := openStore(t)
	now := time.Now().UTC()
	useq := appendEvent(t, st, "user", "u", 0, domain.UserCreated{UserID: "u", Username: "u"})
	for _, id := range []string{"s1", "s2"} {
		appendEvent(t, st, "session", id, 0, domain.SessionStarted{SessionID: id, UserID: "u", RefreshTokenHash: id, StartedAt: now, ExpiresAt: now.Add(time.Hour)})
	}
	seq := appendEvent(t, st, "user", "u", useq, domain.UserPasswordChanged{UserID: "u", PasswordHashSealed: "x", KeptSessionID: "s1"})
	s3 := appendEvent(t, st, "session", "s3", 0, domain.SessionStarted{SessionID: "s3", UserID: "u", RefreshTokenHash: "s3", StartedAt: now, ExpiresAt: now.Add(time.Hour)})
	r := run(t, st)
	waitFor(t, r, max(seq, s3))
	for id, want := range map[string]projections.Verdict{"s1": projections.Valid, "s2": projections.SessionRevoked, "s3": projections.Valid} {
		if _, v := r.Model().Authorize(id, "", now); v != want {
			t.Errorf("%s: verdict %d, want %d", id, v, want)
		}
	}
}

func TestApplyIsIdempotentBySequence(t *testing.T) {
	m := projections.NewModel()
	env := events.Envelope{Aggregate: "user", AggregateID: "u"}
	m.Apply(1, env, domain.UserCreated{UserID: "u", Username: "u"})
	m.Apply(2, env, domain.UserRoleGranted{UserID: "u", Tenant: "t", Role: domain.RoleAdmin})
	m.Apply(2, env, domain.UserRoleRevoked{UserID: "u", Tenant: "t"}) // replayed sequence: ignored
	u, seq, _ := m.User("u")
	if u.Tenants["t"] != domain.RoleAdmin || seq != 2 || u.Version != 2 {
		t.Fatalf("user %+v at %d", u, seq)
	}
}

func TestReadyOnEmptyStream(t *testing.T) {
	waitReady(t, run(t, openStore(t)), "on an empty stream")
}

// waitReady waits, up to 10 s, until r is ready (each wait ends at the
// runner's next change, or after 5 ms).
func waitReady(t *testing.T, r *projections.Runner, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !r.Ready(); {
		if time.Now().After(deadline) {
			t.Fatalf("never ready %s (applied %d)", what, r.Applied())
		}
		waitCtx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		_ = r.WaitFor(waitCtx, r.Applied()+1) // a timeout is the point: ask Ready again
		cancel()
	}
}

func TestPruneForgetsOnlyWhatCannotMatter(t *testing.T) {
	m := projections.NewModel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	env := events.Envelope{}
	m.Apply(1, env, domain.UserCreated{UserID: "u", Username: "u"})
	m.Apply(2, env, domain.SessionStarted{SessionID: "old", UserID: "u", RefreshTokenHash: "h-old", StartedAt: now.Add(-8 * 24 * time.Hour), ExpiresAt: now.Add(-time.Hour)})
	m.Apply(3, env, domain.SessionStarted{SessionID: "live", UserID: "u", RefreshTokenHash: "h-live", StartedAt: now, ExpiresAt: now.Add(time.Hour)})
	m.Apply(4, env, domain.SessionTokenRevoked{SessionID: "live", TokenID: "t-expired", ExpiresAt: now.Add(-time.Minute)})
	m.Apply(5, env, domain.SessionTokenRevoked{SessionID: "live", TokenID: "t-live", ExpiresAt: now.Add(time.Minute)})
	if n := m.Prune(now); n != 2 {
		t.Fatalf("pruned %d entries, want 2 (one session, one expired revocation)", n)
	}
	if _, ok := m.SessionByRefreshHash("h-old"); ok {
		t.Fatal("an expired session's refresh hash is still indexed")
	}
	if _, v := m.Authorize("live", "t-live", now); v != projections.TokenRevoked {
		t.Fatalf("a live revocation was pruned: verdict %d", v)
	}
	if _, v := m.Authorize("live", "t-other", now); v != projections.Valid {
		t.Fatalf("live session: verdict %d", v)
	}
}
