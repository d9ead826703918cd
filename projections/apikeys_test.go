package projections

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// keyRig applies API key events to a model and to plain domain states side
// by side: the packed model must answer exactly what EvolveAPIKey says.
type keyRig struct {
	t    *testing.T
	m    *Model
	seq  uint64
	want map[string]domain.APIKey
}

func newKeyRig(t *testing.T) *keyRig {
	r := &keyRig{t: t, m: NewModel(), want: map[string]domain.APIKey{}}
	for _, uid := range []string{"user-1", "user-2"} {
		r.apply(uid, domain.UserCreated{UserID: uid, Username: uid, Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleAdmin}}})
	}
	return r
}

func (r *keyRig) apply(id string, e domain.Event) {
	r.seq++
	r.m.Apply(r.seq, events.Envelope{Type: e.EventType(), AggregateID: strings.Clone(id)}, e)
	switch e.(type) {
	case domain.APIKeyCreated:
		r.want[id] = domain.EvolveAPIKey(domain.APIKey{}, e)
	case domain.APIKeyRotated, domain.APIKeyRevoked, domain.APIKeyUsed:
		if k, ok := r.want[id]; ok {
			r.want[id] = domain.EvolveAPIKey(k, e)
		}
	}
}

// check compares every key's state, and what each hash finds.
func (r *keyRig) check() {
	r.t.Helper()
	for id, want := range r.want {
		got, _, ok := r.m.APIKey(id)
		if !ok || !reflect.DeepEqual(got, want) {
			r.t.Fatalf("key %s:\n got %#v\nwant %#v", id, got, want)
		}
	}
	if n := len(r.m.APIKeys()); n != len(r.want) {
		r.t.Fatalf("%d keys listed, want %d", n, len(r.want))
	}
	now, addr := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), netip.MustParseAddr("10.1.2.3")
	for id, want := range r.want {
		p, v := r.m.AuthorizeKey(want.SecretHash, addr, now)
		found, live := r.m.KeyBySecretHash(want.SecretHash)
		if want.Revoked {
			// Refused as revoked (a leaked key still in use), not unknown,
			// and named, so that the refusal is logged by its ID; not a
			// live key.
			if v != KeyRevoked || p.Key.ID != id || live {
				r.t.Fatalf("revoked key %s: %s, named %q, found %v", id, v, p.Key.ID, live)
			}
			if sum, ok := parseHash(want.SecretHash); ok {
				if p, v := r.m.AuthorizeKeySum(sum, addr, now); v != KeyRevoked || p.Key.ID != id || p.Owner.ID != "" {
					r.t.Fatalf("revoked key %s by its sum: %s, named %q", id, v, p.Key.ID)
				}
			}
			continue
		}
		if _, _, ok := r.m.User(want.OwnerID); !ok {
			if v != KeyOwnerInactive || !live || !reflect.DeepEqual(found, want) {
				r.t.Fatalf("key %s of an unknown owner: %s", id, v)
			}
			continue
		}
		if v != Valid || p.Key.ID != id || !reflect.DeepEqual(p.Key, want) || !live || !reflect.DeepEqual(found, want) {
			r.t.Fatalf("key %s by its hash: %s %#v", id, v, p.Key)
		}
		if sum, ok := parseHash(want.SecretHash); ok {
			p, v = r.m.AuthorizeKeySum(sum, addr, now)
			want.SecretHash = ""
			if v != Valid || !reflect.DeepEqual(p.Key, want) {
				r.t.Fatalf("key %s by its sum: %s %#v", id, v, p.Key)
			}
		}
	}
}

func hashOf(prefix, tail string) string {
	return prefix + strings.Repeat("0", 64-len(prefix)-len(tail)) + tail
}

