package commands

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// Log is the part of the event store the service writes to.
type Log interface {
	Append(ctx context.Context, msgs ...events.Message) (uint64, error)
	LastSequence(ctx context.Context, subject string) (uint64, error)
	Head(ctx context.Context) (uint64, error)
}

var _ Log = (*events.Store)(nil)

// Projection is how the service waits for the read models that State
// reads (projections.Runner).
type Projection interface {
	// WaitFor waits until the read models have applied stream sequence seq.
	WaitFor(ctx context.Context, seq uint64) error
	// WaitCurrent waits until the read models have caught up with the event
	// store after a reconnection.
	WaitCurrent(ctx context.Context) error
}

// State is what the service reads to decide: the aggregates' current state,
// each with the stream sequence of its last event (the expectation its
// append carries), and the look-ups that lead to them. The read models
// (projections.Model) implement it; the wiring checks that they do.
type State interface {
	UserState
	SessionState
	LoginState
	APIKeyState
	SigningKeyState
	SSOState
}

// UserState reads users.
type UserState interface {
	User(id string) (domain.User, uint64, bool)
	UserByName(name string) (domain.User, uint64, bool)
	UsersByEmail(email string) []domain.User
}

// SessionState reads sessions.
type SessionState interface {
	Session(id string) (domain.Session, uint64, bool)
	SessionByRefreshHash(hash string) (string, bool)
	// SessionUsable returns nil when the session may still issue tokens,
	// else why not: domain.ErrNotFound (unknown session or user),
	// domain.ErrUserInactive, domain.ErrSessionRevoked (revoked, or cut
	// off by a password change). Expiry and the refresh token are the
	// session aggregate's to decide.
	SessionUsable(id string) error
}

// LoginState reads failed logins: on names that match no user ("login"
// aggregates), and per client address.
type LoginState interface {
	Login(id string) (domain.LoginAttempts, uint64)
	AddressFailures(addr string) (int, time.Time)
}

// APIKeyState reads API keys.
type APIKeyState interface {
	APIKey(id string) (domain.APIKey, uint64, bool)
}

// SigningKeyState reads access-token signing keys.
type SigningKeyState interface {
	SigningKey(id string) (domain.SigningKey, uint64, bool)
}

// SSOState reads identity providers and linked identities.
type SSOState interface {
	SSOProvider(name string) (domain.SSOProvider, uint64, bool)
	SSOIdentity(issuer, subject string) (string, bool)
}

// Config tunes the service.
type Config struct {
	RefreshTTL      time.Duration // refresh-token (session) lifetime, default 7 days
	RefreshIdleTTL  time.Duration // a session not refreshed for this long expires (0: no idle limit)
	RefreshRotation bool          // rotate refresh tokens and detect reuse
	Now             func() time.Time
	MaxAttempts     int // decide-append attempts on conflicts, default 25
	// Throttle locks an account (or an unknown name) after consecutive
	// failed logins; AddressThrottle a client address, across accounts.
	Throttle        domain.LoginThrottle
	AddressThrottle domain.LoginThrottle
	// ObserveAppend, when set, is told how long each append to the event
	// store took (metrics).
	ObserveAppend func(d time.Duration, err error)
	// RefreshReuseInterval: with rotation, the refresh token spent last may
	// be presented again this long after its rotation and gets the same
	// successor (0: any reuse revokes the session).
	RefreshReuseInterval time.Duration
	// RefreshSuccessorKey derives a refresh token's successor from it
	// (HMAC-SHA256), so that every replica hands out the same one for the
	// same token; derived from the master key, the same on every replica.
	// When nil, New draws a random key: right for one process only.
	RefreshSuccessorKey []byte
}

// Service executes commands.
type Service struct {
	log       Log
	proj      Projection
	state     State
	passwords *Passwords
	sealer    *events.Sealer
	cfg       Config
	conflicts atomic.Uint64 // optimistic-concurrency conflicts retried (see Conflicts)
}

// Conflicts returns how many decide-append attempts have hit a concurrent
// modification (and were retried) since the service started: an observable
// for tests and metrics.
func (s *Service) Conflicts() uint64 { return s.conflicts.Load() }

// New returns a service that appends to log and decides against state, which
// proj keeps up to date.
func New(log Log, proj Projection, state State, pw *Passwords, sealer *events.Sealer, cfg Config) *Service {
	if cfg.RefreshTTL == 0 {
		cfg.RefreshTTL = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 25
	}
	if cfg.RefreshSuccessorKey == nil {
		cfg.RefreshSuccessorKey = make([]byte, 32)
		if _, err := rand.Read(cfg.RefreshSuccessorKey); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
	}
	return &Service{log: log, proj: proj, state: state, passwords: pw, sealer: sealer, cfg: cfg}
}

