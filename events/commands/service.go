package commands

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

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
	SCIMState
}

// UserState reads users.
type UserState interface {
	User(id string) (domain.User, uint64, bool)
	UserByName(name string) (domain.User, uint64, bool)
	UsersByEmail(email string) []domain.User
	// PasswordHashAt is the sealed password hash of the user k picks, by
	// a consistent hash over the users in an order every replica shares
	// ("" when there are none, or that user has none): the hash a name
	// that matches no user is checked against (passwordMatches). A new
	// user takes over few keys' picks. O(log n).
	PasswordHashAt(k uint64) string
}

// SessionState reads sessions.
type SessionState interface {
	Session(id string) (domain.Session, uint64, bool)
	SessionByRefreshHash(hash string) (string, bool)
	// SessionUsable returns nil when the session may still issue tokens,
	// else why not: domain.ErrNotFound (unknown session or user),
	// domain.ErrUserInactive, domain.ErrSessionRevoked (revoked, or cut
	// off by a password change or a deactivation). Expiry and the refresh
	// token are the session aggregate's to decide.
	SessionUsable(id string) error
	// UserSessionIDs lists the user's live sessions at now: neither
	// revoked, cut off nor expired.
	UserSessionIDs(userID string, now time.Time) []string
	// UserSessionCount is how many of them there are (the session limit's
	// question after every login); UserSessionUses lists them with when
	// each was last used, unordered.
	UserSessionCount(userID string, now time.Time) int
	UserSessionUses(userID string, now time.Time) []domain.SessionUse
	// AccessTokenRevoked reports whether access token tokenID's revocation
	// is known (until it is pruned, after the token expired).
	AccessTokenRevoked(tokenID string) bool
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
	// APIKeysOwnedBy lists the IDs of the keys a user owns that are not
	// revoked.
	APIKeysOwnedBy(owner string) []string
	// APIKeysHeld is how many keys a user owns that are not revoked
	// (expired ones included): O(1).
	APIKeysHeld(owner string) int
	// LiveAPIKeyNamed reports whether one of owner's keys that still
	// works (not revoked, not expired at now) is named name, without
	// regard to case; it unpacks no key.
	LiveAPIKeyNamed(owner, name string, now time.Time) bool
}

// SigningKeyState reads access-token signing keys.
type SigningKeyState interface {
	SigningKey(id string) (domain.SigningKey, uint64, bool)
	// SigningKeys lists every run-time key (which one signs, and which
	// would after a retirement: domain.Signer).
	SigningKeys() []domain.SigningKey
	// SigningKeysAt is SigningKeys with the stream sequence of the last
	// event of any signing key (0: none), read together.
	SigningKeysAt() ([]domain.SigningKey, uint64)
}

// SSOState reads identity providers and linked identities.
type SSOState interface {
	SSOProvider(name string) (domain.SSOProvider, uint64, bool)
	SSOIdentity(issuer, subject string) (string, bool)
	// SSOIdentityLinkSeq is the stream sequence of the identity's last link
	// or unlink (by SSOIdentityKey), 0 if none: a link is appended expecting it.
	SSOIdentityLinkSeq(aggregateID string) uint64
	// SSOIdentityAtIssuer reports whether the user holds an identity at
	// issuer with another subject than except.
	SSOIdentityAtIssuer(userID, issuer, except string) bool
	// SSOIdentityOtherThan reports whether the user holds an identity, at
	// any issuer, other than (issuer, subject).
	SSOIdentityOtherThan(userID, issuer, subject string) bool
}

