package projections

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// timeline applies events at injected times and keeps them, for an oracle
// and for snapshots.
type timeline struct {
	m   *Model
	evs []stamped
}

func newTimeline() *timeline { return &timeline{m: NewModel()} }

func (tl *timeline) add(at time.Time, actor events.Actor, id string, ev domain.Event) uint64 {
	seq := uint64(len(tl.evs) + 1)
	if n := len(tl.evs); n > 0 {
		seq = tl.evs[n-1].seq + 1
	}
	s := stamped{seq: seq, env: events.Envelope{Type: ev.EventType(), AggregateID: id, OccurredAt: at, Actor: actor,
		Request: events.RequestInfo{IP: "192.0.2.1"}}, ev: ev}
	tl.evs = append(tl.evs, s)
	tl.m.Apply(s.seq, s.env, s.ev)
	return seq
}

var (
	tl0      = time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)
	sysActor = events.Actor{Type: "system", ID: "infracast-auth"}
)

func hour(i int) time.Time { return tl0.Add(time.Duration(i) * time.Hour) }

func userActor(id string) events.Actor { return events.Actor{Type: "user", ID: id} }

// render is an answer as one line per grant, for comparisons.
func render(accs []Access) string {
	var b strings.Builder
	for _, a := range accs {
		for _, g := range a.Grants {
			fmt.Fprintf(&b, "%s %s %s: %s", a.Kind, a.ID, g.Tenant, renderGrant(g))
			b.WriteByte('\n')
		}
		if len(a.Grants) == 0 {
			fmt.Fprintf(&b, "%s %s: none\n", a.Kind, a.ID)
		}
	}
	return b.String()
}

func renderGrant(g Grant) string {
	s := fmt.Sprintf("%s via %s", g.Permissions, g.Via)
	if g.Role != "" {
		s += " role " + string(g.Role)
	}
	s += fmt.Sprintf(" since %d", g.Since.Seq)
	if g.OwnerID != "" {
		s += " owner " + g.OwnerID
	}
	if g.OwnerGrant != nil {
		s += " [" + g.OwnerGrant.Tenant + " " + renderGrant(*g.OwnerGrant) + "]"
	}
	return s
}

func mustTenant(t *testing.T, m *Model, tenant string, perm domain.Permission, at time.Time) string {
	t.Helper()
	accs, err := m.TenantAccess(tenant, perm, at)
	if err != nil {
		t.Fatalf("TenantAccess(%s, %s, %s): %v", tenant, perm, at, err)
	}
	return render(accs)
}

func mustUser(t *testing.T, m *Model, id string, at time.Time) string {
	t.Helper()
	a, ok, err := m.UserAccess(id, at)
	if err != nil || !ok {
		t.Fatalf("UserAccess(%s, %s): %v %v", id, at, ok, err)
	}
	return render([]Access{a})
}

func mustKey(t *testing.T, m *Model, id string, at time.Time) string {
	t.Helper()
	a, ok, err := m.KeyAccess(id, at)
	if err != nil || !ok {
		t.Fatalf("KeyAccess(%s, %s): %v %v", id, at, ok, err)
	}
	return render([]Access{a})
}

func lines(ls ...string) string {
	if len(ls) == 0 {
		return ""
	}
	return strings.Join(ls, "\n") + "\n"
}