func TestPackedKeysMatchTheDomain(t *testing.T) {
	r := newKeyRig(t)
	created := time.Date(2025, 5, 6, 7, 8, 9, 123456789, time.UTC)
	exp := created.Add(1000 * 24 * time.Hour)
	far := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	// Three keys whose hashes share their first 8 bytes, one apart.
	same := "00112233445566ff"
	r.apply("key-a", domain.APIKeyCreated{KeyID: "key-a", Name: "a", OwnerID: "user-1", Tenants: []string{"prod", "staging"},
		Permissions: []domain.Permission{domain.NodesRead}, AllowedIPs: []string{"10.0.0.0/8", "192.0.2.1"},
		SecretHash: hashOf(same, "a1"), CreatedAt: created, ExpiresAt: &exp})
	r.apply("key-b", domain.APIKeyCreated{KeyID: "key-b", Name: "b", OwnerID: "user-2", Tenants: []string{"prod", "staging"},
		Permissions: []domain.Permission{domain.NodesRead, domain.JobsRead}, SecretHash: hashOf(same, "b1"), CreatedAt: created, ExpiresAt: &far})
	r.apply("key-c", domain.APIKeyCreated{KeyID: "key-c", Name: "c", OwnerID: "user-1", Tenants: []string{},
		Permissions: []domain.Permission{domain.NodesRead}, SecretHash: hashOf(same, "c1"), CreatedAt: created})
	r.apply("key-d", domain.APIKeyCreated{KeyID: "key-d", Name: "d", OwnerID: "user-9", Tenants: []string{domain.AllTenants},
		Permissions: []domain.Permission{domain.NodesRead}, SecretHash: hashOf("ab", "d1"), CreatedAt: created})
	r.check()
	if r.m.keys.find(&[32]byte{}) != nil {
		t.Fatal("the zero hash found a key")
	}
	// The middle of the chain rotates, the head is revoked, one is used.
	r.apply("key-b", domain.APIKeyRotated{KeyID: "key-b", SecretHash: hashOf(same, "b2"), RotatedAt: created.Add(time.Hour), OwnerID: "user-1"})
	r.apply("key-c", domain.APIKeyRevoked{KeyID: "key-c"})
	r.apply("key-a", domain.APIKeyUsed{KeyID: "key-a", UsedAt: created.Add(2 * time.Hour)})
	r.check()
	if _, v := r.m.AuthorizeKey(hashOf(same, "b1"), netip.MustParseAddr("10.1.2.3"), created); v != UnknownKey {
		t.Fatalf("a rotated-out secret: %s", v)
	}
	// A secret rotated back onto the prefix of a revoked key, and a rotation
	// of a revoked key, which stays revoked.
	r.apply("key-d", domain.APIKeyRotated{KeyID: "key-d", SecretHash: hashOf(same, "c1"), RotatedAt: created.Add(3 * time.Hour)})
	r.apply("key-c", domain.APIKeyRotated{KeyID: "key-c", SecretHash: hashOf(same, "c2"), RotatedAt: created.Add(3 * time.Hour)})
	r.check()
	// Two revoked keys on one prefix, the one listed first rotated again:
	// each found by its current secret, the one before unknown.
	r.apply("key-a", domain.APIKeyRevoked{KeyID: "key-a"})
	r.apply("key-c", domain.APIKeyRotated{KeyID: "key-c", SecretHash: hashOf(same, "c3"), RotatedAt: created.Add(4 * time.Hour)})
	r.check()
	if _, v := r.m.AuthorizeKey(hashOf(same, "c2"), netip.MustParseAddr("10.1.2.3"), created); v != UnknownKey {
		t.Fatalf("a revoked key's rotated-out secret: %s", v)
	}
	// Keys share one copy of their tenant lists and their owner's ID.
	a, _, _ := r.m.APIKey("key-a")
	b, _, _ := r.m.APIKey("key-b")
	u, _, _ := r.m.User("user-1")
	if &a.Tenants[0] != &b.Tenants[0] || unsafe.StringData(a.OwnerID) != unsafe.StringData(u.ID) ||
		unsafe.StringData(b.OwnerID) != unsafe.StringData(u.ID) {
		t.Error("tenant list or owner ID not shared")
	}

	// A snapshot brings back the same keys, found by the same hashes.
	data, _, err := r.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored := NewModel()
	if _, err := restored.Restore(data); err != nil {
		t.Fatal(err)
	}
	r.m = restored
	r.check()
}

// TestOddSecretHashesFoundAsBefore: a SecretHash that is not lower-case hex
// (never written by this service) is kept and found as it is, as before.
func TestOddSecretHashesFoundAsBefore(t *testing.T) {
	r := newKeyRig(t)
	created := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	r.apply("key-x", domain.APIKeyCreated{KeyID: "key-x", Name: "x", OwnerID: "user-1", Tenants: []string{"prod"},
		Permissions: []domain.Permission{domain.NodesRead}, SecretHash: "key-x-h0", CreatedAt: created})
	r.apply("key-y", domain.APIKeyCreated{KeyID: "key-y", Name: "y", OwnerID: "user-1", Tenants: []string{"prod"},
		Permissions: []domain.Permission{domain.NodesRead}, SecretHash: strings.ToUpper(hashOf("ab", "")), CreatedAt: created})
	r.check()
	if _, v := r.m.AuthorizeKey(hashOf("ab", ""), netip.MustParseAddr("10.1.2.3"), created); v != UnknownKey {
		t.Fatalf("upper-case hex matched its lower-case form: %s", v)
	}
	r.apply("key-x", domain.APIKeyRotated{KeyID: "key-x", SecretHash: hashOf("cd", "")})
	r.apply("key-y", domain.APIKeyRevoked{KeyID: "key-y"})
	r.check()
	if _, ok := r.m.KeyBySecretHash("key-x-h0"); ok {
		t.Fatal("a rotated-out odd hash still finds its key")
	}
}

// BenchmarkAuthorizeKey: the request path's lookup of a key among 100,000,
// by the hex hash and by the SHA-256 bytes (what the middleware uses).
func BenchmarkAuthorizeKey(b *testing.B) {
	m := NewModel()
	seq := uint64(1)
	m.Apply(seq, events.Envelope{AggregateID: "user-1"}, domain.UserCreated{UserID: "user-1", Username: "u"})
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var hash string
	for i := 0; i < 100_000; i++ {
		id := fmt.Sprintf("key-%d", i)
		hash = fmt.Sprintf("%064x", i+1)
		seq++
		m.Apply(seq, events.Envelope{AggregateID: id}, domain.APIKeyCreated{KeyID: id, Name: id, OwnerID: "user-1",
			Tenants: []string{"prod"}, Permissions: []domain.Permission{domain.NodesRead}, AllowedIPs: []string{"10.0.0.0/8"},
			SecretHash: hash, CreatedAt: created})
	}
	sum, _ := parseHash(hash)
	addr, now := netip.MustParseAddr("10.1.2.3"), created.Add(time.Hour)
	b.Run("hex", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, v := m.AuthorizeKey(hash, addr, now); v != Valid {
				b.Fatal(v)
			}
		}
	})
	b.Run("sum", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, v := m.AuthorizeKeySum(sum, addr, now); v != Valid {
				b.Fatal(v)
			}
		}
	})
}
