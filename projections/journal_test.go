package projections

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// hitOf finds the journal entry of stream sequence seq.
func hitOf(t *testing.T, m *Model, seq uint64) AuditHit {
	t.Helper()
	hits, _, err := m.AuditEvents(AuditQuery{After: seq - 1, Limit: 1})
	if err != nil || len(hits) != 1 || hits[0].Seq != seq {
		t.Fatalf("no journal entry at %d: %+v", seq, hits)
	}
	return hits[0]
}

func concernText(h AuditHit) string {
	if h.AllTenantsConcerned {
		return "*"
	}
	return strings.Join(h.Tenants, ",")
}

// TestEventConcerns: the tenants each kind of event concerns, from the
// state before it.
func TestEventConcerns(t *testing.T) {
	tl := newTimeline()
	at := hour(0)
	u := func(id string) events.Actor { return userActor(id) }
	exp := hour(100)
	steps := []struct {
		id   string
		ev   domain.Event
		want string
	}{
		{"alice", domain.UserCreated{UserID: "alice", Username: "alice", Tenants: []domain.TenantRole{
			{Tenant: "staging", Role: domain.RoleViewer}, {Tenant: "prod", Role: domain.RoleEditor}}}, "prod,staging"},
		{"alice", domain.UsernameReserved{Username: "alice", UserID: "alice"}, ""},
		{"root", domain.UserCreated{UserID: "root", Username: "root", Roles: []domain.GlobalRole{domain.GlobalAdmin}}, ""},
		{"alice", domain.UserLoginSucceeded{UserID: "alice", SessionID: "sess-1", Method: "password"}, "prod,staging"},
		{"alice", domain.UserRoleGranted{UserID: "alice", Tenant: "dev", Role: domain.RoleAdmin}, "dev"},
		{"alice", domain.UserLoginFailed{UserID: "alice", Username: "alice", Reason: "invalid_credentials"}, "dev,prod,staging"},
		{"login-abc", domain.UserLoginFailed{Reason: "invalid_credentials"}, ""},
		{"alice", domain.UserRoleRevoked{UserID: "alice", Tenant: "staging"}, "staging"},
		{"alice", domain.UserPasswordChanged{UserID: "alice", PasswordHashSealed: "x"}, "dev,prod"},
		{"sess-1", domain.SessionStarted{SessionID: "sess-1", UserID: "alice", StartedAt: at, ExpiresAt: at.Add(time.Hour)}, "dev,prod"},
		{"sess-2", domain.SessionStarted{SessionID: "sess-2", UserID: "alice", Tenant: "prod", StartedAt: at, ExpiresAt: at.Add(time.Hour)}, "prod"},
		{"sess-1", domain.SessionRefreshed{SessionID: "sess-1", TokenID: "t1", At: at}, "dev,prod"},
		{"sess-2", domain.SessionRefreshed{SessionID: "sess-2", TokenID: "t2", At: at}, "prod"},
		{"sess-2", domain.SessionTokenRevoked{SessionID: "sess-2", TokenID: "t2", ExpiresAt: at}, "prod"},
		{"sess-1", domain.SessionRefreshReused{SessionID: "sess-1", RefreshTokenHash: "h"}, "dev,prod"},
		{"sess-1", domain.SessionRevoked{SessionID: "sess-1", Reason: "logout"}, "dev,prod"},
		{"sess-9", domain.SessionRevoked{SessionID: "sess-9", Reason: "logout"}, ""}, // no such session
		{"key-1", domain.APIKeyCreated{KeyID: "key-1", Name: "k", OwnerID: "alice", Tenants: []string{"qa", "prod"},
			Permissions: []domain.Permission{domain.NodesRead}, SecretHash: strings.Repeat("1", 64), ExpiresAt: &exp}, "prod,qa"},
		{"key-1", domain.APIKeyUsed{KeyID: "key-1", UsedAt: at}, "prod,qa"},
		{"key-1", domain.APIKeyRotated{KeyID: "key-1", SecretHash: strings.Repeat("2", 64), OwnerID: "alice"}, "prod,qa"},
		{"key-1", domain.APIKeyRevoked{KeyID: "key-1"}, "prod,qa"},
		{"key-2", domain.APIKeyCreated{KeyID: "key-2", Name: "k", OwnerID: "root", Tenants: []string{domain.AllTenants},
			Permissions: []domain.Permission{domain.NodesRead}, SecretHash: strings.Repeat("3", 64)}, "*"},
		{"key-2", domain.APIKeyUsed{KeyID: "key-2", UsedAt: at}, "*"},
		{"okta", domain.SSOProviderConfigured{Provider: "okta", Issuer: "https://idp"}, ""},
		{"ident-1", domain.SSOIdentityLinked{Provider: "okta", Subject: "s", UserID: "alice"}, "dev,prod"},
		{"assert-1", domain.SSOAssertionConsumed{Provider: "okta", AssertionID: "a"}, ""},
		{"okta", domain.SSOProviderDeleted{Provider: "okta"}, ""},
		{"sk-1", domain.SigningKeyAdded{KeyID: "sk-1", Algorithm: "HS256"}, ""},
		{"sk-1", domain.SigningKeyRetired{KeyID: "sk-1"}, ""},
		{"alice", domain.UserDeactivated{UserID: "alice"}, "dev,prod"},
		{"alice", domain.UserActivated{UserID: "alice"}, "dev,prod"},
		{"alice", domain.UserDeactivated{UserID: "alice"}, "dev,prod"},
		{"alice", domain.UserLoginFailed{UserID: "alice", Username: "alice", Reason: "inactive"}, "dev,prod"}, // still her tenants
		{"nobody", domain.UserDeactivated{UserID: "nobody"}, ""},
	}
	kinds := map[string]bool{}
	for _, s := range steps {
		seq := tl.add(at, u("root"), s.id, s.ev)
		h := hitOf(t, tl.m, seq)
		if got := concernText(h); got != s.want {
			t.Errorf("%d %s: concerns %q, want %q", seq, s.ev.EventType(), got, s.want)
		}
		if h.SubjectHash != SubjectHash(s.id) {
			t.Errorf("%d: subject hash %x", seq, h.SubjectHash)
		}
		kinds[s.ev.EventType()] = true
	}
	for _, typ := range domain.EventTypes() {
		if !kinds[typ] {
			// A new kind of event concerns no tenant until concerns() says
			// otherwise: say which here, and in docs/events.md.
			t.Logf("no concern checked for %s: it concerns none", typ)
		}
	}
}

