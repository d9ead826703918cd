package http

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oklog/ulid/v2"

	"github.com/infracast/auth/domain"
)

// KeySource supplies signing keys added and retired at run time (as events).
type KeySource interface {
	// SigningKeysVersion changes whenever a key is added or retired.
	SigningKeysVersion() uint64
	SigningKeys() []domain.SigningKey
}

// TokenConfig configures access tokens.
type TokenConfig struct {
	// Keys are static HS256 keys from configuration: the first signs unless
	// a run-time key exists, all verify (rotation by configuration).
	Keys     [][]byte
	Issuer   string
	Audience string
	TTL      time.Duration
	Leeway   time.Duration // clock skew tolerated on exp/nbf/iat
	Now      func() time.Time
	// Source, when set, adds run-time keys: of those neither retired nor
	// pending, the one that began signing last signs (domain.Signer);
	// every one that is not retired verifies. Unseal opens their sealed
	// secret.
	Source KeySource
	Unseal func(sealed string) ([]byte, error)
}

// Claims are the claims of an Infracast access token.
type Claims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
	Tenant    string `json:"tenant,omitempty"`
}

// accessTokenType is the JOSE "typ" of access tokens (RFC 9068).
const accessTokenType = "at+jwt"

// isAccessTokenType reports whether a token's "typ" header names an access
// token: a media type, so compared case-insensitively, with or without its
// "application/" prefix (RFC 7515 §4.1.9, RFC 8725 §3.11, RFC 9068 §2.1).
func isAccessTokenType(typ string) bool {
	if len(typ) > len("application/") && strings.EqualFold(typ[:len("application/")], "application/") {
		typ = typ[len("application/"):]
	}
	return strings.EqualFold(typ, accessTokenType)
}

