package domain

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// givenSession folds events into a session state, starting from the zero value.
func givenSession(events ...Event) Session {
	var s Session
	for _, e := range events {
		s = EvolveSession(s, e)
	}
	return s
}

const (
	sid   = "s-1"
	hash1 = "sha256:refresh-1"
	hash2 = "sha256:refresh-2"
	hash3 = "sha256:refresh-3"
)

var sessionExpires = t0.Add(30 * 24 * time.Hour)

func sessionStarted() SessionStarted {
	return SessionStarted{
		SessionID: sid, UserID: uid, Tenant: "acme", RefreshTokenHash: hash1,
		Method: "password", StartedAt: t0, ExpiresAt: sessionExpires,
	}
}

func validStart() StartSession {
	return StartSession{
		SessionID: sid, UserID: uid, Tenant: "acme", RefreshTokenHash: hash1,
		Method: "password", Now: t0, ExpiresAt: sessionExpires,
	}
}

func startWith(f func(*StartSession)) StartSession {
	c := validStart()
	f(&c)
	return c
}

// refresh is a valid refresh command one hour after the start, without rotation.
func refresh(f func(*RefreshSession)) RefreshSession {
	c := RefreshSession{PresentedHash: hash1, TokenID: "t-1", UserActive: true, Now: t0.Add(time.Hour)}
	if f != nil {
		f(&c)
	}
	return c
}

