package tests

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/infracast/auth/domain"
)

// POST /api/v1/audit/credential-check (issue 16), end to end: every reason,
// at the instants around the event that made it, from the events' own
// times as the audit API gives them.

const credCheckPath = "/api/v1/audit/credential-check"

// credCheck asks whether the credential in body was usable (at body["at"]).
func credCheck(t testing.TB, in *Instance, token string, body map[string]string) Response {
	t.Helper()
	r := in.Do("POST", credCheckPath, token, body)
	expectStatus(t, "credential check", r, http.StatusOK)
	for _, v := range []string{body["token"], body["key"]} {
		if v != "" && strings.Contains(string(r.Raw), v) {
			t.Fatalf("the answer holds the credential: %s", r.Raw)
		}
	}
	notes, _ := r.JSON["notes"].([]any)
	hasIP := false
	for _, n := range notes {
		hasIP = hasIP || strings.Contains(n.(string), "IP allowlist")
	}
	if !hasIP {
		t.Fatalf("no note on the IP allowlist: %s", r.Raw)
	}
	return r
}

// expectVerdict checks a verdict: usable, or not for reason since ev (nil:
// since a bare time, sinceTime when set).
func expectVerdict(t testing.TB, what string, r Response, kind string, usable bool, reason string, ev map[string]any, sinceTime string) {
	t.Helper()
	if r.String("kind") != kind || r.JSON["usable"] != usable || r.String("reason") != reason {
		t.Fatalf("%s: got %s; want kind %s usable %v reason %q", what, r.Raw, kind, usable, reason)
	}
	since, _ := r.JSON["since"].(map[string]any)
	switch {
	case ev != nil:
		actor, _ := since["actor"].(map[string]any)
		actorID, _ := actor["id"].(string)
		if since == nil || uint64(since["sequence"].(float64)) != evSeq(ev) || since["time"] != ev["time"] || since["type"] != ev["type"] || actorID != evActor(ev) {
			t.Fatalf("%s: since %v, want the event %v", what, since, ev)
		}
	case sinceTime != "":
		if since == nil || since["time"] != sinceTime || since["sequence"] != nil {
			t.Fatalf("%s: since %v, want %s", what, since, sinceTime)
		}
	case since != nil:
		t.Fatalf("%s: since %v, want none", what, since)
	}
}

func before(ev map[string]any, t testing.TB) string { return ts(evTime(t, ev).Add(-time.Nanosecond)) }

