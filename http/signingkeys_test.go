package http

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/projections"
)

// keySourceStub is a replica's read model of the run-time signing keys.
type keySourceStub struct {
	mu      sync.Mutex
	version uint64
	keys    []domain.SigningKey
}

func (k *keySourceStub) SigningKeysVersion() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.version
}

func (k *keySourceStub) SigningKeys() []domain.SigningKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]domain.SigningKey(nil), k.keys...)
}

func (k *keySourceStub) add(sk domain.SigningKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append(k.keys, sk)
	k.version++
}

// laggingReplica is a replica that has not applied a key another replica
// added until it catches up with the event store's head.
type laggingReplica struct {
	source  *keySourceStub
	pending []domain.SigningKey
	alone   bool
	catches atomic.Int32
}

func (l *laggingReplica) CatchUp(context.Context, string, string) error { return nil }
func (l *laggingReplica) CatchUpHead(context.Context) error {
	l.catches.Add(1)
	for _, k := range l.pending {
		l.source.add(k)
	}
	l.pending = nil
	return nil
}
func (l *laggingReplica) Alone() bool         { return l.alone }
func (l *laggingReplica) CatchUpBudget() bool { return true }

// adminModel finds every session valid, of a platform admin.
type adminModel struct{ ReadModel }

func (adminModel) Authorize(string, string, time.Time) (projections.Principal, projections.Verdict) {
	return projections.Principal{User: domain.User{ID: "user-1", Active: true, Roles: []domain.GlobalRole{domain.GlobalAdmin}}}, projections.Valid
}

func (adminModel) AuthorizeKeySum([32]byte, netip.Addr, time.Time) (projections.KeyPrincipal, projections.Verdict) {
	return projections.KeyPrincipal{}, projections.UnknownKey
}

// newEdDSAKey makes a run-time EdDSA key with the given ID, sealed as
// unsealStub opens it.
func newEdDSAKey(t *testing.T, id string) domain.SigningKey {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, id)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	return domain.SigningKey{ID: id, Algorithm: domain.AlgEdDSA, SecretSealed: base64.StdEncoding.EncodeToString(seed),
		PublicKey: base64.RawURLEncoding.EncodeToString(pub), AddedAt: time.Now()}
}

func unsealStub(sealed string) ([]byte, error) { return base64.StdEncoding.DecodeString(sealed) }

