package commands_test

import (
	"context"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// revokedTokenEvents counts the session.token_revoked events in the stream.
func revokedTokenEvents(t *testing.T, s *stream) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		env, _, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if env.Type == domain.TypeSessionTokenRevoked {
			n++
		}
	}
	return n
}

// TestRevokeAccessTokenOnce: revoking an access token that is revoked
// already, or expired, appends nothing (an outside check, 18q: each repeat
// of POST /auth/revoke with the same token appended another
// session.token_revoked, 1,994 in 1.3 s); two revocations of one token at
// once, through two replicas, write one event.
func TestRevokeAccessTokenOnce(t *testing.T) {
	s, _, onA := newReplica(t, nil)
	b, onB := replicaOn(t, s, s)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	if _, err := onA.CreateUser(ctx, admin, commands.CreateUserInput{
		Username: "rita", Password: "rita-passphrase-long",
		Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleEditor}},
	}); err != nil {
		t.Fatal(err)
	}
	res, err := onA.Login(ctx, events.Meta{}, commands.LoginInput{Username: "rita", Password: "rita-passphrase-long"})
	if err != nil {
		t.Fatal(err)
	}
	sid, now := res.Session.ID, time.Now()
	revoke := func(on *commands.Service, tokenID string, exp time.Time) {
		t.Helper()
		if err := on.ExecuteSession(ctx, events.Meta{}, sid, domain.RevokeAccessToken{
			TokenID: tokenID, ExpiresAt: exp, Now: now, Leeway: 30 * time.Second,
		}); err != nil {
			t.Fatal(err)
		}
	}

	// Once, then again: the second appends nothing.
	revoke(onA, "tok-1", now.Add(time.Hour))
	appends := len(s.appends)
	revoke(onA, "tok-1", now.Add(time.Hour))
	if n := len(s.appends) - appends; n != 0 {
		t.Fatalf("revoking a revoked token again: %d appends, want 0", n)
	}

	// Expired beyond the leeway and the replicas' tolerated clock skew:
	// refused anyway by every replica, nothing to revoke.
	revoke(onA, "tok-expired", now.Add(-31*time.Second-domain.ClockSkewTolerance))
	if n := len(s.appends) - appends; n != 0 {
		t.Fatalf("revoking an expired token: %d appends, want 0", n)
	}

	// Two at once: B decides on a read model that has not applied the
	// session's latest events, and A's revocation of the same token lands
	// between B's decision and its append. B's append conflicts; deciding
	// again, it finds the token revoked.
	if err := b.WaitFor(ctx, uint64(len(s.msgs))); err != nil {
		t.Fatal(err)
	}
	landed := false
	s.before = func(msgs []events.Message) {
		if landed {
			return
		}
		landed = true
		revoke(onA, "tok-2", now.Add(time.Hour))
	}
	revoke(onB, "tok-2", now.Add(time.Hour))
	s.before = nil
	if !landed {
		t.Fatal("B appended nothing: the race was not made")
	}
	if n := revokedTokenEvents(t, s); n != 2 { // tok-1 and tok-2, once each
		t.Fatalf("%d session.token_revoked events, want 2 (one per token)", n)
	}
	if !b.model.AccessTokenRevoked("tok-2") {
		t.Fatal("B's read model does not know tok-2 revoked")
	}
}