// exampleTimeline is the history of the tests below (and of docs/events.md's
// worked example): times are hours from tl0.
//
//	seq hour event
//	  1   0  alice created: prod editor, staging viewer
//	  2   0  bob created: platform admin
//	  3   0  carol created: no role
//	  4   1  carol granted viewer in prod
//	  5   2  carol granted admin in prod (replacing viewer)
//	  6   3  alice's role in staging revoked
//	  7   4  key-1 created by alice: prod, findings:read nodes:write, expires at hour 9
//	  8   5  key-2 created by bob: every tenant, findings:read
//	  9   6  key-1 rotated by carol (carol owns it from then)
//	 10   7  alice deactivated
//	 11   8  carol's password changed, keeping sess-c
//	 12  10  key-2 revoked
//	 13  11  dave created: staging viewer
//	 14  12  key-3 created by dave: every tenant, nodes:read findings:read
func exampleTimeline() *timeline {
	tl := newTimeline()
	tl.add(hour(0), sysActor, "alice", domain.UserCreated{UserID: "alice", Username: "Alice", Roles: []domain.GlobalRole{},
		Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleEditor}, {Tenant: "staging", Role: domain.RoleViewer}}, CreatedAt: hour(0)})
	tl.add(hour(0), sysActor, "bob", domain.UserCreated{UserID: "bob", Username: "Bob", Roles: []domain.GlobalRole{domain.GlobalAdmin}, CreatedAt: hour(0)})
	tl.add(hour(0), userActor("bob"), "carol", domain.UserCreated{UserID: "carol", Username: "Carol", CreatedAt: hour(0)})
	tl.add(hour(1), userActor("bob"), "carol", domain.UserRoleGranted{UserID: "carol", Tenant: "prod", Role: domain.RoleViewer})
	tl.add(hour(2), userActor("bob"), "carol", domain.UserRoleGranted{UserID: "carol", Tenant: "prod", Role: domain.RoleAdmin})
	tl.add(hour(3), userActor("bob"), "alice", domain.UserRoleRevoked{UserID: "alice", Tenant: "staging"})
	exp := hour(9)
	tl.add(hour(4), userActor("alice"), "key-1", domain.APIKeyCreated{KeyID: "key-1", Name: "ci", OwnerID: "alice", Tenants: []string{"prod"},
		Permissions: []domain.Permission{domain.FindingsRead, domain.NodesWrite}, SecretHash: strings.Repeat("a", 64), CreatedAt: hour(4), ExpiresAt: &exp})
	tl.add(hour(5), userActor("bob"), "key-2", domain.APIKeyCreated{KeyID: "key-2", Name: "scanner", OwnerID: "bob", Tenants: []string{domain.AllTenants},
		Permissions: []domain.Permission{domain.FindingsRead}, SecretHash: strings.Repeat("b", 64), CreatedAt: hour(5)})
	tl.add(hour(6), userActor("carol"), "key-1", domain.APIKeyRotated{KeyID: "key-1", SecretHash: strings.Repeat("c", 64), RotatedAt: hour(6), OwnerID: "carol"})
	tl.add(hour(7), userActor("bob"), "alice", domain.UserDeactivated{UserID: "alice", Reason: "left"})
	tl.add(hour(8), userActor("carol"), "carol", domain.UserPasswordChanged{UserID: "carol", PasswordHashSealed: "x", KeptSessionID: "sess-c"})
	tl.add(hour(10), userActor("bob"), "key-2", domain.APIKeyRevoked{KeyID: "key-2"})
	tl.add(hour(11), userActor("bob"), "dave", domain.UserCreated{UserID: "dave", Username: "Dave",
		Tenants: []domain.TenantRole{{Tenant: "staging", Role: domain.RoleViewer}}, CreatedAt: hour(11)})
	tl.add(hour(12), userActor("dave"), "key-3", domain.APIKeyCreated{KeyID: "key-3", Name: "wide", OwnerID: "dave", Tenants: []string{domain.AllTenants},
		Permissions: []domain.Permission{domain.NodesRead, domain.FindingsRead}, SecretHash: strings.Repeat("d", 64), CreatedAt: hour(12)})
	return tl
}

