package domain

import (
	"errors"
	"reflect"
	"slices"
	"strings"
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
		// Hidden characters (outside check 12r2).
		{"role mapping of a group with a direction override", func() ConfigureSSOProvider {
			c := okta
			c.RoleMappings = []RoleMapping{{Group: "\u202esnimda", Tenant: "prod", Role: RoleAdmin}}
			return c
		}(), "role_mappings"},
		{"role mapping of a group of braille blanks", func() ConfigureSSOProvider {
			c := okta
			c.RoleMappings = []RoleMapping{{Group: "\u2800", Tenant: "prod", Role: RoleAdmin}}
			return c
		}(), "role_mappings"},
		{"okta client_id with a zero-width space", func() ConfigureSSOProvider { c := okta; c.ClientID = "0oa\u200b1"; return c }(), "client_id"},
		{"oidc client_id with a line separator", ConfigureSSOProvider{Name: "corp", Type: SSOOIDC, Issuer: "https://idp.example.com", ClientID: "c\u2028d", ClientSecretSealed: "s", Now: now}, "client_id"},
		{"oidc issuer with a direction override", ConfigureSSOProvider{Name: "corp", Type: SSOOIDC, Issuer: "https://idp.example.com/\u202e", ClientID: "c", ClientSecretSealed: "s", Now: now}, "issuer"},
		{"oidc issuer with a Hangul filler", ConfigureSSOProvider{Name: "corp", Type: SSOOIDC, Issuer: "https://idp.example.com/\u3164", ClientID: "c", ClientSecretSealed: "s", Now: now}, "issuer"},
		{"oidc", ConfigureSSOProvider{Name: "corp", Type: SSOOIDC, Issuer: "https://idp.example.com/t/ünï", ClientID: "c", ClientSecretSealed: "s",
			RoleMappings: []RoleMapping{{Group: "Админы 🔑", Tenant: "prod", Role: RoleAdmin}}, Now: now}, ""},
		{"saml entity_id with a direction override", ConfigureSSOProvider{Name: "saml", Type: SSOSAML, EntityID: "https://idp/\u202egnp.exe", SSOURL: "https://idp/sso", Certificate: "-----BEGIN CERTIFICATE-----\n...", Now: now}, "entity_id"},
		{"saml entity_id with a line separator", ConfigureSSOProvider{Name: "saml", Type: SSOSAML, EntityID: "urn:idp\u2028x", SSOURL: "https://idp/sso", Certificate: "-----BEGIN CERTIFICATE-----\n...", Now: now}, "entity_id"},
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

// TestDecideSSOProviderKeepsSecret: an edit without the secret (which every
// answer redacts) keeps the stored one for the same client at the same
// issuer, and only then (outside check 20t: removing a tenant's mapping
// needed a secret no one could read back).
func TestDecideSSOProviderKeepsSecret(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first := ConfigureSSOProvider{Name: "corp", Type: SSOOIDC, Issuer: "https://idp.example.com", ClientID: "c", ClientSecretSealed: "aesgcm1:stored",
		RoleMappings: []RoleMapping{{Group: "acme-admins", Tenant: "acme", Role: RoleAdmin}}, Now: now}
	evs, err := DecideSSOProvider(SSOProvider{}, first)
	if err != nil {
		t.Fatal(err)
	}
	stored := EvolveSSOProvider(SSOProvider{}, evs[0])
	edit := first
	edit.ClientSecretSealed, edit.KeepClientSecret, edit.RoleMappings = "", true, nil
	evs, err = DecideSSOProvider(stored, edit)
	if err != nil {
		t.Fatalf("edit without the secret: %v", err)
	}
	if ev := evs[0].(SSOProviderConfigured); ev.ClientSecretSealed != "aesgcm1:stored" || len(ev.RoleMappings) != 0 {
		t.Fatalf("edit: %+v", ev)
	}
	for name, c := range map[string]ConfigureSSOProvider{
		"not configured yet": edit,
		"another client":     func() ConfigureSSOProvider { c := edit; c.ClientID = "other"; return c }(),
		"another issuer":     func() ConfigureSSOProvider { c := edit; c.Issuer = "https://elsewhere.example.com"; return c }(),
		"without keeping":    func() ConfigureSSOProvider { c := edit; c.KeepClientSecret = false; return c }(),
	} {
		on := stored
		if name == "not configured yet" {
			on = SSOProvider{}
		}
		var ve *ValidationError
		if _, err := DecideSSOProvider(on, c); !errors.As(err, &ve) || ve.Field != "client_secret" {
			t.Errorf("%s: want a validation error on client_secret, got %v", name, err)
		}
	}
	// The placeholder every answer shows, sent back: kept as an absent
	// secret is, and a refusal names it.
	redacted := edit
	redacted.ClientSecretRedacted = true
	if evs, err := DecideSSOProvider(stored, redacted); err != nil || evs[0].(SSOProviderConfigured).ClientSecretSealed != "aesgcm1:stored" {
		t.Fatalf("edit with %q: %v %+v", RedactedClientSecret, err, evs)
	}
	redacted.ClientID = "other"
	if _, err := DecideSSOProvider(stored, redacted); err == nil || !strings.Contains(err.Error(), RedactedClientSecret) {
		t.Errorf("another client with %q: want it named, got %v", RedactedClientSecret, err)
	}
	deleted := EvolveSSOProvider(stored, SSOProviderDeleted{Provider: "corp"})
	if _, err := DecideSSOProvider(deleted, edit); err == nil {
		t.Error("a deleted provider's secret was kept")
	}
}

func TestSSOTenantRolesFor(t *testing.T) {
	p := SSOProvider{RoleMappings: []RoleMapping{
		{Group: "ops", Tenant: "prod", Role: RoleViewer},
		{Group: "admins", Tenant: "prod", Role: RoleAdmin},
		{Group: "devs", Tenant: "dev", Role: RoleEditor},
	}}
	got := p.TenantRolesFor([]string{"ops", "admins", "other"}, "")
	want := []TenantRole{{Tenant: "prod", Role: RoleAdmin}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := p.TenantRolesFor(nil, ""); len(got) != 0 {
		t.Fatalf("no groups: %v", got)
	}
}

// A multi-directory Azure AD provider's mappings must name the directory
// they apply to unless their group is an object ID of the groups claim:
// app-role values and group names are the same strings in every
// directory, which each directory's administrators assign (outside check
// 18s: a user of another allowed directory carrying "Prod.Admin" got admin
// in prod).
func TestSSOAzureRoleMappingDirectory(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const dirA, dirB = "9188040d-6c67-4c5b-b112-36a304b66dad", "3b1f4c2e-0000-4000-8000-00000000b0b0"
	const groupID = "5c7a8f4e-1111-4222-8333-944455556666"
	multi := func(claim string, ms ...RoleMapping) ConfigureSSOProvider {
		return ConfigureSSOProvider{Name: "azure", Type: SSOAzure, TenantID: "organizations", AllowedTenants: []string{dirA, dirB},
			ClientID: "c", ClientSecretSealed: "s", GroupsClaim: claim, RoleMappings: ms, Now: now}
	}
	single := func(ms ...RoleMapping) ConfigureSSOProvider {
		return ConfigureSSOProvider{Name: "azure", Type: SSOAzure, TenantID: dirA, ClientID: "c", ClientSecretSealed: "s", RoleMappings: ms, Now: now}
	}
	okta := ConfigureSSOProvider{Name: "okta", Type: SSOOkta, Domain: "acme.okta.com", ClientID: "c", ClientSecretSealed: "s", Now: now,
		RoleMappings: []RoleMapping{{Group: "ops", Tenant: "prod", Role: RoleAdmin, Directory: dirA}}}
	for _, tc := range []struct {
		name  string
		cmd   ConfigureSSOProvider
		error string // "" = accepted; else a part of the message
	}{
		{"multi: app role without directory", multi("roles", RoleMapping{Group: "Prod.Admin", Tenant: "prod", Role: RoleAdmin}), `group "Prod.Admin" in tenant "prod": a multi-directory`},
		{"multi: group name without directory", multi("", RoleMapping{Group: "infra-admins", Tenant: "prod", Role: RoleAdmin}), "must name its directory"},
		{"multi: object ID without directory", multi("groups", RoleMapping{Group: groupID, Tenant: "prod", Role: RoleAdmin}), ""},
		{"multi: GUID-shaped app role without directory", multi("roles", RoleMapping{Group: groupID, Tenant: "prod", Role: RoleAdmin}), "must name its directory"},
		{"multi: app role of an allowed directory", multi("roles", RoleMapping{Group: "Prod.Admin", Tenant: "prod", Role: RoleAdmin, Directory: strings.ToUpper(dirA)}), ""},
		{"multi: app role of a directory not allowed", multi("roles", RoleMapping{Group: "Prod.Admin", Tenant: "prod", Role: RoleAdmin, Directory: "0000aaaa-0000-4000-8000-000000000000"}), "not one of allowed_tenants"},
		{"multi: one app role in two directories", multi("roles", RoleMapping{Group: "Prod.Admin", Tenant: "prod", Role: RoleAdmin, Directory: dirA}, RoleMapping{Group: "Prod.Admin", Tenant: "prod", Role: RoleViewer, Directory: dirB}), ""},
		{"multi: one app role twice in a directory", multi("roles", RoleMapping{Group: "Prod.Admin", Tenant: "prod", Role: RoleAdmin, Directory: dirA}, RoleMapping{Group: "Prod.Admin", Tenant: "prod", Role: RoleViewer, Directory: dirA}), "mapped twice"},
		{"single: no directory", single(RoleMapping{Group: "Prod.Admin", Tenant: "prod", Role: RoleAdmin}), ""},
		{"single: its own directory", single(RoleMapping{Group: "Prod.Admin", Tenant: "prod", Role: RoleAdmin, Directory: dirA}), ""},
		{"single: another directory", single(RoleMapping{Group: "Prod.Admin", Tenant: "prod", Role: RoleAdmin, Directory: dirB}), "is not the provider's directory"},
		{"okta: a directory", okta, "Azure AD mappings only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := DecideSSOProvider(SSOProvider{}, tc.cmd)
			if tc.error == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				for _, m := range evs[0].(SSOProviderConfigured).RoleMappings {
					if m.Directory != strings.ToLower(m.Directory) {
						t.Errorf("directory %q stored not in lower case", m.Directory)
					}
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != "role_mappings" || !strings.Contains(err.Error(), tc.error) {
				t.Fatalf("got %v, want role_mappings: …%s…", err, tc.error)
			}
		})
	}

	// At login: a directory's mapping applies to its directory's tokens;
	// an object ID to any; a stored mapping without the directory it needs
	// (before the field existed) to none, and is reported.
	p := SSOProvider{Name: "azure", Type: SSOAzure, TenantID: "organizations", AllowedTenants: []string{dirA, dirB}, GroupsClaim: "roles", RoleMappings: []RoleMapping{
		{Group: "Prod.Admin", Tenant: "prod", Role: RoleAdmin, Directory: dirA},
		{Group: "Prod.Admin", Tenant: "dev", Role: RoleViewer, Directory: dirB},
		{Group: "Legacy.Editor", Tenant: "prod", Role: RoleEditor}, // stored before directories
	}}
	for _, tc := range []struct {
		tid    string
		groups []string
		want   []TenantRole
	}{
		{dirA, []string{"Prod.Admin"}, []TenantRole{{Tenant: "prod", Role: RoleAdmin}}},
		{strings.ToUpper(dirA), []string{"Prod.Admin"}, []TenantRole{{Tenant: "prod", Role: RoleAdmin}}},
		{dirB, []string{"Prod.Admin"}, []TenantRole{{Tenant: "dev", Role: RoleViewer}}},
		{"", []string{"Prod.Admin"}, []TenantRole{}},
		{dirA, []string{"Legacy.Editor"}, []TenantRole{}},
	} {
		if got := p.TenantRolesFor(tc.groups, tc.tid); !reflect.DeepEqual(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("tid %q, groups %v: got %v, want %v", tc.tid, tc.groups, got, tc.want)
		}
	}
	if got := p.UnscopedMappedGroups([]string{"Prod.Admin", "Legacy.Editor", "other"}); !reflect.DeepEqual(got, []string{"Legacy.Editor"}) {
		t.Errorf("UnscopedMappedGroups: %v", got)
	}
	byID := p
	byID.GroupsClaim = "groups"
	byID.RoleMappings = []RoleMapping{{Group: groupID, Tenant: "prod", Role: RoleEditor}}
	if got := byID.TenantRolesFor([]string{groupID}, dirB); !reflect.DeepEqual(got, []TenantRole{{Tenant: "prod", Role: RoleEditor}}) {
		t.Errorf("object ID: %v", got)
	}
	if got := byID.UnscopedMappedGroups([]string{groupID}); len(got) != 0 {
		t.Errorf("object ID reported unscoped: %v", got)
	}
	// A single directory's provider: every mapping applies (its tokens are
	// its directory's).
	one := SSOProvider{Name: "azure", Type: SSOAzure, TenantID: dirA, GroupsClaim: "roles", RoleMappings: []RoleMapping{{Group: "Prod.Admin", Tenant: "prod", Role: RoleAdmin}}}
	if got := one.TenantRolesFor([]string{"Prod.Admin"}, ""); len(got) != 1 || one.UnscopedMappedGroups([]string{"Prod.Admin"}) != nil {
		t.Errorf("single directory: %v", got)
	}
}

func TestSSOProvisionUsernames(t *testing.T) {
	l := SSOLogin{Provider: "corp", Email: "a@b.example", Username: "has space"}
	got := l.ProvisionUsernames("abc", true, true)
	if !reflect.DeepEqual(got, []string{"a@b.example", "corp-abc"}) {
		t.Fatalf("got %v", got)
	}
	// An address no one vouches for is neither the username nor recorded.
	l.Username = "alice"
	if got := l.ProvisionUsernames("abc", false, true); !reflect.DeepEqual(got, []string{"alice", "corp-abc"}) {
		t.Fatalf("unvouched: got %v", got)
	}
	if got := l.ProvisionUsernames("abc", false, false); !reflect.DeepEqual(got, []string{"corp-abc"}) {
		t.Fatalf("nothing vouched: got %v", got)
	}
	if l.ProvisionEmail(false) != "" || l.ProvisionEmail(true) != "a@b.example" {
		t.Fatalf("ProvisionEmail: %q, %q", l.ProvisionEmail(false), l.ProvisionEmail(true))
	}
	// An address with a hidden character is not recorded (CreateUser would
	// refuse it, and with it the login): outside check 12r2.
	for _, e := range []string{"a\u200b@b.example", "a@b\u202e.example", "\u3164@b.example"} {
		h := l
		h.Email = e
		if got := h.ProvisionEmail(true); got != "" {
			t.Errorf("ProvisionEmail of %q: %q, want none", e, got)
		}
	}
}

// TestSSOUsernameTrust: a preferred username shaped like an address names
// a new user only where the provider vouches for it: an OIDC provider's
// unverified "boss@corp.example" must not take that name from its owner.
func TestSSOUsernameTrust(t *testing.T) {
	oidc := SSOProvider{Name: "corp", Type: SSOOIDC}
	okta := SSOProvider{Name: "okta", Type: SSOOkta}
	saml := SSOProvider{Name: "saml", Type: SSOSAML}
	azure := SSOProvider{Name: "azure", Type: SSOAzure, TenantID: "5f1c1e2a-0000-4000-8000-000000000001"}
	multi := SSOProvider{Name: "azure", Type: SSOAzure, TenantID: "organizations", AllowedTenants: []string{"5f1c1e2a-0000-4000-8000-000000000001"}}
	for _, c := range []struct {
		name string
		p    SSOProvider
		l    SSOLogin
		want bool
	}{
		{"plain name", oidc, SSOLogin{Username: "alice"}, true},
		{"plain name, multi-tenant", multi, SSOLogin{Username: "alice"}, true},
		{"address, unverified", oidc, SSOLogin{Username: "boss@corp.example", Email: "boss@corp.example"}, false},
		{"address, no e-mail", okta, SSOLogin{Username: "boss@corp.example"}, false},
		{"address, another verified", oidc, SSOLogin{Username: "boss@corp.example", Email: "eve@corp.example", EmailVerified: true}, false},
		{"address = verified e-mail", okta, SSOLogin{Username: "Boss@corp.example", Email: "boss@corp.example", EmailVerified: true}, true},
		{"address = verified e-mail but for a Kelvin sign", okta, SSOLogin{Username: "\u212Aim@corp.example", Email: "kim@corp.example", EmailVerified: true}, false},
		{"saml attribute", saml, SSOLogin{Username: "boss@corp.example"}, true},
		{"azure single directory (UPN)", azure, SSOLogin{Username: "boss@corp.example"}, true},
		{"azure multi-tenant", multi, SSOLogin{Username: "boss@corp.example", Email: "boss@corp.example", EmailVerified: true}, false},
	} {
		if got := c.p.VouchesForUsername(c.l); got != c.want {
			t.Errorf("%s: VouchesForUsername %v, want %v", c.name, got, c.want)
		}
	}
}

// TestSameEmail: addresses match with the letter case of A-Z folded and
// nothing else; Unicode case folding would take the Kelvin sign for K and
// the long s for S, and link an IdP's "\u212Aim@corp.example" to the user
// kim@corp.example (outside check 12).
func TestSameEmail(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"kim@corp.example", "kim@corp.example", true},
		{"Kim@Corp.Example", "kim@corp.example", true},
		{"KIM@CORP.EXAMPLE", "kim@corp.example", true},
		{"j\u00f6rg@corp.example", "j\u00f6rg@corp.example", true},
		{"\u212Aim@corp.example", "kim@corp.example", false}, // KELVIN SIGN
		{"\u212Aim@corp.example", "Kim@corp.example", false},
		{"le\u017F@corp.example", "les@corp.example", false}, // LATIN SMALL LETTER LONG S
		{"le\u017F@corp.example", "LES@corp.example", false},
		{"J\u00d6RG@corp.example", "j\u00f6rg@corp.example", false}, // non-ASCII letters match exactly
		{"kim@corp.example", "kim@corp.exampl", false},
		{"kim@corp.example", "kim@corp.examplf", false},
		{"@", "`", false}, // '@' and '`' are 0x40 and 0x60, not letters
		{"[", "{", false},
		{"", "", true},
	} {
		if got := SameEmail(c.a, c.b); got != c.want {
			t.Errorf("SameEmail(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := SameEmail(c.b, c.a); got != c.want {
			t.Errorf("SameEmail(%q, %q) = %v, want %v", c.b, c.a, got, c.want)
		}
	}
}

// TestSSOEmailTrust: which logins link by e-mail, and whose addresses are
// recorded. Azure AD never links (its email claim is verified by no one) and
// refuses link_by_email; a single directory's addresses are recorded, a
// multi-tenant application's are not.
func TestSSOEmailTrust(t *testing.T) {
	verified := SSOLogin{Email: "erin@corp.example", EmailVerified: true}
	unverified := SSOLogin{Email: "erin@corp.example"}
	oidc := SSOProvider{Name: "corp", Type: SSOOIDC, LinkByEmail: true}
	saml := SSOProvider{Name: "saml", Type: SSOSAML, LinkByEmail: true}
	azure := SSOProvider{Name: "azure", Type: SSOAzure, TenantID: "5f1c1e2a-0000-4000-8000-000000000001", LinkByEmail: true} // stored before the refusal
	multi := SSOProvider{Name: "azure", Type: SSOAzure, TenantID: "organizations", AllowedTenants: []string{"5f1c1e2a-0000-4000-8000-000000000001"}}
	for _, c := range []struct {
		name          string
		p             SSOProvider
		l             SSOLogin
		links, vouchs bool
	}{
		{"oidc verified", oidc, verified, true, true},
		{"oidc unverified", oidc, unverified, false, false},
		{"oidc verified, linking off", SSOProvider{Type: SSOOIDC}, verified, false, true},
		{"saml (asserted = verified)", saml, verified, true, true},
		{"azure verified claim", azure, verified, false, true},
		{"azure single directory", azure, unverified, false, true},
		{"azure multi-tenant", multi, verified, false, false},
		{"no address", oidc, SSOLogin{EmailVerified: true}, false, false},
	} {
		if got := c.p.LinksByEmail(c.l); got != c.links {
			t.Errorf("%s: LinksByEmail %v, want %v", c.name, got, c.links)
		}
		if got := c.p.VouchesForEmail(c.l); got != c.vouchs {
			t.Errorf("%s: VouchesForEmail %v, want %v", c.name, got, c.vouchs)
		}
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err := DecideSSOProvider(SSOProvider{}, ConfigureSSOProvider{
		Name: "azure", Type: SSOAzure, TenantID: "5f1c1e2a-0000-4000-8000-000000000001", ClientID: "c", ClientSecretSealed: "s", LinkByEmail: true, Now: now,
	})
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "link_by_email" {
		t.Fatalf("azure with link_by_email: %v", err)
	}
}

// TestSSOIssuerKeptAsGiven: an issuer is an identifier compared exactly with
// the one the IdP announces; a trailing slash (Auth0's issuers end in one)
// is part of it. Only surrounding space is dropped.
func TestSSOIssuerKeptAsGiven(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, iss := range []string{"https://tenant.eu.auth0.com/", "https://idp.example.com", "https://idp.example.com/dex", "http://127.0.0.1:5556/dex/"} {
		evs, err := DecideSSOProvider(SSOProvider{}, ConfigureSSOProvider{
			Name: "corp", Type: SSOOIDC, Issuer: " " + iss + " ", ClientID: "c", ClientSecretSealed: "s", Now: now,
		})
		if err != nil {
			t.Fatalf("%s: %v", iss, err)
		}
		if p := EvolveSSOProvider(SSOProvider{}, evs[0]); p.Issuer != iss || p.IdentityIssuer() != iss {
			t.Fatalf("issuer %q stored as %q", iss, p.Issuer)
		}
	}
}

// TestSSOOktaDomainForms: an Okta domain is a bare host name; a port, a
// scheme or a path would make an issuer Okta never announces.
func TestSSOOktaDomainForms(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for d, want := range map[string]string{
		"acme.okta.com":             "",
		"acme.oktapreview.com":      "",
		"acme.okta.com:443":         "without port",
		"https://acme.okta.com":     "without scheme",
		"acme.okta.com/oauth2/x":    "without path",
		"acme.okta.com?x=1":         "without path",
		"acme..okta.com":            "host name",
		"-acme.okta.com":            "host name",
		"acme.okta.com:443/default": "without path",
	} {
		_, err := DecideSSOProvider(SSOProvider{}, ConfigureSSOProvider{
			Name: "okta", Type: SSOOkta, Domain: d, ClientID: "c", ClientSecretSealed: "s", Now: now,
		})
		var ve *ValidationError
		switch {
		case want == "" && err != nil:
			t.Errorf("%s refused: %v", d, err)
		case want != "" && (!errors.As(err, &ve) || ve.Field != "domain" || !strings.Contains(ve.Message, want)):
			t.Errorf("%s: want a domain error saying %q, got %v", d, want, err)
		}
	}
}

// TestSSOAzureTenantInLowerCase: a directory ID given in upper case (as the
// Azure portal may show it) is kept in lower case, as Azure AD announces it
// in its issuer and its tokens' tid; the allowed tenants likewise.
func TestSSOAzureTenantInLowerCase(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	evs, err := DecideSSOProvider(SSOProvider{}, ConfigureSSOProvider{
		Name: "azure", Type: SSOAzure, TenantID: " 72F988BF-86F1-41AF-91AB-2D7CD011DB47 ", ClientID: "c", ClientSecretSealed: "s", Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := evs[0].(SSOProviderConfigured)
	if ev.TenantID != "72f988bf-86f1-41af-91ab-2d7cd011db47" || ev.Issuer != "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0" {
		t.Errorf("tenant %q, issuer %q", ev.TenantID, ev.Issuer)
	}
	evs, err = DecideSSOProvider(SSOProvider{}, ConfigureSSOProvider{
		Name: "azure", Type: SSOAzure, TenantID: "organizations", AllowedTenants: []string{"72F988BF-86F1-41AF-91AB-2D7CD011DB47"}, ClientID: "c", ClientSecretSealed: "s", Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := evs[0].(SSOProviderConfigured).AllowedTenants; len(got) != 1 || got[0] != "72f988bf-86f1-41af-91ab-2d7cd011db47" {
		t.Errorf("allowed tenants %q", got)
	}
}

func TestSSOAzureTenantIsDomain(t *testing.T) {
	for tenant, want := range map[string]bool{
		"contoso.onmicrosoft.com": true, "contoso.com": true,
		"9188040d-6c67-4c5b-b112-36a304b66dad": false, "organizations": false, "common": false,
	} {
		if got := AzureTenantIsDomain(tenant); got != want {
			t.Errorf("%s: %v, want %v", tenant, got, want)
		}
	}
}

// TestSSOIdentityIssuer: an identity belongs to its issuer — the OIDC issuer,
// Azure's multi-tenant template (the same for organizations and common), the
// SAML entity ID — and an identity link written with the provider's name
// only is completed with the issuer of that provider as configured then.
func TestSSOIdentityIssuer(t *testing.T) {
	oidcP := SSOProvider{Name: "corp", Type: SSOOIDC, Issuer: "https://idp.example.com/"}
	orgs := SSOProvider{Name: "azure", Type: SSOAzure, TenantID: "organizations", Issuer: "https://login.microsoftonline.com/organizations/v2.0"}
	common := SSOProvider{Name: "azure", Type: SSOAzure, TenantID: "common", Issuer: "https://login.microsoftonline.com/common/v2.0"}
	saml := SSOProvider{Name: "saml", Type: SSOSAML, EntityID: "urn:idp"}
	for _, tc := range []struct {
		p    SSOProvider
		want string
	}{
		{oidcP, "https://idp.example.com/"},
		{orgs, "https://login.microsoftonline.com/{tenantid}/v2.0"},
		{common, "https://login.microsoftonline.com/{tenantid}/v2.0"},
		{saml, "urn:idp"},
	} {
		if got := tc.p.IdentityIssuer(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.p.Name, got, tc.want)
		}
	}
	old := SSOIdentityLinked{Provider: "corp", Subject: "sub-1", UserID: "user-1"}
	if got := UpcastIdentityLinked(old, oidcP); got.Issuer != "https://idp.example.com/" || got.Subject != "sub-1" || got.UserID != "user-1" {
		t.Fatalf("upcast: %+v", got)
	}
	if got := UpcastIdentityLinked(old, saml); got.Issuer != "" {
		t.Fatalf("upcast through another provider: %+v", got)
	}
	current := SSOIdentityLinked{Provider: "corp", Issuer: "https://other.example.com", Subject: "sub-1"}
	if got := UpcastIdentityLinked(current, oidcP); got != current {
		t.Fatalf("a link with an issuer changed: %+v", got)
	}
	if err := (SSOLogin{Provider: "corp", Subject: "s"}).Validate(); err == nil {
		t.Fatal("a login without issuer validated")
	}
}

// TestSSOOtherFormIssuers: an Azure AD provider switched between one
// directory and several looks for the identity under the other form's
// issuer: the template for one directory, the login's directory for
// several; no other provider has another form.
func TestSSOOtherFormIssuers(t *testing.T) {
	const guid = "9188040d-6c67-4c5b-b112-36a304b66dad"
	single := SSOProvider{Name: "azure", Type: SSOAzure, TenantID: guid, Issuer: "https://login.microsoftonline.com/" + guid + "/v2.0"}
	orgs := SSOProvider{Name: "azure", Type: SSOAzure, TenantID: "organizations", Issuer: "https://login.microsoftonline.com/organizations/v2.0", AllowedTenants: []string{guid}}
	for _, tc := range []struct {
		name string
		p    SSOProvider
		tid  string
		want []string
	}{
		{"one directory", single, "", []string{"https://login.microsoftonline.com/{tenantid}/v2.0"}},
		{"one directory, a tid", single, "other", []string{"https://login.microsoftonline.com/{tenantid}/v2.0"}},
		{"several", orgs, guid, []string{"https://login.microsoftonline.com/" + guid + "/v2.0"}},
		{"several, no tid", orgs, "", nil},
		{"several, a tid with a path", orgs, "a/b", nil},
		{"generic", SSOProvider{Name: "corp", Type: SSOOIDC, Issuer: "https://idp.example.com/" + guid + "/v2.0", TenantID: guid}, guid, nil},
		{"saml", SSOProvider{Name: "saml", Type: SSOSAML, EntityID: "urn:idp"}, "", nil},
	} {
		if got := tc.p.OtherFormIssuers(tc.tid); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
		// The identity the other form links is the one this form looks for.
		for _, iss := range tc.p.OtherFormIssuers(tc.tid) {
			if iss == tc.p.IdentityIssuer() {
				t.Errorf("%s: the other form's issuer is this form's", tc.name)
			}
		}
	}
	back := orgs.OtherFormIssuers(guid)[0]
	if single.IdentityIssuer() != back || orgs.IdentityIssuer() != single.OtherFormIssuers("")[0] {
		t.Fatalf("the forms do not find each other: %q %q", single.IdentityIssuer(), back)
	}
}
