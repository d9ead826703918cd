package projections

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// listModel is a model of n users named out of order (some in upper case),
// each with a role in tenant t<i%3>, and user i%7==0 also in "ops".
func listModel(t testing.TB, n int) (*Model, func(agg, id string, e domain.Event)) {
	t.Helper()
	return listModelWith(t, n, false)
}

// listModelWith is listModel with the audit journal and the access history
// kept when history is set: the keys' lists walk the history's keys
// (walkKeys), as the service's model does.
func listModelWith(t testing.TB, n int, history bool) (*Model, func(agg, id string, e domain.Event)) {
	t.Helper()
	m := NewModel()
	m.NoHistory = !history
	if history {
		m.JournalDir = t.TempDir()
	}
	var seq uint64
	apply := func(agg, id string, e domain.Event) {
		seq++
		m.Apply(seq, events.Envelope{Type: e.EventType(), Aggregate: agg, AggregateID: id, Sequence: 1}, e)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("user-%08d", i)
		name := fmt.Sprintf("u%07d", (i*7919)%n)
		if i%5 == 0 {
			name = strings.ToUpper(name)
		}
		tenants := []domain.TenantRole{{Tenant: fmt.Sprintf("t%d", i%3), Role: domain.RoleViewer}}
		if i%7 == 0 {
			tenants = append(tenants, domain.TenantRole{Tenant: "ops", Role: domain.RoleAdmin})
		}
		apply(domain.AggregateUser, id, domain.UserCreated{UserID: id, Username: name, Email: name + "@example.com",
			PasswordHashSealed: "aesgcm1:x", Roles: []domain.GlobalRole{}, Tenants: tenants, CreatedAt: now})
	}
	return m, apply
}

// TestListUsersHoldsTheLockAChunkAtATime: a users list never holds the
// model's lock across more than listChunk records, and an event waiting for
// the write lock is applied between two chunks of one list — the token
// checks queued behind it wait for a chunk, not for the whole population
// (outside check 20s: Users() copied 1M users under one read lock).
func TestListUsersHoldsTheLockAChunkAtATime(t *testing.T) {
	const n = 100_000
	m, apply := listModel(t, n)
	m.mu.RLock()
	before := m.applied
	m.mu.RUnlock()

	var holds, most int
	var appliedAt []uint64 // m.applied as each hold saw it
	wrote := make(chan struct{})
	m.listHeld = func(records int) {
		holds++
		most = max(most, records)
		appliedAt = append(appliedAt, m.applied)
		if holds != 2 {
			return
		}
		// Between the second chunk and the third, a role granted: it
		// waits for the write lock, and is applied before the walk goes on.
		go func() {
			apply(domain.AggregateUser, "user-00000001", domain.UserRoleGranted{UserID: "user-00000001", Tenant: "late", Role: domain.RoleViewer})
			close(wrote)
		}()
		deadline := time.Now().Add(10 * time.Second)
		for m.mu.TryRLock() { // false once the writer waits for the lock
			m.mu.RUnlock()
			if time.Now().After(deadline) {
				t.Error("the writer never waited for the lock")
				return
			}
		}
	}
	users, next := m.ListUsers(UserListQuery{Everyone: true, Limit: 10})
	m.listHeld = nil
	if holds >= 2 {
		<-wrote
	}
	// A few thousand records a hold, whatever listChunk is set to.
	const maxHeld = 5_000
	if most > maxHeld || most > listChunk {
		t.Fatalf("a hold of the lock looked at %d records, more than %d (listChunk %d)", most, maxHeld, listChunk)
	}
	if want := (n+listChunk-1)/listChunk + 1; holds != want { // the walk's chunks, then the page's build
		t.Fatalf("%d holds of the lock, want %d", holds, want)
	}
	if len(appliedAt) < 3 || appliedAt[2] != before+1 {
		t.Fatalf("the event waiting after the second chunk was not applied before the third (applied %d, then %d)", appliedAt[1], appliedAt[2])
	}
	if len(users) != 10 || next == "" {
		t.Fatalf("%d users, next %q", len(users), next)
	}
}

