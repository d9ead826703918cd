package commands

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// SealSigningSecret is the field name bound into sealed signing key material.
const SealSigningSecret = "signing_key"

// AddSigningKey generates a key for algorithm (HS256: 256 random bits;
// EdDSA: an Ed25519 key pair), seals its secret part and adds it: from now on
// it signs access tokens, and the earlier keys still verify until retired.
func (s *Service) AddSigningKey(ctx context.Context, meta events.Meta, algorithm string) (domain.SigningKey, error) {
	var secret []byte
	public := ""
	switch algorithm {
	case domain.AlgHS256:
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return domain.SigningKey{}, err
		}
	case domain.AlgEdDSA:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return domain.SigningKey{}, err
		}
		secret, public = priv.Seed(), base64.RawURLEncoding.EncodeToString(pub)
	default:
		return domain.SigningKey{}, domain.Invalid("algorithm", "must be HS256 or EdDSA")
	}
	sealed, err := s.sealer.Seal(SealSigningSecret, base64.RawURLEncoding.EncodeToString(secret))
	if err != nil {
		return domain.SigningKey{}, err
	}
	cmd := domain.AddSigningKey{KeyID: NewID("sk"), Algorithm: algorithm, SecretSealed: sealed, PublicKey: public, Now: s.cfg.Now()}
	evs, err := domain.DecideSigningKey(domain.SigningKey{}, cmd)
	if err != nil {
		return domain.SigningKey{}, err
	}
	if _, err := s.appendEvents(ctx, meta, NewID("cmd"), onAggregate(ref{domain.AggregateSigningKey, cmd.KeyID}, 0, 0, evs)); err != nil {
		return domain.SigningKey{}, err
	}
	k, _, _ := s.state.SigningKey(cmd.KeyID)
	return k, nil
}

// RetireSigningKey stops a key: tokens it signed no longer verify.
func (s *Service) RetireSigningKey(ctx context.Context, meta events.Meta, keyID string) (domain.SigningKey, error) {
	return execute(ctx, s, meta, write[domain.SigningKey]{
		on: s.signingKeyAggregate(keyID), missing: domain.ErrNotFound,
		decide: func(k domain.SigningKey) ([]domain.Event, error) {
			return domain.DecideSigningKey(k, domain.RetireSigningKey{Now: s.cfg.Now()})
		},
	})
}

// signingKeyAggregate is the signing key id as the write loop reads it.
func (s *Service) signingKeyAggregate(id string) aggregate[domain.SigningKey] {
	return aggregate[domain.SigningKey]{
		ref:     ref{domain.AggregateSigningKey, id},
		load:    func() (domain.SigningKey, uint64, bool) { return s.state.SigningKey(id) },
		version: func(k domain.SigningKey) uint64 { return k.Version },
	}
}