// Errors of the service, beside the domain's.
var (
	// ErrUsernameTaken: another user already has that username.
	ErrUsernameTaken = fmt.Errorf("%w: username taken", domain.ErrAlreadyExists)
	// ErrTooManyConflicts: the aggregate kept changing under us.
	ErrTooManyConflicts = errors.New("commands: too many concurrent modifications")
)

// Field names bound into sealed values.
const sealPasswordHash = "password_hash"

// NewID returns a prefixed ULID such as "user-01J…".
func NewID(prefix string) string { return prefix + "-" + ulid.Make().String() }

// HashToken is the SHA-256 (hex) under which refresh tokens and keys are stored.
func HashToken(secret string) string {
	sum := SumToken(secret)
	return hex.EncodeToString(sum[:])
}

// SumToken is the SHA-256 of a secret: HashToken before the hex encoding. It
// does not allocate for secrets up to 128 bytes (an API key is 57): it is on
// the path of every request with an API key.
func SumToken(secret string) [sha256.Size]byte {
	var buf [128]byte
	if len(secret) <= len(buf) {
		n := copy(buf[:], secret)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(secret))
}

func newSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// pending is one decided event and where it goes.
type pending struct {
	aggregate, id string
	expect        uint64
	expectOn      string // the subject whose last sequence expect is; empty: the event's own
	version       uint64 // aggregate version before this event
	event         domain.Event
}

