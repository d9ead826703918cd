package commands

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// LoginInput is a username/password login.
type LoginInput struct {
	Username, Password, Tenant string
}

// LoginResult is a started session and its refresh token (shown once).
type LoginResult struct {
	User             domain.User
	Session          domain.Session
	RefreshToken     string
	RefreshExpiresAt time.Time
}

// Login verifies a password and starts a session. Unknown users and wrong
// passwords fail alike (ErrInvalidCredentials) and cost the same: both verify an
// argon2id hash and append one login_failed event.
func (s *Service) Login(ctx context.Context, meta events.Meta, in LoginInput) (LoginResult, error) {
	now := s.cfg.Now()
	u, _, found := s.state.UserByName(in.Username)
	// Cheap refusals first, so that an attack costs no argon2id — nor a
	// round trip to the event store: the account (or unknown name) is
	// locked, or the client address is.
	if err := s.throttled(u, found, in.Username, meta.Request.IP, now); err != nil {
		return LoginResult{}, err
	}
	// A user created, or a password changed, through another replica a
	// moment ago: catch up with the event store's head — the same question
	// whether the name exists or not, so that its time does not tell, and
	// shared with concurrent requests (events.Store.Head). Not the name's
	// subject: a creation reserves the name first and appends the user's
	// own events after it, and a replica that had applied the reservation
	// only refused the new user's first login.
	// Alone, nobody else wrote. Best effort: a read that fails (a stream
	// leader being elected) does not fail the login, whose append retries
	// across that and decides under optimistic concurrency anyway; it is
	// counted.
	caughtUp := s.loginCatchUp(ctx)
	if caughtUp {
		u, _, found = s.state.UserByName(in.Username)
		if err := s.throttled(u, found, in.Username, meta.Request.IP, now); err != nil {
			return LoginResult{}, err
		}
	}
	// Checked again once a hash slot is held, before the argon2id: the
	// requests of a burst passed the checks above at once and queued for
	// the slots, and the failures of the first ones lock the address (or
	// the account, or the name) meanwhile — the rest are refused without
	// hashing (an outside check, 18q: 1,000 guesses at once from one
	// address ran 1,000 argon2id, 950 of them answered 429). The same
	// check whether the name exists or not, and before the password is
	// looked at: it tells nothing of either.
	recheck := func() error {
		u, _, found := s.state.UserByName(in.Username)
		return s.throttled(u, found, in.Username, meta.Request.IP, now)
	}
	ok, err := s.passwordMatches(ctx, s.claimant(meta, u, found, in.Username), u, found, in.Username, in.Password, recheck)
	if err != nil {
		return LoginResult{}, err
	}
	// The address again, as it stands after the hashing: a burst of
	// guesses from one address all passed the check above at once, and
	// the failures recorded meanwhile lock it now (an outside check, 15e,
	// had 149 failures recorded from one address limited to 50).
	if err := s.addressThrottled(meta.Request.IP, now); err != nil {
		return LoginResult{}, err
	}
	if !ok || !u.Active {
		reason := "invalid_credentials"
		if ok {
			reason = "user_inactive"
		}
		if err := s.recordLoginFailure(ctx, meta, u, found, in.Username, reason, now); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, domain.ErrInvalidCredentials
	}
	// A second factor enrolled (or required by a policy): the login goes on
	// at /auth/token/mfa (or at enrolment) instead (mfa.go), whatever the
	// tenant — asked before the tenant is looked at, so that a right
	// password with a tenant the user holds no role in is a challenge like
	// any other (CompleteMFA checks the tenant then); before, its 403 came
	// first and was not recorded (an outside check, 20a). That answer
	// tells the password was right, so it is decided like a session's start
	// (startSession): user.login_challenged, against the throttle, stored
	// only if the user's subject has not moved since — in a burst of
	// guesses, failures that land first lock it, and it gets 429 like every
	// other guess, not 403 MFA_REQUIRED.
	if err := s.mfaGate(ctx, caughtUp, u, in.Tenant, "password", u.PasswordHashSealed, false); err != nil {
		var required *MFARequiredError
		var enrol *MFAEnrollmentRequiredError
		if errors.As(err, &required) || errors.As(err, &enrol) {
			if cerr := s.recordChallenge(ctx, meta, u.ID, domain.RecordLoginChallenge{Method: "password", VerifiedHash: u.PasswordHashSealed, Now: now}); cerr != nil {
				return LoginResult{}, cerr
			}
		}
		return LoginResult{}, err
	}
	if in.Tenant != "" && u.PermissionsIn(in.Tenant) == 0 {
		return LoginResult{}, s.refuseTenant(ctx, meta, u.ID, in.Tenant, u.PasswordHashSealed, now)
	}
	return s.startSession(ctx, meta, u.ID, in.Tenant, "password", u.PasswordHashSealed)
}

