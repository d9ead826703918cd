package projections

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// Model holds the read models in memory. The zero value is not usable; use NewModel.
//
// Users and sessions, which a deployment has by the million, are kept
// compact (users.go, sessions.go) and converted to the domain's types on the
// way out; the rest as the domain has it.
type Model struct {
	// AddressWindow: failed logins from one client address count as
	// consecutive while they come less than this apart (set before use).
	AddressWindow time.Duration
	// RevokedTokenGrace: how long past its token's expiry an access-token
	// revocation is kept — the clock skew the token verifier tolerates on
	// exp, while the token is still accepted (set before use). Pruned at
	// the expiry itself, a revoked token was accepted again for the rest
	// of that leeway.
	RevokedTokenGrace time.Duration
	// RevokedSessionGrace: how long after its last use (its start or last
	// refresh, when its last access token was issued) a revoked session is
	// kept — at least the access tokens' lifetime and the verifier's
	// leeway (set before use); Prune forgets it then, as it forgets an
	// expired one. 0: kept until it expires.
	RevokedSessionGrace time.Duration
	// NoHistory: keep neither the audit journal nor the access history
	// (set before use) — the model a deployment would hold without them,
	// to measure what they cost. AuditEvents then finds nothing, and the
	// questions about a moment are ErrBeforeHistory.
	NoHistory bool
	// JournalDir: where the audit journal keeps the chunks of entries it
	// has filled (set before use): a file of the model's own in this
	// folder, read back through the page cache (journal_file.go); "" keeps
	// them in memory. What the file holds, a snapshot or a replay gives
	// back: a replica empties the folder when it starts.
	JournalDir string
	// OnJournalError, when set (before use), is told of each error writing
	// the journal file while applying events (the chunk stays in memory,
	// and is written again later); it is called with the model's lock
	// held.
	OnJournalError func(error)
	// OnJournalDamage, when set (before use), is told of each chunk read
	// back from the journal file damaged (its checksum does not match:
	// journal_file.go); the question that read it fails. It is called from
	// any goroutine, with or without the model's lock.
	OnJournalDamage func(error)

	mu            sync.RWMutex
	users         userStore // users, by ID and by normalized username (users.go)
	sessions      sessStore // sessions, by ID and by refresh-token hash (sessions.go)
	revokedTokens map[string]time.Time
	logins        map[string]loginEntry   // "login" aggregate ID -> failed logins on an unknown name
	addrFailures  map[string]addrFailures // client address -> consecutive failed logins
	keys          keyModel                // API keys (apikeys.go)
	sso           ssoModel                // SSO providers and linked identities (sso.go)
	scim          scimModel               // SCIM connections, groups and users (scim.go)
	mfa           mfaModel                // users' second factors and the MFA policies (mfa.go)
	signing       signingModel            // access-token signing keys (signingkeys.go)
	journal       journal                 // the audit journal: an entry per applied event (journal.go)
	access        accessModel             // the access history (access.go)
	applied       uint64
	skipped       uint64
	cow           cow        // chunks shared with a snapshot being written (compact.go)
	snapshotting  sync.Mutex // one snapshot at a time (snapshot.go)
	// listHeld, when set (tests), is told, with the read lock held, how
	// many records a list (userlist.go) looked at under this hold of it.
	listHeld func(records int)
}

// NewModel returns an empty model.
func NewModel() *Model {
	m := &Model{
		AddressWindow:     15 * time.Minute,
		RevokedTokenGrace: 30 * time.Second,
		revokedTokens:     make(map[string]time.Time),
		logins:            make(map[string]loginEntry),
		addrFailures:      make(map[string]addrFailures),
	}
	m.journal.model = m
	return m
}

// Apply folds one decoded event, stored at stream sequence seq, into the model.
// Events at or below the last applied sequence are ignored, so applying is
// idempotent.
func (m *Model) Apply(seq uint64, env events.Envelope, ev domain.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applyLocked(seq, env, ev)
}

