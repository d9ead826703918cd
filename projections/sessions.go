package projections

import (
	"time"

	"github.com/infracast/auth/domain"
)

// sessionPrefix starts the session IDs the service makes (commands.NewID).
const sessionPrefix = "sess"

// sessRec is a session, packed into 120 bytes without a pointer: the ID and
// the refresh-token hash as bytes, the user as its record, the tenant and
// the revocation reason as shared strings. The domain.Session is built from
// it on the way out (sessStore.state).
type sessRec struct {
	// What finding and checking a session reads, first: few cache lines.
	id       [16]byte // the ULID of "sess-<ULID>" (else sOddID: sessStore.oddID)
	hash     [32]byte // the current refresh-token hash's SHA-256 (else sOddHash: sessStore.oddHash)
	flags    uint8
	reason   uint16 // sessStore.reasons (reasonOdd: sessStore.oddReason)
	user     uint32 // the user's record + 1 (0: no such user at the start: sessStore.oddUser)
	tenant   uint32 // sessStore.tenants
	spent    uint32 // the newest spent hash: spentNode + 1 (0: none)
	seq      uint64 // stream sequence of the last event on the session's subject
	startSeq uint64 // ... of session.started
	expires  stamp
	started  stamp
	lastUsed stamp
	rotated  stamp
	// Refreshes and Version of the domain.Session.
	refreshes uint32
	version   uint32
}

const (
	sLive    = 1 << iota // the record holds a session
	sRevoked             // domain.Session.Revoked
	sOddID
	sOddHash
	sHashOwned // byHash finds the session by its current hash: no later session took it
)

const reasonOdd = 1<<16 - 1

// spentNode is a refresh-token hash a rotation spent, in its session's list
// (newest first).
type spentNode struct {
	hash [32]byte
	prev uint32 // the next older: node + 1 (0: none)
	sess uint32 // its session's record; spentOdd: the hash is in oddSpent
}

const (
	spentOdd   = 1 << 31
	spentOwned = 1 << 30 // byHash finds the node by its hash (sHashOwned)
	spentFlags = spentOdd | spentOwned
)

// spentRef marks a spent node in the hash index (else a session record).
const spentRef = 1 << 31

// idKey is a session ID in an index: its bytes, or its text when it is not
// canonical.
type idKey struct {
	id   [16]byte
	text string
	odd  bool
}

// sumKey is a refresh-token hash in an index: its SHA-256, or its text when
// it is not 64 lower-case hex digits.
type sumKey struct {
	sum  [32]byte
	text string
	odd  bool
}

// sessStore holds the sessions.
type sessStore struct {
	recs   table[sessRec]
	spent  table[spentNode]
	byID   htab
	byHash htab // current and spent refresh-token hashes: a record, or a spent node | spentRef

	tenants strTable
	reasons strTable

	// Rare cases kept aside: a session's non-canonical ID, hash, unknown
	// user or reason (by record), a spent node's non-canonical hash.
	oddID     map[uint32]string
	oddHash   map[uint32]string
	oddUser   map[uint32]string
	oddReason map[uint32]string
	oddSpent  map[uint32]string
	times     oddTimes
	// staleHashes: the refresh-token hashes of a session started again
	// still find its ID, as the model always had it.
	staleHashes map[sumKey]string

	// Each user's sessions (lifecycle.go): by user record, the newest
	// session record + 1; by session record, the next older one of the
	// same user + 1. Derived from the records: rebuilt on restore.
	byUser, userNext table[uint32]
	pruned           []uint32 // users (record + 1) of the sessions Prune dropped, for unlinkPruned
}

// Time fields of sessions, for oddTimes.
const (
	fieldStarted uint8 = iota
	fieldExpires
	fieldLastUsed
	fieldRotated
)

func sessionKey(id string) (k idKey, h uint32) {
	k.set(id)
	return k, k.hash()
}

// set makes k the key of session ID id.
func (k *idKey) set(id string) {
	if b, ok := parseID(id, sessionPrefix); ok {
		k.id, k.text, k.odd = b, "", false
		return
	}
	k.id, k.text, k.odd = [16]byte{}, id, true
}

func (k *idKey) hash() uint32 {
	if k.odd {
		return hashString(k.text)
	}
	return hashID(&k.id)
}

func hashKey(hash string) (sumKey, uint32) {
	if sum, ok := parseHash(hash); ok {
		return sumKey{sum: sum}, hashSum(&sum)
	}
	return sumKey{text: hash, odd: true}, hashString(hash)
}

