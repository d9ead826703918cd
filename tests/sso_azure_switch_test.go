package tests

import (
	"net/http"
	"net/url"
	"testing"
)

// TestSSOAzureSwitchTenancy: an Azure AD provider switched from one directory
// (identities under …/<GUID>/v2.0) to several ("organizations" with that
// directory allowed: identities under …/{tenantid}/v2.0) keeps its users:
// a returning user signs in to the account it had (outside check 14a: each
// became a new azure-<hash> account, without roles or factors), and so does
// one first seen by the multi-tenant form after switching back. Unlinking
// under either form finds the other form's link.
func TestSSOAzureSwitchTenancy(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	kim := testOIDCUser{Subject: "azure-sub-kim", Email: "kim@corp.example", Username: "kim@corp.example", TenantID: azureTenant}
	idp := opFor(t, in, "azure", testOPOptions{
		Path: "/" + azureTenant + "/v2.0", Aliases: map[string]string{"/organizations/v2.0": "{base}/{tenantid}/v2.0"},
	}, kim)
	single := func() {
		t.Helper()
		r := postProvider(in, admin, "azure", "azure", idp, nil)
		if r.Status != http.StatusCreated && r.Status != http.StatusOK {
			t.Fatalf("configure one directory: %d %s", r.Status, r.Raw)
		}
	}
	multi := func() {
		t.Helper()
		r := postProvider(in, admin, "azure", "azure", idp, map[string]any{
			"tenant_id": "organizations", "allowed_tenants": []string{azureTenant}, "issuer": idp.origin() + "/organizations/v2.0",
		})
		mustStatus(t, r, http.StatusOK, "configure several directories")
	}
	login := func(what string, u testOIDCUser) string {
		t.Helper()
		idp.SetUser(u)
		r := newBrowser(t).get(in.URL + "/api/v1/auth/sso/azure/login")
		mustStatus(t, r, http.StatusOK, what)
		return ssoUserOf(t, r)["id"].(string)
	}
	single()
	kimID := login("kim, one directory", kim)
	multi()
	if id := login("kim, several directories", kim); id != kimID {
		t.Fatalf("kim after the switch to several directories: %s, want %s", id, kimID)
	}
	lee := testOIDCUser{Subject: "azure-sub-lee", Email: "lee@corp.example", Username: "lee", TenantID: azureTenant}
	leeID := login("lee, first seen by several directories", lee)
	if leeID == kimID {
		t.Fatal("lee signed in as kim")
	}
	single()
	if id := login("kim, one directory again", kim); id != kimID {
		t.Fatalf("kim after switching back: %s, want %s", id, kimID)
	}
	if id := login("lee, one directory", lee); id != leeID {
		t.Fatalf("lee after switching back: %s, want %s", id, leeID)
	}
	// Lee's link is the multi-tenant form's; unlinking it through the
	// single-directory form finds it, and lee's next login is a first one.
	r := in.Do("DELETE", "/api/v1/admin/sso/azure/identities?subject="+url.QueryEscape(lee.Subject), admin, nil)
	mustStatus(t, r, http.StatusNoContent, "unlink lee through the other form")
	if id := login("lee after the unlink", lee); id == leeID {
		t.Fatal("lee's unlinked identity still signs in to the old account")
	}
	// And kim's, the single-directory form's, through the multi-tenant one.
	multi()
	r = in.Do("DELETE", "/api/v1/admin/sso/azure/identities?subject="+url.QueryEscape(kim.Subject), admin, nil)
	mustStatus(t, r, http.StatusNoContent, "unlink kim through the other form")
	if id := login("kim after the unlink", kim); id == kimID {
		t.Fatal("kim's unlinked identity still signs in to the old account")
	}
}
