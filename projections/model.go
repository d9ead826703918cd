package projections

import (
	"sort"
	"sync"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// Model holds the read models in memory. The zero value is not usable; use NewModel.
type Model struct {
	// AddressWindow: failed logins from one client address count as
	// consecutive while they come less than this apart (set before use).
	AddressWindow time.Duration

	mu            sync.RWMutex
	users         map[string]*userEntry
	byName        map[string]string // normalized username -> user ID
	sessions      map[string]*sessionEntry
	byRefresh     map[string]string // refresh-token hash (current and spent) -> session ID
	revokedTokens map[string]time.Time
	logins        map[string]loginEntry   // "login" aggregate ID -> failed logins on an unknown name
	addrFailures  map[string]addrFailures // client address -> consecutive failed logins
	keys          keyModel                // API keys (apikeys.go)
	sso           ssoModel                // SSO providers and linked identities (sso.go)
	signing       signingModel            // access-token signing keys (signingkeys.go)
	applied       uint64
	skipped       uint64
}

type userEntry struct {
	state domain.User
	seq   uint64 // stream sequence of the last event on the user's subject
	// Sessions started at or before cutoffSeq are revoked by a password change,
	// except keep.
	cutoffSeq uint64
	keep      string
}

type sessionEntry struct {
	state    domain.Session
	seq      uint64
	startSeq uint64
}

// NewModel returns an empty model.
func NewModel() *Model {
	return &Model{
		AddressWindow: 15 * time.Minute,
		users:         make(map[string]*userEntry),
		byName:        make(map[string]string),
		sessions:      make(map[string]*sessionEntry),
		byRefresh:     make(map[string]string),
		revokedTokens: make(map[string]time.Time),
		logins:        make(map[string]loginEntry),
		addrFailures:  make(map[string]addrFailures),
	}
}

// Apply folds one decoded event, stored at stream sequence seq, into the model.
// Events at or below the last applied sequence are ignored, so applying is
// idempotent.
func (m *Model) Apply(seq uint64, env events.Envelope, ev domain.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq <= m.applied {
		return
	}
	m.applied = seq
	switch e := ev.(type) {
	case domain.UserCreated:
		u := &userEntry{state: domain.EvolveUser(domain.User{}, e), seq: seq}
		m.users[e.UserID] = u
		m.byName[domain.NormalizeUsername(e.Username)] = e.UserID
	case domain.UserLoginFailed:
		m.countAddrFailure(env.Request.IP, e.At)
		if e.UserID == "" {
			l := m.logins[env.AggregateID]
			m.logins[env.AggregateID] = loginEntry{seq: seq, state: domain.EvolveLoginAttempts(l.state, e)}
			return
		}
		m.evolveUser(e.UserID, seq, e)
	case domain.UserLoginSucceeded:
		// A success does not reset the address's count: a sprayer holding one
		// valid account could otherwise reset it at will.
		m.evolveUser(env.AggregateID, seq, e)
	case domain.UserRoleGranted, domain.UserRoleRevoked, domain.UserDeactivated:
		m.evolveUser(env.AggregateID, seq, e)
	case domain.UserPasswordChanged:
		if u := m.evolveUser(e.UserID, seq, e); u != nil {
			u.cutoffSeq, u.keep = seq, e.KeptSessionID
		}
	case domain.SessionStarted:
		m.sessions[e.SessionID] = &sessionEntry{state: domain.EvolveSession(domain.Session{}, e), seq: seq, startSeq: seq}
		m.byRefresh[e.RefreshTokenHash] = e.SessionID
	case domain.SessionRefreshed:
		if s := m.evolveSession(e.SessionID, seq, e); s != nil && e.RefreshTokenHash != "" {
			m.byRefresh[e.RefreshTokenHash] = e.SessionID
		}
	case domain.SessionTokenRevoked:
		m.evolveSession(e.SessionID, seq, e)
		m.revokedTokens[e.TokenID] = e.ExpiresAt
	case domain.SessionRevoked, domain.SessionRefreshReused:
		m.evolveSession(env.AggregateID, seq, e)
	case domain.APIKeyCreated, domain.APIKeyRotated, domain.APIKeyRevoked, domain.APIKeyUsed:
		m.applyKey(env.AggregateID, seq, e)
	case domain.SSOProviderConfigured, domain.SSOProviderDeleted, domain.SSOIdentityLinked, domain.SSOAssertionConsumed:
		m.applySSO(env.AggregateID, seq, e)
	case domain.SigningKeyAdded, domain.SigningKeyRetired:
		m.applySigningKey(env.AggregateID, seq, e)
	}
}

func (m *Model) evolveUser(id string, seq uint64, e domain.Event) *userEntry {
	u := m.users[id]
	if u == nil {
		return nil
	}
	u.state = domain.EvolveUser(u.state, e)
	u.seq = seq
	return u
}

func (m *Model) evolveSession(id string, seq uint64, e domain.Event) *sessionEntry {
	s := m.sessions[id]
	if s == nil {
		return nil
	}
	s.state = domain.EvolveSession(s.state, e)
	s.seq = seq
	return s
}

// Skip counts an event that could not be decoded; the sequence still counts as applied.
func (m *Model) Skip(seq uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq > m.applied {
		m.applied = seq
	}
	m.skipped++
}

// Applied returns the last applied stream sequence.
func (m *Model) Applied() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.applied
}

