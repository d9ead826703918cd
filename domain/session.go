package domain

import (
	"crypto/subtle"
	"slices"
	"strings"
	"time"
)

// Session is the state of a session aggregate: one login's refresh-token family.
type Session struct {
	ID               string
	UserID           string
	Tenant           string
	RefreshTokenHash string    // hash of the refresh token that is valid now
	SpentHashes      []string  // hashes of rotated-out refresh tokens (reuse detection)
	RotatedAt        time.Time // when the current refresh token rotated in (zero before the first rotation): the reuse interval counts from it
	StartedAt        time.Time
	ExpiresAt        time.Time
	LastUsedAt       time.Time // start or last refresh: drives the idle lifetime
	Refreshes        int
	Revoked          bool
	RevokeReason     string
	Version          uint64
}

// Exists reports whether the session has been started.
func (s Session) Exists() bool { return s.ID != "" }

// AggregateSession names the session aggregate.
const AggregateSession = "session"

// Session events.
// SessionStarted: a login created a session (a refresh-token family). Only the
// SHA-256 of the refresh token is recorded.
type SessionStarted struct {
	SessionID        string    `json:"session_id"`
	UserID           string    `json:"user_id"`
	Tenant           string    `json:"tenant,omitempty"`
	RefreshTokenHash string    `json:"refresh_token_hash"`
	Method           string    `json:"method"`
	StartedAt        time.Time `json:"started_at"`
	ExpiresAt        time.Time `json:"expires_at"`
}

// SessionRefreshed: an access token (TokenID) was issued from the session. With
// rotation, RefreshTokenHash is the hash of the new refresh token.
// RefreshTokenReissued: the refresh token spent last was presented again
// within the reuse interval, and the current one was handed out again
// (nothing rotated; RefreshTokenHash is empty).
type SessionRefreshed struct {
	SessionID            string    `json:"session_id"`
	TokenID              string    `json:"token_id"`
	RefreshTokenHash     string    `json:"refresh_token_hash,omitempty"`
	RefreshTokenReissued bool      `json:"refresh_token_reissued,omitempty"`
	At                   time.Time `json:"at"`
}

// SessionRefreshReused: a spent refresh token was presented again (rotation on);
// the session is revoked by the SessionRevoked that follows it.
type SessionRefreshReused struct {
	SessionID        string `json:"session_id"`
	RefreshTokenHash string `json:"refresh_token_hash"`
}

// SessionRevoked: the session, its refresh token and every access token issued
// from it stop.
type SessionRevoked struct {
	SessionID string `json:"session_id"`
	Reason    string `json:"reason"`
}