func TestDecideSession(t *testing.T) {
	rotated := SessionRefreshed{SessionID: sid, TokenID: "t-1", RefreshTokenHash: hash2, At: t0.Add(time.Hour)}
	revoked := SessionRevoked{SessionID: sid, Reason: RevokeReasonLogout}

	tests := []struct {
		name  string
		given []Event
		when  SessionCommand
		then  outcome
	}{
		// StartSession
		{
			name: "start: valid",
			when: validStart(),
			then: outcome{events: events(sessionStarted())},
		},
		{
			name: "start: times are stored in UTC, tenant optional",
			when: startWith(func(c *StartSession) {
				zone := time.FixedZone("EST", -5*3600)
				c.Tenant = ""
				c.Now = t0.In(zone)
				c.ExpiresAt = sessionExpires.In(zone)
			}),
			then: outcome{events: events(SessionStarted{
				SessionID: sid, UserID: uid, RefreshTokenHash: hash1,
				Method: "password", StartedAt: t0, ExpiresAt: sessionExpires,
			})},
		},
		{
			name:  "start: already exists",
			given: events(sessionStarted()),
			when:  validStart(),
			then:  outcome{err: ErrAlreadyExists},
		},
		{
			name:  "start: already exists even when revoked",
			given: events(sessionStarted(), revoked),
			when:  validStart(),
			then:  outcome{err: ErrAlreadyExists},
		},
		{
			name: "start: missing session id",
			when: startWith(func(c *StartSession) { c.SessionID = "" }),
			then: outcome{field: "session"},
		},
		{
			name: "start: missing user id",
			when: startWith(func(c *StartSession) { c.UserID = "" }),
			then: outcome{field: "session"},
		},
		{
			name: "start: missing refresh token hash",
			when: startWith(func(c *StartSession) { c.RefreshTokenHash = "" }),
			then: outcome{field: "session"},
		},
		{
			name: "start: expires before now",
			when: startWith(func(c *StartSession) { c.ExpiresAt = t0.Add(-time.Second) }),
			then: outcome{field: "expires_at"},
		},
		{
			name: "start: expires exactly now",
			when: startWith(func(c *StartSession) { c.ExpiresAt = t0 }),
			then: outcome{field: "expires_at"},
		},

		// RefreshSession
		{
			name:  "refresh: without rotation, event has no hash",
			given: events(sessionStarted()),
			when:  refresh(func(c *RefreshSession) { c.NewRefreshTokenHash = hash2 }), // ignored without Rotate
			then:  outcome{events: events(SessionRefreshed{SessionID: sid, TokenID: "t-1", At: t0.Add(time.Hour)})},
		},
		{
			name:  "refresh: with rotation, event carries the new hash",
			given: events(sessionStarted()),
			when:  refresh(func(c *RefreshSession) { c.Rotate = true; c.NewRefreshTokenHash = hash2 }),
			then:  outcome{events: events(rotated)},
		},
		{
			name:  "refresh: the rotated-in hash works",
			given: events(sessionStarted(), rotated),
			when: refresh(func(c *RefreshSession) {
				c.PresentedHash, c.Rotate, c.NewRefreshTokenHash, c.TokenID = hash2, true, hash3, "t-2"
			}),
			then: outcome{events: events(SessionRefreshed{SessionID: sid, TokenID: "t-2", RefreshTokenHash: hash3, At: t0.Add(time.Hour)})},
		},
		{
			name:  "refresh: one instant before expiry",
			given: events(sessionStarted()),
			when:  refresh(func(c *RefreshSession) { c.Now = sessionExpires.Add(-time.Nanosecond) }),
			then:  outcome{events: events(SessionRefreshed{SessionID: sid, TokenID: "t-1", At: sessionExpires.Add(-time.Nanosecond)})},
		},
		{
			name:  "refresh: idle lifetime not yet over",
			given: events(sessionStarted()),
			when:  refresh(func(c *RefreshSession) { c.IdleTTL = time.Hour + time.Nanosecond }),
			then:  outcome{events: events(SessionRefreshed{SessionID: sid, TokenID: "t-1", At: t0.Add(time.Hour)})},
		},
		{
			name:  "refresh: idle since the start for exactly the idle lifetime",
			given: events(sessionStarted()),
			when:  refresh(func(c *RefreshSession) { c.IdleTTL = time.Hour }),
			then:  outcome{err: ErrSessionExpired},
		},
		{
			name:  "refresh: the idle lifetime counts from the last refresh",
			given: events(sessionStarted(), SessionRefreshed{SessionID: sid, TokenID: "t-0", At: t0.Add(50 * time.Minute)}),
			when:  refresh(func(c *RefreshSession) { c.IdleTTL = 30 * time.Minute }),
			then:  outcome{events: events(SessionRefreshed{SessionID: sid, TokenID: "t-1", At: t0.Add(time.Hour)})},
		},
		{
			name:  "refresh: revoked",
			given: events(sessionStarted(), revoked),
			when:  refresh(nil),
			then:  outcome{err: ErrSessionRevoked},
		},
		{
			name:  "refresh: expired at exactly ExpiresAt",
			given: events(sessionStarted()),
			when:  refresh(func(c *RefreshSession) { c.Now = sessionExpires }),
			then:  outcome{err: ErrSessionExpired},
		},
		{
			name:  "refresh: expired after ExpiresAt",
			given: events(sessionStarted()),
			when:  refresh(func(c *RefreshSession) { c.Now = sessionExpires.Add(time.Hour) }),
			then:  outcome{err: ErrSessionExpired},
		},
		{
			name:  "refresh: wrong hash",
			given: events(sessionStarted()),
			when:  refresh(func(c *RefreshSession) { c.PresentedHash = "sha256:wrong" }),
			then:  outcome{err: ErrInvalidCredentials},
		},
		{
			name:  "refresh: empty hash",
			given: events(sessionStarted()),
			when:  refresh(func(c *RefreshSession) { c.PresentedHash = "" }),
			then:  outcome{err: ErrInvalidCredentials},
		},
		{
			name:  "refresh: prefix of the hash",
			given: events(sessionStarted()),
			when:  refresh(func(c *RefreshSession) { c.PresentedHash = hash1[:len(hash1)-1] }),
			then:  outcome{err: ErrInvalidCredentials},
		},
		{
			name:  "refresh: spent hash with rotation revokes the session",
			given: events(sessionStarted(), rotated),
			when:  refresh(func(c *RefreshSession) { c.Rotate = true; c.NewRefreshTokenHash = hash3 }),
			then: outcome{
				events: events(
					SessionRefreshReused{SessionID: sid, RefreshTokenHash: hash1},
					SessionRevoked{SessionID: sid, Reason: RevokeReasonReuse},
				),
				err: ErrRefreshReused,
			},
		},
		{
			name: "refresh: oldest of several spent hashes is detected",
			given: events(
				sessionStarted(), rotated,
				SessionRefreshed{SessionID: sid, TokenID: "t-2", RefreshTokenHash: hash3},
			),
			when: refresh(func(c *RefreshSession) { c.Rotate = true; c.NewRefreshTokenHash = "sha256:x" }),
			then: outcome{
				events: events(
					SessionRefreshReused{SessionID: sid, RefreshTokenHash: hash1},
					SessionRevoked{SessionID: sid, Reason: RevokeReasonReuse},
				),
				err: ErrRefreshReused,
			},
		},
		{
			name:  "refresh: spent hash on an inactive user's session is still reuse",
			given: events(sessionStarted(), rotated),
			when:  refresh(func(c *RefreshSession) { c.UserActive = false }),
			then: outcome{
				events: events(
					SessionRefreshReused{SessionID: sid, RefreshTokenHash: hash1},
					SessionRevoked{SessionID: sid, Reason: RevokeReasonReuse},
				),
				err: ErrRefreshReused,
			},
		},
		{
			name:  "refresh: spent hash after reuse revoked the session",
			given: events(sessionStarted(), rotated, SessionRefreshReused{SessionID: sid, RefreshTokenHash: hash1}, SessionRevoked{SessionID: sid, Reason: RevokeReasonReuse}),
			when:  refresh(nil),
			then:  outcome{err: ErrSessionRevoked},
		},
		{
			name:  "refresh: inactive user",
			given: events(sessionStarted()),
			when:  refresh(func(c *RefreshSession) { c.UserActive = false }),
			then:  outcome{err: ErrUserInactive},
		},
		{
			name:  "refresh: rotate with empty new hash",
			given: events(sessionStarted()),
			when:  refresh(func(c *RefreshSession) { c.Rotate = true }),
			then:  outcome{field: "refresh_token"},
		},
		{
			name: "refresh: missing session",
			when: refresh(nil),
			then: outcome{err: ErrNotFound},
		},

		// RevokeSession
		{
			name:  "revoke: once",
			given: events(sessionStarted()),
			when:  RevokeSession{Reason: RevokeReasonLogout},
			then:  outcome{events: events(SessionRevoked{SessionID: sid, Reason: RevokeReasonLogout})},
		},
		{
			name:  "revoke: twice changes nothing",
			given: events(sessionStarted(), revoked),
			when:  RevokeSession{Reason: RevokeReasonRevoked},
			then:  outcome{},
		},
		{
			name: "revoke: missing session",
			when: RevokeSession{Reason: RevokeReasonLogout},
			then: outcome{err: ErrNotFound},
		},

		// RevokeAccessToken
		{
			name:  "revoke access token",
			given: events(sessionStarted(), rotated),
			when:  RevokeAccessToken{TokenID: "t-1", ExpiresAt: t0.Add(time.Hour).In(time.FixedZone("X", 3600))},
			then:  outcome{events: events(SessionTokenRevoked{SessionID: sid, TokenID: "t-1", ExpiresAt: t0.Add(time.Hour)})},
		},
		{
			name:  "revoke access token: empty token id changes nothing",
			given: events(sessionStarted()),
			when:  RevokeAccessToken{ExpiresAt: t0.Add(time.Hour)},
			then:  outcome{},
		},
		{
			name:  "revoke access token: session already revoked changes nothing",
			given: events(sessionStarted(), revoked),
			when:  RevokeAccessToken{TokenID: "t-1", ExpiresAt: t0.Add(time.Hour)},
			then:  outcome{},
		},
		{
			name:  "revoke access token: already revoked changes nothing",
			given: events(sessionStarted(), SessionTokenRevoked{SessionID: sid, TokenID: "t-1", ExpiresAt: t0.Add(time.Hour)}),
			when:  RevokeAccessToken{TokenID: "t-1", ExpiresAt: t0.Add(time.Hour), AlreadyRevoked: true},
			then:  outcome{},
		},
		{
			name:  "revoke access token: within the leeway after expiry",
			given: events(sessionStarted()),
			when:  RevokeAccessToken{TokenID: "t-1", ExpiresAt: t0, Now: t0.Add(29 * time.Second), Leeway: 30 * time.Second},
			then:  outcome{events: events(SessionTokenRevoked{SessionID: sid, TokenID: "t-1", ExpiresAt: t0})},
		},
		{
			// A replica whose clock is ClockSkewTolerance behind this one
			// still accepts the token (an outside check, 19b).
			name:  "revoke access token: past the leeway, within the tolerated skew",
			given: events(sessionStarted()),
			when:  RevokeAccessToken{TokenID: "t-1", ExpiresAt: t0, Now: t0.Add(30*time.Second + ClockSkewTolerance - time.Nanosecond), Leeway: 30 * time.Second},
			then:  outcome{events: events(SessionTokenRevoked{SessionID: sid, TokenID: "t-1", ExpiresAt: t0})},
		},
		{
			name:  "revoke access token: expired (past the leeway and the tolerated skew) changes nothing",
			given: events(sessionStarted()),
			when:  RevokeAccessToken{TokenID: "t-1", ExpiresAt: t0, Now: t0.Add(30*time.Second + ClockSkewTolerance), Leeway: 30 * time.Second},
			then:  outcome{},
		},
		{
			name:  "revoke access token: long expired changes nothing",
			given: events(sessionStarted()),
			when:  RevokeAccessToken{TokenID: "t-1", ExpiresAt: t0, Now: t0.Add(time.Hour), Leeway: 30 * time.Second},
			then:  outcome{},
		},
		{
			name: "revoke access token: missing session",
			when: RevokeAccessToken{TokenID: "t-1", ExpiresAt: t0.Add(time.Hour)},
			then: outcome{err: ErrNotFound},
		},

		// Unknown command. Another aggregate's command (Deactivate{}), or
		// any other value, does not compile: TestWrongCommandDoesNotCompile.
		{
			name:  "unknown command",
			given: events(sessionStarted()),
			when:  &RevokeSession{},
			then:  outcome{field: "command"},
		},
		{
			name: "unknown command on missing session",
			when: &RevokeSession{},
			then: outcome{err: ErrNotFound},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecideSession(givenSession(tc.given...), tc.when)
			tc.then.check(t, got, err)
		})
	}
}