// TestCredentialCheckReasons: each reason a token, a refresh token or an API
// key stops being usable, at the event's instant and not a nanosecond
// before.
func TestCredentialCheckReasons(t *testing.T) {
	t.Parallel()
	in := Start(t, WithRotation())
	admin := in.AdminToken()
	step := func() { in.Clock.Advance(time.Second) }
	const access, refreshTok, apiKey = "access_token", "refresh_token", "api_key"
	step()
	annID := in.CreateUser(admin, "ann", "ann-password-12", map[string]string{"acme": "viewer"})
	step()

	// Usable, and not yet issued.
	l1 := in.Login("ann", "ann-password-12")
	a1, r1 := l1.String("token"), l1.String("refresh_token")
	sid1 := sessionOf(t, in, r1)
	r := credCheck(t, in, admin, map[string]string{"token": a1})
	expectVerdict(t, "fresh access token", r, access, true, "", nil, "")
	if sub := r.JSON["subject"].(map[string]any); sub["id"] != annID || sub["type"] != "user" || r.String("session_id") != sid1 || r.String("at") != ts(in.Clock.Now()) {
		t.Fatalf("fresh access token: %s", r.Raw)
	}
	issued, err := time.Parse(time.RFC3339Nano, r.String("issued_at"))
	if err != nil {
		t.Fatalf("issued_at: %s", r.Raw)
	}
	// Before its issue by more than the 30 s leeway on iat; within it,
	// usable, as enforcement judges it (an outside check, 19b).
	expectVerdict(t, "before its issue", credCheck(t, in, admin, map[string]string{"token": a1, "at": ts(issued.Add(-31 * time.Second))}), access, false, "not_yet_issued", nil, "")
	expectVerdict(t, "before its issue, within the leeway", credCheck(t, in, admin, map[string]string{"token": a1, "at": ts(issued.Add(-time.Second))}), access, true, "", nil, "")
	expectVerdict(t, "fresh refresh token", credCheck(t, in, admin, map[string]string{"token": r1}), refreshTok, true, "", nil, "")
	started := lastEventOf(t, in, admin, "session.started", sid1)
	expectVerdict(t, "refresh token before its session", credCheck(t, in, admin, map[string]string{"token": r1, "at": before(started, t)}), refreshTok, false, "not_yet_issued", nil, "")
	expectVerdict(t, "refresh token at its session's start", credCheck(t, in, admin, map[string]string{"token": r1, "at": ts(evTime(t, started))}), refreshTok, true, "", nil, "")
	step()

	// An access token revoked by its ID: the session and its refresh token go on.
	expectStatus(t, "revoke a1", in.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": a1}), 200)
	tokRevoked := lastEventOf(t, in, admin, "session.token_revoked", sid1)
	expectVerdict(t, "revoked access token", credCheck(t, in, admin, map[string]string{"token": a1}), access, false, "revoked", tokRevoked, "")
	expectVerdict(t, "just before its revocation", credCheck(t, in, admin, map[string]string{"token": a1, "at": before(tokRevoked, t)}), access, true, "", nil, "")
	expectVerdict(t, "its refresh token", credCheck(t, in, admin, map[string]string{"token": r1}), refreshTok, true, "", nil, "")
	step()

	// A refresh token spent by a refresh (rotation on).
	rr := refresh(t, in, r1)
	expectStatus(t, "refresh", rr, 200)
	a2, r2 := rr.String("token"), rr.String("refresh_token")
	refreshed := lastEventOf(t, in, admin, "session.refreshed", sid1)
	expectVerdict(t, "spent refresh token", credCheck(t, in, admin, map[string]string{"token": r1}), refreshTok, false, "spent", refreshed, "")
	expectVerdict(t, "just before it was spent", credCheck(t, in, admin, map[string]string{"token": r1, "at": before(refreshed, t)}), refreshTok, true, "", nil, "")
	expectVerdict(t, "its successor", credCheck(t, in, admin, map[string]string{"token": r2}), refreshTok, true, "", nil, "")
	expectVerdict(t, "its successor before the refresh", credCheck(t, in, admin, map[string]string{"token": r2, "at": before(refreshed, t)}), refreshTok, false, "not_yet_issued", nil, "")
	step()

	// The session revoked (logout): its tokens and refresh token.
	expectStatus(t, "logout", in.Do("POST", "/api/v1/auth/logout", a2, nil), 204)
	sessRevoked := lastEventOf(t, in, admin, "session.revoked", sid1)
	expectVerdict(t, "refresh token of a closed session", credCheck(t, in, admin, map[string]string{"token": r2}), refreshTok, false, "revoked", sessRevoked, "")
	expectVerdict(t, "access token of a closed session", credCheck(t, in, admin, map[string]string{"token": a2}), access, false, "revoked", sessRevoked, "")
	expectVerdict(t, "just before the logout", credCheck(t, in, admin, map[string]string{"token": a2, "at": before(sessRevoked, t)}), access, true, "", nil, "")
	// The earliest reason wins: a1 was revoked before its session was.
	expectVerdict(t, "revoked, then its session", credCheck(t, in, admin, map[string]string{"token": a1}), access, false, "revoked", tokRevoked, "")
	step()

	// A password change cuts the sessions off.
	l3 := in.Login("ann", "ann-password-12")
	a3, r3 := l3.String("token"), l3.String("refresh_token")
	step()
	expectStatus(t, "new password", in.Do("POST", "/api/v1/users/"+annID+"/password", admin, map[string]string{"password": "ann-password-34"}), 204)
	pwChanged := lastEventOf(t, in, admin, "user.password_changed", annID)
	expectVerdict(t, "token after a password change", credCheck(t, in, admin, map[string]string{"token": a3}), access, false, "password_changed", pwChanged, "")
	expectVerdict(t, "refresh token after a password change", credCheck(t, in, admin, map[string]string{"token": r3}), refreshTok, false, "password_changed", pwChanged, "")
	expectVerdict(t, "just before the change", credCheck(t, in, admin, map[string]string{"token": r3, "at": before(pwChanged, t)}), refreshTok, true, "", nil, "")
	step()

	// A deactivated user.
	l4 := in.Login("ann", "ann-password-34")
	a4, r4 := l4.String("token"), l4.String("refresh_token")
	step()
	expectStatus(t, "deactivate ann", in.Do("POST", "/api/v1/users/"+annID+"/deactivate", admin, nil), 200)
	deactivated := lastEventOf(t, in, admin, "user.deactivated", annID)
	expectVerdict(t, "token of a deactivated user", credCheck(t, in, admin, map[string]string{"token": a4}), access, false, "user_deactivated", deactivated, "")
	expectVerdict(t, "refresh token of a deactivated user", credCheck(t, in, admin, map[string]string{"token": r4}), refreshTok, false, "user_deactivated", deactivated, "")
	expectVerdict(t, "just before", credCheck(t, in, admin, map[string]string{"token": a4, "at": before(deactivated, t)}), access, true, "", nil, "")
	// Older credentials keep their own, earlier reason.
	expectVerdict(t, "a3 still for the password", credCheck(t, in, admin, map[string]string{"token": a3}), access, false, "password_changed", pwChanged, "")
	step()

	// A tenant-scoped token whose user loses the role there.
	timID := in.CreateUser(admin, "tim", "tim-password-12", map[string]string{"acme": "editor", "beta": "viewer"})
	scoped := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "tim", "password": "tim-password-12", "tenant": "acme"})
	expectStatus(t, "scoped login", scoped, 200)
	a5 := scoped.String("token")
	step()
	expectStatus(t, "tim out of acme", in.Do("DELETE", "/api/v1/users/"+timID+"/tenants/acme", admin, nil), 200)
	roleRevoked := lastEventOf(t, in, admin, "user.role_revoked", timID)
	r = credCheck(t, in, admin, map[string]string{"token": a5})
	expectVerdict(t, "scoped token without its role", r, access, false, "role_revoked", roleRevoked, "")
	if r.String("tenant") != "acme" {
		t.Fatalf("scoped token's tenant: %s", r.Raw)
	}
	expectVerdict(t, "just before", credCheck(t, in, admin, map[string]string{"token": a5, "at": before(roleRevoked, t)}), access, true, "", nil, "")
	unscoped := in.Login("tim", "tim-password-12").String("token")
	expectVerdict(t, "an unscoped token of the same user", credCheck(t, in, admin, map[string]string{"token": unscoped}), access, true, "", nil, "")
	// Its refresh token too: the service refuses to refresh it while tim
	// holds no role in acme (outside check 15h: answered usable).
	r5 := scoped.String("refresh_token")
	expectError(t, "refresh of the scoped session without its role", in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": r5}), 401, "UNAUTHORIZED")
	expectVerdict(t, "scoped refresh token without its role", credCheck(t, in, admin, map[string]string{"token": r5}), refreshTok, false, "role_revoked", roleRevoked, "")
	expectVerdict(t, "scoped refresh token just before", credCheck(t, in, admin, map[string]string{"token": r5, "at": before(roleRevoked, t)}), refreshTok, true, "", nil, "")
	step()
	// Deactivated after losing the role: the earlier reason stands (15h:
	// the deactivation answered, since the role was judged only for an
	// active user).
	expectStatus(t, "deactivate tim", in.Do("POST", "/api/v1/users/"+timID+"/deactivate", admin, nil), 200)
	expectVerdict(t, "scoped token, role revoked then user deactivated", credCheck(t, in, admin, map[string]string{"token": a5}), access, false, "role_revoked", roleRevoked, "")
	expectVerdict(t, "scoped refresh token, role revoked then user deactivated", credCheck(t, in, admin, map[string]string{"token": r5}), refreshTok, false, "role_revoked", roleRevoked, "")
	step()
	// The role granted again while tim is deactivated: he holds it, and the
	// deactivation is the reason (re-check 15r4: role_revoked).
	expectStatus(t, "tim back in acme", in.Do("PUT", "/api/v1/users/"+timID+"/tenants/acme", admin, map[string]string{"role": "editor"}), 200)
	expectVerdict(t, "scoped token, role granted again, user deactivated", credCheck(t, in, admin, map[string]string{"token": a5}), access, false, "user_deactivated", lastEventOf(t, in, admin, "user.deactivated", timID), "")
	expectStatus(t, "activate tim", in.Do("POST", "/api/v1/users/"+timID+"/activate", admin, nil), 200)
	step()

	// API keys: rotated, revoked, owner deactivated, not yet issued.
	kimID := in.CreateUser(admin, "kim", "kim-password-12", map[string]string{"acme": "admin"})
	kim := in.Login("kim", "kim-password-12").String("token")
	newKey := func(token, name string, extra map[string]any) (string, string) {
		t.Helper()
		body := map[string]any{"name": name, "tenants": []string{"acme"}, "permissions": []string{"nodes:read"}}
		for k, v := range extra {
			body[k] = v
		}
		r := in.Do("POST", "/api/v1/api-keys", token, body)
		expectStatus(t, "key "+name, r, 201)
		return r.String("id"), r.String("key")
	}
	k1ID, k1 := newKey(kim, "k1", nil)
	created := lastEventOf(t, in, admin, "apikey.created", k1ID)
	r = credCheck(t, in, admin, map[string]string{"key": k1})
	expectVerdict(t, "fresh key", r, apiKey, true, "", nil, "")
	if sub := r.JSON["subject"].(map[string]any); sub["type"] != "apikey" || sub["id"] != k1ID {
		t.Fatalf("key subject: %s", r.Raw)
	}
	expectVerdict(t, "key before its creation", credCheck(t, in, admin, map[string]string{"key": k1, "at": before(created, t)}), apiKey, false, "not_yet_issued", nil, "")
	step()
	rot := in.Do("POST", "/api/v1/api-keys/"+k1ID+"/rotate", kim, nil)
	expectStatus(t, "rotate", rot, 200)
	k1b := rot.String("key")
	rotated := lastEventOf(t, in, admin, "apikey.rotated", k1ID)
	expectVerdict(t, "rotated-out secret", credCheck(t, in, admin, map[string]string{"key": k1}), apiKey, false, "rotated", rotated, "")
	expectVerdict(t, "rotated-out secret, before", credCheck(t, in, admin, map[string]string{"key": k1, "at": before(rotated, t)}), apiKey, true, "", nil, "")
	expectVerdict(t, "new secret", credCheck(t, in, admin, map[string]string{"token": k1b}), apiKey, true, "", nil, "")
	expectVerdict(t, "new secret before the rotation", credCheck(t, in, admin, map[string]string{"key": k1b, "at": before(rotated, t)}), apiKey, false, "not_yet_issued", nil, "")
	step()
	k2ID, k2 := newKey(kim, "k2", nil)
	step()
	expectStatus(t, "revoke k2", in.Do("DELETE", "/api/v1/api-keys/"+k2ID, kim, nil), 204)
	keyRevoked := lastEventOf(t, in, admin, "apikey.revoked", k2ID)
	expectVerdict(t, "revoked key", credCheck(t, in, admin, map[string]string{"key": k2}), apiKey, false, "revoked", keyRevoked, "")
	expectVerdict(t, "revoked key, before", credCheck(t, in, admin, map[string]string{"key": k2, "at": before(keyRevoked, t)}), apiKey, true, "", nil, "")
	step()
	expectStatus(t, "deactivate kim", in.Do("POST", "/api/v1/users/"+kimID+"/deactivate", admin, nil), 200)
	kimGone := lastEventOf(t, in, admin, "user.deactivated", kimID)
	expectVerdict(t, "key of a deactivated owner", credCheck(t, in, admin, map[string]string{"key": k1b}), apiKey, false, "owner_deactivated", kimGone, "")
	expectVerdict(t, "key of a deactivated owner, before", credCheck(t, in, admin, map[string]string{"key": k1b, "at": before(kimGone, t)}), apiKey, true, "", nil, "")
	step()

	// Not ours: a made-up key, a malformed one, a token signed elsewhere, garbage.
	var random [32]byte
	if _, err := rand.Read(random[:]); err != nil {
		t.Fatal(err)
	}
	foreign := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": annID, "sid": sid1, "jti": "tok-x", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
	foreign.Header["typ"], foreign.Header["kid"] = "at+jwt", "not-ours"
	signed, err := foreign.SignedString(random[:])
	if err != nil {
		t.Fatal(err)
	}
	for what, body := range map[string]map[string]string{
		"a key never issued":       {"key": domain.FormatAPIKey(in.Config.KeyEnv(), random)},
		"a malformed key":          {"key": "ic_test_" + strings.Repeat("a", 49)},
		"a key of another env":     {"key": domain.FormatAPIKey("live", random)},
		"not a key at all":         {"key": "hello"},
		"a token signed elsewhere": {"token": signed},
		"a JWT-shaped string":      {"token": "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"},
		"an unknown refresh token": {"token": "dGhpcyBpcyBhIHJlZnJlc2ggdG9rZW4"},
	} {
		r := credCheck(t, in, admin, body)
		if r.JSON["usable"] != false || r.String("reason") != "not_issued_by_us" || r.JSON["since"] != nil || r.JSON["subject"] != nil {
			t.Fatalf("%s: %s", what, r.Raw)
		}
	}
	// A SCIM connection's token is ours, but no caller's credential: not
	// "not issued by us" (it was), a 400 that says what the check covers.
	for _, field := range []string{"token", "key"} {
		r := in.Do("POST", "/api/v1/audit/credential-check", admin, map[string]string{field: domain.FormatSCIMToken(random)})
		expectError(t, "a SCIM token as "+field, r, 400, "VALIDATION_ERROR", "SCIM")
	}
	// So is an MFA token (a login's second step): it was answered as an
	// unknown refresh token, "not issued by us" (an outside check, 13d).
	in.CreateUser(admin, "mona", "mona-password-12", map[string]string{"acme": "viewer"})
	enrollTOTP(t, in, in.Login("mona", "mona-password-12").String("token"))
	mfaTok := mfaLogin(t, in, "mona", "mona-password-12")
	r = in.Do("POST", credCheckPath, admin, map[string]string{"token": mfaTok})
	expectError(t, "an MFA token", r, 400, "VALIDATION_ERROR", "MFA token")
	if strings.Contains(string(r.Raw), mfaTok) {
		t.Fatalf("the answer holds the credential: %s", r.Raw)
	}

	// A token signed with a signing key since retired.
	sk := in.Do("POST", "/api/v1/admin/signing-keys", admin, map[string]string{"algorithm": "EdDSA"})
	expectStatus(t, "signing key", sk, 201)
	byNewKey := in.Login("tim", "tim-password-12").String("token")
	expectVerdict(t, "token of the new signing key", credCheck(t, in, admin, map[string]string{"token": byNewKey}), access, true, "", nil, "")
	step()
	expectStatus(t, "retire", in.Do("POST", "/api/v1/admin/signing-keys/"+sk.String("id")+"/retire", admin, map[string]bool{"fall_back_to_hs256": true}), 200)
	admin = in.AdminToken()
	retired := lastEventOf(t, in, admin, "signingkey.retired", sk.String("id"))
	expectVerdict(t, "token of a retired signing key", credCheck(t, in, admin, map[string]string{"token": byNewKey}), access, false, "signing_key_retired", retired, "")
	expectVerdict(t, "before the retirement", credCheck(t, in, admin, map[string]string{"token": byNewKey, "at": before(retired, t)}), access, true, "", nil, "")

	// Expiry: the token's own, the key's, the session's — judged at the
	// moment asked, not now.
	_, k3 := newKey(admin, "k3", map[string]any{"expires_at": in.Clock.Now().Add(time.Hour).Format(time.RFC3339)})
	l5 := in.Login("tim", "tim-password-12")
	a6, r6 := l5.String("token"), l5.String("refresh_token")
	r = credCheck(t, in, admin, map[string]string{"token": a6})
	exp := r.String("expires_at")
	sessEnd := credCheck(t, in, admin, map[string]string{"token": r6}).String("expires_at")
	keyEnd := credCheck(t, in, admin, map[string]string{"key": k3}).String("expires_at")
	in.Clock.Advance(8 * 24 * time.Hour)
	admin = in.AdminToken()
	expectVerdict(t, "expired token", credCheck(t, in, admin, map[string]string{"token": a6}), access, false, "expired", nil, exp)
	expT, _ := time.Parse(time.RFC3339Nano, exp)
	expectVerdict(t, "token just before its expiry", credCheck(t, in, admin, map[string]string{"token": a6, "at": ts(expT.Add(-time.Nanosecond))}), access, true, "", nil, "")
	expectVerdict(t, "expired key", credCheck(t, in, admin, map[string]string{"key": k3}), apiKey, false, "expired", nil, keyEnd)
	expectVerdict(t, "expired session", credCheck(t, in, admin, map[string]string{"token": r6}), refreshTok, false, "expired", nil, sessEnd)
}