// hasID reports whether record r is the live session k.
func (ss *sessStore) hasID(r uint32, k *idKey) bool {
	s := ss.recs.at(r)
	if s.flags&sLive == 0 {
		return false
	}
	if s.flags&sOddID != 0 {
		return k.odd && ss.oddID[r] == k.text
	}
	return !k.odd && s.id == k.id
}

// find returns the record of session k.
func (ss *sessStore) find(k *idKey, h uint32) (uint32, bool) {
	return ss.byID.get(h, func(r uint32) bool { return ss.hasID(r, k) })
}

// hasHash reports whether index value v (a record, or a spent node) holds
// hash k.
func (ss *sessStore) hasHash(v uint32, k *sumKey) bool {
	if v&spentRef != 0 {
		n := ss.spent.at(v &^ spentRef)
		if n.sess&spentOdd != 0 {
			return k.odd && ss.oddSpent[v&^spentRef] == k.text
		}
		return !k.odd && n.hash == k.sum
	}
	s := ss.recs.at(v)
	if s.flags&sLive == 0 {
		return false
	}
	if s.flags&sOddHash != 0 {
		return k.odd && ss.oddHash[v] == k.text
	}
	return !k.odd && s.hash == k.sum
}

// findHash returns the session whose current or spent refresh-token hash is
// k.
func (ss *sessStore) findHash(k *sumKey, h uint32) (uint32, bool) {
	v, ok := ss.byHash.get(h, func(v uint32) bool { return ss.hasHash(v, k) })
	if !ok {
		return 0, false
	}
	if v&spentRef != 0 {
		return ss.spent.at(v&^spentRef).sess &^ spentFlags, true
	}
	return v, true
}

// idByHash is the ID of the session that hash k finds.
func (ss *sessStore) idByHash(k *sumKey, h uint32) (string, bool) {
	if r, ok := ss.findHash(k, h); ok {
		return ss.idText(r), true
	}
	id, ok := ss.staleHashes[*k]
	return id, ok
}

// putHash makes hash k find index value v (the last session to have a hash
// has it), and marks who has it (sHashOwned, spentOwned), so that a restore
// gives it to the same one.
func (ss *sessStore) putHash(c *cow, k sumKey, h uint32, v uint32) {
	is := func(o uint32) bool { return ss.hasHash(o, &k) }
	if old, ok := ss.byHash.get(h, is); ok && old != v {
		ss.setOwned(c, old, false)
	}
	ss.byHash.put(h, v, is)
	ss.setOwned(c, v, true)
	delete(ss.staleHashes, k)
}

func (ss *sessStore) setOwned(c *cow, v uint32, owned bool) {
	if v&spentRef != 0 {
		n := ss.spent.mut(c, v&^spentRef)
		if owned {
			n.sess |= spentOwned
		} else {
			n.sess &^= spentOwned
		}
		return
	}
	s := ss.recs.mut(c, v)
	if owned {
		s.flags |= sHashOwned
	} else {
		s.flags &^= sHashOwned
	}
}

func (ss *sessStore) delHash(h uint32, v uint32) { ss.byHash.del(h, v) }

// idText is record r's session ID (allocates for a canonical one).
func (ss *sessStore) idText(r uint32) string {
	s := ss.recs.at(r)
	if s.flags&sOddID != 0 {
		return ss.oddID[r]
	}
	return formatID(sessionPrefix, s.id)
}

// currentKey is record r's current hash as an index key.
func (ss *sessStore) currentKey(r uint32) (sumKey, uint32) {
	s := ss.recs.at(r)
	if s.flags&sOddHash != 0 {
		t := ss.oddHash[r]
		return sumKey{text: t, odd: true}, hashString(t)
	}
	return sumKey{sum: s.hash}, hashSum(&s.hash)
}

func (ss *sessStore) nodeKey(i uint32) (sumKey, uint32) {
	n := ss.spent.at(i)
	if n.sess&spentOdd != 0 {
		t := ss.oddSpent[i]
		return sumKey{text: t, odd: true}, hashString(t)
	}
	return sumKey{sum: n.hash}, hashSum(&n.hash)
}

// setCurrent makes hash record r's current refresh-token hash.
func (ss *sessStore) setCurrent(c *cow, r uint32, hash string) {
	s := ss.recs.mut(c, r)
	k, h := hashKey(hash)
	s.hash = k.sum
	s.flags &^= sHashOwned
	if k.odd {
		s.flags |= sOddHash
		if ss.oddHash == nil {
			ss.oddHash = make(map[uint32]string)
		}
		ss.oddHash[r] = hash
	} else {
		s.flags &^= sOddHash
		delete(ss.oddHash, r)
	}
	ss.putHash(c, k, h, r)
}

