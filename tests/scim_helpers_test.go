package tests

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/infracast/auth/events"
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

// wantSCIM fails unless r has the status and, for a body, the SCIM media type.
func wantSCIM(t testing.TB, what string, r Response, status int) Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, status, r.Raw)
	}
	if len(r.Raw) > 0 && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/scim+json") {
		t.Fatalf("%s: Content-Type %q", what, r.Header.Get("Content-Type"))
	}
	return r
}

// wantSCIMError fails unless r is a SCIM error (RFC 7644 3.12) with the
// status and scimType ("" for none), and nothing else in it.
func wantSCIMError(t testing.TB, what string, r Response, status int, scimType string) {
	t.Helper()
	wantSCIM(t, what, r, status)
	var body struct {
		Schemas  []string `json:"schemas"`
		Status   string   `json:"status"`
		ScimType string   `json:"scimType"`
		Detail   string   `json:"detail"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.Raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("%s: not a SCIM error: %s (%v)", what, r.Raw, err)
	}
	if !slices.Equal(body.Schemas, []string{"urn:ietf:params:scim:api:messages:2.0:Error"}) || body.Status != strconv.Itoa(status) ||
		body.ScimType != scimType || body.Detail == "" {
		t.Fatalf("%s: SCIM error %s, want status %d scimType %q", what, r.Raw, status, scimType)
	}
}

// at returns the value at a path of object keys and list indexes in a
// decoded JSON document (nil when absent).
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

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
