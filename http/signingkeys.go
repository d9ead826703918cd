package http

import (
	"context"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// SigningKeyCommands rotates access-token signing keys.
type SigningKeyCommands interface {
	AddSigningKey(ctx context.Context, meta events.Meta, algorithm string, pending, fallBackToHS256 bool) (domain.SigningKey, error)
	ActivateSigningKey(ctx context.Context, meta events.Meta, keyID string, fallBackToHS256 bool) (domain.SigningKey, error)
	RetireSigningKey(ctx context.Context, meta events.Meta, keyID string, fallBackToHS256 bool) (domain.SigningKey, error)
}

// SigningKeyModel lists the run-time signing keys.
type SigningKeyModel interface {
	SigningKeys() []domain.SigningKey
}

type signingKeyJSON struct {
	ID        string  `json:"id"`
	Algorithm string  `json:"algorithm"`
	Source    string  `json:"source"` // "config" or "event"
	Signing   bool    `json:"signing"`
	Pending   bool    `json:"pending"` // published (verifies, in the JWKS), signs once activated
	Retired   bool    `json:"retired"`
	AddedAt   *string `json:"added_at"`
	// ActivatedAt: when a key that was pending, or had been taken over,
	// was activated.
	ActivatedAt *string `json:"activated_at,omitempty"`
	RetiredAt   *string `json:"retired_at,omitempty"`
}

// runtimeSigningKeyJSON is a run-time key as the API shows it; signer is
// the kid that signs on this replica now.
func runtimeSigningKeyJSON(k domain.SigningKey, signer string) signingKeyJSON {
	return signingKeyJSON{ID: k.ID, Algorithm: k.Algorithm, Source: "event", Signing: k.ID == signer,
		Pending: k.Pending, Retired: k.Retired, AddedAt: optTime(k.AddedAt),
		ActivatedAt: optTime(k.ActivatedAt), RetiredAt: optTime(k.RetiredAt)}
}

// jwks: GET /.well-known/jwks.json — the EdDSA public keys in use: every
// one the event store held when the request came, on every replica. Another
// replica signs with a key it added as soon as it applied it, and a verifier
// that meets the new kid fetches this document — maybe from a replica that
// has not applied the key yet, which left it out, and the verifier refused
// the key's tokens until its next fetch (outside check 17d). So, while
// another replica serves, this replica first catches up with the event
// store's head (paced: keyCatchUps); if that fails, it answers from its
// read models as they are, as a list does (current), counted — and says
// no-store: that answer may lack the newest key, and a shared cache would
// hand it out for the 5 minutes of max-age (outside check 20o).
func (s *Server) jwks(c *fiber.Ctx) error {
	cache := "public, max-age=300"
	if s.deps.CatchUp != nil && !s.deps.CatchUp.Alone() {
		if err := s.catchUpSigningKeys(c); err != nil {
			s.log.Debug("serving the JWKS from read models that could not catch up", "err", err)
			s.deps.Metrics.BackgroundError("signing_key_catch_up")
			cache = "no-store"
		}
	}
	c.Set(fiber.HeaderCacheControl, cache)
	return c.JSON(fiber.Map{"keys": s.tokens.JWKS()})
}

// catchUpSigningKeys waits (up to a second) until this replica has applied
// everything the event store held when it was called — every signing key
// added before — through keyCatchUps.
func (s *Server) catchUpSigningKeys(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), time.Second)
	defer cancel()
	return s.keyCatchUps.do(ctx, s.deps.CatchUp.CatchUpHead)
}

// keyCatchUpInterval: the catch-ups for signing keys (the JWKS, a token of
// a key this replica does not know) start at most once per interval, so
// that anyone who may send requests — the JWKS needs no credentials, a
// token with a made-up kid costs nothing — cannot make them a flood of
// questions to the event store.
const keyCatchUpInterval = 5 * time.Millisecond

// pacedCatchUps shares catch-ups between concurrent requests, as
// events.Store.Head shares its questions: a request joins the round that
// has not started yet (or makes it), so the catch-up it waits for always
// starts after it arrived and includes every event stored before; a round
// starts keyCatchUpInterval after the one before at the earliest. The zero
// value is ready to use.
type pacedCatchUps struct {
	mu      sync.Mutex
	waiting *catchUpRound // the round that has not started, if any
	last    time.Time     // when the last round started
}

type catchUpRound struct {
	done chan struct{}
	err  error
}

// headCatchUpTimeout bounds one round; every request also waits no longer
// than its own context.
const headCatchUpTimeout = 2 * time.Second