// Config tunes the service.
type Config struct {
	RefreshTTL      time.Duration // refresh-token (session) lifetime, default 7 days
	RefreshIdleTTL  time.Duration // a session not refreshed for this long expires (0: no idle limit)
	RefreshRotation bool          // rotate refresh tokens and detect reuse
	// MaxSessionsPerUser bounds each user's live sessions: a login that
	// leaves the user with more ends the least recently used ones
	// (sessionlimit.go). 0: no limit (the zero value; the service's
	// default is 100).
	MaxSessionsPerUser int
	Now                func() time.Time
	MaxAttempts        int // decide-append attempts on conflicts, default 25
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
	// MFAKey signs MFA tokens and keys the recovery codes' hashes (mfa.go);
	// derived from the master key, the same on every replica. When nil, New
	// draws a random key: right for one process only. MFATokenTTL bounds
	// an MFA token and a WebAuthn ceremony (default DefaultMFATokenTTL).
	MFAKey      []byte
	MFATokenTTL time.Duration
	// NameKey keys the ID of the login aggregate of a name that matches no
	// user (loginKey): people sometimes type a password there, and a plain
	// hash of it would give it away to a dictionary; and, through a key
	// derived from it, which user's hash such a name is checked against
	// (decoyIndex). Derived from the master key, the same on every replica;
	// when nil, New draws a random key: right for one process only.
	NameKey []byte
	// Barrier, when set, is waited on after a command stored an event that
	// takes access away (domain.Narrows) and this replica applied it: it
	// returns once every other replica has applied it too (events.Barrier),
	// so that the answer means "enforced everywhere".
	Barrier Barrier
	// Serving reports whether the event store serves this replica now (it
	// is ready); nil: always. A replica it does not serve hears no other
	// replica and is not alone for that (Alone).
	Serving func() bool
	// Log receives what the service reports on its own: the follow-ups of
	// stored writes that failed (followup.go). nil: discarded.
	Log *slog.Logger
	// FollowUpRetry is the first delay of the background retries of a
	// failed follow-up (doubling up to followUpMaxDelay); default 500 ms.
	FollowUpRetry time.Duration
}

// Barrier waits until every other replica has applied a stream sequence,
// for at most a bounded time (events.Barrier).
type Barrier interface {
	Wait(ctx context.Context, seq uint64)
	// Peers is how many other replicas serve now (0: this one is alone).
	Peers() int
}

var _ Barrier = (*events.Barrier)(nil)

// Service executes commands.
type Service struct {
	log       Log
	proj      Projection
	state     State
	passwords *Passwords
	sealer    *events.Sealer
	cfg       Config
	conflicts atomic.Uint64 // optimistic-concurrency conflicts retried (see Conflicts)
	// catchUpFailures: best-effort catch-ups that failed (CatchUpFailures).
	catchUpFailures atomic.Uint64
	// unscopedMappingLogins: SSO logins whose groups matched role mappings
	// that grant nothing for want of a directory (UnscopedMappingLogins).
	unscopedMappingLogins atomic.Uint64
	// unknownCatchUps bounds the catch-ups for refresh tokens and API keys
	// this replica does not know (CatchUpBudget).
	unknownCatchUps *rate.Limiter
	// addrLocks serialise the recording of failed attempts from one client
	// address (addressFailure), a stripe per hash of its key.
	addrLocks [64]sync.Mutex
	// subjects are the turns this replica's writers take on a subject
	// after a conflict (subjectLocks).
	subjects subjectLocks
	// inReplacement holds the aggregates whose secret a request of this
	// replica is replacing now (Replacing).
	inReplacement sync.Map
	// followUpFailures: follow-ups of stored writes that failed
	// (FollowUpFailures); followUps the background retries of them, which
	// stop when stop is canceled (Close).
	followUpFailures atomic.Uint64
	followUps        followUps
	// decoyKey keys the pick of the user whose hash a name that matches no
	// user is checked against (decoyIndex); decoyFailures counts the picked
	// hashes that did not open (DecoyFailures).
	decoyKey      []byte
	decoyFailures atomic.Uint64
	// sessionLimitFailures: logins after which the sessions over the
	// limit were not all ended (SessionLimitFailures).
	sessionLimitFailures atomic.Uint64
}