func tokensOf(t *testing.T, src KeySource) *Tokens {
	t.Helper()
	tk, err := NewTokens(TokenConfig{Keys: [][]byte{testKey}, Issuer: "infracast-auth", Audience: "infracast-api",
		TTL: time.Hour, Now: time.Now, Source: src, Unseal: unsealStub})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// kidAt is a signing key's ID as commands.NewID("sk") makes it at t.
func kidAt(t time.Time) string {
	return "sk-" + ulid.MustNew(ulid.Timestamp(t), strings.NewReader(strings.Repeat("\x01", 16))).String()
}

// TestTokenOfAKeyAddedOnAnotherReplica: replica A adds a signing key and
// signs a token with it at once; replica B, which has not applied the key
// yet, catches up with the event store before it refuses the token — for
// the middleware, forward auth and RFC 7009 revocation — and lists the key
// in its JWKS (outside check 17d: refused 401, and left out of the JWKS,
// until B applied the key). Only a kid of the service's shape, dated within
// a minute, and only while another replica serves, makes it ask.
func TestTokenOfAKeyAddedOnAnotherReplica(t *testing.T) {
	type replicas struct {
		a *Tokens
		b *Server
		l *laggingReplica
	}
	// setup: A holds key (added moments ago); B does not until it catches up.
	setup := func(t *testing.T, key domain.SigningKey, alone bool) replicas {
		srcA := &keySourceStub{}
		srcA.add(key)
		l := &laggingReplica{source: &keySourceStub{}, pending: []domain.SigningKey{key}, alone: alone}
		b := New(Config{}, Deps{Tokens: tokensOf(t, l.source), Readiness: readyStub{}, CatchUp: l, Model: adminModel{}})
		b.App().Get("/resource", b.Authenticate(), func(c *fiber.Ctx) error { return c.SendStatus(204) })
		return replicas{a: tokensOf(t, srcA), b: b, l: l}
	}
	do := func(t *testing.T, s *Server, method, path, token string, hdr map[string]string) (int, string) {
		t.Helper()
		req := httptest.NewRequest(method, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := s.App().Test(req, 5000)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	fresh := kidAt(time.Now())

	for _, tc := range []struct {
		name         string
		method, path string
		hdr          map[string]string
		want         int
	}{
		{"middleware", "GET", "/resource", nil, 204},
		{"forward auth", "GET", "/api/v1/auth/verify",
			map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/api/v1/tenants/prod/nodes"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := setup(t, newEdDSAKey(t, fresh), false)
			if got := r.a.SigningKeyID(); got != fresh {
				t.Fatalf("A signs with %s, want the new key %s", got, fresh)
			}
			tok, _, err := r.a.Issue("user-1", "sess-1", "tok-1", "")
			if err != nil {
				t.Fatal(err)
			}
			if got, body := do(t, r.b, tc.method, tc.path, tok, tc.hdr); got != tc.want || r.l.catches.Load() != 1 {
				t.Fatalf("A's token of its new key on B: %d %s after %d catch-ups, want %d after 1", got, body, r.l.catches.Load(), tc.want)
			}
			// Known now: the next request does not ask again.
			if got, _ := do(t, r.b, tc.method, tc.path, tok, tc.hdr); got != tc.want || r.l.catches.Load() != 1 {
				t.Fatalf("again: %d after %d catch-ups, want %d after 1", got, r.l.catches.Load(), tc.want)
			}
		})
	}

	t.Run("revocation", func(t *testing.T) {
		r := setup(t, newEdDSAKey(t, fresh), false)
		tok, _, err := r.a.Issue("user-1", "sess-1", "tok-1", "")
		if err != nil {
			t.Fatal(err)
		}
		// As POST /api/v1/auth/revoke checks the token it is given.
		r.b.App().Get("/signature", func(c *fiber.Ctx) error {
			if _, err := r.b.verifyToken(c, strings.TrimPrefix(c.Get("Authorization"), "Bearer "), r.b.tokens.VerifySignature); err != nil {
				return errUnauthorized
			}
			return c.SendStatus(204)
		})
		if got, _ := do(t, r.b, "GET", "/signature", tok, nil); got != 204 || r.l.catches.Load() != 1 {
			t.Fatalf("VerifySignature of A's new key's token on B: %d after %d catch-ups, want verified after 1", got, r.l.catches.Load())
		}
	})

	t.Run("jwks", func(t *testing.T) {
		r := setup(t, newEdDSAKey(t, fresh), false)
		got, body := do(t, r.b, "GET", "/.well-known/jwks.json", "", nil)
		var doc struct {
			Keys []JWK `json:"keys"`
		}
		if err := json.Unmarshal([]byte(body), &doc); got != 200 || err != nil {
			t.Fatalf("JWKS: %d %s %v", got, body, err)
		}
		if len(doc.Keys) != 1 || doc.Keys[0].KeyID != fresh || r.l.catches.Load() != 1 {
			t.Fatalf("B's JWKS right after A added %s: %s after %d catch-ups, want the key after 1", fresh, body, r.l.catches.Load())
		}
	})

	t.Run("jwks alone", func(t *testing.T) {
		r := setup(t, newEdDSAKey(t, fresh), true)
		if got, body := do(t, r.b, "GET", "/.well-known/jwks.json", "", nil); got != 200 || r.l.catches.Load() != 0 {
			t.Fatalf("alone: %d %s after %d catch-ups, want none", got, body, r.l.catches.Load())
		}
	})

	// What does not make B ask: the token is refused as before.
	for _, tc := range []struct {
		name  string
		kid   string
		alone bool
	}{
		{"alone", fresh, true},
		{"key added two minutes ago", kidAt(time.Now().Add(-2 * time.Minute)), false},
		{"key dated two minutes ahead", kidAt(time.Now().Add(2 * time.Minute)), false},
		{"not a run-time key's shape", "sk-not-a-ulid", false},
		{"another prefix", "key-" + strings.TrimPrefix(fresh, "sk-"), false},
	} {
		t.Run("no catch-up: "+tc.name, func(t *testing.T) {
			r := setup(t, newEdDSAKey(t, tc.kid), tc.alone)
			tok, _, err := r.a.Issue("user-1", "sess-1", "tok-1", "")
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := do(t, r.b, "GET", "/resource", tok, nil); got != 401 || r.l.catches.Load() != 0 {
				t.Fatalf("%d after %d catch-ups, want 401 after none", got, r.l.catches.Load())
			}
		})
	}

	t.Run("made-up fresh kid", func(t *testing.T) {
		// A kid of the right shape that no replica added: one catch-up,
		// then refused (the token's signature is checked after it).
		r := setup(t, newEdDSAKey(t, fresh), false)
		r.l.pending = nil
		tok, _, err := r.a.Issue("user-1", "sess-1", "tok-1", "")
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := do(t, r.b, "GET", "/resource", tok, nil); got != 401 || r.l.catches.Load() != 1 {
			t.Fatalf("%d after %d catch-ups, want 401 after 1", got, r.l.catches.Load())
		}
	})
}

// TestPacedCatchUps: a request is answered by a catch-up that started after
// it arrived (never by one in flight when it came), concurrent requests
// share them, and they start keyCatchUpInterval apart at the least.
func TestPacedCatchUps(t *testing.T) {
	var p pacedCatchUps
	var mu sync.Mutex
	var starts []time.Time
	gate, started := make(chan struct{}), make(chan struct{})
	catchUp := func(context.Context) error {
		mu.Lock()
		starts = append(starts, time.Now())
		n := len(starts)
		mu.Unlock()
		if n == 1 {
			close(started)
			<-gate // the first round stays in flight until released
		}
		return fmt.Errorf("round %d", n)
	}
	rounds := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(starts)
	}
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { first <- p.do(ctx, catchUp) }()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the first round did not start")
	}
	// Arriving while round 1 is in flight: answered by a later round.
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- p.do(ctx, catchUp)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil || err.Error() == "round 1" {
			t.Fatalf("a request that came while round 1 was in flight was answered by %v", err)
		}
	}
	close(gate)
	if err := <-first; err == nil || err.Error() != "round 1" {
		t.Fatalf("the first request: %v, want round 1", err)
	}
	if got := rounds(); got > n {
		t.Fatalf("%d rounds for %d requests: not shared", got, n+1)
	}
	for i := 1; i < len(starts); i++ {
		if d := starts[i].Sub(starts[i-1]); d < keyCatchUpInterval {
			t.Fatalf("rounds %d and %d started %v apart, want %v at the least", i, i+1, d, keyCatchUpInterval)
		}
	}
	// A caller's own context bounds its wait.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.do(ctx, func(context.Context) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}

