package http

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// SigningKeyCommands rotates access-token signing keys.
type SigningKeyCommands interface {
	AddSigningKey(ctx context.Context, meta events.Meta, algorithm string) (domain.SigningKey, error)
	RetireSigningKey(ctx context.Context, meta events.Meta, keyID string) (domain.SigningKey, error)
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
	Retired   bool    `json:"retired"`
	AddedAt   *string `json:"added_at"`
	RetiredAt *string `json:"retired_at,omitempty"`
}

// jwks: GET /.well-known/jwks.json — the EdDSA public keys in use.
func (s *Server) jwks(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.JSON(fiber.Map{"keys": s.tokens.JWKS()})
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
		out = append(out, signingKeyJSON{ID: k.ID, Algorithm: k.Algorithm, Source: "event", Signing: k.ID == signer,
			Retired: k.Retired, AddedAt: optTime(k.AddedAt), RetiredAt: optTime(k.RetiredAt)})
	}
	return c.JSON(fiber.Map{"signing_keys": out})
}

type addSigningKeyRequest struct {
	Algorithm string `json:"algorithm"`
}

// addSigningKey: POST /api/v1/admin/signing-keys — a new key signs from now on;
// the others keep verifying until retired.
func (s *Server) addSigningKey(c *fiber.Ctx) error {
	req := addSigningKeyRequest{Algorithm: domain.AlgHS256}
	if len(c.Request().Body()) > 0 { // decodeJSON refuses an encoded one
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	k, err := s.deps.SigningKeys.AddSigningKey(ctx, s.meta(c), req.Algorithm)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(signingKeyJSON{ID: k.ID, Algorithm: k.Algorithm, Source: "event",
		Signing: s.tokens.SigningKeyID() == k.ID, AddedAt: optTime(k.AddedAt)})
}

// retireSigningKey: POST /api/v1/admin/signing-keys/{id}/retire — tokens it
// signed stop verifying on every replica.
func (s *Server) retireSigningKey(c *fiber.Ctx) error {
	ctx, cancel := s.ctx(c)
	defer cancel()
	k, err := s.deps.SigningKeys.RetireSigningKey(ctx, s.meta(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(signingKeyJSON{ID: k.ID, Algorithm: k.Algorithm, Source: "event", Retired: k.Retired,
		AddedAt: optTime(k.AddedAt), RetiredAt: optTime(k.RetiredAt)})
}