// applyLocked is Apply with m.mu held (apply_batch.go applies a run of
// events under one acquisition of the lock).
func (m *Model) applyLocked(seq uint64, env events.Envelope, ev domain.Event) {
	if seq <= m.applied {
		return
	}
	m.applied = seq
	// The audit journal and the access history (journal.go, access.go) are
	// told what the event touched (hit), so that they need not look it up
	// again.
	var ref uint32
	if !m.NoHistory {
		ref = m.journal.next()
		m.historyBefore(ref, &env, ev)
	}
	var hit touched
	switch e := ev.(type) {
	case domain.UserCreated:
		m.users.create(&m.cow, seq, e)
	case domain.UserLoginFailed:
		m.countAddrFailure(env.Request.IP, e.At)
		if e.UserID == "" {
			l := m.logins[env.AggregateID]
			m.logins[env.AggregateID] = loginEntry{seq: seq, state: domain.EvolveLoginAttempts(l.state, e)}
			break
		}
		hit.setUser(m.evolveUser(e.UserID, seq, e))
	case domain.UserLoginSucceeded:
		// A success does not reset the address's count: a sprayer holding one
		// valid account could otherwise reset it at will.
		hit.setUser(m.evolveUser(env.AggregateID, seq, e))
	case domain.UserRoleGranted, domain.UserRoleRevoked, domain.UserActivated:
		hit.setUser(m.evolveUser(env.AggregateID, seq, e))
	case domain.UserDeactivated:
		// Also a cut-off: no session started at or before it works again,
		// even once the user is activated (lifecycle.go).
		if r, ok := m.evolveUser(env.AggregateID, seq, e); ok {
			hit.setUser(r, ok)
			m.users.cutOff(&m.cow, r, seq, "")
		}
	case domain.UserProfileChanged:
		hit.setUser(m.renameUser(e.UserID, seq, e))
	case domain.UserPasswordChanged:
		if r, ok := m.evolveUser(e.UserID, seq, e); ok {
			hit.setUser(r, ok)
			m.users.cutOff(&m.cow, r, seq, m.keepIfLive(r, e.KeptSessionID))
		}
	case domain.SessionStarted:
		m.sessions.start(&m.cow, &m.users, seq, e)
	case domain.SessionRefreshed:
		r, ok := m.evolveSession(e.SessionID, seq, e)
		hit.setSession(r, ok)
		if ok && e.RefreshTokenHash != "" {
			m.sessions.rotate(&m.cow, r, e.RefreshTokenHash)
		}
	case domain.SessionTokenRevoked:
		hit.setSession(m.evolveSession(e.SessionID, seq, e))
		m.revokedTokens[e.TokenID] = e.ExpiresAt
	case domain.SessionRevoked, domain.SessionRefreshReused:
		k, h := sessionKey(env.AggregateID)
		before, found := m.sessions.find(&k, h)
		wasRevoked := found && m.sessions.recs.at(before).flags&sRevoked != 0
		r, ok := m.evolveSession(env.AggregateID, seq, e)
		hit.setSession(r, ok)
		if ok && !wasRevoked && m.sessions.recs.at(r).flags&sRevoked != 0 {
			// Out of its user's list, which holds no revoked session: the
			// session limit counts that list at every login, and the
			// sessions it ends stay stored until they expire.
			m.sessions.unlink(r)
		}
	case domain.APIKeyCreated, domain.APIKeyRotated, domain.APIKeyRevoked, domain.APIKeyUsed:
		hit.key = m.applyKey(env.AggregateID, seq, e)
	case domain.SSOProviderConfigured, domain.SSOProviderDeleted, domain.SSOIdentityLinked, domain.SSOIdentityUnlinked, domain.SSOAssertionConsumed:
		m.applySSO(env.AggregateID, seq, e)
	case domain.SCIMConnectionCreated, domain.SCIMTokenRotated, domain.SCIMConnectionUpdated, domain.SCIMConnectionDeleted,
		domain.SCIMGroupCreated, domain.SCIMGroupRenamed, domain.SCIMGroupMembersChanged, domain.SCIMGroupDeleted,
		domain.SCIMUserLinked, domain.SCIMUserUpdated, domain.SCIMUserUnlinked:
		m.applySCIM(env.AggregateID, seq, scimOwnerFromActor(m, env.Actor, e))
	case domain.SigningKeyAdded, domain.SigningKeyActivated, domain.SigningKeyRetired:
		m.applySigningKey(env.AggregateID, seq, e)
	case domain.MFAFailed: // on the user's subject: a failed login for the throttle (mfa.go)
		m.countAddrFailure(env.Request.IP, e.At)
		hit.setUser(m.evolveUser(e.UserID, seq, e))
	case domain.MFATOTPEnrolled, domain.MFATOTPConfirmed, domain.MFACodeUsed, domain.MFARecoveryCodesGenerated,
		domain.MFARecoveryCodeUsed, domain.MFAPasskeyRegistered, domain.MFAPasskeyUsed, domain.MFAPasskeyDeleted, domain.MFAReset:
		m.applyMFA(env.AggregateID, seq, e)
	case domain.MFAPolicySet:
		m.applyMFAPolicy(env.AggregateID, seq, e)
	}
	if ref != 0 {
		m.journal.append(seq, &env, ev, m.concerns(&env, ev, &hit), m.actorNum(&env.Actor, &hit))
		m.historyAfter(ref, &env, ev, &hit)
	}
}

