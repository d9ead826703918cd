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

// TestPendingSigningKeys: a key added pending verifies but does not sign
// until activated; of the keys that may sign, the one that began last signs
// (outside check 20o: a key signed at once, and verifiers that cache the
// JWKS refused its tokens for up to 14 minutes).
func TestPendingSigningKeys(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fold := func(k SigningKey, cmd SigningKeyCommand) SigningKey {
		t.Helper()
		evs, err := DecideSigningKey(k, cmd)
		if err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
		for _, e := range evs {
			k = EvolveSigningKey(k, e)
		}
		return k
	}
	old := fold(SigningKey{}, AddSigningKey{KeyID: "sk-1", Algorithm: AlgEdDSA, SecretSealed: "s", PublicKey: "p1", Now: t0})
	next := fold(SigningKey{}, AddSigningKey{KeyID: "sk-2", Algorithm: AlgEdDSA, SecretSealed: "s", PublicKey: "p2", Pending: true, Now: t0.Add(time.Minute)})
	if !next.Pending || next.Signs() || !old.Signs() {
		t.Fatalf("pending %+v, old %+v", next, old)
	}
	if s, ok := Signer([]SigningKey{old, next}); !ok || s.ID != "sk-1" {
		t.Fatalf("signer with a pending newer key: %v %v", s.ID, ok)
	}
	if _, ok := Signer([]SigningKey{next}); ok {
		t.Fatal("a pending key signs")
	}
	next = fold(next, ActivateSigningKey{Signer: "sk-1", Now: t0.Add(10 * time.Minute)})
	if next.Pending || !next.ActivatedAt.Equal(t0.Add(10*time.Minute)) || !next.Signs() || next.Version != 2 {
		t.Fatalf("activated %+v", next)
	}
	if s, _ := Signer([]SigningKey{old, next}); s.ID != "sk-2" {
		t.Fatalf("signer after activation: %v", s.ID)
	}
	// Activating the key that signs changes nothing; an older one takes over again.
	if evs, err := DecideSigningKey(next, ActivateSigningKey{Signer: "sk-2", Now: t0}); err != nil || evs != nil {
		t.Fatalf("activate the signer: %v %v", evs, err)
	}
	old = fold(old, ActivateSigningKey{Signer: "sk-2", Now: t0.Add(20 * time.Minute)})
	if s, _ := Signer([]SigningKey{old, next}); s.ID != "sk-1" {
		t.Fatalf("signer after taking over again: %v", s.ID)
	}
	// A clock behind the one that began the signer's signing: dated after it all the same.
	behind := fold(next, ActivateSigningKey{Signer: "sk-1", SignerSince: old.SigningSince(), Now: t0})
	if s, _ := Signer([]SigningKey{old, behind}); s.ID != "sk-2" || !behind.ActivatedAt.After(old.SigningSince()) {
		t.Fatalf("activated on a clock behind: signer %s, activated at %v", s.ID, behind.ActivatedAt)
	}
	if _, err := DecideSigningKey(SigningKey{}, ActivateSigningKey{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("activate unknown: %v", err)
	}
	retired := fold(next, RetireSigningKey{Now: t0.Add(time.Hour), Signer: "sk-1"})
	if _, err := DecideSigningKey(retired, ActivateSigningKey{Signer: "sk-1"}); !errors.Is(err, ErrSigningKeyRetired) {
		t.Fatalf("activate retired: %v", err)
	}
	if _, ok := Signer([]SigningKey{retired}); ok {
		t.Fatal("a retired key signs")
	}
}

// TestRetireTheLastSigningEdDSAKey: retiring the EdDSA key that signs when
// no EdDSA key takes over (the HS256 keys would sign, and every offline
// verifier refuse every new token) needs FallBackToHS256 (outside check
// 20o: it went back to HS256 silently).
func TestRetireTheLastSigningEdDSAKey(t *testing.T) {
	k := SigningKey{ID: "sk-1", Algorithm: AlgEdDSA, SecretSealed: "s", PublicKey: "p", Version: 1}
	for name, c := range map[string]struct {
		cmd     RetireSigningKey
		refused bool
	}{
		"signer, HS256 would take over":        {RetireSigningKey{Signer: "sk-1", SuccessorAlgorithm: AlgHS256}, true},
		"signer, none named: HS256":            {RetireSigningKey{Signer: "sk-1"}, true},
		"signer, with fall_back_to_hs256":      {RetireSigningKey{Signer: "sk-1", SuccessorAlgorithm: AlgHS256, FallBackToHS256: true}, false},
		"signer, an EdDSA key takes over":      {RetireSigningKey{Signer: "sk-1", SuccessorAlgorithm: AlgEdDSA}, false},
		"not the signer (another key signs)":   {RetireSigningKey{Signer: "sk-2", SuccessorAlgorithm: AlgHS256}, false},
		"not the signer (it is still pending)": {RetireSigningKey{Signer: "", SuccessorAlgorithm: AlgHS256}, false},
	} {
		evs, err := DecideSigningKey(k, c.cmd)
		if c.refused != errors.Is(err, ErrLastAsymmetricKey) || (!c.refused && (err != nil || len(evs) != 1)) {
			t.Errorf("%s: %v %v", name, evs, err)
		}
	}
	hs := SigningKey{ID: "sk-3", Algorithm: AlgHS256, SecretSealed: "s", Version: 1}
	if evs, err := DecideSigningKey(hs, RetireSigningKey{Signer: "sk-3", SuccessorAlgorithm: AlgHS256}); err != nil || len(evs) != 1 {
		t.Errorf("an HS256 signer: %v %v", evs, err)
	}
}

// TestHS256DoesNotDisplaceTheEdDSASigner: adding an HS256 key that signs at
// once, or activating one, while an EdDSA key signs would make every new
// token HS256 — refused as retiring the last EdDSA key is, unless
// FallBackToHS256 (outside check 20r4: the API's default algorithm is
// HS256, and an addition without one took over from the EdDSA key).
func TestHS256DoesNotDisplaceTheEdDSASigner(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hsAdd := func(pending bool, signer string, fallBack bool) AddSigningKey {
		return AddSigningKey{KeyID: "sk-9", Algorithm: AlgHS256, SecretSealed: "s", Pending: pending,
			SignerAlgorithm: signer, FallBackToHS256: fallBack, Now: t0}
	}
	for name, c := range map[string]struct {
		cmd     AddSigningKey
		refused bool
	}{
		"HS256 signing, an EdDSA key signs":       {hsAdd(false, AlgEdDSA, false), true},
		"HS256 signing, with fall_back_to_hs256":  {hsAdd(false, AlgEdDSA, true), false},
		"HS256 pending, an EdDSA key signs":       {hsAdd(true, AlgEdDSA, false), false},
		"HS256 signing, an HS256 key signs":       {hsAdd(false, AlgHS256, false), false},
		"HS256 signing, the configured keys sign": {hsAdd(false, "", false), false},
		"EdDSA signing, an EdDSA key signs":       {AddSigningKey{KeyID: "sk-9", Algorithm: AlgEdDSA, SecretSealed: "s", PublicKey: "p", SignerAlgorithm: AlgEdDSA, Now: t0}, false},
	} {
		evs, err := DecideSigningKey(SigningKey{}, c.cmd)
		if c.refused != errors.Is(err, ErrHS256DisplacesEdDSA) || (!c.refused && (err != nil || len(evs) != 1)) {
			t.Errorf("add, %s: %v %v", name, evs, err)
		}
	}
	hs := SigningKey{ID: "sk-3", Algorithm: AlgHS256, SecretSealed: "s", Pending: true, AddedAt: t0, Version: 1}
	ed := SigningKey{ID: "sk-4", Algorithm: AlgEdDSA, SecretSealed: "s", PublicKey: "p", Pending: true, AddedAt: t0, Version: 1}
	for name, c := range map[string]struct {
		k       SigningKey
		cmd     ActivateSigningKey
		refused bool
	}{
		"HS256, an EdDSA key signs":       {hs, ActivateSigningKey{Signer: "sk-1", SignerAlgorithm: AlgEdDSA, Now: t0}, true},
		"HS256, with fall_back_to_hs256":  {hs, ActivateSigningKey{Signer: "sk-1", SignerAlgorithm: AlgEdDSA, FallBackToHS256: true, Now: t0}, false},
		"HS256, an HS256 key signs":       {hs, ActivateSigningKey{Signer: "sk-2", SignerAlgorithm: AlgHS256, Now: t0}, false},
		"HS256, the configured keys sign": {hs, ActivateSigningKey{Now: t0}, false},
		"EdDSA, an EdDSA key signs":       {ed, ActivateSigningKey{Signer: "sk-1", SignerAlgorithm: AlgEdDSA, Now: t0}, false},
	} {
		evs, err := DecideSigningKey(c.k, c.cmd)
		if c.refused != errors.Is(err, ErrHS256DisplacesEdDSA) || (!c.refused && (err != nil || len(evs) != 1)) {
			t.Errorf("activate, %s: %v %v", name, evs, err)
		}
	}
	// The HS256 key that signs already: activating it changes nothing, refused or not.
	signing := SigningKey{ID: "sk-3", Algorithm: AlgHS256, SecretSealed: "s", AddedAt: t0, Version: 1}
	if evs, err := DecideSigningKey(signing, ActivateSigningKey{Signer: "sk-3", SignerAlgorithm: AlgHS256}); err != nil || evs != nil {
		t.Errorf("activate the HS256 signer: %v %v", evs, err)
	}
}

// A key added to sign at once on a replica whose clock is behind the
// signer's start (its activation, dated on another replica) is dated after
// that start, as an activation is, and so signs: dated by the clock alone
// it was answered 201 and never signed (found in session 20 by the CLI's
// tests with the harness's frozen clock).
func TestAddedKeyDatedAfterTheSigner(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	signer := SigningKey{ID: "sk-a", Algorithm: AlgEdDSA, PublicKey: "pub", AddedAt: t0.Add(-time.Hour), ActivatedAt: t0.Add(time.Minute)}
	for _, pending := range []bool{false, true} {
		evs, err := DecideSigningKey(SigningKey{}, AddSigningKey{KeyID: "sk-b", Algorithm: AlgEdDSA, SecretSealed: "sealed", PublicKey: "pub2",
			Pending: pending, SignerAlgorithm: AlgEdDSA, SignerSince: signer.SigningSince(), Now: t0})
		if err != nil || len(evs) != 1 {
			t.Fatalf("pending %v: %v, %v", pending, evs, err)
		}
		added := EvolveSigningKey(SigningKey{}, evs[0])
		got, _ := Signer([]SigningKey{signer, added})
		if pending {
			if !added.AddedAt.Equal(t0) || got.ID != "sk-a" {
				t.Fatalf("a pending key is dated %s and %s signs, want its clock's time and sk-a", added.AddedAt, got.ID)
			}
			continue
		}
		if !added.AddedAt.After(signer.SigningSince()) || got.ID != "sk-b" {
			t.Fatalf("added at %s with the signer's start %s: %s signs, want sk-b", added.AddedAt, signer.SigningSince(), got.ID)
		}
	}
}
