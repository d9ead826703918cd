package http

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/infracast/auth/domain"
)

// failingTransport stands for a network where the IdP cannot be reached.
type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("dial tcp: lookup login.microsoftonline.com: no such host")
}

// TestSSOConfigurationCheck: what the configuration check refuses (a
// discovery document that cannot work; an Azure AD tenant given by a domain
// name, even when Azure AD cannot be asked) and what it accepts with a
// warning (an IdP that cannot be asked, or answers no discovery document).
func TestSSOConfigurationCheck(t *testing.T) {
	var doc map[string]any
	status := http.StatusOK
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" && r.URL.Path != "/x/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(doc)
	}))
	defer idp.Close()
	full := func(issuer string) map[string]any {
		return map[string]any{"issuer": issuer, "authorization_endpoint": issuer + "/authorize",
			"token_endpoint": issuer + "/token", "jwks_uri": issuer + "/keys"}
	}
	s := &Server{cfg: Config{SSO: SSOConfig{HTTPClient: idp.Client()}}}
	offline := &Server{cfg: Config{SSO: SSOConfig{HTTPClient: &http.Client{Transport: failingTransport{}}}}}
	generic := domain.SSOProvider{Name: "corp", Type: domain.SSOOIDC, Issuer: idp.URL + "/x/", IssuerOverride: true}
	for _, tc := range []struct {
		what     string
		s        *Server
		p        domain.SSOProvider
		doc      map[string]any
		status   int
		field    string // "" = accepted
		warnings int
	}{
		{"as announced", s, generic, full(idp.URL + "/x/"), 200, "", 0},
		{"slash missing", s, domain.SSOProvider{Name: "corp", Type: domain.SSOOIDC, Issuer: idp.URL + "/x"}, full(idp.URL + "/x/"), 200, "issuer", 0},
		{"no jwks_uri", s, generic, map[string]any{"issuer": idp.URL + "/x/", "authorization_endpoint": "a", "token_endpoint": "t"}, 200, "issuer", 0},
		{"no issuer", s, generic, map[string]any{"authorization_endpoint": "a", "token_endpoint": "t", "jwks_uri": "k"}, 200, "issuer", 0},
		{"error status", s, generic, map[string]any{"error": "invalid_tenant"}, 400, "", 1},
		{"not a discovery document", s, generic, map[string]any{"hello": "world"}, 200, "", 1},
		{"unreachable", offline, generic, nil, 200, "", 1},
		{"azure tenant by domain, unreachable", offline, domain.SSOProvider{Name: "azure", Type: domain.SSOAzure, TenantID: "contoso.onmicrosoft.com",
			Issuer: "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"}, nil, 200, "tenant_id", 0},
		{"azure tenant by ID, unreachable", offline, domain.SSOProvider{Name: "azure", Type: domain.SSOAzure, TenantID: "9188040d-6c67-4c5b-b112-36a304b66dad",
			Issuer: "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"}, nil, 200, "", 1},
		{"saml: nothing to ask", offline, domain.SSOProvider{Name: "saml", Type: domain.SSOSAML, EntityID: "urn:idp"}, nil, 200, "", 0},
	} {
		doc, status = tc.doc, tc.status
		warnings, err := tc.s.checkSSOProvider(context.Background(), tc.p)
		var ve *domain.ValidationError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.what, err)
		case tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field):
			t.Errorf("%s: want a validation error on %s, got %v", tc.what, tc.field, err)
		case len(warnings) != tc.warnings:
			t.Errorf("%s: warnings %q, want %d", tc.what, warnings, tc.warnings)
		}
		for _, w := range warnings {
			if !strings.Contains(w, "/.well-known/openid-configuration") {
				t.Errorf("%s: the warning does not name the URL: %s", tc.what, w)
			}
		}
	}
}
