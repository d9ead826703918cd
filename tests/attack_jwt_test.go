package tests

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	authhttp "github.com/infracast/auth/http"
	ic "github.com/infracast/auth/http/client"
	"github.com/infracast/auth/http/service"
)

func jwtHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestSigningKeyRotationAndJWKS: adding an EdDSA key makes it sign new tokens
// while tokens of the previous key keep working (no downtime); JWKS publishes
// its public key, with which a verifier checks tokens offline; retiring it
// stops its tokens at once.
func TestSigningKeyRotationAndJWKS(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	before := in.Login(AdminUser, AdminPassword).String("token")
	r := in.Do("POST", "/api/v1/admin/signing-keys", admin, map[string]string{"algorithm": "EdDSA"})
	if r.Status != 201 || r.JSON["signing"] != true {
		t.Fatalf("add key: %d %s", r.Status, r.Raw)
	}
	kid := r.String("id")
	after := in.Login(AdminUser, AdminPassword).String("token")
	if h := jwtHeader(t, after); h["alg"] != "EdDSA" || h["kid"] != kid || h["typ"] != "at+jwt" {
		t.Fatalf("new token header %v", h)
	}
	for name, tok := range map[string]string{"old key": before, "new key": after} {
		if r := in.Do("GET", "/api/v1/auth/me", tok, nil); r.Status != 200 {
			t.Fatalf("token of the %s: %d", name, r.Status)
		}
	}
	// Offline verification with the published key.
	var jwks struct{ Keys []authhttp.JWK }
	if r := in.Do("GET", "/.well-known/jwks.json", "", nil); r.Status != 200 || json.Unmarshal(r.Raw, &jwks) != nil || len(jwks.Keys) != 1 {
		t.Fatalf("jwks: %d %s", r.Status, r.Raw)
	}
	pub, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].X)
	if _, err := jwt.Parse(after, func(*jwt.Token) (any, error) { return ed25519.PublicKey(pub), nil },
		jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience("infracast-api"), jwt.WithIssuer("infracast-auth")); err != nil {
		t.Fatalf("offline verification with JWKS: %v", err)
	}
	// Algorithm confusion: an HS256 token whose "secret" is the public key.
	forged := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "infracast-auth", "aud": "infracast-api",
		"sub": "x", "sid": "x", "jti": "x", "exp": time.Now().Add(time.Hour).Unix(), "nbf": time.Now().Unix(), "iat": time.Now().Unix()})
	forged.Header["kid"], forged.Header["typ"] = kid, "at+jwt"
	fs, _ := forged.SignedString(pub)
	if r := in.Do("GET", "/api/v1/auth/me", fs, nil); r.Status != 401 {
		t.Fatalf("HS256 token keyed with the EdDSA public key: %d", r.Status)
	}
	// The last EdDSA key that signs: retired only when the request says
	// that tokens go back to HS256 (TestRetireTheLastEdDSAKeyIsRefused).
	if r := in.Do("POST", "/api/v1/admin/signing-keys/"+kid+"/retire", admin, map[string]bool{"fall_back_to_hs256": true}); r.Status != 200 {
		t.Fatalf("retire: %d %s", r.Status, r.Raw)
	}
	if r := in.Do("GET", "/api/v1/auth/me", after, nil); r.Status != 401 {
		t.Fatalf("token of a retired key: %d", r.Status)
	}
	if r := in.Do("GET", "/api/v1/auth/me", before, nil); r.Status != 200 {
		t.Fatalf("token of the configured key after retiring the other: %d", r.Status)
	}
	if h := jwtHeader(t, in.Login(AdminUser, AdminPassword).String("token")); h["alg"] != "HS256" {
		t.Fatalf("signer after retirement: %v", h)
	}
	if r := in.Do("POST", "/api/v1/admin/signing-keys", admin, map[string]string{"algorithm": "none"}); r.Status != 400 {
		t.Fatalf("alg none key: %d", r.Status)
	}
	viewer := in.CreateUser(admin, "viewer1", "viewer-password-1", map[string]string{"prod": "viewer"})
	_ = viewer
	if r := in.Do("POST", "/api/v1/admin/signing-keys", in.Login("viewer1", "viewer-password-1").String("token"), nil); r.Status != 403 {
		t.Fatalf("non-admin adds a key: %d", r.Status)
	}
}

