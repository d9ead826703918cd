package http

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/http/invisible"
	"github.com/infracast/auth/projections"
)

// TestRedactData: no secret of an event's data reaches an answer, at any
// depth; everything else is kept, numbers exactly.
func TestRedactData(t *testing.T) {
	in := `{"user_id":"user-1","password_hash_sealed":"aesgcm1:abc","refresh_token_hash":"9f86d0","secret_hash":"e3b0",
		"nested":{"client_secret_sealed":"aesgcm1:x","list":[{"secret_sealed":"s","keep":1},{"Token_Hash":"t"}]},
		"big":12345678901234567890,"password":"plain","client_secret":"cs","token_id":"tok-1","tenants":["a","b"],"empty":null,
		"hashes":["c0de1","c0de2"],"Code_Hashes":["c0de3"],"hash":{"deep":"c0de4"}}`
	out, got := redactedAs(t, in, auditScope{all: true})
	want := map[string]any{
		"user_id": "user-1", "password_hash_sealed": "[sealed]", "refresh_token_hash": "[redacted]", "secret_hash": "[redacted]",
		"nested": map[string]any{"client_secret_sealed": "[sealed]", "list": []any{
			map[string]any{"secret_sealed": "[sealed]", "keep": 1.0}, map[string]any{"Token_Hash": "[redacted]"}}},
		"big": 12345678901234567890.0, "password": "[redacted]", "client_secret": "[redacted]", "token_id": "tok-1",
		"tenants": []any{"a", "b"}, "empty": nil,
		"hashes": []any{"[redacted]", "[redacted]"}, "Code_Hashes": []any{"[redacted]"}, "hash": "[redacted]",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("redacted:\n%s", out)
	}
	for _, secret := range []string{"aesgcm1", "9f86d0", "e3b0", "plain", `"cs"`, "c0de"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("%s survived: %s", secret, out)
		}
	}
	if !strings.Contains(string(out), "12345678901234567890") {
		t.Errorf("a big number lost precision: %s", out)
	}
	for _, raw := range []string{"", "  "} {
		if out, err := redactData(json.RawMessage(raw), auditScope{all: true}); err != nil || string(out) != "{}" {
			t.Errorf("redactData(%q) = %s, %v", raw, out, err)
		}
	}
	if _, err := redactData(json.RawMessage(`{"a":`), auditScope{all: true}); err == nil {
		t.Error("malformed data redacted without an error")
	}
}

// redactedAs is redactData of in for a reader of scope sc, as JSON and
// decoded.
func redactedAs(t *testing.T, in string, sc auditScope) (json.RawMessage, map[string]any) {
	t.Helper()
	out, err := redactData(json.RawMessage(in), sc)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	return out, got
}

// TestRedactDataScoped: a reader limited to some tenants reads, in an
// event's data, only what it says of those tenants (and "*"): a user's roles
// elsewhere, a key's or a connection's other tenants, group mappings to
// them are dropped; a reader of everything reads it all.
func TestRedactDataScoped(t *testing.T) {
	in := `{"user_id":"user-1","tenants":[{"id":"ta","role":"editor"},{"id":"tb","role":"viewer"}],
		"apikey":{"tenants":["ta","tb","*"]},"group_mappings":[{"group":"g1","tenant":"ta","role":"admin"},{"group":"g2","tenant":"tb","role":"viewer"}],
		"role_mappings":[{"group":"g3","tenant":"tb","role":"editor"}],"allowed_tenants":["azure-tenant-guid"],"tenant":"ta"}`
	out, got := redactedAs(t, in, auditScope{tenants: map[string]bool{"ta": true}})
	want := map[string]any{
		"user_id": "user-1", "tenants": []any{map[string]any{"id": "ta", "role": "editor"}},
		"apikey":         map[string]any{"tenants": []any{"ta", "*"}},
		"group_mappings": []any{map[string]any{"group": "g1", "tenant": "ta", "role": "admin"}},
		"role_mappings":  []any{}, "allowed_tenants": []any{"azure-tenant-guid"}, "tenant": "ta",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("scoped:\n%s", out)
	}
	if strings.Contains(string(out), "tb") {
		t.Fatalf("tb survived: %s", out)
	}
	all, err := redactData(json.RawMessage(in), auditScope{all: true})
	if err != nil || !strings.Contains(string(all), `"tb"`) {
		t.Fatalf("a reader of everything: %s %v", all, err)
	}
}

