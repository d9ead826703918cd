package http

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef")
	otherKey = []byte("fedcba9876543210fedcba9876543210")
)

func newTestTokens(t testing.TB, now func() time.Time, keys ...[]byte) *Tokens {
	t.Helper()
	if len(keys) == 0 {
		keys = [][]byte{testKey}
	}
	tk, err := NewTokens(TokenConfig{Keys: keys, Issuer: "infracast-auth", Audience: "infracast-api", TTL: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestTokensIssueVerify(t *testing.T) {
	now := time.Date(2026, 3, 16, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tk := newTestTokens(t, clock)
	raw, exp, err := tk.Issue("user-1", "sess-1", "tok-1", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(time.Hour)) {
		t.Fatalf("exp %s", exp)
	}
	if !strings.HasPrefix(raw, "eyJhbGciOiJIUzI1NiIs") {
		t.Fatalf("token does not start like the seed's HS256 tokens: %s", raw[:20])
	}
	c, err := tk.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "user-1" || c.SessionID != "sess-1" || c.ID != "tok-1" || c.Tenant != "prod" {
		t.Fatalf("claims %+v", c)
	}
	now = now.Add(time.Hour + time.Second)
	if _, err := tk.Verify(raw); err == nil {
		t.Fatal("expired token verified")
	}
	if _, err := tk.VerifySignature(raw); err != nil {
		t.Fatalf("VerifySignature of an expired token: %v", err)
	}
}

func TestTokensRotation(t *testing.T) {
	old := newTestTokens(t, time.Now, otherKey)
	raw, _, _ := old.Issue("u", "s", "t", "")
	rotated := newTestTokens(t, time.Now, testKey, otherKey) // new key signs, old still verifies
	if _, err := rotated.Verify(raw); err != nil {
		t.Fatalf("token of the previous key refused after rotation: %v", err)
	}
	retired := newTestTokens(t, time.Now, testKey)
	if _, err := retired.Verify(raw); err == nil {
		t.Fatal("token of a retired key verified")
	}
}

func sign(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokensRejectForgeries(t *testing.T) {
	now := time.Now()
	tk := newTestTokens(t, func() time.Time { return now })
	good := jwt.MapClaims{"iss": "infracast-auth", "aud": "infracast-api", "sub": "u", "sid": "s", "jti": "t",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix()}
	hdr := map[string]any{"typ": "at+jwt", "kid": KeyID(testKey)}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	if _, err := tk.Verify(sign(t, jwt.SigningMethodHS256, testKey, hdr, good)); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	unsigned := func(alg string) string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"at+jwt","kid":"` + KeyID(testKey) + `"}`))
		p := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"infracast-auth","aud":"infracast-api","sub":"u","sid":"s","jti":"t","exp":9999999999}`))
		return h + "." + p + "."
	}
	cases := map[string]string{
		"alg none":        unsigned("none"),
		"alg NoNe":        unsigned("NoNe"),
		"wrong key":       sign(t, jwt.SigningMethodHS256, otherKey, hdr, good),
		"HS512":           sign(t, jwt.SigningMethodHS512, testKey, hdr, good),
		"typ JWT":         sign(t, jwt.SigningMethodHS256, testKey, map[string]any{"typ": "JWT", "kid": KeyID(testKey)}, good),
		"unknown kid":     sign(t, jwt.SigningMethodHS256, testKey, map[string]any{"typ": "at+jwt", "kid": "nope"}, good),
		"wrong issuer":    sign(t, jwt.SigningMethodHS256, testKey, hdr, with("iss", "dev-auth")),
		"wrong audience":  sign(t, jwt.SigningMethodHS256, testKey, hdr, with("aud", "other-api")),
		"no exp":          sign(t, jwt.SigningMethodHS256, testKey, hdr, with("exp", nil)),
		"not yet valid":   sign(t, jwt.SigningMethodHS256, testKey, hdr, with("nbf", now.Add(time.Hour).Unix())),
		"no session":      sign(t, jwt.SigningMethodHS256, testKey, hdr, with("sid", nil)),
		"no token id":     sign(t, jwt.SigningMethodHS256, testKey, hdr, with("jti", nil)),
		"garbage":         "not.a.jwt",
		"empty":           "",
		"api key format":  "ic_live_abc",
		"truncated":       sign(t, jwt.SigningMethodHS256, testKey, hdr, good)[:40],
		"embedded jwk":    sign(t, jwt.SigningMethodHS256, otherKey, map[string]any{"typ": "at+jwt", "kid": KeyID(testKey), "jwk": map[string]any{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(otherKey)}}, good),
		"jku header":      sign(t, jwt.SigningMethodHS256, otherKey, map[string]any{"typ": "at+jwt", "kid": KeyID(testKey), "jku": "http://127.0.0.1:1/jwks"}, good),
		"expired by skew": sign(t, jwt.SigningMethodHS256, testKey, hdr, with("exp", now.Add(-time.Minute).Unix())),
		// RFC 7519 §2: NumericDate is a JSON number, never a string.
		"exp as a string": sign(t, jwt.SigningMethodHS256, testKey, hdr, with("exp", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))),
		"iat as a string": sign(t, jwt.SigningMethodHS256, testKey, hdr, with("iat", strconv.FormatInt(now.Unix(), 10))),
		"nbf as a string": sign(t, jwt.SigningMethodHS256, testKey, hdr, with("nbf", strconv.FormatInt(now.Unix(), 10))),
		"exp an object":   sign(t, jwt.SigningMethodHS256, testKey, hdr, with("exp", map[string]any{"n": 1})),
		"typ at+jwt-ish":  sign(t, jwt.SigningMethodHS256, testKey, map[string]any{"typ": "application/at+jwtx", "kid": KeyID(testKey)}, good),
		"typ wrong media": sign(t, jwt.SigningMethodHS256, testKey, map[string]any{"typ": "text/at+jwt", "kid": KeyID(testKey)}, good),
		// The last character's bits that decode to nothing: one token, one spelling.
		"signature respelled": respell(sign(t, jwt.SigningMethodHS256, testKey, hdr, good)),
	}
	for name, raw := range cases {
		if _, err := tk.Verify(raw); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// respell flips the lowest bit of tok's last character: in a base64url
// signature of 32 or 64 bytes, a bit that decodes to nothing.
func respell(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, tok[len(tok)-1])
	return tok[:len(tok)-1] + string(alphabet[i^1])
}

func FuzzVerify(f *testing.F) {
	tk := newTestTokens(f, time.Now)
	good, _, _ := tk.Issue("u", "s", "t", "")
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := tk.Verify(raw)
		if err == nil && (c.Subject == "" || c.SessionID == "" || c.ID == "") {
			t.Fatalf("verified a token without subject/session/id: %q", raw)
		}
		if err == nil {
			// Nothing verifies without a valid HMAC-SHA256 by our key over
			// header.payload.
			parts := strings.Split(raw, ".")
			if len(parts) != 3 {
				t.Fatalf("verified a malformed token %q", raw)
			}
			mac := hmac.New(sha256.New, testKey)
			mac.Write([]byte(parts[0] + "." + parts[1]))
			sig, derr := base64.RawURLEncoding.Strict().DecodeString(parts[2])
			if derr != nil || !hmac.Equal(sig, mac.Sum(nil)) {
				t.Fatalf("verified a token without our signature: %q", raw)
			}
		}
	})
}