// TestAuditResultFailedIncludesMFA: result=failed is every failed login, a
// wrong password (user.login_failed) and a wrong second factor (mfa.failed),
// as docs/audit.md says; succeeded is user.login_succeeded alone (outside
// check 15h).
func TestAuditResultFailedIncludesMFA(t *testing.T) {
	tl := newTimeline()
	anon := events.Actor{Type: "anonymous"}
	tl.add(hour(0), sysActor, "alice", domain.UserCreated{UserID: "alice", Username: "alice"})
	pw := tl.add(hour(1), anon, "alice", domain.UserLoginFailed{UserID: "alice", Username: "alice", Reason: "invalid_credentials"})
	tl.add(hour(2), anon, "alice", domain.UserLoginChallenged{UserID: "alice", Method: "password"})
	mfa := tl.add(hour(3), anon, "alice", domain.MFAFailed{UserID: "alice", Factor: domain.FactorTOTP, Reason: "invalid_code", At: hour(3)})
	ok := tl.add(hour(4), anon, "alice", domain.UserLoginSucceeded{UserID: "alice", SessionID: "sess-1", Method: "password+totp"})
	for _, c := range []struct {
		q    AuditQuery
		want []uint64
	}{
		{AuditQuery{Result: "failed"}, []uint64{pw, mfa}},
		{AuditQuery{Result: "failed", NewestFirst: true}, []uint64{mfa, pw}},
		{AuditQuery{Result: "failed", Type: "mfa."}, []uint64{mfa}},
		{AuditQuery{Result: "failed", Subject: "alice", Since: hour(2)}, []uint64{mfa}},
		{AuditQuery{Result: "succeeded"}, []uint64{ok}},
	} {
		var got []uint64
		for _, h := range pageAll(t, tl.m, c.q, nil) {
			got = append(got, h.Seq)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%+v: %v, want %v", c.q, got, c.want)
		}
	}
}

// ---------------------------------------------------------------- the filter oracle

