package domain

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSCIMToken(t *testing.T) {
	var r [32]byte
	r[0], r[31] = 7, 9
	tok := FormatSCIMToken(r)
	if !strings.HasPrefix(tok, "ic_scim_") || !LooksLikeSCIMToken(tok) || !ValidSCIMToken(tok) {
		t.Fatalf("token %q", tok)
	}
	// A SCIM token is never an API key, of either environment.
	if _, ok := APIKeyEnv(tok); ok {
		t.Fatal("a SCIM token passes as an API key")
	}
	if _, err := ParseAPIKey(tok); err == nil {
		t.Fatal("a SCIM token parses as an API key")
	}
	flip := []byte(tok)
	flip[12] ^= 1
	for _, bad := range []string{"", "ic_scim_", tok[:len(tok)-1], tok + "A", string(flip), "ic_live_" + tok[len("ic_scim_"):],
		strings.Replace(tok, "ic_scim_", "IC_SCIM_", 1), tok[:20] + "!" + tok[21:]} {
		if ValidSCIMToken(bad) {
			t.Errorf("%q is accepted", bad)
		}
	}
	key := FormatAPIKey(KeyEnvLive, r)
	if ValidSCIMToken(key) || LooksLikeSCIMToken(key) {
		t.Fatal("an API key passes as a SCIM token")
	}
}

var scimT0 = time.Date(2026, 3, 1, 9, 14, 0, 0, time.UTC)

func newConn(t *testing.T, tenants []string, mappings ...RoleMapping) SCIMConnection {
	t.Helper()
	evs, err := DecideSCIMConnection(SCIMConnection{}, CreateSCIMConnection{
		ConnectionID: "scim-1", Provider: "okta", ProviderExists: true, Tenants: tenants, GroupMappings: mappings,
		TokenHash: strings.Repeat("a", 64), Now: scimT0,
	})
	if err != nil {
		t.Fatal(err)
	}
	var c SCIMConnection
	for _, e := range evs {
		c = EvolveSCIMConnection(c, e)
	}
	return c
}