// appendEvents encodes and appends events atomically and waits until the local
// read model has applied them.
func (s *Service) appendEvents(ctx context.Context, meta events.Meta, commandID string, evs []pending) (uint64, error) {
	msgs := make([]events.Message, len(evs))
	now := s.cfg.Now()
	for i, p := range evs {
		data, err := events.Encode(NewID("evt"), p.aggregate, p.id, p.version+1, now, meta, p.event)
		if err != nil {
			return 0, err
		}
		msgs[i] = events.Message{
			Subject: events.Subject(p.aggregate, p.id), ExpectSeq: p.expect, ExpectSubject: p.expectOn,
			ID: fmt.Sprintf("%s-%d", commandID, i), Data: data,
		}
	}
	if err := s.waitCurrent(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	seq, err := s.log.Append(ctx, msgs...)
	if s.cfg.ObserveAppend != nil {
		s.cfg.ObserveAppend(time.Since(start), err)
	}
	if err != nil {
		return 0, err
	}
	if err := s.proj.WaitFor(ctx, seq); err != nil {
		// Stored, but this replica has not applied it in time: the answer
		// cannot be built, and must not claim that nothing changed.
		return 0, fmt.Errorf("%w: stored at sequence %d, not yet applied here: %v", events.ErrOutcomeUnknown, seq, err)
	}
	return seq, nil
}

// currentWait bounds how long a command waits for the read models to catch up
// after a reconnection before answering ErrUnavailable.
const currentWait = 2 * time.Second

// waitCurrent holds an append back while the read models catch up after a
// reconnection to the event store (decisions made on stale state would only
// run into conflicts), and refuses it if that takes longer than currentWait.
// While NATS is unreachable it does not wait: Append decides (it gives the
// connection a moment to come back, then refuses).
func (s *Service) waitCurrent(ctx context.Context) error {
	if c, ok := s.log.(interface{ Connected() bool }); ok && !c.Connected() {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, currentWait)
	defer cancel()
	if err := s.proj.WaitCurrent(wctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: read models are catching up with the event store", events.ErrUnavailable)
	}
	return nil
}

// retry runs attempt until it stops reporting a conflict. After a conflict it
// waits until the read model has caught up with the subject that moved.
func (s *Service) retry(ctx context.Context, subject string, attempt func(commandID string) error) error {
	for i := 0; i < s.cfg.MaxAttempts; i++ {
		err := attempt(NewID("cmd"))
		if !errors.Is(err, events.ErrConflict) {
			return err
		}
		s.conflicts.Add(1)
		last, lerr := s.log.LastSequence(ctx, subject)
		if lerr != nil {
			return lerr
		}
		if err := s.proj.WaitFor(ctx, last); err != nil {
			return err
		}
		if i > 2 { // heavy contention: spread the retries out
			time.Sleep(time.Duration(mathrand.IntN(1000*(i+1))) * time.Microsecond)
		}
	}
	return ErrTooManyConflicts
}

// onAggregate addresses decided events to an aggregate whose state had
// version events, the last at stream sequence expect (0: a new aggregate).
func onAggregate(aggregate, id string, version, expect uint64, evs []domain.Event) []pending {
	out := make([]pending, len(evs))
	for i, e := range evs {
		out[i] = pending{aggregate: aggregate, id: id, expect: expect, version: version + uint64(i), event: e}
	}
	return out
}

// userEvents wraps decided user events for appending.
func userEvents(u domain.User, expect uint64, evs []domain.Event) []pending {
	return onAggregate(domain.AggregateUser, u.ID, u.Version, expect, evs)
}

// CreateUserInput is a new user as requested.
type CreateUserInput struct {
	Username, Email, Password string
	Roles                     []string
	Tenants                   []domain.TenantRole
}

// CreateUser creates a user and reserves the username in one atomic append.
func (s *Service) CreateUser(ctx context.Context, meta events.Meta, in CreateUserInput) (domain.User, error) {
	if err := s.passwords.Check(in.Password, PasswordContext{Username: in.Username, Email: in.Email}); err != nil {
		return domain.User{}, err
	}
	if _, _, taken := s.state.UserByName(in.Username); taken {
		return domain.User{}, ErrUsernameTaken
	}
	cmd := domain.CreateUser{
		UserID: NewID("user"), Username: in.Username, Email: in.Email,
		Roles: in.Roles, Tenants: in.Tenants, Now: s.cfg.Now(),
		PasswordHashSealed: "pending", // validated first; hashed only for valid input
	}
	if _, err := domain.DecideUser(domain.User{}, cmd); err != nil {
		return domain.User{}, err
	}
	sealed, err := s.hashAndSeal(in.Password)
	if err != nil {
		return domain.User{}, err
	}
	cmd.PasswordHashSealed = sealed
	evs, err := domain.DecideUser(domain.User{}, cmd)
	if err != nil {
		return domain.User{}, err
	}
	reservation := pending{
		aggregate: domain.AggregateUsername, id: usernameKey(in.Username),
		event: domain.UsernameReserved{Username: in.Username, UserID: cmd.UserID},
	}
	all := append([]pending{reservation}, userEvents(domain.User{ID: cmd.UserID}, 0, evs)...)
	if _, err := s.appendEvents(ctx, meta, NewID("cmd"), all); err != nil {
		if errors.Is(err, events.ErrConflict) {
			return domain.User{}, ErrUsernameTaken
		}
		return domain.User{}, err
	}
	u, _, _ := s.state.User(cmd.UserID)
	return u, nil
}

func (s *Service) hashAndSeal(password string) (string, error) {
	h, err := s.passwords.Hash(password)
	if err != nil {
		return "", err
	}
	return s.sealer.Seal(sealPasswordHash, h)
}

// usernameKey is the reservation subject token for a username: the hex SHA-256
// of its normalized form (subjects cannot hold arbitrary characters).
func usernameKey(username string) string {
	sum := sha256.Sum256([]byte(domain.NormalizeUsername(username)))
	return hex.EncodeToString(sum[:16])
}

// ExecuteUser decides cmd against the user's current state and appends the
// result, retrying on concurrent modification. It returns the new state.
func (s *Service) ExecuteUser(ctx context.Context, meta events.Meta, userID string, cmd domain.UserCommand) (domain.User, error) {
	var out domain.User
	err := s.retry(ctx, events.Subject(domain.AggregateUser, userID), func(commandID string) error {
		u, seq, ok := s.state.User(userID)
		if !ok {
			return domain.ErrNotFound
		}
		evs, err := domain.DecideUser(u, cmd)
		if err != nil {
			return err
		}
		if len(evs) > 0 {
			if _, err := s.appendEvents(ctx, meta, commandID, userEvents(u, seq, evs)); err != nil {
				return err
			}
		}
		out, _, _ = s.state.User(userID)
		return nil
	})
	return out, err
}

// ChangePassword sets a user's password; every other session of the user is revoked.
func (s *Service) ChangePassword(ctx context.Context, meta events.Meta, userID, password, keepSession string) error {
	u, _, _ := s.state.User(userID) // unknown: ExecuteUser says so below
	if err := s.passwords.Check(password, PasswordContext{Username: u.Username, Email: u.Email}); err != nil {
		return err
	}
	sealed, err := s.hashAndSeal(password)
	if err != nil {
		return err
	}
	_, err = s.ExecuteUser(ctx, meta, userID, domain.ChangePassword{PasswordHashSealed: sealed, KeepSessionID: keepSession})
	return err
}

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
	// Cheap refusals first, so that an attack costs no argon2id: the account
	// (or unknown name) is locked, or the client address is.
	if err := s.throttled(u, found, in.Username, meta.Request.IP, now); err != nil {
		return LoginResult{}, err
	}
	hash := ""
	if found {
		h, err := s.sealer.Open(sealPasswordHash, u.PasswordHashSealed)
		if err != nil {
			return LoginResult{}, fmt.Errorf("commands: unseal password hash of %s: %w", u.ID, err)
		}
		hash = h
	}
	ok := s.passwords.Verify(in.Password, hash)
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
	if in.Tenant != "" && u.PermissionsIn(in.Tenant) == 0 {
		return LoginResult{}, domain.ErrForbidden
	}
	return s.startSession(ctx, meta, u.ID, in.Tenant, "password", u.PasswordHashSealed)
}