// concernOracle computes the tenants each event concerns the slow way, from
// domain states folded in stream order.
func concernOracle(evs []stamped) map[uint64]string {
	users := map[string]domain.User{}
	sessions := map[string]domain.Session{}
	keys := map[string]domain.APIKey{}
	userTenants := func(id string) []string { return sortedKeys(users[id].Tenants) }
	out := map[uint64]string{}
	for _, s := range evs {
		id := s.env.AggregateID
		var ts []string
		switch e := s.ev.(type) {
		case domain.UserCreated:
			for _, tr := range e.Tenants {
				ts = append(ts, tr.Tenant)
			}
			users[id] = domain.EvolveUser(domain.User{}, e)
		case domain.UserRoleGranted:
			ts = []string{e.Tenant}
			if u, ok := users[id]; ok {
				users[id] = domain.EvolveUser(u, e)
			}
		case domain.UserRoleRevoked:
			ts = []string{e.Tenant}
			if u, ok := users[id]; ok {
				users[id] = domain.EvolveUser(u, e)
			}
		case domain.UserDeactivated, domain.UserActivated, domain.UserLoginSucceeded, domain.UserPasswordChanged:
			ts = userTenants(id)
		case domain.UserLoginFailed:
			if e.UserID != "" {
				ts = userTenants(e.UserID)
			}
		case domain.SessionStarted:
			ts = userTenants(e.UserID)
			if e.Tenant != "" {
				ts = []string{e.Tenant}
			}
			sessions[id] = domain.EvolveSession(domain.Session{}, e)
		case domain.SessionRevoked:
			if st, ok := sessions[id]; ok {
				ts = userTenants(st.UserID)
				if st.Tenant != "" {
					ts = []string{st.Tenant}
				}
			}
		case domain.APIKeyCreated:
			ts = e.Tenants
			keys[id] = domain.EvolveAPIKey(domain.APIKey{}, e)
		case domain.APIKeyRotated, domain.APIKeyRevoked, domain.APIKeyUsed:
			ts = keys[id].Tenants
		}
		slices.Sort(ts)
		if slices.Contains(ts, domain.AllTenants) {
			ts = []string{"*"}
		}
		out[s.seq] = strings.Join(ts, ",")
	}
	return out
}

// filterOracle is AuditEvents the slow way.
func filterOracle(evs []stamped, concerns map[uint64]string, q AuditQuery) []AuditHit {
	var out []AuditHit
	for _, s := range evs {
		c := concerns[s.seq]
		all := c == "*"
		var ts []string
		if c != "" && !all {
			ts = strings.Split(c, ",")
		}
		typ := s.ev.EventType()
		ok := true
		if q.Scope != nil {
			var in []string
			for _, t := range ts {
				if slices.Contains(q.Scope, t) {
					in = append(in, t)
				}
			}
			ok = ok && (len(in) > 0 || all && len(q.Scope) > 0)
			ts = in
		}
		ok = ok && (!q.AnyTenant || c != "")
		ok = ok && (q.Tenant == "" || all || slices.Contains(strings.Split(c, ","), q.Tenant))
		ok = ok && (q.Actor == "" || s.env.Actor.ID == q.Actor)
		ok = ok && (q.Subject == "" || s.env.AggregateID == q.Subject)
		switch {
		case q.Type == "":
		case strings.HasSuffix(q.Type, "."):
			ok = ok && strings.HasPrefix(typ, q.Type)
		default:
			ok = ok && typ == q.Type
		}
		switch q.Result {
		case "succeeded":
			ok = ok && typ == domain.TypeUserLoginSucceeded
		case "failed":
			ok = ok && (typ == domain.TypeUserLoginFailed || typ == domain.TypeMFAFailed)
		}
		ok = ok && (q.Since.IsZero() || !s.env.OccurredAt.Before(q.Since)) && (q.Until.IsZero() || s.env.OccurredAt.Before(q.Until))
		if ok {
			h := AuditHit{Seq: s.seq, Tenants: ts, AllTenantsConcerned: all, SubjectHash: SubjectHash(s.env.AggregateID)}
			if len(h.Tenants) == 0 {
				h.Tenants = nil
			}
			out = append(out, h)
		}
	}
	return out
}

func hitsText(hits []AuditHit) string {
	var b strings.Builder
	for _, h := range hits {
		fmt.Fprintf(&b, "%d [%s] %v %x\n", h.Seq, strings.Join(h.Tenants, ","), h.AllTenantsConcerned, h.SubjectHash)
	}
	return b.String()
}

// page reads every hit of q, page by page (limit), calling between(page)
// after each.
func pageAll(t testing.TB, m *Model, q AuditQuery, between func()) []AuditHit {
	t.Helper()
	var all []AuditHit
	for {
		hits, more, err := m.AuditEvents(q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, hits...)
		if !more {
			return all
		}
		q.After = hits[len(hits)-1].Seq
		if between != nil {
			between()
		}
	}
}