// UnmarshalJSON decodes the claims, refusing a time claim (exp, iat, nbf)
// that is not a JSON number: RFC 7519 §2 defines NumericDate as one, while
// jwt.NumericDate alone would also take a numeric string such as "4102444800".
func (c *Claims) UnmarshalJSON(b []byte) error {
	type plain Claims // the same fields without this method
	var w struct {
		plain
		Exp json.RawMessage `json:"exp"`
		Iat json.RawMessage `json:"iat"`
		Nbf json.RawMessage `json:"nbf"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = Claims(w.plain)
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  **jwt.NumericDate
	}{{"exp", w.Exp, &c.ExpiresAt}, {"iat", w.Iat, &c.IssuedAt}, {"nbf", w.Nbf, &c.NotBefore}} {
		if len(f.raw) == 0 || string(f.raw) == "null" {
			continue
		}
		if f.raw[0] != '-' && (f.raw[0] < '0' || f.raw[0] > '9') {
			return fmt.Errorf("claim %s is not a NumericDate", f.name)
		}
		d := new(jwt.NumericDate)
		if err := d.UnmarshalJSON(f.raw); err != nil {
			return fmt.Errorf("claim %s: %w", f.name, err)
		}
		*f.dst = d
	}
	return nil
}

// signingKey is one usable key of the keyset.
type signingKey struct {
	id, alg string
	method  jwt.SigningMethod
	sign    any // []byte (HS256) or ed25519.PrivateKey
	verify  any // []byte (HS256) or ed25519.PublicKey
	public  string
	// HS256 only (issueHS256): the token's first segment, the same for
	// every token of the key, and HMAC-SHA256 states keyed with it.
	header string
	macs   *sync.Pool
}

// hs256 returns an HS256 signing key with what issueHS256 needs.
func hs256(id string, secret []byte) *signingKey {
	k := &signingKey{id: id, alg: domain.AlgHS256, method: jwt.SigningMethodHS256, sign: secret, verify: secret}
	// The header as jwt.Token.SigningString encodes it (a map: sorted keys).
	h, err := json.Marshal(map[string]any{"alg": jwt.SigningMethodHS256.Alg(), "kid": id, "typ": accessTokenType})
	if err != nil {
		panic(err) // strings only
	}
	k.header = base64.RawURLEncoding.EncodeToString(h)
	k.macs = &sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}
	return k
}

// keyset is an immutable set of keys; a new one replaces it on rotation.
type keyset struct {
	version uint64
	signer  *signingKey
	byID    map[string]*signingKey
}

// Tokens issues and verifies access tokens.
type Tokens struct {
	cache   verifiedCache
	cfg     TokenConfig
	static  []*signingKey
	current atomic.Pointer[keyset]
	mu      sync.Mutex // serialises keyset rebuilds
	parser  *jwt.Parser
	loose   *jwt.Parser
	keyFunc jwt.Keyfunc
}

// ErrInvalidToken covers every reason a bearer token is refused.
var ErrInvalidToken = errors.New("http: invalid or expired token")

// KeyID derives the "kid" of a static signing key (it reveals nothing of the key).
func KeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("infracast-kid:"), key...))
	return hex.EncodeToString(sum[:8])
}

// NewTokens validates cfg and returns an issuer/verifier.
func NewTokens(cfg TokenConfig) (*Tokens, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("http: at least one signing key is required")
	}
	if cfg.Source != nil && cfg.Unseal == nil {
		return nil, errors.New("http: a key source needs an unseal function")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Tokens{cfg: cfg}
	for i, k := range cfg.Keys {
		if len(k) < 32 {
			return nil, fmt.Errorf("http: signing key %d is shorter than 32 bytes", i)
		}
		t.static = append(t.static, hs256(KeyID(k), k))
	}
	t.current.Store(t.build(0, nil))
	methods := []string{jwt.SigningMethodHS256.Alg(), jwt.SigningMethodEdDSA.Alg()}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		// A signature's last base64url character carries bits that decode
		// to nothing; without strict decoding a token had several spellings
		// that all verified, each slipping past whatever keys on the string.
		jwt.WithStrictDecoding(),
	)
	t.loose = jwt.NewParser(jwt.WithValidMethods(methods), jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())
	t.keyFunc = func(tok *jwt.Token) (any, error) {
		if typ, _ := tok.Header["typ"].(string); !isAccessTokenType(typ) {
			return nil, ErrInvalidToken
		}
		kid, _ := tok.Header["kid"].(string)
		k, ok := t.keys().byID[kid]
		// The key decides the algorithm, never the token: an HS256 token
		// cannot borrow an EdDSA public key as its secret, nor the reverse.
		if !ok || tok.Method.Alg() != k.alg {
			return nil, ErrInvalidToken
		}
		return k.verify, nil
	}
	return t, nil
}

// build makes a keyset of the static keys and the run-time ones that are not
// retired (pending ones included: they verify, and are in the JWKS); the
// run-time key that began signing last signs (domain.Signer), else the
// first static key.
func (t *Tokens) build(version uint64, runtime []domain.SigningKey) *keyset {
	ks := &keyset{version: version, byID: make(map[string]*signingKey, len(t.static)+len(runtime))}
	for _, k := range t.static {
		ks.byID[k.id] = k
	}
	ks.signer = t.static[0]
	usable := make([]domain.SigningKey, 0, len(runtime))
	for _, rk := range runtime {
		if rk.Retired {
			continue
		}
		k, err := t.open(rk)
		if err != nil {
			continue // a key this deployment cannot open neither signs nor verifies
		}
		ks.byID[k.id] = k
		usable = append(usable, rk)
	}
	if rk, ok := domain.Signer(usable); ok {
		ks.signer = ks.byID[rk.ID]
	}
	return ks
}

func (t *Tokens) open(rk domain.SigningKey) (*signingKey, error) {
	raw, err := t.cfg.Unseal(rk.SecretSealed)
	if err != nil {
		return nil, err
	}
	switch rk.Algorithm {
	case domain.AlgHS256:
		if len(raw) < 32 {
			return nil, errors.New("short key")
		}
		return hs256(rk.ID, raw), nil
	case domain.AlgEdDSA:
		if len(raw) != ed25519.SeedSize {
			return nil, errors.New("bad seed")
		}
		priv := ed25519.NewKeyFromSeed(raw)
		return &signingKey{id: rk.ID, alg: rk.Algorithm, method: jwt.SigningMethodEdDSA, sign: priv,
			verify: priv.Public(), public: rk.PublicKey}, nil
	}
	return nil, errors.New("unknown algorithm")
}

// keys returns the current keyset, rebuilding it when the run-time keys changed
// (one atomic load per call otherwise).
func (t *Tokens) keys() *keyset {
	ks := t.current.Load()
	if t.cfg.Source == nil || ks.version == t.cfg.Source.SigningKeysVersion() {
		return ks
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// The version is read before the keys: a change in between only makes
	// the next call rebuild again.
	v := t.cfg.Source.SigningKeysVersion()
	if ks = t.current.Load(); ks.version == v {
		return ks
	}
	ks = t.build(v, t.cfg.Source.SigningKeys())
	t.current.Store(ks)
	return ks
}

// TTL is the access-token lifetime.
func (t *Tokens) TTL() time.Duration { return t.cfg.TTL }

// Leeway is the clock skew tolerated on a token's exp: it is accepted until
// then plus Leeway.
func (t *Tokens) Leeway() time.Duration { return t.cfg.Leeway }

// SigningKeyID is the kid of the key that signs now.
func (t *Tokens) SigningKeyID() string { return t.keys().signer.id }

// Issue signs an access token for a session. Expiry is whole seconds, as in JWT.
func (t *Tokens) Issue(userID, sessionID, tokenID, tenant string) (string, time.Time, error) {
	return t.IssueUntil(userID, sessionID, tokenID, tenant, time.Time{})
}

// IssueUntil is Issue for a session that ends at sessionEnds (zero: not
// known): the token expires then at the latest. A refresh in the session's
// last hour answered an expiry past the session's end, so a client that
// refreshes "when five minutes remain" held a token refused already, and a
// verifier checking signatures offline (JWKS) took it until its exp (an
// outside check, 14b).
func (t *Tokens) IssueUntil(userID, sessionID, tokenID, tenant string, sessionEnds time.Time) (string, time.Time, error) {
	now := t.cfg.Now().UTC().Truncate(time.Second)
	exp := now.Add(t.cfg.TTL)
	if ends := sessionEnds.UTC().Truncate(time.Second); !sessionEnds.IsZero() && ends.Before(exp) {
		exp = ends
	}
	k := t.keys().signer
	if k.macs != nil && jwt.TimePrecision == time.Second && jwt.MarshalSingleStringAsArray {
		return t.issueHS256(k, userID, sessionID, tokenID, tenant, now, exp), exp, nil
	}
	tok := jwt.NewWithClaims(k.method, Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: t.cfg.Issuer, Subject: userID, Audience: jwt.ClaimStrings{t.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(exp), NotBefore: jwt.NewNumericDate(now),
			IssuedAt: jwt.NewNumericDate(now), ID: tokenID,
		},
		SessionID: sessionID, Tenant: tenant,
	})
	tok.Header["typ"] = accessTokenType
	tok.Header["kid"] = k.id
	s, err := tok.SignedString(k.sign)
	return s, exp, err
}

// issueHS256 is Issue for an HS256 key, byte for byte the token that
// jwt.Token.SignedString makes of the same claims (TestIssueHS256IsTheLibrarys),
// without its maps, reflection and per-token HMAC key schedule: signing was
// a quarter of the refresh handler's CPU in the refresh benchmark.
func (t *Tokens) issueHS256(k *signingKey, userID, sessionID, tokenID, tenant string, now, exp time.Time) string {
	// The claims as encoding/json marshals Claims: fields in order, empty
	// omitempty ones left out, times in whole seconds, the audience as an
	// array of one (jwt.MarshalSingleStringAsArray).
	c := make([]byte, 0, 256)
	c = append(c, '{')
	field := func(name, v string, omitEmpty bool) {
		if v == "" && omitEmpty {
			return
		}
		if len(c) > 1 {
			c = append(c, ',')
		}
		c = append(c, '"')
		c = append(c, name...)
		c = append(c, `":`...)
		c = appendJSONString(c, v)
	}
	field("iss", t.cfg.Issuer, true)
	field("sub", userID, true)
	if len(c) > 1 {
		c = append(c, ',')
	}
	c = append(c, `"aud":[`...)
	c = appendJSONString(c, t.cfg.Audience)
	c = append(c, `],"exp":`...)
	c = strconv.AppendInt(c, exp.Unix(), 10)
	c = append(c, `,"nbf":`...)
	c = strconv.AppendInt(c, now.Unix(), 10)
	c = append(c, `,"iat":`...)
	c = strconv.AppendInt(c, now.Unix(), 10)
	field("jti", tokenID, true)
	field("sid", sessionID, false)
	field("tenant", tenant, true)
	c = append(c, '}')

	enc := base64.RawURLEncoding
	out := make([]byte, 0, len(k.header)+1+enc.EncodedLen(len(c))+1+enc.EncodedLen(sha256.Size))
	out = append(out, k.header...)
	out = append(out, '.')
	out = enc.AppendEncode(out, c)
	mac := k.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(out)
	var sum [sha256.Size]byte
	sig := mac.Sum(sum[:0])
	k.macs.Put(mac)
	out = append(out, '.')
	out = enc.AppendEncode(out, sig)
	return string(out)
}

