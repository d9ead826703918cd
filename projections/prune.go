package projections

import "time"

// Prune forgets what can never matter again at now: revocations of access
// tokens that have expired, and sessions past their absolute expiry (with
// their refresh-token hashes) — Authorize refuses an expired session's tokens
// whether or not it is still known. It returns how many entries it removed.
// Replicas prune independently; the stream keeps everything.
func (m *Model) Prune(now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.pruneRevokedLocked(now)
	for id, s := range m.sessions {
		if now.Before(s.state.ExpiresAt) {
			continue
		}
		delete(m.byRefresh, s.state.RefreshTokenHash)
		for _, h := range s.state.SpentHashes {
			delete(m.byRefresh, h)
		}
		delete(m.sessions, id)
		n++
	}
	return n
}
