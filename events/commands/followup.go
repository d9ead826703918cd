package commands

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/infracast/auth/events"
)

// Follow-ups of stored writes. Some writes cause more writes after their
// own batch is stored: a SCIM group change, or a connection's new
// mappings, bring the roles of the users concerned to what the groups give
// (reconcileSCIMRoles, which reads the stream's head and appends again).
// When the event store fails then, the request's change is stored all the
// same: its answer must not say that nothing was changed (an identity
// provider would send the create again, get 409, and never learn the
// group's ID; outside check 16e). So the request succeeds, the failure is
// logged at ERROR and counted (FollowUpFailures, on /metrics as
// infracast_follow_up_failures_total), and the reconciliation is retried
// in the background — detached from the request, with a doubling delay up
// to followUpMaxDelay, followUpAttempts times at most, until Close — so
// that the roles converge without the identity provider's help. A later
// change of the same users (a retried request too: commitSCIM reconciles
// even when it has nothing to write) converges them as well.

// followUpMaxDelay bounds the delay between two background retries;
// followUpAttempts their number (about ten minutes in all with the
// default first delay); followUpTimeout one attempt.
const (
	followUpMaxDelay = time.Minute
	followUpAttempts = 15
	followUpTimeout  = 30 * time.Second
)

// followUps holds the background retries, stopped by Close.
type followUps struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// FollowUpFailures returns how many follow-ups of stored writes failed
// since the service started (in the request, and each background retry
// that failed).
func (s *Service) FollowUpFailures() uint64 { return s.followUpFailures.Load() }

// Close stops the background retries of follow-ups and waits for them (a
// retry under way is canceled). Call it at shutdown, before the read
// models stop (a retry's append waits for them).
func (s *Service) Close() {
	s.followUps.mu.Lock()
	s.followUps.closed = true
	s.followUps.mu.Unlock()
	s.followUps.cancel()
	s.followUps.wg.Wait()
}

// followUpSCIMRoles reconciles the roles of users after a write of
// connection connID was stored (reconcileSCIMRoles); a failure is logged,
// counted and retried in the background, never the request's answer.
func (s *Service) followUpSCIMRoles(ctx context.Context, meta events.Meta, connID string, users, extra []string) {
	users, extra = slices.Clone(users), slices.Clone(extra) // kept past the request
	s.followUp(ctx, "SCIM role reconciliation", connID, len(users), func(ctx context.Context) error {
		return s.reconcileSCIMRoles(ctx, meta, connID, users, extra)
	})
}

// followUp runs do, a follow-up (what: its name in the log) of a stored
// write of connection connID concerning users users; a failure is logged,
// counted and retried in the background, never the request's answer.
func (s *Service) followUp(ctx context.Context, what, connID string, users int, do func(context.Context) error) {
	err := do(ctx)
	if err == nil {
		return
	}
	s.followUpFailures.Add(1)
	s.cfg.Log.Error(what+" after a stored write failed; retrying in the background",
		"connection_id", connID, "users", users, "err", err)
	s.retryFollowUp(what, connID, users, do)
}

// retryFollowUp runs do in the background until it succeeds, the
// attempts run out or the service closes.
func (s *Service) retryFollowUp(what, connID string, users int, do func(context.Context) error) {
	f := &s.followUps
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		s.cfg.Log.Error(what+" not retried: the service is stopping", "connection_id", connID, "users", users)
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		delay := s.cfg.FollowUpRetry
		for attempt := 1; ; attempt++ {
			t := time.NewTimer(delay)
			select {
			case <-f.ctx.Done():
				t.Stop()
				s.cfg.Log.Error(what+" abandoned: the service is stopping", "connection_id", connID, "users", users)
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(f.ctx, followUpTimeout)
			err := do(ctx)
			cancel()
			if err == nil {
				s.cfg.Log.Info(what+" completed in the background", "connection_id", connID, "users", users, "attempt", attempt)
				return
			}
			if f.ctx.Err() != nil {
				s.cfg.Log.Error(what+" abandoned: the service is stopping", "connection_id", connID, "users", users)
				return
			}
			s.followUpFailures.Add(1)
			if attempt >= followUpAttempts {
				s.cfg.Log.Error(what+" given up; the next change of these users, or the same request again, completes it",
					"connection_id", connID, "users", users, "attempts", attempt, "err", err)
				return
			}
			s.cfg.Log.Warn(what+" failed again; retrying", "connection_id", connID, "users", users, "attempt", attempt, "err", err)
			delay = min(2*delay, followUpMaxDelay)
		}
	}()
}
