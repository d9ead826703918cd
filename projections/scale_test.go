package projections_test

import (
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/projections"
)

// scaleModel is a model holding users (two tenant roles each, of 500 tenants)
// and two sessions per user (started, refreshed once), shaped as the service
// writes them: ULID IDs, SHA-256 refresh-token hashes, sealed argon2id
// password hashes. Every string is its own allocation, as decoded.
type scaleModel struct {
	m        *projections.Model
	users    []string // user IDs
	names    []string // usernames
	sessions []string // session IDs
	hashes   []string // their refresh-token hashes
}

var (
	scaleOnce  sync.Once
	scaleBuilt *scaleModel
)

// scaleUsers is the size of the benchmarks' model: beyond the caches, as a
// production model is.
const scaleUsers = 200_000

func sharedScaleModel(b *testing.B) *scaleModel {
	scaleOnce.Do(func() {
		scaleBuilt = buildScaleModel(scaleUsers)
		runtime.GC() // not a collection of the build's garbage under way while measuring
	})
	return scaleBuilt
}

// sealedHash is a sealed argon2id hash of the length the service stores.
func sealedHash(s *events.Sealer) string {
	salt, key := make([]byte, 16), make([]byte, 32)
	crand.Read(salt)
	crand.Read(key)
	phc := "$argon2id$v=19$m=19456,t=2,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
	sealed, err := s.Seal("password_hash", phc)
	if err != nil {
		panic(err)
	}
	return sealed
}

func buildScaleModel(users int) *scaleModel {
	key := make([]byte, 32)
	crand.Read(key)
	sealer, err := events.NewSealer(key)
	if err != nil {
		panic(err)
	}
	sm := &scaleModel{m: projections.NewModel()}
	var seq uint64
	apply := func(id string, e domain.Event) {
		seq++
		sm.m.Apply(seq, events.Envelope{Type: e.EventType(), AggregateID: strings.Clone(id)}, e)
	}
	roles := []domain.Role{domain.RoleViewer, domain.RoleEditor, domain.RoleAdmin}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range users {
		uid, name := commands.NewID("user"), fmt.Sprintf("user%07d", i)
		t1, t2 := i%500, (i%500+1+(i/500)%3)%500
		apply(uid, domain.UserCreated{UserID: uid, Username: name, Email: name + "@example.com", PasswordHashSealed: sealedHash(sealer),
			Roles: []domain.GlobalRole{}, Tenants: []domain.TenantRole{
				{Tenant: fmt.Sprintf("tenant-%03d", t1), Role: domain.Role(strings.Clone(string(roles[i%3])))},
				{Tenant: fmt.Sprintf("tenant-%03d", t2), Role: domain.Role(strings.Clone(string(domain.RoleViewer)))},
			}, CreatedAt: now.Add(time.Duration(i) * time.Millisecond)})
		// The lookups' keys are copies, as a request's are.
		sm.users, sm.names = append(sm.users, strings.Clone(uid)), append(sm.names, strings.Clone(name))
	}
	for i := range 2 * users {
		sid, uid := commands.NewID("sess"), sm.users[i%users]
		hash := commands.HashToken(sid + "-refresh")
		at := now.Add(time.Duration(i) * time.Millisecond)
		apply(sid, domain.SessionStarted{SessionID: sid, UserID: strings.Clone(uid), RefreshTokenHash: hash, Method: "password",
			StartedAt: at, ExpiresAt: at.Add(7 * 24 * time.Hour)})
		apply(sid, domain.SessionRefreshed{SessionID: strings.Clone(sid), TokenID: commands.NewID("tok"), At: at.Add(time.Minute)})
		sm.sessions, sm.hashes = append(sm.sessions, strings.Clone(sid)), append(sm.hashes, strings.Clone(hash))
	}
	return sm
}

// order is a random permutation of n: lookups that miss the caches, as a
// production model's do.
func order(n int) []int {
	r := rand.New(rand.NewPCG(1, 2))
	return r.Perm(n)
}

var permSink domain.PermissionSet

// BenchmarkAuthorize: the access-token check of the request path (session by
// ID, its user, token not revoked) and the user's permissions in a tenant,
// among 200,000 users and 400,000 sessions.
func BenchmarkAuthorize(b *testing.B) {
	sm := sharedScaleModel(b)
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	perm := order(len(sm.sessions))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sid := sm.sessions[perm[i%len(perm)]]
		p, v := sm.m.Authorize(sid, "tok-x", now)
		if v != projections.Valid {
			b.Fatal(v)
		}
		permSink |= p.User.PermissionsIn("tenant-001")
	}
}

// BenchmarkSessionByRefreshHash: a refresh's lookup of its session.
func BenchmarkSessionByRefreshHash(b *testing.B) {
	sm := sharedScaleModel(b)
	perm := order(len(sm.hashes))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := perm[i%len(perm)]
		if id, ok := sm.m.SessionByRefreshHash(sm.hashes[j]); !ok || len(id) != len(sm.sessions[j]) {
			b.Fatal("not found")
		}
	}
}

// BenchmarkSession: a session's state by its ID (refresh, revocation).
func BenchmarkSession(b *testing.B) {
	sm := sharedScaleModel(b)
	perm := order(len(sm.sessions))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, ok := sm.m.Session(sm.sessions[perm[i%len(perm)]]); !ok {
			b.Fatal("not found")
		}
	}
}

// BenchmarkUser: a user's state by ID, and by name (login).
func BenchmarkUser(b *testing.B) {
	sm := sharedScaleModel(b)
	perm := order(len(sm.users))
	b.Run("id", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if u, _, ok := sm.m.User(sm.users[perm[i%len(perm)]]); !ok || len(u.Tenants) != 2 {
				b.Fatal("not found")
			}
		}
	})
	b.Run("name", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, _, ok := sm.m.UserByName(sm.names[perm[i%len(perm)]]); !ok {
				b.Fatal("not found")
			}
		}
	})
}