// rotate spends record r's current hash and makes hash the current one.
func (ss *sessStore) rotate(c *cow, r uint32, hash string) {
	k, h := ss.currentKey(r)
	i := ss.spent.alloc(c)
	n := ss.spent.mut(c, i)
	s := ss.recs.mut(c, r)
	n.hash, n.prev, n.sess = s.hash, s.spent, r
	if s.flags&sOddHash != 0 {
		n.sess |= spentOdd
		if ss.oddSpent == nil {
			ss.oddSpent = make(map[uint32]string)
		}
		ss.oddSpent[i] = ss.oddHash[r]
	}
	s.spent = i + 1
	ss.putHash(c, k, h, i|spentRef) // the spent hash finds its node now
	ss.setCurrent(c, r, hash)
}

// spentHashes are record r's spent hashes, oldest first, as the domain has
// them (allocates).
func (ss *sessStore) spentHashes(r uint32) []string {
	var out []string
	for i := ss.recs.at(r).spent; i != 0; i = ss.spent.at(i - 1).prev {
		n := ss.spent.at(i - 1)
		if n.sess&spentOdd != 0 {
			out = append(out, ss.oddSpent[i-1])
		} else {
			out = append(out, formatHash(&n.hash))
		}
	}
	for a, b := 0, len(out)-1; a < b; a, b = a+1, b-1 {
		out[a], out[b] = out[b], out[a]
	}
	return out
}

// forgetHashes takes record r's current and spent hashes out of the index
// and frees the spent nodes; with staleID, they go on finding that ID.
func (ss *sessStore) forgetHashes(c *cow, r uint32, staleID *string) {
	stale := func(k sumKey) {
		if staleID == nil {
			delete(ss.staleHashes, k)
			return
		}
		if ss.staleHashes == nil {
			ss.staleHashes = make(map[sumKey]string)
		}
		ss.staleHashes[k] = *staleID
	}
	k, h := ss.currentKey(r)
	ss.delHash(h, r)
	stale(k)
	for i := ss.recs.at(r).spent; i != 0; {
		k, h := ss.nodeKey(i - 1)
		ss.delHash(h, (i-1)|spentRef)
		stale(k)
		prev := ss.spent.at(i - 1).prev
		delete(ss.oddSpent, i-1)
		ss.spent.release(c, i-1)
		i = prev
	}
	s := ss.recs.mut(c, r)
	s.spent = 0
	delete(ss.oddHash, r)
}

// ---------------------------------------------------------------- state

func (ss *sessStore) time(r uint32, field uint8, s stamp) time.Time {
	return ss.times.get(oddTimeKey{oddSessionTime, field, r}, s)
}

// state is session r as the domain has it, with ID id (the caller's: it has
// just found the session by it). Without withHashes, RefreshTokenHash and
// SpentHashes are empty: the request path has no use for them, and they are
// the fields that would allocate.
func (ss *sessStore) state(users *userStore, r uint32, id string, withHashes bool) domain.Session {
	s := ss.recs.at(r)
	st := domain.Session{
		ID: id, Tenant: ss.tenants.str(s.tenant),
		RotatedAt: ss.time(r, fieldRotated, s.rotated), StartedAt: ss.time(r, fieldStarted, s.started),
		ExpiresAt: ss.time(r, fieldExpires, s.expires), LastUsedAt: ss.time(r, fieldLastUsed, s.lastUsed),
		Refreshes: int(s.refreshes), Revoked: s.flags&sRevoked != 0, Version: uint64(s.version),
	}
	switch {
	case s.user == 0:
		st.UserID = ss.oddUser[r]
	case users != nil:
		st.UserID = users.id(s.user - 1)
	}
	if s.reason == reasonOdd {
		st.RevokeReason = ss.oddReason[r]
	} else {
		st.RevokeReason = ss.reasons.str(uint32(s.reason))
	}
	if withHashes {
		if s.flags&sOddHash != 0 {
			st.RefreshTokenHash = ss.oddHash[r]
		} else {
			st.RefreshTokenHash = formatHash(&s.hash)
		}
		st.SpentHashes = ss.spentHashes(r)
	}
	return st
}

