package projections

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// lifecycleModel applies events one after another, each at the next
// sequence, as the runner would.
type lifecycleModel struct {
	*Model
	seq uint64
}

func (m *lifecycleModel) apply(aggregateID string, ev domain.Event) uint64 {
	m.seq++
	m.Apply(m.seq, events.Envelope{AggregateID: aggregateID}, ev)
	return m.seq
}

var lt0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

func (m *lifecycleModel) user(id string) {
	m.apply(id, domain.UserCreated{UserID: id, Username: id, PasswordHashSealed: "sealed-" + id, Roles: []domain.GlobalRole{},
		Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleViewer}}, CreatedAt: lt0})
}

// session starts a session of user at minute i, expiring a day later.
func (m *lifecycleModel) session(user string, i int, tenant string) string {
	sid := fmt.Sprintf("sess-01JZZZZZZZZZZZZZZZZZZZZ%03d", i)
	m.apply(sid, domain.SessionStarted{SessionID: sid, UserID: user, Tenant: tenant, RefreshTokenHash: fmt.Sprintf("%064x", i),
		Method: "password", StartedAt: lt0.Add(time.Duration(i) * time.Minute), ExpiresAt: lt0.Add(24*time.Hour + time.Duration(i)*time.Minute)})
	return sid
}

func sessionIDs(l []UserSession) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = s.ID
	}
	return out
}

func (m *lifecycleModel) listed(t *testing.T, user string, now time.Time) []string {
	t.Helper()
	l, ok := m.UserSessions(user, now)
	if !ok {
		t.Fatalf("UserSessions(%s): no such user", user)
	}
	ids := sessionIDs(l)
	got := m.UserSessionIDs(user, now)
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Fatalf("UserSessionIDs(%s) = %v, UserSessions lists %v", user, got, ids)
	}
	return ids
}

// A deactivation cuts off every session started at or before it, for good:
// an activation lets the user start new ones, and brings none back.
func TestDeactivationIsACutOff(t *testing.T) {
	m := &lifecycleModel{Model: NewModel()}
	m.user("user-a")
	old := m.session("user-a", 1, "")
	now := lt0.Add(time.Hour)
	if _, v := m.Authorize(old, "tok-1", now); v != Valid {
		t.Fatalf("before: %v", v)
	}
	m.apply("user-a", domain.UserDeactivated{UserID: "user-a", Reason: "left"})
	if _, v := m.Authorize(old, "tok-1", now); v != UserInactive {
		t.Fatalf("deactivated: %v, want %v", v, UserInactive)
	}
	if got := m.listed(t, "user-a", now); len(got) != 0 {
		t.Fatalf("a deactivated user's sessions listed: %v", got)
	}
	m.apply("user-a", domain.UserActivated{UserID: "user-a"})
	if _, v := m.Authorize(old, "tok-1", now); v != SessionRevoked {
		t.Fatalf("activated again, a session from before: %v, want %v", v, SessionRevoked)
	}
	if err := m.SessionUsable(old); err != domain.ErrSessionRevoked {
		t.Fatalf("activated again, refresh of a session from before: %v", err)
	}
	fresh := m.session("user-a", 2, "")
	if _, v := m.Authorize(fresh, "tok-2", now); v != Valid {
		t.Fatalf("a session started after the activation: %v", v)
	}
	if got := m.listed(t, "user-a", now); !slices.Equal(got, []string{fresh}) {
		t.Fatalf("listed %v, want only %s", got, fresh)
	}

	// A password change that names a cut-off session as the one it keeps
	// does not bring it back (a request racing the deactivation).
	m.apply("user-a", domain.UserPasswordChanged{UserID: "user-a", PasswordHashSealed: "new", KeptSessionID: old})
	if _, v := m.Authorize(old, "tok-1", now); v != SessionRevoked {
		t.Fatalf("kept by a later password change, a cut-off session: %v", v)
	}
	if _, v := m.Authorize(fresh, "tok-2", now); v != SessionRevoked {
		t.Fatalf("the password change keeps nothing live, so it cuts %s: %v", fresh, v)
	}
	fresher := m.session("user-a", 3, "")
	m.apply("user-a", domain.UserPasswordChanged{UserID: "user-a", PasswordHashSealed: "newer", KeptSessionID: fresher})
	if _, v := m.Authorize(fresher, "tok-3", now); v != Valid {
		t.Fatalf("the session a password change keeps: %v", v)
	}
}

