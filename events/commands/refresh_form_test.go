package commands_test

import (
	"context"
	"testing"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// TestRefreshTokensHaveTheirForm: a login's refresh token and the
// successor a rotation hands out are of the form LooksLikeRefreshToken
// knows — the credential check answers "unknown" rather than "not issued
// by us" for such a token it no longer finds (its session forgotten) — and
// other strings are not.
func TestRefreshTokensHaveTheirForm(t *testing.T) {
	s := &stream{}
	_, svc, _ := replicaWith(t, s, s, func(c *commands.Config) {
		c.RefreshRotation, c.RefreshSuccessorKey = true, make([]byte, 32)
	})
	limitUser(t, svc, "heidi")
	res, err := svc.Login(context.Background(), events.Meta{}, commands.LoginInput{Username: "heidi", Password: "heidi-passphrase-long"})
	if err != nil {
		t.Fatal(err)
	}
	next, err := svc.Refresh(context.Background(), events.Meta{}, res.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	for what, tok := range map[string]string{"a login's": res.RefreshToken, "a rotation's": next.NewRefreshToken} {
		if !commands.LooksLikeRefreshToken(tok) {
			t.Errorf("%s refresh token is not of the form", what)
		}
	}
	for _, s := range []string{"", "dGhpcyBpcyBhIHJlZnJlc2ggdG9rZW4", res.RefreshToken + "A", res.RefreshToken[:42] + "=", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"} {
		if commands.LooksLikeRefreshToken(s) {
			t.Errorf("%q is taken for a refresh token", s)
		}
	}
}