// store writes st's fields into record r (but its hashes: setCurrent,
// rotate), with seq.
func (ss *sessStore) store(c *cow, users *userStore, r uint32, st domain.Session, seq uint64) {
	s := ss.recs.mut(c, r)
	s.seq = seq
	s.started = ss.times.put(oddTimeKey{oddSessionTime, fieldStarted, r}, st.StartedAt)
	s.expires = ss.times.put(oddTimeKey{oddSessionTime, fieldExpires, r}, st.ExpiresAt)
	s.lastUsed = ss.times.put(oddTimeKey{oddSessionTime, fieldLastUsed, r}, st.LastUsedAt)
	s.rotated = ss.times.put(oddTimeKey{oddSessionTime, fieldRotated, r}, st.RotatedAt)
	s.refreshes, s.version = uint32(st.Refreshes), uint32(st.Version)
	if st.Revoked {
		s.flags |= sRevoked
	} else {
		s.flags &^= sRevoked
	}
	if ss.tenants.str(s.tenant) != st.Tenant {
		s.tenant = ss.tenants.id(st.Tenant)
	}
	if cur := ss.reasonOf(r); cur != st.RevokeReason {
		delete(ss.oddReason, r)
		if id := ss.reasons.id(st.RevokeReason); id < reasonOdd {
			s.reason = uint16(id)
		} else {
			if ss.oddReason == nil {
				ss.oddReason = make(map[uint32]string)
			}
			s.reason, ss.oddReason[r] = reasonOdd, st.RevokeReason
		}
	}
	if s.user == 0 && st.UserID != ss.oddUser[r] || s.user != 0 && users.id(s.user-1) != st.UserID {
		delete(ss.oddUser, r)
		if u, ok := users.find(st.UserID); ok {
			s.user = u + 1
		} else {
			if ss.oddUser == nil {
				ss.oddUser = make(map[uint32]string)
			}
			s.user, ss.oddUser[r] = 0, st.UserID
		}
	}
}

func (ss *sessStore) reasonOf(r uint32) string {
	s := ss.recs.at(r)
	if s.reason == reasonOdd {
		return ss.oddReason[r]
	}
	return ss.reasons.str(uint32(s.reason))
}

// user is session r's user record.
func (ss *sessStore) user(users *userStore, r uint32) (uint32, bool) {
	s := ss.recs.at(r)
	if s.user != 0 {
		return s.user - 1, true
	}
	return users.find(ss.oddUser[r])
}

// start makes the session of a session.started event, at seq (replacing a
// session of the same ID and its refresh-token hashes).
func (ss *sessStore) start(c *cow, users *userStore, seq uint64, e domain.SessionStarted) {
	k, h := sessionKey(e.SessionID)
	r, found := ss.find(&k, h)
	if found {
		ss.forgetHashes(c, r, &e.SessionID)
		ss.unlink(r) // its user may change
	} else {
		r = ss.recs.alloc(c)
		s := ss.recs.mut(c, r)
		s.flags = sLive
		if k.odd {
			s.flags |= sOddID
			if ss.oddID == nil {
				ss.oddID = make(map[uint32]string)
			}
			ss.oddID[r] = e.SessionID
		} else {
			s.id = k.id
		}
		ss.byID.put(h, r, func(o uint32) bool { return ss.hasID(o, &k) })
	}
	st := domain.EvolveSession(domain.Session{}, e)
	ss.store(c, users, r, st, seq)
	ss.recs.mut(c, r).startSeq = seq
	ss.setCurrent(c, r, st.RefreshTokenHash)
	ss.link(c, r)
}

// drop forgets record r (Prune, which then calls unlinkPruned).
func (ss *sessStore) drop(c *cow, r uint32) {
	if u := ss.recs.at(r).user; u != 0 {
		ss.pruned = append(ss.pruned, u)
	}
	ss.forgetHashes(c, r, nil)
	k := idKey{id: ss.recs.at(r).id}
	if ss.recs.at(r).flags&sOddID != 0 {
		k = idKey{text: ss.oddID[r], odd: true}
	}
	var h uint32
	if k.odd {
		h = hashString(k.text)
	} else {
		h = hashID(&k.id)
	}
	ss.byID.del(h, r)
	for _, m := range []map[uint32]string{ss.oddID, ss.oddUser, ss.oddReason} {
		delete(m, r)
	}
	for f := fieldStarted; f <= fieldRotated; f++ {
		delete(ss.times, oddTimeKey{oddSessionTime, f, r})
	}
	ss.recs.release(c, r)
}