// The reuse interval, with rotation on: the refresh token spent last may be
// presented again for a while after its rotation, and is then granted the same
// successor (a client racing its own refresh, or retrying one whose answer it
// lost); after the interval, or for any older token, it is reuse as before.
func TestDecideSessionReuseInterval(t *testing.T) {
	const interval = 10 * time.Second
	rotatedAt := t0.Add(time.Hour)
	// hash1 was spent at rotatedAt; its successor hash2 is current.
	rotated := SessionRefreshed{SessionID: sid, TokenID: "t-1", RefreshTokenHash: hash2, At: rotatedAt}
	// again presents hash1 (whose successor is hash2) 5 s after the rotation.
	again := func(f func(*RefreshSession)) RefreshSession {
		c := RefreshSession{
			PresentedHash: hash1, NewRefreshTokenHash: hash2, Rotate: true, TokenID: "t-2",
			UserActive: true, Now: rotatedAt.Add(5 * time.Second), ReuseInterval: interval,
		}
		if f != nil {
			f(&c)
		}
		return c
	}
	granted := func(at time.Time) outcome {
		return outcome{events: events(SessionRefreshed{SessionID: sid, TokenID: "t-2", At: at, RefreshTokenReissued: true})}
	}
	reuse := outcome{
		events: events(
			SessionRefreshReused{SessionID: sid, RefreshTokenHash: hash1},
			SessionRevoked{SessionID: sid, Reason: RevokeReasonReuse},
		),
		err: ErrRefreshReused,
	}

	tests := []struct {
		name  string
		given []Event
		when  RefreshSession
		then  outcome
	}{
		{
			name:  "the token spent last, within the interval: same successor, nothing rotates",
			given: events(sessionStarted(), rotated),
			when:  again(nil),
			then:  granted(rotatedAt.Add(5 * time.Second)),
		},
		{
			name:  "at the instant of the rotation",
			given: events(sessionStarted(), rotated),
			when:  again(func(c *RefreshSession) { c.Now = rotatedAt }),
			then:  granted(rotatedAt),
		},
		{
			name:  "one instant before the interval ends",
			given: events(sessionStarted(), rotated),
			when:  again(func(c *RefreshSession) { c.Now = rotatedAt.Add(interval - time.Nanosecond) }),
			then:  granted(rotatedAt.Add(interval - time.Nanosecond)),
		},
		{
			// A retry inside the interval that reached a replica whose
			// clock is ahead of the rotating one's (an outside check, 19b).
			name:  "this replica's clock ahead: granted until the interval plus the tolerated skew",
			given: events(sessionStarted(), rotated),
			when:  again(func(c *RefreshSession) { c.Now = rotatedAt.Add(interval + ClockSkewTolerance - time.Nanosecond) }),
			then:  granted(rotatedAt.Add(interval + ClockSkewTolerance - time.Nanosecond)),
		},
		{
			name:  "this replica's clock a little behind the one that rotated",
			given: events(sessionStarted(), rotated),
			when:  again(func(c *RefreshSession) { c.Now = rotatedAt.Add(-time.Second) }),
			then:  granted(rotatedAt.Add(-time.Second)),
		},
		{
			name:  "at exactly the end of the interval plus the tolerated skew: reuse",
			given: events(sessionStarted(), rotated),
			when:  again(func(c *RefreshSession) { c.Now = rotatedAt.Add(interval + ClockSkewTolerance) }),
			then:  reuse,
		},
		{
			name:  "after the interval: reuse",
			given: events(sessionStarted(), rotated),
			when:  again(func(c *RefreshSession) { c.Now = rotatedAt.Add(time.Hour) }),
			then:  reuse,
		},
		{
			name:  "interval 0 (off): reuse at once",
			given: events(sessionStarted(), rotated),
			when:  again(func(c *RefreshSession) { c.ReuseInterval = 0; c.Now = rotatedAt }),
			then:  reuse,
		},
		{
			name:  "rotation switched off since: reuse",
			given: events(sessionStarted(), rotated),
			when:  again(func(c *RefreshSession) { c.Rotate = false }),
			then:  reuse,
		},
		{
			name:  "a successor that is not the current token: reuse",
			given: events(sessionStarted(), rotated),
			when:  again(func(c *RefreshSession) { c.NewRefreshTokenHash = hash3 }),
			then:  reuse,
		},
		{
			name:  "no successor at all: reuse",
			given: events(sessionStarted(), rotated),
			when:  again(func(c *RefreshSession) { c.NewRefreshTokenHash = "" }),
			then:  reuse,
		},
		{
			name: "an older spent token, within the interval of the last rotation: reuse",
			given: events(sessionStarted(), rotated,
				SessionRefreshed{SessionID: sid, TokenID: "t-3", RefreshTokenHash: hash3, At: rotatedAt.Add(time.Second)}),
			when: again(nil),
			then: reuse,
		},
		{
			name: "the token spent by the second rotation, within its interval",
			given: events(sessionStarted(), rotated,
				SessionRefreshed{SessionID: sid, TokenID: "t-3", RefreshTokenHash: hash3, At: rotatedAt.Add(time.Minute)}),
			when: again(func(c *RefreshSession) {
				c.PresentedHash, c.NewRefreshTokenHash, c.Now = hash2, hash3, rotatedAt.Add(time.Minute+time.Second)
			}),
			then: granted(rotatedAt.Add(time.Minute + time.Second)),
		},
		{
			name: "the interval counts from the rotation: a grant does not extend it",
			given: events(sessionStarted(), rotated,
				SessionRefreshed{SessionID: sid, TokenID: "t-2", At: rotatedAt.Add(9 * time.Second), RefreshTokenReissued: true}),
			when: again(func(c *RefreshSession) { c.Now = rotatedAt.Add(interval + ClockSkewTolerance) }),
			then: reuse,
		},
		{
			name: "granted several times within the interval",
			given: events(sessionStarted(), rotated,
				SessionRefreshed{SessionID: sid, TokenID: "t-2", At: rotatedAt.Add(time.Second), RefreshTokenReissued: true}),
			when: again(func(c *RefreshSession) { c.TokenID = "t-9" }),
			then: outcome{events: events(SessionRefreshed{SessionID: sid, TokenID: "t-9", At: rotatedAt.Add(5 * time.Second), RefreshTokenReissued: true})},
		},
		{
			name:  "a rotation recorded without its time (older events): reuse",
			given: events(sessionStarted(), SessionRefreshed{SessionID: sid, TokenID: "t-1", RefreshTokenHash: hash2}),
			when:  again(nil),
			then:  reuse,
		},
		{
			name:  "inactive user within the interval: refused, no event",
			given: events(sessionStarted(), rotated),
			when:  again(func(c *RefreshSession) { c.UserActive = false }),
			then:  outcome{err: ErrUserInactive},
		},
		{
			name:  "revoked session within the interval",
			given: events(sessionStarted(), rotated, SessionRevoked{SessionID: sid, Reason: RevokeReasonLogout}),
			when:  again(nil),
			then:  outcome{err: ErrSessionRevoked},
		},
		{
			name:  "the current token within the interval rotates as usual",
			given: events(sessionStarted(), rotated),
			when:  again(func(c *RefreshSession) { c.PresentedHash, c.NewRefreshTokenHash = hash2, hash3 }),
			then: outcome{events: events(SessionRefreshed{
				SessionID: sid, TokenID: "t-2", RefreshTokenHash: hash3, At: rotatedAt.Add(5 * time.Second),
			})},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecideSession(givenSession(tc.given...), tc.when)
			tc.then.check(t, got, err)
		})
	}
}