// TestCredentialCheckScope: a tenant admin checks the credentials of their
// tenant's principals; any other is 404, made-up ones included, so that
// nothing says whether it exists; without audit:read, 403; bad input, 400.
func TestCredentialCheckScope(t *testing.T) {
	t.Parallel()
	f := newAuditFixture(t)
	in := f.in
	carol := in.Login("carol", "carol-password-1")
	dave := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "dave", "password": "dave-password-12"})
	expectStatus(t, "dave logs in", dave, 200)
	expectStatus(t, "alice checks carol's token", in.Do("POST", credCheckPath, f.alice, map[string]string{"token": carol.String("token")}), 200)
	expectStatus(t, "alice checks carol's refresh token", in.Do("POST", credCheckPath, f.alice, map[string]string{"token": carol.String("refresh_token")}), 200)
	expectStatus(t, "alice checks acme's key", in.Do("POST", credCheckPath, f.alice, map[string]string{"key": f.acmeKey}), 200)
	for what, body := range map[string]map[string]string{
		"dave's token (beta only, then none)": {"token": dave.String("token")},
		"bob's token":                         {"token": f.bob},
		"beta's key":                          {"key": f.betaKey},
		"a made-up refresh token":             {"token": "bm90LWEtcmVmcmVzaC10b2tlbi1hdC1hbGw"},
		"a made-up key":                       {"key": "ic_test_" + strings.Repeat("A", 49)},
	} {
		expectError(t, "alice: "+what, in.Do("POST", credCheckPath, f.alice, body), 404, "NOT_FOUND")
	}
	// A session scoped to one tenant is that tenant's only, as in the audit
	// log (session.* concern the scoped tenant): carol holds roles in acme
	// and beta, yet acme's admin learns nothing of her beta session
	// (outside check 12C: its tenant, ID and revocation were shown).
	scopedLogin := func(tenant string) Response {
		r := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "carol", "password": "carol-password-1", "tenant": tenant})
		expectStatus(t, "carol logs in to "+tenant, r, 200)
		return r
	}
	inBeta, inAcme := scopedLogin("beta"), scopedLogin("acme")
	betaSession := sessionOf(t, in, inBeta.String("refresh_token"))
	expectStatus(t, "carol ends her beta session", in.Do("POST", "/api/v1/auth/logout", inBeta.String("token"), nil), 204)
	for _, tok := range []string{inBeta.String("token"), inBeta.String("refresh_token")} {
		expectError(t, "alice: carol's beta-scoped credential", in.Do("POST", credCheckPath, f.alice, map[string]string{"token": tok}), 404, "NOT_FOUND")
		if r := in.Do("POST", credCheckPath, f.bob, map[string]string{"token": tok}); r.Status != 200 || r.String("tenant") != "beta" {
			t.Fatalf("bob (beta's admin) checks carol's beta-scoped credential: %d %s", r.Status, r.Raw)
		}
	}
	for _, tok := range []string{inAcme.String("token"), inAcme.String("refresh_token")} {
		expectStatus(t, "alice: carol's acme-scoped credential", in.Do("POST", credCheckPath, f.alice, map[string]string{"token": tok}), 200)
		expectError(t, "bob: carol's acme-scoped credential", in.Do("POST", credCheckPath, f.bob, map[string]string{"token": tok}), 404, "NOT_FOUND")
	}
	if r := in.Do("GET", "/api/v1/audit/events?subject="+betaSession, f.alice, nil); r.Status != 200 || len(r.JSON["events"].([]any)) != 0 {
		t.Fatalf("alice reads carol's beta session in the audit log: %d %s", r.Status, r.Raw)
	}

	expectBody(t, "a viewer", in.Do("POST", credCheckPath, carol.String("token"), map[string]string{"token": f.bob}), 403, bodyForbidden)
	expectBody(t, "a key without audit:read", in.Do("POST", credCheckPath, f.acmeKey, map[string]string{"token": f.bob}), 403, bodyForbidden)

	future := ts(in.Clock.Now().Add(time.Minute))
	for what, tc := range map[string]struct {
		body  any
		field string
	}{
		"both":          {map[string]string{"token": f.bob, "key": f.acmeKey}, "token"},
		"neither":       {map[string]string{"at": ts(in.Clock.Now())}, "token"},
		"future":        {map[string]string{"token": f.bob, "at": future}, "at"},
		"not a time":    {map[string]string{"token": f.bob, "at": "noon"}, "at"},
		"unknown field": {map[string]string{"token": f.bob, "when": "now"}, "when"},
		"not a string":  {map[string]any{"token": 12}, "token"},
	} {
		r := in.Do("POST", credCheckPath, f.admin, tc.body)
		expectError(t, what, r, 400, "VALIDATION_ERROR", tc.field)
		if strings.Contains(string(r.Raw), f.bob) || strings.Contains(string(r.Raw), f.acmeKey) {
			t.Fatalf("%s: the error holds the credential: %s", what, r.Raw)
		}
	}
	r := in.Do("POST", credCheckPath, f.admin, "not json")
	expectError(t, "not JSON", r, 400, "VALIDATION_ERROR")
	expectBody(t, "no credentials", in.Do("POST", credCheckPath, "", map[string]string{"token": f.bob}), 401, bodyUnauthorized)
}