func randomQueries(rng *rand.Rand, tl *timeline) []AuditQuery {
	tenants := []string{"prod", "staging", "dev", "qa", "unseen"}
	types := []string{"", "", "user.", "apikey.", "session.", "user.created", "user.role_granted", "apikey.used", "signingkey.added", "nope", "user"}
	var qs []AuditQuery
	first, last := tl.evs[0].env.OccurredAt, tl.evs[len(tl.evs)-1].env.OccurredAt
	span := last.Sub(first)
	for range 60 {
		q := AuditQuery{Type: types[rng.IntN(len(types))], Limit: 1 + rng.IntN(40), NewestFirst: rng.IntN(2) == 0}
		switch rng.IntN(5) {
		case 0:
			q.Scope = []string{tenants[rng.IntN(len(tenants))], tenants[rng.IntN(len(tenants))]}
		case 1:
			q.Scope = []string{}
		}
		if rng.IntN(3) == 0 {
			q.Tenant = tenants[rng.IntN(len(tenants))]
		}
		q.AnyTenant = rng.IntN(6) == 0
		s := tl.evs[rng.IntN(len(tl.evs))]
		if rng.IntN(4) == 0 {
			q.Actor = s.env.Actor.ID
		}
		if rng.IntN(4) == 0 {
			q.Subject = s.env.AggregateID
		}
		if rng.IntN(3) == 0 {
			q.Since = first.Add(time.Duration(rng.Int64N(int64(span))))
		}
		if rng.IntN(3) == 0 {
			q.Until = first.Add(time.Duration(rng.Int64N(int64(span))))
		}
		if rng.IntN(5) == 0 {
			q.Result = []string{"succeeded", "failed"}[rng.IntN(2)]
		}
		qs = append(qs, q)
	}
	return qs
}

// TestAuditEventsMatchTheOracle: random queries, both directions, page by
// page, give what filtering every event gives; and the tenants each event
// concerns are the rule's.
func TestAuditEventsMatchTheOracle(t *testing.T) {
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 61))
		tl := randomHistory(rng, 600)
		concerns := concernOracle(tl.evs)
		all := pageAll(t, tl.m, AuditQuery{Limit: 1000}, nil)
		if len(all) != len(tl.evs) {
			t.Fatalf("seed %d: %d entries for %d events", seed, len(all), len(tl.evs))
		}
		for _, h := range all {
			if got := concernText(h); got != concerns[h.Seq] {
				t.Fatalf("seed %d: event %d (%s) concerns %q, the rule says %q", seed, h.Seq, tl.evs[h.Seq-1].ev.EventType(), got, concerns[h.Seq])
			}
		}
		for i, q := range randomQueries(rng, tl) {
			want := filterOracle(tl.evs, concerns, q)
			if q.NewestFirst {
				slices.Reverse(want)
			}
			if got := pageAll(t, tl.m, q, nil); hitsText(got) != hitsText(want) {
				t.Fatalf("seed %d, query %d %+v:\n%s\nthe oracle:\n%s", seed, i, q, hitsText(got), hitsText(want))
			}
		}
	}
}

// TestAuditPagingUnderAppends: events appended between pages are neither
// skipped nor repeated: oldest-first reaches them, newest-first starts below
// its first page.
func TestAuditPagingUnderAppends(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	src := randomHistory(rng, 900)
	concerns := concernOracle(src.evs)
	for _, q := range []AuditQuery{{Limit: 13}, {Limit: 9, Type: "user."}, {Limit: 5, Tenant: "prod"}, {Limit: 11, Scope: []string{"qa", "dev"}}} {
		for _, newest := range []bool{false, true} {
			q.NewestFirst = newest
			m := NewModel()
			next := 0
			apply := func(n int) {
				for ; n > 0 && next < len(src.evs); n-- {
					s := src.evs[next]
					m.Apply(s.seq, s.env, s.ev)
					next++
				}
			}
			apply(400)
			seenAtStart := next
			got := pageAll(t, m, q, func() { apply(7) })
			var want []AuditHit
			if newest {
				want = filterOracle(src.evs[:seenAtStart], concerns, q)
				slices.Reverse(want)
			} else {
				want = filterOracle(src.evs[:next], concerns, q)
			}
			if hitsText(got) != hitsText(want) {
				t.Fatalf("%+v: paged under appends:\n%s\nwant:\n%s", q, hitsText(got), hitsText(want))
			}
		}
	}
}

// ---------------------------------------------------------------- snapshots

// answers is everything the journal and the access history answer, at
// every instant of evs.
func answers(t *testing.T, m *Model, evs []stamped) string {
	t.Helper()
	return answersAt(t, m, evs, 200)
}