// TestAccessAtEveryInstant: the answers between the events and at their
// exact instants (a grant holds at its instant; a revocation, deactivation,
// expiry or rotation has ended what it ends at its instant).
func TestAccessAtEveryInstant(t *testing.T) {
	m := exampleTimeline().m
	ns := time.Nanosecond
	const (
		aliceEditor  = "user alice prod: nodes:read,nodes:write,findings:read,findings:write,jobs:read,jobs:write,reports:read via role role editor since 1"
		aliceStaging = "user alice staging: nodes:read,findings:read,jobs:read,reports:read via role role viewer since 1"
		bobAdmin     = "user bob prod: admin:* via platform_admin since 2"
		carolViewer  = "user carol prod: nodes:read,findings:read,jobs:read,reports:read via role role viewer since 4"
		carolAdmin   = "user carol prod: admin:* via role role admin since 5"
	)
	prod := func(at time.Time) string { return mustTenant(t, m, "prod", domain.FindingsRead, at) }
	for _, c := range []struct {
		name string
		at   time.Time
		want string
	}{
		{"before anyone", hour(0).Add(-ns), ""},
		{"at the creations", hour(0), lines(aliceEditor, bobAdmin)},
		{"between", hour(1).Add(-ns), lines(aliceEditor, bobAdmin)},
		{"at carol's grant", hour(1), lines(aliceEditor, bobAdmin, carolViewer)},
		{"just before the new role", hour(2).Add(-ns), lines(aliceEditor, bobAdmin, carolViewer)},
		{"at the new role", hour(2), lines(aliceEditor, bobAdmin, carolAdmin)},
		{"at key-1's creation", hour(4), lines(aliceEditor, bobAdmin, carolAdmin,
			"apikey key-1 prod: nodes:write,findings:read via api_key since 7 owner alice [prod "+strings.TrimPrefix(aliceEditor, "user alice prod: ")+"]")},
		{"at key-2's creation", hour(5), lines(aliceEditor, bobAdmin, carolAdmin,
			"apikey key-1 prod: nodes:write,findings:read via api_key since 7 owner alice [prod "+strings.TrimPrefix(aliceEditor, "user alice prod: ")+"]",
			"apikey key-2 prod: findings:read via api_key since 8 owner bob [prod admin:* via platform_admin since 2]")},
		{"at the rotation: carol owns key-1", hour(6), lines(aliceEditor, bobAdmin, carolAdmin,
			"apikey key-1 prod: nodes:write,findings:read via api_key since 9 owner carol [prod admin:* via role role admin since 5]",
			"apikey key-2 prod: findings:read via api_key since 8 owner bob [prod admin:* via platform_admin since 2]")},
		{"at alice's deactivation", hour(7), lines(bobAdmin, carolAdmin,
			"apikey key-1 prod: nodes:write,findings:read via api_key since 9 owner carol [prod admin:* via role role admin since 5]",
			"apikey key-2 prod: findings:read via api_key since 8 owner bob [prod admin:* via platform_admin since 2]")},
		{"just before key-1 expires", hour(9).Add(-ns), lines(bobAdmin, carolAdmin,
			"apikey key-1 prod: nodes:write,findings:read via api_key since 9 owner carol [prod admin:* via role role admin since 5]",
			"apikey key-2 prod: findings:read via api_key since 8 owner bob [prod admin:* via platform_admin since 2]")},
		{"at key-1's expiry", hour(9), lines(bobAdmin, carolAdmin,
			"apikey key-2 prod: findings:read via api_key since 8 owner bob [prod admin:* via platform_admin since 2]")},
		{"at key-2's revocation", hour(10), lines(bobAdmin, carolAdmin)},
		{"dave has no role in prod; key-3 neither", hour(13), lines(bobAdmin, carolAdmin)},
	} {
		if got := prod(c.at); got != c.want {
			t.Errorf("%s (%s): who could read findings in prod:\n%s\nwant:\n%s", c.name, c.at.Format(time.RFC3339Nano), got, c.want)
		}
	}

	// One tenant, any permission.
	if got, want := mustTenant(t, m, "staging", "", hour(3).Add(-ns)), lines(aliceStaging, strings.Replace(bobAdmin, "prod", "staging", 1)); got != want {
		t.Errorf("staging before the revocation:\n%s\nwant:\n%s", got, want)
	}
	if got, want := mustTenant(t, m, "staging", "", hour(3)), lines(strings.Replace(bobAdmin, "prod", "staging", 1)); got != want {
		t.Errorf("staging at the revocation:\n%s\nwant:\n%s", got, want)
	}
	// A permission only some hold.
	if got, want := mustTenant(t, m, "prod", domain.NodesWrite, hour(5)), lines(aliceEditor, bobAdmin, carolAdmin,
		"apikey key-1 prod: nodes:write,findings:read via api_key since 7 owner alice [prod "+strings.TrimPrefix(aliceEditor, "user alice prod: ")+"]"); got != want {
		t.Errorf("nodes:write in prod:\n%s\nwant:\n%s", got, want)
	}
	// A tenant no event named: the platform admins, and platform-wide keys.
	if got, want := mustTenant(t, m, "dev", "", hour(5)), lines("user bob dev: admin:* via platform_admin since 2",
		"apikey key-2 dev: findings:read via api_key since 8 owner bob [dev admin:* via platform_admin since 2]"); got != want {
		t.Errorf("an unnamed tenant:\n%s\nwant:\n%s", got, want)
	}

	// Users.
	for _, c := range []struct {
		id   string
		at   time.Time
		want string
	}{
		{"alice", hour(0).Add(-ns), "user alice: none\n"},
		{"alice", hour(0), lines(aliceEditor, aliceStaging)},
		{"alice", hour(7).Add(-ns), lines(aliceEditor)},
		{"alice", hour(7), "user alice: none\n"},
		{"bob", hour(0), "user bob *: admin:* via platform_admin since 2\n"},
		{"carol", hour(1).Add(-ns), "user carol: none\n"},
		{"carol", hour(2), lines(carolAdmin)},
	} {
		if got := mustUser(t, m, c.id, c.at); got != c.want {
			t.Errorf("UserAccess(%s, %s):\n%s\nwant:\n%s", c.id, c.at.Format(time.RFC3339Nano), got, c.want)
		}
	}
	// Keys.
	for _, c := range []struct {
		id   string
		at   time.Time
		want string
	}{
		{"key-1", hour(4).Add(-ns), "apikey key-1: none\n"},
		{"key-1", hour(6).Add(-ns), "apikey key-1 prod: nodes:write,findings:read via api_key since 7 owner alice [prod " + strings.TrimPrefix(aliceEditor, "user alice prod: ") + "]\n"},
		{"key-1", hour(9), "apikey key-1: none\n"},
		{"key-2", hour(5), "apikey key-2 *: findings:read via api_key since 8 owner bob [* admin:* via platform_admin since 2]\n"},
		{"key-2", hour(10), "apikey key-2: none\n"},
		{"key-3", hour(12), "apikey key-3 staging: nodes:read,findings:read via api_key since 14 owner dave [staging nodes:read,findings:read,jobs:read,reports:read via role role viewer since 13]\n"},
	} {
		if got := mustKey(t, m, c.id, c.at); got != c.want {
			t.Errorf("KeyAccess(%s, %s):\n%s\nwant:\n%s", c.id, c.at.Format(time.RFC3339Nano), got, c.want)
		}
	}

	// RoleAt.
	for _, c := range []struct {
		id, tenant string
		at         time.Time
		role       domain.Role
		since      uint64
	}{
		{"carol", "prod", hour(1).Add(-ns), "", 0},
		{"carol", "prod", hour(1), domain.RoleViewer, 4},
		{"carol", "prod", hour(2).Add(-ns), domain.RoleViewer, 4},
		{"carol", "prod", hour(2), domain.RoleAdmin, 5},
		{"alice", "staging", hour(3).Add(-ns), domain.RoleViewer, 1},
		{"alice", "staging", hour(3), "", 0},
		{"alice", "prod", hour(7), "", 0}, // deactivated
		{"bob", "prod", hour(5), "", 0},   // an admin, without a tenant role
		{"nobody", "prod", hour(5), "", 0},
	} {
		role, ref, ok, err := m.RoleAt(c.id, c.tenant, c.at)
		if err != nil {
			t.Fatal(err)
		}
		if role != c.role || ref.Seq != c.since || ok != (c.role != "") {
			t.Errorf("RoleAt(%s, %s, %s) = %q %d %v; want %q %d", c.id, c.tenant, c.at.Format(time.RFC3339Nano), role, ref.Seq, ok, c.role, c.since)
		}
	}
	if _, ref, _, _ := m.RoleAt("carol", "prod", hour(2)); ref.Type != domain.TypeUserRoleGranted || ref.ActorType != "user" ||
		ref.ActorID != "bob" || !ref.Time.Equal(hour(2)) {
		t.Errorf("the grant's ref: %+v", ref)
	}

	// Histories, for credential checks.
	uh, ok, err := m.UserHistory("alice")
	if err != nil || !ok || uh.Created.Seq != 1 || uh.PlatformAdmin || uh.Deactivated == nil || uh.Deactivated.Seq != 10 || len(uh.PasswordChanges) != 0 {
		t.Errorf("alice's history: %+v", uh)
	}
	uh, _, _ = m.UserHistory("carol")
	if uh.Deactivated != nil || len(uh.PasswordChanges) != 1 || uh.PasswordChanges[0].Event.Seq != 11 || uh.PasswordChanges[0].KeptSessionID != "sess-c" {
		t.Errorf("carol's history: %+v", uh)
	}
	if uh, _, _ := m.UserHistory("bob"); !uh.PlatformAdmin || uh.Created.ActorType != "system" {
		t.Errorf("bob's history: %+v", uh)
	}
	kh, ok, err := m.KeyHistory("key-1")
	if err != nil || !ok || kh.Name != "ci" || kh.Created.Seq != 7 || !kh.ExpiresAt.Equal(hour(9)) || kh.Revoked != nil || len(kh.Secrets) != 2 ||
		kh.Secrets[0] != (KeySecret{Hash: strings.Repeat("a", 64), Since: kh.Created}) || kh.Secrets[1].Hash != strings.Repeat("c", 64) || kh.Secrets[1].Since.Seq != 9 {
		t.Errorf("key-1's history: %+v", kh)
	}
	for hash, want := range map[string]bool{strings.Repeat("a", 64): true, strings.Repeat("c", 64): true, strings.Repeat("d", 64): false} {
		if got := m.KeyHadSecret("key-1", hash); got != want {
			t.Errorf("KeyHadSecret(key-1, %.8s…) = %v", hash, got)
		}
	}
	if m.KeyHadSecret("nokey", strings.Repeat("a", 64)) {
		t.Error("KeyHadSecret of an unknown key")
	}
	if kh, _, _ := m.KeyHistory("key-2"); kh.Revoked == nil || kh.Revoked.Seq != 12 || !kh.ExpiresAt.IsZero() || len(kh.Secrets) != 1 {
		t.Errorf("key-2's history: %+v", kh)
	}
	for _, f := range []func() bool{
		func() bool { _, ok, _ := m.UserHistory("nobody"); return ok },
		func() bool { _, ok, _ := m.KeyHistory("nokey"); return ok },
		func() bool { _, ok, _ := m.UserAccess("nobody", hour(1)); return ok },
		func() bool { _, ok, _ := m.KeyAccess("nokey", hour(1)); return ok },
	} {
		if f() {
			t.Error("an unknown principal was found")
		}
	}
}

