package tests

import (
	"net/http"
	"testing"
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
