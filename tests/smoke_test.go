package tests

import "testing"

func TestSmokeLoginAndMe(t *testing.T) {
	in := Start(t)
	tok := in.AdminToken()
	r := in.Do("GET", "/api/v1/auth/me", tok, nil)
	if r.Status != 200 || r.String("username") != AdminUser {
		t.Fatalf("me: %d %s", r.Status, r.Raw)
	}
}