// recordChallenge appends user.login_challenged (c, its Throttle set
// here): userID's first factor was right (verified against c.VerifiedHash)
// and a second is asked, or the login is refused for its tenant. Decided
// against the login throttle and the hash, on the user's aggregate, and
// stored on a new login_challenge subject only if the user's has not moved
// since (as session.started, startSession).
func (s *Service) recordChallenge(ctx context.Context, meta events.Meta, userID string, c domain.RecordLoginChallenge) error {
	c.Throttle = s.cfg.Throttle
	_, err := execute(ctx, s, meta, write[domain.User]{
		on: s.userAggregate(userID), missing: domain.ErrNotFound,
		into: ref{domain.AggregateLoginChallenge, NewID("chl")},
		decide: func(u domain.User) ([]domain.Event, error) {
			evs, err := domain.DecideUser(u, c)
			if errors.Is(err, domain.ErrUserInactive) {
				return nil, domain.ErrInvalidCredentials
			}
			return evs, err
		},
	})
	return err
}

// refuseTenant answers a login whose password was right but whose tenant
// the user holds no role in (and who has no second factor to ask first).
// That answer, 403, tells the password was right, so it is decided and
// recorded like a second factor's challenge (recordChallenge): a
// user.login_challenged with reason LoginRefusedTenant, against the
// throttle and the verified hash, on the user as the event store has it
// when it is stored — in a burst of guesses, failures that landed
// meanwhile lock it, and it gets 429 like every other guess (an outside
// check, 15e: the right password answered 403 among 429s, with a tenant
// the user was not in). Before, nothing was recorded: a guesser who added
// any tenant to each guess had the right one leave no trace (20a). It
// changes nothing of the user: not a failed login, the password was right.
func (s *Service) refuseTenant(ctx context.Context, meta events.Meta, userID, tenant, verifiedHash string, now time.Time) error {
	err := s.recordChallenge(ctx, meta, userID, domain.RecordLoginChallenge{
		Method: "password", Reason: domain.LoginRefusedTenant, Tenant: tenant, VerifiedHash: verifiedHash, Now: now,
	})
	if err != nil {
		return err
	}
	return domain.ErrForbidden
}

// loginCatchUp catches up with the event store's head before a login reads
// its user, unless no other replica serves, and reports whether it did:
// best effort, bounded by loginCatchUpWait, a failure counted
// (CatchUpFailures), for the login's append decides under optimistic
// concurrency anyway.
func (s *Service) loginCatchUp(ctx context.Context) bool {
	if s.Alone() {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, loginCatchUpWait)
	defer cancel()
	if err := s.CatchUpHead(cctx); err != nil {
		s.catchUpFailures.Add(1)
		return false
	}
	return true
}

// loginCatchUpWait bounds a login's catch-up with its user's events.
const loginCatchUpWait = time.Second

