package commands

import (
	"context"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// The session limit (Config.MaxSessionsPerUser). Every login — a password,
// single sign-on, a second factor or a passkey completing one: all start
// their session in startSession — that leaves its user with more live
// sessions than the limit ends the least recently used of the others
// (domain.SessionsOverLimit) with session.revoked, reason
// "session_limit". Without it nothing bounded one account's sessions: a
// script logging in ~70 times a second kept 42M sessions live for their 7
// days, on every replica (docs/scale.md, "A worst tenant"). Auth0 caps
// refresh tokens per user and application the same way, Keycloak offers a
// per-user session limit that ends the oldest.
//
// It is done after the login's own appends, so it costs a login under the
// limit one count of the user's live sessions, nothing appended; a login
// over it one more append (an atomic batch of the revocations). A failure
// then is logged and counted (SessionLimitFailures, on /metrics as
// infracast_session_limit_failures_total), never the login's answer: its
// session is stored and its tokens are the user's. The next login ends
// what this one left.
//
// Concurrent logins of one user converge to at most the limit once they
// are done, and never to no session: a login ends only sessions started
// before its own in the stream (domain.SessionsOverLimit), as many as
// bring those and its own to the limit. Its check runs once its own
// session.started is applied on this replica, so every earlier session is
// known there; the login whose session started last is never ended by the
// limit and covers all the others. (Each keeping only its own and ending
// the least recently used of the rest, two logins at limit 1 ended each
// other's new session — two revocations of different sessions, which no
// expectation made conflict — and the user had none: re-check 20r1.) Each
// decides everything beyond the limit (not only one session), each
// session.revoked expecting its session's subject; a login whose batch
// conflicts (another revoked one of them, or refreshed it) catches up and
// decides again, and a session revoked meanwhile is no longer live, so it
// is skipped (revokeSessions, writeBatch). The revocations take access
// away: the append waits for the other replicas as any session revocation
// does (Config.Barrier).

// enforceSessionLimit ends user userID's live sessions started before
// keep (the session just started) beyond the limit, least recently used
// first, never keep; a failure is logged and counted.
func (s *Service) enforceSessionLimit(ctx context.Context, meta events.Meta, userID, keep string) {
	limit := s.cfg.MaxSessionsPerUser
	if limit <= 0 || s.state.UserSessionCount(userID, s.cfg.Now()) <= limit {
		return
	}
	over := func() []string {
		return domain.SessionsOverLimit(s.state.UserSessionUses(userID, s.cfg.Now()), limit, keep)
	}
	if n, err := s.revokeSessions(ctx, meta, over, domain.RevokeReasonSessionLimit); err != nil {
		s.sessionLimitFailures.Add(1)
		s.cfg.Log.Error("a login left its user over the session limit, and the sessions beyond it were not all ended; the next login ends them",
			"user_id", userID, "session_id", keep, "limit", limit, "ended", n, "err", err)
	}
}

// SessionLimitFailures returns how many logins since the service started
// left their user over the session limit because ending the sessions
// beyond it failed (the event store did not answer, or kept conflicting);
// the logins succeeded.
func (s *Service) SessionLimitFailures() uint64 { return s.sessionLimitFailures.Load() }
