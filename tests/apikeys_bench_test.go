package tests

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/projections"
)

// benchKey creates a platform-wide read-only key as the bootstrap admin.
func benchKey(b *testing.B, in *Instance) string {
	b.Helper()
	r := in.Do("POST", "/api/v1/api-keys", in.AdminToken(), map[string]any{"name": "bench"})
	if r.Status != 201 {
		b.Fatalf("create key: %d %s", r.Status, r.Raw)
	}
	return r.String("key")
}

// BenchmarkAPIKeyThroughput measures, in one run, the same trivial route bare
// and behind the authentication middleware with "Authorization: Bearer <API
// key>" (shape and checksum, SHA-256, one read-locked lookup, allowlist and
// owner checks, the usage coalescer), over real loopback HTTP. It reports both
// rates and their ratio. Run:
// go test -run '^$' -bench APIKeyThroughput -benchtime 1x ./tests/
func BenchmarkAPIKeyThroughput(b *testing.B) {
	in := Start(b)
	compareThroughput(b, in, benchKey(b, in), "key")
}

// BenchmarkValidateAPIKey is the request path's work for an API key without
// HTTP: shape and checksum, SHA-256 of the secret, and the read model's checks.
func BenchmarkValidateAPIKey(b *testing.B) {
	in := Start(b)
	key := benchKey(b, in)
	model, now, addr := in.Svc.Model, time.Now(), netip.MustParseAddr("127.0.0.1")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		env, err := domain.ParseAPIKey(key)
		if err != nil || env != domain.KeyEnvLive {
			b.Fatal("malformed key")
		}
		p, v := model.AuthorizeKey(commands.HashToken(key), addr, now)
		if v != projections.Valid || !p.Key.Permissions.Has(domain.NodesRead) {
			b.Fatal("not authorized")
		}
	}
}

// BenchmarkKeyModelMemory100k applies 100,000 apikey.created events (1-3
// tenants, 2 permissions, 1 allowed IP, a SHA-256 hex hash, an expiry) to a
// fresh read model and reports the heap it holds per key.
func BenchmarkKeyModelMemory100k(b *testing.B) {
	const total = 100_000
	now := time.Now().UTC()
	exp := now.Add(90 * 24 * time.Hour)
	perms := []domain.Permission{domain.NodesRead, domain.FindingsRead}
	var perKey float64
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m := projections.NewModel()
		for k := 0; k < total; k++ {
			id := fmt.Sprintf("key-01J%023d", k)
			tenants := make([]string, 1+k%3)
			for t := range tenants {
				tenants[t] = fmt.Sprintf("tenant-%d", (k+t)%500)
			}
			ev := domain.APIKeyCreated{
				KeyID: id, Name: fmt.Sprintf("service-account-%d", k), OwnerID: fmt.Sprintf("user-01J%023d", k%1000),
				Tenants: tenants, Permissions: perms,
				AllowedIPs: []string{fmt.Sprintf("10.%d.%d.0/24", k/256%256, k%256)},
				SecretHash: fmt.Sprintf("%064x", k), CreatedAt: now, ExpiresAt: &exp,
			}
			m.Apply(uint64(k+1), events.Envelope{Type: ev.EventType(), Aggregate: domain.AggregateAPIKey, AggregateID: id, Sequence: 1}, ev)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if n := len(m.APIKeys()); n != total {
			b.Fatalf("%d keys in the model", n)
		}
		runtime.KeepAlive(m)
		perKey = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / total
	}
	b.ReportMetric(perKey, "heap-B/key")
	b.ReportMetric(perKey*total/(1<<20), "heap-MiB/100k")
}