// answersAt is answers at some n instants of the history (and its last).
func answersAt(t *testing.T, m *Model, evs []stamped, n int) string {
	t.Helper()
	var b strings.Builder
	seq, at, complete := m.HistoryStart()
	fmt.Fprintf(&b, "start %d %s %v\n", seq, at.Format(time.RFC3339Nano), complete)
	for _, h := range pageAll(t, m, AuditQuery{Limit: 1000}, nil) {
		e := evs[h.Seq-1] // sequences from 1, without gaps
		fmt.Fprintf(&b, "%d [%s] %v %x\n", h.Seq, strings.Join(h.Tenants, ","), h.AllTenantsConcerned, h.SubjectHash)
		if h.SubjectHash != SubjectHash(e.env.AggregateID) {
			t.Fatalf("entry %d: subject hash", h.Seq)
		}
	}
	ats := instants(evs)
	every := max(5, len(ats)/n) // some n instants of a long history
	for i, at := range ats {
		if i%every != 0 && i != len(ats)-1 {
			continue
		}
		for _, tenant := range []string{"prod", "staging", "dev", "qa"} {
			b.WriteString(mustTenant(t, m, tenant, "", at))
		}
		for _, u := range m.Users() {
			b.WriteString(mustUser(t, m, u.ID, at))
		}
		for _, k := range m.APIKeys() {
			b.WriteString(mustKey(t, m, k.ID, at))
		}
	}
	for _, u := range m.Users() {
		h, _, err := m.UserHistory(u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if h.Deactivated != nil {
			fmt.Fprintf(&b, "deactivated %+v\n", *h.Deactivated)
			h.Deactivated = nil
		}
		fmt.Fprintf(&b, "%+v\n", h)
	}
	for _, k := range m.APIKeys() {
		h, _, err := m.KeyHistory(k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if h.Revoked != nil {
			fmt.Fprintf(&b, "revoked %+v\n", *h.Revoked)
			h.Revoked = nil
		}
		fmt.Fprintf(&b, "%+v\n", h)
	}
	return b.String()
}

// TestHistorySnapshotRoundTrip: a snapshot taken anywhere in the history,
// restored and followed by the rest of the stream (some events delivered
// again), answers exactly as the full replay.
func TestHistorySnapshotRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 30))
	tl := randomHistory(rng, 400)
	// Times kept aside: out of the range of Unix nanoseconds.
	tl.add(time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC), sysActor, "sk-2", domain.SigningKeyAdded{KeyID: "sk-2"})
	tl.add(time.Time{}, events.Actor{}, "sk-3", domain.SigningKeyAdded{KeyID: "sk-3"})
	want := answers(t, tl.m, tl.evs)
	for _, cut := range []int{0, 1, 37, 150, 299, len(tl.evs) - 1, len(tl.evs)} {
		part := NewModel()
		applyAll(part, tl.evs[:cut])
		data, _, err := part.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		restored := NewModel()
		if _, err := restored.Restore(data); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if cut > 0 {
			if got, want := answers(t, restored, tl.evs[:cut]), answers(t, part, tl.evs[:cut]); got != want {
				t.Fatalf("cut %d: the restored snapshot answers differently", cut)
			}
		}
		applyAll(restored, tl.evs[max(cut-3, 0):])
		if got := answers(t, restored, tl.evs); got != want {
			t.Fatalf("cut %d: restored + replayed differs from the full replay:\n%s", cut, firstDiff(got, want))
		}
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\nhave %s\nwant %s", i, al[i], bl[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(al), len(bl))
}

// TestHistoryWritesDuringASnapshot: what Apply changes after Freeze (a
// user's newest change, a key's revocation, owner and secret, the tenants'
// lists) does not reach the snapshot being written.
func TestHistoryWritesDuringASnapshot(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 50))
	tl := randomHistory(rng, 3000) // over a chunk of everything
	cut := 2000
	m := NewModel()
	applyAll(m, tl.evs[:cut])
	f := m.Freeze()
	done := make(chan struct{})
	go func() { // applied while the snapshot is written
		defer close(done)
		applyAll(m, tl.evs[cut:])
	}()
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	<-done
	f.Release()
	restored := NewModel()
	if _, err := restored.RestoreFrom(&buf); err != nil {
		t.Fatal(err)
	}
	ref := NewModel()
	applyAll(ref, tl.evs[:cut])
	if got, want := answers(t, restored, tl.evs[:cut]), answers(t, ref, tl.evs[:cut]); got != want {
		t.Fatalf("the snapshot saw writes made after it was frozen:\n%s", firstDiff(got, want))
	}
}