// The sessions listed are the live ones: not revoked, cut off or expired,
// in the order of their IDs; the same after a restore, and after Prune.
func TestUserSessions(t *testing.T) {
	m := &lifecycleModel{Model: NewModel()}
	m.user("user-a")
	m.user("user-b")
	var want []string
	for i := range 6 {
		sid := m.session("user-a", 10+i, map[bool]string{true: "prod"}[i == 2])
		m.session("user-b", 20+i, "")
		switch i {
		case 1:
			m.apply(sid, domain.SessionRevoked{SessionID: sid, Reason: domain.RevokeReasonLogout})
		case 3:
			m.apply(sid, domain.SessionRefreshed{SessionID: sid, TokenID: "tok", At: lt0.Add(time.Hour)})
			want = append(want, sid)
		default:
			want = append(want, sid)
		}
	}
	now := lt0.Add(2 * time.Hour)
	if got := m.listed(t, "user-a", now); !slices.Equal(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	l, _ := m.UserSessions("user-a", now)
	for _, s := range l {
		if s.UserID != "user-a" || s.StartSeq == 0 || s.StartedAt.IsZero() || !s.ExpiresAt.After(s.StartedAt) {
			t.Fatalf("session %+v", s)
		}
		if s.ID == want[1] && s.Tenant != "prod" {
			t.Fatalf("tenant of %s: %q", s.ID, s.Tenant)
		}
		if s.ID == want[2] && (s.Refreshes != 1 || !s.LastUsedAt.Equal(lt0.Add(time.Hour))) {
			t.Fatalf("refreshed %s: %+v", s.ID, s)
		}
	}
	if _, ok := m.UserSessions("user-nobody", now); ok {
		t.Fatal("a user that does not exist has sessions")
	}

	// Restored from a snapshot: the same lists.
	data, _, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r := &lifecycleModel{Model: NewModel()}
	if r.seq, err = r.Restore(data); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"user-a", "user-b"} {
		if got, w := r.listed(t, u, now), m.listed(t, u, now); !slices.Equal(got, w) {
			t.Fatalf("restored: %s's sessions %v, want %v", u, got, w)
		}
	}

	// Expiry: a session past it is not listed; Prune drops it and the lists
	// go on working, with records reused by new sessions.
	late := lt0.Add(24*time.Hour + 12*time.Minute + 30*time.Second) // the first three of user-a have expired
	if got := m.listed(t, "user-a", late); !slices.Equal(got, want[2:]) {
		t.Fatalf("at %s: %v, want %v", late, got, want[2:])
	}
	if n := m.Prune(late); n == 0 {
		t.Fatal("nothing pruned")
	}
	if got := m.listed(t, "user-a", late); !slices.Equal(got, want[2:]) {
		t.Fatalf("after Prune: %v, want %v", got, want[2:])
	}
	reused := m.session("user-b", 40, "")
	if got := m.listed(t, "user-b", late); !slices.Contains(got, reused) {
		t.Fatalf("user-b's sessions %v, without %s", got, reused)
	}
	if got := m.listed(t, "user-a", late); !slices.Equal(got, want[2:]) {
		t.Fatalf("after a record was reused: %v, want %v", got, want[2:])
	}
}

// A session started again under its ID (the service never does) moves to
// its new user's list.
func TestUserSessionsStartedAgain(t *testing.T) {
	m := &lifecycleModel{Model: NewModel()}
	m.user("user-a")
	m.user("user-b")
	sid := m.session("user-a", 1, "")
	m.apply(sid, domain.SessionStarted{SessionID: sid, UserID: "user-b", RefreshTokenHash: "x", Method: "password", StartedAt: lt0, ExpiresAt: lt0.Add(time.Hour)})
	if got := m.listed(t, "user-a", lt0); len(got) != 0 {
		t.Fatalf("user-a: %v", got)
	}
	if got := m.listed(t, "user-b", lt0); !slices.Equal(got, []string{sid}) {
		t.Fatalf("user-b: %v", got)
	}
}