func TestAuditCursor(t *testing.T) {
	stored := []byte(`{"id":"evt-1"}`)
	for _, desc := range []bool{false, true} {
		for _, data := range [][]byte{stored, nil} {
			cur := auditCursor(desc, 1042, data)
			seq, mark, hasMark, err := parseAuditCursor(cur, desc)
			if err != nil || seq != 1042 || hasMark != (data != nil) || (data != nil && mark != auditMark(data)) {
				t.Fatalf("round trip of %q: %d %08x %v, %v", cur, seq, mark, hasMark, err)
			}
			if _, _, _, err := parseAuditCursor(cur, !desc); err == nil || !strings.Contains(err.Error(), "order=") {
				t.Fatalf("%q with the other order: %v", cur, err)
			}
		}
	}
	if cur := auditCursor(false, 1042, stored); !regexp.MustCompile(`^a1042-[0-9a-f]{8}$`).MatchString(cur) {
		t.Fatalf("cursor %q", cur)
	}
	if auditMark(stored) == auditMark([]byte(`{"id":"evt-2"}`)) {
		t.Fatal("two events, one mark")
	}
	for _, bad := range []string{"", "a", "d", "x12", "a0", "a-1", "a+1", "a1.5", "A12", "a18446744073709551616", "a 1", "aa1",
		"a12-", "a12-1234567", "a12-123456789", "a12-ABCDEF01", "a12-0x123456", "a12-1234567g", "a-12345678", "a0-12345678",
		"a12-12345678-", "a12--1234567", "a12-+1234567", "a12 -12345678"} {
		if _, _, _, err := parseAuditCursor(bad, false); err == nil {
			t.Errorf("cursor %q accepted", bad)
		}
	}
}

// FuzzAuditCursor: whatever a client sends, parsing it either refuses it or
// reads a position (> 0) and mark that write back to a cursor read the same.
func FuzzAuditCursor(f *testing.F) {
	for _, s := range []string{"a1042", "d7", "a1042-9f3c01ab", "d1-00000000", "a18446744073709551615-ffffffff", "a12-", "a-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cur string) {
		for _, desc := range []bool{false, true} {
			seq, mark, hasMark, err := parseAuditCursor(cur, desc)
			if err != nil {
				continue
			}
			if seq == 0 || (!hasMark && mark != 0) {
				t.Fatalf("%q: %d %08x %v", cur, seq, mark, hasMark)
			}
			again := formatAuditCursor(desc, seq, mark, hasMark)
			s2, m2, h2, err := parseAuditCursor(again, desc)
			if err != nil || s2 != seq || m2 != mark || h2 != hasMark {
				t.Fatalf("%q -> %q -> %d %08x %v %v", cur, again, s2, m2, h2, err)
			}
		}
	})
}

