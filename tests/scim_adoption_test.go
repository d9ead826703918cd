package tests

import (
	"net/http"
	"testing"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// TestSCIMAdoptionRenamesTheUser: a user the identity provider creates
// again (a rehire, found by its SSO identity) under another userName and
// address is renamed and re-addressed in the adoption's write, as an
// update would do it: a userName another user has — the platform admin's,
// in any letter case — is 409 uniqueness with nothing appended (and the
// connection does not show the user under that name); a free one becomes
// the username (a password login takes it, and no longer the old one) and
// the address the e-mail, so the SCIM view and the user agree.
func TestSCIMAdoptionRenamesTheUser(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	_, tok := newConnection(t, in, admin, admin, []string{"prod"}, mapping{"engineers", "prod", "editor"})
	call := func(method, path, body string) Response { return scimCall(t, in, method, path, tok, body) }
	const password = "orchid-lantern-42"
	jane := wantSCIM(t, "create jane", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"jane@corp.example","externalId":"00ujane",
		"emails":[{"value":"jane@corp.example","type":"work","primary":true}],"password":"`+password+`","active":true}`), 201).String("id")
	wantSCIM(t, "delete jane", call("DELETE", "/scim/v2/Users/"+jane, ""), 204)
	// A role given by hand in a governed tenant meanwhile: the adoption
	// revokes it in the same write as the rename.
	expectStatus(t, "jane admin in prod", in.Do("PUT", "/api/v1/users/"+jane+"/tenants/prod", admin, map[string]string{"role": "admin"}), 200)
	userOf := func() Response {
		r := in.Do("GET", "/api/v1/users/"+jane, admin, nil)
		expectStatus(t, "get user", r, http.StatusOK)
		return r
	}
	loginStatus := func(name string) int {
		return in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": name, "password": password}).Status
	}

	seq := head(t, in)
	for _, name := range []string{AdminUser, "ADMIN"} {
		wantSCIMError(t, "a rehire as "+name, call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"`+name+`","externalId":"00ujane",
			"emails":[{"value":"root@corp.example","type":"work","primary":true}],"active":true}`), 409, "uniqueness")
	}
	unchanged(t, in, seq, "a rehire under a taken name")
	r := wantSCIM(t, "filter by the admin's name", call("GET", `/scim/v2/Users?filter=userName+eq+"admin"`, ""), 200)
	if r.JSON["totalResults"] != 0.0 {
		t.Fatalf("the connection shows a user named admin: %s", r.Raw)
	}
	if u := userOf(); u.String("username") != "jane@corp.example" || u.JSON["active"] != false {
		t.Fatalf("user after the refused rehire: %s", u.Raw)
	}

	seq = head(t, in)
	r = wantSCIM(t, "rehire under a new name", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"jane.doe@corp.example","externalId":"00ujane",
		"emails":[{"value":"jane.doe@corp.example","type":"work","primary":true}],"active":true}`), 201)
	if r.String("id") != jane || r.String("userName") != "jane.doe@corp.example" {
		t.Fatalf("rehire: %s (want %s)", r.Raw, jane)
	}
	if u := userOf(); u.String("username") != "jane.doe@corp.example" || u.String("email") != "jane.doe@corp.example" || u.JSON["active"] != true {
		t.Fatalf("user after the rehire: %s", u.Raw)
	}
	if role := tenantRole(t, in, admin, jane, "prod"); role != "" {
		t.Fatalf("after the rehire jane is %q in prod, want no role", role)
	}
	// The user's events of the write, renamed first: one after another.
	var last uint64
	for _, e := range eventsSince(t, in, seq) {
		if e.Aggregate != domain.AggregateUser || e.AggregateID != jane {
			continue
		}
		if last != 0 && e.Sequence != last+1 {
			t.Fatalf("%s of jane is her event %d, after %d", e.Type, e.Sequence, last)
		}
		last = e.Sequence
	}
	in.Login("jane.doe@corp.example", password)
	if s := loginStatus("jane@corp.example"); s != http.StatusUnauthorized {
		t.Fatalf("login with the name before the rehire: %d, want 401", s)
	}
	r = wantSCIM(t, "filter by the new name", call("GET", `/scim/v2/Users?filter=userName+eq+"jane.doe@corp.example"`, ""), 200)
	if r.JSON["totalResults"] != 1.0 || at(r.JSON, "Resources", 0, "id") != jane {
		t.Fatalf("filter: %s", r.Raw)
	}
}

// TestSCIMUpdateComparesWithTheUser: an update is compared with the user's
// username and e-mail, not with the connection's record: a record that
// says otherwise than the user (an adoption stored by a build before
// adoptions renamed) is brought to the user by the identity provider's
// next change, which sends the record's userName and address with it.
func TestSCIMUpdateComparesWithTheUser(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	connID, tok := newConnection(t, in, admin, admin, []string{"prod"})
	call := func(method, path, body string) Response { return scimCall(t, in, method, path, tok, body) }
	const password = "orchid-lantern-42"
	kai := wantSCIM(t, "create kai", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"kai","externalId":"00ukai",
		"emails":[{"value":"kai@corp.example","type":"work","primary":true}],"password":"`+password+`","active":true}`), 201).String("id")
	// The record as an adoption before the fix left it: another userName
	// and address than the user's.
	plantAfter(t, in, domain.AggregateSCIMUser, domain.SCIMLinkKey(connID, kai), events.Meta{Actor: events.Actor{Type: "scim", ID: connID}},
		domain.SCIMUserUpdated{ConnectionID: connID, UserID: kai, UpdatedAt: in.Clock.Now().UTC(), Profile: domain.SCIMProfile{
			UserName: "kai.lee", ExternalID: "00ukai", Emails: []domain.SCIMEmail{{Value: "kai.lee@corp.example", Type: "work", Primary: true}},
		}})
	r := wantSCIM(t, "get kai", call("GET", "/scim/v2/Users/"+kai, ""), 200)
	if r.String("userName") != "kai.lee" {
		t.Fatalf("the planted record: %s", r.Raw)
	}
	// The next change (here: of the display name; Okta and Entra ID send
	// the whole profile) carries the record's userName and address, which
	// the user does not have yet.
	wantSCIM(t, "display name", call("PATCH", "/scim/v2/Users/"+kai, patchOps(`[{"op":"replace","value":{
		"userName":"kai.lee","displayName":"Kai Lee","emails":[{"value":"kai.lee@corp.example","type":"work","primary":true}]}}]`)), 200)
	u := in.Do("GET", "/api/v1/users/"+kai, admin, nil)
	if u.String("username") != "kai.lee" || u.String("email") != "kai.lee@corp.example" {
		t.Fatalf("user after a PATCH that sends the record's userName and address: %s", u.Raw)
	}
	in.Login("kai.lee", password)
}

// plantAfter appends ev to subject (kind, id) after its last event, as a
// build of the past stored it.
func plantAfter(t *testing.T, in *Instance, kind, id string, meta events.Meta, ev domain.Event) {
	t.Helper()
	ctx := ctxFor(t)
	subject := events.Subject(kind, id)
	last, err := in.Svc.Store.LastSequence(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	data, err := events.Encode(commands.NewID("evt"), kind, id, 2, in.Clock.Now(), meta, ev)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := in.Svc.Store.Append(ctx, events.Message{Subject: subject, ExpectSeq: last, ID: commands.NewID("cmd"), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Svc.Runner.WaitFor(ctx, seq); err != nil {
		t.Fatal(err)
	}
}
