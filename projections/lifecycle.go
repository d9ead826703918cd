package projections

import (
	"slices"
	"strings"
	"time"

	"github.com/infracast/auth/domain"
)

// A user's sessions and keys, for the sessions API and a user's
// deactivation (issue 17).
//
// The sessions of a user are found through a per-user list threaded through
// the session records: byUser holds, by user record, the newest session
// record + 1 (0: none), and userNext, by session record, the next older
// session of the same user + 1. Both are tables of uint32 beside the
// records (4 bytes a user, 4 a session: no pointer, nothing per entry for
// the collector), derived from the records and rebuilt on restore
// (linkAllSessions), never stored in a snapshot.
//
// A record is in its user's list exactly while it is live (sLive), not
// revoked, and its user is known (sessRec.user != 0): a revocation takes
// it out (unlink, a walk of the list — the session limit ends a user's
// oldest, at its end, but the list holds only the sessions not revoked),
// so that a user whose logins the session limit keeps at 100 live
// sessions has a list of about 100, however many it ended (they stay
// stored until they expire: every login counts the list). Cut-off and
// expired sessions stay in it until Prune drops them, and a listing skips
// them. What a
// listing shows beside the record (the login's method, client address and
// user agent) is in the session.started event, which the caller reads from
// the stream at StartSeq: the model does not hold it.

// grow makes records up to n - 1 of a table of links exist (zero).
func growLinks(t *table[uint32], c *cow, n uint32) {
	for t.n < n {
		t.alloc(c)
	}
}

// link puts session record r first in the list of its user.
func (ss *sessStore) link(c *cow, r uint32) {
	u := ss.recs.at(r).user
	if u == 0 {
		return
	}
	growLinks(&ss.byUser, c, u)
	growLinks(&ss.userNext, c, r+1)
	head := ss.byUser.at(u - 1)
	*ss.userNext.at(r) = *head
	*head = r + 1
}

// unlink takes session record r out of the list of its user (a walk of
// that user's list: rare, a session started again under its ID).
func (ss *sessStore) unlink(r uint32) {
	u := ss.recs.at(r).user
	if u == 0 || u > ss.byUser.n {
		return
	}
	for p := ss.byUser.at(u - 1); *p != 0; p = ss.userNext.at(*p - 1) {
		if *p == r+1 {
			*p = *ss.userNext.at(r)
			*ss.userNext.at(r) = 0
			return
		}
	}
}

// unlinkPruned takes the records Prune has dropped out of their users'
// lists: one pass over each such user's list (dropped records are no
// longer live), however many of its sessions went. Called before the
// write lock is released, so no dropped record has been reused yet.
func (ss *sessStore) unlinkPruned() {
	slices.Sort(ss.pruned)
	for _, u := range slices.Compact(ss.pruned) {
		if u > ss.byUser.n {
			continue
		}
		p := ss.byUser.at(u - 1)
		for *p != 0 {
			r := *p - 1
			if s := ss.recs.at(r); s.flags&sLive == 0 || s.user != u {
				*p = *ss.userNext.at(r)
				*ss.userNext.at(r) = 0
				continue
			}
			p = ss.userNext.at(r)
		}
	}
	ss.pruned = ss.pruned[:0]
}

// linkAllSessions builds every user's list from the records (Restore).
func linkAllSessions(ss *sessStore, c *cow) {
	ss.byUser, ss.userNext = table[uint32]{}, table[uint32]{}
	for r := range ss.recs.n {
		if f := ss.recs.at(r).flags; f&sLive != 0 && f&sRevoked == 0 {
			ss.link(c, r)
		}
	}
}

// UserSession is one of a user's live sessions.
type UserSession struct {
	ID         string
	UserID     string
	Tenant     string // "" when its tokens are not scoped to one
	StartedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time // the start, or the last refresh
	Refreshes  int
	// StartSeq is the stream sequence of its session.started event, whose
	// envelope tells the login's client address and user agent.
	StartSeq uint64
}

// UserSessions returns user id's live sessions at now — neither revoked,
// nor cut off by a password change or a deactivation, nor past their
// expiry; none while the user is deactivated — ordered by session ID
// (the order they started in). False: no such user.
func (m *Model) UserSessions(id string, now time.Time) ([]UserSession, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, ok := m.users.find(id)
	if !ok {
		return nil, false
	}
	var out []UserSession
	m.liveSessions(u, now, func(r uint32, sid string) {
		st := m.sessions.state(nil, r, sid, false)
		out = append(out, UserSession{
			ID: sid, UserID: m.users.id(u), Tenant: st.Tenant, StartedAt: st.StartedAt, ExpiresAt: st.ExpiresAt,
			LastUsedAt: st.LastUsedAt, Refreshes: st.Refreshes, StartSeq: m.sessions.recs.at(r).startSeq,
		})
	})
	slices.SortFunc(out, func(a, b UserSession) int { return strings.Compare(a.ID, b.ID) })
	return out, true
}

// UserSessionIDs returns the IDs of user id's live sessions at now (see
// UserSessions), unordered.
func (m *Model) UserSessionIDs(id string, now time.Time) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, ok := m.users.find(id)
	if !ok {
		return nil
	}
	var out []string
	m.liveSessions(u, now, func(_ uint32, sid string) { out = append(out, sid) })
	return out
}

