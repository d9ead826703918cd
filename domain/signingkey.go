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
	AddSigningKey struct {
		KeyID, Algorithm, SecretSealed, PublicKey string
		Pending                                   bool
		Now                                       time.Time
	}
	// ActivateSigningKey makes a key the one that signs. Signer is the ID
	// of the run-time key that signs now (Signer over every key; empty:
	// none): activating it changes nothing. SignerSince is when that key
	// began to sign: the activation is dated after it even if Now is not
	// (a replica's clock behind the one that added it), so that the
	// activated key signs.
	ActivateSigningKey struct {
		Signer      string
		SignerSince time.Time
		Now         time.Time
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
		return []Event{SigningKeyAdded{KeyID: c.KeyID, Algorithm: c.Algorithm, SecretSealed: c.SecretSealed,
			PublicKey: c.PublicKey, Pending: c.Pending, AddedAt: c.Now.UTC()}}, nil
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
		at := c.Now.UTC()
		if !at.After(c.SignerSince) {
			at = c.SignerSince.Add(time.Millisecond).UTC()
		}
		return []Event{SigningKeyActivated{KeyID: k.ID, ActivatedAt: at}}, nil
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
