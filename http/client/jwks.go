package client

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// JWKSVerifier verifies access tokens offline: the EdDSA (Ed25519) signature
// with the public keys of the service's JWKS (GET /.well-known/jwks.json),
// and iss, aud, exp, nbf and typ. It asks the service nothing per request,
// and so it has the trade-off the README spells out:
//
//   - a revoked token, a logout, a deactivation is NOT seen: the token
//     verifies until it expires (at most the access-token lifetime, 1 h by
//     default);
//   - the token carries identifiers only (sub, sid, jti, a scoped tenant),
//     never roles: Identity.Permissions is nil, and the handler decides;
//   - API keys are not JWTs and cannot be verified offline (401);
//   - tokens only verify once an EdDSA signing key signs them (POST
//     /api/v1/admin/signing-keys {"algorithm":"EdDSA"}): the default HS256
//     key is secret and not in the JWKS.
//
// Use ForwardAuth where a revoked token must stop at once. The algorithm is
// pinned to EdDSA (never taken from the token); the JWKS is fetched on first
// use, again after 5 minutes, and when a token names an unknown kid (at most
// once every 10 s, so that made-up kids cannot make it hammer the service);
// a retired key leaves the JWKS, and its tokens stop verifying after the
// next fetch.
type JWKSVerifier struct {
	c        *Client
	issuer   string
	audience string
	leeway   time.Duration
	maxAge   time.Duration
	minFetch time.Duration
	now      func() time.Time

	mu        sync.RWMutex
	keys      map[string]ed25519.PublicKey
	fetchedAt time.Time
	fetchMu   sync.Mutex // one fetch at a time

	// Tokens verified before, by their whole text (only the same bytes
	// hit): a signature check costs tens of microseconds, and a client
	// sends the same token for up to an hour. A hit is checked again for
	// expiry and for its key still being in the JWKS.
	cacheMu sync.RWMutex
	cache   map[string]*verifiedToken
}

type verifiedToken struct {
	id        Identity
	kid       string
	notAfter  time.Time // exp + leeway
	notBefore time.Time // nbf - leeway
}

// verifiedCacheSize bounds the cache; past it, an arbitrary entry goes.
const verifiedCacheSize = 10_000

// JWKSOption configures a JWKSVerifier.
type JWKSOption func(*JWKSVerifier)

// JWKSIssuer is the expected iss (default "infracast-auth", the service's
// INFRACAST_JWT_ISSUER default).
func JWKSIssuer(iss string) JWKSOption { return func(v *JWKSVerifier) { v.issuer = iss } }

// JWKSAudience is the expected aud (default "infracast-api").
func JWKSAudience(aud string) JWKSOption { return func(v *JWKSVerifier) { v.audience = aud } }

// JWKSLeeway is the clock skew allowed on exp and nbf (default 30 s).
func JWKSLeeway(d time.Duration) JWKSOption { return func(v *JWKSVerifier) { v.leeway = d } }

// JWKSMaxAge is how long a fetched JWKS is used before it is fetched again
// (default 5 min, the document's Cache-Control).
func JWKSMaxAge(d time.Duration) JWKSOption { return func(v *JWKSVerifier) { v.maxAge = d } }

// JWKSClock sets the verifier's clock (tests; default time.Now).
func JWKSClock(now func() time.Time) JWKSOption { return func(v *JWKSVerifier) { v.now = now } }

// JWKSHTTPClient fetches the JWKS through hc.
func JWKSHTTPClient(hc *http.Client) JWKSOption {
	return func(v *JWKSVerifier) { v.c = v.c.With(WithHTTPClient(hc)) }
}

// NewJWKSVerifier returns an offline verifier of the tokens of the service
// at authURL. Nothing is fetched before the first token.
func NewJWKSVerifier(authURL string, opts ...JWKSOption) (*JWKSVerifier, error) {
	c, err := New(authURL, WithRetry(Retry{MaxAttempts: 1}))
	if err != nil {
		return nil, err
	}
	v := &JWKSVerifier{c: c, issuer: "infracast-auth", audience: "infracast-api", leeway: 30 * time.Second,
		maxAge: 5 * time.Minute, minFetch: 10 * time.Second, now: time.Now}
	for _, o := range opts {
		o(v)
	}
	return v, nil
}

// Authorize verifies r's bearer token offline (Authorizer).
func (v *JWKSVerifier) Authorize(r *http.Request) (*Identity, error) {
	h, ok := oneAuthorization(r)
	if !ok || len(h) < 7 || !strings.EqualFold(h[:7], "Bearer ") {
		return nil, errNoCredentials
	}
	return v.Verify(r.Context(), strings.TrimSpace(h[7:]))
}

// invalid is a refused token: the contract's 401, whatever the reason
// (which is kept in the error's text for logs, never sent to the caller).
func invalid(reason string) error { return fmt.Errorf("%w (offline: %s)", errNoCredentials, reason) }