// TestCredentialCheckHidesOtherTenantsEvents: a token issued while its user
// was in prod stays prod's admin's to check after the user left prod; but
// what ended it — staging's admin revoking the user's sessions after that —
// is staging's alone, as in the audit log. For prod's admin the token
// stopped when the user left prod (role_revoked, an event prod reads), at
// every moment after: neither staging's event nor its moment shows. Before,
// the staging event and its admin were shown (outside check 16j), then its
// moment, found by bisecting on at (re-check 16r2). A platform admin and
// staging's admin see it.
func TestCredentialCheckHidesOtherTenantsEvents(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "tadmin", "correct horse battery", map[string]string{"prod": "admin"})
	in.CreateUser(admin, "sadmin", "correct horse battery", map[string]string{"staging": "admin"})
	sue := in.CreateUser(admin, "sue", "correct horse battery", map[string]string{"staging": "editor", "prod": "viewer"})
	in.Clock.Advance(2 * time.Second) // an access token's iat is in whole seconds
	tadmin := in.Login("tadmin", "correct horse battery").String("token")
	sadmin := in.Login("sadmin", "correct horse battery").String("token")
	sueTok := in.Login("sue", "correct horse battery").String("token")
	in.Clock.Advance(2 * time.Second)
	expectStatus(t, "sue leaves prod", in.Do("DELETE", "/api/v1/users/"+sue+"/tenants/prod", admin, nil), 200)
	left := in.Clock.Now()
	in.Clock.Advance(2 * time.Second)
	expectStatus(t, "staging's admin ends sue's sessions", in.Do("DELETE", "/api/v1/users/"+sue+"/sessions", sadmin, nil), 200)

	var answers []string
	for _, at := range []time.Time{left.Add(time.Second), in.Clock.Now()} { // before and after staging's revocation
		r := in.Do("POST", credCheckPath, tadmin, map[string]string{"token": sueTok, "at": ts(at)})
		expectStatus(t, "prod's admin checks sue's token from her prod days", r, 200)
		since, _ := r.JSON["since"].(map[string]any)
		if r.JSON["usable"] != false || r.JSON["reason"] != "role_revoked" || since == nil || since["type"] != "user.role_revoked" ||
			strings.Contains(string(r.Raw), "session.revoked") {
			t.Fatalf("prod's admin, at %s: %s, want role_revoked since sue left prod", ts(at), r.Raw)
		}
		answers = append(answers, r.String("reason")+fmt.Sprint(since))
	}
	if answers[0] != answers[1] {
		t.Fatalf("the answer moves at staging's revocation: %q", answers)
	}
	for who, tok := range map[string]string{"a platform admin": admin, "staging's admin": sadmin} {
		r := in.Do("POST", credCheckPath, tok, map[string]string{"token": sueTok})
		since, _ := r.JSON["since"].(map[string]any)
		if r.Status != 200 || since == nil || since["type"] != "session.revoked" {
			t.Fatalf("%s checks sue's token: %d %s, want its session.revoked", who, r.Status, r.Raw)
		}
	}
}

