package http

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenConfig configures access tokens.
type TokenConfig struct {
	// Keys are HS256 signing keys; the first signs, all verify (rotation).
	Keys     [][]byte
	Issuer   string
	Audience string
	TTL      time.Duration
	Leeway   time.Duration // clock skew tolerated on exp/nbf/iat
	Now      func() time.Time
}

// Claims are the claims of an Infracast access token.
type Claims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
	Tenant    string `json:"tenant,omitempty"`
}

// accessTokenType is the JOSE "typ" of access tokens (RFC 9068).
const accessTokenType = "at+jwt"

// Tokens issues and verifies access tokens.
type Tokens struct {
	cache   verifiedCache
	cfg     TokenConfig
	kid     string
	keys    map[string][]byte
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc
}

// ErrInvalidToken covers every reason a bearer token is refused.
var ErrInvalidToken = errors.New("http: invalid or expired token")

// KeyID derives the "kid" of a signing key (it reveals nothing of the key).
func KeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("infracast-kid:"), key...))
	return hex.EncodeToString(sum[:8])
}

// NewTokens validates cfg and returns an issuer/verifier.
func NewTokens(cfg TokenConfig) (*Tokens, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("http: at least one signing key is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Tokens{cfg: cfg, keys: make(map[string][]byte, len(cfg.Keys))}
	for i, k := range cfg.Keys {
		if len(k) < 32 {
			return nil, fmt.Errorf("http: signing key %d is shorter than 32 bytes", i)
		}
		id := KeyID(k)
		if i == 0 {
			t.kid = id
		}
		t.keys[id] = k
	}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	)
	t.keyFunc = func(tok *jwt.Token) (any, error) {
		if typ, _ := tok.Header["typ"].(string); typ != accessTokenType {
			return nil, ErrInvalidToken
		}
		kid, _ := tok.Header["kid"].(string)
		k, ok := t.keys[kid]
		if !ok {
			return nil, ErrInvalidToken
		}
		return k, nil
	}
	return t, nil
}

// TTL is the access-token lifetime.
func (t *Tokens) TTL() time.Duration { return t.cfg.TTL }

// Issue signs an access token for a session. Expiry is whole seconds, as in JWT.
func (t *Tokens) Issue(userID, sessionID, tokenID, tenant string) (string, time.Time, error) {
	now := t.cfg.Now().UTC().Truncate(time.Second)
	exp := now.Add(t.cfg.TTL)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: t.cfg.Issuer, Subject: userID, Audience: jwt.ClaimStrings{t.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(exp), NotBefore: jwt.NewNumericDate(now),
			IssuedAt: jwt.NewNumericDate(now), ID: tokenID,
		},
		SessionID: sessionID, Tenant: tenant,
	})
	tok.Header["typ"] = accessTokenType
	tok.Header["kid"] = t.kid
	s, err := tok.SignedString(t.keys[t.kid])
	return s, exp, err
}

// Verify checks signature, algorithm, type, kid, iss, aud, exp, nbf and iat,
// and returns the claims. Claims of tokens verified before come from a bounded
// cache (keyed by the whole token, so nothing but the same bytes hits), checked
// again for expiry; revocation is never cached: the caller checks the read model.
func (t *Tokens) Verify(raw string) (*Claims, error) {
	if c := t.cache.get(raw); c != nil {
		now := t.cfg.Now()
		if now.Before(c.ExpiresAt.Time.Add(t.cfg.Leeway)) && !now.Before(c.NotBefore.Time.Add(-t.cfg.Leeway)) {
			return c, nil
		}
		return nil, ErrInvalidToken
	}
	c, err := t.verify(raw)
	if err == nil {
		// raw may alias the request's buffer (Fiber/fasthttp zero-copy
		// strings), which is reused for later requests: the key must own its bytes.
		t.cache.put(strings.Clone(raw), c)
	}
	return c, err
}

func (t *Tokens) verify(raw string) (*Claims, error) {
	var c Claims
	if _, err := t.parser.ParseWithClaims(raw, &c, t.keyFunc); err != nil {
		return nil, ErrInvalidToken
	}
	if c.Subject == "" || c.SessionID == "" || c.ID == "" || c.NotBefore == nil {
		return nil, ErrInvalidToken
	}
	return &c, nil
}

// verifiedCacheSize bounds the cache; when full it starts afresh, which costs
// one full verification per live token.
const verifiedCacheSize = 100_000

// verifiedCache maps a raw token to its verified claims. Reads are lock-free.
type verifiedCache struct {
	m atomic.Pointer[sync.Map]
	n atomic.Int64
}

func (vc *verifiedCache) get(raw string) *Claims {
	m := vc.m.Load()
	if m == nil {
		return nil
	}
	if v, ok := m.Load(raw); ok {
		return v.(*Claims)
	}
	return nil
}

func (vc *verifiedCache) put(raw string, c *Claims) {
	m := vc.m.Load()
	if m == nil || vc.n.Load() >= verifiedCacheSize {
		m = new(sync.Map)
		vc.m.Store(m)
		vc.n.Store(0)
	}
	if _, loaded := m.LoadOrStore(raw, c); !loaded {
		vc.n.Add(1)
	}
}

// VerifySignature checks only signature, algorithm, type and kid, accepting an
// expired token (revocation needs no more: only this service holds the keys).
func (t *Tokens) VerifySignature(raw string) (*Claims, error) {
	var c Claims
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithoutClaimsValidation())
	if _, err := p.ParseWithClaims(raw, &c, t.keyFunc); err != nil {
		return nil, ErrInvalidToken
	}
	return &c, nil
}
