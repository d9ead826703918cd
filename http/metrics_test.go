package http

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsObserveSeries: each (route, method, status) counts on its own
// series and each route's latencies on its own histogram, the same with the
// series resolved once as when every request looked them up, from many
// goroutines at once, and a request resolved before allocates nothing.
func TestMetricsObserveSeries(t *testing.T) {
	m := NewMetrics()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				m.observe("/api/v1/tenants/:tenant/*", "GET", 200, time.Millisecond)
				m.observe("/api/v1/tenants/:tenant/*", "GET", 403, time.Millisecond)
				m.observe("/api/v1/auth/token", "BREW", 200, time.Millisecond)
			}
		}()
	}
	wg.Wait()
	for _, c := range []struct {
		route, method, status string
		want                  float64
	}{
		{"/api/v1/tenants/:tenant/*", "GET", "200", 4000},
		{"/api/v1/tenants/:tenant/*", "GET", "403", 4000},
		{"/api/v1/auth/token", "OTHER", "200", 4000},
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.route, c.method, c.status)); got != c.want {
			t.Errorf("%s %s %s: %v requests, want %v", c.method, c.route, c.status, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.requests); n != 3 {
		t.Errorf("%d request series, want 3", n)
	}
	if n := testutil.CollectAndCount(m.duration); n != 2 {
		t.Errorf("%d latency histograms, want 2 (one per route)", n)
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var samples uint64
	for _, f := range families {
		if f.GetName() == "infracast_http_request_duration_seconds" {
			for _, s := range f.GetMetric() {
				samples += s.GetHistogram().GetSampleCount()
			}
		}
	}
	if samples != 12000 {
		t.Errorf("%d latencies observed, want 12000", samples)
	}
	if a := testing.AllocsPerRun(100, func() {
		m.observe("/api/v1/tenants/:tenant/*", "GET", 200, time.Millisecond)
	}); a != 0 {
		t.Errorf("observe of a known series: %v allocations, want 0", a)
	}
}
