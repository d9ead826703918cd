package http

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

// barrierStub is a replica that another one asked for a revocation (behind)
// and that applies it when told to (caughtUp).
type barrierStub struct {
	behind   bool
	caughtUp bool
	waited   int
}

func (b *barrierStub) Behind() bool { return b.behind }

func (b *barrierStub) WaitRequired(ctx context.Context) error {
	b.waited++
	if b.caughtUp {
		b.behind = false
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestCredentialsWaitForRevocationsOtherReplicasAskedFor: while another
// replica waits for this one to apply a revocation it has not applied yet
// (it was paused, and the other gave up after its timeout), no credential is
// checked here: 503 after a second if the read models do not catch up, the
// usual answer once they have. Not behind, nothing is waited for.
func TestCredentialsWaitForRevocationsOtherReplicasAskedFor(t *testing.T) {
	b := &barrierStub{behind: true}
	s := New(Config{}, Deps{Tokens: newTestTokens(t, time.Now), Readiness: readyStub{}, Barrier: b})
	me := func() int {
		t.Helper()
		req := httptest.NewRequest("GET", "/api/v1/auth/me", nil)
		req.Header.Set("Authorization", "Bearer not-a-token")
		res, err := s.App().Test(req, 5000)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode
	}
	if got := me(); got != 503 || b.waited != 1 {
		t.Fatalf("behind and not catching up: %d after %d waits, want 503 after 1", got, b.waited)
	}
	b.caughtUp = true
	if got := me(); got != 401 || b.waited != 2 {
		t.Fatalf("behind, then caught up: %d after %d waits, want the usual 401 after 2", got, b.waited)
	}
	if got := me(); got != 401 || b.waited != 2 {
		t.Fatalf("not behind: %d after %d waits, want 401 without waiting", got, b.waited)
	}
}