// throttled refuses a login early when the read model already shows a lockout.
// The decisive check is repeated inside each append's decision (Decide under
// optimistic concurrency), so parallel attempts cannot slip past it.
func (s *Service) throttled(u domain.User, found bool, username, addr string, now time.Time) error {
	if found {
		if err := s.cfg.Throttle.Check(u.FailedLogins, u.LastFailedLoginAt, now); err != nil {
			return err
		}
	} else {
		a, _ := s.state.Login(usernameKey(username))
		if err := s.cfg.Throttle.Check(a.Failures, a.LastFailedAt, now); err != nil {
			return err
		}
	}
	if addr != "" {
		n, last := s.state.AddressFailures(addr)
		return s.cfg.AddressThrottle.Check(n, last, now)
	}
	return nil
}

// recordLoginFailure appends the failure, unless by now the account is locked,
// in which case the answer is the lockout.
func (s *Service) recordLoginFailure(ctx context.Context, meta events.Meta, u domain.User, found bool, username, reason string, now time.Time) error {
	if found {
		_, err := s.ExecuteUser(ctx, meta, u.ID, domain.RecordLoginFailure{
			Username: username, Reason: reason, Now: now, Throttle: s.cfg.Throttle,
		})
		return err
	}
	// The name matches no user: it is recorded only as the aggregate ID (a
	// hash), never as typed, since people sometimes type a password there.
	id := usernameKey(username)
	return s.retry(ctx, events.Subject(domain.AggregateLogin, id), func(commandID string) error {
		a, seq := s.state.Login(id)
		evs, err := domain.RecordUnknownLoginFailure(a, reason, now, s.cfg.Throttle)
		if err != nil {
			return err
		}
		_, err = s.appendEvents(ctx, meta, commandID, []pending{{
			aggregate: domain.AggregateLogin, id: id, expect: seq, version: a.Version, event: evs[0],
		}})
		return err
	})
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
	userSubject := events.Subject(domain.AggregateUser, userID)
	var record []domain.Event
	err = s.retry(ctx, userSubject, func(commandID string) error {
		u, seq, ok := s.state.User(userID)
		if !ok {
			return domain.ErrNotFound
		}
		login := domain.RecordLogin{SessionID: start.SessionID, Method: method, Now: now, VerifiedHash: verifiedHash}
		if method == "password" {
			login.Throttle = s.cfg.Throttle // the identity provider throttles its own logins
		}
		evs, err := domain.DecideUser(u, login)
		if err != nil {
			if errors.Is(err, domain.ErrUserInactive) {
				return domain.ErrInvalidCredentials
			}
			return err
		}
		record = evs
		started := sessionEvents(domain.Session{ID: start.SessionID}, seq, sessEvents)
		started[0].expectOn = userSubject
		_, err = s.appendEvents(ctx, meta, commandID, started)
		return err
	})
	if err != nil {
		return LoginResult{}, err
	}
	err = s.retry(ctx, userSubject, func(commandID string) error {
		u, seq, ok := s.state.User(userID)
		if !ok {
			return domain.ErrNotFound
		}
		_, err := s.appendEvents(ctx, meta, commandID, userEvents(u, seq, record))
		return err
	})
	if err != nil {
		return LoginResult{}, err
	}
	sess, _, _ := s.state.Session(start.SessionID)
	u, _, _ := s.state.User(userID)
	return LoginResult{User: u, Session: sess, RefreshToken: refresh, RefreshExpiresAt: start.ExpiresAt.UTC()}, nil
}

