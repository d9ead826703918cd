package commands_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// countingBarrier counts the waits for the other replicas.
type countingBarrier struct{ waits atomic.Int32 }

func (b *countingBarrier) Wait(context.Context, uint64) { b.waits.Add(1) }
func (b *countingBarrier) Peers() int                   { return 1 }

// TestSigningKeyRotationThroughPendingKeys: a key added pending is
// published but does not sign until activated; the activation waits for
// every replica (so all sign with it by the answer); the EdDSA key that
// signs is not retired while no EdDSA key would take over — a pending one
// does not — unless the request falls back to HS256 explicitly (outside
// check 20o: retiring the last EdDSA key went back to HS256 silently, and
// a new key signed at once).
func TestSigningKeyRotationThroughPendingKeys(t *testing.T) {
	s := &stream{}
	b := &countingBarrier{}
	_, svc, _ := replicaWith(t, s, s, func(c *commands.Config) { c.Barrier = b })
	ctx := context.Background()
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	old, err := svc.AddSigningKey(ctx, meta, domain.AlgEdDSA, false, false)
	if err != nil || old.Pending {
		t.Fatalf("add: %+v %v", old, err)
	}
	next, err := svc.AddSigningKey(ctx, meta, domain.AlgEdDSA, true, false)
	if err != nil || !next.Pending {
		t.Fatalf("add pending: %+v %v", next, err)
	}
	if _, err := svc.RetireSigningKey(ctx, meta, old.ID, false); !errors.Is(err, domain.ErrLastAsymmetricKey) {
		t.Fatalf("retire the signer while the other EdDSA key is pending: %v", err)
	}
	waits := b.waits.Load()
	k, err := svc.ActivateSigningKey(ctx, meta, next.ID, false)
	if err != nil || k.Pending || k.ActivatedAt.IsZero() {
		t.Fatalf("activate: %+v %v", k, err)
	}
	if b.waits.Load() == waits {
		t.Fatal("the activation did not wait for the other replicas")
	}
	appends := len(s.appends)
	if _, err := svc.ActivateSigningKey(ctx, meta, next.ID, false); err != nil || len(s.appends) != appends {
		t.Fatalf("activate the signer again: %v, %d appends", err, len(s.appends)-appends)
	}
	if k, err := svc.RetireSigningKey(ctx, meta, old.ID, false); err != nil || !k.Retired {
		t.Fatalf("retire the old key once the new one signs: %+v %v", k, err)
	}
	if _, err := svc.ActivateSigningKey(ctx, meta, old.ID, false); !errors.Is(err, domain.ErrSigningKeyRetired) {
		t.Fatalf("activate a retired key: %v", err)
	}
	// An HS256 key that signs after the EdDSA one would not save it either.
	if _, err := svc.AddSigningKey(ctx, meta, domain.AlgHS256, true, false); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RetireSigningKey(ctx, meta, next.ID, false); !errors.Is(err, domain.ErrLastAsymmetricKey) {
		t.Fatalf("retire the last EdDSA key: %v", err)
	}
	if k, err := svc.RetireSigningKey(ctx, meta, next.ID, true); err != nil || !k.Retired {
		t.Fatalf("retire the last EdDSA key, falling back to HS256: %+v %v", k, err)
	}
	if _, err := svc.ActivateSigningKey(ctx, meta, "sk-unknown", false); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("activate an unknown key: %v", err)
	}
}

// TestRetirementsOfTheLastTwoEdDSAKeysAtOnce: replica A decides to retire
// one of the two EdDSA keys that may sign, and replica B's retirement of
// the other lands before A's append. Each was decided while the other key
// could take over; stored both, tokens would be HS256 again without anyone
// asking for it. A's retirement expects the other key's subject, is
// decided again, and refused (ErrLastAsymmetricKey) — whichever of the two
// keys signs.
func TestRetirementsOfTheLastTwoEdDSAKeysAtOnce(t *testing.T) {
	for _, aRetires := range []string{"the signer", "the other key"} {
		t.Run(aRetires, func(t *testing.T) {
			s, _, onB := newReplica(t, nil)
			hooked := &hookedStream{stream: s}
			a, onA := replicaOn(t, s, hooked)
			ctx := context.Background()
			meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
			older, err := onB.AddSigningKey(ctx, meta, domain.AlgEdDSA, false, false)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := onB.AddSigningKey(ctx, meta, domain.AlgEdDSA, false, false)
			if err != nil {
				t.Fatal(err)
			}
			mine, theirs := signer.ID, older.ID
			if aRetires == "the other key" {
				mine, theirs = theirs, mine
			}
			head, _ := s.Head(ctx)
			if err := a.WaitFor(ctx, head); err != nil {
				t.Fatal(err)
			}
			ran := onceBefore(t, hooked, domain.TypeSigningKeyRetired, func() {
				if _, err := onB.RetireSigningKey(ctx, meta, theirs, false); err != nil {
					t.Errorf("B's retirement: %v", err)
				}
			})
			if _, err := onA.RetireSigningKey(ctx, meta, mine, false); !errors.Is(err, domain.ErrLastAsymmetricKey) {
				t.Fatalf("A's retirement after B's: %v, want ErrLastAsymmetricKey", err)
			}
			if !*ran {
				t.Fatal("B's retirement did not run between A's decision and its append")
			}
			if k, _, _ := a.model.SigningKey(mine); k.Retired {
				t.Fatal("both EdDSA keys retired")
			}
		})
	}
}