// TestHistoryStart: a model built from a stream that lost its first events
// refuses moments before the oldest it holds.
func TestHistoryStart(t *testing.T) {
	m := NewModel()
	if seq, at, complete := m.HistoryStart(); seq != 0 || !at.IsZero() || !complete {
		t.Fatalf("empty model: %d %s %v", seq, at, complete)
	}
	m.Skip(1) // undecodable: the history still starts at the stream's first event
	m.Apply(2, events.Envelope{AggregateID: "u", OccurredAt: hour(1)}, domain.UserCreated{UserID: "u", Username: "u"})
	if seq, at, complete := m.HistoryStart(); seq != 2 || !at.Equal(hour(1)) || !complete {
		t.Fatalf("complete history: %d %s %v", seq, at, complete)
	}
	if _, err := m.TenantAccess("prod", "", hour(0)); err != nil {
		t.Fatalf("a complete history answers for any moment: %v", err)
	}

	cut := NewModel() // the stream's limits removed events 1-99
	cut.Apply(100, events.Envelope{AggregateID: "u", OccurredAt: hour(5)}, domain.UserCreated{UserID: "u", Username: "u",
		Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleViewer}}})
	if seq, at, complete := cut.HistoryStart(); seq != 100 || !at.Equal(hour(5)) || complete {
		t.Fatalf("cut history: %d %s %v", seq, at, complete)
	}
	for name, err := range map[string]error{
		"tenant": func() error { _, err := cut.TenantAccess("prod", "", hour(4)); return err }(),
		"user":   func() error { _, _, err := cut.UserAccess("u", hour(4)); return err }(),
		"key": func() error {
			cut.Apply(101, events.Envelope{AggregateID: "k", OccurredAt: hour(6)}, domain.APIKeyCreated{KeyID: "k", OwnerID: "u", Tenants: []string{"prod"}})
			_, _, err := cut.KeyAccess("k", hour(4))
			return err
		}(),
	} {
		if !errors.Is(err, ErrBeforeHistory) {
			t.Errorf("%s access before the history kept: %v", name, err)
		}
	}
	if got := mustTenant(t, cut, "prod", "", hour(5)); got != "user u prod: nodes:read,findings:read,jobs:read,reports:read via role role viewer since 100\n" {
		t.Errorf("at the oldest event: %q", got)
	}

	off := NewModel()
	off.NoHistory = true
	off.Apply(1, events.Envelope{AggregateID: "u", OccurredAt: hour(1)}, domain.UserCreated{UserID: "u", Username: "u"})
	if _, err := off.TenantAccess("prod", "", hour(2)); !errors.Is(err, ErrBeforeHistory) {
		t.Errorf("a model without history: %v", err)
	}
	if hits, _, err := off.AuditEvents(AuditQuery{}); err != nil || len(hits) != 0 {
		t.Errorf("a model without history has a journal: %v", hits)
	}
}

