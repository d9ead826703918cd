package commands

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"slices"

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
// fetch. An HS256 key that would sign at once while an EdDSA key signs is
// domain.ErrHS256DisplacesEdDSA unless fallBackToHS256 (see
// signingKeySet: decided on every key, stored only if none changed since).
func (s *Service) AddSigningKey(ctx context.Context, meta events.Meta, algorithm string, pending, fallBackToHS256 bool) (domain.SigningKey, error) {
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
	id := NewID("sk")
	if _, err := execute(ctx, s, meta, write[[]domain.SigningKey]{
		on: s.signingKeySet(), into: ref{domain.AggregateSigningKey, id},
		decide: func(keys []domain.SigningKey) ([]domain.Event, error) {
			signer, _ := domain.Signer(keys)
			return domain.DecideSigningKey(domain.SigningKey{}, domain.AddSigningKey{KeyID: id, Algorithm: algorithm,
				SecretSealed: sealed, PublicKey: public, Pending: pending, SignerAlgorithm: signer.Algorithm, SignerSince: signer.SigningSince(),
				FallBackToHS256: fallBackToHS256, Now: s.cfg.Now()})
		},
	}); err != nil {
		return domain.SigningKey{}, err
	}
	k, _, _ := s.state.SigningKey(id)
	return k, nil
}

// ActivateSigningKey makes a key the one that signs access tokens, on every
// replica by the answer (domain.Narrows: the barrier) — a pending key, or
// one that signed before another took over. An HS256 key while an EdDSA
// key signs is domain.ErrHS256DisplacesEdDSA unless fallBackToHS256; the
// decision reads every key, and is stored only if none changed since
// (signingKeySet).
func (s *Service) ActivateSigningKey(ctx context.Context, meta events.Meta, keyID string, fallBackToHS256 bool) (domain.SigningKey, error) {
	if _, _, ok := s.state.SigningKey(keyID); !ok {
		// Added through another replica a moment ago? (As execute does
		// for a missing aggregate: the write on the set would not.)
		if err := s.catchUpSubject(ctx, events.Subject(domain.AggregateSigningKey, keyID)); err != nil {
			return domain.SigningKey{}, err
		}
		if _, _, ok := s.state.SigningKey(keyID); !ok {
			return domain.SigningKey{}, domain.ErrNotFound
		}
	}
	var version uint64 // keyID's version the activation was decided on
	if _, err := execute(ctx, s, meta, write[[]domain.SigningKey]{
		on: s.signingKeySet(), into: ref{domain.AggregateSigningKey, keyID}, intoVersion: func() uint64 { return version },
		decide: func(keys []domain.SigningKey) ([]domain.Event, error) {
			i := slices.IndexFunc(keys, func(k domain.SigningKey) bool { return k.ID == keyID })
			if i < 0 {
				return nil, domain.ErrNotFound
			}
			version = keys[i].Version
			signer, _ := domain.Signer(keys)
			return domain.DecideSigningKey(keys[i], domain.ActivateSigningKey{Signer: signer.ID, SignerAlgorithm: signer.Algorithm,
				SignerSince: signer.SigningSince(), FallBackToHS256: fallBackToHS256, Now: s.cfg.Now()})
		},
	}); err != nil {
		return domain.SigningKey{}, err
	}
	k, _, _ := s.state.SigningKey(keyID)
	return k, nil
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

// signingKeySet is every run-time signing key as one aggregate for the
// write loop: its subject covers every signing key's (events.Subject(…,
// "*")), at the last sequence of any. A decision on which key would sign
// (an addition, an activation) reads the set and appends into the key,
// expecting the set unchanged: an addition or activation of an EdDSA key
// stored through another replica between the decision and the append —
// which an expectation on one key's subject would not see, as the
// retirement's guard does not see a new key — is a conflict, and the
// decision is made again on it (outside check 20r4). Signing keys change
// rarely: the conflicts cost nothing. (JetStream checks the expectation
// against the messages it has stored: one proposed by the stream's leader
// and not yet stored is not seen, a window of one replication round trip
// that a literal subject's check does not have.)
func (s *Service) signingKeySet() aggregate[[]domain.SigningKey] {
	return aggregate[[]domain.SigningKey]{
		ref: ref{domain.AggregateSigningKey, "*"},
		load: func() ([]domain.SigningKey, uint64, bool) {
			keys, seq := s.state.SigningKeysAt()
			return keys, seq, true
		},
		version: func([]domain.SigningKey) uint64 { return 0 }, // appended into a key, never to the set
	}
}

// signingKeyAggregate is the signing key id as the write loop reads it.
func (s *Service) signingKeyAggregate(id string) aggregate[domain.SigningKey] {
	return aggregate[domain.SigningKey]{
		ref:     ref{domain.AggregateSigningKey, id},
		load:    func() (domain.SigningKey, uint64, bool) { return s.state.SigningKey(id) },
		version: func(k domain.SigningKey) uint64 { return k.Version },
	}
}