// TestRestoreRefusesFormat4: a snapshot of format 4 (without the journal) is
// refused with ErrSnapshotFormat, so that the service replays the stream.
func TestRestoreRefusesFormat4(t *testing.T) {
	data, _, err := exampleTimeline().m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	old := bytes.Clone(data)
	old[len(snapshotMagic)] = 4
	if _, err := NewModel().Restore(old); !errors.Is(err, ErrSnapshotFormat) {
		t.Fatalf("a format 4 snapshot: %v", err)
	}
	// A snapshot cut inside the history's frames is refused, not half-read.
	for cut := len(data) - 1; cut > len(data)-200 && cut > 0; cut -= 13 {
		if _, err := NewModel().Restore(data[:cut]); err == nil {
			t.Fatalf("a snapshot cut at %d of %d restored", cut, len(data))
		}
	}
}

// ---------------------------------------------------------------- benchmarks

// benchHistory is a year of history: 10,000 users in 500 tenants, 100,000
// API keys, role grants and removals, deactivations, sessions, refreshes,
// revocations, logins and key uses — 1,000,000 events.
type benchHistory struct {
	m       *Model
	users   []string
	keys    []string
	tenants []string
	first   time.Time
	last    time.Time
	events  int
}

const (
	benchEvents  = 1_000_000
	benchUsers   = 10_000
	benchTenants = 500
	benchKeys    = 100_000
)

func buildBenchHistory(noHistory bool) *benchHistory {
	m := NewModel()
	m.NoHistory = noHistory
	bh := genBenchHistory(benchEvents, func(s stamped) { m.Apply(s.seq, s.env, s.ev) })
	bh.m = m
	return bh
}