// SessionTokenRevoked: one access token (by its ID, the JWT "jti") stops; the
// revocation can be forgotten after ExpiresAt.
type SessionTokenRevoked struct {
	SessionID string    `json:"session_id"`
	TokenID   string    `json:"token_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Session event type names, as they appear in the envelope's "type".
const (
	TypeSessionStarted       = "session.started"
	TypeSessionRefreshed     = "session.refreshed"
	TypeSessionRefreshReused = "session.refresh_reused"
	TypeSessionRevoked       = "session.revoked"
	TypeSessionTokenRevoked  = "session.token_revoked"
)

func (SessionStarted) EventType() string       { return TypeSessionStarted }
func (SessionRefreshed) EventType() string     { return TypeSessionRefreshed }
func (SessionRefreshReused) EventType() string { return TypeSessionRefreshReused }
func (SessionRevoked) EventType() string       { return TypeSessionRevoked }
func (SessionTokenRevoked) EventType() string  { return TypeSessionTokenRevoked }

// Reasons recorded in SessionRevoked.
const (
	RevokeReasonLogout     = "logout"
	RevokeReasonRevoked    = "revoked"
	RevokeReasonReuse      = "refresh_token_reuse"
	RevokeReasonDeactivate = "user_deactivated"
	RevokeReasonAdmin      = "revoked_by_admin" // an admin revoked another user's session
	// RevokeReasonSessionLimit: a login left the user with more live
	// sessions than the limit (SessionsOverLimit), and this one, among the
	// least recently used, was ended.
	RevokeReasonSessionLimit = "session_limit"
)

// SessionCommand is a command on the session aggregate: one of the types
// below. The set is closed (the marker method is unexported), so that handing
// DecideSession, or commands.Service.ExecuteSession, another aggregate's
// command does not compile.
type SessionCommand interface{ sessionCommand() }

// Commands on the session aggregate.
type (
	// StartSession starts a session for a user who has just proved who they are.
	StartSession struct {
		SessionID        string
		UserID           string
		Tenant           string
		RefreshTokenHash string
		Method           string
		Now              time.Time
		ExpiresAt        time.Time
	}
	// RefreshSession issues access token TokenID from the session, given the
	// hash of the presented refresh token. With Rotate, NewRefreshTokenHash
	// replaces the current one. UserActive is the user's state at decision time.
	//
	// NewRefreshTokenHash is the hash of the presented token's successor,
	// which the caller derives from the presented token itself (the same
	// token always has the same successor). That is what makes the reuse
	// interval work: with Rotate and ReuseInterval > 0, the refresh token
	// spent last, presented again less than ReuseInterval after its
	// rotation, is granted (not reuse) when its successor is the current
	// token — the client gets that same successor again, and nothing
	// rotates. Outside the interval, or any older spent token, is reuse.
	RefreshSession struct {
		PresentedHash       string
		NewRefreshTokenHash string
		Rotate              bool
		TokenID             string
		UserActive          bool
		Now                 time.Time
		// IdleTTL, when set, expires a session not refreshed for that long.
		IdleTTL time.Duration
		// ReuseInterval: how long after a rotation the token it spent may
		// be presented again for the same successor (0: never); a deciding
		// replica allows ClockSkewTolerance more, its clock against the
		// rotating replica's.
		ReuseInterval time.Duration
	}
	// RevokeSession ends the session and every token issued from it.
	RevokeSession struct{ Reason string }
	// RevokeAccessToken revokes one access token issued from the session.
	// A token whose revocation is known already (AlreadyRevoked), or that
	// is refused anyway — past ExpiresAt plus Leeway (the clock skew
	// tolerated on exp) plus ClockSkewTolerance (the replicas' clocks
	// differ) at Now — needs no event: the answer is the same
	// (RFC 7009: 200) and a client repeating it wrote one event per call
	// (an outside check, 18q: 1,994 in 1.3 s). A zero Now skips the
	// expiry check.
	RevokeAccessToken struct {
		TokenID   string
		ExpiresAt time.Time
		Now       time.Time
		Leeway    time.Duration
		// AlreadyRevoked: the read models hold the token's revocation.
		// The commands fill it in at each attempt, after loading the
		// session (commands.Service.ExecuteSession).
		AlreadyRevoked bool
	}
)

func (StartSession) sessionCommand()      {}
func (RefreshSession) sessionCommand()    {}
func (RevokeSession) sessionCommand()     {}
func (RevokeAccessToken) sessionCommand() {}

// DecideSession decides a command against the session's state. When it returns
// both events and an error, the events are a trace of the refusal (reuse
// detection) and are appended all the same; the error is the answer. No
// events and no error means the command changes nothing. A command it does
// not know (nil, or a pointer to a command) is refused: ErrNotFound for a
// session that does not exist, else a *ValidationError on "command".
func DecideSession(s Session, cmd SessionCommand) ([]Event, error) {
	if c, ok := cmd.(StartSession); ok {
		if s.Exists() {
			return nil, ErrAlreadyExists
		}
		if c.SessionID == "" || c.UserID == "" || c.RefreshTokenHash == "" {
			return nil, Invalid("session", "id, user and refresh token hash are required")
		}
		if !c.ExpiresAt.After(c.Now) {
			return nil, Invalid("expires_at", "must be after the start")
		}
		return []Event{SessionStarted{
			SessionID: c.SessionID, UserID: c.UserID, Tenant: c.Tenant,
			RefreshTokenHash: c.RefreshTokenHash, Method: c.Method,
			StartedAt: c.Now.UTC(), ExpiresAt: c.ExpiresAt.UTC(),
		}}, nil
	}
	if !s.Exists() {
		return nil, ErrNotFound
	}
	switch c := cmd.(type) {
	case RefreshSession:
		if s.Revoked {
			return nil, ErrSessionRevoked
		}
		if !c.Now.Before(s.ExpiresAt) {
			return nil, ErrSessionExpired
		}
		if c.IdleTTL > 0 && !c.Now.Before(s.LastUsedAt.Add(c.IdleTTL)) {
			return nil, ErrSessionExpired
		}
		if !hashEqual(c.PresentedHash, s.RefreshTokenHash) {
			if s.withinReuseInterval(c) {
				if !c.UserActive {
					return nil, ErrUserInactive
				}
				return []Event{SessionRefreshed{SessionID: s.ID, TokenID: c.TokenID, At: c.Now.UTC(), RefreshTokenReissued: true}}, nil
			}
			for _, spent := range s.SpentHashes {
				if hashEqual(c.PresentedHash, spent) {
					return []Event{
						SessionRefreshReused{SessionID: s.ID, RefreshTokenHash: c.PresentedHash},
						SessionRevoked{SessionID: s.ID, Reason: RevokeReasonReuse},
					}, ErrRefreshReused
				}
			}
			return nil, ErrInvalidCredentials
		}
		if !c.UserActive {
			return nil, ErrUserInactive
		}
		ev := SessionRefreshed{SessionID: s.ID, TokenID: c.TokenID, At: c.Now.UTC()}
		if c.Rotate {
			if c.NewRefreshTokenHash == "" {
				return nil, Invalid("refresh_token", "rotation needs a new refresh token")
			}
			ev.RefreshTokenHash = c.NewRefreshTokenHash
		}
		return []Event{ev}, nil
	case RevokeSession:
		if s.Revoked {
			return nil, nil
		}
		return []Event{SessionRevoked{SessionID: s.ID, Reason: c.Reason}}, nil
	case RevokeAccessToken:
		if s.Revoked || c.TokenID == "" || c.AlreadyRevoked {
			return nil, nil
		}
		// Refused anyway by every replica — past the leeway by this one's
		// clock, and by more than the tolerated skew (ClockSkewTolerance):
		// decided on this clock alone, a replica ahead answered 200, wrote
		// nothing, and one behind still accepted the token (an outside
		// check, 19b).
		if !c.Now.IsZero() && !c.Now.Before(c.ExpiresAt.Add(c.Leeway+ClockSkewTolerance)) {
			return nil, nil // expired: refused without a revocation
		}
		return []Event{SessionTokenRevoked{SessionID: s.ID, TokenID: c.TokenID, ExpiresAt: c.ExpiresAt.UTC()}}, nil
	}
	return nil, Invalid("command", "unknown session command %T", cmd)
}

// EvolveSession applies one event to the session's state.
func EvolveSession(s Session, e Event) Session {
	switch ev := Deref(e).(type) {
	case SessionStarted:
		s = Session{
			ID: ev.SessionID, UserID: ev.UserID, Tenant: ev.Tenant,
			RefreshTokenHash: ev.RefreshTokenHash, StartedAt: ev.StartedAt, ExpiresAt: ev.ExpiresAt,
			LastUsedAt: ev.StartedAt, Version: s.Version,
		}
	case SessionRefreshed:
		s.Refreshes++
		if ev.At.After(s.LastUsedAt) {
			s.LastUsedAt = ev.At
		}
		if ev.RefreshTokenHash != "" {
			s.SpentHashes = append(append([]string(nil), s.SpentHashes...), s.RefreshTokenHash)
			s.RefreshTokenHash = ev.RefreshTokenHash
			s.RotatedAt = ev.At
		}
	case SessionRevoked:
		s.Revoked = true
		s.RevokeReason = ev.Reason
	case SessionRefreshReused, SessionTokenRevoked:
	default:
		return s
	}
	s.Version++
	return s
}

// withinReuseInterval reports whether a refresh presents the token that the
// last rotation spent, within the reuse interval after that rotation, and
// whether that token's successor (c.NewRefreshTokenHash) is the current
// token: a client racing its own refresh, or retrying one whose answer it
// lost. Only the token spent last qualifies (an older one is reuse at any
// time), the interval counts from the rotation (granting it again does not
// extend it), and it is over at exactly ReuseInterval plus
// ClockSkewTolerance by this replica's clock: RotatedAt is the clock of the
// replica that rotated, and a retry within the interval that reached a
// replica a few seconds ahead revoked the session as theft (an outside
// check, 19b). With the interval off (0) nothing is granted. A successor that does
// not match (a token rotated before successors were derived, or under
// another master key) is not granted: the client could not be given it.
func (s Session) withinReuseInterval(c RefreshSession) bool {
	n := len(s.SpentHashes)
	return c.Rotate && c.ReuseInterval > 0 && n > 0 &&
		hashEqual(c.PresentedHash, s.SpentHashes[n-1]) &&
		c.Now.Before(s.RotatedAt.Add(c.ReuseInterval+ClockSkewTolerance)) &&
		hashEqual(c.NewRefreshTokenHash, s.RefreshTokenHash)
}

func hashEqual(a, b string) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// SessionUse is one of a user's live sessions as the session limit sees
// it: its ID, the stream sequence of its session.started and when it was
// last used (its start or last refresh).
type SessionUse struct {
	ID         string
	StartSeq   uint64
	LastUsedAt time.Time
}

// SessionsOverLimit returns the sessions of live (a user's live sessions)
// that the login whose session is keep ends: of the sessions started
// before keep in the stream (StartSeq), the least recently used first (by
// LastUsedAt, ties by ID, the older ID first: IDs are ULIDs), as many as
// bring the sessions up to and including keep to limit; never keep, never
// one started after it. None when limit is 0 (no limit) or not exceeded,
// or when keep is not among live (ended already). Like Auth0's
// refresh-token limit and Keycloak's per-user session limit, the oldest
// give way to the new.
//
// Only the earlier ones, because logins at once each decide: each keeping
// only its own and ending the least recently used of the rest, two logins
// of a user at limit 1 ended each other's new session, and the user had
// none (re-check 20r1) — the two revocations touched different sessions,
// so nothing conflicted. Now the login whose session started last never
// has its session ended by the limit and, once its own session.started is
// applied, sees every earlier one: when all are done the user has at most
// limit live sessions, and at least one.
func SessionsOverLimit(live []SessionUse, limit int, keep string) []string {
	if limit <= 0 || len(live) <= limit {
		return nil
	}
	i := slices.IndexFunc(live, func(s SessionUse) bool { return s.ID == keep })
	if i < 0 {
		return nil
	}
	own := live[i].StartSeq
	order := make([]SessionUse, 0, len(live))
	for _, s := range live {
		if s.StartSeq < own {
			order = append(order, s)
		}
	}
	if len(order)+1 <= limit {
		return nil
	}
	slices.SortFunc(order, func(a, b SessionUse) int {
		if c := a.LastUsedAt.Compare(b.LastUsedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	out := make([]string, 0, len(order)+1-limit)
	for _, s := range order[:len(order)+1-limit] {
		out = append(out, s.ID)
	}
	return out
}
