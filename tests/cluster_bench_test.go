package tests

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"
)

// BenchmarkRevocationPropagation measures how long a revocation accepted by
// replica A takes to be enforced by replica B, both on a three-node NATS
// cluster (R3 stream), on loopback. Each iteration revokes one access token
// through A's HTTP API (POST /api/v1/auth/revoke) and waits, event-driven,
// until B has applied the revocation — from then on B refuses the token.
// Run with at least 1,000 iterations:
//
//	go test -run '^$' -bench RevocationPropagation -benchtime 1000x ./tests/
//
// Reported (percentiles over the iterations):
//   - sent-to-enforced: from sending the revocation to A until B enforces it;
//   - ack-to-enforced: from A's 200 until B enforces it (0 when B had
//     applied it before A answered: with the replica barrier A answers only
//     once B said it applied it, so always 0);
//   - revoke-answer: the revocation request's own latency, barrier included.
func BenchmarkRevocationPropagation(b *testing.B) {
	d := NewDeployment(b, 3)
	ra := d.StartReplica(b)
	rb := d.StartReplica(b)
	admin := ra.AdminToken()
	ra.CreateUser(admin, "bench", "bench-passphrase", nil)
	login := ra.Login("bench", "bench-passphrase")
	tokens := make([]string, b.N)
	for i := range tokens {
		r := ra.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": login.String("refresh_token")})
		if r.Status != http.StatusOK {
			b.Fatalf("refresh: %d %s", r.Status, r.Raw)
		}
		tokens[i] = r.String("token")
	}
	ctx := context.Background()
	if err := rb.Svc.Runner.WaitFor(ctx, ra.Svc.Runner.Applied()); err != nil {
		b.Fatal(err)
	}
	sent := make([]time.Duration, 0, b.N)
	acked := make([]time.Duration, 0, b.N)
	answers := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		// Nothing else writes: the revocation will be the next event. B's
		// wait starts before the request, so the moment it applies the
		// event is seen however early that is.
		expected := ra.Svc.Runner.Applied() + 1
		enforced := make(chan time.Time, 1)
		go func() {
			_ = rb.Svc.Runner.WaitFor(ctx, expected)
			enforced <- time.Now()
		}()
		start := time.Now()
		r, err := send(ra.URL, request{Method: "POST", Path: "/api/v1/auth/revoke", ContentType: "application/json",
			Body: jsonBody(map[string]string{"token": tokens[i]})})
		answered := time.Now()
		if err != nil || r.Status != http.StatusOK {
			b.Fatalf("revoke: %v %d %s", err, r.Status, r.Raw)
		}
		at := <-enforced
		if got := ra.Svc.Runner.Applied(); got != expected {
			b.Fatalf("the revocation is event %d, not %d: something else wrote", got, expected)
		}
		sent = append(sent, at.Sub(start))
		acked = append(acked, max(at.Sub(answered), 0))
		answers = append(answers, answered.Sub(start))
	}
	b.StopTimer()
	// B refuses the revoked tokens (spot check over HTTP).
	for i := 0; i < b.N; i += max(b.N/10, 1) {
		if r := rb.Do("GET", "/api/v1/auth/me", tokens[i], nil); r.Status != http.StatusUnauthorized {
			b.Fatalf("replica b accepts revoked token %d: %d", i, r.Status)
		}
	}
	report := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		p := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) / 1000 }
		b.ReportMetric(p(0.50), name+"-p50-ms")
		b.ReportMetric(p(0.99), name+"-p99-ms")
	}
	report("sent-to-enforced", sent)
	report("ack-to-enforced", acked)
	report("revoke-answer", answers) // what waiting for B (the replica barrier) costs the revoking request
	b.ReportMetric(0, "ns/op")
}
