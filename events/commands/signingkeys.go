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
// it verifies (EdDSA: it is in the JWKS) and, unless pending, signs access
// tokens; the earlier keys still verify until retired. A pending key signs
// once activated (ActivateSigningKey): offline verifiers that cache the
// JWKS have it by then, instead of refusing its tokens until their next
// fetch.
func (s *Service) AddSigningKey(ctx context.Context, meta events.Meta, algorithm string, pending bool) (domain.SigningKey, error) {
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
	cmd := domain.AddSigningKey{KeyID: NewID("sk"), Algorithm: algorithm, SecretSealed: sealed, PublicKey: public, Pending: pending, Now: s.cfg.Now()}
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

// ActivateSigningKey makes a key the one that signs access tokens, on every
// replica by the answer (domain.Narrows: the barrier) — a pending key, or
// one that signed before another took over.
func (s *Service) ActivateSigningKey(ctx context.Context, meta events.Meta, keyID string) (domain.SigningKey, error) {
	return execute(ctx, s, meta, write[domain.SigningKey]{
		on: s.signingKeyAggregate(keyID), missing: domain.ErrNotFound,
		decide: func(k domain.SigningKey) ([]domain.Event, error) {
			signer, _ := domain.Signer(s.state.SigningKeys())
			return domain.DecideSigningKey(k, domain.ActivateSigningKey{Signer: signer.ID, Now: s.cfg.Now()})
		},
	})
}

// RetireSigningKey stops a key: tokens it signed no longer verify. Retiring
// the EdDSA key that signs when no other EdDSA key would take over (the
// configured HS256 keys would sign again, which no offline verifier checks)
// is domain.ErrLastAsymmetricKey unless fallBackToHS256. Two such
// retirements at the same moment, of the last two EdDSA keys, may both be
// stored (each decided while the other key signed on): list the keys after
// a retirement.
func (s *Service) RetireSigningKey(ctx context.Context, meta events.Meta, keyID string, fallBackToHS256 bool) (domain.SigningKey, error) {
	return execute(ctx, s, meta, write[domain.SigningKey]{
		on: s.signingKeyAggregate(keyID), missing: domain.ErrNotFound,
		decide: func(k domain.SigningKey) ([]domain.Event, error) {
			all := s.state.SigningKeys()
			signer, _ := domain.Signer(all)
			others := make([]domain.SigningKey, 0, len(all))
			for _, o := range all {
				if o.ID != k.ID {
					others = append(others, o)
				}
			}
			successor := domain.AlgHS256 // the configured keys
			if o, ok := domain.Signer(others); ok {
				successor = o.Algorithm
			}
			return domain.DecideSigningKey(k, domain.RetireSigningKey{Now: s.cfg.Now(), Signer: signer.ID,
				SuccessorAlgorithm: successor, FallBackToHS256: fallBackToHS256})
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
