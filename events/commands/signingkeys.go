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
	p := pending{aggregate: domain.AggregateSigningKey, id: cmd.KeyID, event: evs[0]}
	if _, err := s.appendEvents(ctx, meta, NewID("cmd"), []pending{p}); err != nil {
		return domain.SigningKey{}, err
	}
	k, _, _ := s.state.SigningKey(cmd.KeyID)
	return k, nil
}

// RetireSigningKey stops a key: tokens it signed no longer verify.
func (s *Service) RetireSigningKey(ctx context.Context, meta events.Meta, keyID string) (domain.SigningKey, error) {
	var out domain.SigningKey
	err := s.retry(ctx, events.Subject(domain.AggregateSigningKey, keyID), func(commandID string) error {
		k, seq, ok := s.state.SigningKey(keyID)
		if !ok {
			return domain.ErrNotFound
		}
		evs, err := domain.DecideSigningKey(k, domain.RetireSigningKey{Now: s.cfg.Now()})
		if err != nil {
			return err
		}
		if len(evs) > 0 {
			p := pending{aggregate: domain.AggregateSigningKey, id: keyID, expect: seq, version: k.Version, event: evs[0]}
			if _, err := s.appendEvents(ctx, meta, commandID, []pending{p}); err != nil {
				return err
			}
		}
		out, _, _ = s.state.SigningKey(keyID)
		return nil
	})
	return out, err
}
