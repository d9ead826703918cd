package tests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"github.com/infracast/auth/domain"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNoSecretInEventsOrLogs runs a full session of everything that handles a
// secret — passwords (right, wrong, and typed into the username field),
// password changes, access and refresh tokens with rotation, API keys created
// and rotated, an SSO client secret — with debug logging on, then reads every
// event in the stream and every log line and finds none of them, nor any
// argon2id hash, nor the deployment's keys.
func TestNoSecretInEventsOrLogs(t *testing.T) {
	logs := &LogBuffer{}
	in := StartLogged(t, logs, WithRotation())
	secrets := []string{AdminPassword}
	adminLogin := in.Login(AdminUser, AdminPassword)
	admin := adminLogin.String("token")
	secrets = append(secrets, admin, adminLogin.String("refresh_token"))

	const userPw, newPw = "Alice-Password-1", "Alice-Password-2"
	secrets = append(secrets, userPw, newPw)
	uid := in.CreateUser(admin, "alice", userPw, map[string]string{"prod": "admin"})
	l := in.Login("alice", userPw)
	secrets = append(secrets, l.String("token"), l.String("refresh_token"))
	r := in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": l.String("refresh_token")})
	if r.Status != 200 || r.String("refresh_token") == "" {
		t.Fatalf("refresh with rotation: %d %s", r.Status, r.Raw)
	}
	secrets = append(secrets, r.String("token"), r.String("refresh_token"))
	// A spent refresh token presented again (reuse detection) is logged nowhere either.
	in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": l.String("refresh_token")})

	// Wrong passwords, and a password typed into the username field.
	const wrongPw, pwAsName = "Typed-Wrong-Password-1", "Typed-Into-Username-Field-9"
	secrets = append(secrets, wrongPw, pwAsName)
	in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "alice", "password": wrongPw})
	in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": pwAsName, "password": "x"})

	alice := in.Login("alice", userPw)
	secrets = append(secrets, alice.String("token"), alice.String("refresh_token"))
	if r := in.Do("POST", "/api/v1/users/"+uid+"/password", alice.String("token"),
		map[string]string{"password": newPw, "current_password": userPw}); r.Status != 204 {
		t.Fatalf("password change: %d %s", r.Status, r.Raw)
	}

	k := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{
		"name": "ci", "tenants": []string{"prod"}, "permissions": []string{"nodes:read"},
	})
	if k.Status != 201 {
		t.Fatalf("create key: %d %s", k.Status, k.Raw)
	}
	secrets = append(secrets, k.String("key"))
	in.Do("GET", "/api/v1/tenants/prod/nodes", k.String("key"), nil)
	rot := in.Do("POST", "/api/v1/api-keys/"+k.String("id")+"/rotate", admin, nil)
	secrets = append(secrets, rot.String("key"))
	in.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": rot.String("key")})
	in.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": alice.String("token")})

	const ssoSecret = "sso-client-secret-never-in-events-7f3a"
	secrets = append(secrets, ssoSecret)
	if r := in.Do("POST", "/api/v1/admin/sso/okta", admin, map[string]string{
		"domain": "your-company.okta.com", "client_id": "0oaxxxxxxxxxxxxx", "client_secret": ssoSecret,
	}); r.Status != 201 && r.Status != 200 {
		t.Fatalf("configure okta: %d %s", r.Status, r.Raw)
	}

	for _, f := range []string{"master.key", "jwt-signing.key"} {
		b, err := os.ReadFile(filepath.Join(in.Config.DataDir, f))
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, strings.TrimSpace(string(b)))
	}

	// Every event in the stream, headers included.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := in.Svc.Store.JetStream().Stream(ctx, "INFRACAST_AUTH")
	if err != nil {
		t.Fatal(err)
	}
	head, _ := in.Svc.Store.Head(ctx)
	var all strings.Builder
	for seq := uint64(1); seq <= head; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("event %d: %v", seq, err)
		}
		all.WriteString(m.Subject + " " + string(m.Data) + " ")
		for h, vs := range m.Header {
			all.WriteString(h + ":" + strings.Join(vs, ",") + " ")
		}
		all.WriteString("\n")
	}
	stored, logged := all.String(), logs.String()
	if head < 15 || strings.Count(logged, "\n") < 15 {
		t.Fatalf("too little to audit: %d events, %d log lines", head, strings.Count(logged, "\n"))
	}
	for _, where := range []struct{ name, text string }{{"event stream", stored}, {"logs", logged}} {
		for _, s := range secrets {
			if s == "" {
				t.Fatal("a secret of the run is empty: the flow above failed")
			}
			if strings.Contains(where.text, s) {
				t.Errorf("the %s contain a secret: %.12s…", where.name, s)
			}
		}
		if strings.Contains(where.text, "$argon2id$") {
			t.Errorf("the %s contain a password hash", where.name)
		}
	}
}

// TestUnknownNameIsNotAPlainHash: a name that matches no user — sometimes a
// password typed into the wrong box — is recorded only as the login
// aggregate's ID, which must not be a plain hash of it: a re-check reversed
// the SHA-256 one with a dictionary. The keyed one is the same on every
// replica of a deployment (the lockout of an unknown name holds across them).
func TestUnknownNameIsNotAPlainHash(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 1)
	a, b := d.StartReplica(t), d.StartReplica(t)
	const typed = "Winter2026!"
	for _, in := range []*Instance{a, b} {
		if r := login(in, typed, "whatever-password"); r.Status != 401 {
			t.Fatalf("login as %q: %d %s", typed, r.Status, r.Raw)
		}
	}
	plain := sha256.Sum256([]byte(strings.ToLower(typed)))
	ids := map[string]bool{}
	for _, e := range storedEnvelopes(t, a) {
		if e.Type == domain.TypeUserLoginFailed {
			ids[e.AggregateID] = true
		}
	}
	if len(ids) != 1 {
		t.Fatalf("the two failures of one unknown name are on %d login aggregates, want 1: %v", len(ids), ids)
	}
	for id := range ids {
		if id == hex.EncodeToString(plain[:16]) || strings.Contains(id, typed) {
			t.Fatalf("the unknown name's aggregate ID %s is a plain hash of it", id)
		}
	}
}