func TestAPIKeysOwnedBy(t *testing.T) {
	m := &lifecycleModel{Model: NewModel()}
	m.user("user-a")
	m.user("user-b")
	for i, owner := range []string{"user-a", "user-a", "user-b", "user-a"} {
		kid := fmt.Sprintf("key-%d", i)
		m.apply(kid, domain.APIKeyCreated{KeyID: kid, Name: "k", OwnerID: owner, Tenants: []string{"prod"},
			Permissions: []domain.Permission{"nodes:read"}, SecretHash: fmt.Sprintf("%064x", i+100), CreatedAt: lt0})
	}
	m.apply("key-1", domain.APIKeyRevoked{KeyID: "key-1"})
	m.apply("key-3", domain.APIKeyRotated{KeyID: "key-3", SecretHash: fmt.Sprintf("%064x", 200), RotatedAt: lt0, OwnerID: "user-b"})
	got := m.APIKeysOwnedBy("user-a")
	if !slices.Equal(got, []string{"key-0"}) {
		t.Fatalf("user-a owns %v, want [key-0]", got)
	}
	got = m.APIKeysOwnedBy("user-b")
	if !slices.Equal(got, []string{"key-2", "key-3"}) {
		t.Fatalf("user-b owns %v", got)
	}
	// Back to its first owner: listed once.
	m.apply("key-3", domain.APIKeyRotated{KeyID: "key-3", SecretHash: fmt.Sprintf("%064x", 201), RotatedAt: lt0, OwnerID: "user-a"})
	if got := m.APIKeysOwnedBy("user-a"); !slices.Equal(got, []string{"key-0", "key-3"}) {
		t.Fatalf("user-a owns %v, want [key-0 key-3]", got)
	}
	if got := m.APIKeysOwnedBy("user-b"); !slices.Equal(got, []string{"key-2"}) {
		t.Fatalf("user-b owns %v, want [key-2]", got)
	}
	// The same after a restore.
	data, _, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r := NewModel()
	if _, err := r.Restore(data); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"user-a", "user-b", "user-c"} {
		if got, want := r.APIKeysOwnedBy(u), m.APIKeysOwnedBy(u); !slices.Equal(got, want) {
			t.Fatalf("restored: %s owns %v, want %v", u, got, want)
		}
		if got, want := r.APIKeysHeld(u), len(m.APIKeysOwnedBy(u)); got != want || m.APIKeysHeld(u) != want {
			t.Fatalf("%s holds %d (restored %d), want %d", u, m.APIKeysHeld(u), got, want)
		}
	}
}

// TestLiveAPIKeyNamed: an owner's key names, as the check of a creation
// reads them (any case; a revoked or expired key's name is free), kept
// as keys are revoked and change owners, and after a restore.
func TestLiveAPIKeyNamed(t *testing.T) {
	m := &lifecycleModel{Model: NewModel()}
	m.user("user-a")
	m.user("user-b")
	exp := lt0.Add(time.Hour)
	for i, name := range []string{"deploy", "ci", "Backup", "old"} {
		kid := fmt.Sprintf("key-%d", i)
		c := domain.APIKeyCreated{KeyID: kid, Name: name, OwnerID: "user-a", Tenants: []string{"prod"},
			Permissions: []domain.Permission{"nodes:read"}, SecretHash: fmt.Sprintf("%064x", i+100), CreatedAt: lt0}
		if name == "old" {
			c.ExpiresAt = &exp
		}
		m.apply(kid, c)
	}
	m.apply("key-0", domain.APIKeyRevoked{KeyID: "key-0"})
	m.apply("key-1", domain.APIKeyRotated{KeyID: "key-1", SecretHash: fmt.Sprintf("%064x", 200), RotatedAt: lt0, OwnerID: "user-b"})
	check := func(m *Model, when string) {
		t.Helper()
		for _, c := range []struct {
			owner, name string
			at          time.Time
			want        bool
		}{
			{"user-a", "deploy", lt0, false}, // revoked
			{"user-a", "ci", lt0, false},     // now user-b's
			{"user-b", "CI", lt0, true},
			{"user-a", "backup", lt0, true},
			{"user-a", "BACKUP", lt0, true},
			{"user-b", "backup", lt0, false},
			{"user-a", "old", lt0, true},
			{"user-a", "old", exp, false}, // expired
			{"user-a", "other", lt0, false},
		} {
			if got := m.LiveAPIKeyNamed(c.owner, c.name, c.at); got != c.want {
				t.Errorf("%s: %s %q at %v: %v, want %v", when, c.owner, c.name, c.at, got, c.want)
			}
		}
		if a, b := m.APIKeysHeld("user-a"), m.APIKeysHeld("user-b"); a != 2 || b != 1 {
			t.Errorf("%s: user-a holds %d, user-b %d; want 2 and 1", when, a, b)
		}
	}
	check(m.Model, "applied")
	data, _, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r := NewModel()
	if _, err := r.Restore(data); err != nil {
		t.Fatal(err)
	}
	check(r, "restored")
}

