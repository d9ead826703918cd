package tests

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/http/service"
)

// TestSkewConsoleAppliedCheck: a console refresh applied by replica a —
// whose clock is the tolerated skew (domain.ClockSkewTolerance) behind b's —
// whose answer is lost, the quick retries failing before they reach any
// replica; the console asks the session list, answered by b, whether it was
// applied. It must conclude that it was (last_refreshed_at carries a's
// clock, the console reckons in b's), and never present the spent token
// again. Before, with 2 s of slack for whole seconds only, it concluded
// "not applied" and revoked the session as reuse (an outside check, 19b,
// with 3 s of skew).
func TestSkewConsoleAppliedCheck(t *testing.T) {
	skew := domain.ClockSkewTolerance
	d := NewDeployment(t, 1)
	ca, cb := &shiftedClock{}, &shiftedClock{}
	ca.behind.Store(int64(30*time.Second + skew))
	cb.behind.Store(int64(30 * time.Second))
	cfg := func(cl *shiftedClock) Option {
		return func(c *service.Config) {
			c.AccessTTL = time.Minute
			c.RefreshRotation = true
			c.RefreshReuseInterval = service.DefaultRefreshReuseInterval
			c.Now = cl.Now
		}
	}
	a := d.StartReplica(t, cfg(ca))
	b := d.StartReplica(t, cfg(cb))
	ua, _ := url.Parse(a.URL)
	ub, _ := url.Parse(b.URL)
	pa, pb := httputil.NewSingleHostReverseProxy(ua), httputil.NewSingleHostReverseProxy(ub)
	var n atomic.Int32
	var firstAt atomic.Int64
	attempts := &refreshAttempts{}
	base := consoleProxy(t, b, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Path != "/api/v1/auth/refresh" {
			pb.ServeHTTP(w, r)
			return
		}
		ca.behind.Store(int64(skew)) // on time from the first refresh (shiftedClock), a behind b
		cb.behind.Store(0)
		at := time.Now()
		if n.Add(1) == 1 {
			firstAt.Store(at.UnixNano())
			rec := httptest.NewRecorder()
			pa.ServeHTTP(rec, r) // applied by a, its answer lost
			attempts.add(rec.Code, at)
			http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
			return
		}
		if at.Sub(time.Unix(0, firstAt.Load())) < 9*time.Second {
			attempts.add(599, at) // never reached a replica
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		sr := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		pb.ServeHTTP(sr, r)
		attempts.add(sr.code, at)
	})
	ctx := consoleChrome(t)
	consoleSignIn(t, ctx, base, AdminUser, AdminPassword)
	// The console stops ("could not be renewed") or — wrongly — presents
	// the spent token after the quick retries.
	Eventually(t, 45*time.Second, func() error {
		state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.getAttribute('data-state') + ' ' + (document.body.getAttribute('data-renew') || '')`))
		if err != nil {
			return err
		}
		_, codes, log := attempts.get()
		if len(codes) > 0 && (state == "signed-out " || state == "signed-in stopped" || codes[len(codes)-1] != 599 && len(codes) > 1) {
			return nil
		}
		return Errorf("state %q after refreshes %s", state, log)
	})
	_, codes, log := attempts.get()
	for _, c := range codes[1:] {
		if c != 599 {
			t.Fatalf("the console presented the spent token again: refreshes %s (599: failed before any replica)", log)
		}
	}
	if reused := countEvents(storedEvents(t, a.Svc), "session.refresh_reused", ""); reused != 0 {
		t.Fatalf("session revoked as reuse: refreshes %s", log)
	}
}