// Verify checks one access token and gives its identity. A refused token is
// ErrUnauthorized; a JWKS that cannot be fetched is another error.
func (v *JWKSVerifier) Verify(ctx context.Context, token string) (*Identity, error) {
	v.cacheMu.RLock()
	hit := v.cache[token]
	v.cacheMu.RUnlock()
	if hit != nil {
		now := v.now()
		if now.Before(hit.notBefore) || !now.Before(hit.notAfter) {
			return nil, invalid("expired")
		}
		key, err := v.key(ctx, hit.kid)
		if err != nil {
			return nil, err
		}
		if key == nil {
			return nil, invalid("its key left the JWKS")
		}
		id := hit.id
		return &id, nil
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, invalid("not a JWT")
	}
	var hdr struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
		Kid string `json:"kid"`
	}
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return nil, invalid("header: " + err.Error())
	}
	if hdr.Alg != "EdDSA" {
		return nil, invalid("algorithm " + hdr.Alg + " is not EdDSA")
	}
	typ := strings.ToLower(hdr.Typ)
	if typ != "at+jwt" && typ != "application/at+jwt" {
		return nil, invalid("typ is not at+jwt")
	}
	key, err := v.key(ctx, hdr.Kid)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, invalid("unknown kid")
	}
	// Strict: the last character's spare bits must be zero, so a token has
	// one spelling (a cache or deny-list keyed on the string is not evaded).
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil || !ed25519.Verify(key, []byte(parts[0]+"."+parts[1]), sig) {
		return nil, invalid("bad signature")
	}
	var cl struct {
		Iss    string   `json:"iss"`
		Sub    string   `json:"sub"`
		Aud    audience `json:"aud"`
		Exp    *int64   `json:"exp"`
		Nbf    *int64   `json:"nbf"`
		Jti    string   `json:"jti"`
		Sid    string   `json:"sid"`
		Tenant string   `json:"tenant"`
	}
	if err := decodeSegment(parts[1], &cl); err != nil {
		return nil, invalid("claims: " + err.Error())
	}
	now := v.now()
	switch {
	case cl.Iss != v.issuer:
		return nil, invalid("issuer")
	case !cl.Aud.has(v.audience):
		return nil, invalid("audience")
	case cl.Exp == nil || !now.Before(time.Unix(*cl.Exp, 0).Add(v.leeway)):
		return nil, invalid("expired")
	case cl.Nbf != nil && now.Before(time.Unix(*cl.Nbf, 0).Add(-v.leeway)):
		return nil, invalid("not yet valid")
	case cl.Sub == "" || cl.Sid == "" || cl.Jti == "":
		return nil, invalid("sub, sid or jti missing")
	}
	id := Identity{Subject: cl.Sub, Tenant: cl.Tenant, Offline: true, SessionID: cl.Sid, TokenID: cl.Jti,
		ExpiresAt: time.Unix(*cl.Exp, 0).UTC()}
	vt := &verifiedToken{id: id, kid: hdr.Kid, notAfter: id.ExpiresAt.Add(v.leeway), notBefore: time.Unix(0, 0)}
	if cl.Nbf != nil {
		vt.notBefore = time.Unix(*cl.Nbf, 0).Add(-v.leeway)
	}
	v.cacheMu.Lock()
	if v.cache == nil {
		v.cache = make(map[string]*verifiedToken)
	}
	if len(v.cache) >= verifiedCacheSize {
		for k := range v.cache {
			delete(v.cache, k)
			break
		}
	}
	v.cache[strings.Clone(token)] = vt
	v.cacheMu.Unlock()
	return &id, nil
}

// key gives the public key kid, fetching the JWKS when it is stale or does
// not know kid (nil, nil: no such key).
func (v *JWKSVerifier) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	v.mu.RLock()
	k, fetched := v.keys[kid], v.fetchedAt
	v.mu.RUnlock()
	now := v.now()
	stale := fetched.IsZero() || now.Sub(fetched) >= v.maxAge
	if k != nil && !stale {
		return k, nil
	}
	if !stale && now.Sub(fetched) < v.minFetch {
		return nil, nil // an unknown kid, and the JWKS was fetched a moment ago
	}
	if err := v.fetch(ctx, fetched); err != nil {
		if k != nil {
			return k, nil // keep using what was known while the service cannot be asked
		}
		return nil, err
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.keys[kid], nil
}

// fetch reads the JWKS, unless another goroutine did since seen.
func (v *JWKSVerifier) fetch(ctx context.Context, seen time.Time) error {
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	v.mu.RLock()
	done := v.fetchedAt.After(seen)
	v.mu.RUnlock()
	if done {
		return nil
	}
	set, err := v.c.JWKS(ctx)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			// Whatever the JWKS endpoint answered (a 401 of a proxy in
			// between, a wrong URL's 404), no token is decided by it.
			return undecided("fetch the JWKS", e)
		}
		return fmt.Errorf("infracast: fetch the JWKS: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.KeyType != "OKP" || k.Curve != "Ed25519" || (k.Alg != "" && k.Alg != "EdDSA") || (k.Use != "" && k.Use != "sig") {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			continue
		}
		keys[k.KeyID] = ed25519.PublicKey(x)
	}
	v.mu.Lock()
	v.keys, v.fetchedAt = keys, v.now()
	v.mu.Unlock()
	return nil
}

func decodeSegment(s string, out any) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// audience is a JWT aud: one string or an array of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

func (a audience) has(s string) bool {
	for _, x := range a {
		if x == s {
			return true
		}
	}
	return false
}