func TestDecideSCIMConnection(t *testing.T) {
	ok := CreateSCIMConnection{ConnectionID: "scim-1", Provider: "okta", ProviderExists: true, Tenants: []string{"prod", "dev"},
		GroupMappings: []RoleMapping{{Group: " admins ", Tenant: "prod", Role: RoleAdmin}, {Group: "devs", Tenant: "dev", Role: RoleEditor}},
		TokenHash:     "h", Now: scimT0}
	evs, err := DecideSCIMConnection(SCIMConnection{}, ok)
	if err != nil {
		t.Fatal(err)
	}
	created := evs[0].(SCIMConnectionCreated)
	if !reflect.DeepEqual(created.Tenants, []string{"dev", "prod"}) || created.GroupMappings[0].Group != "admins" {
		t.Fatalf("created %+v", created)
	}
	for name, c := range map[string]func(*CreateSCIMConnection){
		"no such provider":  func(c *CreateSCIMConnection) { c.ProviderExists = false },
		"bad provider name": func(c *CreateSCIMConnection) { c.Provider = "Okta!" },
		"no tenants":        func(c *CreateSCIMConnection) { c.Tenants = nil },
		"bad tenant":        func(c *CreateSCIMConnection) { c.Tenants = []string{"Prod"} },
		"tenant twice":      func(c *CreateSCIMConnection) { c.Tenants = []string{"prod", "prod"} },
		"mapping outside": func(c *CreateSCIMConnection) {
			c.GroupMappings = []RoleMapping{{Group: "g", Tenant: "staging", Role: RoleViewer}}
		},
		"mapping without group": func(c *CreateSCIMConnection) {
			c.GroupMappings = []RoleMapping{{Group: " ", Tenant: "prod", Role: RoleViewer}}
		},
		"mapping with unknown role": func(c *CreateSCIMConnection) {
			c.GroupMappings = []RoleMapping{{Group: "g", Tenant: "prod", Role: "owner"}}
		},
		"mapping twice in a tenant": func(c *CreateSCIMConnection) {
			c.GroupMappings = append(c.GroupMappings, RoleMapping{Group: "admins", Tenant: "prod", Role: RoleViewer})
		},
		"no token hash": func(c *CreateSCIMConnection) { c.TokenHash = "" },
		"mapping of a group with a direction override": func(c *CreateSCIMConnection) {
			c.GroupMappings = []RoleMapping{{Group: "\u202esnimda", Tenant: "prod", Role: RoleAdmin}}
		},
		"mapping of a group of Hangul fillers": func(c *CreateSCIMConnection) {
			c.GroupMappings = []RoleMapping{{Group: "\u3164\u3164", Tenant: "prod", Role: RoleAdmin}}
		},
		"mapping with a bad tenant": func(c *CreateSCIMConnection) {
			c.GroupMappings = []RoleMapping{{Group: "g", Tenant: "../x", Role: RoleViewer}}
		},
	} {
		cmd := ok
		cmd.GroupMappings = append([]RoleMapping(nil), ok.GroupMappings...)
		c(&cmd)
		if _, err := DecideSCIMConnection(SCIMConnection{}, cmd); err == nil {
			t.Errorf("%s: accepted", name)
		} else if ve := (*ValidationError)(nil); !errors.As(err, &ve) {
			t.Errorf("%s: %v, want a validation error", name, err)
		}
	}

	c := newConn(t, []string{"prod", "dev"}, RoleMapping{Group: "admins", Tenant: "prod", Role: RoleAdmin})
	if _, err := DecideSCIMConnection(c, ok); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("create twice: %v", err)
	}
	// Update: tenants and mappings; a mapping outside the new tenants is
	// refused; the same again changes nothing.
	if _, err := DecideSCIMConnection(c, UpdateSCIMConnection{Tenants: []string{"dev"}}); err == nil {
		t.Fatal("dropping a tenant a mapping names is accepted")
	}
	evs, err = DecideSCIMConnection(c, UpdateSCIMConnection{Tenants: []string{"dev"}, GroupMappings: []RoleMapping{}, Now: scimT0.Add(time.Hour)})
	if err != nil || len(evs) != 1 {
		t.Fatalf("update: %v %v", evs, err)
	}
	c2 := EvolveSCIMConnection(c, evs[0])
	if !reflect.DeepEqual(c2.Tenants, []string{"dev"}) || len(c2.GroupMappings) != 0 || !c2.UpdatedAt.Equal(scimT0.Add(time.Hour)) {
		t.Fatalf("updated %+v", c2)
	}
	if evs, err := DecideSCIMConnection(c2, UpdateSCIMConnection{Tenants: []string{"dev"}}); err != nil || len(evs) != 0 {
		t.Fatalf("the same again: %v %v", evs, err)
	}
	// Rotate, delete; then nothing.
	if _, err := DecideSCIMConnection(c, RotateSCIMToken{TokenHash: c.TokenHash}); err == nil {
		t.Fatal("rotation to the same token")
	}
	evs, _ = DecideSCIMConnection(c, RotateSCIMToken{Replaces: c.TokenHash, TokenHash: strings.Repeat("b", 64), Now: scimT0})
	c3 := EvolveSCIMConnection(c, evs[0])
	if c3.TokenHash != strings.Repeat("b", 64) || c3.RotatedAt.IsZero() {
		t.Fatalf("rotated %+v", c3)
	}
	// A second rotation of the token as it was: refused, not a second
	// token of which only the last works (an outside check, 13f).
	if _, err := DecideSCIMConnection(c3, RotateSCIMToken{Replaces: c.TokenHash, TokenHash: strings.Repeat("c", 64), Now: scimT0}); !errors.Is(err, ErrSCIMTokenRotated) {
		t.Fatalf("rotation of a token rotated meanwhile: %v, want ErrSCIMTokenRotated", err)
	}
	evs, _ = DecideSCIMConnection(c, DeleteSCIMConnection{})
	gone := EvolveSCIMConnection(c, evs[0])
	if gone.Exists() {
		t.Fatal("deleted connection exists")
	}
	for _, cmd := range []SCIMConnectionCommand{UpdateSCIMConnection{}, RotateSCIMToken{TokenHash: "x"}, DeleteSCIMConnection{}} {
		if _, err := DecideSCIMConnection(gone, cmd); !errors.Is(err, ErrNotFound) {
			t.Errorf("%T on a deleted connection: %v", cmd, err)
		}
	}
	if _, err := DecideSCIMConnection(c, nil); err == nil {
		t.Fatal("nil command")
	}
}