// TestAPIKeysOwnedByManyChanges: the owners' lists (each key taken off by
// its place) hold, after many revocations and changes of owner in any
// order, the keys a look at every key finds.
func TestAPIKeysOwnedByManyChanges(t *testing.T) {
	m := &lifecycleModel{Model: NewModel()}
	owners := []string{"user-a", "user-b", "user-c"}
	for _, u := range owners {
		m.user(u)
	}
	const n = 300
	for i := range n {
		kid := fmt.Sprintf("key-%03d", i)
		m.apply(kid, domain.APIKeyCreated{KeyID: kid, Name: kid, OwnerID: owners[i%3], Tenants: []string{"prod"},
			Permissions: []domain.Permission{"nodes:read"}, SecretHash: fmt.Sprintf("%064x", i+1000), CreatedAt: lt0})
	}
	for i := range 2 * n {
		kid := fmt.Sprintf("key-%03d", (i*7919)%n)
		if i%3 == 0 {
			m.apply(kid, domain.APIKeyRevoked{KeyID: kid})
		} else {
			m.apply(kid, domain.APIKeyRotated{KeyID: kid, SecretHash: fmt.Sprintf("%064x", i+5000), RotatedAt: lt0, OwnerID: owners[(i*31)%3]})
		}
	}
	for _, u := range owners {
		var want []string
		for i := range n {
			if k, _, ok := m.APIKey(fmt.Sprintf("key-%03d", i)); ok && k.OwnerID == u && !k.Revoked {
				want = append(want, k.ID)
			}
		}
		if got := m.APIKeysOwnedBy(u); !slices.Equal(got, want) || m.APIKeysHeld(u) != len(want) {
			t.Fatalf("%s owns %v (holds %d), want %v", u, got, m.APIKeysHeld(u), want)
		}
	}
}

// listLength is how many records user's list holds, live or not.
func (m *lifecycleModel) listLength(user string) int {
	u, ok := m.users.find(user)
	ss := &m.sessions
	if !ok || u >= ss.byUser.n {
		return 0
	}
	n := 0
	for next := *ss.byUser.at(u); next != 0; next = *ss.userNext.at(next - 1) {
		n++
	}
	return n
}