// Skipped returns how many undecodable events were skipped.
func (m *Model) Skipped() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.skipped
}

// User returns a user's state and the stream sequence of its last event.
func (m *Model) User(id string) (domain.User, uint64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	u := m.users[id]
	if u == nil {
		return domain.User{}, 0, false
	}
	return u.state, u.seq, true
}

// UserByName looks a user up by username (case-insensitive).
func (m *Model) UserByName(name string) (domain.User, uint64, bool) {
	m.mu.RLock()
	id, ok := m.byName[domain.NormalizeUsername(name)]
	m.mu.RUnlock()
	if !ok {
		return domain.User{}, 0, false
	}
	return m.User(id)
}

// Users returns every user, ordered by username.
func (m *Model) Users() []domain.User {
	m.mu.RLock()
	out := make([]domain.User, 0, len(m.users))
	for _, u := range m.users {
		out = append(out, u.state)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return out
}

// Session returns a session's state and the stream sequence of its last event.
func (m *Model) Session(id string) (domain.Session, uint64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.sessions[id]
	if s == nil {
		return domain.Session{}, 0, false
	}
	return s.state, s.seq, true
}

// SessionByRefreshHash finds the session that issued a refresh token, current or spent.
func (m *Model) SessionByRefreshHash(hash string) (string, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.byRefresh[hash]
	return id, ok
}

type loginEntry struct {
	seq   uint64
	state domain.LoginAttempts
}

// Login returns the state and last stream sequence of a "login" aggregate
// (failed logins for a name that matches no user).
func (m *Model) Login(id string) (domain.LoginAttempts, uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	l := m.logins[id]
	return l.state, l.seq
}

// addrFailures counts consecutive failed logins from one client address, across
// accounts (password spraying). It is eventually consistent across replicas.
type addrFailures struct {
	count int
	last  time.Time
}

func (m *Model) countAddrFailure(addr string, at time.Time) {
	if addr == "" {
		return
	}
	f := m.addrFailures[addr]
	if f.last.IsZero() || at.Sub(f.last) >= m.AddressWindow {
		f.count = 0 // a quiet window starts the count afresh
	}
	m.addrFailures[addr] = addrFailures{count: f.count + 1, last: at}
}

// AddressFailures returns the consecutive failed logins from a client address
// and the time of the last one.
func (m *Model) AddressFailures(addr string) (int, time.Time) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	f := m.addrFailures[addr]
	return f.count, f.last
}

// Principal is what the request path needs to know about a token's holder.
type Principal struct {
	User    domain.User
	Session domain.Session
}

// Verdicts of Authorize.
type Verdict uint8

const (
	Valid Verdict = iota
	UnknownSession
	SessionRevoked
	TokenRevoked
	UserInactive
	SessionExpired
)

// Authorize checks, under one read lock, that the session exists, is neither
// revoked nor cut off by a password change, that access token tokenID is not
// revoked, and that the user is active.
func (m *Model) Authorize(sessionID, tokenID string, now time.Time) (Principal, Verdict) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.sessions[sessionID]
	if s == nil {
		return Principal{}, UnknownSession
	}
	u := m.users[s.state.UserID]
	if u == nil {
		return Principal{}, UnknownSession
	}
	switch {
	case !u.state.Active:
		return Principal{}, UserInactive
	case s.state.Revoked || (s.startSeq <= u.cutoffSeq && s.state.ID != u.keep):
		return Principal{}, SessionRevoked
	case !now.Before(s.state.ExpiresAt):
		return Principal{}, SessionExpired
	}
	if tokenID != "" {
		if _, revoked := m.revokedTokens[tokenID]; revoked {
			return Principal{}, TokenRevoked
		}
	}
	return Principal{User: u.state, Session: s.state}, Valid
}

// SessionUsable returns nil when a session may still issue tokens (ignoring
// expiry and refresh-token checks, which the session aggregate decides), else
// why not: domain.ErrNotFound (unknown session or user), domain.ErrUserInactive
// or domain.ErrSessionRevoked (revoked, or cut off by a password change).
func (m *Model) SessionUsable(sessionID string) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.sessions[sessionID]
	if s == nil {
		return domain.ErrNotFound
	}
	u := m.users[s.state.UserID]
	switch {
	case u == nil:
		return domain.ErrNotFound
	case !u.state.Active:
		return domain.ErrUserInactive
	case s.state.Revoked || (s.startSeq <= u.cutoffSeq && s.state.ID != u.keep):
		return domain.ErrSessionRevoked
	}
	return nil
}

// PruneRevokedTokens forgets access-token revocations whose tokens have expired.
func (m *Model) PruneRevokedTokens(now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pruneRevokedLocked(now)
}

func (m *Model) pruneRevokedLocked(now time.Time) int {
	n := 0
	for id, exp := range m.revokedTokens {
		if now.After(exp) {
			delete(m.revokedTokens, id)
			n++
		}
	}
	return n
}