// passwordMatches reports whether password is user u's (found: u exists).
// A name that matches no user (name: as typed, or the ID asked for) costs
// what an existing user's check costs: its password is verified — the
// outcome discarded — against the sealed hash of an existing user, picked
// by a keyed hash of the name (decoyIndex), unsealed as a known user's is.
// Against a dummy hash made at the current cost instead, its time told it
// from every user whose hash was made at another (a login took ~22 ms for
// a user created before the cost was raised, ~86 ms for a name nobody has:
// outside check 18t); now the times of unknown names follow the costs of
// the users' own hashes, whatever their mix, and the same name costs the
// same each time, as a user's does. No store of users: the dummy hash.
// before (nil: none) runs once a hash slot is held, before the argon2id,
// for either (Passwords.Verify): a throttle's check as it stands after the
// wait; its error, or ErrHashBusy (no slot had: the queue full, or who's
// share of it taken), is the answer.
func (s *Service) passwordMatches(ctx context.Context, who Claimant, u domain.User, found bool, name, password string, before func() error) (bool, error) {
	if !found {
		return false, s.passwords.Decoy(ctx, who, password, s.decoyHash(name), before)
	}
	h, err := s.sealer.Open(sealPasswordHash, u.PasswordHashSealed)
	if err != nil {
		return false, fmt.Errorf("commands: unseal password hash of %s: %w", u.ID, err)
	}
	return s.passwords.Verify(ctx, who, password, h, before)
}

// claimant is whom a password check of a request of meta, for user u
// (found: u exists) or the name that matches no user, is counted for in
// the hash queue's shares (Passwords.share): the request's client address,
// and the user's ID or the name's login key — a flood on a name costs the
// same share whether it matches a user or not, so the share tells neither.
func (s *Service) claimant(meta events.Meta, u domain.User, found bool, name string) Claimant {
	if found {
		return Claimant{Address: meta.Request.IP, Account: u.ID}
	}
	return Claimant{Address: meta.Request.IP, Account: "login:" + s.loginKey(name)}
}

// decoyHash is the argon2id hash a name that matches no user is checked
// against (passwordMatches): an existing user's, opened from the read
// model ("" when there are no users: the dummy hash). A hash that does not
// open is counted (DecoyFailures) and logged — without naming the user —
// and the dummy hash stands in: the login still fails as any unknown
// name's does.
func (s *Service) decoyHash(name string) string {
	sealed := s.state.PasswordHashAt(s.decoyIndex(name))
	if sealed == "" {
		return ""
	}
	h, err := s.sealer.Open(sealPasswordHash, sealed)
	if err != nil {
		s.decoyFailures.Add(1)
		s.cfg.Log.Error("the password hash a name that matches no user was checked against did not open; the dummy hash stood in", "err", err)
		return ""
	}
	return h
}

// decoyIndex picks the user whose hash a name that matches no user is
// checked against: HMAC-SHA256 of its normalized form, keyed with a key
// derived from NameKey (the same on every replica, so the same name costs
// the same through each), read as a number. Keyed, so that nobody without
// the master key can tell which user a name is paired with; not loginKey,
// which the stream shows.
func (s *Service) decoyIndex(name string) uint64 {
	m := hmac.New(sha256.New, s.decoyKey)
	m.Write([]byte(domain.NormalizeUsername(name)))
	return binary.BigEndian.Uint64(m.Sum(nil))
}

// DecoyFailures returns how many checks of a name that matches no user
// found the hash they were paired with unopenable since the service
// started, and used the dummy hash instead (decoyHash).
func (s *Service) DecoyFailures() uint64 { return s.decoyFailures.Load() }

// throttled refuses a login early when the read model already shows a lockout.
// The decisive check is repeated inside each append's decision (Decide under
// optimistic concurrency), so parallel attempts cannot slip past it.
func (s *Service) throttled(u domain.User, found bool, username, addr string, now time.Time) error {
	if found {
		if err := s.cfg.Throttle.Check(u.FailedLogins, u.LastFailedLoginAt, now); err != nil {
			return err
		}
	} else {
		a, _ := s.state.Login(s.loginKey(username))
		if err := s.cfg.Throttle.Check(a.Failures, a.LastFailedAt, now); err != nil {
			return err
		}
	}
	return s.addressThrottled(addr, now)
}