// TestCredentialCheckBeforeTheUserJoinedTheCallersTenant: sue, in staging
// only, signs in; staging's admin ends her sessions; later she is given a
// role in prod. Her token is prod's admin's to check now (she is in prod),
// but before she joined prod — on either side of staging's revocation —
// the answer is the same for prod's admin: not usable there, no role in a
// tenant they read; staging's moment shows at no value of at (re-check
// 16r3 found it by bisection).
func TestCredentialCheckBeforeTheUserJoinedTheCallersTenant(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "tadmin", "correct horse battery", map[string]string{"prod": "admin"})
	in.CreateUser(admin, "sadmin", "correct horse battery", map[string]string{"staging": "admin"})
	sue := in.CreateUser(admin, "sue", "correct horse battery", map[string]string{"staging": "editor"})
	in.Clock.Advance(2 * time.Second)
	tadmin := in.Login("tadmin", "correct horse battery").String("token")
	sadmin := in.Login("sadmin", "correct horse battery").String("token")
	sueTok := in.Login("sue", "correct horse battery").String("token")
	in.Clock.Advance(2 * time.Second)
	expectStatus(t, "staging's admin ends sue's sessions", in.Do("DELETE", "/api/v1/users/"+sue+"/sessions", sadmin, nil), 200)
	revoked := in.Clock.Now()
	in.Clock.Advance(2 * time.Second)
	expectStatus(t, "sue joins prod", in.Do("PUT", "/api/v1/users/"+sue+"/tenants/prod", admin, map[string]string{"role": "viewer"}), 200)
	in.Clock.Advance(time.Second)

	var before []string
	for _, at := range []time.Time{revoked.Add(-time.Millisecond), revoked.Add(time.Millisecond)} {
		r := in.Do("POST", credCheckPath, tadmin, map[string]string{"token": sueTok, "at": ts(at)})
		expectStatus(t, "prod's admin, before sue joined prod", r, 200)
		if r.JSON["usable"] != false || r.JSON["since"] != nil || strings.Contains(string(r.Raw), "session.revoked") {
			t.Fatalf("prod's admin at %s: %s, want not usable for them, with no since", ts(at), r.Raw)
		}
		before = append(before, r.String("reason"))
	}
	if before[0] != before[1] {
		t.Fatalf("the answer moves at staging's revocation: %q", before)
	}
	r := in.Do("POST", credCheckPath, tadmin, map[string]string{"token": sueTok})
	if r.Status != 200 || r.JSON["usable"] != false || r.JSON["since"] != nil || strings.Contains(string(r.Raw), "session.revoked") {
		t.Fatalf("prod's admin now: %d %s, want not usable, staging's event not shown", r.Status, r.Raw)
	}
}