// genBenchHistory makes n events of the year's mix, handing each to apply.
func genBenchHistory(n int, sink func(stamped)) *benchHistory {
	rng := rand.New(rand.NewPCG(1, 2))
	bh := &benchHistory{first: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := range benchTenants {
		bh.tenants = append(bh.tenants, fmt.Sprintf("tenant-%03d", i))
	}
	step := 365 * 24 * time.Hour / benchEvents
	at := bh.first
	var seq uint64
	apply := func(actor events.Actor, id string, ev domain.Event) {
		seq++
		at = at.Add(step)
		sink(stamped{seq: seq, env: events.Envelope{Type: ev.EventType(), AggregateID: id, OccurredAt: at, Actor: actor}, ev: ev})
	}
	roles := []domain.Role{domain.RoleViewer, domain.RoleEditor, domain.RoleAdmin}
	perms := []domain.Permission{domain.NodesRead, domain.FindingsRead, domain.FindingsWrite, domain.JobsRead, domain.ReportsRead}
	tenant := func() string { return bh.tenants[rng.IntN(benchTenants)] }
	var sessions []string
	for seq < uint64(n) {
		actor := sysActor
		if len(bh.users) > 0 {
			actor = userActor(bh.users[rng.IntN(len(bh.users))])
		}
		r := rng.IntN(1000)
		switch {
		case len(bh.users) < benchUsers && (r < 30 || len(bh.users) < 100):
			id := fmt.Sprintf("user-%05d", len(bh.users))
			trs := []domain.TenantRole{{Tenant: tenant(), Role: roles[rng.IntN(3)]}}
			if rng.IntN(2) == 0 {
				trs = append(trs, domain.TenantRole{Tenant: tenant(), Role: roles[rng.IntN(3)]})
			}
			var gr []domain.GlobalRole
			if rng.IntN(100) == 0 {
				gr = []domain.GlobalRole{domain.GlobalAdmin}
			}
			bh.users = append(bh.users, id)
			apply(actor, id, domain.UserCreated{UserID: id, Username: id, Roles: gr, Tenants: trs, CreatedAt: at})
		case len(bh.keys) < benchKeys && r < 150:
			id := fmt.Sprintf("key-%06d", len(bh.keys))
			ts := []string{tenant()}
			if rng.IntN(3) == 0 {
				ts = append(ts, tenant())
			}
			if rng.IntN(500) == 0 {
				ts = []string{domain.AllTenants}
			}
			bh.keys = append(bh.keys, id)
			apply(actor, id, domain.APIKeyCreated{KeyID: id, Name: id, OwnerID: bh.users[rng.IntN(len(bh.users))], Tenants: slices.Compact(ts),
				Permissions: perms[:1+rng.IntN(len(perms))], SecretHash: fmt.Sprintf("%016x%048x", rng.Uint64(), seq), CreatedAt: at})
		case r < 180:
			u := bh.users[rng.IntN(len(bh.users))]
			apply(actor, u, domain.UserRoleGranted{UserID: u, Tenant: tenant(), Role: roles[rng.IntN(3)]})
		case r < 195:
			u := bh.users[rng.IntN(len(bh.users))]
			apply(actor, u, domain.UserRoleRevoked{UserID: u, Tenant: tenant()})
		case r < 197:
			u := bh.users[rng.IntN(len(bh.users))]
			apply(actor, u, domain.UserDeactivated{UserID: u})
		case r < 400:
			u := bh.users[rng.IntN(len(bh.users))]
			sid := fmt.Sprintf("sess-%07d", seq)
			sessions = append(sessions, sid)
			apply(userActor(u), sid, domain.SessionStarted{SessionID: sid, UserID: u, RefreshTokenHash: fmt.Sprintf("%016x%048x", rng.Uint64(), seq), StartedAt: at, ExpiresAt: at.Add(7 * 24 * time.Hour)})
			apply(userActor(u), u, domain.UserLoginSucceeded{UserID: u, SessionID: sid, Method: "password"})
		case r < 700 && len(sessions) > 0:
			sid := sessions[len(sessions)-1-rng.IntN(min(len(sessions), 1000))]
			apply(actor, sid, domain.SessionRefreshed{SessionID: sid, TokenID: fmt.Sprintf("tok-%d", seq), At: at})
		case r < 760 && len(sessions) > 0:
			sid := sessions[len(sessions)-1-rng.IntN(min(len(sessions), 1000))]
			apply(actor, sid, domain.SessionRevoked{SessionID: sid, Reason: "logout"})
		case r < 800:
			u := bh.users[rng.IntN(len(bh.users))]
			apply(events.Actor{Type: "anonymous"}, u, domain.UserLoginFailed{UserID: u, Username: u, Reason: "invalid_credentials", At: at})
		case r < 990 && len(bh.keys) > 0:
			k := bh.keys[rng.IntN(len(bh.keys))]
			apply(events.Actor{Type: "apikey", ID: k}, k, domain.APIKeyUsed{KeyID: k, UsedAt: at})
		case r < 995 && len(bh.keys) > 0:
			k := bh.keys[rng.IntN(len(bh.keys))]
			apply(actor, k, domain.APIKeyRotated{KeyID: k, SecretHash: fmt.Sprintf("%016x%048x", rng.Uint64(), seq), RotatedAt: at, OwnerID: actor.ID})
		case len(bh.keys) > 0:
			k := bh.keys[rng.IntN(len(bh.keys))]
			apply(actor, k, domain.APIKeyRevoked{KeyID: k})
		}
	}
	bh.last, bh.events = at, int(seq)
	return bh
}

var (
	benchOnce  sync.Once
	benchBuilt *benchHistory
	benchBytes float64 // heap bytes per event the journal and access history take
	benchMore  float64 // how much more heap the model takes with them, in %
)

func sharedBenchHistory(b *testing.B) *benchHistory {
	benchOnce.Do(func() {
		heapNow := func() uint64 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return ms.HeapAlloc
		}
		h0 := heapNow()
		without := buildBenchHistory(true)
		h1 := heapNow()
		benchBuilt = buildBenchHistory(false)
		h2 := heapNow()
		runtime.KeepAlive(without)
		benchBytes = (float64(h2-h1) - float64(h1-h0)) / float64(benchBuilt.events)
		benchMore = 100 * (float64(h2-h1)/float64(h1-h0) - 1)
	})
	return benchBuilt
}

// BenchmarkAuditEvents: a page of 100 from a year of history, as the audit
// API asks for it.
func BenchmarkAuditEvents(b *testing.B) {
	bh := sharedBenchHistory(b)
	m := bh.m
	mid := bh.first.Add(bh.last.Sub(bh.first) / 2)
	for _, c := range []struct {
		name string
		q    func(i int) AuditQuery
	}{
		{"newest", func(int) AuditQuery { return AuditQuery{Limit: 100, NewestFirst: true} }},
		{"tenant", func(i int) AuditQuery {
			return AuditQuery{Limit: 100, NewestFirst: true, Tenant: bh.tenants[i%benchTenants]}
		}},
		{"tenant-admin-scope-type", func(i int) AuditQuery {
			return AuditQuery{Limit: 100, Scope: []string{bh.tenants[i%benchTenants], bh.tenants[(i+7)%benchTenants]}, Type: "user.", Since: mid}
		}},
		{"actor", func(i int) AuditQuery {
			return AuditQuery{Limit: 100, NewestFirst: true, Actor: bh.users[i%len(bh.users)]}
		}},
		{"subject-login-failed", func(i int) AuditQuery { // few hits: most of the journal is read
			return AuditQuery{Limit: 100, Subject: bh.users[i%len(bh.users)], Result: "failed"}
		}},
		{"full-scan-no-hit", func(i int) AuditQuery {
			return AuditQuery{Limit: 100, Subject: "nobody", Since: bh.first}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			hits := 0
			for i := 0; b.Loop(); i++ {
				h, _, err := m.AuditEvents(c.q(i))
				if err != nil {
					b.Fatal(err)
				}
				hits += len(h)
			}
			b.ReportMetric(float64(hits)/float64(b.N), "hits/op")
			b.ReportMetric(benchBytes, "history-B/event")
			b.ReportMetric(benchMore, "history-heap-%")
		})
	}
}

