package tests

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestSCIMDeprovisionPropagatesToOtherReplicas: two replicas on a
// three-node NATS cluster. A user deprovisioned through SCIM on replica A —
// PATCH active:false (Okta, Entra ID), PUT active:false (Okta's custom
// apps), DELETE (Entra ID) — is refused by replica B on its very next
// request once the event has arrived: an access token B issued, a refresh
// token, an API key. And a SCIM group membership changed on A gives or takes
// the mapped tenant role on B's very next request. The arrival times (the
// same measure as TestClusterRevocationPropagatesToOtherReplicas) are
// logged; the bench's scim_propagation case holds their p99 under 5 ms.
func TestSCIMDeprovisionPropagatesToOtherReplicas(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 3)
	a := d.StartReplica(t)
	b := d.StartReplica(t)
	admin := a.AdminToken()
	_, tok := newConnection(t, a, admin, admin, []string{"prod", "ci"},
		mapping{"prod-editors", "prod", "editor"}, mapping{"ci-admins", "ci", "admin"})
	onA := func(method, path, body string) Response { return scimCall(t, a, method, path, tok, body) }
	groups := map[string]string{}
	for _, name := range []string{"prod-editors", "ci-admins"} {
		groups[name] = wantSCIM(t, "group "+name, onA("POST", "/scim/v2/Groups", `{`+groupSchema+`,"displayName":"`+name+`"}`), 201).String("id")
	}
	join := func(group, id string) {
		t.Helper()
		wantSCIM(t, "join "+group, onA("PATCH", "/scim/v2/Groups/"+groups[group], patchOps(`[{"op":"add","path":"members","value":[{"value":"`+id+`"}]}]`)), 204)
	}

	// newUser provisions a user through SCIM on A, in both groups (so that
	// they may make a key in ci), and returns what B must refuse later.
	type creds struct{ id, token, refreshToken, key string }
	n := 0
	newUser := func() creds {
		t.Helper()
		n++
		name := fmt.Sprintf("leaver%d@example.com", n)
		id := wantSCIM(t, "provision", onA("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"`+name+`","externalId":"00uleaver`+fmt.Sprint(n)+`",
			"password":"copper-kettle-`+fmt.Sprint(n)+`"}`), 201).String("id")
		join("prod-editors", id)
		join("ci-admins", id)
		login := b.Login(name, "copper-kettle-"+fmt.Sprint(n)) // issued by B itself
		r := b.Do("POST", "/api/v1/api-keys", login.String("token"), map[string]any{
			"name": "ci", "tenants": []string{"ci"}, "permissions": []string{"nodes:read"}})
		expectStatus(t, "create key on b", r, http.StatusCreated)
		c := creds{id: id, token: login.String("token"), refreshToken: login.String("refresh_token"), key: r.String("key")}
		accepted(t, a, c.token)
		accepted(t, a, c.key)
		return c
	}
	refusedAll := func(what string, c creds) {
		t.Helper()
		refused(t, b, what+": the access token", c.token)
		refused(t, b, what+": the API key", c.key)
		expectBody(t, what+": the refresh token on replica b", refresh(t, b, c.refreshToken), http.StatusUnauthorized, bodyUnauthorized)
	}

	var took []time.Duration
	deprovisions := []struct{ name, method, body string }{
		{"PATCH active:false", "PATCH", patchOps(`[{"op":"replace","value":{"active":false}}]`)},
		{"PATCH active:\"False\"", "PATCH", patchOps(`[{"op":"Replace","path":"active","value":"False"}]`)},
		{"PUT active:false", "PUT", `{` + userSchema + `,"userName":"%s","active":false}`},
		{"DELETE", "DELETE", ""},
	}
	for round := range 5 {
		for _, dp := range deprovisions {
			c := newUser()
			body := dp.body
			if dp.method == "PUT" {
				body = fmt.Sprintf(body, fmt.Sprintf("leaver%d@example.com", n))
			}
			want := http.StatusOK
			if dp.method == "DELETE" {
				want = http.StatusNoContent
			}
			wantSCIM(t, dp.name, onA(dp.method, "/scim/v2/Users/"+c.id, body), want)
			took = append(took, arrived(t, a, b))
			if round == 0 {
				refusedAll(dp.name, c)
			} else {
				refused(t, b, dp.name+": the access token", c.token)
			}
		}
	}

	t.Run("group membership", func(t *testing.T) {
		c := newUser()
		expectStatus(t, "verify before", verify(t, b, c.token, "POST", "/api/v1/tenants/prod/nodes"), http.StatusOK)
		wantSCIM(t, "leave prod-editors", onA("PATCH", "/scim/v2/Groups/"+groups["prod-editors"],
			patchOps(`[{"op":"remove","path":"members[value eq \"`+c.id+`\"]"}]`)), 204)
		took = append(took, arrived(t, a, b))
		expectBody(t, "a role taken by leaving a group, on replica b's next request",
			verify(t, b, c.token, "POST", "/api/v1/tenants/prod/nodes"), http.StatusForbidden, bodyForbidden)
		join("prod-editors", c.id)
		took = append(took, arrived(t, a, b))
		expectStatus(t, "a role given by joining a group, on replica b's next request", verify(t, b, c.token, "POST", "/api/v1/tenants/prod/nodes"), http.StatusOK)
	})

	slices.Sort(took)
	p := func(q float64) time.Duration { return took[min(len(took)-1, int(q*float64(len(took))))] }
	t.Logf("SCIM deprovisioning: event arrival on replica b after replica a answered, %d samples: p50 %v, p99 %v, max %v",
		len(took), p(.5), p(.99), took[len(took)-1])
}
