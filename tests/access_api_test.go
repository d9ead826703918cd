package tests

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Access at a moment (issue 16), end to end: GET /api/v1/tenants/{t}/access
// (JSON and the CSV access review), /users/{id}/access, /api-keys/{id}/access.

// ts is a moment as the access history answers it: nine digits of fractions.
func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") }

// principalsOf lists a tenant access answer's principals by ID.
func principalsOf(t testing.TB, r Response) map[string]map[string]any {
	t.Helper()
	expectStatus(t, "tenant access", r, http.StatusOK)
	list, ok := r.JSON["principals"].([]any)
	if !ok {
		t.Fatalf("no principals: %s", r.Raw)
	}
	out := map[string]map[string]any{}
	for _, p := range list {
		pm := p.(map[string]any)
		out[pm["id"].(string)] = pm
	}
	return out
}

func tenantAccessAt(t testing.TB, in *Instance, token, tenant, perm string, at time.Time) Response {
	t.Helper()
	q := url.Values{"at": {ts(at)}}
	if perm != "" {
		q.Set("permission", perm)
	}
	return in.Do("GET", "/api/v1/tenants/"+tenant+"/access?"+q.Encode(), token, nil)
}

// grantsOf returns a principal's grants.
func grantsOf(p map[string]any) []map[string]any {
	var out []map[string]any
	for _, g := range p["grants"].([]any) {
		out = append(out, g.(map[string]any))
	}
	return out
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// grantedBy checks that a grant names the event ev as its why.
func grantedBy(t testing.TB, what string, g map[string]any, ev map[string]any) {
	t.Helper()
	by := g["granted_by"].(map[string]any)
	actor := by["actor"].(map[string]any)
	actorID, _ := actor["id"].(string)
	if uint64(by["sequence"].(float64)) != evSeq(ev) || by["time"] != ev["time"] || by["type"] != ev["type"] || actorID != evActor(ev) {
		t.Fatalf("%s: granted_by %v, want the event %v", what, by, ev)
	}
}

// principalTenants lists a /users|api-keys/{id}/access answer by tenant.
func principalTenants(t testing.TB, r Response) map[string]map[string]any {
	t.Helper()
	expectStatus(t, "principal access", r, http.StatusOK)
	out := map[string]map[string]any{}
	for _, x := range r.JSON["tenants"].([]any) {
		m := x.(map[string]any)
		out[m["id"].(string)] = m
	}
	return out
}

// TestAccessAtMoments: the answers at the instants of grants, replacements,
// revocations, a key's creation, its owner's demotion and its revocation,
// and a nanosecond before each: at the instant of a grant it holds, at the
// instant of a revocation it no longer does.
func TestAccessAtMoments(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	step := func() { in.Clock.Advance(time.Second) }
	adminID := me(t, in, admin).String("id")
	step()
	owenID := in.CreateUser(admin, "owen", "owen-password-1", map[string]string{"acme": "admin"})
	step()
	umaID := in.CreateUser(admin, "uma", "uma-password-12", nil)
	step()
	expectStatus(t, "uma viewer", in.Do("PUT", "/api/v1/users/"+umaID+"/tenants/acme", admin, map[string]string{"role": "viewer"}), 200)
	step()
	expectStatus(t, "uma editor", in.Do("PUT", "/api/v1/users/"+umaID+"/tenants/acme", admin, map[string]string{"role": "editor"}), 200)
	step()
	expectStatus(t, "uma out", in.Do("DELETE", "/api/v1/users/"+umaID+"/tenants/acme", admin, nil), 200)
	step()
	owen := in.Login("owen", "owen-password-1").String("token")
	k := in.Do("POST", "/api/v1/api-keys", owen, map[string]any{"name": "scanner", "tenants": []string{"acme"}, "permissions": []string{"findings:read", "nodes:write"}})
	expectStatus(t, "key", k, 201)
	keyID := k.String("id")
	step()
	expectStatus(t, "owen viewer", in.Do("PUT", "/api/v1/users/"+owenID+"/tenants/acme", admin, map[string]string{"role": "viewer"}), 200)
	step()
	expectStatus(t, "key revoked", in.Do("DELETE", "/api/v1/api-keys/"+keyID, admin, nil), 204)
	step()

	grants, _ := auditAll(t, in, admin, url.Values{"subject": {umaID}, "type": {"user.role_granted"}})
	if len(grants) != 2 {
		t.Fatalf("uma's grants: %v", grants)
	}
	g1, g2 := grants[0], grants[1]
	revoke := lastEventOf(t, in, admin, "user.role_revoked", umaID)
	created := lastEventOf(t, in, admin, "apikey.created", keyID)
	demote := lastEventOf(t, in, admin, "user.role_granted", owenID)
	keyRevoked := lastEventOf(t, in, admin, "apikey.revoked", keyID)
	owenCreated := lastEventOf(t, in, admin, "user.created", owenID)
	ns := time.Nanosecond

	// uma through her role.
	for _, tc := range []struct {
		what string
		at   time.Time
		perm string
		role string // "": not listed
		why  map[string]any
	}{
		{"before the grant", evTime(t, g1).Add(-ns), "findings:read", "", nil},
		{"at the grant", evTime(t, g1), "findings:read", "viewer", g1},
		{"viewer cannot write", evTime(t, g1), "findings:write", "", nil},
		{"just before the replacement", evTime(t, g2).Add(-ns), "findings:read", "viewer", g1},
		{"at the replacement", evTime(t, g2), "findings:read", "editor", g2},
		{"editor writes", evTime(t, g2), "findings:write", "editor", g2},
		{"any access", evTime(t, g2), "", "editor", g2},
		{"just before the revocation", evTime(t, revoke).Add(-ns), "findings:read", "editor", g2},
		{"at the revocation", evTime(t, revoke), "findings:read", "", nil},
		{"after the revocation", evTime(t, revoke).Add(500 * time.Millisecond), "", "", nil},
	} {
		ps := principalsOf(t, tenantAccessAt(t, in, admin, "acme", tc.perm, tc.at))
		p, listed := ps[umaID]
		if listed != (tc.role != "") {
			t.Fatalf("%s: uma listed %v: %v", tc.what, listed, ps)
		}
		if !listed {
			continue
		}
		gs := grantsOf(p)
		if p["type"] != "user" || p["name"] != "uma" || len(gs) != 1 || gs[0]["via"] != "role" || gs[0]["role"] != tc.role {
			t.Fatalf("%s: uma %v", tc.what, p)
		}
		grantedBy(t, tc.what, gs[0], tc.why)
		// And the same from uma's side.
		pt := principalTenants(t, in.Do("GET", "/api/v1/users/"+umaID+"/access?at="+url.QueryEscape(ts(tc.at)), admin, nil))
		if len(pt) != 1 || pt["acme"] == nil || grantsOf(pt["acme"])[0]["role"] != tc.role {
			t.Fatalf("%s: uma's own access %v", tc.what, pt)
		}
	}
	for _, at := range []time.Time{evTime(t, g1).Add(-ns), evTime(t, revoke)} {
		if pt := principalTenants(t, in.Do("GET", "/api/v1/users/"+umaID+"/access?at="+url.QueryEscape(ts(at)), admin, nil)); len(pt) != 0 {
			t.Fatalf("uma at %s: %v", ts(at), pt)
		}
	}

	// The key: from its creation, capped by its owner, until its revocation.
	for _, tc := range []struct {
		what   string
		at     time.Time
		perm   string
		listed bool
		role   string // the owner's
		why    map[string]any
	}{
		{"before its creation", evTime(t, created).Add(-ns), "findings:read", false, "", nil},
		{"at its creation", evTime(t, created), "findings:read", true, "admin", created},
		{"owner admin: nodes:write", evTime(t, created), "nodes:write", true, "admin", created},
		{"just before the owner's demotion", evTime(t, demote).Add(-ns), "nodes:write", true, "admin", created},
		{"owner viewer: no nodes:write", evTime(t, demote), "nodes:write", false, "", nil},
		{"owner viewer: findings:read", evTime(t, demote), "findings:read", true, "viewer", created},
		{"just before its revocation", evTime(t, keyRevoked).Add(-ns), "findings:read", true, "viewer", created},
		{"at its revocation", evTime(t, keyRevoked), "findings:read", false, "", nil},
	} {
		ps := principalsOf(t, tenantAccessAt(t, in, admin, "acme", tc.perm, tc.at))
		p, listed := ps[keyID]
		if listed != tc.listed {
			t.Fatalf("%s: key listed %v: %v", tc.what, listed, ps)
		}
		if !listed {
			continue
		}
		gs := grantsOf(p)
		if p["type"] != "apikey" || p["name"] != "scanner" || len(gs) != 1 || gs[0]["via"] != "api_key" || gs[0]["owner_id"] != owenID {
			t.Fatalf("%s: key %v", tc.what, p)
		}
		grantedBy(t, tc.what, gs[0], tc.why)
		og, _ := gs[0]["owner_grant"].(map[string]any)
		if og == nil || og["role"] != tc.role {
			t.Fatalf("%s: owner grant %v", tc.what, og)
		}
		if tc.role == "admin" {
			grantedBy(t, tc.what+" (owner)", og, owenCreated)
		} else {
			grantedBy(t, tc.what+" (owner)", og, demote)
			if perms := strs(p["permissions"]); !slices.Equal(perms, []string{"findings:read"}) {
				t.Fatalf("%s: a viewer's key holds %v", tc.what, perms)
			}
		}
		pt := principalTenants(t, in.Do("GET", "/api/v1/api-keys/"+keyID+"/access?at="+url.QueryEscape(ts(tc.at)), admin, nil))
		if len(pt) != 1 || pt["acme"] == nil {
			t.Fatalf("%s: the key's own access %v", tc.what, pt)
		}
	}
	if pt := principalTenants(t, in.Do("GET", "/api/v1/api-keys/"+keyID+"/access?at="+url.QueryEscape(ts(evTime(t, keyRevoked))), admin, nil)); len(pt) != 0 {
		t.Fatalf("a revoked key's access: %v", pt)
	}

	// Platform admins hold every permission everywhere.
	ps := principalsOf(t, tenantAccessAt(t, in, admin, "acme", "findings:write", evTime(t, g1)))
	if p := ps[adminID]; p == nil || grantsOf(p)[0]["via"] != "platform_admin" {
		t.Fatalf("the platform admin: %v", ps)
	}
	// A tenant nobody was given: only platform admins.
	for id, p := range principalsOf(t, in.Do("GET", "/api/v1/tenants/nobody-here/access", admin, nil)) {
		if grantsOf(p)[0]["via"] != "platform_admin" {
			t.Fatalf("tenant nobody-here lists %s: %v", id, p)
		}
	}
	// Without at: now.
	now := in.Do("GET", "/api/v1/tenants/acme/access", admin, nil)
	expectStatus(t, "now", now, 200)
	if now.String("at") != ts(in.Clock.Now()) || now.String("tenant") != "acme" {
		t.Fatalf("now: %s", now.Raw)
	}

	// Bad input.
	for path, field := range map[string]string{
		"/api/v1/tenants/acme/access?at=" + url.QueryEscape(ts(in.Clock.Now().Add(time.Second))): "at",
		"/api/v1/tenants/acme/access?at=last-tuesday":                                            "at",
		"/api/v1/tenants/acme/access?permission=findings:delete":                                 "permission",
		"/api/v1/tenants/acme/access?permision=findings:read":                                    "permision",
		"/api/v1/tenants/Not_A_Tenant!/access":                                                   "tenant",
		"/api/v1/users/" + umaID + "/access?at=tomorrow":                                         "at",
		"/api/v1/api-keys/" + keyID + "/access?when=now":                                         "when",
	} {
		expectError(t, path, in.Do("GET", path, admin, nil), 400, "VALIDATION_ERROR", field)
	}
	expectError(t, "unknown user", in.Do("GET", "/api/v1/users/user-01J00000000000000000000000/access", admin, nil), 404, "NOT_FOUND")
	expectError(t, "unknown key", in.Do("GET", "/api/v1/api-keys/key-01J00000000000000000000000/access", admin, nil), 404, "NOT_FOUND")

	// The access review: the same list as CSV.
	named := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "=HYPERLINK(\"x\")", "tenants": []string{"acme"}, "permissions": []string{"nodes:read"}})
	expectStatus(t, "a key named like a formula", named, 201)
	at := evTime(t, g2)
	r := doReq(t, in, request{Method: "GET", Path: "/api/v1/tenants/acme/access?at=" + url.QueryEscape(ts(at)), Token: admin, Header: map[string]string{"Accept": "text/csv"}})
	expectStatus(t, "csv", r, 200)
	if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Fatalf("csv: Content-Type %q", ct)
	}
	if cd := r.Header.Get("Content-Disposition"); !regexp.MustCompile(`^attachment; filename="access-acme-\d{8}T\d{6}(\.\d+)?Z\.csv"$`).MatchString(cd) {
		t.Fatalf("csv: Content-Disposition %q", cd)
	}
	rows, err := csv.NewReader(bytes.NewReader(r.Raw)).ReadAll()
	if err != nil {
		t.Fatalf("the export is not CSV: %v\n%s", err, r.Raw)
	}
	header := []string{"tenant", "at", "principal_type", "principal_id", "principal_name", "principal_permissions",
		"grant_tenant", "via", "role", "permissions", "granted_by_sequence", "granted_by_time", "granted_by_type",
		"granted_by_actor_type", "granted_by_actor_id", "owner_id", "owner_grant_tenant", "owner_via", "owner_role",
		"owner_permissions", "owner_granted_by_sequence", "owner_granted_by_time", "owner_granted_by_type",
		"owner_granted_by_actor_type", "owner_granted_by_actor_id"}
	if len(rows) < 2 || !slices.Equal(rows[0], header) {
		t.Fatalf("csv header %v", rows)
	}
	js := tenantAccessAt(t, in, admin, "acme", "", at)
	grantsInJSON := 0
	for _, p := range principalsOf(t, js) {
		grantsInJSON += len(grantsOf(p))
	}
	if len(rows)-1 != grantsInJSON {
		t.Fatalf("csv has %d rows, the JSON %d grants", len(rows)-1, grantsInJSON)
	}
	col := func(name string) int { return slices.Index(header, name) }
	found := false
	for _, row := range rows[1:] {
		if row[col("tenant")] != "acme" || row[col("at")] != ts(at) {
			t.Fatalf("csv row %v", row)
		}
		if row[col("principal_id")] == umaID {
			found = true
			if row[col("role")] != "editor" || row[col("granted_by_sequence")] != strconv.FormatUint(evSeq(g2), 10) ||
				row[col("granted_by_time")] != g2["time"] || row[col("principal_name")] != "uma" {
				t.Fatalf("uma's row %v", row)
			}
		}
	}
	if !found {
		t.Fatalf("uma is not in the export:\n%s", r.Raw)
	}
	// Now, the key named like a formula cannot run as one.
	r = doReq(t, in, request{Method: "GET", Path: "/api/v1/tenants/acme/access", Token: admin, Header: map[string]string{"Accept": "text/csv"}})
	rows, err = csv.NewReader(bytes.NewReader(r.Raw)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, row := range rows[1:] {
		names = append(names, row[col("principal_name")])
	}
	if !slices.Contains(names, `'=HYPERLINK("x")`) {
		t.Fatalf("the formula-like name is not defused: %v", names)
	}
}