// Replacing claims the secret of aggregate id (an API key's, a SCIM
// connection's token, a user's recovery codes) for a request that replaces
// it, until release; false when a request of this replica is replacing it
// already. The HTTP handlers claim before they read what they replace and
// release once their answer is made: of replacements the server handles at
// the same moment — a double click, two tabs, a client's retry — only one
// may answer with a secret, the others are refused before they read
// anything. Without it, a second request whose read found the first one's
// new secret replaced it after the first had checked it was still in force,
// and both answered a secret, the first one void (outside check 15a: 5 of
// 10 pairs of key rotations, 9 of 10 pairs of recovery-code regenerations;
// re-check 15r2 found the claim taken after the handler's read). Through
// several replicas, the check after the write (replacedMeanwhile) covers
// what it can.
func (s *Service) Replacing(aggregate, id string) (release func(), ok bool) {
	key := aggregate + "." + id
	if _, busy := s.inReplacement.LoadOrStore(key, struct{}{}); busy {
		return nil, false
	}
	return func() { s.inReplacement.Delete(key) }, true
}

// UnknownCatchUpRate: how many times a second (and at once) a replica
// catches up with the event store's head for a refresh token or an API key
// it does not know.
const UnknownCatchUpRate = 100

// Conflicts returns how many decide-append attempts have hit a concurrent
// modification (and were retried) since the service started: an observable
// for tests and metrics.
func (s *Service) Conflicts() uint64 { return s.conflicts.Load() }

// CatchUpFailures returns how many best-effort catch-ups (a login's with its
// user's events) failed since the service started: the event store did not
// answer in time, and the decision went on from the read models as they were.
func (s *Service) CatchUpFailures() uint64 { return s.catchUpFailures.Load() }

// UnscopedMappingLogins returns how many SSO logins through a
// multi-directory Azure AD provider carried a group that a role mapping
// stored without its directory names (domain.SSOProvider.UnscopedMappedGroups):
// the mapping granted nothing, and the login logged a warning.
func (s *Service) UnscopedMappingLogins() uint64 { return s.unscopedMappingLogins.Load() }

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
	if cfg.MFAKey == nil {
		cfg.MFAKey = make([]byte, 32)
		if _, err := rand.Read(cfg.MFAKey); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
	}
	if cfg.NameKey == nil {
		cfg.NameKey = make([]byte, 32)
		if _, err := rand.Read(cfg.NameKey); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
	}
	if cfg.MFATokenTTL == 0 {
		cfg.MFATokenTTL = DefaultMFATokenTTL
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.FollowUpRetry == 0 {
		cfg.FollowUpRetry = 500 * time.Millisecond
	}
	s := &Service{log: log, proj: proj, state: state, passwords: pw, sealer: sealer, cfg: cfg,
		unknownCatchUps: rate.NewLimiter(UnknownCatchUpRate, UnknownCatchUpRate)}
	dk := hmac.New(sha256.New, cfg.NameKey)
	dk.Write([]byte("password-decoy"))
	s.decoyKey = dk.Sum(nil)
	s.followUps.ctx, s.followUps.cancel = context.WithCancel(context.Background())
	return s
}

// Errors of the service, beside the domain's.
var (
	// ErrUsernameTaken: another user already has that username.
	ErrUsernameTaken = fmt.Errorf("%w: username taken", domain.ErrAlreadyExists)
	// ErrTooManyConflicts: the aggregate kept changing under us.
	ErrTooManyConflicts = errors.New("commands: too many concurrent modifications")
	// ErrIncomplete: the request's change was stored, but not all that
	// follows from it (the event store failed in between): the answer must
	// not say that nothing changed. Sending the same request again
	// completes it (a deactivation, again, retires the SCIM tokens the user
	// owns). It wraps the cause's text, not the cause: an
	// events.ErrUnavailable inside would read as "nothing was changed".
	ErrIncomplete = errors.New("commands: the change was stored, but not all that follows from it")
)

// CatchUp waits until the local read model has applied the last event of an
// aggregate, for a request that presents something written moments ago on
// another replica (a token from a login there). It asks the event store for
// the aggregate's last sequence: one round trip.
func (s *Service) CatchUp(ctx context.Context, aggregate, id string) error {
	return s.catchUpSubject(ctx, events.Subject(aggregate, id))
}

