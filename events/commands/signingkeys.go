package commands

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"

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
			return domain.DecideSigningKey(k, domain.ActivateSigningKey{Signer: signer.ID, SignerSince: signer.SigningSince(), Now: s.cfg.Now()})
		},
	})
}

// RetireSigningKey stops a key: tokens it signed no longer verify. Retiring
// the EdDSA key that signs when no other EdDSA key would take over (the
// configured HS256 keys would sign again, which no offline verifier checks)
// is domain.ErrLastAsymmetricKey unless fallBackToHS256.
//
// The decision reads two keys, so the retirement is stored only if the
// other one has not changed since (its subject is expected, as
// write.into's): for the key that signs, the key that would take over; for
// another key, the key that signs, whose successor this one may be. Two
// retirements at the same moment of the last two EdDSA keys — each decided
// while the other key could take over — would otherwise both be stored,
// and tokens be HS256 again. The one stored second is decided again, and
// refused.
func (s *Service) RetireSigningKey(ctx context.Context, meta events.Meta, keyID string, fallBackToHS256 bool) (domain.SigningKey, error) {
	if _, _, ok := s.state.SigningKey(keyID); !ok {
		// Added through another replica a moment ago? (As execute does
		// for a missing aggregate: the guarded write below would not.)
		if err := s.catchUpSubject(ctx, events.Subject(domain.AggregateSigningKey, keyID)); err != nil {
			return domain.SigningKey{}, err
		}
		if _, _, ok := s.state.SigningKey(keyID); !ok {
			return domain.SigningKey{}, domain.ErrNotFound
		}
	}
	for i := 0; i < s.cfg.MaxAttempts; i++ {
		guard, _ := s.retirementGuard(keyID)
		var version uint64 // keyID's version the retirement was decided on
		decide := func() ([]domain.Event, error) {
			k, _, ok := s.state.SigningKey(keyID)
			if !ok {
				return nil, domain.ErrNotFound
			}
			g, cmd := s.retirementGuard(keyID)
			if g != guard {
				return nil, errGuardMoved
			}
			version = k.Version
			cmd.Now, cmd.FallBackToHS256 = s.cfg.Now(), fallBackToHS256
			return domain.DecideSigningKey(k, cmd)
		}
		var err error
		if guard == "" { // no other run-time key in the decision
			_, err = execute(ctx, s, meta, write[domain.SigningKey]{
				on: s.signingKeyAggregate(keyID), missing: domain.ErrNotFound,
				decide: func(domain.SigningKey) ([]domain.Event, error) { return decide() },
			})
		} else {
			_, err = execute(ctx, s, meta, write[domain.SigningKey]{
				on:   s.signingKeyAggregate(guard),
				into: ref{domain.AggregateSigningKey, keyID}, intoVersion: func() uint64 { return version },
				decide: func(domain.SigningKey) ([]domain.Event, error) { return decide() },
			})
		}
		if errors.Is(err, errGuardMoved) {
			continue // the keys changed between the two reads: read again
		}
		if err != nil {
			return domain.SigningKey{}, err
		}
		k, _, _ := s.state.SigningKey(keyID)
		return k, nil
	}
	return domain.SigningKey{}, ErrTooManyConflicts
}

// errGuardMoved: the key a retirement must expect unchanged is another one
// than when the retirement started.
var errGuardMoved = errors.New("commands: the signing keys changed while a retirement was decided")

// retirementGuard reads, for retiring keyID, the other run-time key whose
// change would change the decision (RetireSigningKey; "" when none), and
// the command's Signer and SuccessorAlgorithm.
func (s *Service) retirementGuard(keyID string) (string, domain.RetireSigningKey) {
	all := s.state.SigningKeys()
	signer, _ := domain.Signer(all)
	others := make([]domain.SigningKey, 0, len(all))
	for _, o := range all {
		if o.ID != keyID {
			others = append(others, o)
		}
	}
	cmd := domain.RetireSigningKey{Signer: signer.ID, SuccessorAlgorithm: domain.AlgHS256} // the configured keys
	successor, ok := domain.Signer(others)
	if ok {
		cmd.SuccessorAlgorithm = successor.Algorithm
	}
	switch {
	case signer.ID == keyID && ok:
		return successor.ID, cmd
	case signer.ID != keyID && signer.ID != "":
		return signer.ID, cmd
	}
	return "", cmd
}

// signingKeyAggregate is the signing key id as the write loop reads it.
func (s *Service) signingKeyAggregate(id string) aggregate[domain.SigningKey] {
	return aggregate[domain.SigningKey]{
		ref:     ref{domain.AggregateSigningKey, id},
		load:    func() (domain.SigningKey, uint64, bool) { return s.state.SigningKey(id) },
		version: func(k domain.SigningKey) uint64 { return k.Version },
	}
}
