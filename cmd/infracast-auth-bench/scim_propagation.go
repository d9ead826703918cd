package main

import (
	"context"

	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/http/service"
)

// caseSCIMPropagation is casePropagation with a SCIM deprovisioning as the
// revocation (issue 17), on the same rig and rounds (propagation.go): two
// instances on one NATS (A embeds it, B connects to it); a user provisioned
// through SCIM signs in on A, B accepts the token; the identity provider
// deprovisions the user on A (PATCH /scim/v2/Users/{id} with active:false,
// as Okta and Entra ID send it); the figure is the time from A's answer to
// B's first 401 on GET /api/v1/auth/me, sent as soon as B's projection
// runner has applied the deactivation. The user is activated again for the
// next round. The baseline is the same raw JetStream propagation as
// propagation's.
func caseSCIMPropagation(ctx context.Context, b *bench) ([]result, error) {
	// Passwords at a test cost: a round signs in once, and what is measured
	// is the deactivation's way to B, not argon2id.
	rig, err := startPropagationRig(ctx, "BENCH_SCIM_PROPAGATION", "bench.scimprop", func(c *service.Config) {
		c.Hash = commands.HashParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}
	})
	if err != nil {
		return nil, err
	}
	defer rig.close()
	a, admin := rig.a, rig.admin

	// An SSO provider (its IdP need not answer), a SCIM connection, and a
	// user provisioned through it with a password.
	if err := a.call("POST", "/api/v1/admin/sso/okta", admin.Token, map[string]any{
		"domain": "bench.okta.com", "client_id": "bench", "client_secret": "bench-secret", "issuer": "http://127.0.0.1:1/oauth2/default",
	}, nil, 201); err != nil {
		return nil, err
	}
	var conn struct {
		Token string `json:"token"`
	}
	if err := a.call("POST", "/api/v1/admin/scim", admin.Token, map[string]any{"provider": "okta", "tenants": []string{"prod"}}, &conn, 201); err != nil {
		return nil, err
	}
	const leaver, leaverPassword = "leaver@example.com", "bench-leaver-passphrase"
	var user struct {
		ID string `json:"id"`
	}
	if err := a.call("POST", "/scim/v2/Users", conn.Token, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": leaver, "externalId": "00ubench", "password": leaverPassword,
	}, &user, 201); err != nil {
		return nil, err
	}
	setActive := func(active bool) error {
		return a.call("PATCH", "/scim/v2/Users/"+user.ID, conn.Token, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []map[string]any{{"op": "replace", "value": map[string]any{"active": active}}},
		}, nil, 200)
	}

	return rig.measure(ctx, b, "scim_propagation", "deprovisioning", propagationRound{
		// The user signs in on A.
		issue: func() (string, error) {
			t, err := a.login(leaver, leaverPassword)
			return t.Token, err
		},
		// The identity provider deprovisions the user on A.
		revoke: func(string) error { return setActive(false) },
		reset:  func() error { return setActive(true) },
	})
}