// ---------------------------------------------------------------- the oracle

// randomHistory is a history of users, keys, sessions and logins over a few
// tenants, at times that mostly go up, sometimes stay, and now and then go
// back a little (two replicas' clocks).
func randomHistory(rng *rand.Rand, n int) *timeline {
	tl := newTimeline()
	tenants := []string{"prod", "staging", "dev", "qa"}
	roles := []domain.Role{domain.RoleViewer, domain.RoleEditor, domain.RoleAdmin}
	perms := domain.AllPermissions
	var users, keys []string
	revoked := map[string]bool{}
	at := tl0
	hash := func() string { return fmt.Sprintf("%064x", rng.Uint64()) }
	for len(tl.evs) < n {
		switch d := rng.IntN(10); {
		case d < 6:
			at = at.Add(time.Duration(rng.IntN(3)) * time.Minute)
		case d < 9:
		default:
			at = at.Add(-time.Duration(rng.IntN(2)+1) * time.Minute)
		}
		actor := sysActor
		if len(users) > 0 && rng.IntN(4) > 0 {
			actor = userActor(users[rng.IntN(len(users))])
		}
		user := func() string { return users[rng.IntN(len(users))] }
		switch r := rng.IntN(100); {
		case r < 12 || len(users) == 0:
			id := fmt.Sprintf("user-%d", len(users))
			var trs []domain.TenantRole
			for _, t := range tenants {
				if rng.IntN(3) == 0 {
					trs = append(trs, domain.TenantRole{Tenant: t, Role: roles[rng.IntN(len(roles))]})
				}
			}
			var gr []domain.GlobalRole
			if rng.IntN(8) == 0 {
				gr = []domain.GlobalRole{domain.GlobalAdmin}
			}
			users = append(users, id)
			tl.add(at, actor, id, domain.UserCreated{UserID: id, Username: "name-" + id, Roles: gr, Tenants: trs, CreatedAt: at})
		case r < 30:
			u := user()
			tl.add(at, actor, u, domain.UserRoleGranted{UserID: u, Tenant: tenants[rng.IntN(len(tenants))], Role: roles[rng.IntN(len(roles))]})
		case r < 40:
			u := user()
			tl.add(at, actor, u, domain.UserRoleRevoked{UserID: u, Tenant: tenants[rng.IntN(len(tenants))]})
		case r < 42:
			u := user()
			tl.add(at, actor, u, domain.UserDeactivated{UserID: u})
		case r < 43:
			u := user()
			tl.add(at, actor, u, domain.UserActivated{UserID: u})
		case r < 47:
			u := user()
			tl.add(at, actor, u, domain.UserPasswordChanged{UserID: u, PasswordHashSealed: "x", KeptSessionID: "sess-" + u})
		case r < 60:
			id := fmt.Sprintf("key-%d", len(keys))
			var ts []string
			if rng.IntN(5) == 0 {
				ts = []string{domain.AllTenants}
			} else {
				for _, t := range tenants {
					if rng.IntN(2) == 0 || len(ts) == 0 && t == "qa" {
						ts = append(ts, t)
					}
				}
			}
			var ps []domain.Permission
			for len(ps) == 0 {
				for _, p := range perms {
					if rng.IntN(4) == 0 {
						ps = append(ps, p)
					}
				}
			}
			var exp *time.Time
			if rng.IntN(3) == 0 {
				e := at.Add(time.Duration(rng.IntN(60)+1) * time.Minute)
				exp = &e
			}
			keys = append(keys, id)
			tl.add(at, actor, id, domain.APIKeyCreated{KeyID: id, Name: "name-" + id, OwnerID: user(), Tenants: ts, Permissions: ps,
				SecretHash: hash(), CreatedAt: at, ExpiresAt: exp})
		case r < 68 && len(keys) > 0:
			k := keys[rng.IntN(len(keys))]
			owner := ""
			if rng.IntN(2) == 0 {
				owner = user()
			}
			tl.add(at, actor, k, domain.APIKeyRotated{KeyID: k, SecretHash: hash(), RotatedAt: at, OwnerID: owner})
		case r < 72 && len(keys) > 0:
			k := keys[rng.IntN(len(keys))]
			if !revoked[k] {
				revoked[k] = true
				tl.add(at, actor, k, domain.APIKeyRevoked{KeyID: k})
			}
		case r < 76 && len(keys) > 0:
			k := keys[rng.IntN(len(keys))]
			tl.add(at, events.Actor{Type: "apikey", ID: k}, k, domain.APIKeyUsed{KeyID: k, UsedAt: at})
		case r < 84:
			u := user()
			sid := fmt.Sprintf("sess-%d", len(tl.evs))
			tenant := ""
			if rng.IntN(3) == 0 {
				tenant = tenants[rng.IntN(len(tenants))]
			}
			tl.add(at, userActor(u), sid, domain.SessionStarted{SessionID: sid, UserID: u, Tenant: tenant, RefreshTokenHash: hash(),
				StartedAt: at, ExpiresAt: at.Add(time.Hour)})
			tl.add(at, userActor(u), u, domain.UserLoginSucceeded{UserID: u, SessionID: sid, Method: "password"})
			if rng.IntN(2) == 0 {
				tl.add(at, userActor(u), sid, domain.SessionRevoked{SessionID: sid, Reason: "logout"})
			}
		case r < 90:
			u := user()
			tl.add(at, events.Actor{Type: "anonymous"}, u, domain.UserLoginFailed{UserID: u, Username: "name-" + u, Reason: "invalid_credentials", At: at})
		case r < 93:
			tl.add(at, events.Actor{Type: "anonymous"}, "login-x", domain.UserLoginFailed{Reason: "invalid_credentials", At: at})
		default:
			tl.add(at, actor, "sk-1", domain.SigningKeyAdded{KeyID: "sk-1", Algorithm: "HS256", SecretSealed: "x", AddedAt: at})
		}
	}
	return tl
}

