package tests

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleAuditShowsEveryTenantsEvent: an event that concerns every
// tenant (a platform-wide key's creation) reaches a tenant admin with the
// tenants ["*"], as docs/audit.md says; the console's audit table showed
// its Tenants cell empty to them, keeping only the tenants they administer
// (outside check 17n, by reading the code).
func TestConsoleAuditShowsEveryTenantsEvent(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "tina", "tina-passphrase-1", map[string]string{"acme": "admin"})
	expectStatus(t, "a platform-wide key", in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "everywhere", "tenants": []string{"*"}}), http.StatusCreated)
	tina := in.Login("tina", "tina-passphrase-1").String("token")
	page := in.Do("GET", "/api/v1/audit/events?type=apikey.created", tina, nil)
	expectStatus(t, "tina's audit page", page, http.StatusOK)
	if !strings.Contains(string(page.Raw), `"tenants":["*"]`) {
		t.Fatalf("the platform-wide key's creation, as tina reads it: %s", page.Raw)
	}

	ctx := consoleChrome(t)
	consoleSignIn(t, ctx, in.URL, "tina", "tina-passphrase-1")
	run(t, ctx, "audit page", chromedp.Click(`#nav-audit`), until(`!!document.querySelector('#audit-table')`),
		fill(`#f-type`, "apikey.created"), chromedp.Click(`#audit-apply`),
		until(`Array.prototype.some.call(document.querySelectorAll('#audit-table tbody tr[data-seq]'), function (r) { return r.children[2].textContent === 'apikey.created'; })`))
	cells := evalString(t, ctx, `Array.prototype.map.call(document.querySelectorAll('#audit-table tbody tr[data-seq]'), function (r) { return r.children[5].textContent; }).join('|')`)
	if !strings.Contains(cells, "*") {
		t.Errorf("the Tenants cells of tina's apikey.created rows: %q, want the platform-wide key's *", cells)
	}
}
