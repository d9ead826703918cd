package tests

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/infracast/auth/http/service"
)

// The console's refresh rules near the reuse interval and the session's end
// (docs/console.md "When a refresh fails", "The session's end"; outside
// check 18w). TestConsoleRefreshAnswerLost and TestConsoleRefreshStopsWhenApplied
// (console_test.go) are the ones with instant failures and the default interval.

// shiftedClock is a service clock that runs behind the host's by an amount
// the test changes: behind by 30 s at sign-in, the console (which reckons in
// the time of the Date header, the host's) sees an access token of a minute
// with 30 s left and refreshes 1 s later; set on time at that first refresh,
// the session list's last_refreshed_at and the console's reckoning agree
// from then on, as on a real service.
type shiftedClock struct{ behind atomic.Int64 }

func (c *shiftedClock) Now() time.Time { return time.Now().Add(-time.Duration(c.behind.Load())) }

// refreshAttempts records, at the proxy, when each refresh reached the
// service (since the first) and what it answered.
type refreshAttempts struct {
	mu    sync.Mutex
	first time.Time
	log   []string
	after []time.Duration
	codes []int
}

func (a *refreshAttempts) add(code int, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.first.IsZero() {
		a.first = at
	}
	a.after = append(a.after, at.Sub(a.first))
	a.codes = append(a.codes, code)
	a.log = append(a.log, fmt.Sprintf("%.1fs:%d", at.Sub(a.first).Seconds(), code))
}

// firstAt: when the first refresh reached the service (zero before).
func (a *refreshAttempts) firstAt() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.first
}

func (a *refreshAttempts) get() ([]time.Duration, []int, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Duration(nil), a.after...), append([]int(nil), a.codes...), strings.Join(a.log, " ")
}