// oracle is the access at a moment the slow way: the events that occurred at
// or before it, folded in stream order by the domain's own Evolve functions.
type oracle struct {
	users      map[string]domain.User
	created    map[string]uint64
	roleSince  map[string]map[string]uint64
	keys       map[string]domain.APIKey
	ownerSince map[string]uint64
}

func oracleAt(evs []stamped, at time.Time) *oracle {
	o := &oracle{users: map[string]domain.User{}, created: map[string]uint64{}, roleSince: map[string]map[string]uint64{},
		keys: map[string]domain.APIKey{}, ownerSince: map[string]uint64{}}
	for _, s := range evs {
		if s.env.OccurredAt.After(at) {
			continue
		}
		id := s.env.AggregateID
		switch e := s.ev.(type) {
		case domain.UserCreated:
			o.users[id] = domain.EvolveUser(domain.User{}, e)
			o.created[id] = s.seq
			o.roleSince[id] = map[string]uint64{}
			for _, tr := range e.Tenants {
				o.roleSince[id][tr.Tenant] = s.seq
			}
		case domain.UserRoleGranted, domain.UserRoleRevoked, domain.UserDeactivated, domain.UserActivated:
			u, ok := o.users[id]
			if !ok {
				continue
			}
			o.users[id] = domain.EvolveUser(u, e)
			if g, ok := e.(domain.UserRoleGranted); ok {
				o.roleSince[id][g.Tenant] = s.seq
			}
		case domain.APIKeyCreated:
			o.keys[id] = domain.EvolveAPIKey(domain.APIKey{}, e)
			o.ownerSince[id] = s.seq
		case domain.APIKeyRotated, domain.APIKeyRevoked:
			k, ok := o.keys[id]
			if !ok {
				continue
			}
			o.keys[id] = domain.EvolveAPIKey(k, e)
			if r, ok := e.(domain.APIKeyRotated); ok && r.OwnerID != "" {
				o.ownerSince[id] = s.seq
			}
		}
	}
	return o
}