// The session limit counts a user's live sessions at every login
// (UserSessionCount), and the sessions it ends stay stored until they
// expire: a revocation takes the session out of its user's list, so that a
// user kept at the limit by many logins has a list of about the limit, not
// of every session it started in the refresh lifetime. Restored from a
// snapshot, the list holds no revoked session either. UserSessionUses
// tells each live session's last use and the sequence of its start (the
// limit ends only sessions started before the login's own).
func TestRevokedSessionsLeaveTheUsersList(t *testing.T) {
	m := &lifecycleModel{Model: NewModel()}
	m.user("user-a")
	var ids []string
	for i := range 50 {
		ids = append(ids, m.session("user-a", i, ""))
	}
	for _, sid := range ids[:47] {
		m.apply(sid, domain.SessionRevoked{SessionID: sid, Reason: domain.RevokeReasonSessionLimit})
	}
	m.apply(ids[47], domain.SessionRefreshed{SessionID: ids[47], TokenID: "tok", At: lt0.Add(2 * time.Hour)})
	m.apply(ids[48], domain.SessionRefreshReused{SessionID: ids[48], RefreshTokenHash: "x"}) // revoked by the session.revoked after it
	m.apply(ids[48], domain.SessionRevoked{SessionID: ids[48], Reason: domain.RevokeReasonReuse})
	m.apply(ids[48], domain.SessionRevoked{SessionID: ids[48], Reason: domain.RevokeReasonLogout}) // again: nothing changes
	now := lt0.Add(3 * time.Hour)
	if n := m.UserSessionCount("user-a", now); n != 2 {
		t.Fatalf("UserSessionCount = %d, want 2", n)
	}
	if n := m.listLength("user-a"); n != 2 {
		t.Fatalf("the user's list holds %d records, want the 2 not revoked", n)
	}
	uses := m.UserSessionUses("user-a", now)
	slices.SortFunc(uses, func(a, b domain.SessionUse) int { return a.LastUsedAt.Compare(b.LastUsedAt) })
	if len(uses) != 2 || uses[0].ID != ids[49] || uses[1].ID != ids[47] || !uses[1].LastUsedAt.Equal(lt0.Add(2*time.Hour)) ||
		uses[0].StartSeq != 51 || uses[1].StartSeq != 49 { // the user at 1, session i at i+2
		t.Fatalf("UserSessionUses = %+v", uses)
	}
	data, _, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r := &lifecycleModel{Model: NewModel()}
	if r.seq, err = r.Restore(data); err != nil {
		t.Fatal(err)
	}
	if n := r.listLength("user-a"); n != 2 {
		t.Fatalf("restored: the user's list holds %d records, want 2", n)
	}
	if got, want := r.listed(t, "user-a", now), m.listed(t, "user-a", now); !slices.Equal(got, want) {
		t.Fatalf("restored: %v, want %v", got, want)
	}
	if sess, _, _ := r.Session(ids[0]); !sess.Revoked || sess.RevokeReason != domain.RevokeReasonSessionLimit {
		t.Fatalf("restored: the ended session is %+v", sess)
	}
}

// A revoked session is forgotten by Prune once every access token issued
// from it has expired (RevokedSessionGrace after its last use), not
// before, and not at all without the grace; a live one stays until it
// expires. The sessions the session limit ends so leave the replicas'
// memory within about an access token's lifetime, not their 7 days.
func TestPruneForgetsSessionsRevokedLongAgo(t *testing.T) {
	for _, grace := range []time.Duration{0, time.Hour} {
		m := &lifecycleModel{Model: NewModel()}
		m.RevokedSessionGrace = grace
		m.user("user-a")
		used := m.session("user-a", 0, "")     // started at lt0, refreshed at lt0+30m, then revoked
		revoked := m.session("user-a", 10, "") // started at lt0+10m, revoked
		live := m.session("user-a", 20, "")    // started at lt0+20m
		m.apply(used, domain.SessionRefreshed{SessionID: used, TokenID: "tok", At: lt0.Add(30 * time.Minute)})
		for _, sid := range []string{used, revoked} {
			m.apply(sid, domain.SessionRevoked{SessionID: sid, Reason: domain.RevokeReasonSessionLimit})
		}
		known := func(sid string) bool { _, _, ok := m.Session(sid); return ok }
		m.Prune(lt0.Add(10*time.Minute + time.Hour - time.Second))
		if !known(revoked) || !known(used) || !known(live) {
			t.Fatalf("grace %s: a session was forgotten before its access tokens expired", grace)
		}
		m.Prune(lt0.Add(10*time.Minute + time.Hour))
		if known(revoked) != (grace == 0) || !known(used) || !known(live) {
			t.Fatalf("grace %s, an hour after the revoked session's last use: known %v, %v, %v", grace, known(revoked), known(used), known(live))
		}
		m.Prune(lt0.Add(30*time.Minute + time.Hour))
		if known(used) != (grace == 0) || !known(live) {
			t.Fatalf("grace %s, an hour after the refreshed session's last use: known %v, %v", grace, known(used), known(live))
		}
		if got := m.listed(t, "user-a", lt0.Add(2*time.Hour)); !slices.Equal(got, []string{live}) {
			t.Fatalf("grace %s: listed %v, want %v", grace, got, []string{live})
		}
		if _, ok := m.SessionByRefreshHash(fmt.Sprintf("%064x", 10)); ok != (grace == 0) {
			t.Fatalf("grace %s: the forgotten session's refresh token found: %v", grace, ok)
		}
	}
}