// TestHS256DoesNotDisplaceTheEdDSASigner: adding an HS256 key that signs at
// once, or activating one, while an EdDSA key signs is refused
// (domain.ErrHS256DisplacesEdDSA) unless the request falls back to HS256
// explicitly; a pending HS256 key may be added (outside check 20r4: the
// API's default algorithm is HS256, and such a key took over from the
// EdDSA key with no refusal).
func TestHS256DoesNotDisplaceTheEdDSASigner(t *testing.T) {
	s, _, svc := newReplica(t, nil)
	ctx := context.Background()
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	ed, err := svc.AddSigningKey(ctx, meta, domain.AlgEdDSA, false, false)
	if err != nil {
		t.Fatal(err)
	}
	appends := len(s.appends)
	if _, err := svc.AddSigningKey(ctx, meta, domain.AlgHS256, false, false); !errors.Is(err, domain.ErrHS256DisplacesEdDSA) || len(s.appends) != appends {
		t.Fatalf("add an HS256 key that signs while an EdDSA key signs: %v, %d appends", err, len(s.appends)-appends)
	}
	hs, err := svc.AddSigningKey(ctx, meta, domain.AlgHS256, true, false)
	if err != nil || !hs.Pending {
		t.Fatalf("add a pending HS256 key: %+v %v", hs, err)
	}
	if _, err := svc.ActivateSigningKey(ctx, meta, hs.ID, false); !errors.Is(err, domain.ErrHS256DisplacesEdDSA) {
		t.Fatalf("activate the HS256 key while an EdDSA key signs: %v", err)
	}
	if k, err := svc.ActivateSigningKey(ctx, meta, hs.ID, true); err != nil || k.Pending {
		t.Fatalf("activate the HS256 key, falling back to HS256: %+v %v", k, err)
	}
	// The EdDSA key signs again; an HS256 key that signs at once, asked for.
	if _, err := svc.ActivateSigningKey(ctx, meta, ed.ID, false); err != nil {
		t.Fatal(err)
	}
	if k, err := svc.AddSigningKey(ctx, meta, domain.AlgHS256, false, true); err != nil || k.Pending {
		t.Fatalf("add an HS256 key that signs, falling back to HS256: %+v %v", k, err)
	}
}

// TestHS256DecidedBeforeAnEdDSAKeySigns: replica A decides to add an HS256
// key that signs at once, or to activate one, while no EdDSA key signs, and
// replica B's addition or activation of an EdDSA key that signs lands
// before A's append. Stored, A's key would take over from B's with no one
// asking: A's write expects every signing key's subject unchanged, is
// decided again on B's key, and refused.
func TestHS256DecidedBeforeAnEdDSAKeySigns(t *testing.T) {
	for _, aDoes := range []string{"adds", "activates"} {
		for _, bDoes := range []string{"adds", "activates"} {
			t.Run("A "+aDoes+", B "+bDoes, func(t *testing.T) {
				s, _, onB := newReplica(t, nil)
				hooked := &hookedStream{stream: s}
				a, onA := replicaOn(t, s, hooked)
				ctx := context.Background()
				meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
				edPending, err := onB.AddSigningKey(ctx, meta, domain.AlgEdDSA, true, false)
				if err != nil {
					t.Fatal(err)
				}
				hsPending, err := onB.AddSigningKey(ctx, meta, domain.AlgHS256, true, false)
				if err != nil {
					t.Fatal(err)
				}
				head, _ := s.Head(ctx)
				if err := a.WaitFor(ctx, head); err != nil {
					t.Fatal(err)
				}
				typ := domain.TypeSigningKeyAdded
				if aDoes == "activates" {
					typ = domain.TypeSigningKeyActivated
				}
				ran := onceBefore(t, hooked, typ, func() {
					var err error
					if bDoes == "adds" {
						_, err = onB.AddSigningKey(ctx, meta, domain.AlgEdDSA, false, false)
					} else {
						_, err = onB.ActivateSigningKey(ctx, meta, edPending.ID, false)
					}
					if err != nil {
						t.Errorf("B's EdDSA key: %v", err)
					}
				})
				if aDoes == "adds" {
					_, err = onA.AddSigningKey(ctx, meta, domain.AlgHS256, false, false)
				} else {
					_, err = onA.ActivateSigningKey(ctx, meta, hsPending.ID, false)
				}
				if !errors.Is(err, domain.ErrHS256DisplacesEdDSA) {
					t.Fatalf("A's HS256 key after B's EdDSA key: %v, want ErrHS256DisplacesEdDSA", err)
				}
				if !*ran {
					t.Fatal("B's EdDSA key did not land between A's decision and its append")
				}
				if signer, _ := domain.Signer(a.model.SigningKeys()); signer.Algorithm != domain.AlgEdDSA {
					t.Fatalf("signer %+v, want B's EdDSA key", signer)
				}
			})
		}
	}
}