// TestCredentialCheckOfATokenIssuedInTheSecondItsUserWasMade: an access
// token's iat is in whole seconds; a user made half a second into one and
// signed in at once held no role at iat. The token is still prod's admin's
// to check after the user left prod: it was issued while the user was in
// prod. Before, the answer was 404 (outside check 16r2: every first SSO
// login, every script that creates a user and signs in).
func TestCredentialCheckOfATokenIssuedInTheSecondItsUserWasMade(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "tadmin", "correct horse battery", map[string]string{"prod": "admin"})
	tadmin := in.Login("tadmin", "correct horse battery").String("token")
	now := in.Clock.Now()
	in.Clock.Advance(time.Second - now.Sub(now.Truncate(time.Second)) + 500*time.Millisecond) // x.5 s
	uma := in.CreateUser(admin, "uma", "correct horse battery", map[string]string{"prod": "viewer", "staging": "viewer"})
	tok := in.Login("uma", "correct horse battery").String("token")
	in.Clock.Advance(2 * time.Second)
	expectStatus(t, "uma leaves prod", in.Do("DELETE", "/api/v1/users/"+uma+"/tenants/prod", admin, nil), 200)
	r := in.Do("POST", credCheckPath, tadmin, map[string]string{"token": tok})
	expectStatus(t, "prod's admin checks uma's token from her prod days", r, 200)
}