// TestForgedTokens attacks the verifier with tokens signed by the deployment's
// own key but carrying hostile headers or claims, and checks that nothing ever
// fetches a URL named in a token.
func TestForgedTokens(t *testing.T) {
	var fetched atomic.Int32
	lure := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fetched.Add(1) }))
	defer lure.Close()
	in := Start(t)
	b, _ := os.ReadFile(filepath.Join(in.Config.DataDir, "jwt-signing.key"))
	key, _ := service.DecodeKey(string(b))
	sid := in.Login(AdminUser, AdminPassword)
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		now := in.Clock.Now()
		var me map[string]any
		_ = json.Unmarshal(in.Do("GET", "/api/v1/auth/me", sid.String("token"), nil).Raw, &me)
		c := jwt.MapClaims{"iss": "infracast-auth", "aud": "infracast-api", "sub": me["id"], "sid": me["session_id"],
			"jti": "tok-forged", "exp": now.Add(time.Hour).Unix(), "nbf": now.Unix(), "iat": now.Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	sign := func(method jwt.SigningMethod, k any, hdr map[string]any, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(method, c)
		tok.Header["typ"], tok.Header["kid"] = "at+jwt", authhttp.KeyID(key)
		for h, v := range hdr {
			tok.Header[h] = v
		}
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Control: the deployment's key with honest claims is accepted.
	if r := in.Do("GET", "/api/v1/auth/me", sign(jwt.SigningMethodHS256, key, nil, claims(nil)), nil); r.Status != 200 {
		t.Fatalf("control token: %d %s", r.Status, r.Raw)
	}
	otherKey := []byte(strings.Repeat("k", 32))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	cases := map[string]string{
		"alg none":       none,
		"HS512":          sign(jwt.SigningMethodHS512, key, nil, claims(nil)),
		"typ JWT":        sign(jwt.SigningMethodHS256, key, map[string]any{"typ": "JWT"}, claims(nil)),
		"no typ":         sign(jwt.SigningMethodHS256, key, map[string]any{"typ": nil}, claims(nil)),
		"jku to lure":    sign(jwt.SigningMethodHS256, otherKey, map[string]any{"jku": lure.URL, "kid": "lure"}, claims(nil)),
		"x5u to lure":    sign(jwt.SigningMethodHS256, otherKey, map[string]any{"x5u": lure.URL, "kid": "lure"}, claims(nil)),
		"embedded jwk":   sign(jwt.SigningMethodHS256, otherKey, map[string]any{"jwk": map[string]string{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(otherKey)}}, claims(nil)),
		"dev issuer":     sign(jwt.SigningMethodHS256, key, nil, claims(func(c jwt.MapClaims) { c["iss"] = "infracast-auth-dev" })),
		"other audience": sign(jwt.SigningMethodHS256, key, nil, claims(func(c jwt.MapClaims) { c["aud"] = "infracast-dev-api" })),
		"nbf 5 min ahead": sign(jwt.SigningMethodHS256, key, nil, claims(func(c jwt.MapClaims) {
			c["nbf"], c["iat"] = in.Clock.Now().Add(5*time.Minute).Unix(), in.Clock.Now().Add(5*time.Minute).Unix()
		})),
		"expired 1 min ago": sign(jwt.SigningMethodHS256, key, nil, claims(func(c jwt.MapClaims) { c["exp"] = in.Clock.Now().Add(-time.Minute).Unix() })),
		"unknown session":   sign(jwt.SigningMethodHS256, key, nil, claims(func(c jwt.MapClaims) { c["sid"] = "sess-forged" })),
		"other subject":     sign(jwt.SigningMethodHS256, key, nil, claims(func(c jwt.MapClaims) { c["sub"] = "user-forged" })),
	}
	for name, tok := range cases {
		if r := in.Do("GET", "/api/v1/auth/me", tok, nil); r.Status != 401 || string(r.Raw) != `{"error":{"code":"UNAUTHORIZED","message":"Invalid or expired token"}}` {
			t.Errorf("%s: %d %s", name, r.Status, r.Raw)
		}
	}
	// Clock skew within the leeway (30 s) is tolerated.
	if r := in.Do("GET", "/api/v1/auth/me", sign(jwt.SigningMethodHS256, key, nil, claims(func(c jwt.MapClaims) {
		c["nbf"], c["iat"] = in.Clock.Now().Add(10*time.Second).Unix(), in.Clock.Now().Add(10*time.Second).Unix()
	})), nil); r.Status != 200 {
		t.Errorf("10 s of skew refused: %d", r.Status)
	}
	// A token in the URL is never read.
	if r := in.Do("GET", "/api/v1/auth/me?access_token="+sid.String("token"), "", nil); r.Status != 401 {
		t.Errorf("token in the query string accepted: %d", r.Status)
	}
	if n := fetched.Load(); n != 0 {
		t.Fatalf("the verifier fetched a URL from a token %d times", n)
	}
}

// respell returns tok with its last character's lowest bit flipped. In a
// base64url signature of 32 bytes (HS256, HMAC) or 64 bytes (EdDSA) that bit
// decodes to nothing: a lenient decoder reads the same signature from both
// strings.
func respell(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, tok[len(tok)-1])
	return tok[:len(tok)-1] + string(alphabet[i^1])
}