// addressThrottled refuses an attempt from client address addr ("": not
// known) when the failures recorded from it lock it at now.
func (s *Service) addressThrottled(addr string, now time.Time) error {
	if addr == "" {
		return nil
	}
	n, last := s.state.AddressFailures(addr)
	return s.cfg.AddressThrottle.Check(n, last, now)
}

// addressFailure is to be called before a failed attempt from client
// address addr is recorded: it waits for the failures from the same address
// (domain.AddressKey) being recorded on this replica, then refuses with the
// lockout if they lock the address; else the caller records its failure
// and calls unlock once it is applied here. The failures land on their
// accounts' subjects, so the address's count is not decided under optimistic
// concurrency like an account's: without this, every guess of a burst
// passed the check at once and 149 failures were recorded from an address
// limited to 50 (an outside check, 15e). Across replicas, each may record
// one failure of an address beyond the limit before it hears of the others'.
func (s *Service) addressFailure(addr string, now time.Time) (unlock func(), err error) {
	if addr == "" || s.cfg.AddressThrottle.MaxFailures <= 0 {
		return func() {}, nil
	}
	m := &s.addrLocks[maphash.String(addrLockSeed, domain.AddressKey(addr))%uint64(len(s.addrLocks))]
	m.Lock()
	if err := s.addressThrottled(addr, now); err != nil {
		m.Unlock()
		return nil, err
	}
	return m.Unlock, nil
}

// addrLockSeed spreads client addresses over Service.addrLocks.
var addrLockSeed = maphash.MakeSeed()

// recordLoginFailure appends the failure, unless by now the account is locked,
// in which case the answer is the lockout.
func (s *Service) recordLoginFailure(ctx context.Context, meta events.Meta, u domain.User, found bool, username, reason string, now time.Time) error {
	unlock, err := s.addressFailure(meta.Request.IP, now)
	if err != nil {
		return err
	}
	defer unlock()
	if found {
		_, err := s.ExecuteUser(ctx, meta, u.ID, domain.RecordLoginFailure{
			Username: username, Reason: reason, Now: now, Throttle: s.cfg.Throttle,
		})
		return err
	}
	// The name matches no user: it is recorded only as the aggregate ID (a
	// keyed hash, loginKey), never as typed, since people sometimes type a
	// password there.
	_, err = execute(ctx, s, meta, write[domain.LoginAttempts]{
		on: s.loginAggregate(s.loginKey(username)),
		decide: func(a domain.LoginAttempts) ([]domain.Event, error) {
			return domain.RecordUnknownLoginFailure(a, reason, now, s.cfg.Throttle)
		},
	})
	return err
}

// loginAggregate is the "login" aggregate id (failed logins on a name that
// matches no user) as the write loop reads it: it always exists, with no
// failures at first.
func (s *Service) loginAggregate(id string) aggregate[domain.LoginAttempts] {
	return aggregate[domain.LoginAttempts]{
		ref: ref{domain.AggregateLogin, id},
		load: func() (domain.LoginAttempts, uint64, bool) {
			a, seq := s.state.Login(id)
			return a, seq, true
		},
		version: func(a domain.LoginAttempts) uint64 { return a.Version },
	}
}