// appendJSONString appends s as encoding/json encodes a string: IDs, the
// issuer and the audience are plain ASCII, and anything else goes through
// encoding/json itself (its escaping of HTML characters, control
// characters, U+2028/U+2029 and invalid UTF-8).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Verify checks signature, algorithm (the key's), type, kid, iss, aud, exp,
// nbf and iat, and returns the claims. Claims of tokens verified before come
// from a bounded cache (keyed by the whole token, so nothing but the same
// bytes hits), checked again for expiry and for their key still being in
// use; revocation is never cached: the caller checks the read model.
func (t *Tokens) Verify(raw string) (*Claims, error) {
	if e := t.cache.get(raw); e != nil {
		now := t.cfg.Now()
		c := e.claims
		if _, live := t.keys().byID[e.kid]; live &&
			now.Before(c.ExpiresAt.Time.Add(t.cfg.Leeway)) && !now.Before(c.NotBefore.Time.Add(-t.cfg.Leeway)) {
			return c, nil
		}
		return nil, ErrInvalidToken
	}
	var c Claims
	tok, err := t.parser.ParseWithClaims(raw, &c, t.keyFunc)
	if err != nil || c.Subject == "" || c.SessionID == "" || c.ID == "" || c.NotBefore == nil {
		return nil, ErrInvalidToken
	}
	kid, _ := tok.Header["kid"].(string)
	// raw may alias the request's buffer (Fiber/fasthttp zero-copy strings),
	// which is reused for later requests: the key must own its bytes.
	t.cache.put(strings.Clone(raw), &verified{claims: &c, kid: kid})
	return &c, nil
}

