package tests

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleSaysWhatChangedMeanwhile: an action on an item that another
// tab or admin revoked, deleted or changed since the page listed it is
// refused (404, 409); the page reloads the list and says what happened in
// words, instead of "Resource not found" beside a row that still looks as
// before (outside check 15a: a revoked key still showed as active, with
// Rotate and Revoke). Keys, SCIM connections, SSO providers, a user's
// activation; and a session that ended meanwhile, whose revocation is no
// error.
func TestConsoleSaysWhatChangedMeanwhile(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	key := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "doomed", "tenants": []string{"acme"}})
	expectStatus(t, "a key", key, http.StatusCreated)
	configureOIDC(t, in, admin, "oidc", "corp", alice(), nil)
	conn := in.Do("POST", "/api/v1/admin/scim", admin, map[string]any{"name": "okta", "provider": "corp", "tenants": []string{"acme"}})
	expectStatus(t, "a SCIM connection", conn, http.StatusCreated)
	doraID := in.CreateUser(admin, "dora", "correct horse battery", map[string]string{"acme": "viewer"})
	expectStatus(t, "deactivate dora", in.Do("POST", "/api/v1/users/"+doraID+"/deactivate", admin, nil), http.StatusOK)

	ctx := consoleChrome(t)
	consoleSignIn(t, ctx, in.URL, AdminUser, AdminPassword)
	confirm := func(t *testing.T, what, sel string) string { t.Helper(); return confirmMeanwhile(t, ctx, what, sel) }

	t.Run("rotate a key revoked in another tab", func(t *testing.T) {
		row := fmt.Sprintf(`#keys-table tr[data-key=%q]`, key.String("id"))
		run(t, ctx, "keys", chromedp.Click(`#nav-keys`), until(`!!document.querySelector('`+row+` button.rotate')`))
		expectStatus(t, "revoke it behind the page's back", in.Do("DELETE", "/api/v1/api-keys/"+key.String("id"), admin, nil), http.StatusNoContent)
		if said := confirm(t, "rotate", row+" button.rotate"); !strings.Contains(said, "This key was revoked meanwhile — in another tab or by another admin") {
			t.Errorf("after rotating a revoked key the page says %q", said)
		}
		// The list is read again: the key shows as revoked, with nothing to do.
		run(t, ctx, "the list reloaded", until(`document.querySelector('`+row+`').getAttribute('data-status') === 'revoked' && !document.querySelector('`+row+` button')`))
	})

	t.Run("delete a SCIM connection deleted in another tab", func(t *testing.T) {
		card := fmt.Sprintf(`article[data-connection=%q]`, conn.String("id"))
		run(t, ctx, "scim", chromedp.Click(`#nav-scim`), until(`!!document.querySelector('`+card+`')`))
		expectStatus(t, "delete it behind the page's back", in.Do("DELETE", "/api/v1/admin/scim/"+conn.String("id"), admin, nil), http.StatusNoContent)
		if said := confirm(t, "delete", card+" .row-actions button.danger"); !strings.Contains(said, "This connection was deleted meanwhile") {
			t.Errorf("after deleting a deleted connection the page says %q", said)
		}
		run(t, ctx, "the list reloaded", until(`!document.querySelector('`+card+`')`))
	})

	t.Run("remove an SSO provider removed in another tab", func(t *testing.T) {
		card := `article[data-provider="corp"]`
		run(t, ctx, "sso", chromedp.Click(`#nav-sso`), until(`!!document.querySelector('`+card+`')`))
		expectStatus(t, "remove it behind the page's back", in.Do("DELETE", "/api/v1/admin/sso/corp", admin, nil), http.StatusNoContent)
		if said := confirm(t, "remove", card+" button.danger"); !strings.Contains(said, "This provider was removed meanwhile") {
			t.Errorf("after removing a removed provider the page says %q", said)
		}
		run(t, ctx, "the list reloaded", until(`!document.querySelector('`+card+`') && !!document.getElementById('no-providers')`))
	})

	t.Run("activate a user activated in another tab", func(t *testing.T) {
		run(t, ctx, "dora", chromedp.Evaluate[chromedp.Void](`location.hash = '#/users/`+doraID+`'`), until(`!!document.getElementById('activate')`))
		expectStatus(t, "activate her behind the page's back", in.Do("POST", "/api/v1/users/"+doraID+"/activate", admin, nil), http.StatusOK)
		if said := confirm(t, "activate", "#activate"); !strings.Contains(said, "This user was activated meanwhile") {
			t.Errorf("after activating an active user the page says %q", said)
		}
		run(t, ctx, "the user reloaded", until(`document.getElementById('user-status').textContent === 'active' && !!document.getElementById('deactivate')`))
	})

	// A session that ended meanwhile is revoked all the same: the API's
	// revocation is idempotent (204), and the page says so and lists the
	// session no more (re-check 15r2: docs/console.md promised "This session
	// had ended meanwhile", which the page never said).
	t.Run("revoke a session ended in another tab", func(t *testing.T) {
		finnID := in.CreateUser(admin, "finn", "correct horse battery", map[string]string{"acme": "viewer"})
		in.Login("finn", "correct horse battery")
		run(t, ctx, "finn", chromedp.Evaluate[chromedp.Void](`location.hash = '#/users/`+finnID+`'`),
			until(`!!document.querySelector('#sessions-table button.danger')`))
		list := in.Do("GET", "/api/v1/users/"+finnID+"/sessions", admin, nil)
		expectStatus(t, "finn's sessions", list, http.StatusOK)
		sessions, _ := list.JSON["sessions"].([]any)
		if len(sessions) != 1 {
			t.Fatalf("finn's sessions: %s", list.Raw)
		}
		sid, _ := sessions[0].(map[string]any)["id"].(string)
		expectStatus(t, "revoke it behind the page's back", in.Do("DELETE", "/api/v1/users/"+finnID+"/sessions/"+sid, admin, nil), http.StatusNoContent)
		run(t, ctx, "revoke", clickJS(`#sessions-table button.danger`), clickJS(`.confirm .confirm-yes`),
			until(`(document.getElementById('user-notice') || {}).textContent === 'Session revoked.'`),
			until(`!document.querySelector('#sessions-table button.danger') && /No live sessions/.test(document.getElementById('sessions-table').textContent)`))
		if shown(t, ctx, "main .notice.error") || shown(t, ctx, "main .notice.meanwhile") {
			t.Errorf("after revoking an ended session the page says %q", evalString(t, ctx, `document.querySelector('main .notice.error, main .notice.meanwhile').innerText`))
		}
	})
	noPolicyBreach(t, ctx)
}