// evolveUser folds e into user id's state (domain.EvolveUser, the one
// definition of it) and packs the result back.
func (m *Model) evolveUser(id string, seq uint64, e domain.Event) (uint32, bool) {
	r, ok := m.users.find(id)
	if !ok {
		return 0, false
	}
	st := domain.EvolveUser(m.users.state(r, false), e)
	_, newPassword := e.(domain.UserPasswordChanged)
	m.users.store(&m.cow, r, st, seq, newPassword)
	return r, true
}

// evolveSession folds e into session id's state (domain.EvolveSession) and
// packs the result back; a rotation's refresh-token hashes are the caller's
// (sessStore.rotate), as the state is evolved without them.
func (m *Model) evolveSession(id string, seq uint64, e domain.Event) (uint32, bool) {
	k, h := sessionKey(id)
	r, ok := m.sessions.find(&k, h)
	if !ok {
		return 0, false
	}
	st := domain.EvolveSession(m.sessions.state(&m.users, r, id, false), e)
	m.sessions.store(&m.cow, &m.users, r, st, seq)
	return r, true
}

// Skip counts an event that could not be decoded; the sequence still counts as applied.
func (m *Model) Skip(seq uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq > m.applied {
		m.applied = seq
		m.journal.saw(seq)
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
	r, ok := m.users.find(id)
	if !ok {
		return domain.User{}, 0, false
	}
	return m.users.state(r, true), m.users.recs.at(r).seq, true
}

// UserByName looks a user up by username (case-insensitive).
func (m *Model) UserByName(name string) (domain.User, uint64, bool) {
	norm := domain.NormalizeUsername(name)
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.users.findName(norm)
	if !ok {
		return domain.User{}, 0, false
	}
	return m.users.state(r, true), m.users.recs.at(r).seq, true
}

// SealedHashSample returns the ID and sealed password hash of the first
// user (in the order of creation) who has one: what a replica opens at
// start to check that its master key is the store's
// (commands.Service.CheckMasterKey), whatever the users are named.
func (m *Model) SealedHashSample() (id, sealed string, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for r := range m.users.recs.n {
		if u := m.users.state(r, true); u.PasswordHashSealed != "" {
			return u.ID, u.PasswordHashSealed, true
		}
	}
	return "", "", false
}

// PasswordHashAt returns the sealed password hash of the user that k
// picks among the n users, in the order of their creation ("" when there
// are none, or that user has none): the hash a login on a name that matches
// no user is verified against, so that its cost is an existing user's
// (commands.Service.passwordMatches). Every replica numbers the users
// alike (users are never removed), so a name is checked against the same
// user's hash through each. The pick is a jump consistent hash (jump): a
// new user takes over the picks of 1 in n+1 keys and leaves the others
// where they were. With k mod n, every creation moved most names to
// another user, and a name checked at one cost, then at another after
// users were created, told that nobody has it: a user's hash — and its
// cost — changes only with their password. O(log n), no allocation but
// the hash's.
func (m *Model) PasswordHashAt(k uint64) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.users.recs.n == 0 {
		return ""
	}
	r := jump(k, m.users.recs.n)
	u := m.users.recs.at(r)
	h := m.users.hashOf(r, u)
	if u.flags&uPacked != 0 {
		return unpackSealed(h)
	}
	return strings.Clone(h) // the pool's bytes: not to be held past the lock
}

// jump is the bucket, of n, of key k by jump consistent hashing (Lamping
// and Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm", 2014):
// from n to n+1 buckets, a key moves with probability 1/(n+1), and only
// to the new bucket n.
func jump(k uint64, n uint32) uint32 {
	var b, j int64 = -1, 0
	for j < int64(n) {
		b = j
		k = k*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((k>>33)+1)))
	}
	return uint32(b)
}