func FuzzDecodeBody(f *testing.F) {
	f.Add([]byte(`{"username":"a","password":"b"}`))
	f.Add([]byte(`{"username":"a","password":"b","x":1}`))
	f.Add([]byte(`{"username":1}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req loginRequest
		err := decodeBody(body, &req)
		if err != nil {
			e, ok := err.(*Error)
			if !ok || e.Status != 400 || e.Code != "VALIDATION_ERROR" || e.Message == "" {
				t.Fatalf("decode error %#v is not a contract 400", err)
			}
		}
	})
}

// TestTokensAcceptTheMediaTypeForms: "typ" is a media type, compared
// case-insensitively, its "application/" prefix optional (RFC 7515 §4.1.9,
// RFC 8725 §3.11, RFC 9068 §2.1).
func TestTokensAcceptTheMediaTypeForms(t *testing.T) {
	now := time.Now()
	tk := newTestTokens(t, func() time.Time { return now })
	claims := jwt.MapClaims{"iss": "infracast-auth", "aud": "infracast-api", "sub": "u", "sid": "s", "jti": "t",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix()}
	for _, typ := range []string{"at+jwt", "AT+JWT", "At+Jwt", "application/at+jwt", "Application/AT+JWT", "APPLICATION/at+jwt"} {
		raw := sign(t, jwt.SigningMethodHS256, testKey, map[string]any{"typ": typ, "kid": KeyID(testKey)}, claims)
		if _, err := tk.Verify(raw); err != nil {
			t.Errorf("typ %q refused: %v", typ, err)
		}
	}
}

// issueWithLibrary is Issue as jwt.Token.SignedString makes the token: the
// reference issueHS256 must match byte for byte.
func issueWithLibrary(t *testing.T, tk *Tokens, userID, sessionID, tokenID, tenant string) string {
	t.Helper()
	now := tk.cfg.Now().UTC().Truncate(time.Second)
	k := tk.keys().signer
	tok := jwt.NewWithClaims(k.method, Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: tk.cfg.Issuer, Subject: userID, Audience: jwt.ClaimStrings{tk.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(tk.cfg.TTL)), NotBefore: jwt.NewNumericDate(now),
			IssuedAt: jwt.NewNumericDate(now), ID: tokenID,
		},
		SessionID: sessionID, Tenant: tenant,
	})
	tok.Header["typ"] = accessTokenType
	tok.Header["kid"] = k.id
	s, err := tok.SignedString(k.sign)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIssueHS256IsTheLibrarys(t *testing.T) {
	now := time.Date(2026, 3, 16, 9, 0, 0, 987654321, time.UTC)
	for _, cfg := range []struct{ issuer, audience string }{
		{"infracast-auth", "infracast-api"},
		{"", "infracast-api"},
		{"https://auth.example.com/<a&b>", ""},
		{"ïnfracast \"auth\"\u2028\x01\x7f", "aud\\ience\xff"},
	} {
		tk, err := NewTokens(TokenConfig{Keys: [][]byte{testKey}, Issuer: cfg.issuer, Audience: cfg.audience, TTL: 15 * time.Minute,
			Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range [][4]string{
			{"usr-01JQ5Z8W3X", "ses-01JQ5Z8W3Y", "tok-01JQ5Z8W3Z", ""},
			{"usr-01JQ5Z8W3X", "ses-01JQ5Z8W3Y", "tok-01JQ5Z8W3Z", "prod"},
			{"", "", "", ""},
			{"u<1>", "s&1", "t\"1", "tenant\u00e9\n"},
		} {
			got, _, err := tk.Issue(c[0], c[1], c[2], c[3])
			if err != nil {
				t.Fatal(err)
			}
			if want := issueWithLibrary(t, tk, c[0], c[1], c[2], c[3]); got != want {
				t.Errorf("issuer %q, audience %q, claims %q:\n got %s\nwant %s", cfg.issuer, cfg.audience, c, got, want)
			}
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	tk := newTestTokens(b, time.Now)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tk.Issue("usr-01JQ5Z8W3XK5T2R7BQ0M4N6P8S", "ses-01JQ5Z8W3XK5T2R7BQ0M4N6P8T", "tok-01JQ5Z8W3XK5T2R7BQ0M4N6P8V", ""); err != nil {
			b.Fatal(err)
		}
	}
}
