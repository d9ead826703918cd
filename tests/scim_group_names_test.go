package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
)

// TestSCIMGroupNamesUniqueAtOnce: a connection's group names are unique
// without regard to case also when the identity provider sends creates or
// renames of one name at the same moment: exactly one is stored (201, 204),
// the others answer 409 uniqueness. Before, the check read the local read
// model and each write expected only its own group: six creates of "Eng" at
// once all answered 201, four renames to one name all 204 (an outside
// check, 16e).
func TestSCIMGroupNamesUniqueAtOnce(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	_, tok := newConnection(t, in, admin, admin, []string{"prod"}, mapping{"Eng", "prod", "editor"})
	call := func(method, path, body string) Response { return scimCall(t, in, method, path, tok, body) }

	// exactlyOne fails unless one answer has status ok and the others are
	// 409 uniqueness.
	exactlyOne := func(what string, rs []Response, ok int) {
		t.Helper()
		n := 0
		for _, r := range rs {
			if r.Status == ok {
				n++
				continue
			}
			wantSCIMError(t, what, r, http.StatusConflict, "uniqueness")
		}
		if n != 1 {
			t.Fatalf("%s: %d answered %d, want exactly one", what, n, ok)
		}
	}
	named := func(name string) int {
		t.Helper()
		r := wantSCIM(t, "list "+name, call("GET", "/scim/v2/Groups?filter="+url.QueryEscape(`displayName eq "`+name+`"`), ""), 200)
		return len(asList(r.JSON["Resources"]))
	}

	var reqs []request
	for i := range 6 {
		name := "Eng"
		if i%2 == 1 {
			name = "eng" // the same name in another case
		}
		reqs = append(reqs, request{Method: "POST", Path: "/scim/v2/Groups", Token: tok, ContentType: "application/scim+json",
			Body: []byte(`{` + groupSchema + `,"displayName":"` + name + `"}`)})
	}
	creates := atOnce(t, in, reqs...)
	exactlyOne("six creates of Eng at once", creates, http.StatusCreated)
	if n := named("Eng"); n != 1 {
		t.Fatalf("%d groups named Eng, want 1", n)
	}

	var groups []string
	for i := range 4 {
		groups = append(groups, wantSCIM(t, "create", call("POST", "/scim/v2/Groups", fmt.Sprintf(`{%s,"displayName":"team-%d"}`, groupSchema, i)), 201).String("id"))
	}
	reqs = nil
	for _, g := range groups {
		reqs = append(reqs, request{Method: "PATCH", Path: "/scim/v2/Groups/" + g, Token: tok, ContentType: "application/scim+json",
			Body: []byte(patchOps(`[{"op":"replace","path":"displayName","value":"Platform"}]`))})
	}
	renames := atOnce(t, in, reqs...)
	exactlyOne("four renames to Platform at once", renames, http.StatusNoContent)
	if n := named("Platform"); n != 1 {
		t.Fatalf("%d groups named Platform, want 1", n)
	}

	// A name freed is taken again: the group named Eng deleted, Eng created.
	eng := creates[0]
	for _, r := range creates {
		if r.Status == http.StatusCreated {
			eng = r
		}
	}
	wantSCIM(t, "delete Eng", call("DELETE", "/scim/v2/Groups/"+eng.String("id"), ""), 204)
	wantSCIM(t, "Eng again", call("POST", "/scim/v2/Groups", `{`+groupSchema+`,"displayName":"ENG"}`), 201)
}