// unreachableStore is a replica, not alone, whose catch-ups fail.
type unreachableStore struct{ laggingReplica }

func (u *unreachableStore) CatchUpHead(context.Context) error {
	u.catches.Add(1)
	return errors.New("event store unreachable")
}

// TestJWKSCacheControl: a JWKS served after a catch-up is cached five
// minutes; one served from read models that could not catch up (it may
// lack the newest key) says no-store, so that no shared cache hands it out
// for five minutes (outside check 20o).
func TestJWKSCacheControl(t *testing.T) {
	for _, tc := range []struct {
		name    string
		catchUp interface {
			CatchUp(context.Context, string, string) error
			CatchUpHead(context.Context) error
			Alone() bool
			CatchUpBudget() bool
		}
		want string
	}{
		{"caught up", &laggingReplica{source: &keySourceStub{}}, "public, max-age=300"},
		{"alone", &laggingReplica{source: &keySourceStub{}, alone: true}, "public, max-age=300"},
		{"catch-up failed", &unreachableStore{laggingReplica{source: &keySourceStub{}}}, "no-store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &keySourceStub{}
			src.add(newEdDSAKey(t, kidAt(time.Now())))
			s := New(Config{}, Deps{Tokens: tokensOf(t, src), Readiness: readyStub{}, CatchUp: tc.catchUp, Model: adminModel{}})
			res, err := s.App().Test(httptest.NewRequest("GET", "/.well-known/jwks.json", nil), 5000)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 || res.Header.Get("Cache-Control") != tc.want {
				t.Fatalf("%d, Cache-Control %q, want 200 and %q", res.StatusCode, res.Header.Get("Cache-Control"), tc.want)
			}
		})
	}
}

// TestPendingKeyIsPublishedNotSigning: a pending key verifies and is in the
// JWKS, while the key before it signs; activated, it signs, and the old
// key's tokens verify until it is retired (outside check 20o: a key signed
// at once, before verifiers that cache the JWKS had it).
func TestPendingKeyIsPublishedNotSigning(t *testing.T) {
	src := &keySourceStub{}
	old := newEdDSAKey(t, "sk-old")
	src.add(old)
	next := newEdDSAKey(t, "sk-next")
	next.AddedAt, next.Pending = old.AddedAt.Add(time.Second), true
	src.add(next)
	tk := tokensOf(t, src)
	if got := tk.SigningKeyID(); got != "sk-old" {
		t.Fatalf("signs with %s while sk-next is pending, want sk-old", got)
	}
	kids := map[string]bool{}
	for _, k := range tk.JWKS() {
		kids[k.KeyID] = true
	}
	if !kids["sk-old"] || !kids["sk-next"] {
		t.Fatalf("JWKS %v: want both keys", kids)
	}
	oldTok, _, err := tk.Issue("user-1", "sess-1", "tok-1", "")
	if err != nil {
		t.Fatal(err)
	}
	// Activated: the new key signs; the old key's tokens still verify.
	src.mu.Lock()
	src.keys[1].Pending, src.keys[1].ActivatedAt = false, next.AddedAt.Add(time.Minute)
	src.version++
	src.mu.Unlock()
	if got := tk.SigningKeyID(); got != "sk-next" {
		t.Fatalf("signs with %s after the activation, want sk-next", got)
	}
	if _, err := tk.Verify(oldTok); err != nil {
		t.Fatalf("the old key's token after the activation: %v", err)
	}
	// The old key activated again takes over from the newer one.
	src.mu.Lock()
	src.keys[0].ActivatedAt = next.AddedAt.Add(2 * time.Minute)
	src.version++
	src.mu.Unlock()
	if got := tk.SigningKeyID(); got != "sk-old" {
		t.Fatalf("signs with %s after the old key's activation, want sk-old", got)
	}
}
