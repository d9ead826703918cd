package projections

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// TestSCIMTokenRotatedWithoutOwnerTakesTheActor: a scim.token_rotated
// written by a build from before owners (no owner_id) makes its actor the
// connection's owner — a user, or an API key and the key's owner — as a
// rotation by this build does. An outside check saw such a connection stay
// ownerless for good after a rolling upgrade: its token outlived the admin
// who rotated it, and its name left that admin's namespace.
func TestSCIMTokenRotatedWithoutOwnerTakesTheActor(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	m := NewModel()
	seq := uint64(0)
	apply := func(actor events.Actor, agg string, e domain.Event) {
		seq++
		m.Apply(seq, events.Envelope{AggregateID: agg, Type: e.EventType(), Actor: actor, OccurredAt: at}, e)
	}
	user := func(id string) events.Actor { return events.Actor{Type: "user", ID: id} }
	apply(user("user-a"), "key-1", domain.APIKeyCreated{KeyID: "key-1", Name: "ci", OwnerID: "user-k", Tenants: []string{"prod"},
		Permissions: []domain.Permission{domain.AllPermissions[0]}, SecretHash: strings.Repeat("9", 64), CreatedAt: at})
	apply(user("user-a"), "scim-1", domain.SCIMConnectionCreated{ConnectionID: "scim-1", Provider: "okta", Tenants: []string{"prod"},
		GroupMappings: []domain.RoleMapping{}, TokenHash: strings.Repeat("1", 64), OwnerID: "user-a", CreatedAt: at})
	owner := func(want, wantKey string) {
		t.Helper()
		c, _, ok := m.SCIMConnection("scim-1")
		if !ok || c.OwnerID != want || c.OwnerKeyID != wantKey {
			t.Fatalf("owner %q key %q (found %v), want %q key %q", c.OwnerID, c.OwnerKeyID, ok, want, wantKey)
		}
	}
	owner("user-a", "")

	// By a user, through an old build.
	apply(user("user-b"), "scim-1", domain.SCIMTokenRotated{ConnectionID: "scim-1", TokenHash: strings.Repeat("2", 64), RotatedAt: at})
	owner("user-b", "")
	// By an API key, through an old build: the key and its owner.
	apply(events.Actor{Type: "apikey", ID: "key-1"}, "scim-1", domain.SCIMTokenRotated{ConnectionID: "scim-1", TokenHash: strings.Repeat("3", 64), RotatedAt: at})
	owner("user-k", "key-1")
	// One that names its owner keeps it, whoever the actor.
	apply(user("user-x"), "scim-1", domain.SCIMTokenRotated{ConnectionID: "scim-1", TokenHash: strings.Repeat("4", 64), OwnerID: "user-c", RotatedAt: at})
	owner("user-c", "")
	// The system (no user behind it) leaves it without one, as before.
	apply(events.System, "scim-1", domain.SCIMTokenRotated{ConnectionID: "scim-1", TokenHash: strings.Repeat("5", 64), RotatedAt: at})
	owner("", "")
}

// TestSCIMFormerLinkByExternalID: a connection's record of a user it
// deleted is found by its externalId (exactly: it is case-exact), the
// latest of several, by that connection only, while unlinked only — and so
// after a snapshot is restored (the index is rebuilt from the records).
func TestSCIMFormerLinkByExternalID(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	m := NewModel()
	seq := uint64(0)
	apply := func(connID, userID string, e domain.Event) {
		seq++
		m.Apply(seq, events.Envelope{AggregateID: domain.SCIMLinkKey(connID, userID), Type: e.EventType(), OccurredAt: at}, e)
	}
	linked := func(connID, userID, ext string) domain.Event {
		return domain.SCIMUserLinked{ConnectionID: connID, UserID: userID, Method: domain.SCIMLinkCreated,
			Profile: domain.SCIMProfile{UserName: userID, ExternalID: ext}, LinkedAt: at}
	}
	unlinked := func(connID, userID string) domain.Event {
		return domain.SCIMUserUnlinked{ConnectionID: connID, UserID: userID}
	}
	apply("scim-1", "user-a", linked("scim-1", "user-a", "00u-x"))
	apply("scim-1", "user-b", linked("scim-1", "user-b", "00u-x"))
	apply("scim-2", "user-c", linked("scim-2", "user-c", "00u-y"))
	check := func(m *Model, connID, ext, want string) {
		t.Helper()
		l, ok := m.SCIMFormerLinkByExternalID(connID, ext)
		if ok != (want != "") || l.UserID != want {
			t.Fatalf("SCIMFormerLinkByExternalID(%s, %s) = %q (found %v), want %q", connID, ext, l.UserID, ok, want)
		}
	}
	check(m, "scim-1", "00u-x", "") // both linked
	apply("scim-1", "user-b", unlinked("scim-1", "user-b"))
	apply("scim-1", "user-a", unlinked("scim-1", "user-a"))
	apply("scim-2", "user-c", unlinked("scim-2", "user-c"))
	check(m, "scim-1", "00u-x", "user-a") // the latest unlinked
	check(m, "scim-1", "00U-X", "")
	check(m, "scim-1", "00u-y", "") // another connection's record
	check(m, "scim-2", "00u-y", "user-c")
	check(m, "scim-1", "", "")
	apply("scim-1", "user-a", linked("scim-1", "user-a", "00u-x")) // linked again
	check(m, "scim-1", "00u-x", "user-b")

	var buf bytes.Buffer
	f := m.Freeze()
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f.Release()
	restored := NewModel()
	if _, err := restored.RestoreFrom(&buf); err != nil {
		t.Fatal(err)
	}
	check(restored, "scim-1", "00u-x", "user-b")
	check(restored, "scim-2", "00u-y", "user-c")
	if users, _ := restored.SCIMCounts("scim-1"); users != 1 {
		t.Fatalf("restored: scim-1 provisions %d users, want 1", users)
	}
}

// TestSCIMLinkByExternalID: a connection's live record is found by its
// externalId (exactly), by that connection only, while linked only.
func TestSCIMLinkByExternalID(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	m := NewModel()
	seq := uint64(0)
	apply := func(connID, userID string, e domain.Event) {
		seq++
		m.Apply(seq, events.Envelope{AggregateID: domain.SCIMLinkKey(connID, userID), Type: e.EventType(), OccurredAt: at}, e)
	}
	apply("scim-1", "user-a", domain.SCIMUserLinked{ConnectionID: "scim-1", UserID: "user-a", Method: domain.SCIMLinkCreated,
		Profile: domain.SCIMProfile{UserName: "a", ExternalID: "00u-x"}, LinkedAt: at})
	check := func(connID, ext, want string) {
		t.Helper()
		l, ok := m.SCIMLinkByExternalID(connID, ext)
		if ok != (want != "") || l.UserID != want {
			t.Fatalf("SCIMLinkByExternalID(%s, %s) = %q (found %v), want %q", connID, ext, l.UserID, ok, want)
		}
	}
	check("scim-1", "00u-x", "user-a")
	check("scim-1", "00U-X", "")
	check("scim-2", "00u-x", "")
	check("scim-1", "", "")
	apply("scim-1", "user-a", domain.SCIMUserUnlinked{ConnectionID: "scim-1", UserID: "user-a"})
	check("scim-1", "00u-x", "")
}
