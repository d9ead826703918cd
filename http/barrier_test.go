package http

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/http/scim"
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

// TestCatchUpBudgetAnswer: a request refused because too many unknown
// secrets were looked for at once is a 503 "nothing was changed" with
// Retry-After (a client may send it again, a POST too), counted — and not
// an ERROR log line each, which a flood of made-up tokens turned into
// megabytes a second.
func TestCatchUpBudgetAnswer(t *testing.T) {
	var logs bytes.Buffer
	m := NewMetrics()
	s := New(Config{}, Deps{Tokens: newTestTokens(t, time.Now), Readiness: readyStub{}, Metrics: m,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	s.App().Post("/budget", func(*fiber.Ctx) error { return fmt.Errorf("refresh: %w", commands.ErrCatchUpBudget) })
	for range 3 {
		res, err := s.App().Test(httptest.NewRequest("POST", "/budget", nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 503 || res.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), `"UNAVAILABLE"`) {
			t.Fatalf("answer %d, Retry-After %q, %s", res.StatusCode, res.Header.Get("Retry-After"), body)
		}
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("logged as an error:\n%s", logs.String())
	}
	if got := testutil.ToFloat64(m.background.WithLabelValues("catch_up_budget")); got != 3 {
		t.Fatalf("counted %v times, want 3", got)
	}
}

// TestHashBusyAnswer: a password check refused because too many waited for
// a hash slot, or because its request's deadline passed while it waited
// (commands.ErrHashBusy), is a 503 "nothing was changed" with Retry-After,
// counted as password_hash_busy — not an ERROR log line each (a burst of
// guesses would write thousands).
func TestHashBusyAnswer(t *testing.T) {
	var logs bytes.Buffer
	m := NewMetrics()
	s := New(Config{}, Deps{Tokens: newTestTokens(t, time.Now), Readiness: readyStub{}, Metrics: m,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	errs := []error{commands.ErrHashBusy, fmt.Errorf("%w: %w", commands.ErrHashBusy, context.DeadlineExceeded)}
	s.App().Post("/busy/:i", func(c *fiber.Ctx) error { return errs[c.Params("i")[0]-'0'] })
	for i := range errs {
		res, err := s.App().Test(httptest.NewRequest("POST", fmt.Sprintf("/busy/%d", i), nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 503 || res.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), `"UNAVAILABLE"`) {
			t.Fatalf("%v: answer %d, Retry-After %q, %s", errs[i], res.StatusCode, res.Header.Get("Retry-After"), body)
		}
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("logged as an error:\n%s", logs.String())
	}
	if got := testutil.ToFloat64(m.background.WithLabelValues("password_hash_busy")); got != 2 {
		t.Fatalf("counted %v times, want 2", got)
	}
}

// catchUpStub records catch-ups; the item is found once one happened.
type catchUpStub struct {
	alone   bool
	catches int
}

func (c *catchUpStub) CatchUp(context.Context, string, string) error { c.catches++; return nil }
func (c *catchUpStub) CatchUpHead(context.Context) error             { c.catches++; return nil }
func (c *catchUpStub) Alone() bool                                   { return c.alone }
func (c *catchUpStub) CatchUpBudget() bool                           { return true }

// TestLookUpCatchesUpForChangesEvenAlone: an ID not found here is looked
// for again after catching up — for a read only while another replica
// serves, for a change (DELETE, POST, PUT) always: during a rolling upgrade
// a replica of the older build does not announce itself, and a revocation
// answered 404 left the key it had just made working.
func TestLookUpCatchesUpForChangesEvenAlone(t *testing.T) {
	for _, tc := range []struct {
		method      string
		alone, want bool
	}{
		{"GET", false, true}, {"GET", true, false}, {"HEAD", true, false},
		{"DELETE", true, true}, {"POST", true, true}, {"PUT", true, true}, {"DELETE", false, true},
	} {
		cu := &catchUpStub{alone: tc.alone}
		s := New(Config{}, Deps{Tokens: newTestTokens(t, time.Now), Readiness: readyStub{}, CatchUp: cu})
		s.App().All("/things/:id", func(c *fiber.Ctx) error {
			found, err := s.lookUp(c, c.Params("id"), func() bool { return cu.catches > 0 })
			if err != nil {
				return err
			}
			if !found {
				return errNotFound
			}
			return c.SendStatus(204)
		})
		res, err := s.App().Test(httptest.NewRequest(tc.method, "/things/key-01ABC", nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := res.StatusCode == 204; got != tc.want {
			t.Errorf("%s alone=%v: %d after %d catch-ups, want found=%v", tc.method, tc.alone, res.StatusCode, cu.catches, tc.want)
		}
	}
}

// TestSCIMHashBusyCounted: a SCIM write refused because too many passwords
// wait for a hash slot is the SCIM 503 and counted under the same label as
// the API's (outside check 18z: SCIM's were not counted at all).
func TestSCIMHashBusyCounted(t *testing.T) {
	m := NewMetrics()
	s := New(Config{}, Deps{Tokens: newTestTokens(t, time.Now), Readiness: readyStub{}, Metrics: m, Log: slog.New(slog.DiscardHandler)})
	if got := (scimBackend{s}).scimError(commands.ErrHashBusy); got != scim.ErrUnavailable {
		t.Fatalf("answer %v, want scim.ErrUnavailable", got)
	}
	if n := testutil.ToFloat64(m.background.WithLabelValues("password_hash_busy")); n != 1 {
		t.Fatalf("counted %v times, want 1", n)
	}
}