// TestAccessIsolation: a tenant admin sees who had access to their tenant,
// never another tenant's principals; a user's or key's access only in the
// tenants whose history the caller may read.
func TestAccessIsolation(t *testing.T) {
	t.Parallel()
	f := newAuditFixture(t)
	in := f.in
	expectBody(t, "alice asks for beta", in.Do("GET", "/api/v1/tenants/beta/access", f.alice, nil), 403, bodyForbidden)
	ps := principalsOf(t, in.Do("GET", "/api/v1/tenants/acme/access", f.alice, nil))
	for _, id := range []string{f.bobID, f.daveID, f.betaKeyID} {
		if ps[id] != nil {
			t.Fatalf("alice sees %s in acme: %v", id, ps[id])
		}
	}
	if ps[f.carolID] == nil || ps[f.aliceID] == nil || ps[f.acmeKeyID] == nil {
		t.Fatalf("acme's principals: %v", ps)
	}
	for _, g := range grantsOf(ps[f.carolID]) {
		if g["tenant"] == "beta" {
			t.Fatalf("carol's beta grant in acme's list: %v", g)
		}
	}
	// carol's own access, as alice sees it: acme only.
	pt := principalTenants(t, in.Do("GET", "/api/v1/users/"+f.carolID+"/access", f.alice, nil))
	if len(pt) != 1 || pt["acme"] == nil {
		t.Fatalf("carol's access as alice sees it: %v", pt)
	}
	// As the platform admin and carol herself see it: both.
	for _, tok := range []string{f.admin, in.Login("carol", "carol-password-1").String("token")} {
		if pt := principalTenants(t, in.Do("GET", "/api/v1/users/"+f.carolID+"/access", tok, nil)); len(pt) != 2 {
			t.Fatalf("carol's whole access: %v", pt)
		}
	}
	for _, path := range []string{"/api/v1/users/" + f.daveID + "/access", "/api/v1/users/" + f.bobID + "/access", "/api/v1/api-keys/" + f.betaKeyID + "/access"} {
		expectError(t, "alice: "+path, in.Do("GET", path, f.alice, nil), 404, "NOT_FOUND")
	}
	expectStatus(t, "alice: her tenant's key", in.Do("GET", "/api/v1/api-keys/"+f.acmeKeyID+"/access", f.alice, nil), 200)
	// A platform-wide key holds a grant in acme too (acme's list shows it):
	// alice reads its access (it was 404, an outside check).
	pk := in.Do("POST", "/api/v1/api-keys", f.admin, map[string]any{"name": "platform-wide", "tenants": []string{"*"}, "permissions": []string{"nodes:read"}})
	expectStatus(t, "a platform-wide key", pk, 201)
	if pt := principalTenants(t, in.Do("GET", "/api/v1/api-keys/"+pk.String("id")+"/access", f.alice, nil)); len(pt) == 0 {
		t.Fatal("alice: the platform-wide key's access lists no tenant")
	}
	// A viewer reads no tenant's access.
	carol := in.Login("carol", "carol-password-1").String("token")
	expectBody(t, "a viewer", in.Do("GET", "/api/v1/tenants/acme/access", carol, nil), 403, bodyForbidden)
	// A key with audit:read in acme: acme's list, and carol's access there.
	k := in.Do("POST", "/api/v1/api-keys", f.alice, map[string]any{"name": "auditor", "tenants": []string{"acme"}, "permissions": []string{"audit:read"}})
	expectStatus(t, "auditor key", k, 201)
	key := k.String("key")
	expectStatus(t, "key: acme", in.Do("GET", "/api/v1/tenants/acme/access", key, nil), 200)
	expectBody(t, "key: beta", in.Do("GET", "/api/v1/tenants/beta/access", key, nil), 403, bodyForbidden)
	if pt := principalTenants(t, in.Do("GET", "/api/v1/users/"+f.carolID+"/access", key, nil)); len(pt) != 1 || pt["acme"] == nil {
		t.Fatalf("carol's access as the key sees it: %v", pt)
	}
	expectError(t, "key: dave", in.Do("GET", "/api/v1/users/"+f.daveID+"/access", key, nil), 404, "NOT_FOUND")
	// Without audit:read: 403.
	expectBody(t, "a key without audit:read", in.Do("GET", "/api/v1/tenants/acme/access", f.acmeKey, nil), 403, bodyForbidden)
}

