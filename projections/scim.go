package projections

import (
	"encoding/hex"
	"sort"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// scimModel is the SCIM provisioning read model: connections (by ID, and
// the live ones by the SHA-256 of their token), the groups they pushed and
// their records of users (links). Its zero value is ready to use (maps are
// made on first write); it lives inside Model and is guarded by Model.mu.
type scimModel struct {
	conns  map[string]*scimConnEntry  // connection ID -> state (deleted ones too)
	byHash map[[32]byte]string        // token SHA-256 -> connection ID, live connections only
	groups map[string]*scimGroupEntry // group ID -> state (deleted ones too)
	links  map[string]*scimLinkEntry  // scim_user aggregate ID -> state (unlinked ones too)
	// Per connection: its live groups, its linked users (user ID -> the
	// link's aggregate ID), and the users it provisioned once and no longer
	// does (the same; SCIMFormerLinkByExternalID).
	connGroups  map[string]map[string]struct{}
	connUsers   map[string]map[string]string
	connFormers map[string]map[string]string
	// Per connection, every group and every link it ever had, in the order
	// the model learnt of them (neither is ever removed, and a link's
	// connection is in its key): what the lists walk a chunk at a time
	// (walkSCIM) — the maps above cannot be walked in parts across
	// releases of the lock. Derived, rebuilt on restore.
	groupOrder map[string][]*scimGroupEntry
	linkOrder  map[string][]*scimLinkEntry
}

type scimConnEntry struct {
	state domain.SCIMConnection
	seq   uint64
}

type scimGroupEntry struct {
	state domain.SCIMGroup
	seq   uint64
}

type scimLinkEntry struct {
	state domain.SCIMLink
	seq   uint64
}

// scimOwnerFromActor gives a scim.token_rotated written without its owner —
// by a build from before owners were recorded, running beside this one
// during a rolling upgrade — the owner a rotation has (domain.SCIMConnection):
// the user who rotated it, from the event's actor, or, for an API key, the
// key and its owner at that point of the stream. Otherwise the connection
// would stay ownerless for good: its token outliving the admin who rotated
// it (an outside check). Other events are returned as they are. Called with
// the write lock held.
func scimOwnerFromActor(m *Model, actor events.Actor, e domain.Event) domain.Event {
	r, ok := e.(domain.SCIMTokenRotated)
	if !ok || r.OwnerID != "" {
		return e
	}
	switch actor.Type {
	case "user":
		r.OwnerID = actor.ID
	case "apikey":
		k := m.keys.byID[actor.ID]
		if k == nil {
			return e
		}
		r.OwnerID, r.OwnerKeyID = k.owner, actor.ID
	default:
		return e
	}
	return r
}

// applySCIM folds a SCIM event; called with the write lock held.
func (m *Model) applySCIM(aggregateID string, seq uint64, e domain.Event) {
	s := &m.scim
	switch e.(type) {
	case domain.SCIMConnectionCreated, domain.SCIMTokenRotated, domain.SCIMConnectionUpdated, domain.SCIMConnectionDeleted:
		if s.conns == nil {
			s.conns = make(map[string]*scimConnEntry)
			s.byHash = make(map[[32]byte]string)
		}
		c := s.conns[aggregateID]
		if c == nil {
			if _, ok := e.(domain.SCIMConnectionCreated); !ok {
				return
			}
			c = &scimConnEntry{}
			s.conns[aggregateID] = c
		}
		s.unindexConn(c)
		c.state = domain.EvolveSCIMConnection(c.state, e)
		c.seq = seq
		s.indexConn(c)
	case domain.SCIMGroupCreated, domain.SCIMGroupRenamed, domain.SCIMGroupMembersChanged, domain.SCIMGroupDeleted:
		if s.groups == nil {
			s.groups = make(map[string]*scimGroupEntry)
			s.connGroups = make(map[string]map[string]struct{})
		}
		g := s.groups[aggregateID]
		if g == nil {
			if _, ok := e.(domain.SCIMGroupCreated); !ok {
				return
			}
			g = &scimGroupEntry{}
			s.groups[aggregateID] = g
			s.orderGroup(e.(domain.SCIMGroupCreated).ConnectionID, g)
		}
		g.state = domain.EvolveSCIMGroup(g.state, e)
		g.seq = seq
		set := s.connGroups[g.state.ConnectionID]
		if g.state.Exists() {
			if set == nil {
				set = make(map[string]struct{})
				s.connGroups[g.state.ConnectionID] = set
			}
			set[g.state.ID] = struct{}{}
		} else if set != nil {
			delete(set, g.state.ID)
		}
	case domain.SCIMUserLinked, domain.SCIMUserUpdated, domain.SCIMUserUnlinked:
		if s.links == nil {
			s.links = make(map[string]*scimLinkEntry)
			s.connUsers = make(map[string]map[string]string)
			s.connFormers = make(map[string]map[string]string)
		}
		l := s.links[aggregateID]
		if l == nil {
			if _, ok := e.(domain.SCIMUserLinked); !ok {
				return
			}
			l = &scimLinkEntry{}
			s.links[aggregateID] = l
			s.orderLink(e.(domain.SCIMUserLinked).ConnectionID, l)
		}
		l.state = domain.EvolveSCIMLink(l.state, e)
		l.seq = seq
		s.indexLink(aggregateID, l.state)
	}
}

// indexLink files a link under its connection's linked users, or its
// former ones once unlinked.
func (s *scimModel) indexLink(key string, l domain.SCIMLink) {
	add, drop := s.connUsers, s.connFormers
	if !l.Linked {
		add, drop = drop, add
	}
	if set := drop[l.ConnectionID]; set != nil {
		delete(set, l.UserID)
	}
	set := add[l.ConnectionID]
	if set == nil {
		set = make(map[string]string)
		add[l.ConnectionID] = set
	}
	set[l.UserID] = key
}

// orderGroup and orderLink note a new group or link of connection
// connID (groupOrder, linkOrder).
func (s *scimModel) orderGroup(connID string, g *scimGroupEntry) {
	if s.groupOrder == nil {
		s.groupOrder = make(map[string][]*scimGroupEntry)
	}
	s.groupOrder[connID] = append(s.groupOrder[connID], g)
}

func (s *scimModel) orderLink(connID string, l *scimLinkEntry) {
	if s.linkOrder == nil {
		s.linkOrder = make(map[string][]*scimLinkEntry)
	}
	s.linkOrder[connID] = append(s.linkOrder[connID], l)
}

// walkSCIM calls f on each entry of list(m) — a connection's groupOrder
// or linkOrder, read again under each hold of the read lock — listChunk
// entries a hold, releasing the lock between chunks (as ListUsers does):
// the lists of a connection provisioning a million users held it across
// them all. f returns false to stop. An event applied meanwhile is
// reflected in the entries after it and not in those before.
func walkSCIM[T any](m *Model, list func(*scimModel) []T, f func(T) bool) {
	for start := 0; ; start += listChunk {
		m.mu.RLock()
		all := list(&m.scim)
		if start >= len(all) {
			m.mu.RUnlock()
			return
		}
		part := all[start:min(start+listChunk, len(all))]
		more := true
		for _, e := range part {
			if more = f(e); !more {
				break
			}
		}
		if m.listHeld != nil {
			m.listHeld(len(part))
		}
		m.mu.RUnlock()
		if !more {
			return
		}
	}
}

func (m *Model) walkSCIMGroups(connID string, f func(*scimGroupEntry) bool) {
	walkSCIM(m, func(s *scimModel) []*scimGroupEntry { return s.groupOrder[connID] }, f)
}

func (m *Model) walkSCIMLinks(connID string, f func(*scimLinkEntry) bool) {
	walkSCIM(m, func(s *scimModel) []*scimLinkEntry { return s.linkOrder[connID] }, f)
}

func (s *scimModel) indexConn(c *scimConnEntry) {
	if !c.state.Exists() {
		return
	}
	if sum, ok := decodeHash(c.state.TokenHash); ok {
		s.byHash[sum] = c.state.ID
	}
}

func (s *scimModel) unindexConn(c *scimConnEntry) {
	if sum, ok := decodeHash(c.state.TokenHash); ok && s.byHash[sum] == c.state.ID {
		delete(s.byHash, sum)
	}
}

func decodeHash(h string) ([32]byte, bool) {
	var sum [32]byte
	if len(h) != 64 {
		return sum, false
	}
	if _, err := hex.Decode(sum[:], []byte(h)); err != nil {
		return sum, false
	}
	return sum, true
}

// SCIMConnection returns a connection's state (also a deleted one: check
// Exists) and the stream sequence of its last event.
func (m *Model) SCIMConnection(id string) (domain.SCIMConnection, uint64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c := m.scim.conns[id]
	if c == nil {
		return domain.SCIMConnection{}, 0, false
	}
	return c.state, c.seq, true
}

// SCIMConnections returns the live connections, by ID.
func (m *Model) SCIMConnections() []domain.SCIMConnection {
	m.mu.RLock()
	out := make([]domain.SCIMConnection, 0, len(m.scim.conns))
	for _, c := range m.scim.conns {
		if c.state.Exists() {
			out = append(out, c.state)
		}
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SCIMConnectionByToken finds the live connection whose token has the
// SHA-256 sum: one map lookup by a hash of a 256-bit secret, which tells
// nothing about the secret by its timing.
func (m *Model) SCIMConnectionByToken(sum [32]byte) (domain.SCIMConnection, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.scim.byHash[sum]
	if !ok {
		return domain.SCIMConnection{}, false
	}
	c := m.scim.conns[id]
	if c == nil || !c.state.Exists() {
		return domain.SCIMConnection{}, false
	}
	return c.state, true
}

// SCIMGroup returns a group's state (also a deleted one) and the stream
// sequence of its last event.
func (m *Model) SCIMGroup(id string) (domain.SCIMGroup, uint64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.scim.groups[id]
	if g == nil {
		return domain.SCIMGroup{}, 0, false
	}
	return g.state, g.seq, true
}

// SCIMGroups returns a connection's live groups, by ID. It holds the lock
// for listChunk groups at a time (walkSCIM), never across them all.
func (m *Model) SCIMGroups(connID string) []domain.SCIMGroup {
	var out []domain.SCIMGroup
	m.walkSCIMGroups(connID, func(g *scimGroupEntry) bool {
		if g.state.Exists() {
			out = append(out, g.state)
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SCIMLink returns connection connID's record of user userID (also an
// unlinked one: check Linked) and the stream sequence of its last event
// (0: none yet).
func (m *Model) SCIMLink(connID, userID string) (domain.SCIMLink, uint64, bool) {
	key := domain.SCIMLinkKey(connID, userID)
	m.mu.RLock()
	defer m.mu.RUnlock()
	l := m.scim.links[key]
	if l == nil {
		return domain.SCIMLink{}, 0, false
	}
	return l.state, l.seq, true
}

// SCIMLinks returns the users a connection provisions (its live links), by
// user ID. It holds the lock for listChunk links at a time (walkSCIM),
// never across them all.
func (m *Model) SCIMLinks(connID string) []domain.SCIMLink {
	var out []domain.SCIMLink
	m.walkSCIMLinks(connID, func(l *scimLinkEntry) bool {
		if l.state.Linked {
			out = append(out, l.state)
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out
}

// SCIMCounts returns how many users a connection provisions, and how many
// groups it has.
func (m *Model) SCIMCounts(connID string) (users, groups int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.scim.connUsers[connID]), len(m.scim.connGroups[connID])
}

// SCIMLinkByUserName finds the connection's linked user whose SCIM
// userName is name (without regard to the case of A-Z: domain.SameUsername).
func (m *Model) SCIMLinkByUserName(connID, name string) (domain.SCIMLink, bool) {
	return m.scimLinkWhere(connID, func(p domain.SCIMProfile) bool { return domain.SameUsername(p.UserName, name) })
}

// scimLinkWhere scans the users connection connID provisions for the first
// whose profile matches, listChunk links under each hold of the lock
// (walkSCIM).
func (m *Model) scimLinkWhere(connID string, match func(domain.SCIMProfile) bool) (domain.SCIMLink, bool) {
	var found domain.SCIMLink
	var ok bool
	m.walkSCIMLinks(connID, func(l *scimLinkEntry) bool {
		if l.state.Linked && match(l.state.Profile) {
			found, ok = l.state, true
		}
		return !ok
	})
	return found, ok
}

// SCIMLinkByExternalID finds the user connection connID provisions with the
// SCIM externalId externalID (compared exactly: it is case-exact, RFC
// 7643). It scans the connection's users, as SCIMLinkByUserName does: it
// serves SCIM creates, which must not give one externalId a second user of
// the connection (a tenant connection links no identity that would find the
// first).
func (m *Model) SCIMLinkByExternalID(connID, externalID string) (domain.SCIMLink, bool) {
	if externalID == "" {
		return domain.SCIMLink{}, false
	}
	return m.scimLinkWhere(connID, func(p domain.SCIMProfile) bool { return p.ExternalID == externalID })
}

// SCIMFormerLinkByExternalID finds the user connection connID provisioned
// with the SCIM externalId externalID (compared exactly: it is case-exact,
// RFC 7643) and no longer provisions — deleted by the identity provider:
// its unlinked record, the latest of several. Its own record says who that
// externalId was, for a connection that links no SSO identity (a rehire).
func (m *Model) SCIMFormerLinkByExternalID(connID, externalID string) (domain.SCIMLink, bool) {
	if externalID == "" {
		return domain.SCIMLink{}, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	var best *scimLinkEntry
	for _, key := range m.scim.connFormers[connID] {
		if l := m.scim.links[key]; l.state.Profile.ExternalID == externalID && (best == nil || l.seq > best.seq) {
			best = l
		}
	}
	if best == nil {
		return domain.SCIMLink{}, false
	}
	return best.state, true
}

// snapshot copies the SCIM read model for a snapshot (or Dump); called with
// the read lock held. The states are values whose slices are never written
// in place (Evolve makes new ones), so they are shared, not copied. Each
// list is ordered by its entries' sequence, so that the same model always
// makes the same snapshot.
func (s *scimModel) snapshot() (conns []snapSCIMConn, groups []snapSCIMGroup, links []snapSCIMLink) {
	conns = make([]snapSCIMConn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, snapSCIMConn{Empty: markEmpty(&c.state), State: c.state, Seq: c.seq})
	}
	groups = make([]snapSCIMGroup, 0, len(s.groups))
	for _, g := range s.groups {
		groups = append(groups, snapSCIMGroup{Empty: markEmpty(&g.state), State: g.state, Seq: g.seq})
	}
	links = make([]snapSCIMLink, 0, len(s.links))
	for key, l := range s.links {
		links = append(links, snapSCIMLink{Key: key, State: l.state, Seq: l.seq})
	}
	sort.Slice(conns, func(i, j int) bool { return conns[i].Seq < conns[j].Seq })
	sort.Slice(groups, func(i, j int) bool { return groups[i].Seq < groups[j].Seq })
	sort.Slice(links, func(i, j int) bool { return links[i].Seq < links[j].Seq })
	return conns, groups, links
}

// restoreSCIM rebuilds the SCIM read model, indexes included, from a
// snapshot: the same as applying the events that made it.
func restoreSCIM(conns []snapSCIMConn, groups []snapSCIMGroup, links []snapSCIMLink) scimModel {
	var s scimModel
	if len(conns) > 0 {
		s.conns = make(map[string]*scimConnEntry, len(conns))
		s.byHash = make(map[[32]byte]string, len(conns))
		for _, c := range conns {
			c.Empty.restore(&c.State)
			e := &scimConnEntry{state: c.State, seq: c.Seq}
			s.conns[c.State.ID] = e
			s.indexConn(e)
		}
	}
	if len(groups) > 0 {
		s.groups = make(map[string]*scimGroupEntry, len(groups))
		s.connGroups = make(map[string]map[string]struct{})
		for _, g := range groups {
			g.Empty.restore(&g.State)
			e := &scimGroupEntry{state: g.State, seq: g.Seq}
			s.groups[g.State.ID] = e
			s.orderGroup(g.State.ConnectionID, e)
			if !g.State.Exists() {
				continue
			}
			set := s.connGroups[g.State.ConnectionID]
			if set == nil {
				set = make(map[string]struct{})
				s.connGroups[g.State.ConnectionID] = set
			}
			set[g.State.ID] = struct{}{}
		}
	}
	if len(links) > 0 {
		s.links = make(map[string]*scimLinkEntry, len(links))
		s.connUsers = make(map[string]map[string]string)
		s.connFormers = make(map[string]map[string]string)
		for _, l := range links {
			e := &scimLinkEntry{state: l.State, seq: l.Seq}
			s.links[l.Key] = e
			s.orderLink(l.State.ConnectionID, e)
			s.indexLink(l.Key, l.State)
		}
	}
	return s
}