// UserSessionCount returns how many live sessions user id has at now (see
// UserSessions): the session limit's question after every login, one walk
// of the user's list, which holds no revoked session.
func (m *Model) UserSessionCount(id string, now time.Time) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, ok := m.users.find(id)
	if !ok {
		return 0
	}
	n := 0
	m.liveSessions(u, now, func(uint32, string) { n++ })
	return n
}

// UserSessionUses returns user id's live sessions at now (see
// UserSessions) with the sequence of each one's session.started and when
// it was last used, unordered: what the session limit chooses by
// (domain.SessionsOverLimit).
func (m *Model) UserSessionUses(id string, now time.Time) []domain.SessionUse {
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, ok := m.users.find(id)
	if !ok {
		return nil
	}
	var out []domain.SessionUse
	m.liveSessions(u, now, func(r uint32, sid string) {
		s := m.sessions.recs.at(r)
		out = append(out, domain.SessionUse{ID: sid, StartSeq: s.startSeq, LastUsedAt: m.sessions.time(r, fieldLastUsed, s.lastUsed)})
	})
	return out
}

// liveSessions calls f with each live session of user record u (with the
// read lock held).
func (m *Model) liveSessions(u uint32, now time.Time, f func(r uint32, id string)) {
	ss := &m.sessions
	if m.users.recs.at(u).flags&uActive == 0 || u >= ss.byUser.n {
		return
	}
	for next := *ss.byUser.at(u); next != 0; next = *ss.userNext.at(next - 1) {
		r := next - 1
		s := ss.recs.at(r)
		if s.flags&sLive == 0 || s.flags&sRevoked != 0 || s.user != u+1 ||
			!ss.times.before(now, oddTimeKey{oddSessionTime, fieldExpires, r}, s.expires) {
			continue
		}
		id := ss.idText(r)
		var k idKey
		k.set(id)
		if m.users.cuts(u, s.startSeq, id, &k.id, !k.odd) {
			continue
		}
		f(r, id)
	}
}

// keepIfLive is the session a password change of user record u keeps:
// keep, unless that session is cut off already (by an earlier password
// change or a deactivation) — a cut-off is never undone, so a later change
// cannot bring a session it cut back.
func (m *Model) keepIfLive(u uint32, keep string) string {
	if keep == "" {
		return ""
	}
	k, h := sessionKey(keep)
	r, ok := m.sessions.find(&k, h)
	if ok && m.users.cuts(u, m.sessions.recs.at(r).startSeq, keep, &k.id, !k.odd) {
		return ""
	}
	return keep
}

// noteOwner keeps k listed under its owner while it is not revoked (before,
// wasRevoked: its owner and revocation before the event just applied; ""
// for a new key): a rotation that names a new owner moves it, a
// revocation takes it off. Taken off by its place (slot), the owner's last
// key moved there: a user revoking many keys costs no scan of them.
func (km *keyModel) noteOwner(k *keyEntry, before string, wasRevoked bool) {
	listed := before != "" && !wasRevoked
	listNow := k.owner != "" && k.flags&kRevoked == 0
	if listed && listNow && before == k.owner {
		return
	}
	if listed {
		list := km.byOwner[before]
		last := list[len(list)-1]
		list[k.slot], last.slot = last, k.slot
		list[len(list)-1] = nil
		if list = list[:len(list)-1]; len(list) == 0 {
			delete(km.byOwner, before)
		} else {
			km.byOwner[before] = list
		}
	}
	if listNow {
		if km.byOwner == nil {
			km.byOwner = make(map[string][]*keyEntry)
		}
		k.slot = uint32(len(km.byOwner[k.owner]))
		km.byOwner[k.owner] = append(km.byOwner[k.owner], k)
	}
}

// APIKeysOwnedBy returns the IDs of the API keys user owner owns (as their
// creation or last rotation named it) that are not revoked, by ID: a
// look-up of the owner's keys (noteOwner), not a scan of every key.
func (m *Model) APIKeysOwnedBy(owner string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for _, k := range m.keys.byOwner[owner] {
		out = append(out, k.id)
	}
	slices.Sort(out)
	return out
}

// APIKeysHeld is the number of API keys user owner owns that are not
// revoked (expired ones included, until revoked): O(1).
func (m *Model) APIKeysHeld(owner string) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.keys.byOwner[owner])
}

// LiveAPIKeyNamed reports whether one of user owner's API keys that still
// works (not revoked, not expired at now) is named name, without regard to
// case: a look at the owner's keys that are not revoked (noteOwner; as
// many as the owner may hold: commands.MaxAPIKeysPerOwner) as packed, none
// unpacked — the check of every key creation, which unpacked every key the
// owner ever had (an outside check, 19l: 24 ms per creation at 25,000 keys).
func (m *Model) LiveAPIKeyNamed(owner, name string, now time.Time) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, k := range m.keys.byOwner[owner] {
		if strings.EqualFold(k.name, name) && !(domain.APIKey{ExpiresAt: k.time(keyExpires)}).Expired(now) {
			return true
		}
	}
	return false
}
