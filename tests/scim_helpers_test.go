package tests

import (
	"net/http"
	"strings"
	"testing"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/http/scim/scimtest"
)

// The SCIM tests' helpers: a connection on an Okta provider, SCIM requests,
// and the SCIM error schema.

// oktaIssuer is the issuer of the test Okta provider: an authorization
// server on a closed loopback port (configuring it answers with a warning
// that discovery failed; no test here signs in through it).
const oktaIssuer = "http://127.0.0.1:1/oauth2/default"

// configureOkta configures the SSO provider "okta" (idempotent).
func configureOkta(t testing.TB, in *Instance, admin string) {
	t.Helper()
	r := in.Do("POST", "/api/v1/admin/sso/okta", admin, map[string]any{
		"domain": "acme.okta.com", "client_id": "0oa1", "client_secret": "okta-client-secret", "issuer": oktaIssuer,
	})
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		t.Fatalf("configure okta: %d %s", r.Status, r.Raw)
	}
}

type mapping struct{ group, tenant, role string }

// newConnection creates a SCIM connection on the Okta provider as token
// (configuring the provider first with admin) and returns its ID and its
// bearer token.
func newConnection(t testing.TB, in *Instance, admin, token string, tenants []string, mappings ...mapping) (string, string) {
	t.Helper()
	configureOkta(t, in, admin)
	ms := []map[string]string{}
	for _, m := range mappings {
		ms = append(ms, map[string]string{"group": m.group, "tenant": m.tenant, "role": m.role})
	}
	r := in.Do("POST", "/api/v1/admin/scim", token, map[string]any{"provider": "okta", "tenants": tenants, "group_mappings": ms})
	if r.Status != http.StatusCreated {
		t.Fatalf("create SCIM connection: %d %s", r.Status, r.Raw)
	}
	id, secret := r.String("id"), r.String("token")
	if !strings.HasPrefix(id, "scim-") || !strings.HasPrefix(secret, "ic_scim_") {
		t.Fatalf("connection: %s", r.Raw)
	}
	return id, secret
}

// scimCall sends a SCIM request with a SCIM content type (when there is a
// body) and decodes the answer.
func scimCall(t testing.TB, in *Instance, method, path, token, body string) Response {
	t.Helper()
	r := request{Method: method, Path: path, Token: token}
	if body != "" {
		r.Body, r.ContentType = []byte(body), "application/scim+json"
	}
	return doReq(t, in, r)
}

// scimEndpoint is the service's /scim/v2 with the connection token tok,
// as scimtest's sequences see it.
func scimEndpoint(t testing.TB, in *Instance, tok string) scimtest.Endpoint {
	return scimtest.Endpoint{Base: in.URL + "/scim/v2", Do: func(r scimtest.Request) scimtest.Response {
		t.Helper()
		req := request{Method: r.Method, Path: "/scim/v2" + r.Path, Token: tok, ContentType: r.ContentType, Header: r.Header}
		if r.Body != "" {
			req.Body = []byte(r.Body)
		}
		return asSCIM(doReq(t, in, req))
	}}
}

func asSCIM(r Response) scimtest.Response {
	return scimtest.Response{Status: r.Status, Header: r.Header, Raw: string(r.Raw), Body: r.JSON}
}

// wantSCIM fails unless r has the status and, for a body, the SCIM media type.
func wantSCIM(t testing.TB, what string, r Response, status int) Response {
	t.Helper()
	scimtest.Want(t, what, asSCIM(r), status)
	return r
}

// wantSCIMError fails unless r is a SCIM error (RFC 7644 3.12) with the
// status and scimType ("" for none), and nothing else in it.
func wantSCIMError(t testing.TB, what string, r Response, status int, scimType string) {
	t.Helper()
	scimtest.WantError(t, what, asSCIM(r), status, scimType)
}

// at returns the value at a path of object keys and list indexes in a
// decoded JSON document (nil when absent).
func at(v any, path ...any) any { return scimtest.At(v, path...) }

// eventsSince returns the envelopes appended after stream sequence seq.
func eventsSince(t testing.TB, in *Instance, seq uint64) []events.Envelope {
	t.Helper()
	all := storedEvents(t, in.Svc)
	if uint64(len(all)) < seq {
		t.Fatalf("stream shorter than %d", seq)
	}
	return all[seq:]
}

// unchanged fails when anything was appended after seq (bad input changes
// nothing).
func unchanged(t testing.TB, in *Instance, seq uint64, what string) {
	t.Helper()
	if h := head(t, in); h != seq {
		var types []string
		for _, e := range eventsSince(t, in, seq) {
			types = append(types, e.Type)
		}
		t.Fatalf("%s appended %v", what, types)
	}
}

// asList is v as a JSON list (nil when it is not one).
func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