// TestListUsersPagesAsTheWholeSortedList: walking ListUsers by pages gives
// what filtering and sorting every user gives, for each kind of caller
// (everyone, a tenant's admin, only themselves), with and without a match,
// through cursors in the format the API always had (username NUL ID); and
// a caller who sees only themselves looks at no other record.
func TestListUsersPagesAsTheWholeSortedList(t *testing.T) {
	const n = 9_000
	m, _ := listModel(t, n)
	all := m.Users()
	key := func(u domain.User) string { return UserKey(u.Username, u.ID) }
	self := "user-00000004" // in t1, not in ops
	ops := func(tenant string) bool { return tenant == "ops" }
	cases := []struct {
		name string
		q    UserListQuery
	}{
		{"everyone", UserListQuery{Everyone: true}},
		{"everyone matching", UserListQuery{Everyone: true, Match: "u00012"}},
		{"tenant admin", UserListQuery{Self: self, Administers: ops}},
		{"tenant admin matching an e-mail", UserListQuery{Self: self, Administers: ops, Match: "3@example"}},
		{"only themselves", UserListQuery{Self: self}},
		{"only themselves, not matching", UserListQuery{Self: self, Match: "nobody"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, u := range all {
				if tc.q.sees(u) && strings.Contains(domain.LowerASCII(u.Username+"\n"+u.Email), tc.q.Match) {
					want = append(want, key(u))
				}
			}
			slices.Sort(want)
			limits := []int{0, 13, 1000}
			if len(want) < 100 {
				limits = append(limits, 1)
			}
			for _, limit := range limits {
				holds := 0
				m.listHeld = func(int) { holds++ }
				var got []string
				q := tc.q
				q.Limit = limit
				for pages := 0; ; pages++ {
					users, next := m.ListUsers(q)
					for _, u := range users {
						if u.PasswordHashSealed != "" {
							t.Fatal("a listed user carries its sealed password hash")
						}
						got = append(got, key(u))
					}
					if next == "" {
						break
					}
					if limit == 0 || len(users) != limit || next != key(users[len(users)-1]) {
						t.Fatalf("limit %d: a page of %d, next %q", limit, len(users), next)
					}
					if pages > n {
						t.Fatal("the walk does not end")
					}
					q.After = next
				}
				m.listHeld = nil
				if !slices.Equal(got, want) {
					t.Fatalf("limit %d: %d users, want %d (first %v, want %v)", limit, len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
				}
				if tc.q.Administers == nil && !tc.q.Everyone && holds != 0 {
					t.Fatalf("a caller who sees only themselves: the list looked at the records %d times", holds)
				}
			}
		})
	}

	// A cursor that is a username alone (no NUL) starts after every user
	// of that name, as the key comparison always did.
	var want string
	for _, u := range all {
		if k := key(u); k > "u0000005" && (want == "" || k < want) {
			want = k
		}
	}
	users, _ := m.ListUsers(UserListQuery{Everyone: true, After: "u0000005", Limit: 1})
	if len(users) != 1 || key(users[0]) != want {
		t.Fatalf("after a bare username: %+v, want %q", users, want)
	}
}

// TestListAPIKeysPagesAChunkAtATime: the keys list (GET /api/v1/api-keys)
// walks the keys listChunk at a time as the users list does — a map of
// every key walked under one hold of the lock, it was the same stall — and
// its pages, through cursors, are what filtering and sorting every key
// gives; APIKeys, which the credential check walks, holds the lock a chunk
// at a time too.
func TestListAPIKeysPagesAChunkAtATime(t *testing.T) {
	const n = 10_000
	m, apply := listModelWith(t, 10, true)
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("key-%08d", (i*7919)%n) // created out of order
		tenant := fmt.Sprintf("t%d", i%3)
		apply(domain.AggregateAPIKey, id, domain.APIKeyCreated{KeyID: id, Name: "k", OwnerID: fmt.Sprintf("user-%08d", i%10), Tenants: []string{tenant},
			Permissions: []domain.Permission{domain.FindingsRead}, SecretHash: fmt.Sprintf("%064x", i+1), CreatedAt: now})
	}
	var holds, most int
	m.listHeld = func(records int) { holds, most = holds+1, max(most, records) }
	all := m.APIKeys()
	if len(all) != n || !slices.IsSortedFunc(all, func(a, b domain.APIKey) int { return strings.Compare(a.ID, b.ID) }) || all[0].SecretHash == "" {
		t.Fatalf("APIKeys: %d keys, sorted %v", len(all), slices.IsSortedFunc(all, func(a, b domain.APIKey) int { return strings.Compare(a.ID, b.ID) }))
	}
	if want := (n + listChunk - 1) / listChunk; holds != want || most > listChunk || most > 5_000 {
		t.Fatalf("APIKeys held the lock %d times for up to %d keys, want %d times", holds, most, want)
	}

	sees := func(k domain.APIKey) bool { return k.OwnerID == "user-00000003" || slices.Contains(k.Tenants, "t1") }
	var want []string
	for _, k := range all {
		if sees(k) {
			want = append(want, k.ID)
		}
	}
	for _, limit := range []int{0, 17, 1000} {
		holds, most = 0, 0
		var got []string
		q := KeyListQuery{Sees: sees, Limit: limit}
		for pages := 0; ; pages++ {
			keys, next := m.ListAPIKeys(q)
			for _, k := range keys {
				if k.SecretHash != "" {
					t.Fatal("a listed key carries its secret's hash")
				}
				got = append(got, k.ID)
			}
			if next == "" {
				break
			}
			if limit == 0 || len(keys) != limit || next != keys[len(keys)-1].ID || pages > n {
				t.Fatalf("limit %d: a page of %d, next %q", limit, len(keys), next)
			}
			q.After = next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("limit %d: %d keys, want %d", limit, len(got), len(want))
		}
		if most > listChunk || most > 5_000 {
			t.Fatalf("limit %d: a hold of the lock looked at %d keys", limit, most)
		}
	}
	m.listHeld = nil
}