// Users returns every user, with its sealed password hash, ordered by
// username: for tests and tools. It holds the lock for listChunk records
// at a time (userlist.go), never across them all; the users list of the
// API is ListUsers.
func (m *Model) Users() []domain.User {
	var out []domain.User
	for start := uint32(0); ; start += listChunk {
		m.mu.RLock()
		n := m.users.recs.n
		if start >= n {
			m.mu.RUnlock()
			break
		}
		end := min(start+listChunk, n)
		for r := start; r < end; r++ {
			out = append(out, m.users.state(r, true))
		}
		if m.listHeld != nil {
			m.listHeld(int(end - start))
		}
		m.mu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return out
}

// Session returns a session's state and the stream sequence of its last event.
func (m *Model) Session(id string) (domain.Session, uint64, bool) {
	k, h := sessionKey(id)
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.sessions.find(&k, h)
	if !ok {
		return domain.Session{}, 0, false
	}
	return m.sessions.state(&m.users, r, id, true), m.sessions.recs.at(r).seq, true
}

// SessionByRefreshHash finds the session that issued a refresh token, current or spent.
func (m *Model) SessionByRefreshHash(hash string) (string, bool) {
	k, h := hashKey(hash)
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.sessions.idByHash(&k, h)
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
	addr = domain.AddressKey(addr)
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
	f := m.addrFailures[domain.AddressKey(addr)]
	return f.count, f.last
}

// Principal is what the request path needs to know about a token's holder.
// Its User comes without PasswordHashSealed and its Session without
// RefreshTokenHash and SpentHashes: the request path has no use for them,
// and they are what the model would have to allocate (User and Session have
// them).
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
	var k idKey
	k.set(sessionID)
	h := k.hash()
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.sessions.find(&k, h)
	if !ok {
		return Principal{}, UnknownSession
	}
	u, ok := m.sessions.user(&m.users, r)
	if !ok {
		return Principal{}, UnknownSession
	}
	s := m.sessions.recs.at(r)
	switch {
	case m.users.recs.at(u).flags&uActive == 0:
		return Principal{}, UserInactive
	case s.flags&sRevoked != 0 || m.users.cuts(u, s.startSeq, sessionID, &k.id, !k.odd):
		return Principal{}, SessionRevoked
	case !m.sessions.times.before(now, oddTimeKey{oddSessionTime, fieldExpires, r}, s.expires):
		return Principal{}, SessionExpired
	}
	if tokenID != "" {
		if _, revoked := m.revokedTokens[tokenID]; revoked {
			return Principal{}, TokenRevoked
		}
	}
	p := Principal{User: m.users.state(u, false), Session: m.sessions.state(nil, r, sessionID, false)}
	if s.user != 0 {
		p.Session.UserID = p.User.ID // the same string, found once
	}
	return p, Valid
}

// SessionUsable returns nil when a session may still issue tokens (ignoring
// expiry and refresh-token checks, which the session aggregate decides), else
// why not: domain.ErrNotFound (unknown session or user), domain.ErrUserInactive
// or domain.ErrSessionRevoked (revoked, or cut off by a password change).
func (m *Model) SessionUsable(sessionID string) error {
	k, h := sessionKey(sessionID)
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.sessions.find(&k, h)
	if !ok {
		return domain.ErrNotFound
	}
	u, ok := m.sessions.user(&m.users, r)
	s := m.sessions.recs.at(r)
	switch {
	case !ok:
		return domain.ErrNotFound
	case m.users.recs.at(u).flags&uActive == 0:
		return domain.ErrUserInactive
	case s.flags&sRevoked != 0 || m.users.cuts(u, s.startSeq, sessionID, &k.id, !k.odd):
		return domain.ErrSessionRevoked
	}
	return nil
}

// AccessTokenRevoked reports whether the read model holds the revocation of
// access token tokenID (until it is pruned, after the token expired).
func (m *Model) AccessTokenRevoked(tokenID string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.revokedTokens[tokenID]
	return ok
}

// PruneRevokedTokens forgets access-token revocations whose tokens have
// expired, RevokedTokenGrace ago.
func (m *Model) PruneRevokedTokens(now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pruneRevokedLocked(now)
}

func (m *Model) pruneRevokedLocked(now time.Time) int {
	n := 0
	for id, exp := range m.revokedTokens {
		if now.After(exp.Add(m.RevokedTokenGrace)) {
			delete(m.revokedTokens, id)
			n++
		}
	}
	return n
}
