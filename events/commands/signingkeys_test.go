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
	old, err := svc.AddSigningKey(ctx, meta, domain.AlgEdDSA, false)
	if err != nil || old.Pending {
		t.Fatalf("add: %+v %v", old, err)
	}
	next, err := svc.AddSigningKey(ctx, meta, domain.AlgEdDSA, true)
	if err != nil || !next.Pending {
		t.Fatalf("add pending: %+v %v", next, err)
	}
	if _, err := svc.RetireSigningKey(ctx, meta, old.ID, false); !errors.Is(err, domain.ErrLastAsymmetricKey) {
		t.Fatalf("retire the signer while the other EdDSA key is pending: %v", err)
	}
	waits := b.waits.Load()
	k, err := svc.ActivateSigningKey(ctx, meta, next.ID)
	if err != nil || k.Pending || k.ActivatedAt.IsZero() {
		t.Fatalf("activate: %+v %v", k, err)
	}
	if b.waits.Load() == waits {
		t.Fatal("the activation did not wait for the other replicas")
	}
	appends := len(s.appends)
	if _, err := svc.ActivateSigningKey(ctx, meta, next.ID); err != nil || len(s.appends) != appends {
		t.Fatalf("activate the signer again: %v, %d appends", err, len(s.appends)-appends)
	}
	if k, err := svc.RetireSigningKey(ctx, meta, old.ID, false); err != nil || !k.Retired {
		t.Fatalf("retire the old key once the new one signs: %+v %v", k, err)
	}
	if _, err := svc.ActivateSigningKey(ctx, meta, old.ID); !errors.Is(err, domain.ErrSigningKeyRetired) {
		t.Fatalf("activate a retired key: %v", err)
	}
	// An HS256 key that signs after the EdDSA one would not save it either.
	if _, err := svc.AddSigningKey(ctx, meta, domain.AlgHS256, true); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RetireSigningKey(ctx, meta, next.ID, false); !errors.Is(err, domain.ErrLastAsymmetricKey) {
		t.Fatalf("retire the last EdDSA key: %v", err)
	}
	if k, err := svc.RetireSigningKey(ctx, meta, next.ID, true); err != nil || !k.Retired {
		t.Fatalf("retire the last EdDSA key, falling back to HS256: %+v %v", k, err)
	}
	if _, err := svc.ActivateSigningKey(ctx, meta, "sk-unknown"); !errors.Is(err, domain.ErrNotFound) {
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
			older, err := onB.AddSigningKey(ctx, meta, domain.AlgEdDSA, false)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := onB.AddSigningKey(ctx, meta, domain.AlgEdDSA, false)
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