// TestSCIMListsHoldTheLockAChunkAtATime: a connection's users and groups
// (SCIM GET /Users and /Groups, with or without a filter on userName) are
// walked listChunk at a time — a connection provisioning a million users
// held the lock across them all — and answer what they did: the live
// links by user ID, the live groups by ID, of that connection only; and so
// after a snapshot is restored (the walk's lists rebuilt).
func TestSCIMListsHoldTheLockAChunkAtATime(t *testing.T) {
	const n = 9_000
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	m := NewModel()
	seq := uint64(0)
	apply := func(agg string, e domain.Event) {
		seq++
		m.Apply(seq, events.Envelope{AggregateID: agg, Type: e.EventType(), OccurredAt: at}, e)
	}
	for i := range n {
		conn := "scim-1"
		if i%10 == 9 {
			conn = "scim-2"
		}
		user := fmt.Sprintf("user-%06d", (i*7919)%n)
		apply(domain.SCIMLinkKey(conn, user), domain.SCIMUserLinked{ConnectionID: conn, UserID: user, Method: domain.SCIMLinkCreated,
			Profile: domain.SCIMProfile{UserName: "u" + user}, LinkedAt: at})
		if i%3 == 0 {
			apply(domain.SCIMLinkKey(conn, user), domain.SCIMUserUnlinked{ConnectionID: conn, UserID: user})
		}
		if i%2 == 0 {
			g := fmt.Sprintf("grp-%06d", (i*7919)%n)
			apply(g, domain.SCIMGroupCreated{GroupID: g, ConnectionID: conn, DisplayName: g, CreatedAt: at})
			if i%4 == 0 {
				apply(g, domain.SCIMGroupDeleted{GroupID: g})
			}
		}
	}
	check := func(m *Model) {
		t.Helper()
		var holds, most int
		m.listHeld = func(records int) { holds, most = holds+1, max(most, records) }
		defer func() { m.listHeld = nil }()
		links := m.SCIMLinks("scim-1")
		groups := m.SCIMGroups("scim-1")
		if most > listChunk || most > 5_000 || holds < 2 {
			t.Fatalf("%d holds of the lock, the longest over %d records", holds, most)
		}
		var wantLinks, wantGroups int
		for i := range n {
			if i%10 != 9 && i%3 != 0 {
				wantLinks++
			}
			if i%10 != 9 && i%2 == 0 && i%4 != 0 {
				wantGroups++
			}
		}
		if len(links) != wantLinks || !slices.IsSortedFunc(links, func(a, b domain.SCIMLink) int { return strings.Compare(a.UserID, b.UserID) }) {
			t.Fatalf("%d links (sorted: %v), want %d", len(links), slices.IsSortedFunc(links, func(a, b domain.SCIMLink) int { return strings.Compare(a.UserID, b.UserID) }), wantLinks)
		}
		for _, l := range links {
			if !l.Linked || l.ConnectionID != "scim-1" {
				t.Fatalf("listed: %+v", l)
			}
		}
		if len(groups) != wantGroups || !slices.IsSortedFunc(groups, func(a, b domain.SCIMGroup) int { return strings.Compare(a.ID, b.ID) }) {
			t.Fatalf("%d groups, want %d", len(groups), wantGroups)
		}
		for _, g := range groups {
			if !g.Exists() || g.ConnectionID != "scim-1" {
				t.Fatalf("listed: %+v", g)
			}
		}
		last := links[len(links)-1]
		if l, ok := m.SCIMLinkByUserName("scim-1", strings.ToUpper(last.Profile.UserName)); !ok || l.UserID != last.UserID {
			t.Fatalf("by userName: %+v %v", l, ok)
		}
		if _, ok := m.SCIMLinkByUserName("scim-2", last.Profile.UserName); ok {
			t.Fatal("by userName: found through another connection")
		}
	}
	check(m)
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
	check(restored)
}