// Two refreshes of one token decided on the same state (a client racing its
// own refresh): the first appends the rotation; the second, conflicting,
// is decided again on the new state and granted within the interval. The
// session ends with one live successor — the one both were given.
func TestRefreshRaceWithinReuseIntervalLeavesOneSuccessor(t *testing.T) {
	// Given a session whose current token is hash1,
	s := givenSession(sessionStarted())
	now := t0.Add(time.Hour)
	cmd := func(tokenID string) RefreshSession {
		return RefreshSession{
			PresentedHash: hash1, NewRefreshTokenHash: hash2, Rotate: true, TokenID: tokenID,
			UserActive: true, Now: now, ReuseInterval: 10 * time.Second,
		}
	}
	// when two refreshes present it together, and the first one's rotation lands,
	first, err := DecideSession(s, cmd("t-a"))
	if err != nil || len(first) != 1 {
		t.Fatalf("first: %v %#v", err, first)
	}
	s = EvolveSession(s, first[0])
	// then the second, decided again on the new state, is granted,
	second, err := DecideSession(s, cmd("t-b"))
	if err != nil {
		t.Fatalf("second: %v", err)
	}
	want := SessionRefreshed{SessionID: sid, TokenID: "t-b", At: now, RefreshTokenReissued: true}
	if !reflect.DeepEqual(second, events(want)) {
		t.Fatalf("second = %#v, want %#v", second, want)
	}
	s = EvolveSession(s, second[0])
	// and the session has one live refresh token, the successor both got.
	if s.Revoked || s.RefreshTokenHash != hash2 || !reflect.DeepEqual(s.SpentHashes, []string{hash1}) || s.Refreshes != 2 {
		t.Fatalf("session: %#v", s)
	}
	// The successor rotates as usual.
	next := RefreshSession{PresentedHash: hash2, NewRefreshTokenHash: hash3, Rotate: true, TokenID: "t-c", UserActive: true, Now: now, ReuseInterval: 10 * time.Second}
	if evs, err := DecideSession(s, next); err != nil || len(evs) != 1 {
		t.Fatalf("successor: %v %#v", err, evs)
	}
}