func TestEventTypeFilter(t *testing.T) {
	for _, ok := range []string{"user.created", "apikey.", "user.login_failed", "sso.", "signingkey.retired", "user"} {
		if !validEventTypeFilter(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", ".", ".user", "user..created", "User.created", "user.*", "user created", "user/created", strings.Repeat("a", 65)} {
		if validEventTypeFilter(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestAuditRenderConfirmsEveryFilter: an event the journal pointed at is
// confirmed on its body against every filter the body tells — type (exact,
// prefix), login result, actor, subject, time — so that a wrong entry of a
// damaged journal leaves it out (errJournalMismatch for the filters the
// journal keeps exactly) rather than answer it (outside check 18r: a
// session.refreshed answered to type=session.started).
func TestAuditRenderConfirmsEveryFilter(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	body := func(typ, actor, subject string) []byte {
		b, err := json.Marshal(events.Envelope{ID: "evt-1", Type: typ, Version: 1, Aggregate: "session", AggregateID: subject,
			OccurredAt: at, Actor: events.Actor{Type: "user", ID: actor}, Data: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const alice, bob, s1, s2 = "user-01KBZ6P4Y5Q3M8N2R7T9V0W1XA", "user-01KBZ6P4Y5Q3M8N2R7T9V0W1XB", "sess-1", "sess-2"
	cases := []struct {
		name string
		f    auditFilter
		data []byte
		want string // "ok", "skip" or "mismatch"
	}{
		{"exact type", auditFilter{q: projections.AuditQuery{Type: "session.started"}}, body("session.started", alice, s1), "ok"},
		{"another type", auditFilter{q: projections.AuditQuery{Type: "session.started"}}, body("session.refreshed", alice, s1), "mismatch"},
		{"a longer type", auditFilter{q: projections.AuditQuery{Type: "session.started"}}, body("session.started_x", alice, s1), "mismatch"},
		{"prefix", auditFilter{q: projections.AuditQuery{Type: "apikey."}}, body("apikey.revoked", alice, s1), "ok"},
		{"outside the prefix", auditFilter{q: projections.AuditQuery{Type: "apikey."}}, body("session.started", alice, s1), "mismatch"},
		{"succeeded", auditFilter{q: projections.AuditQuery{Result: "succeeded"}}, body(domain.TypeUserLoginSucceeded, alice, s1), "ok"},
		{"not a success", auditFilter{q: projections.AuditQuery{Result: "succeeded"}}, body(domain.TypeUserLoginFailed, alice, s1), "mismatch"},
		{"failed: mfa", auditFilter{q: projections.AuditQuery{Result: "failed"}}, body(domain.TypeMFAFailed, alice, s1), "ok"},
		{"not a failure", auditFilter{q: projections.AuditQuery{Result: "failed"}}, body("session.started", alice, s1), "mismatch"},
		{"actor", auditFilter{q: projections.AuditQuery{Actor: alice}}, body("session.started", alice, s1), "ok"},
		{"another actor", auditFilter{q: projections.AuditQuery{Actor: alice}}, body("session.started", bob, s1), "mismatch"},
		{"subject", auditFilter{q: projections.AuditQuery{Subject: s1}, subject: s1}, body("session.started", alice, s1), "ok"},
		{"another subject of the same hash", auditFilter{q: projections.AuditQuery{Subject: s1}, subject: s1}, body("session.started", alice, s2), "skip"},
		{"since", auditFilter{since: at}, body("session.started", alice, s1), "ok"},
		{"before since", auditFilter{since: at.Add(time.Nanosecond)}, body("session.started", alice, s1), "skip"},
		{"at until", auditFilter{until: at}, body("session.started", alice, s1), "skip"},
	}
	for _, c := range cases {
		ev, ok, err := c.f.render(projections.AuditHit{Seq: 7}, c.data, auditScope{all: true})
		got := "ok"
		switch {
		case errors.Is(err, errJournalMismatch):
			got = "mismatch"
		case err != nil:
			t.Fatalf("%s: %v", c.name, err)
		case !ok:
			got = "skip"
		case ev.Sequence != 7:
			t.Errorf("%s: sequence %d", c.name, ev.Sequence)
		}
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// TestAuditScope: who reads which tenants' history.
func TestAuditScope(t *testing.T) {
	admin := domain.User{ID: "user-root", Roles: []domain.GlobalRole{domain.GlobalAdmin}, Active: true}
	alice := domain.User{ID: "user-alice", Active: true, Tenants: map[string]domain.Role{
		"a": domain.RoleAdmin, "b": domain.RoleViewer, "c": domain.RoleAdmin}}
	key := func(owner domain.User, perms domain.PermissionSet, tenants ...string) *Caller {
		return &Caller{User: owner, Key: &domain.APIKey{ID: "key-1", OwnerID: owner.ID, Tenants: tenants, Permissions: perms}}
	}
	audit, read := domain.SetOf(domain.AuditRead), domain.SetOf(domain.NodesRead, domain.FindingsRead)
	tests := []struct {
		name           string
		cl             *Caller
		all, anyTenant bool
		tenants        []string
	}{
		{"platform admin", &Caller{User: admin}, true, false, nil},
		{"platform admin, token scoped to t", &Caller{User: admin, Tenant: "t"}, false, false, []string{"t"}},
		{"tenant admin of a and c", &Caller{User: alice}, false, false, []string{"a", "c"}},
		{"token scoped to a", &Caller{User: alice, Tenant: "a"}, false, false, []string{"a"}},
		{"token scoped to b (viewer)", &Caller{User: alice, Tenant: "b"}, false, false, []string{}},
		{"key with audit:read in a and b", key(alice, audit, "a", "b"), false, false, []string{"a"}},
		{"key without audit:read", key(alice, read, "a", "c"), false, false, []string{}},
		{"key with admin:* in c", key(alice, domain.SetOf(domain.AdminAll), "c"), false, false, []string{"c"}},
		{"platform-wide key of a platform admin", key(admin, audit, "*"), false, true, []string{}},
		{"platform-wide key of a platform admin, no audit:read", key(admin, read, "*"), false, false, []string{}},
		{"platform-wide key of a tenant admin", key(alice, audit, "*"), false, false, []string{"a", "c"}},
		{"viewer", &Caller{User: domain.User{ID: "user-v", Tenants: map[string]domain.Role{"a": domain.RoleViewer}}}, false, false, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := tc.cl.auditScope()
			got := sc.list()
			if sc.all != tc.all || sc.anyTenant != tc.anyTenant || (!tc.all && !tc.anyTenant && !reflect.DeepEqual(got, tc.tenants)) {
				t.Fatalf("scope all=%v any=%v tenants=%v; want all=%v any=%v tenants=%v", sc.all, sc.anyTenant, got, tc.all, tc.anyTenant, tc.tenants)
			}
			if want := !tc.all && !tc.anyTenant && len(tc.tenants) == 0; sc.none() != want {
				t.Fatalf("none() = %v", sc.none())
			}
			if sc.covers("*") != (tc.all || tc.anyTenant) {
				t.Fatalf("covers(*) = %v", sc.covers("*"))
			}
		})
	}
}

// TestCredCheckDecide: not yet issued first, then the earliest blocker at or
// before the moment; a blocker takes effect at its own instant.
func TestCredCheckDecide(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	mk := func() credCheck {
		ck := credCheck{issued: t0}
		ck.block(reasonExpired, t0.Add(time.Hour), sinceJSON{})
		ck.block(reasonRevoked, t0.Add(20*time.Minute), sinceJSON{Sequence: 7, Type: "session.revoked"})
		ck.block(reasonUserDeactivated, t0.Add(30*time.Minute), sinceJSON{Sequence: 9})
		return ck
	}
	tests := []struct {
		at     time.Time
		usable bool
		reason string
		seq    uint64
	}{
		{t0.Add(-time.Nanosecond), false, reasonNotYetIssued, 0},
		{t0, true, "", 0},
		{t0.Add(20*time.Minute - time.Nanosecond), true, "", 0},
		{t0.Add(20 * time.Minute), false, reasonRevoked, 7},
		{t0.Add(2 * time.Hour), false, reasonRevoked, 7},
	}
	for _, tc := range tests {
		ck := mk()
		ck.decide(tc.at)
		if ck.out.Usable != tc.usable || ck.out.Reason != tc.reason || (ck.out.Since != nil) != (tc.reason != "" && tc.reason != reasonNotYetIssued) {
			t.Fatalf("at %s: usable %v reason %q since %+v", tc.at, ck.out.Usable, ck.out.Reason, ck.out.Since)
		}
		if ck.out.Since != nil && ck.out.Since.Sequence != tc.seq {
			t.Fatalf("at %s: since %+v", tc.at, ck.out.Since)
		}
	}
	ck := mk()
	ck.block(reasonExpired, t0.Add(5*time.Minute), sinceJSON{})
	ck.decide(t0.Add(time.Hour))
	if ck.out.Reason != reasonExpired || ck.out.Since.Time != "2026-03-01T10:05:00.000000000Z" || ck.out.Since.Sequence != 0 {
		t.Fatalf("an expiry: %+v %+v", ck.out, ck.out.Since)
	}
	ck = credCheck{}
	ck.notOurs("why")
	ck.decide(t0)
	if ck.out.Usable || ck.out.Reason != reasonNotOurs || len(ck.out.Notes) != 1 {
		t.Fatalf("not ours: %+v", ck.out)
	}
}

// TestCSVSafe: a cell, and each part of it after a ',' or ';', that starts
// like a formula gets an apostrophe (outside check 14d: only the first
// character was looked at, and a spreadsheet splitting on ';' ran the part
// after one).
func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{
		"alice": "alice", "": "", "=HYPERLINK(\"x\")": "'=HYPERLINK(\"x\")", "+1": "'+1", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)",
		"\tx": "'\tx", "user-01": "user-01", "a=b": "a=b",
		"Mozilla/5.0;=cmd|' /C calc'!A0;x": "Mozilla/5.0;'=cmd|' /C calc'!A0;x",
		"a,+1,-2;@x;\ty;\rz":               "a,'+1,'-2;'@x;'\ty;'\rz",
		"Mozilla/5.0 (X11; Linux x86_64)":  "Mozilla/5.0 (X11; Linux x86_64)",
		"=a;=b":                            "'=a;'=b",
		";=":                               ";'=",
		// A tab separates too, and spaces before a part are skipped (18v).
		"Mozilla/5.0\t=HYPERLINK(\"x\")": "Mozilla/5.0\t'=HYPERLINK(\"x\")",
		"Mozilla/5.0; =2+2":              "Mozilla/5.0; '=2+2",
		"  -1":                           "  '-1",
		"a b -c":                         "a b -c",
		"x,  @y":                         "x,  '@y",
	} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWantsCSV: the CSV exports (audit events, tenant access) are chosen
// by media type without letter case or parameters — an outside check saw
// "text/csv; charset=utf-8" (the type they answer) get JSON.
func TestWantsCSV(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                       false,
		"text/csv":                               true,
		"text/csv; charset=utf-8":                true,
		"text/csv;header=present":                true,
		"Text/CSV":                               true,
		" text/csv ; q=0.5":                      true,
		"text/csv, */*;q=0.1":                    true,
		"text/*":                                 true,
		"application/json":                       false,
		"*/*":                                    false,
		"application/json, text/csv;q=0.9":       false,
		"text/csv;q=0.9, application/json":       false,
		"text/csv, application/json":             false,
		"text/csv;q=0":                           false,
		"text/csv;q=abc":                         false,
		"text/csv, application/*;q=0.5":          true,
		"text/html, application/xhtml+xml, */*":  false,
		"text/csv;q=0.2, application/json;q=0.1": true,
	} {
		if got := wantsCSV(accept); got != want {
			t.Errorf("wantsCSV(%q) = %v, want %v", accept, got, want)
		}
	}
}

// TestCSVSafeJSON: in a JSON cell, a ',' or ';' inside a string is escaped
// (the document decodes to the same value) and no part after a separator
// starts like a formula.
func TestCSVSafeJSON(t *testing.T) {
	for _, in := range []string{
		`{"user_agent":"Mozilla/5.0;=cmd|' /C calc'!A0;x","n":[1,2]}`,
		`{"a":"x,=1","b":"\\\",@y","c":"no separators"}`,
		`{}`, `{"name":"=SUM(A1)"}`,
	} {
		out := csvSafeJSON([]byte(in))
		var want, got any
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("csvSafeJSON(%s) = %s: not JSON: %v", in, out, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("csvSafeJSON(%s) = %s: decodes to %v, want %v", in, out, got, want)
		}
		for _, part := range strings.FieldsFunc(out, func(r rune) bool { return r == ',' || r == ';' }) {
			if strings.ContainsAny(part[:1], csvFormulaStart) {
				t.Errorf("csvSafeJSON(%s) = %s: the part %q starts like a formula", in, out, part)
			}
		}
	}
}

// TestWriteCSV: every cell is quoted, so neither ',' nor ';' splits one,
// and encoding/csv reads the rows back.
func TestWriteCSV(t *testing.T) {
	rows := [][]string{{"a", `say "hi"`, "x;y", "p,q", "", "line\r\nbreak"}, {"1", "2", "3", "4", "5", "6"}}
	var buf bytes.Buffer
	writeCSV(&buf, rows)
	want := "\"a\",\"say \"\"hi\"\"\",\"x;y\",\"p,q\",\"\",\"line\r\nbreak\"\r\n\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"\r\n"
	if buf.String() != want {
		t.Fatalf("writeCSV: %q, want %q", buf.String(), want)
	}
	got, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	rows[0][5] = "line\nbreak" // encoding/csv reads a quoted CRLF as LF
	if !reflect.DeepEqual(got, rows) {
		t.Fatalf("read back %q, want %q", got, rows)
	}
}

// TestEventTimesHaveNineDigits: every time the audit log and the access
// history answer has nine digits of fractions, so that the CSV export
// sorted as text is in time order (an outside check, 20a: RFC3339Nano
// dropped trailing zeros — "…46.94770948Z", eight digits, and none for a
// whole second — and such rows sorted after later ones), and reads back as
// the same instant.
func TestEventTimesHaveNineDigits(t *testing.T) {
	base := time.Date(2026, 12, 7, 22, 56, 46, 0, time.UTC)
	moments := []time.Time{
		base,                               // a whole second
		base.Add(947709480),                // a trailing zero
		base.Add(947709481),                //
		base.Add(100 * time.Millisecond),   // eight trailing zeros
		base.Add(time.Second - 1),          // the last nanosecond of the second
		base.Add(time.Second),              // the next whole second
		base.In(time.FixedZone("x", 3600)), // rendered in UTC
	}
	var prev string
	for i, at := range moments[:len(moments)-1] {
		got := rfc3339Nano(at)
		if len(got) != len("2026-12-07T22:56:46.000000000Z") {
			t.Errorf("rfc3339Nano(%v) = %q: not nine digits of fractions", at, got)
		}
		if back, err := time.Parse(time.RFC3339Nano, got); err != nil || !back.Equal(at) {
			t.Errorf("rfc3339Nano(%v) = %q reads back as %v, %v", at, got, back, err)
		}
		if i > 0 && (at.After(moments[i-1]) != (got > prev)) {
			t.Errorf("%q and %q: text order is not time order", prev, got)
		}
		prev = got
	}
	if got := rfc3339Nano(moments[len(moments)-1]); got != "2026-12-07T22:56:46.000000000Z" {
		t.Errorf("a time in another zone: %q, want it in UTC", got)
	}
}

// TestCSVHidesBidiAndC1: a bidirectional override or isolate, or a C1
// control, from a User-Agent or a name is written as its \u escape in a
// CSV cell — as the console and the CLI show it — and a JSON cell still
// decodes to the same value (an outside check, 20a: they reached the
// export's cells raw). Other text, and invalid bytes, stay as they were.
func TestCSVHidesBidiAndC1(t *testing.T) {
	for in, want := range map[string]string{
		"Mozilla/5.0 \u202egnp.exe": `Mozilla/5.0 \u202egnp.exe`,
		"a\u2066b\u2069c\u202ad":    `a\u2066b\u2069c\u202ad`,
		"\u009b2J\u0085x":           `\u009b2J\u0085x`,
		"=\u202e1+1":                `'=\u202e1+1`,
		"Zoë 日本 \u200d":             "Zoë 日本 \u200d",
		"bad\xff\u202e":             "bad\xff\\u202e",
	} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
	doc := []byte("{\"user_agent\":\"x\u202ey;\u0085\",\"name\":\"\u2067=1\"}")
	out := csvSafeJSON(doc)
	if strings.ContainsFunc(out, csvHidden) {
		t.Fatalf("csvSafeJSON kept a hidden character: %q", out)
	}
	var want, got any
	if err := json.Unmarshal(doc, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("csvSafeJSON = %s: decodes to %v (%v), want %v", out, got, err, want)
	}
}

// TestCSVHidesWhatTheCLIHides: the CSV cells escape every character the
// CLI shows as an escape (invisible.Rune) — the direction marks U+200F and
// U+061C and the zero-width space came out raw while the CLI escaped them
// (re-check 20r2) — a character above U+FFFF as a UTF-16 surrogate pair,
// so that a JSON cell still decodes to the same value.
func TestCSVHidesWhatTheCLIHides(t *testing.T) {
	for in, want := range map[string]string{
		"a\u200fb\u061cc\u200bd":  `a\u200fb\u061cc\u200bd`,
		"x\u2028y\u2060z\u206f":   `x\u2028y\u2060z\u206f`,
		"\u00ad\ufeff\u007f":      `\u00ad\ufeff\u007f`,
		"tag\U000E0041":           `tag\udb40\udc41`,
		"Zoë \u200c\u200d 日本":     "Zoë \u200c\u200d 日本",
		"Mozilla/5.0\t=SUM(A1)\n": "Mozilla/5.0\t'=SUM(A1)\n",
	} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if csvHidden(r) != (r >= 0x20 && invisible.Rune(r)) {
			t.Fatalf("U+%04X: csvHidden %v, the CLI's set (less the C0 controls) %v", r, csvHidden(r), invisible.Rune(r))
		}
	}
	doc := []byte("{\"name\":\"\u200f=1\U000E0041\",\"ua\":\"\u061c\u200b\"}")
	out := csvSafeJSON(doc)
	if strings.ContainsFunc(out, csvHidden) {
		t.Fatalf("csvSafeJSON kept a hidden character: %q", out)
	}
	var want, got any
	if err := json.Unmarshal(doc, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("csvSafeJSON = %s: decodes to %v (%v), want %v", out, got, err, want)
	}
}
