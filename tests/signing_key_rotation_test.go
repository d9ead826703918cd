package tests

import (
	"net/http"
	"strings"
	"testing"
)

// TestSigningKeyRotationWithPendingKey: the rotation that offline verifiers
// follow without refusing a token (outside check 20o: a key added signed at
// once, and jwx, keyfunc and node jose refused its tokens for up to 14
// minutes; retiring the last EdDSA key went back to HS256 silently). On two
// replicas: a key added with "signing": false is in both JWKS while the old
// key signs on both; retiring the old key is refused (409: the pending one
// cannot take over); activated through b, the new key signs on a and b by
// the answer, and the old key's tokens verify until it is retired; the last
// EdDSA key is retired only with "fall_back_to_hs256": true.
func TestSigningKeyRotationWithPendingKey(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 1)
	a, b := d.StartReplica(t), d.StartReplica(t)
	login := a.Login(AdminUser, AdminPassword)
	admin, refresh := login.String("token"), login.String("refresh_token")
	expectStatus(t, "the admin's token on b", b.Do("GET", "/api/v1/auth/me", admin, nil), http.StatusOK)
	// kidOn refreshes through in and answers the new token and its kid.
	kidOn := func(in *Instance) (string, string) {
		t.Helper()
		r := in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh})
		expectStatus(t, "refresh", r, http.StatusOK)
		if rt := r.String("refresh_token"); rt != "" {
			refresh = rt
		}
		tok := r.String("token")
		kid, _ := jwtHeader(t, tok)["kid"].(string)
		return tok, kid
	}
	inJWKS := func(in *Instance, kid string) bool {
		t.Helper()
		r := in.Do("GET", "/.well-known/jwks.json", "", nil)
		expectStatus(t, "JWKS", r, http.StatusOK)
		return strings.Contains(string(r.Raw), `"kid":"`+kid+`"`)
	}

	oldKey := a.Do("POST", "/api/v1/admin/signing-keys", admin, map[string]string{"algorithm": "EdDSA"})
	expectStatus(t, "add the first EdDSA key", oldKey, http.StatusCreated)
	old := oldKey.String("id")
	oldTok, kid := kidOn(a)
	if kid != old {
		t.Fatalf("signed with %s, want the first key %s", kid, old)
	}

	next := a.Do("POST", "/api/v1/admin/signing-keys", admin, map[string]any{"algorithm": "EdDSA", "signing": false})
	expectStatus(t, "add a pending key", next, http.StatusCreated)
	nextID := next.String("id")
	if next.JSON["pending"] != true || next.JSON["signing"] != false {
		t.Fatalf("the pending key's answer: %s", next.Raw)
	}
	for name, in := range map[string]*Instance{"a": a, "b": b} {
		if !inJWKS(in, nextID) || !inJWKS(in, old) {
			t.Fatalf("%s's JWKS lacks a key: want %s and the pending %s", name, old, nextID)
		}
		if _, kid := kidOn(in); kid != old {
			t.Fatalf("%s signs with %s while %s is pending, want %s", name, kid, nextID, old)
		}
	}

	r := b.Do("POST", "/api/v1/admin/signing-keys/"+old+"/retire", admin, nil)
	expectStatus(t, "retire the signing key while the other EdDSA key is pending", r, http.StatusConflict)
	if r.ErrorCode() != "CONFLICT" || !strings.Contains(string(r.Raw), "Add another EdDSA key first") {
		t.Fatalf("the refusal: %s", r.Raw)
	}

	act := b.Do("POST", "/api/v1/admin/signing-keys/"+nextID+"/activate", admin, nil)
	expectStatus(t, "activate the pending key on b", act, http.StatusOK)
	if act.JSON["signing"] != true || act.JSON["pending"] != false || act.String("activated_at") == "" {
		t.Fatalf("the activation's answer: %s", act.Raw)
	}
	// By the answer, both replicas sign with it (the barrier).
	for name, in := range map[string]*Instance{"a": a, "b": b} {
		if _, kid := kidOn(in); kid != nextID {
			t.Fatalf("%s signs with %s after the activation, want %s", name, kid, nextID)
		}
		expectStatus(t, name+": the old key's token after the activation", in.Do("GET", "/api/v1/auth/me", oldTok, nil), http.StatusOK)
	}

	expectStatus(t, "retire the old key", a.Do("POST", "/api/v1/admin/signing-keys/"+old+"/retire", admin, nil), http.StatusOK)
	for name, in := range map[string]*Instance{"a": a, "b": b} {
		expectStatus(t, name+": the retired key's token", in.Do("GET", "/api/v1/auth/me", oldTok, nil), http.StatusUnauthorized)
		if inJWKS(in, old) {
			t.Fatalf("%s's JWKS still lists the retired key", name)
		}
	}

	// The last EdDSA key: tokens would be HS256 again.
	r = a.Do("POST", "/api/v1/admin/signing-keys/"+nextID+"/retire", admin, nil)
	expectStatus(t, "retire the last EdDSA key", r, http.StatusConflict)
	expectStatus(t, "retire it, falling back to HS256",
		a.Do("POST", "/api/v1/admin/signing-keys/"+nextID+"/retire", admin, map[string]bool{"fall_back_to_hs256": true}), http.StatusOK)
	tok, _ := kidOn(b)
	if alg := jwtHeader(t, tok)["alg"]; alg != "HS256" {
		t.Fatalf("after the fall-back, tokens are %v, want HS256", alg)
	}
}

