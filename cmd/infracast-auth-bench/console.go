package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/infracast/auth/http/console"
)

// errNoChromium: no Chromium on this machine. The console case skips (it
// prints why and reports nothing) rather than fail, as the nginx cases do.
var errNoChromium = errors.New("chromium not found in PATH (Debian: apt-get install chromium)")

func chromiumBinary() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errNoChromium
}

// consoleBudgetKiB is the console's size budget (issue 20): every embedded
// asset, gzip-compressed, together.
const consoleBudgetKiB = 300

// caseConsole measures the admin console (http/console) in headless
// Chromium on loopback: the first page load of a signed-in administrator,
// with the browser's cache off, from navigation start to the app's ready
// mark (performance.mark('console-ready'): the script loaded and run, the
// session asked of /api/v1/auth/me, the first screen rendered), against the
// server-rendered /login page's load event; and the embedded assets' size
// gzip-compressed, against its 300 KiB budget.
func caseConsole(ctx context.Context, b *bench) ([]result, error) {
	bin, err := chromiumBinary()
	if err != nil {
		fmt.Fprintf(b.log, "   skipped: %v\n", err)
		return nil, nil
	}
	sizes, err := console.Sizes()
	if err != nil {
		return nil, err
	}
	gz := 0
	for _, s := range sizes {
		gz += s[1]
	}

	in, err := startInstance(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer in.close()
	base := "http://" + in.addr

	dir, err := os.MkdirTemp("", "infracast-auth-bench-chromium-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("headless", true), chromedp.UserDataDir(dir))
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelCtx := chromedp.NewContext(alloc)
	defer cancelCtx()
	bctx, cancel := context.WithTimeout(bctx, 2*time.Minute+4*b.duration)
	defer cancel()

	// Sign in once, as the console's form does (the session cookies).
	signIn := fmt.Sprintf(`fetch('/api/v1/auth/token', {method: 'POST', credentials: 'same-origin',
  headers: {'Content-Type': 'application/json', 'X-Infracast-Session': 'cookie'},
  body: JSON.stringify({username: %q, password: %q})}).then(function (r) { return r.status; })`, adminUser, adminPassword)
	err = chromedp.Do(bctx,
		chromedp.Navigate(base+"/console"),
		chromedp.Poll[chromedp.Void](`document.body.getAttribute('data-state') === 'signed-out'`, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		return nil, fmt.Errorf("console: the sign-in screen: %w", err)
	}
	status, err := chromedp.Run(bctx, chromedp.Evaluate[int](signIn, chromedp.EvalAwaitPromise))
	if err != nil || status != 200 {
		return nil, fmt.Errorf("console: sign in: status %d, %v", status, err)
	}
	if _, err := chromedp.Call(bctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
		return nil, err
	}

	// load navigates to path and returns what js (a time in ms since
	// navigation start) says once ready is true.
	load := func(path, ready, js string) (time.Duration, error) {
		err := chromedp.Do(bctx, chromedp.Navigate(base+path),
			chromedp.Poll[chromedp.Void](ready, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(2*time.Millisecond)))
		if err != nil {
			return 0, err
		}
		ms, err := chromedp.Run(bctx, chromedp.Evaluate[float64](js))
		if err != nil {
			return 0, err
		}
		return time.Duration(ms * float64(time.Millisecond)), nil
	}
	var s, base0 sample
	deadline := time.Now().Add(b.duration)
	for round := 0; round < 5 || time.Now().Before(deadline); round++ {
		if round >= 200 {
			break
		}
		d, err := load("/console?round="+fmt.Sprint(round), `document.body.getAttribute('data-ready') === '1' && document.body.getAttribute('data-state') === 'signed-in'`,
			`performance.getEntriesByName('console-ready')[0].startTime`)
		if err != nil {
			return nil, fmt.Errorf("console: load: %w", err)
		}
		s.lat = append(s.lat, d)
		s.n++
		d, err = load("/login?round="+fmt.Sprint(round), `performance.getEntriesByType('navigation')[0].loadEventEnd > 0`,
			`performance.getEntriesByType('navigation')[0].loadEventEnd`)
		if err != nil {
			return nil, fmt.Errorf("console: /login: %w", err)
		}
		base0.lat = append(base0.lat, d)
		base0.n++
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	first := result{
		Name: "console", Value: ms(s.quantile(0.5)), Unit: "ms to ready (p50)", Baseline: ms(base0.quantile(0.5)),
		P50: us(s.quantile(0.5)), P99: us(s.quantile(0.99)), BaselineP50: us(base0.quantile(0.5)), BaselineP99: us(base0.quantile(0.99)),
		Samples: s.n, baselineName: "/login page load event (p50)",
	}
	first.Ratio = ratio(first.Value, first.Baseline)
	first.valueBelow(1000)
	kib := float64(gz) / 1024
	size := result{
		Name: "console.assets_gzip", Value: kib, Unit: "KiB gzip", Baseline: consoleBudgetKiB, Ratio: kib / consoleBudgetKiB,
		Samples: int64(len(sizes)), baselineName: "budget",
	}
	size.valueBelow(consoleBudgetKiB)
	return []result{first, size}, nil
}
