package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestSCIMOpenAPITrue validates real answers of the SCIM admin API and of
// /scim/v2 against the served OpenAPI document (as TestOpenAPIServedAndTrue
// does for the rest): statuses documented, bodies matching their schemas
// (which refuse undocumented fields), requests the server accepted valid.
func TestSCIMOpenAPITrue(t *testing.T) {
	t.Parallel()
	in := Start(t)
	raw := in.Do("GET", "/openapi.json", "", nil)
	doc, err := openapi3.NewLoader().LoadFromData(raw.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("served document is not valid OpenAPI: %v", err)
	}
	oa := &openAPICheck{t: t, in: in, doc: doc}
	admin := in.AdminToken()
	configureOkta(t, in, admin)

	const conns, conn, rotate = "/api/v1/admin/scim", "/api/v1/admin/scim/{id}", "/api/v1/admin/scim/{id}/rotate"
	c := oa.call(conns, jsonRequest("POST", conns, admin, map[string]any{"provider": "okta", "tenants": []string{"prod"},
		"group_mappings": []map[string]string{{"group": "prod-admins", "tenant": "prod", "role": "admin"}}}), 201)
	id, tok := c.String("id"), c.String("token")
	oa.call(conns, jsonRequest("POST", conns, admin, map[string]any{"provider": "okta", "tenants": []string{"prod"},
		"group_mappings": []map[string]string{{"group": "x", "tenant": "dev", "role": "admin"}}}), 400)
	oa.call(conns, jsonRequest("POST", conns, "", map[string]any{"provider": "okta", "tenants": []string{"prod"}}), 401)
	oa.call(conns, request{Method: "GET", Path: conns, Token: admin}, 200)
	oa.call(conns, request{Method: "GET", Path: conns + "?limit=1", Token: admin}, 200)
	oa.call(conns, request{Method: "GET", Path: conns + "?limit=0", Token: admin}, 400)
	oa.call(conn, request{Method: "GET", Path: "/api/v1/admin/scim/" + id, Token: admin}, 200)
	oa.call(conn, request{Method: "GET", Path: "/api/v1/admin/scim/scim-nope", Token: admin}, 404)
	oa.call(conn, jsonRequest("PUT", "/api/v1/admin/scim/"+id, admin, map[string]any{"tenants": []string{"prod", "staging"}}), 200)
	oa.call(conn, jsonRequest("PUT", "/api/v1/admin/scim/"+id, admin, map[string]any{}), 400)
	r := oa.call(rotate, request{Method: "POST", Path: "/api/v1/admin/scim/" + id + "/rotate", Token: admin}, 200)
	tok2 := r.String("token")
	if tok2 == "" || tok2 == tok {
		t.Fatalf("rotate: %s", r.Raw)
	}

	// /scim/v2: a few answers of each kind (the bodies are SCIM's own).
	scimReq := func(method, path, token, body string) request {
		r := request{Method: method, Path: path, Token: token}
		if body != "" {
			r.Body, r.ContentType = []byte(body), "application/scim+json"
		}
		return r
	}
	oa.call("/scim/v2/ServiceProviderConfig", scimReq("GET", "/scim/v2/ServiceProviderConfig", tok2, ""), 200)
	oa.call("/scim/v2/Users", scimReq("GET", "/scim/v2/Users", admin, ""), 401)
	u := oa.call("/scim/v2/Users", scimReq("POST", "/scim/v2/Users", tok2, `{`+userSchema+`,"userName":"oa@example.com"}`), 201)
	oa.call("/scim/v2/Users", scimReq("POST", "/scim/v2/Users", tok2, `{`+userSchema+`,"userName":"oa@example.com"}`), 409)
	oa.call("/scim/v2/Users", scimReq("GET", "/scim/v2/Users?filter=userName%20eq", tok2, ""), 400)
	oa.call("/scim/v2/Users/{id}", scimReq("PATCH", "/scim/v2/Users/"+u.String("id"), tok2, patchOps(`[{"op":"replace","path":"active","value":false}]`)), 200)
	g := oa.call("/scim/v2/Groups", scimReq("POST", "/scim/v2/Groups", tok2, `{`+groupSchema+`,"displayName":"prod-admins"}`), 201)
	oa.call("/scim/v2/Groups/{id}", scimReq("PATCH", "/scim/v2/Groups/"+g.String("id"), tok2, patchOps(`[{"op":"add","path":"members","value":[{"value":"`+u.String("id")+`"}]}]`)), 204)
	oa.call("/scim/v2/Groups/{id}", scimReq("GET", "/scim/v2/Groups/nope", tok2, ""), 404)
	oa.call("/scim/v2/Users", scimReq("DELETE", "/scim/v2/Users", tok2, ""), 405)
	oa.call("/scim/v2/{path}", scimReq("GET", "/scim/v2/Bulk", tok2, ""), 404)
	oa.call("/scim/v2/Users/{id}", scimReq("DELETE", "/scim/v2/Users/"+u.String("id"), tok2, ""), 204)
	// A body over the limit: refused before any handler runs, in the SCIM
	// error shape all the same (outside check 13a: it was the API's).
	big := oa.callRaw("/scim/v2/Users", scimReq("POST", "/scim/v2/Users", tok2, `{`+userSchema+`,"userName":"big@example.com","x":"`+strings.Repeat("x", 70<<10)+`"}`), 413)
	if ct := big.Header.Get("Content-Type"); ct != "application/scim+json" || big.String("status") != "413" || big.JSON["error"] != nil {
		t.Errorf("SCIM 413: Content-Type %q, body %s; want the SCIM error shape", ct, big.Raw)
	}
	oa.call(conn, request{Method: "DELETE", Path: "/api/v1/admin/scim/" + id, Token: admin}, http.StatusNoContent)
}
