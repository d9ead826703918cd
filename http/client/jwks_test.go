package client

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// jwksServer serves a JWKS with the given keys, counting the fetches.
func jwksServer(t *testing.T, keys map[string]ed25519.PublicKey) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		var set JWKS
		for kid, k := range keys {
			set.Keys = append(set.Keys, JWK{KeyType: "OKP", Curve: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k), KeyID: kid, Use: "sig", Alg: "EdDSA"})
		}
		if err := json.NewEncoder(w).Encode(set); err != nil {
			t.Error(err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestJWKSVerifier(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, fetches := jwksServer(t, map[string]ed25519.PublicKey{"k1": pub})
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	v, err := NewJWKSVerifier(srv.URL, JWKSClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	claims := func() map[string]any {
		return map[string]any{"iss": "infracast-auth", "aud": []string{"infracast-api"}, "sub": "user-1", "sid": "sess-1", "jti": "tok-1",
			"exp": now.Add(time.Hour).Unix(), "nbf": now.Unix(), "iat": now.Unix()}
	}
	sign := func(hdr, cl map[string]any) string {
		in := b64(hdr) + "." + b64(cl)
		return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(in)))
	}
	good := map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"}
	id, err := v.Verify(context.Background(), sign(good, claims()))
	if err != nil || id.Subject != "user-1" || id.SessionID != "sess-1" || !id.Offline {
		t.Fatalf("a good token: %v %+v", err, id)
	}

	refused := map[string]string{}
	with := func(k string, val any) map[string]any { c := claims(); c[k] = val; return c }
	refused["wrong issuer"] = sign(good, with("iss", "someone-else"))
	refused["wrong audience"] = sign(good, with("aud", "other-api"))
	refused["expired"] = sign(good, with("exp", now.Add(-time.Minute).Unix()))
	refused["not yet valid"] = sign(good, with("nbf", now.Add(time.Minute).Unix()))
	refused["no sid"] = sign(good, with("sid", ""))
	refused["typ JWT"] = sign(map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": "k1"}, claims())
	// alg none, and HS256 keyed with the public key: the algorithm is pinned.
	unsigned := b64(map[string]any{"alg": "none", "typ": "at+jwt", "kid": "k1"}) + "." + b64(claims())
	refused["alg none"] = unsigned + "."
	hsIn := b64(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": "k1"}) + "." + b64(claims())
	mac := hmac.New(sha256.New, pub)
	mac.Write([]byte(hsIn))
	refused["alg HS256 with the public key"] = hsIn + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	refused["not a JWT"] = "ic_live_abc"
	// The bits of the signature's last character that decode to nothing:
	// a token has one spelling.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	spelled := sign(good, claims())
	last := strings.IndexByte(alphabet, spelled[len(spelled)-1])
	refused["signature respelled"] = spelled[:len(spelled)-1] + string(alphabet[last^1])
	for what, tok := range refused {
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v, want ErrUnauthorized", what, err)
		}
	}
	// An unknown kid refetches the JWKS (a key added since), but made-up
	// kids within 10 s of a fetch do not make it fetch again.
	unknown := sign(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "k2"}, claims())
	if _, err := v.Verify(context.Background(), unknown); !errors.Is(err, ErrUnauthorized) || fetches.Load() != 1 {
		t.Fatalf("an unknown kid right after the first fetch: %v, %d fetches", err, fetches.Load())
	}
	now = now.Add(11 * time.Second)
	for range 5 {
		if _, err := v.Verify(context.Background(), unknown); !errors.Is(err, ErrUnauthorized) {
			t.Fatal(err)
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d fetches after more unknown kids, want still 2", n)
	}
	// A verified token is cached, and its expiry still applies.
	tok := sign(good, claims())
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	now = now.Add(61 * time.Minute)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a cached token past its expiry: %v", err)
	}
}

// TestMiddlewareAnswersOnly401403Or503: whatever else the service answers
// the authorizer (a wrong URL's 404, a 500, a proxy's 502 or 429), the
// middleware answers 503 UNAVAILABLE, as promised, never that status; the
// service's 401, 403 and 503 are relayed (outside check 12d: a wrong auth
// URL made every request a 404).
func TestMiddlewareAnswersOnly401403Or503(t *testing.T) {
	const token = "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsxIn0.e30.AAAA"
	for _, c := range []struct {
		upstream   int
		retryAfter string
		forward    int // what the middleware answers with forward auth
		offline    int // and with the JWKS verifier (0: not tried: the client retries it)
		wantAfter  string
	}{
		{500, "", 503, 503, ""},
		{502, "", 503, 503, ""},
		{404, "", 503, 503, ""},
		{400, "", 503, 503, ""},
		{200, "", 503, 0, ""}, // an answer that is no JWKS and no decision
		{429, "7", 503, 0, "7"},
		{401, "", 401, 503, ""},
		{403, "", 403, 503, ""},
		{503, "3", 503, 0, "3"},
	} {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c.retryAfter != "" {
				w.Header().Set("Retry-After", c.retryAfter)
			}
			w.WriteHeader(c.upstream)
			writeBody(t, w, "<html>oops</html>")
		}))
		fa, err := NewForwardAuth(up.URL)
		if err != nil {
			t.Fatal(err)
		}
		jv, err := NewJWKSVerifier(up.URL)
		if err != nil {
			t.Fatal(err)
		}
		for name, tc := range map[string]struct {
			a    Authorizer
			want int
		}{"forward auth": {fa, c.forward}, "offline": {jv, c.offline}} {
			if tc.want == 0 {
				continue
			}
			h := Middleware(tc.a)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				t.Errorf("%s, the service answering %d: the request passed", name, c.upstream)
			}))
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/api/v1/tenants/prod/nodes", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			h.ServeHTTP(rec, req)
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Errorf("%s, %d: not the contract's error: %s", name, c.upstream, rec.Body)
			}
			if rec.Code != tc.want || (tc.want == 503 && body.Error.Code != "UNAVAILABLE") {
				t.Errorf("%s, the service answering %d: %d %s, want %d", name, c.upstream, rec.Code, body.Error.Code, tc.want)
			}
			if name == "forward auth" && rec.Header().Get("Retry-After") != c.wantAfter {
				t.Errorf("%s, %d: Retry-After %q, want %q", name, c.upstream, rec.Header().Get("Retry-After"), c.wantAfter)
			}
		}
		up.Close()
	}
}