// Alone reports whether no other replica serves now (as the barrier hears
// them): then nothing another replica wrote can be missing here, and the
// reads that catch up for that (a login, a path's ID, a list, an unknown
// bearer key or refresh token) need not. Without a barrier: false.
// Revocations catch up regardless — one by a replica of an older build, which
// does not announce itself, must not be lost. Nor is a replica the event
// store does not serve alone (Config.Serving): cut off from the stream — NATS
// away, or a NATS node on the losing side of a split that echoes its own
// heartbeats but none of the others' — it hears no one, and a credential it
// does not know may be good: its catch-up fails, 503, not a 401 after which
// a client drops it (re-check 19r4).
func (s *Service) Alone() bool {
	return s.cfg.Barrier != nil && s.cfg.Barrier.Peers() == 0 && (s.cfg.Serving == nil || s.cfg.Serving())
}

// ErrCatchUpBudget: too many secrets this replica does not know were looked
// for at once (UnknownCatchUpRate); the request was refused before anything
// was done: try again.
var ErrCatchUpBudget = fmt.Errorf("%w: too many unknown secrets looked for at once", events.ErrUnavailable)

// CatchUpBudget takes one catch-up for a secret this replica does not know
// from the budget shared by refresh tokens and keys: false when there is
// none left.
func (s *Service) CatchUpBudget() bool { return s.unknownCatchUps.Allow() }

func (s *Service) catchUpSubject(ctx context.Context, subject string) error {
	_, err := s.caughtUpWith(ctx, subject)
	return err
}

// caughtUpWithWrite is caughtUpWith for a subject whose last event may be
// one of a write of several (a name's reservation, a claim), whose other
// events a decision reads: it waits for the stream's head too, which holds
// the whole write once one of its events is stored (appends are atomic).
// Waiting for the subject's event alone left the rest of the write unread
// on a replica applying it just then: a key's name reservation applied, not
// the key, so a second key of that name was created (seen once in a
// full-suite run: two of six creates at once through two replicas answered
// 201).
func (s *Service) caughtUpWithWrite(ctx context.Context, subject string) (uint64, error) {
	seq, err := s.caughtUpWith(ctx, subject)
	if err != nil || seq == 0 {
		return seq, err
	}
	return seq, s.CatchUpHead(ctx)
}

// caughtUpWith waits until the read models have applied the last event on
// subject (as the stream's leader has it) and returns its sequence (0: none).
func (s *Service) caughtUpWith(ctx context.Context, subject string) (uint64, error) {
	seq, err := s.log.LastSequence(ctx, subject)
	if err != nil || seq == 0 {
		return seq, err
	}
	return seq, s.proj.WaitFor(ctx, seq)
}

// ErrSignInSpent: a sign-in spent what it was given — a second factor, an
// SSO assertion or flow — and the event store failed before its session
// was started. Not "nothing was changed" (re-check 16r5), nor "send the
// same request again" (re-check 16r6: the spent factor or assertion is
// refused then): the user signs in anew. It wraps the cause's text only.
var ErrSignInSpent = errors.New("commands: the sign-in's second factor or identity provider's answer is spent, and no session was started")

// AfterSignInSpent is err from a sign-in's session start after its factor
// or assertion was spent: a failure of the event store is ErrSignInSpent,
// while a refusal (a lockout, an inactive user, a second factor asked)
// stays what it is.
func AfterSignInSpent(err error) error {
	if storeFailed(err) {
		return fmt.Errorf("%w: %v", ErrSignInSpent, err)
	}
	return err
}

// storeFailed reports whether err is the event store's failure (or the
// request's time running out), as opposed to a decision's refusal.
func storeFailed(err error) bool {
	return errors.Is(err, events.ErrUnavailable) || errors.Is(err, ErrTooManyConflicts) || errors.Is(err, context.DeadlineExceeded)
}

// incomplete is err, a failure after part of a request's change was
// stored, as ErrIncomplete (with err's text): not "nothing was changed".
// nil stays nil, and an ErrIncomplete stays as it is.
func incomplete(err error) error {
	if err == nil || errors.Is(err, ErrIncomplete) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrIncomplete, err)
}
