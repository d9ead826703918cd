package domain

import (
	"errors"
	"time"
)

// AggregateSigningKey names the access-token signing key aggregate.
const AggregateSigningKey = "signingkey"

// Signing algorithms for access tokens.
const (
	AlgHS256 = "HS256"
	AlgEdDSA = "EdDSA"
)

// SigningKey is an access-token signing key added at run time. Of the keys
// that are not retired and not pending, the one that began signing last
// signs; every key that is not retired verifies (and, EdDSA, is in the
// JWKS), so keys rotate without downtime: add a key pending, wait until the
// verifiers have fetched the JWKS, activate it, wait an access-token
// lifetime, retire the old one.
type SigningKey struct {
	ID           string
	Algorithm    string
	SecretSealed string // HS256 secret or Ed25519 private key, sealed with the master key
	PublicKey    string // Ed25519 public key, base64url (empty for HS256)
	AddedAt      time.Time
	// Pending: published (verifies, in the JWKS) but not signing until
	// activated. The zero value is a key that signs, as every key added
	// before pending keys existed.
	Pending bool
	// ActivatedAt is when a pending key was activated (zero: it signs
	// since AddedAt, or is pending); SigningSince says which applies.
	ActivatedAt time.Time
	RetiredAt   time.Time
	Retired     bool
	Version     uint64
}

// Exists reports whether the key has been added.
func (k SigningKey) Exists() bool { return k.ID != "" }

// Signs reports whether the key may sign: added (not pending) or
// activated, and not retired.
func (k SigningKey) Signs() bool { return k.Exists() && !k.Pending && !k.Retired }

// SigningSince is when the key began to sign: its activation, else its
// addition. Of the keys that may sign, the one that began last signs.
func (k SigningKey) SigningSince() time.Time {
	if !k.ActivatedAt.IsZero() {
		return k.ActivatedAt
	}
	return k.AddedAt
}

// Signer returns the run-time key that signs among keys: of those that may
// sign (Signs), the one that began last (SigningSince; on a tie, the
// greater ID, as IDs are ULIDs). ok is false when none may sign: the
// configured HS256 keys sign then.
func Signer(keys []SigningKey) (signer SigningKey, ok bool) {
	for _, k := range keys {
		if !k.Signs() {
			continue
		}
		if !ok || k.SigningSince().After(signer.SigningSince()) ||
			(k.SigningSince().Equal(signer.SigningSince()) && k.ID > signer.ID) {
			signer, ok = k, true
		}
	}
	return signer, ok
}

// Signing key events.
type (
	// SigningKeyAdded: a new key verifies from now on, and signs unless
	// Pending (then it waits for SigningKeyActivated). A build from before
	// pending keys drops the field: it signs with the key at once.
	SigningKeyAdded struct {
		KeyID        string    `json:"key_id"`
		Algorithm    string    `json:"algorithm"`
		SecretSealed string    `json:"secret_sealed"`
		PublicKey    string    `json:"public_key,omitempty"`
		Pending      bool      `json:"pending,omitempty"`
		AddedAt      time.Time `json:"added_at"`
	}
	// SigningKeyActivated: a key signs from now on (a pending one, or one
	// that signed before another took over).
	SigningKeyActivated struct {
		KeyID       string    `json:"key_id"`
		ActivatedAt time.Time `json:"activated_at"`
	}
	// SigningKeyRetired: tokens signed with the key no longer verify.
	SigningKeyRetired struct {
		KeyID     string    `json:"key_id"`
		RetiredAt time.Time `json:"retired_at"`
	}
)

// Signing key event type names.
const (
	TypeSigningKeyAdded     = "signingkey.added"
	TypeSigningKeyActivated = "signingkey.activated"
	TypeSigningKeyRetired   = "signingkey.retired"
)

func (SigningKeyAdded) EventType() string     { return TypeSigningKeyAdded }
func (SigningKeyActivated) EventType() string { return TypeSigningKeyActivated }
func (SigningKeyRetired) EventType() string   { return TypeSigningKeyRetired }

// SigningKeyCommand is a command on the signing key aggregate: one of the
// types below. The set is closed (the marker method is unexported), so that
// handing DecideSigningKey another aggregate's command does not compile.
type SigningKeyCommand interface{ signingKeyCommand() }

// Commands on the signing key aggregate.
type (
	// AddSigningKey adds a key whose material is already generated and
	// sealed; Pending: it verifies (is published) but does not sign yet.
	// SignerAlgorithm is the algorithm of the run-time key that signs now
	// (Signer over every key; empty: none, the configured HS256 keys
	// sign): an HS256 key that would sign at once while an EdDSA key signs
	// makes every new token one no offline verifier checks — refused
	// (ErrHS256DisplacesEdDSA) unless FallBackToHS256.
	//
	// SignerSince is when the key that signs now began to sign: a key added
	// to sign at once is dated after it even if Now is not (a replica's
	// clock behind the one that activated the signer), as ActivateSigningKey
	// dates an activation — else the new key, "begun" before the signer,
	// would be answered 201 and never sign.
	AddSigningKey struct {
		KeyID, Algorithm, SecretSealed, PublicKey string
		Pending                                   bool
		SignerAlgorithm                           string
		SignerSince                               time.Time
		FallBackToHS256                           bool
		Now                                       time.Time
	}
	// ActivateSigningKey makes a key the one that signs. Signer is the ID
	// of the run-time key that signs now (Signer over every key; empty:
	// none): activating it changes nothing. SignerSince is when that key
	// began to sign: the activation is dated after it even if Now is not
	// (a replica's clock behind the one that added it), so that the
	// activated key signs. SignerAlgorithm is that key's algorithm:
	// activating an HS256 key while an EdDSA key signs is refused
	// (ErrHS256DisplacesEdDSA) unless FallBackToHS256, as AddSigningKey.
	ActivateSigningKey struct {
		Signer, SignerAlgorithm string
		SignerSince             time.Time
		FallBackToHS256         bool
		Now                     time.Time
	}
	// RetireSigningKey retires a key. When the key signs (it is Signer) and
	// Successor — the key that would sign after it (Signer over the other
	// keys, or the configured keys: "HS256") — is not EdDSA while the key
	// is, every offline verifier would refuse every new token: refused
	// (ErrLastAsymmetricKey) unless FallBackToHS256.
	RetireSigningKey struct {
		Now                        time.Time
		Signer, SuccessorAlgorithm string
		FallBackToHS256            bool
	}
)