// confirmMeanwhile clicks the button sel, then Yes, and waits for the page
// to say that the item changed meanwhile; it answers what the page says.
func confirmMeanwhile(t *testing.T, ctx context.Context, what, sel string) string {
	t.Helper()
	run(t, ctx, what, clickJS(sel), clickJS(`.confirm .confirm-yes`), until(`!!document.querySelector('main .notice.meanwhile')`))
	if shown(t, ctx, "main .notice.error") {
		t.Errorf("%s: the page shows an error: %q", what, evalString(t, ctx, `document.querySelector('main .notice.error').innerText`))
	}
	return evalString(t, ctx, `document.querySelector('main .notice.meanwhile').innerText`)
}

// TestConsoleSaysWhatIsNoLongerYours: an action a tenant admin's page still
// offers on an item that changed meanwhile so that it is no longer theirs
// to take — a user given a role in a tenant they do not administer, a key
// of theirs rotated (and so owned) by another admin — is refused 403; the
// page reloads the item, says so in words, and offers the action no more
// (outside check 15r2: "Insufficient permissions", with Deactivate, Reset
// MFA and every session's Revoke still on screen).
func TestConsoleSaysWhatIsNoLongerYours(t *testing.T) {
	const pw = "correct horse battery"
	in := Start(t)
	admin := in.AdminToken()
	// ann makes a key of acme and globex while she administers both, then
	// is a viewer in globex: her key is hers to manage as its owner.
	annID := in.CreateUser(admin, "ann", pw, map[string]string{"acme": "admin", "globex": "admin"})
	erinID := in.CreateUser(admin, "erin", pw, map[string]string{"acme": "viewer"})
	in.Login("erin", pw) // a session of erin's, for the page to list
	key := in.Do("POST", "/api/v1/api-keys", in.Login("ann", pw).String("token"),
		map[string]any{"name": "ann's", "tenants": []string{"acme", "globex"}, "permissions": []string{"nodes:read"}})
	expectStatus(t, "ann's key", key, http.StatusCreated)
	expectStatus(t, "ann a viewer in globex",
		in.Do("PUT", "/api/v1/users/"+annID+"/tenants/globex", admin, map[string]string{"role": "viewer"}), http.StatusOK)

	ctx := consoleChrome(t)
	consoleSignIn(t, ctx, in.URL, "ann", pw)
	grantGlobex := func(t *testing.T) {
		t.Helper()
		expectStatus(t, "give erin a role in globex behind the page's back",
			in.Do("PUT", "/api/v1/users/"+erinID+"/tenants/globex", admin, map[string]string{"role": "viewer"}), http.StatusOK)
	}
	openErin := func(t *testing.T) {
		t.Helper()
		run(t, ctx, "erin", chromedp.Evaluate[chromedp.Void](`location.hash = '#/users'`), until(`!!document.querySelector('#users-table')`),
			chromedp.Evaluate[chromedp.Void](`location.hash = '#/users/`+erinID+`'`),
			until(`!!document.getElementById('deactivate') && !!document.querySelector('#sessions-table button.danger')`))
	}
	// reloaded: the page shows the note instead of the account's actions
	// and does not list erin's sessions.
	reloaded := `!!document.getElementById('account-note') && !document.getElementById('deactivate') && !document.getElementById('reset-mfa')
		&& !document.getElementById('sessions-table') && !!document.getElementById('sessions-note')`
	saysNotYours := func(t *testing.T, said string) {
		t.Helper()
		if !strings.Contains(said, "This user changed meanwhile") || !strings.Contains(said, "no longer yours to do") {
			t.Errorf("the page says %q", said)
		}
	}
	erinLive := func(t *testing.T) {
		t.Helper()
		u := in.Do("GET", "/api/v1/users/"+erinID, admin, nil)
		s := in.Do("GET", "/api/v1/users/"+erinID+"/sessions", admin, nil)
		if sessions, _ := s.JSON["sessions"].([]any); u.JSON["active"] != true || len(sessions) != 1 {
			t.Errorf("erin was changed by a refused action: %s %s", u.Raw, s.Raw)
		}
	}

	t.Run("deactivate a user given a role in another tenant", func(t *testing.T) {
		openErin(t)
		grantGlobex(t)
		saysNotYours(t, confirmMeanwhile(t, ctx, "deactivate", "#deactivate"))
		run(t, ctx, "the user reloaded", until(reloaded))
		erinLive(t)
	})

	t.Run("revoke a session of a user given a role in another tenant", func(t *testing.T) {
		expectStatus(t, "erin back in acme alone", in.Do("DELETE", "/api/v1/users/"+erinID+"/tenants/globex", admin, nil), http.StatusOK)
		openErin(t)
		grantGlobex(t)
		saysNotYours(t, confirmMeanwhile(t, ctx, "revoke", "#sessions-table button.danger"))
		run(t, ctx, "the user reloaded", until(reloaded))
		erinLive(t)
	})

	t.Run("rotate a key rotated by another admin", func(t *testing.T) {
		row := fmt.Sprintf(`#keys-table tr[data-key=%q]`, key.String("id"))
		run(t, ctx, "keys", chromedp.Click(`#nav-keys`), until(`!!document.querySelector('`+row+` button.rotate')`))
		expectStatus(t, "rotate it behind the page's back", in.Do("POST", "/api/v1/api-keys/"+key.String("id")+"/rotate", admin, nil), http.StatusOK)
		if said := confirmMeanwhile(t, ctx, "rotate", row+" button.rotate"); !strings.Contains(said, "This key changed meanwhile") || !strings.Contains(said, "no longer yours to manage") {
			t.Errorf("after rotating a key another admin rotated the page says %q", said)
		}
		// The list is read again: the key, now the other admin's, is listed
		// with nothing to do.
		run(t, ctx, "the list reloaded", until(`!!document.querySelector('`+row+`') && !document.querySelector('`+row+` button')`))
		if shown(t, ctx, "#key-secret") {
			t.Error("a secret is shown after a refused rotation")
		}
		// A new key is what happened next: the notice of the refusal does
		// not stay beside its secret (outside check 17l).
		run(t, ctx, "a new key", chromedp.Click(`#new-key`), chromedp.WaitVisible(`#create-key`),
			until(`!document.querySelector('main .notice.meanwhile')`),
			fill(`#key-name`, "fresh"), fill(`#key-tenants`, "acme"), chromedp.Click(`#create-key-submit`), chromedp.WaitVisible(`#key-secret-value`))
		if shown(t, ctx, "main .notice.meanwhile") || shown(t, ctx, "main .notice.error") {
			t.Error("the refused rotation's notice stays beside the new key's secret")
		}
	})
	noPolicyBreach(t, ctx)
}