// VerifySignature checks only signature, algorithm, type and kid, accepting an
// expired token (revocation needs no more: only this service holds the keys).
func (t *Tokens) VerifySignature(raw string) (*Claims, error) {
	var c Claims
	if _, err := t.loose.ParseWithClaims(raw, &c, t.keyFunc); err != nil {
		return nil, ErrInvalidToken
	}
	return &c, nil
}

// newKeyWindow: how long after its ID was made (by the adding replica's
// clock) a run-time key counts as new, so that a token of it that this
// replica cannot verify makes it catch up (newUnknownKey); a key's ID is
// made moments before its event is stored. maxHeaderLen bounds what is
// decoded of a token that did not verify.
const (
	newKeyWindow = time.Minute
	maxHeaderLen = 1024
)

// newUnknownKey reports whether raw is an access token (by its header, the
// signature unchecked) of a run-time key this replica does not hold, whose
// ID — "sk-" and a ULID, as commands.NewID makes it — says the key was
// added within newKeyWindow of now (either way: the replicas' clocks may
// differ): another replica may have added it and signed with it before this
// one applied its event. Anything else — a static key's kid, a retired
// key's older one, a made-up shape — is refused as before, without asking
// the event store. Off the hot path: only for a token that did not verify.
func (t *Tokens) newUnknownKey(raw string) bool {
	if t.cfg.Source == nil {
		return false
	}
	seg, _, ok := strings.Cut(raw, ".")
	if !ok || len(seg) > maxHeaderLen {
		return false
	}
	js, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return false
	}
	var h struct {
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}
	if json.Unmarshal(js, &h) != nil || !isAccessTokenType(h.Typ) {
		return false
	}
	id, ok := strings.CutPrefix(h.Kid, "sk-")
	if !ok {
		return false
	}
	u, err := ulid.ParseStrict(id)
	if err != nil {
		return false
	}
	// ulid.Make reads the wall clock, not the configured one.
	age := time.Since(ulid.Time(u.Time()))
	if age >= newKeyWindow || age <= -newKeyWindow {
		return false
	}
	_, known := t.keys().byID[h.Kid]
	return !known
}

// JWK is a public key in JWKS form (RFC 7517, RFC 8037 for Ed25519).
type JWK struct {
	KeyType string `json:"kty"`
	Curve   string `json:"crv"`
	X       string `json:"x"`
	KeyID   string `json:"kid"`
	Use     string `json:"use"`
	Alg     string `json:"alg"`
}

// JWKS lists the public keys of the EdDSA keys in use, for verifiers that
// check access tokens offline. HS256 keys are secret and never listed.
func (t *Tokens) JWKS() []JWK {
	out := []JWK{}
	for _, k := range t.keys().byID {
		if k.alg == domain.AlgEdDSA {
			x := k.public
			if x == "" {
				x = base64.RawURLEncoding.EncodeToString(k.verify.(ed25519.PublicKey))
			}
			out = append(out, JWK{KeyType: "OKP", Curve: "Ed25519", X: x, KeyID: k.id, Use: "sig", Alg: domain.AlgEdDSA})
		}
	}
	return out
}

// verifiedCacheSize bounds the cache; when full it starts afresh, which costs
// one full verification per live token.
const verifiedCacheSize = 100_000

type verified struct {
	claims *Claims
	kid    string
}

// verifiedCache maps a raw token to its verified claims. Reads are lock-free.
type verifiedCache struct {
	m atomic.Pointer[sync.Map]
	n atomic.Int64
}

func (vc *verifiedCache) get(raw string) *verified {
	m := vc.m.Load()
	if m == nil {
		return nil
	}
	if v, ok := m.Load(raw); ok {
		return v.(*verified)
	}
	return nil
}

func (vc *verifiedCache) put(raw string, v *verified) {
	m := vc.m.Load()
	if m == nil || vc.n.Load() >= verifiedCacheSize {
		m = new(sync.Map)
		vc.m.Store(m)
		vc.n.Store(0)
	}
	if _, loaded := m.LoadOrStore(raw, v); !loaded {
		vc.n.Add(1)
	}
}