// TestHS256KeyDoesNotDisplaceTheEdDSASigner: the API's default algorithm is
// HS256, and a key added without one — signing at once (no body), or
// pending ({"signing": false}) and then activated — took over from the
// EdDSA key that signed, on every replica, with no refusal: every new
// token HS256, which no offline verifier checks (outside check 20r4).
// Adding or activating an HS256 key while an EdDSA key signs is refused
// (409) as retiring the last EdDSA key is, unless "fall_back_to_hs256":
// true; a pending HS256 key may be added.
func TestHS256KeyDoesNotDisplaceTheEdDSASigner(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 1)
	a, b := d.StartReplica(t), d.StartReplica(t)
	admin := a.Login(AdminUser, AdminPassword).String("token")
	alg := func(in *Instance) string {
		t.Helper()
		a, _ := jwtHeader(t, in.Login(AdminUser, AdminPassword).String("token"))["alg"].(string)
		return a
	}
	expectStatus(t, "add EdDSA", a.Do("POST", "/api/v1/admin/signing-keys", admin, map[string]string{"algorithm": "EdDSA"}), http.StatusCreated)

	refused := func(what string, r Response) {
		t.Helper()
		expectStatus(t, what, r, http.StatusConflict)
		if r.ErrorCode() != "CONFLICT" || !strings.Contains(string(r.Raw), "An EdDSA key signs") || !strings.Contains(string(r.Raw), "fall_back_to_hs256") {
			t.Fatalf("%s: the refusal: %s", what, r.Raw)
		}
	}
	refused("add without a body (HS256, signing)", b.Do("POST", "/api/v1/admin/signing-keys", admin, nil))
	refused("add HS256", b.Do("POST", "/api/v1/admin/signing-keys", admin, map[string]string{"algorithm": "HS256"}))
	p := b.Do("POST", "/api/v1/admin/signing-keys", admin, map[string]any{"signing": false})
	expectStatus(t, "add pending without algorithm", p, http.StatusCreated)
	if p.JSON["algorithm"] != "HS256" || p.JSON["pending"] != true {
		t.Fatalf("the pending key: %s", p.Raw)
	}
	refused("activate the pending HS256 key", b.Do("POST", "/api/v1/admin/signing-keys/"+p.String("id")+"/activate", admin, nil))
	for name, in := range map[string]*Instance{"a": a, "b": b} {
		if got := alg(in); got != "EdDSA" {
			t.Fatalf("%s signs %s after the refusals, want EdDSA", name, got)
		}
	}

	// Asked for: the HS256 key signs on every replica by the answer.
	act := b.Do("POST", "/api/v1/admin/signing-keys/"+p.String("id")+"/activate", admin, map[string]bool{"fall_back_to_hs256": true})
	expectStatus(t, "activate it, falling back to HS256", act, http.StatusOK)
	if act.JSON["signing"] != true {
		t.Fatalf("the activation's answer: %s", act.Raw)
	}
	for name, in := range map[string]*Instance{"a": a, "b": b} {
		if got := alg(in); got != "HS256" {
			t.Fatalf("%s signs %s after the fall-back, want HS256", name, got)
		}
	}
	// An HS256 key signs now: another one is nothing to refuse.
	expectStatus(t, "add HS256 while HS256 signs", a.Do("POST", "/api/v1/admin/signing-keys", admin, nil), http.StatusCreated)
}
