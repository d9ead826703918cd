package commands

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// sessionAggregate is the session id as the write loop reads it.
func (s *Service) sessionAggregate(id string) aggregate[domain.Session] {
	return aggregate[domain.Session]{
		ref:     ref{domain.AggregateSession, id},
		load:    func() (domain.Session, uint64, bool) { return s.state.Session(id) },
		version: func(sess domain.Session) uint64 { return sess.Version },
	}
}

// RefreshResult is what a refresh grants: a new access token ID for the session
// and, with rotation, the next refresh token (shown once).
type RefreshResult struct {
	User            domain.User
	Session         domain.Session
	TokenID         string
	NewRefreshToken string
}

// successor derives the refresh token that replaces refreshToken when it is
// rotated: HMAC-SHA256 under RefreshSuccessorKey of the session ID and the
// token itself, in the form of newSecret. The same token always has the
// same successor, on every replica; so a refresh of the token spent last,
// within the reuse interval, can hand out the successor again without any
// event holding it (events hold only its SHA-256). Computing it takes the
// token itself (never stored) and the key (never stored: derived from the
// master key), not anything an event stream reader has.
func (s *Service) successor(sessionID, refreshToken string) string {
	m := hmac.New(sha256.New, s.cfg.RefreshSuccessorKey)
	m.Write([]byte(sessionID))
	m.Write([]byte{0})
	m.Write([]byte(refreshToken))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Refresh issues a new access token from a refresh token. With rotation it
// hands out the token's successor, which replaces it; or, when the token is
// the one spent last and its successor is current, and the reuse interval
// since that rotation has not passed, the successor again (two tabs, or a
// retry after a lost answer, racing one refresh): see domain.RefreshSession.
func (s *Service) Refresh(ctx context.Context, meta events.Meta, refreshToken string) (RefreshResult, error) {
	presented := HashToken(refreshToken)
	sid, ok, err := s.sessionByRefreshHash(ctx, presented, false)
	if err != nil {
		return RefreshResult{}, err
	}
	if !ok {
		return RefreshResult{}, domain.ErrInvalidCredentials
	}
	next, nextHash := "", ""
	if s.cfg.RefreshRotation {
		next = s.successor(sid, refreshToken)
		nextHash = HashToken(next)
	}
	var cmd domain.RefreshSession
	sess, err := execute(ctx, s, meta, write[domain.Session]{
		on: s.sessionAggregate(sid), missing: domain.ErrInvalidCredentials,
		decide: func(sess domain.Session) ([]domain.Event, error) {
			usable := s.state.SessionUsable(sid)
			if errors.Is(usable, domain.ErrSessionRevoked) {
				return nil, usable
			}
			if u, _, ok := s.state.User(sess.UserID); sess.Tenant != "" && ok && u.PermissionsIn(sess.Tenant) == 0 {
				// Scoped to a tenant where the user no longer holds a
				// role: no new token (a login there is refused too).
				return nil, domain.ErrInvalidCredentials
			}
			cmd = domain.RefreshSession{
				PresentedHash: presented, Rotate: s.cfg.RefreshRotation, TokenID: NewID("tok"),
				UserActive: usable == nil, Now: s.cfg.Now(), IdleTTL: s.cfg.RefreshIdleTTL,
				NewRefreshTokenHash: nextHash, ReuseInterval: s.cfg.RefreshReuseInterval,
			}
			// A reuse is refused with a trace (the session's revocation),
			// which execute appends before answering the refusal.
			return domain.DecideSession(sess, cmd)
		},
	})
	if err != nil {
		return RefreshResult{}, s.refusedSession(err, sid)
	}
	u, _, _ := s.state.User(sess.UserID)
	return RefreshResult{User: u, Session: sess, TokenID: cmd.TokenID, NewRefreshToken: next}, nil
}

// RefusedSessionError is a refresh token of a known session refused
// (revoked, expired, its user inactive, a reuse): Err, for SessionID, of
// UserID. It names the session for the refusal's log line
// (http/refusals.go); errors.Is and As see Err.
type RefusedSessionError struct {
	SessionID, UserID string
	Err               error
}

func (e *RefusedSessionError) Error() string { return e.Err.Error() }
func (e *RefusedSessionError) Unwrap() error { return e.Err }

// refusedSession names session sid (and its user) in err when err refuses
// its refresh token; any other error (the event store's) is returned as it
// is.
func (s *Service) refusedSession(err error, sid string) error {
	for _, refusal := range []error{domain.ErrSessionRevoked, domain.ErrSessionExpired, domain.ErrUserInactive, domain.ErrInvalidCredentials, domain.ErrRefreshReused} {
		if errors.Is(err, refusal) {
			sess, _, _ := s.state.Session(sid)
			return &RefusedSessionError{SessionID: sid, UserID: sess.UserID, Err: err}
		}
	}
	return err
}

// ExecuteSession decides a session command against the session's state and
// appends the result, retrying on concurrent modification (see execute).
func (s *Service) ExecuteSession(ctx context.Context, meta events.Meta, sessionID string, cmd domain.SessionCommand) error {
	_, err := execute(ctx, s, meta, write[domain.Session]{
		on: s.sessionAggregate(sessionID), missing: domain.ErrNotFound,
		decide: func(sess domain.Session) ([]domain.Event, error) {
			if c, ok := cmd.(domain.RevokeAccessToken); ok {
				// Asked after the session was loaded: a revocation of the
				// token stored since moves the session's subject, so this
				// append conflicts and the retry finds the token revoked —
				// two revocations at once, through one replica or two,
				// write one event. (Read before the session, a revocation
				// applied in between would be missed and written again.)
				c.AlreadyRevoked = s.state.AccessTokenRevoked(c.TokenID)
				return domain.DecideSession(sess, c)
			}
			return domain.DecideSession(sess, cmd)
		},
	})
	return err
}

// RevokeRefreshToken revokes the session a refresh token belongs to. An unknown
// token is not an error (RFC 7009).
func (s *Service) RevokeRefreshToken(ctx context.Context, meta events.Meta, refreshToken string) error {
	sid, ok, err := s.sessionByRefreshHash(ctx, HashToken(refreshToken), true)
	if err != nil || !ok {
		return err
	}
	return s.ExecuteSession(ctx, meta, sid, domain.RevokeSession{Reason: domain.RevokeReasonRevoked})
}

// sessionByRefreshHash finds the session of a refresh token's hash. One this
// replica does not know may have been handed out by another a moment ago (a
// login, a rotation), which the client presents here at once — to refresh,
// or to revoke it, which must not be lost: the read models catch up with
// the event store's head (one round trip) before the answer is "unknown".
// A refresh token carries no session ID to catch up with more narrowly.
// At most UnknownCatchUpRate catch-ups a second (a burst as many): beyond,
// ErrCatchUpBudget. Alone, a refresh does not catch up; a revocation does.
func (s *Service) sessionByRefreshHash(ctx context.Context, hash string, revoking bool) (string, bool, error) {
	if sid, ok := s.state.SessionByRefreshHash(hash); ok {
		return sid, true, nil
	}
	if !revoking && s.Alone() {
		return "", false, nil
	}
	if !s.CatchUpBudget() {
		// A flood of made-up tokens: what is not known cannot be told from
		// what another replica just handed out. Say "try again", not
		// "unknown" (which, for a revocation, would be a lie).
		return "", false, ErrCatchUpBudget
	}
	if err := s.CatchUpHead(ctx); err != nil {
		return "", false, err
	}
	sid, ok := s.state.SessionByRefreshHash(hash)
	return sid, ok, nil
}
