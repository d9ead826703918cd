package domain

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestDecideSSOProvider(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	okta := ConfigureSSOProvider{Name: "okta", Type: SSOOkta, Domain: "Acme.Okta.com", ClientID: "c", ClientSecretSealed: "aesgcm1:x", Now: now}
	for _, tc := range []struct {
		name  string
		cmd   ConfigureSSOProvider
		field string // "" = accepted
	}{
		{"okta", okta, ""},
		{"okta without domain", func() ConfigureSSOProvider { c := okta; c.Domain = ""; return c }(), "domain"},
		{"okta domain with scheme", func() ConfigureSSOProvider { c := okta; c.Domain = "https://acme.okta.com"; return c }(), "domain"},
		{"no secret", func() ConfigureSSOProvider { c := okta; c.ClientSecretSealed = ""; return c }(), "client_secret"},
		{"http issuer", func() ConfigureSSOProvider { c := okta; c.Issuer = "http://idp.example.com"; return c }(), "issuer"},
		{"loopback http issuer", func() ConfigureSSOProvider { c := okta; c.Issuer = "http://127.0.0.1:9000"; return c }(), ""},
		{"issuer with user info", func() ConfigureSSOProvider { c := okta; c.Issuer = "https://a@idp.example.com"; return c }(), "issuer"},
		{"azure multi-tenant without allowlist", ConfigureSSOProvider{Name: "azure", Type: SSOAzure, TenantID: "organizations", ClientID: "c", ClientSecretSealed: "s", Now: now}, "allowed_tenants"},
		{"azure multi-tenant", ConfigureSSOProvider{Name: "azure", Type: SSOAzure, TenantID: "organizations", AllowedTenants: []string{"t1"}, ClientID: "c", ClientSecretSealed: "s", Now: now}, ""},
		{"generic reserved name", ConfigureSSOProvider{Name: "okta", Type: SSOOIDC, Issuer: "https://idp.example.com", ClientID: "c", ClientSecretSealed: "s", Now: now}, "name"},
		{"generic bad name", ConfigureSSOProvider{Name: "Corp!", Type: SSOOIDC, Issuer: "https://idp.example.com", ClientID: "c", ClientSecretSealed: "s", Now: now}, "name"},
		{"bad role", func() ConfigureSSOProvider {
			c := okta
			c.RoleMappings = []RoleMapping{{Group: "g", Tenant: "prod", Role: "owner"}}
			return c
		}(), "role_mappings"},
		{"saml bad cert", ConfigureSSOProvider{Name: "saml", Type: SSOSAML, EntityID: "https://idp", SSOURL: "https://idp/sso", Certificate: "-----BEGIN CERTIFICATE-----\n...", Now: now}, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := DecideSSOProvider(SSOProvider{}, tc.cmd)
			var ve *ValidationError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field):
				t.Fatalf("want a validation error on %s, got %v", tc.field, err)
			case tc.field == "" && len(evs) != 1:
				t.Fatalf("events %v", evs)
			}
		})
	}
	evs, _ := DecideSSOProvider(SSOProvider{}, okta)
	p := EvolveSSOProvider(SSOProvider{}, evs[0])
	if p.Issuer != "https://acme.okta.com" || p.Domain != "acme.okta.com" || !p.Exists() || p.Version != 1 {
		t.Fatalf("state %+v", p)
	}
	evs, err := DecideSSOProvider(p, DeleteSSOProvider{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("delete: %v %v", evs, err)
	}
	p = EvolveSSOProvider(p, evs[0])
	if p.Exists() {
		t.Fatal("deleted provider exists")
	}
	if _, err := DecideSSOProvider(p, DeleteSSOProvider{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestSSOTenantRolesFor(t *testing.T) {
	p := SSOProvider{RoleMappings: []RoleMapping{
		{Group: "ops", Tenant: "prod", Role: RoleViewer},
		{Group: "admins", Tenant: "prod", Role: RoleAdmin},
		{Group: "devs", Tenant: "dev", Role: RoleEditor},
	}}
	got := p.TenantRolesFor([]string{"ops", "admins", "other"})
	want := []TenantRole{{Tenant: "prod", Role: RoleAdmin}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := p.TenantRolesFor(nil); len(got) != 0 {
		t.Fatalf("no groups: %v", got)
	}
}

func TestSSOProvisionUsernames(t *testing.T) {
	l := SSOLogin{Provider: "corp", Email: "a@b.example", Username: "has space"}
	got := l.ProvisionUsernames("abc")
	if !reflect.DeepEqual(got, []string{"a@b.example", "corp-abc"}) {
		t.Fatalf("got %v", got)
	}
}