// startSession starts a session for userID, decided against the user's
// current state: the login throttle, the active flag and, for a password login,
// the (sealed) hash the password was verified against. Two single appends:
//
//  1. session.started on the new session's subject, stored only if the user's
//     subject has not moved since the decision (the expectation is on the
//     user's subject: Nats-Expected-Last-Subject-Sequence-Subject). Whatever
//     lands on the user first (a failed login, a password change, a
//     deactivation) makes it conflict, and it is decided again.
//  2. user.login_succeeded on the user's subject, the login's record, which
//     also resets the failure count. It is decided already: another event
//     landing on the user first only moves it along.
//
// Not one atomic batch: on the embedded single-node file store NATS stages a
// batch in an on-disk store of its own, which cost a login a fifth of its
// throughput (docs/performance.md). A crash between the two leaves a session
// without its login record, whose refresh token nobody received.
func (s *Service) startSession(ctx context.Context, meta events.Meta, userID, tenant, method, verifiedHash string) (LoginResult, error) {
	refresh := newSecret()
	now := s.cfg.Now()
	start := domain.StartSession{
		SessionID: NewID("sess"), UserID: userID, Tenant: tenant,
		RefreshTokenHash: HashToken(refresh), Method: method,
		Now: now, ExpiresAt: now.Add(s.cfg.RefreshTTL),
	}
	sessEvents, err := domain.DecideSession(domain.Session{}, start)
	if err != nil {
		return LoginResult{}, err
	}
	// 1. session.started, decided on the user, into the new session.
	var record []domain.Event
	_, err = execute(ctx, s, meta, write[domain.User]{
		on: s.userAggregate(userID), missing: domain.ErrNotFound,
		into: ref{domain.AggregateSession, start.SessionID},
		decide: func(u domain.User) ([]domain.Event, error) {
			login := domain.RecordLogin{SessionID: start.SessionID, Method: method, Now: now, VerifiedHash: verifiedHash}
			if throttledMethod(method) {
				login.Throttle = s.cfg.Throttle
			}
			evs, err := domain.DecideUser(u, login)
			if err != nil {
				if errors.Is(err, domain.ErrUserInactive) {
					return nil, domain.ErrInvalidCredentials
				}
				return nil, err
			}
			record = evs
			return sessEvents, nil
		},
	})
	if err != nil {
		return LoginResult{}, err
	}
	// 2. The login's record on the user, as decided in 1. The session is
	// stored: a failure here is logged and counted, not the answer — the
	// answer said "nothing was changed" of a live session, and an MFA
	// step's spent code and token could not be used again, so the user
	// signed in anew and spent another recovery code (re-check 16r4). The
	// session lacks its login record, as after a crash between the two;
	// the record is not appended later (it resets the failed-login count,
	// which failures since may have raised).
	_, err = execute(ctx, s, meta, write[domain.User]{
		on: s.userAggregate(userID), missing: domain.ErrNotFound,
		decide: func(domain.User) ([]domain.Event, error) { return record, nil },
	})
	if err != nil {
		s.followUpFailures.Add(1)
		s.cfg.Log.Error("a login's record on the user was not stored; its session was", "user_id", userID, "session_id", start.SessionID, "err", err)
	}
	// 3. The user's sessions beyond the limit, least recently used first,
	// end (sessionlimit.go): after the login's own appends, and never its
	// answer.
	s.enforceSessionLimit(ctx, meta, userID, start.SessionID)
	sess, _, _ := s.state.Session(start.SessionID)
	u, _, _ := s.state.User(userID)
	return LoginResult{User: u, Session: sess, RefreshToken: refresh, RefreshExpiresAt: start.ExpiresAt.UTC()}, nil
}

// throttledMethod reports whether a login by method starts its session only
// if the login throttle does not lock the account when it is decided: a
// password login, and every login whose second factor this service checked
// ("password+…", "sso:<provider>+…"). Wrong passwords and wrong codes that
// landed meanwhile lock it as they lock the next attempt: a burst of wrong
// codes with the right one among them must not slip it past the lockout (an
// outside check had hundreds of codes tried per lockout after a password;
// 17b tens after single sign-on, whose second step was not throttled). A
// single sign-on without a factor of ours is not: the identity provider
// throttles its own logins, and failures here do not lock the user out of
// the provider's. Nor is a passwordless passkey's, which cannot be guessed
// (it is refused at its start while the account is locked: mfaLoginUser).
func throttledMethod(method string) bool {
	return method == "password" || strings.Contains(method, "+")
}
