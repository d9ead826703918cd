package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestSSOAdmin: the seed's SSO configuration requests, platform admins only,
// secrets never shown nor stored in plain text, certificates checked.
func TestSSOAdmin(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	// The seed's examples, exactly as written.
	r := in.Do("POST", "/api/v1/admin/sso/okta", admin, `{
"domain": "your-company.okta.com",
"client_id": "0oaxxxxxxxxxxxxx",
"client_secret": "xxxxxxxxxxxxxxxxxxxxxxxx"
}`)
	mustStatus(t, r, http.StatusCreated, "seed okta")
	if r.String("issuer") != "https://your-company.okta.com" || r.String("client_secret") != "[redacted]" {
		t.Fatalf("okta: %s", r.Raw)
	}
	r = in.Do("POST", "/api/v1/admin/sso/azure", admin, `{
"tenant_id": "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
"client_id": "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
"client_secret": "xxxxxxxxxxxxxxxxxxxxxxxx"
}`)
	mustStatus(t, r, http.StatusCreated, "seed azure")
	if r.String("issuer") != "https://login.microsoftonline.com/xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx/v2.0" {
		t.Fatalf("azure: %s", r.Raw)
	}
	// The seed's SAML example elides the certificate ("..."): a clear 400.
	r = in.Do("POST", "/api/v1/admin/sso/saml", admin, `{
"entity_id": "https://idp.company.com",
"sso_url": "https://idp.company.com/saml/sso",
"certificate": "-----BEGIN CERTIFICATE-----\n..."
}`)
	mustError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", "seed saml with an elided certificate")
	if !strings.Contains(r.String("error")+string(r.Raw), "certificate") {
		t.Fatalf("message should name the certificate: %s", r.Raw)
	}
	// An expired certificate.
	r = in.Do("POST", "/api/v1/admin/sso/saml", admin, map[string]string{
		"entity_id": "https://idp.company.com", "sso_url": "https://idp.company.com/saml/sso", "certificate": expiredCertPEM(t),
	})
	mustError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", "expired certificate")
	if !strings.Contains(string(r.Raw), "expired") {
		t.Fatalf("want the expiry named: %s", r.Raw)
	}
	// Updating answers 200; posting again replaces.
	r = in.Do("POST", "/api/v1/admin/sso/okta", admin, map[string]any{
		"domain": "acme.okta.com", "client_id": "c2", "client_secret": "s2", "issuer": "https://acme.okta.com/oauth2/default",
	})
	mustStatus(t, r, http.StatusOK, "update okta")
	// Validation.
	for body, what := range map[string]string{
		`{"domain":"https://acme.okta.com/x","client_id":"c","client_secret":"s"}`:                          "okta domain with scheme",
		`{"domain":"acme.okta.com","client_id":"c"}`:                                                        "missing secret",
		`{"domain":"acme.okta.com","client_id":"c","client_secret":"s","x":1}`:                              "unknown field",
		`{"domain":"acme.okta.com","client_id":"c","client_secret":"s","issuer":"http://evil.example.com"}`: "plain http issuer",
	} {
		mustError(t, in.Do("POST", "/api/v1/admin/sso/okta", admin, body), http.StatusBadRequest, "VALIDATION_ERROR", what)
	}
	mustError(t, in.Do("POST", "/api/v1/admin/sso/azure", admin, map[string]any{
		"tenant_id": "organizations", "client_id": "c", "client_secret": "s",
	}), http.StatusBadRequest, "VALIDATION_ERROR", "multi-tenant azure without an allowlist")

	// Listing redacts secrets.
	list := in.Do("GET", "/api/v1/admin/sso", admin, nil)
	mustStatus(t, list, http.StatusOK, "list")
	if strings.Contains(string(list.Raw), "xxxxxxxxxxxxxxxxxxxxxxxx") || strings.Contains(string(list.Raw), `"s2"`) {
		t.Fatalf("a secret leaked: %s", list.Raw)
	}
	if n := len(list.JSON["providers"].([]any)); n != 2 {
		t.Fatalf("%d providers, want 2: %s", n, list.Raw)
	}
	// No event holds the secret in plain text.
	if raw := streamDump(t, in); strings.Contains(raw, "xxxxxxxxxxxxxxxxxxxxxxxx") || !strings.Contains(raw, "client_secret_sealed") {
		t.Fatal("the client secret is in the event stream in plain text (or not sealed)")
	}

	// Platform admins only.
	in.CreateUser(admin, "bob", "bob-password-1", map[string]string{"acme": "admin"})
	bob := in.Login("bob", "bob-password-1").String("token")
	mustError(t, in.Do("GET", "/api/v1/admin/sso", bob, nil), http.StatusForbidden, "FORBIDDEN", "tenant admin lists")
	mustError(t, in.Do("POST", "/api/v1/admin/sso/okta", bob, map[string]string{"domain": "a.okta.com", "client_id": "c", "client_secret": "s"}),
		http.StatusForbidden, "FORBIDDEN", "tenant admin configures")
	mustError(t, in.Do("DELETE", "/api/v1/admin/sso/okta", bob, nil), http.StatusForbidden, "FORBIDDEN", "tenant admin deletes")
	mustError(t, in.Do("GET", "/api/v1/admin/sso", "", nil), http.StatusUnauthorized, "UNAUTHORIZED", "anonymous")

	// Delete.
	mustStatus(t, in.Do("DELETE", "/api/v1/admin/sso/okta", admin, nil), http.StatusNoContent, "delete")
	mustError(t, in.Do("DELETE", "/api/v1/admin/sso/okta", admin, nil), http.StatusNotFound, "NOT_FOUND", "delete again")
	mustError(t, newBrowser(t).get(in.URL+"/api/v1/auth/sso/okta/login"), http.StatusNotFound, "NOT_FOUND", "login at a deleted provider")
}

// streamDump returns every event of the instance's stream as text.
func streamDump(t *testing.T, in *Instance) string {
	t.Helper()
	head, err := in.Svc.Store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = in.Svc.Store.Consume(ctx, 1, func(rec eventsRecord) error {
			sb.Write(rec.Data)
			sb.WriteByte('\n')
			if rec.StreamSeq >= head {
				cancel()
			}
			return nil
		})
	}()
	<-done
	return sb.String()
}
