package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// TestSSOAzureRoleMappingsPerDirectory: a multi-directory Azure AD
// provider's role mappings apply to the directory (tid) they name. App-role
// values and group names are the same strings in every directory, assigned
// by each directory's own administrators: a user of another allowed
// directory carrying "Prod.Admin" was granted admin in prod by the mapping
// meant for the operator's own directory (outside check 18s). A mapping of
// a name that names no directory is refused; one stored so before (an
// upgrade) grants nothing, and the login says so.
func TestSSOAzureRoleMappingsPerDirectory(t *testing.T) {
	const dirA = azureTenant                            // the operator's own
	const dirB = "3b1f4c2e-0000-4000-8000-00000000b0b0" // another allowed directory
	var logs LogBuffer
	in := StartLogged(t, &logs)
	admin := in.AdminToken()
	mallory := testOIDCUser{Subject: "azure-sub-mallory", Email: "mallory@other.example", Username: "mallory@other.example",
		TenantID: dirB, Groups: []string{"Prod.Admin", "Legacy.Editor"}}
	idp := opFor(t, in, "azure", testOPOptions{
		Path: "/" + dirB + "/v2.0", Aliases: map[string]string{"/organizations/v2.0": "{base}/{tenantid}/v2.0"},
	}, mallory)
	configure := func(mappings []map[string]string) Response {
		return postProvider(in, admin, "azure", "azure", idp, map[string]any{
			"tenant_id": "organizations", "allowed_tenants": []string{dirA, dirB}, "issuer": idp.origin() + "/organizations/v2.0",
			"groups_claim": "groups", "role_mappings": mappings,
		})
	}
	// A name without its directory is refused, naming the mapping.
	r := configure([]map[string]string{{"group": "Prod.Admin", "tenant": "prod", "role": "admin"}})
	expectError(t, "a mapping without its directory", r, http.StatusBadRequest, "VALIDATION_ERROR", `group "Prod.Admin" in tenant "prod"`, "directory")

	r = configure([]map[string]string{
		{"group": "Prod.Admin", "tenant": "prod", "role": "admin", "directory": strings.ToUpper(dirA)},
		{"group": "Prod.Admin", "tenant": "dev", "role": "viewer", "directory": dirB},
		{"group": "Legacy.Editor", "tenant": "staging", "role": "editor", "directory": dirB},
	})
	if r.Status != http.StatusCreated {
		t.Fatalf("configure: %d %s", r.Status, r.Raw)
	}
	if !strings.Contains(string(r.Raw), `"directory":"`+dirA+`"`) {
		t.Fatalf("the answer does not name the directory in lower case: %s", r.Raw)
	}
	roles := func(what string) map[string]string {
		t.Helper()
		lr := newBrowser(t).get(in.URL + "/api/v1/auth/sso/azure/login")
		mustStatus(t, lr, http.StatusOK, what)
		me := in.Do("GET", "/api/v1/auth/me", lr.String("token"), nil)
		got := map[string]string{}
		for _, tr := range me.JSON["tenants"].([]any) {
			m := tr.(map[string]any)
			got[m["id"].(string)] = m["role"].(string)
		}
		return got
	}
	got := roles("login from directory B")
	if got["prod"] != "" || got["dev"] != "viewer" || got["staging"] != "editor" {
		t.Fatalf("directory B's user got %v, want dev viewer and staging editor only (prod admin is directory A's)", got)
	}

	// A configuration stored before mappings named a directory: its
	// "Legacy.Editor" mapping (without one, in tenant ops) grants nothing,
	// with a warning, counted. The event is written as an older build
	// writes it (no "directory": the field is omitted when empty).
	var stored domain.SSOProviderConfigured
	var seq, streamSeq uint64
	for i, e := range storedEvents(t, in.Svc) {
		if e.Type == domain.TypeSSOProviderConfigured && e.AggregateID == "azure" {
			if err := json.Unmarshal(e.Data, &stored); err != nil {
				t.Fatal(err)
			}
			seq, streamSeq = e.Sequence, uint64(i+1) // storedEvents: one per stream sequence, from 1
		}
	}
	stored.RoleMappings = []domain.RoleMapping{{Group: "Legacy.Editor", Tenant: "ops", Role: domain.RoleEditor}}
	data, err := events.Encode(commands.NewID("evt"), domain.AggregateSSO, "azure", seq+1, time.Now().UTC(), events.Meta{Actor: events.System}, stored)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), `"directory"`) {
		t.Fatalf("not the old format: %s", data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	at, err := in.Svc.Store.Append(ctx, events.Message{Subject: events.Subject(domain.AggregateSSO, "azure"), ExpectSeq: streamSeq, ID: commands.NewID("cmd") + "-0", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Svc.Runner.WaitFor(ctx, at); err != nil {
		t.Fatal(err)
	}
	before := in.Svc.Commands.UnscopedMappingLogins()
	got = roles("login through the stored configuration")
	if got["ops"] != "" {
		t.Fatalf("a mapping stored without its directory granted %v", got)
	}
	if n := in.Svc.Commands.UnscopedMappingLogins(); n != before+1 {
		t.Fatalf("unscoped mapping logins: %d, want %d", n, before+1)
	}
	Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(logs.String(), "role mappings of a multi-directory Azure AD provider name no directory") {
			return fmt.Errorf("no warning in the log")
		}
		return nil
	})
}
