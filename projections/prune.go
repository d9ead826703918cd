package projections

import "time"

// Prune forgets what can never matter again at now: revocations of access
// tokens that have expired (RevokedTokenGrace ago), sessions past their absolute expiry (with
// their refresh-token hashes) — Authorize refuses an expired session's tokens
// whether or not it is still known — and the failed-login counts of client
// addresses quiet for AddressWindow (the next failure would start afresh,
// and the lockout they caused is over: a sprayer rotating through addresses
// would otherwise grow the map for as long as the replica runs); and revoked
// sessions whose every access token has expired (RevokedSessionGrace after
// their last use). It returns
// how many entries it removed. Replicas prune independently; the stream
// keeps everything.
func (m *Model) Prune(now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.pruneRevokedLocked(now)
	for k, f := range m.addrFailures {
		if now.Sub(f.last) >= m.AddressWindow {
			delete(m.addrFailures, k)
			n++
		}
	}
	ss := &m.sessions
	for r := range ss.recs.n {
		s := ss.recs.at(r)
		if s.flags&sLive == 0 || ss.times.before(now, oddTimeKey{oddSessionTime, fieldExpires, r}, s.expires) && !m.revokedLongAgo(r, now) {
			continue
		}
		ss.drop(&m.cow, r)
		n++
	}
	ss.unlinkPruned()
	return n
}

// revokedLongAgo reports whether session record r is revoked and no access
// token issued from it is accepted at now: every one was issued at its
// start or a refresh (its LastUsedAt), a moment before its answer, and
// lives AccessTTL and the verifier's leeway, which RevokedSessionGrace
// covers. Its refresh token is then as unknown as an expired session's,
// 401 all the same. Without this, the sessions the session limit ends
// stayed stored for their 7 days: one account logging in ~70 times a
// second kept 42M records on every replica, 100 of them live
// (docs/scale.md, "A worst tenant"). 0: kept until they expire.
func (m *Model) revokedLongAgo(r uint32, now time.Time) bool {
	ss := &m.sessions
	s := ss.recs.at(r)
	return m.RevokedSessionGrace > 0 && s.flags&sRevoked != 0 &&
		!now.Before(ss.time(r, fieldLastUsed, s.lastUsed).Add(m.RevokedSessionGrace))
}
