package tests

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSSOSilentIdPHoldsNoOtherProvider: an identity provider that accepts
// connections and never answers holds up the login starts of its own
// provider (each waits for the one discovery under way, 10 s at most), not
// those of another: an outside check (18q) had a healthy, cached provider's
// login start wait 79 s behind eight anonymous requests to a silent one,
// since one lock over every provider was held while an IdP was asked.
// Decided by order, not time: the healthy provider answers while the silent
// one's requests are all still waiting.
func TestSSOSilentIdPHoldsNoOtherProvider(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	var mu sync.Mutex
	var held []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // read nothing, answer nothing
			mu.Unlock()
			accepted.Add(1)
		}
	}()
	configureOIDC(t, in, admin, "oidc", "good", alice(), nil)
	if r := in.Do("POST", "/api/v1/admin/sso/oidc", admin, map[string]any{
		"name": "silent", "client_id": "c", "client_secret": "s", "issuer": "http://" + ln.Addr().String(),
	}); r.Status != http.StatusCreated {
		t.Fatalf("configure silent: %d %s", r.Status, r.Raw)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	start := func(provider string) (int, error) {
		res, err := noRedirect.Get(in.URL + "/api/v1/auth/sso/" + provider + "/login")
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	if status, err := start("good"); err != nil || status != http.StatusFound {
		t.Fatalf("good: %d %v", status, err)
	}

	// Three anonymous login starts at the silent provider: one discovery,
	// which the others wait for.
	before := accepted.Load()
	var silentDone atomic.Int64
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, err := start("silent"); err == nil && status != http.StatusBadGateway {
				t.Errorf("silent: %d, want 502", status)
			}
			silentDone.Add(1)
		}()
	}
	Eventually(t, 10*time.Second, func() error {
		if accepted.Load() == before {
			return errors.New("the silent IdP is not asked yet")
		}
		return nil
	})
	if status, err := start("good"); err != nil || status != http.StatusFound {
		t.Fatalf("good while the silent IdP is asked: %d %v", status, err)
	}
	if n := silentDone.Load(); n != 0 {
		t.Fatalf("the healthy provider answered only after %d of the silent provider's requests had: it waited for the silent IdP", n)
	}
	wg.Wait()
	if n := accepted.Load() - before; n != 1 {
		t.Errorf("the silent IdP was asked %d times by three concurrent login starts, want 1 (one discovery, waited for)", n)
	}
}
