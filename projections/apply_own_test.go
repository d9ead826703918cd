package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/projections"
)

// TestWaitForOwn: an event the process appended is applied from its own
// bytes once every event before it is - WaitForOwn returns without its
// delivery - and not before; its delivery later changes nothing (no second
// journal entry, no second version), and events after it apply as usual.
func TestWaitForOwn(t *testing.T) {
	src := &chanSource{recs: make(chan events.Record), fail: make(chan error)}
	m := projections.NewModel()
	r := projections.NewRunner(src, m, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	encode := func(e domain.Event, id string, version uint64) []byte {
		b, err := events.Encode("evt-"+id, domain.AggregateUser, "user-1", version, at, events.Meta{Actor: events.System}, e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	created := encode(domain.UserCreated{UserID: "user-1", Username: "alice", CreatedAt: at}, "1", 1)
	granted := encode(domain.UserRoleGranted{UserID: "user-1", Tenant: "prod", Role: domain.RoleEditor}, "2", 2)
	revoked := encode(domain.UserRoleRevoked{UserID: "user-1", Tenant: "prod"}, "3", 3)
	again := encode(domain.UserRoleGranted{UserID: "user-1", Tenant: "staging", Role: domain.RoleViewer}, "4", 4)
	journal := func() int {
		t.Helper()
		hits, _, err := m.AuditEvents(projections.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		return len(hits)
	}
	within := func(d time.Duration) context.Context {
		c, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return c
	}

	src.recs <- events.Record{StreamSeq: 1, Data: created}
	waitFor(t, r, 1)

	// Everything before it applied: applied at once, with no delivery.
	if err := r.WaitForOwn(within(time.Second), 2, granted); err != nil {
		t.Fatalf("WaitForOwn(2): %v", err)
	}
	if u, _, ok := m.User("user-1"); !ok || u.Tenants["prod"] != domain.RoleEditor || journal() != 2 {
		t.Fatalf("after WaitForOwn(2): %+v %v, %d journal entries", u, ok, journal())
	}

	// Event 3 not applied yet: 4 waits for it, then is applied from its bytes
	// (3 is delivered, 4 is not).
	own := make(chan error, 1)
	go func() { own <- r.WaitForOwn(within(10*time.Second), 4, again) }()
	select {
	case err := <-own:
		t.Fatalf("WaitForOwn(4) returned (%v) before 3 was applied", err)
	case <-time.After(50 * time.Millisecond):
	}
	if r.Applied() != 2 {
		t.Fatalf("applied %d before 3 came", r.Applied())
	}
	src.recs <- events.Record{StreamSeq: 2, Data: granted, Pending: 1} // already applied: ignored
	src.recs <- events.Record{StreamSeq: 3, Data: revoked}
	if err := <-own; err != nil {
		t.Fatalf("WaitForOwn(4): %v", err)
	}
	u, v4, _ := m.User("user-1")
	if _, has := u.Tenants["prod"]; has || u.Tenants["staging"] != domain.RoleViewer || journal() != 4 {
		t.Fatalf("after 3 delivered and 4 applied from its bytes: %+v, %d journal entries", u, journal())
	}

	// 4's delivery changes nothing.
	src.recs <- events.Record{StreamSeq: 4, Data: again}
	five := encode(domain.UserRoleRevoked{UserID: "user-1", Tenant: "staging"}, "5", 5)
	src.recs <- events.Record{StreamSeq: 5, Data: five}
	waitFor(t, r, 5)
	if u, v5, _ := m.User("user-1"); len(u.Tenants) != 0 || v5 <= v4 || journal() != 5 || m.Skipped() != 0 {
		t.Fatalf("after 4 delivered and 5: %+v at %d, %d journal entries, %d skipped", u, v5, journal(), m.Skipped())
	}

	// Bytes that do not decode: it waits for the delivery.
	bad := make(chan error, 1)
	go func() { bad <- r.WaitForOwn(within(10*time.Second), 6, []byte("{not json")) }()
	src.recs <- events.Record{StreamSeq: 6, Data: encode(domain.UserRoleGranted{UserID: "user-1", Tenant: "prod", Role: domain.RoleViewer}, "6", 6)}
	if err := <-bad; err != nil || journal() != 6 {
		t.Fatalf("WaitForOwn(6) with junk: %v, %d journal entries", err, journal())
	}
}