// TestTokenSpellings: a token has one spelling. Flipping the bits of a
// signature's last character that decode to nothing made a different string
// that verified on every surface and in the credential check (outside check
// 15c) — a second spelling slips past anything keyed on the string (a
// resource service's deny-list or replay cache). Refused now for HS256 and
// EdDSA access tokens, MFA tokens and the offline verifier.
func TestTokenSpellings(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	hs := in.Login(AdminUser, AdminPassword).String("token")
	if r := in.Do("POST", "/api/v1/admin/signing-keys", admin, map[string]string{"algorithm": "EdDSA"}); r.Status != 201 {
		t.Fatalf("add key: %d %s", r.Status, r.Raw)
	}
	ed := in.Login(AdminUser, AdminPassword).String("token")
	if h := jwtHeader(t, ed); h["alg"] != "EdDSA" {
		t.Fatalf("not an EdDSA token: %v", h)
	}
	verify := func(tok string) Response { return verifyAs(t, in, tok, "GET", "/api/v1/tenants/acme/nodes") }
	for alg, tok := range map[string]string{"HS256": hs, "EdDSA": ed} {
		other := respell(tok)
		if other == tok {
			t.Fatal("respell changed nothing")
		}
		expectStatus(t, alg+" token", in.Do("GET", "/api/v1/auth/me", tok, nil), 200)
		expectError(t, alg+" token respelled", in.Do("GET", "/api/v1/auth/me", other, nil), 401, "UNAUTHORIZED")
		expectStatus(t, alg+" token at verify", verify(tok), 200)
		expectStatus(t, alg+" token respelled at verify", verify(other), 401)
		if r := credCheck(t, in, admin, map[string]string{"token": other}); r.JSON["usable"] != false || r.String("reason") != "not_issued_by_us" {
			t.Fatalf("%s token respelled, credential check: %s", alg, r.Raw)
		}
		if r := credCheck(t, in, admin, map[string]string{"token": tok}); r.JSON["usable"] != true {
			t.Fatalf("%s token, credential check: %s", alg, r.Raw)
		}
	}

	// The offline verifier of resource services.
	v, err := ic.NewJWKSVerifier(in.URL, ic.JWKSClock(in.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), ed); err != nil {
		t.Fatalf("offline, the EdDSA token: %v", err)
	}
	if _, err := v.Verify(context.Background(), respell(ed)); !errors.Is(err, ic.ErrUnauthorized) {
		t.Fatalf("offline, the EdDSA token respelled: %v", err)
	}

	// A login's second step.
	in.CreateUser(admin, "sol", "sol-password-12", map[string]string{"acme": "viewer"})
	secret, _ := enrollTOTP(t, in, in.Login("sol", "sol-password-12").String("token"))
	in.Clock.Advance(3 * 30 * time.Second)
	mfaTok := mfaLogin(t, in, "sol", "sol-password-12")
	code := totpAt(t, secret, in.Clock.Now())
	expectError(t, "the MFA token respelled", secondStep(in, respell(mfaTok), code), 401, "UNAUTHORIZED")
	expectStatus(t, "the MFA token", secondStep(in, mfaTok, code), 200)
}
