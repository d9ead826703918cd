package projections

import "time"

// Prune forgets what can never matter again at now: revocations of access
// tokens that have expired (RevokedTokenGrace ago), sessions past their absolute expiry (with
// their refresh-token hashes) — Authorize refuses an expired session's tokens
// whether or not it is still known — and the failed-login counts of client
// addresses quiet for AddressWindow (the next failure would start afresh,
// and the lockout they caused is over: a sprayer rotating through addresses
// would otherwise grow the map for as long as the replica runs). It returns
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
		if s.flags&sLive == 0 || ss.times.before(now, oddTimeKey{oddSessionTime, fieldExpires, r}, s.expires) {
			continue
		}
		ss.drop(&m.cow, r)
		n++
	}
	ss.unlinkPruned()
	return n
}
