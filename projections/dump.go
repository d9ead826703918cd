package projections

import (
	"cmp"
	"encoding/json"
	"slices"

	"github.com/infracast/auth/domain"
)

// dumpState is the model's whole state as the domain has it, and its
// indexes as they answer.
type dumpState struct {
	Applied   uint64
	Skipped   uint64
	Users     []dumpUser
	ByName    map[string]string // normalized username -> user ID
	Sessions  []dumpSession
	ByRefresh map[string]string // refresh-token hash (current and spent) -> session ID
	restState
}

type dumpUser struct {
	ID        string
	State     domain.User
	Seq       uint64
	CutoffSeq uint64
	Keep      string
}

type dumpSession struct {
	ID       string
	State    domain.Session
	Seq      uint64
	StartSeq uint64
}

// sessionByRefreshHashLocked is SessionByRefreshHash with the lock held.
func (m *Model) sessionByRefreshHashLocked(hash string) (string, bool) {
	k, h := hashKey(hash)
	return m.sessions.idByHash(&k, h)
}

// Dump returns the model's whole state as canonical JSON: every entry sorted
// by key, map keys sorted, an empty list distinct from none. Two models that
// answer alike dump alike, whichever way they were built (a full replay, or a
// snapshot and the events after it); tests and debugging compare dumps.
func (m *Model) Dump() ([]byte, error) {
	m.mu.RLock()
	s := dumpState{Applied: m.applied, Skipped: m.skipped, ByName: map[string]string{}, ByRefresh: map[string]string{},
		restState: m.copyRest(true)}
	us, ss := &m.users, &m.sessions
	for r := range us.recs.n {
		st := us.state(r, true)
		cutoff, keep := us.keep(r)
		s.Users = append(s.Users, dumpUser{ID: st.ID, State: st, Seq: us.recs.at(r).seq, CutoffSeq: cutoff, Keep: keep})
		norm := domain.NormalizeUsername(st.Username)
		if f, ok := us.findName(norm); ok {
			s.ByName[norm] = us.id(f)
		}
	}
	for r := range ss.recs.n {
		rec := ss.recs.at(r)
		if rec.flags&sLive == 0 {
			continue
		}
		id := ss.idText(r)
		st := ss.state(us, r, id, true)
		s.Sessions = append(s.Sessions, dumpSession{ID: id, State: st, Seq: rec.seq, StartSeq: rec.startSeq})
		for _, h := range append([]string{st.RefreshTokenHash}, st.SpentHashes...) {
			if id, ok := m.sessionByRefreshHashLocked(h); ok {
				s.ByRefresh[h] = id
			}
		}
	}
	for norm := range us.staleNames {
		if f, ok := us.findName(norm); ok {
			s.ByName[norm] = us.id(f)
		}
	}
	for h := range staleHashText(ss.staleHashes) {
		if id, ok := m.sessionByRefreshHashLocked(h); ok {
			s.ByRefresh[h] = id
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(s.Users, func(a, b dumpUser) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Sessions, func(a, b dumpSession) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Logins, func(a, b snapLogin) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.AddrFailures, func(a, b snapAddr) int { return cmp.Compare(a.Addr, b.Addr) })
	slices.SortFunc(s.Keys, func(a, b snapKey) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.SSOProviders, func(a, b snapSSOProvider) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(s.SigningKeys, func(a, b snapSigningKey) int { return cmp.Compare(a.ID, b.ID) })
	return json.MarshalIndent(s, "", " ")
}