// TestListUsersWhileEventsApply: lists read while users are created, renamed
// and given roles (what the race detector checks: a list reads the records'
// strings past its holds of the lock) answer pages in order, each user of
// those that exist throughout once.
func TestListUsersWhileEventsApply(t *testing.T) {
	const n = 10_000
	m, apply := listModel(t, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		now := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
		for i := range 2_000 {
			id := fmt.Sprintf("user-new-%06d", i)
			apply(domain.AggregateUser, id, domain.UserCreated{UserID: id, Username: fmt.Sprintf("new%06d", i), Email: "n@example.com",
				Roles: []domain.GlobalRole{}, Tenants: []domain.TenantRole{{Tenant: "ops", Role: domain.RoleViewer}}, CreatedAt: now})
			old := fmt.Sprintf("user-%08d", i*3%n)
			apply(domain.AggregateUser, old, domain.UserRoleGranted{UserID: old, Tenant: fmt.Sprintf("x%d", i), Role: domain.RoleViewer})
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		seen := map[string]bool{}
		var last string
		q := UserListQuery{Everyone: true, Limit: 500}
		for {
			users, next := m.ListUsers(q)
			for _, u := range users {
				k := UserKey(u.Username, u.ID)
				if k <= last || seen[u.ID] {
					t.Fatalf("%q after %q, or twice", k, last)
				}
				seen[u.ID], last = true, k
			}
			if next == "" {
				break
			}
			q.After = next
		}
		for i := range n {
			if id := fmt.Sprintf("user-%08d", i); !seen[id] {
				t.Fatalf("%s, which existed throughout, not listed", id)
			}
		}
	}
}

// Without the access history (NoHistory) the keys' lists have no order to
// walk in parts: walkKeys walks every key in one hold of the lock, and
// misses none.
func TestListAPIKeysWithoutHistory(t *testing.T) {
	m, apply := listModel(t, 1)
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		id := fmt.Sprintf("key-%08d", i)
		apply(domain.AggregateAPIKey, id, domain.APIKeyCreated{KeyID: id, Name: "k", OwnerID: "user-00000000", Tenants: []string{"t0"},
			Permissions: []domain.Permission{domain.FindingsRead}, SecretHash: fmt.Sprintf("%064x", i+1), CreatedAt: now})
	}
	var holds int
	m.listHeld = func(int) { holds++ }
	if all := m.APIKeys(); len(all) != 100 || holds != 1 {
		t.Fatalf("APIKeys without the history: %d keys in %d holds, want 100 in 1", len(all), holds)
	}
	page, _ := m.ListAPIKeys(KeyListQuery{Limit: 10})
	if len(page) != 10 || page[0].ID != "key-00000000" {
		t.Fatalf("a page without the history: %d keys, first %v", len(page), page)
	}
}