// The events of a reuse refusal, appended as the contract says, leave a revoked session.
func TestRefreshReuseEventsRevokeTheSession(t *testing.T) {
	s := givenSession(sessionStarted(), SessionRefreshed{SessionID: sid, TokenID: "t-1", RefreshTokenHash: hash2})
	evs, err := DecideSession(s, refresh(func(c *RefreshSession) { c.Rotate = true; c.NewRefreshTokenHash = hash3 }))
	if !errors.Is(err, ErrRefreshReused) {
		t.Fatalf("error = %v, want ErrRefreshReused", err)
	}
	for _, e := range evs {
		s = EvolveSession(s, e)
	}
	if !s.Revoked || s.RevokeReason != RevokeReasonReuse {
		t.Fatalf("after reuse: Revoked=%v Reason=%q", s.Revoked, s.RevokeReason)
	}
	// The current (legitimate) token is dead too.
	if _, err := DecideSession(s, refresh(func(c *RefreshSession) { c.PresentedHash = hash2 })); !errors.Is(err, ErrSessionRevoked) {
		t.Fatalf("refresh after reuse: error = %v, want ErrSessionRevoked", err)
	}
}

func TestEvolveSession(t *testing.T) {
	tests := []struct {
		name  string
		given []Event
		want  Session
	}{
		{
			name: "nothing",
			want: Session{},
		},
		{
			name:  "started",
			given: events(sessionStarted()),
			want: Session{
				ID: sid, UserID: uid, Tenant: "acme", RefreshTokenHash: hash1,
				StartedAt: t0, ExpiresAt: sessionExpires, LastUsedAt: t0, Version: 1,
			},
		},
		{
			name: "refreshes without rotation keep the hash and spend nothing",
			given: events(
				sessionStarted(),
				SessionRefreshed{SessionID: sid, TokenID: "t-1"},
				SessionRefreshed{SessionID: sid, TokenID: "t-2"},
			),
			want: Session{
				ID: sid, UserID: uid, Tenant: "acme", RefreshTokenHash: hash1,
				StartedAt: t0, ExpiresAt: sessionExpires, LastUsedAt: t0, Refreshes: 2, Version: 3,
			},
		},
		{
			name: "spent hashes accumulate on rotation",
			given: events(
				sessionStarted(),
				SessionRefreshed{SessionID: sid, TokenID: "t-1", RefreshTokenHash: hash2},
				SessionRefreshed{SessionID: sid, TokenID: "t-2"},
				SessionRefreshed{SessionID: sid, TokenID: "t-3", RefreshTokenHash: hash3},
			),
			want: Session{
				ID: sid, UserID: uid, Tenant: "acme", RefreshTokenHash: hash3,
				SpentHashes: []string{hash1, hash2},
				StartedAt:   t0, ExpiresAt: sessionExpires, LastUsedAt: t0, Refreshes: 3, Version: 4,
			},
		},
		{
			name: "a rotation records when; a reissue counts as a refresh and rotates nothing",
			given: events(
				sessionStarted(),
				SessionRefreshed{SessionID: sid, TokenID: "t-1", RefreshTokenHash: hash2, At: t0.Add(time.Hour)},
				SessionRefreshed{SessionID: sid, TokenID: "t-2", RefreshTokenReissued: true, At: t0.Add(time.Hour + time.Second)},
			),
			want: Session{
				ID: sid, UserID: uid, Tenant: "acme", RefreshTokenHash: hash2,
				SpentHashes: []string{hash1}, RotatedAt: t0.Add(time.Hour),
				StartedAt: t0, ExpiresAt: sessionExpires, LastUsedAt: t0.Add(time.Hour + time.Second), Refreshes: 2, Version: 3,
			},
		},
		{
			name: "token revocation and reuse count as versions only",
			given: events(
				sessionStarted(),
				SessionTokenRevoked{SessionID: sid, TokenID: "t-1", ExpiresAt: t0},
				SessionRefreshReused{SessionID: sid, RefreshTokenHash: hash1},
			),
			want: Session{
				ID: sid, UserID: uid, Tenant: "acme", RefreshTokenHash: hash1,
				StartedAt: t0, ExpiresAt: sessionExpires, LastUsedAt: t0, Version: 3,
			},
		},
		{
			name: "revoked",
			given: events(
				sessionStarted(),
				SessionRevoked{SessionID: sid, Reason: RevokeReasonDeactivate},
			),
			want: Session{
				ID: sid, UserID: uid, Tenant: "acme", RefreshTokenHash: hash1,
				StartedAt: t0, ExpiresAt: sessionExpires, LastUsedAt: t0, Revoked: true,
				RevokeReason: RevokeReasonDeactivate, Version: 2,
			},
		},
		{
			name: "pointer events apply like values",
			given: events(
				ptr(sessionStarted()),
				&SessionRefreshed{SessionID: sid, TokenID: "t-1", RefreshTokenHash: hash2},
				&SessionRevoked{SessionID: sid, Reason: RevokeReasonLogout},
			),
			want: Session{
				ID: sid, UserID: uid, Tenant: "acme", RefreshTokenHash: hash2,
				SpentHashes: []string{hash1},
				StartedAt:   t0, ExpiresAt: sessionExpires, LastUsedAt: t0, Refreshes: 1,
				Revoked: true, RevokeReason: RevokeReasonLogout, Version: 3,
			},
		},
		{
			name: "events of other aggregates are ignored",
			given: events(
				sessionStarted(),
				UserLoginSucceeded{UserID: uid, SessionID: sid},
				UserDeactivated{UserID: uid},
			),
			want: Session{
				ID: sid, UserID: uid, Tenant: "acme", RefreshTokenHash: hash1,
				StartedAt: t0, ExpiresAt: sessionExpires, LastUsedAt: t0, Version: 1,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := givenSession(tc.given...)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("state =\n\t%#v\nwant\n\t%#v", got, tc.want)
			}
		})
	}
}

