package tests

import (
	"net/http"
	"strings"
	"testing"
)

// TestEmailRefusesHiddenCharacters: a user's e-mail address with a control or
// invisible character in it (a direction override, a zero-width space, a
// line separator, a Hangul filler) is refused with a 400 naming the field,
// from the admin API and from SCIM alike, and nothing is stored. Before, the
// address was taken as net/mail reads it, and an admin reading it saw an
// address other than the one stored (outside check 12r2).
func TestEmailRefusesHiddenCharacters(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	_, tok := newConnection(t, in, admin, admin, []string{"acme"})
	scim := func(method, path, body string) Response { return scimCall(t, in, method, path, tok, body) }
	carol := wantSCIM(t, "create carol", scim("POST", "/scim/v2/Users",
		`{`+userSchema+`,"userName":"carol","emails":[{"value":"carol@example.com","type":"work","primary":true}]}`), http.StatusCreated).String("id")

	for _, addr := range []string{
		"moc.elpmaxe@\u202eecila", // RIGHT-TO-LEFT OVERRIDE: shows as alice@example.com
		"alice@exa\u200bmple.com", // ZERO WIDTH SPACE
		"alice\u2028@example.com", // LINE SEPARATOR
		"\u3164@example.com",      // HANGUL FILLER
	} {
		seq := head(t, in)
		expectError(t, "create a user with "+addr, in.Do("POST", "/api/v1/users", admin, map[string]any{
			"username": "alice", "email": addr, "password": "alice-passphrase",
		}), http.StatusBadRequest, "VALIDATION_ERROR", "email")
		unchanged(t, in, seq, "a user with "+addr)

		quoted := strings.ReplaceAll(strings.ReplaceAll(addr, "\u2028", `\u2028`), "\u202e", `\u202e`)
		for _, c := range []struct{ what, method, path, body string }{
			{"SCIM create", "POST", "/scim/v2/Users", `{` + userSchema + `,"userName":"alice","emails":[{"value":"` + quoted + `","type":"work"}]}`},
			{"SCIM replace", "PUT", "/scim/v2/Users/" + carol, `{` + userSchema + `,"userName":"carol","emails":[{"value":"` + quoted + `","type":"work","primary":true}]}`},
			{"SCIM patch", "PATCH", "/scim/v2/Users/" + carol, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"emails","value":[{"value":"` + quoted + `","type":"work","primary":true}]}]}`},
		} {
			r := scim(c.method, c.path, c.body)
			wantSCIMError(t, c.what+" with "+addr, r, http.StatusBadRequest, "invalidValue")
			if d, _ := r.JSON["detail"].(string); !strings.Contains(d, "emails") {
				t.Errorf("%s with %s: the detail names no field: %s", c.what, addr, r.Raw)
			}
			unchanged(t, in, seq, c.what+" with "+addr)
		}
	}
	r := wantSCIM(t, "carol", scim("GET", "/scim/v2/Users/"+carol, ""), http.StatusOK)
	if got := at(r.JSON, "emails", 0, "value"); got != "carol@example.com" {
		t.Fatalf("carol's address: %v", got)
	}
	// An address in another script is fine.
	expectStatus(t, "an address in Cyrillic", in.Do("POST", "/api/v1/users", admin, map[string]any{
		"username": "olga", "email": "ольга@пример.рф", "password": "olga-passphrase",
	}), http.StatusCreated)
}