func TestSCIMRoles(t *testing.T) {
	c := newConn(t, []string{"prod", "dev"},
		RoleMapping{Group: "prod-admins", Tenant: "prod", Role: RoleAdmin},
		RoleMapping{Group: "prod-viewers", Tenant: "prod", Role: RoleViewer},
		RoleMapping{Group: "everyone", Tenant: "prod", Role: RoleViewer},
		RoleMapping{Group: "everyone", Tenant: "dev", Role: RoleEditor})
	if got := c.GovernedTenants(); !reflect.DeepEqual(got, []string{"dev", "prod"}) {
		t.Fatalf("governed %v", got)
	}
	if got := c.RolesFor([]string{"prod-viewers", "prod-admins", "other"}); !reflect.DeepEqual(got, map[string]Role{"prod": RoleAdmin}) {
		t.Fatalf("roles %v", got)
	}
	if got := c.RolesFor([]string{"Prod-Admins"}); len(got) != 0 {
		t.Fatalf("group names compare exactly: %v", got)
	}
	u := User{ID: "u", Active: true, Tenants: map[string]Role{"prod": RoleEditor, "dev": RoleEditor, "ci": RoleAdmin}}
	got := SCIMRoleChanges(u, c.GovernedTenants(), c.RolesFor([]string{"prod-viewers"}))
	want := []UserCommand{RevokeRole{Tenant: "dev"}, GrantRole{Tenant: "prod", Role: "viewer"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("changes %v, want %v (ci is not governed)", got, want)
	}
	if got := SCIMRoleChanges(u, c.GovernedTenants(), map[string]Role{"prod": RoleEditor, "dev": RoleEditor}); len(got) != 0 {
		t.Fatalf("in step: %v", got)
	}
	// Within: nothing outside the connection's tenants, no platform admin.
	if c.Within(u) {
		t.Fatal("a user with a role in ci is within prod, dev")
	}
	if !c.Within(User{ID: "v", Tenants: map[string]Role{"prod": RoleViewer}}) || !c.Within(User{ID: "w"}) {
		t.Fatal("users inside are not within")
	}
	if c.Within(User{ID: "x", Roles: []GlobalRole{GlobalAdmin}}) {
		t.Fatal("a platform admin is within")
	}
}

func TestDecideSCIMGroup(t *testing.T) {
	evs, err := DecideSCIMGroup(SCIMGroup{}, CreateSCIMGroup{GroupID: "group-1", ConnectionID: "scim-1", DisplayName: " ops ",
		Members: []string{"u-2", "u-1", "u-2"}, Now: scimT0})
	if err != nil {
		t.Fatal(err)
	}
	g := EvolveSCIMGroup(SCIMGroup{}, evs[0])
	if g.DisplayName != "ops" || !reflect.DeepEqual(g.Members, []string{"u-1", "u-2"}) || !g.HasMember("u-2") || g.HasMember("u-3") {
		t.Fatalf("group %+v", g)
	}
	for name, cmd := range map[string]SCIMGroupCommand{
		"no name":      CreateSCIMGroup{GroupID: "g", ConnectionID: "c", DisplayName: " "},
		"long name":    CreateSCIMGroup{GroupID: "g", ConnectionID: "c", DisplayName: strings.Repeat("x", 257)},
		"empty member": CreateSCIMGroup{GroupID: "g", ConnectionID: "c", DisplayName: "x", Members: []string{""}},
	} {
		if _, err := DecideSCIMGroup(SCIMGroup{}, cmd); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Members: what is already so changes nothing; the rest is one event.
	if evs, err := DecideSCIMGroup(g, ChangeSCIMGroupMembers{Add: []string{"u-1"}, Remove: []string{"u-9"}}); err != nil || len(evs) != 0 {
		t.Fatalf("no change: %v %v", evs, err)
	}
	evs, _ = DecideSCIMGroup(g, ChangeSCIMGroupMembers{Add: []string{"u-3"}, Remove: []string{"u-1"}, Now: scimT0})
	before := append([]string(nil), g.Members...)
	g2 := EvolveSCIMGroup(g, evs[0])
	if !reflect.DeepEqual(g2.Members, []string{"u-2", "u-3"}) || !reflect.DeepEqual(g.Members, before) {
		t.Fatalf("members %v (before %v)", g2.Members, g.Members)
	}
	if evs, _ := DecideSCIMGroup(g2, RenameSCIMGroup{DisplayName: "ops"}); len(evs) != 0 {
		t.Fatal("renaming to the same name")
	}
	evs, _ = DecideSCIMGroup(g2, RenameSCIMGroup{DisplayName: "dev", ExternalID: "e"})
	if g3 := EvolveSCIMGroup(g2, evs[0]); g3.DisplayName != "dev" || g3.ExternalID != "e" {
		t.Fatalf("renamed %+v", g3)
	}
	evs, _ = DecideSCIMGroup(g2, DeleteSCIMGroup{})
	gone := EvolveSCIMGroup(g2, evs[0])
	if gone.Exists() {
		t.Fatal("deleted group exists")
	}
	if _, err := DecideSCIMGroup(gone, RenameSCIMGroup{DisplayName: "x"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rename of a deleted group: %v", err)
	}
}

func TestDecideSCIMLink(t *testing.T) {
	p := SCIMProfile{UserName: "alice", Emails: []SCIMEmail{{Value: "a@x.example", Type: "work", Primary: true}}}
	evs, err := DecideSCIMLink(SCIMLink{}, LinkSCIMUser{ConnectionID: "scim-1", UserID: "u-1", Method: SCIMLinkCreated, Profile: p, Now: scimT0})
	if err != nil {
		t.Fatal(err)
	}
	l := EvolveSCIMLink(SCIMLink{}, evs[0])
	if !l.Linked || l.Profile.UserName != "alice" {
		t.Fatalf("link %+v", l)
	}
	if _, err := DecideSCIMLink(l, LinkSCIMUser{ConnectionID: "scim-1", UserID: "u-1", Method: SCIMLinkCreated, Profile: p}); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("link twice: %v", err)
	}
	same := p
	same.Emails = []SCIMEmail{{Value: "a@x.example", Type: "work", Primary: true}}
	if evs, err := DecideSCIMLink(l, UpdateSCIMUser{Profile: same}); err != nil || len(evs) != 0 {
		t.Fatalf("the same profile: %v %v", evs, err)
	}
	changed := p
	changed.DisplayName = "Alice"
	evs, _ = DecideSCIMLink(l, UpdateSCIMUser{Profile: changed, Now: scimT0.Add(time.Minute)})
	if l2 := EvolveSCIMLink(l, evs[0]); l2.Profile.DisplayName != "Alice" || !l2.UpdatedAt.After(l2.LinkedAt) {
		t.Fatalf("updated %+v", l2)
	}
	for name, bad := range map[string]SCIMProfile{
		"no userName":   {UserName: " "},
		"long userName": {UserName: strings.Repeat("a", 1025)},
		"empty email":   {UserName: "a", Emails: []SCIMEmail{{Type: "work"}}},
	} {
		if _, err := DecideSCIMLink(l, UpdateSCIMUser{Profile: bad}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// An address with a hidden character is refused, naming emails, also
	// when it is not the one the user gets (outside check 12r2).
	for _, addr := range []string{"alice\u202e@x.example", "alice@x\u200b.example", "\u3164@x.example", "alice\u2029@x.example"} {
		bad := p
		bad.Emails = []SCIMEmail{{Value: "a@x.example", Type: "work", Primary: true}, {Value: addr, Type: "home"}}
		var ve *ValidationError
		if _, err := DecideSCIMLink(l, UpdateSCIMUser{Profile: bad}); !errors.As(err, &ve) || ve.Field != "emails" {
			t.Errorf("email %q: %v, want a validation error of emails", addr, err)
		}
	}
	evs, _ = DecideSCIMLink(l, UnlinkSCIMUser{})
	off := EvolveSCIMLink(l, evs[0])
	if off.Linked {
		t.Fatal("unlinked link is linked")
	}
	if _, err := DecideSCIMLink(off, UpdateSCIMUser{Profile: p}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update after unlink: %v", err)
	}
	// Linked again (a rehire): a new link on the same aggregate.
	if _, err := DecideSCIMLink(off, LinkSCIMUser{ConnectionID: "scim-1", UserID: "u-1", Method: SCIMLinkIdentity, Profile: p}); err != nil {
		t.Fatalf("relink: %v", err)
	}
	if SCIMLinkKey("scim-1", "u-1") == SCIMLinkKey("scim-1", "u-2") || len(SCIMLinkKey("a", "b")) != 32 {
		t.Fatal("link keys")
	}
}