func sessionEvents(sess domain.Session, expect uint64, evs []domain.Event) []pending {
	return onAggregate(domain.AggregateSession, sess.ID, sess.Version, expect, evs)
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
	sid, ok := s.state.SessionByRefreshHash(presented)
	if !ok {
		return RefreshResult{}, domain.ErrInvalidCredentials
	}
	next, nextHash := "", ""
	if s.cfg.RefreshRotation {
		next = s.successor(sid, refreshToken)
		nextHash = HashToken(next)
	}
	var res RefreshResult
	err := s.retry(ctx, events.Subject(domain.AggregateSession, sid), func(commandID string) error {
		sess, seq, ok := s.state.Session(sid)
		if !ok {
			return domain.ErrInvalidCredentials
		}
		usable := s.state.SessionUsable(sid)
		if errors.Is(usable, domain.ErrSessionRevoked) {
			return usable
		}
		cmd := domain.RefreshSession{
			PresentedHash: presented, Rotate: s.cfg.RefreshRotation, TokenID: NewID("tok"),
			UserActive: usable == nil, Now: s.cfg.Now(), IdleTTL: s.cfg.RefreshIdleTTL,
			NewRefreshTokenHash: nextHash, ReuseInterval: s.cfg.RefreshReuseInterval,
		}
		evs, decideErr := domain.DecideSession(sess, cmd)
		if len(evs) > 0 {
			if _, err := s.appendEvents(ctx, meta, commandID, sessionEvents(sess, seq, evs)); err != nil {
				return err
			}
		}
		if decideErr != nil {
			return decideErr
		}
		sess, _, _ = s.state.Session(sid)
		u, _, _ := s.state.User(sess.UserID)
		res = RefreshResult{User: u, Session: sess, TokenID: cmd.TokenID, NewRefreshToken: next}
		return nil
	})
	return res, err
}

// ExecuteSession decides a session command and appends the result.
func (s *Service) ExecuteSession(ctx context.Context, meta events.Meta, sessionID string, cmd domain.SessionCommand) error {
	return s.retry(ctx, events.Subject(domain.AggregateSession, sessionID), func(commandID string) error {
		sess, seq, ok := s.state.Session(sessionID)
		if !ok {
			return domain.ErrNotFound
		}
		evs, err := domain.DecideSession(sess, cmd)
		if err != nil || len(evs) == 0 {
			return err
		}
		_, err = s.appendEvents(ctx, meta, commandID, sessionEvents(sess, seq, evs))
		return err
	})
}

// RevokeRefreshToken revokes the session a refresh token belongs to. An unknown
// token is not an error (RFC 7009).
func (s *Service) RevokeRefreshToken(ctx context.Context, meta events.Meta, refreshToken string) error {
	sid, ok := s.state.SessionByRefreshHash(HashToken(refreshToken))
	if !ok {
		return nil
	}
	return s.ExecuteSession(ctx, meta, sid, domain.RevokeSession{Reason: domain.RevokeReasonRevoked})
}

// Bootstrap creates the first platform admin when the event store is empty.
// Two replicas starting together race on the username reservation; exactly one
// wins. It reports whether this call created the admin.
func (s *Service) Bootstrap(ctx context.Context, username, password string) (bool, error) {
	head, err := s.log.Head(ctx)
	if err != nil {
		return false, err
	}
	if head > 0 {
		return false, nil
	}
	_, err = s.CreateUser(ctx, events.Meta{Actor: events.System}, CreateUserInput{
		Username: username, Password: password, Roles: []string{string(domain.GlobalAdmin)},
	})
	if errors.Is(err, ErrUsernameTaken) {
		return false, nil
	}
	return err == nil, err
}

// VerifyPassword reports whether password is the user's current password.
func (s *Service) VerifyPassword(userID, password string) bool {
	u, _, ok := s.state.User(userID)
	hash := ""
	if ok {
		if h, err := s.sealer.Open(sealPasswordHash, u.PasswordHashSealed); err == nil {
			hash = h
		}
	}
	return s.passwords.Verify(password, hash)
}

// CatchUp waits until the local read model has applied the last event of an
// aggregate, for a request that presents something written moments ago on
// another replica (a token from a login there). It asks the event store for
// the aggregate's last sequence: one round trip.
func (s *Service) CatchUp(ctx context.Context, aggregate, id string) error {
	seq, err := s.log.LastSequence(ctx, events.Subject(aggregate, id))
	if err != nil || seq == 0 {
		return err
	}
	return s.proj.WaitFor(ctx, seq)
}
