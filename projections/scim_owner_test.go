package projections

import (
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