// BenchmarkTenantAccess: who held a permission in a tenant at a moment of
// the year; and what one user could do then.
func BenchmarkTenantAccess(b *testing.B) {
	bh := sharedBenchHistory(b)
	m := bh.m
	span := bh.last.Sub(bh.first)
	b.Run("tenant-permission", func(b *testing.B) {
		n := 0
		for i := 0; b.Loop(); i++ {
			at := bh.first.Add(span / 1000 * time.Duration(i%1000))
			accs, err := m.TenantAccess(bh.tenants[i%benchTenants], domain.FindingsRead, at)
			if err != nil {
				b.Fatal(err)
			}
			n += len(accs)
		}
		b.ReportMetric(float64(n)/float64(b.N), "principals/op")
	})
	b.Run("tenant-any", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := m.TenantAccess(bh.tenants[i%benchTenants], "", bh.last); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("user", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			at := bh.first.Add(span / 1000 * time.Duration(i%1000))
			if _, _, err := m.UserAccess(bh.users[i%len(bh.users)], at); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("key", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, _, err := m.KeyAccess(bh.keys[i%len(bh.keys)], bh.last); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHistorySnapshot: the year of history written to a snapshot and
// restored (entities: journal entries, users, keys).
func BenchmarkHistorySnapshot(b *testing.B) {
	bh := sharedBenchHistory(b)
	data, _, err := bh.m.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	var took time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := NewModel().Restore(data); err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
	}
	b.ReportMetric(float64(len(data))/float64(bh.events), "snapshot-B/event")
	b.ReportMetric(float64(bh.events+len(bh.users)+len(bh.keys))*float64(b.N)/took.Seconds()/1e6, "M-entities/s")
}

// BenchmarkApplyHistory: what the journal and the access history add to
// Apply, on 200,000 events of the year's mix (replay speed is a measured
// target).
func BenchmarkApplyHistory(b *testing.B) {
	var src []stamped
	genBenchHistory(200_000, func(s stamped) { src = append(src, s) })
	for _, c := range []struct {
		name      string
		off, file bool
	}{{"without", true, false}, {"with", false, false}, {"with-file", false, true}} {
		b.Run(c.name, func(b *testing.B) {
			var took time.Duration
			for b.Loop() {
				m := NewModel()
				m.NoHistory = c.off
				if c.file {
					m.JournalDir = b.TempDir()
				}
				start := time.Now()
				for _, s := range src {
					m.Apply(s.seq, s.env, s.ev)
				}
				took += time.Since(start)
			}
			b.ReportMetric(float64(took.Nanoseconds())/float64(b.N*len(src)), "ns/event")
		})
	}
}

// TestAuditScansWhileApplying: a scan runs without the lock while Apply
// appends (go test -race), and sees a consistent prefix of the journal.
func TestAuditScansWhileApplying(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	tl := randomHistory(rng, 4000)
	m := NewModel()
	applyAll(m, tl.evs[:500])
	done := make(chan struct{})
	go func() {
		defer close(done)
		applyAll(m, tl.evs[500:])
	}()
	for scans := 0; ; scans++ {
		hits, _, err := m.AuditEvents(AuditQuery{Limit: 1000, NewestFirst: true, Type: "user."})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(hits); i++ {
			if hits[i].Seq >= hits[i-1].Seq {
				t.Fatalf("scan %d: out of order: %d after %d", scans, hits[i].Seq, hits[i-1].Seq)
			}
		}
		if _, err := m.TenantAccess("prod", "", tl.evs[len(tl.evs)-1].env.OccurredAt); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
			if all := pageAll(t, m, AuditQuery{Limit: 1000}, nil); len(all) != len(tl.evs) {
				t.Fatalf("%d entries for %d events", len(all), len(tl.evs))
			}
			return
		default:
		}
	}
}