func TestEvolveSessionRefreshesCount(t *testing.T) {
	s := givenSession(sessionStarted())
	for i := 1; i <= 5; i++ {
		ev := SessionRefreshed{SessionID: sid, TokenID: "t"}
		if i%2 == 0 {
			ev.RefreshTokenHash = "h" + string(rune('0'+i))
		}
		s = EvolveSession(s, ev)
		if s.Refreshes != i {
			t.Fatalf("after %d refreshes Refreshes = %d", i, s.Refreshes)
		}
		if s.Version != uint64(i+1) {
			t.Fatalf("after %d refreshes Version = %d", i, s.Version)
		}
	}
	if len(s.SpentHashes) != 2 {
		t.Fatalf("SpentHashes = %v, want 2 entries", s.SpentHashes)
	}
}

// Rotating on one state must not write into the spent-hash slice of another
// state that shares its backing array.
func TestEvolveSessionDoesNotShareSpentHashes(t *testing.T) {
	base := givenSession(sessionStarted(), SessionRefreshed{SessionID: sid, RefreshTokenHash: hash2})
	base.SpentHashes = append(make([]string, 0, 8), base.SpentHashes...) // spare capacity
	a := EvolveSession(base, SessionRefreshed{SessionID: sid, RefreshTokenHash: "a"})
	b := EvolveSession(base, SessionRefreshed{SessionID: sid, RefreshTokenHash: "b"})
	if !reflect.DeepEqual(base.SpentHashes, []string{hash1}) {
		t.Fatalf("base SpentHashes = %v", base.SpentHashes)
	}
	if !reflect.DeepEqual(a.SpentHashes, []string{hash1, hash2}) || !reflect.DeepEqual(b.SpentHashes, []string{hash1, hash2}) {
		t.Fatalf("a = %v, b = %v", a.SpentHashes, b.SpentHashes)
	}
	a2 := EvolveSession(a, SessionRefreshed{SessionID: sid, RefreshTokenHash: "a2"})
	b2 := EvolveSession(b, SessionRefreshed{SessionID: sid, RefreshTokenHash: "b2"})
	if !reflect.DeepEqual(a2.SpentHashes, []string{hash1, hash2, "a"}) || !reflect.DeepEqual(b2.SpentHashes, []string{hash1, hash2, "b"}) {
		t.Fatalf("a2 = %v, b2 = %v", a2.SpentHashes, b2.SpentHashes)
	}
}
