package tests

import (
	"net/http"
	"strings"
	"testing"
)

// TestSSOEditKeepsSecret: a provider's mappings are edited by posting it
// again without client_secret — which every answer redacts — and the stored
// secret is kept: the next login's code exchange still authenticates at the
// IdP, and the removed mapping grants nothing. Another client or issuer
// needs the secret (outside check 20t: removing a tenant's mapping was a
// 400 "client_secret: is required").
func TestSSOEditKeepsSecret(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	idp := configureOIDC(t, in, admin, "oidc", "corp", alice(), map[string]any{
		"role_mappings": []map[string]string{{"group": "infra-admins", "tenant": "acme", "role": "admin"}},
	})
	// The configuration as the API shows it, the secret redacted, sent back
	// without the acme mapping and without the secret.
	got := in.Do("GET", "/api/v1/admin/sso/corp", admin, nil)
	mustStatus(t, got, http.StatusOK, "read the provider")
	if got.String("client_secret") != "[redacted]" {
		t.Fatalf("provider: %s", got.Raw)
	}
	edit := map[string]any{"name": "corp", "issuer": idp.Issuer, "client_id": got.String("client_id"), "role_mappings": []any{}}
	r := in.Do("POST", "/api/v1/admin/sso/oidc", admin, edit)
	mustStatus(t, r, http.StatusOK, "edit without the secret")
	if r.String("client_secret") != "[redacted]" || len(r.JSON["role_mappings"].([]any)) != 0 {
		t.Fatalf("edited provider: %s", r.Raw)
	}
	// The code exchange authenticates with the kept secret (the test IdP
	// refuses a wrong one), and no acme role comes from the group.
	login := newBrowser(t).get(in.URL + "/api/v1/auth/sso/corp/login")
	mustStatus(t, login, http.StatusOK, "login after the edit")
	me := in.Do("GET", "/api/v1/auth/me", login.String("token"), nil)
	mustStatus(t, me, http.StatusOK, "me")
	if strings.Contains(string(me.Raw), `"acme"`) {
		t.Fatalf("the removed mapping still granted acme: %s", me.Raw)
	}
	// Posted back as GET shows it, "[redacted]" and all (only the fields
	// POST does not take removed): the placeholder keeps the stored secret
	// as an absent one does — stored as the secret, every login through the
	// provider failed at the IdP (re-check 20r6).
	asShown := map[string]any{}
	for k, v := range in.Do("GET", "/api/v1/admin/sso/corp", admin, nil).JSON {
		asShown[k] = v
	}
	for _, k := range []string{"type", "login_url", "callback_url", "configured_at"} {
		delete(asShown, k)
	}
	if asShown["client_secret"] != "[redacted]" {
		t.Fatalf("provider: %v", asShown)
	}
	r = in.Do("POST", "/api/v1/admin/sso/oidc", admin, asShown)
	mustStatus(t, r, http.StatusOK, "posted back as GET shows it")
	mustStatus(t, newBrowser(t).get(in.URL+"/api/v1/auth/sso/corp/login"), http.StatusOK, "login after posting [redacted] back")
	// Another client, or another issuer, without the secret or with the
	// placeholder: 400 naming it, and the stored configuration is unchanged.
	for what, body := range map[string]map[string]any{
		"another client":             {"name": "corp", "issuer": idp.Issuer, "client_id": "someone-else"},
		"another issuer":             {"name": "corp", "issuer": "http://127.0.0.1:1/other", "client_id": got.String("client_id")},
		"a new provider":             {"name": "fresh", "issuer": idp.Issuer, "client_id": got.String("client_id")},
		"another client, [redacted]": {"name": "corp", "issuer": idp.Issuer, "client_id": "someone-else", "client_secret": "[redacted]"},
		"a new provider, [redacted]": {"name": "fresh", "issuer": idp.Issuer, "client_id": got.String("client_id"), "client_secret": "[redacted]"},
	} {
		r := in.Do("POST", "/api/v1/admin/sso/oidc", admin, body)
		mustError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", what)
		if !strings.Contains(string(r.Raw), "client_secret") {
			t.Fatalf("%s: want the secret named: %s", what, r.Raw)
		}
		if body["client_secret"] != nil && !strings.Contains(string(r.Raw), `[redacted]`) {
			t.Fatalf("%s: want the placeholder named: %s", what, r.Raw)
		}
	}
	mustStatus(t, newBrowser(t).get(in.URL+"/api/v1/auth/sso/corp/login"), http.StatusOK, "login after the refused edits")
	if raw := streamDump(t, in); strings.Contains(raw, "secret-corp") {
		t.Fatal("the client secret is in the event log in plain text")
	}
}