// userGrant is user id's grant in tenant ("*": as a platform admin, for
// UserAccess).
func (o *oracle) userGrant(id, tenant string) (string, bool) {
	u, ok := o.users[id]
	if !ok || !u.Active {
		return "", false
	}
	if u.IsPlatformAdmin() {
		return fmt.Sprintf("%s via platform_admin since %d", domain.SetOf(domain.AdminAll), o.created[id]), true
	}
	role, ok := u.Tenants[tenant]
	if !ok {
		return "", false
	}
	return fmt.Sprintf("%s via role role %s since %d", role.Permissions(), role, o.roleSince[id][tenant]), true
}

func (o *oracle) keyGrant(id, tenant string, at time.Time) (string, bool) {
	k, ok := o.keys[id]
	if !ok || k.Revoked || k.Expired(at) {
		return "", false
	}
	og, ok := o.userGrant(k.OwnerID, tenant)
	if !ok {
		return "", false
	}
	u := o.users[k.OwnerID]
	perms := intersectPerms(k.Permissions, u.PermissionsIn(tenant))
	if perms == 0 {
		return "", false
	}
	return fmt.Sprintf("%s via api_key since %d owner %s [%s %s]", perms, o.ownerSince[id], k.OwnerID, tenant, og), true
}

func (o *oracle) tenantAccess(tenant string, perm domain.Permission, at time.Time) string {
	want := func(g string, perms domain.PermissionSet) bool { return grants(perms, perm) }
	var b strings.Builder
	ids := sortedKeys(o.users)
	for _, id := range ids {
		if g, ok := o.userGrant(id, tenant); ok && want(g, o.users[id].PermissionsIn(tenant)) {
			fmt.Fprintf(&b, "user %s %s: %s\n", id, tenant, g)
		}
	}
	for _, id := range sortedKeys(o.keys) {
		k := o.keys[id]
		if !k.InTenant(tenant) {
			continue
		}
		if g, ok := o.keyGrant(id, tenant, at); ok && want(g, intersectPerms(k.Permissions, o.users[k.OwnerID].PermissionsIn(tenant))) {
			fmt.Fprintf(&b, "apikey %s %s: %s\n", id, tenant, g)
		}
	}
	return b.String()
}