// do waits for the next round of catchUp, started after it was called.
func (p *pacedCatchUps) do(ctx context.Context, catchUp func(context.Context) error) error {
	p.mu.Lock()
	r := p.waiting
	if r == nil {
		r = &catchUpRound{done: make(chan struct{})}
		p.waiting = r
		go p.run(r, time.Until(p.last.Add(keyCatchUpInterval)), catchUp)
	}
	p.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run starts round r after wait, closing it to later requests, and answers
// the requests that joined it.
func (p *pacedCatchUps) run(r *catchUpRound, wait time.Duration, catchUp func(context.Context) error) {
	if wait > 0 {
		t := time.NewTimer(wait)
		<-t.C
	}
	p.mu.Lock()
	p.waiting, p.last = nil, time.Now()
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), headCatchUpTimeout)
	r.err = catchUp(ctx)
	cancel()
	close(r.done)
}

func (s *Server) requirePlatformAdmin(c *fiber.Ctx) error {
	if !caller(c).IsPlatformAdmin() {
		return errForbidden
	}
	return c.Next()
}

// listSigningKeys: GET /api/v1/admin/signing-keys (never key material).
func (s *Server) listSigningKeys(c *fiber.Ctx) error {
	signer := s.tokens.SigningKeyID()
	out := []signingKeyJSON{}
	for _, k := range s.tokens.static {
		out = append(out, signingKeyJSON{ID: k.id, Algorithm: k.alg, Source: "config", Signing: k.id == signer})
	}
	for _, k := range s.deps.SigningKeyModel.SigningKeys() {
		out = append(out, runtimeSigningKeyJSON(k, signer))
	}
	return c.JSON(fiber.Map{"signing_keys": out})
}

type addSigningKeyRequest struct {
	Algorithm string `json:"algorithm"`
	// Signing: false adds the key pending — published, not signing until
	// POST …/{id}/activate. Absent: true, as before pending keys.
	Signing *bool `json:"signing"`
	// FallBackToHS256 lets an HS256 key that signs at once take over from
	// the EdDSA key that signs: offline verifiers refuse every new token.
	FallBackToHS256 bool `json:"fall_back_to_hs256,omitempty"`
}

// addSigningKey: POST /api/v1/admin/signing-keys — a new key verifies (an
// EdDSA one is in the JWKS) and signs from now on, or, with "signing":
// false, once activated; the others keep verifying until retired. An
// HS256 key (the default algorithm) that would sign at once while an EdDSA
// key signs is added only with "fall_back_to_hs256": true (409 otherwise).
func (s *Server) addSigningKey(c *fiber.Ctx) error {
	req := addSigningKeyRequest{Algorithm: domain.AlgHS256}
	if len(c.Request().Body()) > 0 { // decodeJSON refuses an encoded one
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	pending := req.Signing != nil && !*req.Signing
	k, err := s.deps.SigningKeys.AddSigningKey(ctx, s.meta(c), req.Algorithm, pending, req.FallBackToHS256)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(runtimeSigningKeyJSON(k, s.tokens.SigningKeyID()))
}

type activateSigningKeyRequest struct {
	// FallBackToHS256 lets an HS256 key take over from the EdDSA key that
	// signs: offline verifiers refuse every new token.
	FallBackToHS256 bool `json:"fall_back_to_hs256,omitempty"`
}

// activateSigningKey: POST /api/v1/admin/signing-keys/{id}/activate — the
// key signs new tokens from now on, on every replica by the answer (a
// pending key, or one another took over from); the others keep verifying.
// An HS256 key while an EdDSA key signs is activated only with
// "fall_back_to_hs256": true (409 otherwise), as a retirement's body says.
func (s *Server) activateSigningKey(c *fiber.Ctx) error {
	var req activateSigningKeyRequest
	if len(c.Request().Body()) > 0 { // decodeJSON refuses an encoded one
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	k, err := s.deps.SigningKeys.ActivateSigningKey(ctx, s.meta(c), c.Params("id"), req.FallBackToHS256)
	if err != nil {
		return err
	}
	return c.JSON(runtimeSigningKeyJSON(k, s.tokens.SigningKeyID()))
}

type retireSigningKeyRequest struct {
	// FallBackToHS256 lets the last EdDSA key that signs be retired: the
	// configured HS256 keys sign again, and offline verifiers refuse
	// every new token.
	FallBackToHS256 bool `json:"fall_back_to_hs256,omitempty"`
}

// retireSigningKey: POST /api/v1/admin/signing-keys/{id}/retire — tokens it
// signed stop verifying on every replica (offline verifiers: at their next
// fetch of the JWKS). The EdDSA key that signs, when no other EdDSA key
// would take over, is retired only with "fall_back_to_hs256": true (409
// otherwise).
func (s *Server) retireSigningKey(c *fiber.Ctx) error {
	var req retireSigningKeyRequest
	if len(c.Request().Body()) > 0 { // decodeJSON refuses an encoded one
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	k, err := s.deps.SigningKeys.RetireSigningKey(ctx, s.meta(c), c.Params("id"), req.FallBackToHS256)
	if err != nil {
		return err
	}
	return c.JSON(runtimeSigningKeyJSON(k, s.tokens.SigningKeyID()))
}