func (AddSigningKey) signingKeyCommand()      {}
func (ActivateSigningKey) signingKeyCommand() {}
func (RetireSigningKey) signingKeyCommand()   {}

// ErrLastAsymmetricKey: retiring the key would make access tokens HS256
// again (no EdDSA key could take over), which no offline verifier checks.
var ErrLastAsymmetricKey = errors.New("domain: retiring the last signing EdDSA key")

// ErrHS256DisplacesEdDSA: adding or activating an HS256 key that would
// sign while an EdDSA key signs would make access tokens HS256 again, which
// no offline verifier checks — the outcome ErrLastAsymmetricKey refuses
// for a retirement (outside check 20r4: the API's default algorithm is
// HS256, and an addition without one displaced the EdDSA signer).
var ErrHS256DisplacesEdDSA = errors.New("domain: an HS256 key would take over from the EdDSA key that signs")

// ErrSigningKeyRetired: a retired key cannot sign again.
var ErrSigningKeyRetired = errors.New("domain: signing key retired")

// DecideSigningKey decides a command against a key's state. No events and
// no error means the command changes nothing; a command it does not know
// (nil, or a pointer to a command) is a *ValidationError on "command".
func DecideSigningKey(k SigningKey, cmd SigningKeyCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case AddSigningKey:
		if k.Exists() {
			return nil, ErrAlreadyExists
		}
		if c.KeyID == "" || c.SecretSealed == "" {
			return nil, Invalid("key", "id and sealed secret are required")
		}
		switch c.Algorithm {
		case AlgHS256:
			if c.PublicKey != "" {
				return nil, Invalid("public_key", "HS256 keys have no public part")
			}
		case AlgEdDSA:
			if c.PublicKey == "" {
				return nil, Invalid("public_key", "EdDSA keys need their public key")
			}
		default:
			return nil, Invalid("algorithm", "must be HS256 or EdDSA")
		}
		if displacesEdDSA(c.Algorithm, c.SignerAlgorithm, c.FallBackToHS256) && !c.Pending {
			return nil, ErrHS256DisplacesEdDSA
		}
		at := c.Now.UTC()
		if !c.Pending {
			at = signsAfter(c.Now, c.SignerSince)
		}
		return []Event{SigningKeyAdded{KeyID: c.KeyID, Algorithm: c.Algorithm, SecretSealed: c.SecretSealed,
			PublicKey: c.PublicKey, Pending: c.Pending, AddedAt: at}}, nil
	case ActivateSigningKey:
		if !k.Exists() {
			return nil, ErrNotFound
		}
		if k.Retired {
			return nil, ErrSigningKeyRetired
		}
		if k.ID == c.Signer {
			return nil, nil
		}
		if displacesEdDSA(k.Algorithm, c.SignerAlgorithm, c.FallBackToHS256) {
			return nil, ErrHS256DisplacesEdDSA
		}
		return []Event{SigningKeyActivated{KeyID: k.ID, ActivatedAt: signsAfter(c.Now, c.SignerSince)}}, nil
	case RetireSigningKey:
		if !k.Exists() {
			return nil, ErrNotFound
		}
		if k.Retired {
			return nil, nil
		}
		if k.ID == c.Signer && k.Algorithm == AlgEdDSA && c.SuccessorAlgorithm != AlgEdDSA && !c.FallBackToHS256 {
			return nil, ErrLastAsymmetricKey
		}
		return []Event{SigningKeyRetired{KeyID: k.ID, RetiredAt: c.Now.UTC()}}, nil
	}
	return nil, Invalid("command", "unknown signing key command %T", cmd)
}

// signsAfter is when a key that begins to sign now is dated: now, or just
// after since — when the key that signs began — if now is not after it (a
// replica's clock behind the one that dated the signer), so that Signer
// picks the new key.
func signsAfter(now, since time.Time) time.Time {
	if !now.After(since) {
		return since.Add(time.Millisecond).UTC()
	}
	return now.UTC()
}

// displacesEdDSA reports whether a key of algorithm that begins to sign
// would take over from an EdDSA signer (signerAlgorithm) with an HS256 key,
// not asked for with fallBackToHS256.
func displacesEdDSA(algorithm, signerAlgorithm string, fallBackToHS256 bool) bool {
	return algorithm == AlgHS256 && signerAlgorithm == AlgEdDSA && !fallBackToHS256
}

// EvolveSigningKey applies one event to a key's state.
func EvolveSigningKey(k SigningKey, e Event) SigningKey {
	switch ev := Deref(e).(type) {
	case SigningKeyAdded:
		k = SigningKey{ID: ev.KeyID, Algorithm: ev.Algorithm, SecretSealed: ev.SecretSealed,
			PublicKey: ev.PublicKey, Pending: ev.Pending, AddedAt: ev.AddedAt, Version: k.Version}
	case SigningKeyActivated:
		k.Pending, k.ActivatedAt = false, ev.ActivatedAt
	case SigningKeyRetired:
		k.Retired, k.RetiredAt = true, ev.RetiredAt
	default:
		return k
	}
	k.Version++
	return k
}
