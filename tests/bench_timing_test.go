package tests

import (
	"sort"
	"testing"
	"time"

	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/http/service"
)

// BenchmarkLoginTimingUnknownVsWrongPassword interleaves failed logins for a
// user that does not exist and for one that does (wrong password), at the
// production argon2id cost, and reports the median time of each and their
// ratio: an unknown user costs the same dummy-hash verification and the same
// one event append, so the ratio stays near 1.
// Run: go test -run '^$' -bench LoginTiming -benchtime 200x ./tests/
func BenchmarkLoginTimingUnknownVsWrongPassword(b *testing.B) {
	in := Start(b, func(c *service.Config) {
		c.Hash = commands.DefaultHashParams
		c.LoginMaxFailures, c.LoginMaxFailuresPerAddress = 0, 0
	})
	admin := in.AdminToken()
	in.CreateUser(admin, "known", "known-password-1", map[string]string{"prod": "viewer"})
	var unknown, wrong []time.Duration
	b.ResetTimer()
	type attempt struct {
		user string
		into *[]time.Duration
	}
	for i := 0; i < b.N; i++ {
		pair := []attempt{{"nobody-here", &unknown}, {"known", &wrong}}
		if i%2 == 1 { // alternate which goes first, so neither pays for the other
			pair[0], pair[1] = pair[1], pair[0]
		}
		for _, c := range pair {
			start := time.Now()
			if r := login(in, c.user, "not-the-password"); r.Status != 401 {
				b.Fatalf("%s: %d", c.user, r.Status)
			}
			*c.into = append(*c.into, time.Since(start))
		}
	}
	median := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	mu, mw := median(unknown), median(wrong)
	b.ReportMetric(float64(mu.Microseconds()), "unknown-µs")
	b.ReportMetric(float64(mw.Microseconds()), "wrong-password-µs")
	b.ReportMetric(float64(mu)/float64(mw), "ratio")
}