// TestAuditOpenAPI: the audit API's answers are what the OpenAPI document
// says (statuses, bodies, headers).
func TestAuditOpenAPI(t *testing.T) {
	t.Parallel()
	f := newAuditFixture(t)
	in := f.in
	raw := in.Do("GET", "/openapi.json", "", nil)
	doc, err := openapi3.NewLoader().LoadFromData(raw.Raw)
	if err != nil {
		t.Fatal(err)
	}
	oa := &openAPICheck{t: t, in: in, doc: doc}
	get := func(tmpl, path, token string, status int) Response {
		return oa.call(tmpl, request{Method: "GET", Path: path, Token: token}, status)
	}
	page := get("/api/v1/audit/events", "/api/v1/audit/events?limit=3&type=user.", f.admin, 200)
	get("/api/v1/audit/events", "/api/v1/audit/events?cursor="+page.String("next_cursor")+"&limit=1000", f.admin, 200)
	get("/api/v1/audit/events", "/api/v1/audit/events?tenant=acme&order=desc&since=2020-01-01T00:00:00Z", f.alice, 200)
	get("/api/v1/audit/events", "/api/v1/audit/events?tenant=beta", f.alice, 403)
	get("/api/v1/audit/events", "/api/v1/audit/events?limit=0", f.admin, 400)
	get("/api/v1/audit/events", "/api/v1/audit/events", "", 401)
	get("/api/v1/tenants/{tenant}/access", "/api/v1/tenants/acme/access?permission=findings:read", f.admin, 200)
	get("/api/v1/tenants/{tenant}/access", "/api/v1/tenants/acme/access", f.alice, 200)
	get("/api/v1/tenants/{tenant}/access", "/api/v1/tenants/beta/access", f.alice, 403)
	get("/api/v1/tenants/{tenant}/access", "/api/v1/tenants/acme/access?at=yesterday", f.admin, 400)
	get("/api/v1/users/{id}/access", "/api/v1/users/"+f.carolID+"/access", f.alice, 200)
	get("/api/v1/users/{id}/access", "/api/v1/users/"+f.daveID+"/access", f.alice, 404)
	get("/api/v1/api-keys/{id}/access", "/api/v1/api-keys/"+f.acmeKeyID+"/access", f.admin, 200)
	get("/api/v1/api-keys/{id}/access", "/api/v1/api-keys/"+f.betaKeyID+"/access", f.alice, 404)
	post := func(body any, token string, status int) {
		oa.call("/api/v1/audit/credential-check", jsonRequest("POST", credCheckPath, token, body), status)
	}
	post(map[string]string{"token": f.alice}, f.admin, 200)
	post(map[string]string{"key": f.acmeKey, "at": ts(in.Clock.Now())}, f.admin, 200)
	post(map[string]string{"token": "nope"}, f.admin, 200)
	post(map[string]string{"token": f.bob}, f.alice, 404)
	post(map[string]string{}, f.admin, 400)
	carol := in.Login("carol", "carol-password-1").String("token")
	post(map[string]string{"token": f.bob}, carol, 403)
	if !slices.Contains(doc.Components.Schemas["Permission"].Value.Enum, any("audit:read")) {
		t.Fatal("audit:read is not in the document's Permission enum")
	}
}
