package domain

import "time"

// AggregateSigningKey names the access-token signing key aggregate.
const AggregateSigningKey = "signingkey"

// Signing algorithms for access tokens.
const (
	AlgHS256 = "HS256"
	AlgEdDSA = "EdDSA"
)

// SigningKey is an access-token signing key added at run time. The newest key
// that is not retired signs; every key that is not retired verifies, so keys
// rotate without downtime: add a key, wait an access-token lifetime, retire
// the old one.
type SigningKey struct {
	ID           string
	Algorithm    string
	SecretSealed string // HS256 secret or Ed25519 private key, sealed with the master key
	PublicKey    string // Ed25519 public key, base64url (empty for HS256)
	AddedAt      time.Time
	RetiredAt    time.Time
	Retired      bool
	Version      uint64
}

// Exists reports whether the key has been added.
func (k SigningKey) Exists() bool { return k.ID != "" }

// Signing key events.
type (
	// SigningKeyAdded: a new key signs from now on.
	SigningKeyAdded struct {
		KeyID        string    `json:"key_id"`
		Algorithm    string    `json:"algorithm"`
		SecretSealed string    `json:"secret_sealed"`
		PublicKey    string    `json:"public_key,omitempty"`
		AddedAt      time.Time `json:"added_at"`
	}
	// SigningKeyRetired: tokens signed with the key no longer verify.
	SigningKeyRetired struct {
		KeyID     string    `json:"key_id"`
		RetiredAt time.Time `json:"retired_at"`
	}
)

// Signing key event type names.
const (
	TypeSigningKeyAdded   = "signingkey.added"
	TypeSigningKeyRetired = "signingkey.retired"
)

func (SigningKeyAdded) EventType() string   { return TypeSigningKeyAdded }
func (SigningKeyRetired) EventType() string { return TypeSigningKeyRetired }

// SigningKeyCommand is a command on the signing key aggregate: one of the
// types below. The set is closed (the marker method is unexported), so that
// handing DecideSigningKey another aggregate's command does not compile.
type SigningKeyCommand interface{ signingKeyCommand() }

// Commands on the signing key aggregate.
type (
	// AddSigningKey adds a key whose material is already generated and sealed.
	AddSigningKey struct {
		KeyID, Algorithm, SecretSealed, PublicKey string
		Now                                       time.Time
	}
	// RetireSigningKey retires a key.
	RetireSigningKey struct{ Now time.Time }
)

func (AddSigningKey) signingKeyCommand()    {}
func (RetireSigningKey) signingKeyCommand() {}

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
			PublicKey: c.PublicKey, AddedAt: c.Now.UTC()}}, nil
	case RetireSigningKey:
		if !k.Exists() {
			return nil, ErrNotFound
		}
		if k.Retired {
			return nil, nil
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
			PublicKey: ev.PublicKey, AddedAt: ev.AddedAt, Version: k.Version}
	case SigningKeyRetired:
		k.Retired, k.RetiredAt = true, ev.RetiredAt
	default:
		return k
	}
	k.Version++
	return k
}
