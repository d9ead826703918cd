package tests

import (
	"net/http"
	"testing"

	"github.com/infracast/auth/domain"
)

// TestRotationsAtOnceShowOnlyTheSecretInForce: six rotations of one API key
// at once gave six secrets, only the last of which worked; now a rotation
// that overlaps another answers 409, and the last answer's secret works.
func TestRotationsAtOnceShowOnlyTheSecretInForce(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	created := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "deploy", "tenants": []string{"prod"}, "permissions": []string{"nodes:read"}})
	expectStatus(t, "create a key", created, http.StatusCreated)
	id := created.String("id")
	untilOverlap(t, "key rotations", func() bool {
		reqs := make([]request, 6)
		for i := range reqs {
			reqs[i] = request{Method: "POST", Path: "/api/v1/api-keys/" + id + "/rotate", Token: admin}
		}
		overlapped := false
		var shown []string
		for _, r := range atOnce(t, in, reqs...) {
			switch {
			case r.Status == http.StatusOK && r.String("key") != "":
				shown = append(shown, r.String("key"))
			case conflictSaying(r, "rotated by another request"):
				overlapped = true
			default:
				t.Fatalf("a rotation at once: %d %s", r.Status, r.Raw)
			}
		}
		// The answers with a secret rotated one after the other: exactly
		// one secret works, the last one's.
		working := 0
		for _, key := range shown {
			if me(t, in, key).Status == http.StatusOK {
				working++
			}
		}
		if working != 1 {
			t.Fatalf("%d of the %d secrets shown work, want 1", working, len(shown))
		}
		return overlapped
	})
}

// TestReplacementInFlightIsRefused: while a request replaces a secret — a
// key's rotation, a SCIM token's, a regeneration of recovery codes — another
// request to replace it is refused 409 and changes nothing, whenever it
// arrives before the first one's answer is made: the handlers hold the
// claim (commands.Service.Replacing) from before they replace anything
// until they answer. Here the claim is held as a request in
// flight would hold it. Before, the claim covered only the command, and a
// request arriving in the few hundred microseconds between its end and the
// answer replaced the secret that answer showed (re-check 15r2: 7 of 30
// pairs of rotations sent 1.7 ms apart).
func TestReplacementInFlightIsRefused(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	created := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "deploy", "tenants": []string{"prod"}, "permissions": []string{"nodes:read"}})
	expectStatus(t, "create a key", created, http.StatusCreated)
	keyID := created.String("id")
	connID, _ := newConnection(t, in, admin, admin, []string{"prod"})
	in.CreateUser(admin, "rita", "rita-password-12", map[string]string{"prod": "viewer"})
	rita := in.Login("rita", "rita-password-12").String("token")
	enrollTOTP(t, in, rita)
	ritaID := me(t, in, rita).String("id")

	for _, c := range []struct {
		what, aggregate, id, path, token, saying string
	}{
		{"a key's rotation", domain.AggregateAPIKey, keyID, "/api/v1/api-keys/" + keyID + "/rotate", admin, "rotated by another request"},
		{"a SCIM token's rotation", domain.AggregateSCIM, connID, "/api/v1/admin/scim/" + connID + "/rotate", admin, "rotated by another request"},
		{"a regeneration of recovery codes", domain.AggregateMFA, ritaID, "/api/v1/auth/mfa/recovery-codes", rita, "replaced by another request"},
	} {
		release, ok := in.Svc.Commands.Replacing(c.aggregate, c.id)
		if !ok {
			t.Fatalf("%s: the claim is held already", c.what)
		}
		before := len(storedEvents(t, in.Svc))
		r := in.Do("POST", c.path, c.token, map[string]any{})
		if !conflictSaying(r, c.saying) {
			release()
			t.Fatalf("%s while another is in flight: %d %s", c.what, r.Status, r.Raw)
		}
		if after := len(storedEvents(t, in.Svc)); after != before {
			release()
			t.Fatalf("%s refused, yet %d events were appended", c.what, after-before)
		}
		release()
		expectStatus(t, c.what+" once the other answered", in.Do("POST", c.path, c.token, map[string]any{}), http.StatusOK)
	}
}