func (o *oracle) userAccess(id string) string {
	u, ok := o.users[id]
	if !ok || !u.Active {
		return fmt.Sprintf("user %s: none\n", id)
	}
	if u.IsPlatformAdmin() {
		g, _ := o.userGrant(id, "*")
		return fmt.Sprintf("user %s *: %s\n", id, g)
	}
	var b strings.Builder
	for _, t := range sortedKeys(u.Tenants) {
		g, _ := o.userGrant(id, t)
		fmt.Fprintf(&b, "user %s %s: %s\n", id, t, g)
	}
	if b.Len() == 0 {
		return fmt.Sprintf("user %s: none\n", id)
	}
	return b.String()
}

func (o *oracle) keyAccess(id string, at time.Time) string {
	k, ok := o.keys[id]
	var lines []string
	if ok {
		for _, t := range k.Tenants {
			if t != domain.AllTenants {
				if g, ok := o.keyGrant(id, t, at); ok {
					lines = append(lines, fmt.Sprintf("apikey %s %s: %s", id, t, g))
				}
				continue
			}
			owner, ok := o.users[k.OwnerID]
			if !ok {
				continue
			}
			if owner.IsPlatformAdmin() {
				if g, ok := o.keyGrant(id, "*", at); ok {
					lines = append(lines, fmt.Sprintf("apikey %s *: %s", id, g))
				}
				continue
			}
			for tenant := range owner.Tenants {
				if g, ok := o.keyGrant(id, tenant, at); ok {
					lines = append(lines, fmt.Sprintf("apikey %s %s: %s", id, tenant, g))
				}
			}
		}
	}
	if len(lines) == 0 {
		return fmt.Sprintf("apikey %s: none\n", id)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// instants are the moments worth asking about: each event's time, a
// nanosecond either side, and before and after everything.
func instants(evs []stamped) []time.Time {
	var out []time.Time
	for _, s := range evs {
		at := s.env.OccurredAt
		out = append(out, at.Add(-time.Nanosecond), at, at.Add(time.Nanosecond))
		if c, ok := s.ev.(domain.APIKeyCreated); ok && c.ExpiresAt != nil {
			out = append(out, c.ExpiresAt.Add(-time.Nanosecond), *c.ExpiresAt)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	out = slices.CompactFunc(out, func(a, b time.Time) bool { return a.Equal(b) })
	return append(out, out[len(out)-1].Add(time.Hour))
}

// TestAccessMatchesTheOracle: on random histories, at every instant that
// matters, every tenant's, user's and key's access is what folding the
// events that had occurred by then gives.
func TestAccessMatchesTheOracle(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 16))
		tl := randomHistory(rng, 300)
		m := tl.m
		ats := instants(tl.evs)
		if testing.Short() {
			ats = ats[:len(ats)/4]
		}
		for _, at := range ats {
			o := oracleAt(tl.evs, at)
			for _, tenant := range []string{"prod", "staging", "dev", "qa", "unseen"} {
				for _, perm := range []domain.Permission{"", domain.FindingsRead, domain.AdminAll} {
					if got, want := mustTenant(t, m, tenant, perm, at), o.tenantAccess(tenant, perm, at); got != want {
						t.Fatalf("seed %d, %s, tenant %s, %q:\n%s\nthe oracle:\n%s", seed, at.Format(time.RFC3339Nano), tenant, perm, got, want)
					}
				}
			}
			for _, u := range m.Users() {
				if got, want := mustUser(t, m, u.ID, at), o.userAccess(u.ID); got != want {
					t.Fatalf("seed %d, %s, user %s:\n%s\nthe oracle:\n%s", seed, at.Format(time.RFC3339Nano), u.ID, got, want)
				}
			}
			for _, k := range m.APIKeys() {
				if got, want := mustKey(t, m, k.ID, at), o.keyAccess(k.ID, at); got != want {
					t.Fatalf("seed %d, %s, key %s:\n%s\nthe oracle:\n%s", seed, at.Format(time.RFC3339Nano), k.ID, got, want)
				}
			}
		}
	}
}

// sortAccess orders principals as TenantAccess does.
func sortAccess(accs []Access) {
	slices.SortFunc(accs, func(a, b Access) int {
		if a.Kind != b.Kind {
			return -cmp.Compare(a.Kind, b.Kind) // users first
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

func TestTenantAccessOrder(t *testing.T) {
	m := exampleTimeline().m
	accs, err := m.TenantAccess("prod", "", hour(5))
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.Clone(accs)
	sortAccess(sorted)
	if len(accs) != 5 || !slices.EqualFunc(accs, sorted, func(a, b Access) bool { return a.ID == b.ID }) {
		t.Fatalf("order: %s", render(accs))
	}
	if accs[0].Name != "Alice" || accs[3].Name != "ci" {
		t.Errorf("names: %q %q", accs[0].Name, accs[3].Name)
	}
}