// TestAuditReplicasAgree: two replicas of one deployment answer the audit
// and access questions identically, byte for byte.
func TestAuditReplicasAgree(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 1)
	clock := NewClock()
	a := d.StartReplica(t, WithClock(clock))
	b := d.StartReplica(t, WithClock(clock))
	admin := a.AdminToken()
	step := func() { clock.Advance(time.Second) }
	step()
	uid := a.CreateUser(admin, "rita", "rita-password-1", map[string]string{"acme": "editor"})
	step()
	ownerID := a.CreateUser(admin, "otto", "otto-password-1", map[string]string{"acme": "admin"})
	otto := a.Login("otto", "otto-password-1")
	k := a.Do("POST", "/api/v1/api-keys", otto.String("token"), map[string]any{"name": "k", "tenants": []string{"acme"}, "permissions": []string{"findings:read"}})
	expectStatus(t, "key", k, 201)
	step()
	expectStatus(t, "rita out", a.Do("DELETE", "/api/v1/users/"+uid+"/tenants/acme", admin, nil), 200)
	step()
	expectStatus(t, "otto deactivated", a.Do("POST", "/api/v1/users/"+ownerID+"/deactivate", admin, nil), 200)
	step()
	h := head(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Svc.Runner.WaitFor(ctx, h); err != nil {
		t.Fatalf("replica b did not catch up: %v", err)
	}
	revoke := lastEventOf(t, a, admin, "user.role_revoked", uid)
	at := evTime(t, revoke).Add(-time.Nanosecond)
	for _, path := range []string{
		"/api/v1/audit/events?limit=1000",
		"/api/v1/audit/events?tenant=acme&order=desc&limit=3",
		"/api/v1/audit/events?subject=" + uid,
		"/api/v1/tenants/acme/access?at=" + url.QueryEscape(ts(at)),
		"/api/v1/tenants/acme/access?permission=findings:read&at=" + url.QueryEscape(ts(evTime(t, revoke))),
		"/api/v1/users/" + uid + "/access?at=" + url.QueryEscape(ts(at)),
		"/api/v1/api-keys/" + k.String("id") + "/access?at=" + url.QueryEscape(ts(at)),
	} {
		ra, rb := a.Do("GET", path, admin, nil), b.Do("GET", path, admin, nil)
		expectStatus(t, "a: "+path, ra, 200)
		if ra.Status != rb.Status || !bytes.Equal(ra.Raw, rb.Raw) {
			t.Fatalf("%s: the replicas differ:\na %d %s\nb %d %s", path, ra.Status, ra.Raw, rb.Status, rb.Raw)
		}
	}
	for _, body := range []map[string]string{
		{"key": k.String("key")},
		{"token": otto.String("token"), "at": ts(at)},
		{"token": otto.String("refresh_token")},
	} {
		ra, rb := a.Do("POST", "/api/v1/audit/credential-check", admin, body), b.Do("POST", "/api/v1/audit/credential-check", admin, body)
		expectStatus(t, "a: credential check", ra, 200)
		if !bytes.Equal(ra.Raw, rb.Raw) {
			t.Fatalf("credential check: the replicas differ:\na %s\nb %s", ra.Raw, rb.Raw)
		}
	}
}
