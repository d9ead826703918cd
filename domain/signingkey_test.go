package domain

import (
	"errors"
	"testing"
	"time"
)

func TestDecideSigningKey(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	add := AddSigningKey{KeyID: "sk-1", Algorithm: AlgEdDSA, SecretSealed: "aesgcm1:x", PublicKey: "pub", Now: t0}
	evs, err := DecideSigningKey(SigningKey{}, add)
	if err != nil || len(evs) != 1 {
		t.Fatalf("add: %v %v", evs, err)
	}
	k := EvolveSigningKey(SigningKey{}, evs[0])
	if k.ID != "sk-1" || k.Algorithm != AlgEdDSA || k.Retired || k.Version != 1 {
		t.Fatalf("state %+v", k)
	}
	if _, err := DecideSigningKey(k, add); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("add twice: %v", err)
	}
	for name, c := range map[string]AddSigningKey{
		"unknown algorithm":      {KeyID: "k", Algorithm: "RS256", SecretSealed: "s"},
		"none":                   {KeyID: "k", Algorithm: "none", SecretSealed: "s"},
		"HS256 with public part": {KeyID: "k", Algorithm: AlgHS256, SecretSealed: "s", PublicKey: "p"},
		"EdDSA without public":   {KeyID: "k", Algorithm: AlgEdDSA, SecretSealed: "s"},
		"no secret":              {KeyID: "k", Algorithm: AlgHS256},
	} {
		var ve *ValidationError
		if _, err := DecideSigningKey(SigningKey{}, c); !errors.As(err, &ve) {
			t.Errorf("%s: %v", name, err)
		}
	}
	evs, err = DecideSigningKey(k, RetireSigningKey{Now: t0.Add(time.Hour)})
	if err != nil || len(evs) != 1 {
		t.Fatalf("retire: %v %v", evs, err)
	}
	k = EvolveSigningKey(k, evs[0])
	if !k.Retired || !k.RetiredAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("retired state %+v", k)
	}
	if evs, err := DecideSigningKey(k, RetireSigningKey{Now: t0}); err != nil || evs != nil {
		t.Fatalf("retire twice: %v %v", evs, err)
	}
	if _, err := DecideSigningKey(SigningKey{}, RetireSigningKey{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("retire unknown: %v", err)
	}
}