// lostRefreshes starts a service with rotation on and interval as its reuse
// interval behind a proxy that passes each refresh to the service (which
// applies it) and then loses the answer with lose; it signs the admin in
// and waits until the console stops retrying (or is signed out).
func lostRefreshes(t *testing.T, interval time.Duration, lose func(w http.ResponseWriter, r *http.Request)) (*Instance, *refreshAttempts, func(js string) string) {
	t.Helper()
	in, attempts, base := refreshLosingService(t, interval, 30*time.Second, lose)
	ctx := consoleChrome(t)
	consoleSignIn(t, ctx, base, AdminUser, AdminPassword)
	Eventually(t, 60*time.Second, func() error {
		state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.getAttribute('data-state') + ' ' + (document.body.getAttribute('data-renew') || '')`))
		if err != nil {
			return err
		}
		if strings.HasPrefix(state, "signed-out") || strings.HasSuffix(state, " stopped") {
			return nil
		}
		_, _, log := attempts.get()
		return fmt.Errorf("state %q after refreshes %s", state, log)
	})
	return in, attempts, func(js string) string { return evalString(t, ctx, js) }
}

// refreshLosingService starts a service with rotation on, a minute's access
// tokens and interval as its reuse interval, its clock behind by behind
// until the first refresh (so that the console refreshes that much sooner:
// shiftedClock), behind a console proxy that passes each refresh to the
// service — which applies it — records it, and then loses the answer with
// lose. It returns the service, the attempts and the proxy's URL.
func refreshLosingService(t *testing.T, interval, behind time.Duration, lose func(w http.ResponseWriter, r *http.Request)) (*Instance, *refreshAttempts, string) {
	t.Helper()
	clock := &shiftedClock{}
	clock.behind.Store(int64(behind))
	in := Start(t, WithRotation(), func(c *service.Config) {
		c.AccessTTL = time.Minute
		c.RefreshReuseInterval = interval
		c.Now = clock.Now
	})
	attempts := &refreshAttempts{}
	base := consoleProxy(t, in, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Path != "/api/v1/auth/refresh" {
			next.ServeHTTP(w, r)
			return
		}
		clock.behind.Store(0)
		at := time.Now()
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r) // applied by the service ...
		attempts.add(rec.Code, at)
		lose(w, r) // ... and its answer lost
	})
	return in, attempts, base
}

// checkStoppedInTime: every attempt reached the service within the reuse
// interval after the first (which the service applied) — want of them, when
// want is not 0 — no reuse alarm,
// the session alive, and the console still signed in saying it could not
// renew the session.
func checkStoppedInTime(t *testing.T, in *Instance, attempts *refreshAttempts, interval time.Duration, eval func(string) string, want int) {
	t.Helper()
	after, codes, log := attempts.get()
	if len(codes) == 0 || codes[0] != http.StatusOK {
		t.Fatalf("refreshes %s: want the first applied (200)", log)
	}
	for i, d := range after[1:] {
		if d >= interval {
			t.Errorf("retry %d reached the service %s after the first attempt, past the %s reuse interval (refreshes %s)", i+1, d, interval, log)
		}
	}
	if want > 0 && len(codes) != want {
		t.Errorf("refreshes %s: want %d attempts", log, want)
	}
	if n := countEvents(storedEvents(t, in.Svc), "session.refresh_reused", ""); n != 0 {
		t.Fatalf("the console's retries raised %d session.refresh_reused alarm(s) (refreshes %s)", n, log)
	}
	shown := eval(`document.body.getAttribute('data-state') + ' | ' + ((document.getElementById('renew-notice') || {}).textContent || '') + ' | ' + ((document.getElementById('signed-out-reason') || {}).textContent || '')`)
	if !strings.HasPrefix(shown, "signed-in | Your session could not be renewed; it ends at ") {
		t.Fatalf("the console shows %q (refreshes %s), want it signed in with the could-not-be-renewed notice", shown, log)
	}
	if got := eval(`fetch('/api/v1/auth/me', {credentials: 'same-origin'}).then(r => String(r.status))`); got != "200" {
		t.Fatalf("the session after the console stopped retrying: /auth/me %s", got)
	}
}

// TestConsoleRefreshLostSlowly: with rotation on and the default 10-s reuse
// interval, each refresh is applied but its connection drops seconds later.
// Chromium itself sends the request again on each dropped kept-alive
// connection (at 2 s and 4 s for a 2-s drop, at 5 s and 10 s for a 5-s one),
// and the console retried 1, 2 and 4 s after each failure: past the interval
// the token it presented revoked the session for reuse (outside check 18w).
// The console now counts from the start of the first attempt: it aborts an
// attempt, and retries no more, once a send could come later than the
// interval allows, then asks the session list, which shows the refresh
// applied, and stops. How many sends reach the service depends on
// Chromium's idle connections; when, is what counts.
func TestConsoleRefreshLostSlowly(t *testing.T) {
	for _, drop := range []time.Duration{2 * time.Second, 5 * time.Second} {
		t.Run(drop.String(), func(t *testing.T) {
			in, attempts, eval := lostRefreshes(t, service.DefaultRefreshReuseInterval, func(w http.ResponseWriter, r *http.Request) {
				// The simulated network: the connection drops this long
				// after the service answered, unless the browser gave up
				// on the request first (the console aborts it).
				select {
				case <-time.After(drop):
					dropConnection(t, w)
				case <-r.Context().Done():
				}
			})
			checkStoppedInTime(t, in, attempts, service.DefaultRefreshReuseInterval, eval, 0)
		})
	}
}

// TestConsoleRefreshShortReuseInterval: the console keeps its quick retries
// within the reuse interval the service tells it, not a fixed 10 s — with
// 5 s two retries (1 s and 3 s after the first attempt), with 0 (no reuse
// grant) none — and asks the session list instead; every answer is lost at
// once (a proxy's 504) after the service applied the refresh. Before, the
// retries at 1, 3 and 7 s revoked the session (outside check 18w).
func TestConsoleRefreshShortReuseInterval(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		attempts int
	}{{5 * time.Second, 3}, {0, 1}} {
		t.Run(tc.interval.String(), func(t *testing.T) {
			in, attempts, eval := lostRefreshes(t, tc.interval, func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
			})
			checkStoppedInTime(t, in, attempts, tc.interval, eval, tc.attempts)
		})
	}
}

// TestConsoleRefreshNearSessionEnd: the session's absolute end (the refresh
// TTL) caps the access token, so a refresh near it does not move the expiry
// later. The console refreshes once, sees that, stops — no refresh a second
// in the last 30 s (outside check 18w) — says when the session ends, and at
// the end shows the sign-in screen saying the session ended, not "revoked".
// The service's clock stands 40 s behind: the session (a minute) has 20 s
// left by the console's reckoning, so it refreshes 1 s after signing in.
func TestConsoleRefreshNearSessionEnd(t *testing.T) {
	in := Start(t, WithRotation(), WithClock(NewClockAt(time.Now().Add(-40*time.Second))), func(c *service.Config) {
		c.AccessTTL = time.Minute
		c.RefreshTTL = time.Minute
	})
	attempts := &refreshAttempts{}
	base := consoleProxy(t, in, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Path != "/api/v1/auth/refresh" {
			next.ServeHTTP(w, r)
			return
		}
		sr := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sr, r)
		attempts.add(sr.code, time.Now())
	})
	ctx := consoleChrome(t)
	consoleSignIn(t, ctx, base, AdminUser, AdminPassword)
	run(t, ctx, "the notice that the session ends", until(`document.body.getAttribute('data-renew') === 'ends'`))
	shown := evalString(t, ctx, `document.body.getAttribute('data-state') + ' | ' + ((document.getElementById('renew-notice') || {}).textContent || '')`)
	if !strings.HasPrefix(shown, "signed-in | Your session ends at ") || !strings.Contains(shown, "sign in again to continue") {
		t.Fatalf("near the session's end the console shows %q, want it signed in saying when the session ends", shown)
	}
	// The time as the tables show times: in UTC, saying so (outside check
	// 20w: the browser's local time, with no zone, beside tables in UTC).
	if !regexp.MustCompile(`ends at \d\d:\d\d:\d\d UTC;`).MatchString(shown) {
		t.Errorf("the session's end is shown as %q, want its time in UTC, saying so", shown)
	}
	Eventually(t, 40*time.Second, func() error {
		state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.getAttribute('data-state') || ''`))
		if err != nil {
			return err
		}
		if state != "signed-out" {
			_, _, log := attempts.get()
			return fmt.Errorf("state %q, refreshes %s", state, log)
		}
		return nil
	})
	reason := evalString(t, ctx, `(document.getElementById('signed-out-reason') || {}).textContent || ''`)
	if !strings.Contains(reason, "Your session has ended") || strings.Contains(reason, "revoked") {
		t.Fatalf("at the session's end the sign-in screen says %q, want that the session ended (not revoked)", reason)
	}
	if _, codes, log := attempts.get(); len(codes) != 1 {
		t.Fatalf("refreshes %s: want one, then none until the session's end", log)
	}
	if n := countEvents(storedEvents(t, in.Svc), "session.refreshed", ""); n != 1 {
		t.Fatalf("%d session.refreshed events, want 1", n)
	}
	noPolicyBreach(t, ctx)
}
