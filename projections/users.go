package projections

import (
	"slices"
	"strings"
	"unsafe"

	"github.com/infracast/auth/domain"
)

// userRec is a user, packed into 40 bytes without a pointer; its strings
// are in the store's arena and its sealed password hash in a slot pool
// (compact.go), each at its exact size. The domain.User is built from it
// on the way out (userStore.state).
type userRec struct {
	seq     uint64 // stream sequence of the last event on the user's subject
	created stamp
	// text is the arena handle of the ID, the username and the e-mail,
	// each after its length (uvarint); uOddText: userStore.oddText.
	text uint32
	// The sealed password hash: slot phs of pool phsPool (0: ""), as
	// bytes (uPacked) or, if not in the form the service seals, as text.
	phs     uint32
	version uint32
	roles   uint32 // the tenant roles: roleSets
	extra   uint32 // userExtra + 1, 0 for none
	phsPool uint8
	flags   uint8
}

const (
	uActive  = 1 << iota
	uPacked  // the sealed hash is kept as bytes
	uNamed   // byName finds the user by its (normalized) username: no later user took it
	uOddText // the strings are in userStore.oddText (the arena is full)
	uRolesNil
	uRolesEmpty // the global roles are []; neither flag: userExtra.global
	uOddHash    // the sealed hash is in userStore.oddHash (255 lengths of them already)
	uUnvouched
)

// userExtra is what a user has only once a login failed, the password
// changed or it was deactivated, or with a global role: most users never
// need one.
type userExtra struct {
	lastFail stamp
	// Sessions started at or before cutoff are revoked: by a password
	// change, except keep; by a deactivation (keep none), for good, even
	// once the user is activated again.
	cutoff   uint64
	failed   uint32
	keep     [16]byte
	global   uint16 // globalLists (globalOdd: userStore.oddGlobal)
	keepKind uint8
	// byTenant: domain.User.DeactivatedByTenantAdmin (only ever true for
	// a deactivated user, who has an extra for its cut-off).
	byTenant bool
}

const (
	keepNone = iota // keep is ""
	keepID          // keep is the session ID in keep
	keepText        // keep is in userStore.keepText
)

// globalOdd: the user's global roles are in userStore.oddGlobal.
const globalOdd = 1<<16 - 1

// userStore holds the users. Users are never removed.
type userStore struct {
	recs   table[userRec]
	extras table[userExtra]
	text   arena     // the users' IDs, usernames and e-mails
	hashes slotPools // their sealed password hashes
	byID   htab      // by ID
	byName htab      // by normalized username
	sets   roleSets
	lists  globalLists
	// Rare cases kept aside, by record (keepText, oddGlobal: by extra).
	oddText   map[uint32]string
	oddHash   map[uint32]string
	oddGlobal map[uint32][]domain.GlobalRole
	keepText  map[uint32]string
	times     oddTimes
	// staleNames: a user created again under another name is still found
	// by the name it had (normalized), as the model always did.
	staleNames map[string]uint32
}

// Time fields of users and their extras, for oddTimes.
const (
	fieldCreated uint8 = iota
	fieldLastFail
)

// ---------------------------------------------------------------- text

// uvarintAt reads a uvarint at the start of s (0, 0: none).
func uvarintAt(s string) (uint64, int) {
	var x uint64
	for i := 0; i < len(s) && i < 10; i++ {
		b := s[i]
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}

func cutField(s string) (field, rest string) {
	n, k := uvarintAt(s)
	return s[k : k+int(n)], s[k+int(n):]
}

func appendUvarint(b []byte, x uint64) []byte {
	for x >= 0x80 {
		b = append(b, byte(x)|0x80)
		x >>= 7
	}
	return append(b, byte(x))
}

// userText is a user's strings as the arena keeps them.
func userText(id, name, email string) []byte {
	b := make([]byte, 0, len(id)+len(name)+len(email)+6)
	for _, f := range [3]string{id, name, email} {
		b = appendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// textOf is a user's strings (userText), in the arena or aside.
func (us *userStore) textOf(r uint32, u *userRec) string {
	if u.flags&uOddText != 0 {
		return us.oddText[r]
	}
	p := us.text.ptr(u.text)
	n := 0
	for range 3 {
		var l, shift int
		for {
			b := *(*byte)(unsafe.Add(unsafe.Pointer(p), n))
			n++
			l |= int(b&0x7f) << shift
			if b < 0x80 {
				break
			}
			shift += 7
		}
		n += l
	}
	return unsafe.String(p, n)
}

func (us *userStore) id(r uint32) string {
	id, _ := cutField(us.textOf(r, us.recs.at(r)))
	return id
}

func (us *userStore) name(r uint32) string {
	_, rest := cutField(us.textOf(r, us.recs.at(r)))
	name, _ := cutField(rest)
	return name
}

func (us *userStore) email(r uint32) string {
	_, rest := cutField(us.textOf(r, us.recs.at(r)))
	_, rest = cutField(rest)
	email, _ := cutField(rest)
	return email
}

// setText stores a user's strings in record u.
func (us *userStore) setText(r uint32, u *userRec, id, name, email string) {
	if u.flags&uOddText != 0 {
		delete(us.oddText, r)
		u.flags &^= uOddText
	}
	b := userText(id, name, email)
	if h, ok := us.text.add(b); ok {
		u.text = h
		return
	}
	if us.oddText == nil {
		us.oddText = make(map[uint32]string)
	}
	u.text, u.flags, us.oddText[r] = 0, u.flags|uOddText, string(b)
}

// setHash stores a user's sealed password hash in record u, freeing the
// slot of the one before.
func (us *userStore) setHash(c *cow, r uint32, u *userRec, sealed string) {
	b := unsafe.Slice(unsafe.StringData(sealed), len(sealed))
	packed := false
	if raw, ok := packSealed(sealed); ok {
		b, packed = raw, true
	}
	us.setHashBytes(c, r, u, b, packed)
}

func (us *userStore) setHashBytes(c *cow, r uint32, u *userRec, b []byte, packed bool) {
	if u.phsPool != 0 {
		us.hashes.release(c, u.phsPool, u.phs)
	}
	if u.flags&uOddHash != 0 {
		delete(us.oddHash, r)
	}
	u.phs, u.phsPool = 0, 0
	u.flags &^= uPacked | uOddHash
	if packed {
		u.flags |= uPacked
	}
	if len(b) == 0 {
		return
	}
	if pool, slot, ok := us.hashes.add(c, b); ok {
		u.phsPool, u.phs = pool, slot
		return
	}
	if us.oddHash == nil {
		us.oddHash = make(map[uint32]string)
	}
	u.flags, us.oddHash[r] = u.flags|uOddHash, string(b)
}

// hashOf is user r's sealed password hash as stored (see uPacked).
func (us *userStore) hashOf(r uint32, u *userRec) string {
	switch {
	case u.flags&uOddHash != 0:
		return us.oddHash[r]
	case u.phsPool == 0:
		return ""
	}
	return us.hashes.str(u.phsPool, u.phs)
}

// ---------------------------------------------------------------- lookups

// find returns the record of the user with ID id.
func (us *userStore) find(id string) (uint32, bool) {
	return us.byID.get(hashString(id), func(r uint32) bool { return us.id(r) == id })
}

// findName returns the record that the normalized username norm names.
func (us *userStore) findName(norm string) (uint32, bool) {
	if r, ok := us.byName.get(hashString(norm), func(r uint32) bool { return normalizesTo(us.name(r), norm) }); ok {
		return r, true
	}
	r, ok := us.staleNames[norm]
	return r, ok
}

// normalizesTo reports whether domain.NormalizeUsername(name) == norm,
// without allocating (it lowers A-Z only, so lengths are kept).
func normalizesTo(name, norm string) bool {
	name = strings.Trim(name, " \t\r\n\v\f")
	if len(name) != len(norm) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != norm[i] {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------- state

// state is user r as the domain has it. Without withHash its
// PasswordHashSealed is empty: the request path has no use for it, and it is
// the one field that would allocate.
func (us *userStore) state(r uint32, withHash bool) domain.User {
	u := us.recs.at(r)
	id, rest := cutField(us.textOf(r, u))
	name, rest := cutField(rest)
	email, _ := cutField(rest)
	st := domain.User{
		ID: id, Username: name, Email: email,
		Tenants: us.sets.set(u.roles), Active: u.flags&uActive != 0, Unvouched: u.flags&uUnvouched != 0,
		CreatedAt: us.times.get(oddTimeKey{oddUserTime, fieldCreated, r}, u.created),
		Version:   uint64(u.version),
	}
	var x *userExtra
	if u.extra != 0 {
		x = us.extras.at(u.extra - 1)
		st.FailedLogins = int(x.failed)
		st.DeactivatedByTenantAdmin = x.byTenant
		st.LastFailedLoginAt = us.times.get(oddTimeKey{oddExtraTime, fieldLastFail, u.extra - 1}, x.lastFail)
	}
	switch {
	case u.flags&uRolesEmpty != 0:
		st.Roles = emptyRoles
	case u.flags&uRolesNil != 0:
	case x.global == globalOdd:
		st.Roles = us.oddGlobal[u.extra-1]
	default:
		st.Roles = us.lists.list(x.global)
	}
	if withHash {
		if st.PasswordHashSealed = us.hashOf(r, u); u.flags&uPacked != 0 {
			st.PasswordHashSealed = unpackSealed(st.PasswordHashSealed)
		}
	}
	return st
}

// emptyRoles is every user's empty list of global roles.
var emptyRoles = []domain.GlobalRole{}

// store writes st into record r, with seq; the strings and the sealed
// hash only if text (a creation or a new password), left as they were
// otherwise.
func (us *userStore) store(c *cow, r uint32, st domain.User, seq uint64, text bool) {
	u := us.recs.mut(c, r)
	if text {
		us.setText(r, u, st.ID, st.Username, st.Email)
		us.setHash(c, r, u, st.PasswordHashSealed)
	}
	u.seq, u.version = seq, uint32(st.Version)
	u.created = us.times.put(oddTimeKey{oddUserTime, fieldCreated, r}, st.CreatedAt)
	if st.Active {
		u.flags |= uActive
	} else {
		u.flags &^= uActive
	}
	if st.Unvouched {
		u.flags |= uUnvouched
	} else {
		u.flags &^= uUnvouched
	}
	if cur := us.sets.set(u.roles); mapPtr(cur) != mapPtr(st.Tenants) {
		old := u.roles
		u.roles = us.sets.acquire(st.Tenants)
		us.sets.release(old)
	}
	if u.extra == 0 && (st.FailedLogins != 0 || !st.LastFailedLoginAt.IsZero() || len(st.Roles) > 0 || st.DeactivatedByTenantAdmin) {
		u.extra = us.extras.alloc(c) + 1
	}
	us.storeGlobal(c, u, st.Roles)
	if u.extra != 0 {
		x := us.extras.mut(c, u.extra-1)
		x.failed = uint32(st.FailedLogins)
		x.byTenant = st.DeactivatedByTenantAdmin
		x.lastFail = us.times.put(oddTimeKey{oddExtraTime, fieldLastFail, u.extra - 1}, st.LastFailedLoginAt)
	}
}

// storeGlobal stores the global roles: in the flags when there are none,
// else in the extra (which the caller has made).
func (us *userStore) storeGlobal(c *cow, u *userRec, roles []domain.GlobalRole) {
	if u.extra != 0 && len(roles) > 0 {
		x := us.extras.at(u.extra - 1)
		cur := us.lists.list(x.global)
		if x.global == globalOdd {
			cur = us.oddGlobal[u.extra-1]
		}
		if x.global != 0 && unsafe.SliceData(cur) == unsafe.SliceData(roles) && len(cur) == len(roles) {
			return // unchanged (EvolveUser keeps the slice)
		}
	}
	if u.extra != 0 && us.extras.at(u.extra-1).global == globalOdd {
		delete(us.oddGlobal, u.extra-1)
	}
	u.flags &^= uRolesNil | uRolesEmpty
	switch {
	case roles == nil:
		u.flags |= uRolesNil
		return
	case len(roles) == 0:
		u.flags |= uRolesEmpty
		return
	}
	x := us.extras.mut(c, u.extra-1)
	if id, ok := us.lists.id(roles); ok {
		x.global = id
		return
	}
	if us.oddGlobal == nil {
		us.oddGlobal = make(map[uint32][]domain.GlobalRole)
	}
	x.global, us.oddGlobal[u.extra-1] = globalOdd, roles
}

// create makes the user of a user.created event (replacing a user of the
// same ID, as the model always has).
func (us *userStore) create(c *cow, seq uint64, e domain.UserCreated) {
	st := domain.EvolveUser(domain.User{}, e)
	norm := domain.NormalizeUsername(e.Username)
	r, found := us.find(e.UserID)
	if found {
		if old := domain.NormalizeUsername(us.name(r)); old != norm {
			if f, ok := us.findName(old); ok && f == r {
				if us.staleNames == nil {
					us.staleNames = make(map[string]uint32)
				}
				us.staleNames[old] = r
			}
		}
		u := us.recs.mut(c, r)
		if u.extra != 0 {
			x := us.extras.mut(c, u.extra-1)
			if x.keepKind == keepText {
				delete(us.keepText, u.extra-1)
			}
			if x.global == globalOdd {
				delete(us.oddGlobal, u.extra-1)
			}
			*x = userExtra{}
		}
	} else {
		r = us.recs.alloc(c)
	}
	us.store(c, r, st, seq, true)
	if !found {
		id := us.id(r)
		us.byID.put(hashString(id), r, func(o uint32) bool { return us.id(o) == id })
	}
	us.putName(c, norm, r)
}

// changeProfile stores user r's new state st after a user.profile_changed
// at seq: its username and e-mail in the arena (the sealed hash stays as
// it is), and byName finds it by the new name and no longer by the old,
// which nobody else can hold (a name once reserved stays reserved).
func (us *userStore) changeProfile(c *cow, r uint32, st domain.User, seq uint64) {
	old := domain.NormalizeUsername(us.name(r))
	norm := domain.NormalizeUsername(st.Username)
	if old != norm {
		if f, ok := us.byName.get(hashString(old), func(o uint32) bool { return normalizesTo(us.name(o), old) }); ok && f == r {
			us.byName.del(hashString(old), r)
			us.recs.mut(c, r).flags &^= uNamed
		}
		if f, ok := us.staleNames[old]; ok && f == r {
			delete(us.staleNames, old)
		}
	}
	us.store(c, r, st, seq, false)
	us.setText(r, us.recs.mut(c, r), st.ID, st.Username, st.Email)
	if old != norm || us.recs.at(r).flags&uNamed != 0 {
		us.putName(c, norm, r)
	}
}

// renameUser folds a user.profile_changed into user id's state.
func (m *Model) renameUser(id string, seq uint64, e domain.UserProfileChanged) (uint32, bool) {
	r, ok := m.users.find(id)
	if !ok {
		return 0, false
	}
	st := domain.EvolveUser(m.users.state(r, false), e)
	m.users.changeProfile(&m.cow, r, st, seq)
	return r, true
}

// putName makes the normalized username norm find record r (the last user
// created under a name has it), and marks who has it (uNamed), so that a
// restore gives it to the same user.
func (us *userStore) putName(c *cow, norm string, r uint32) {
	h := hashString(norm)
	is := func(o uint32) bool { return normalizesTo(us.name(o), norm) }
	if old, ok := us.byName.get(h, is); ok && old != r {
		us.recs.mut(c, old).flags &^= uNamed
	}
	us.byName.put(h, r, is)
	us.recs.mut(c, r).flags |= uNamed
	delete(us.staleNames, norm)
}

// cutOff records a cut-off at seq that keeps session keep: a password change
// (keep: the session that changed it, if still live: Model.keepIfLive) or a
// deactivation (keep ""). A later cut-off covers every session an earlier
// one did, so only the last is kept.
func (us *userStore) cutOff(c *cow, r uint32, seq uint64, keep string) {
	u := us.recs.mut(c, r)
	if u.extra == 0 {
		u.extra = us.extras.alloc(c) + 1
	}
	xi := u.extra - 1
	x := us.extras.mut(c, xi)
	x.cutoff = seq
	if x.keepKind == keepText {
		delete(us.keepText, xi)
	}
	x.keep, x.keepKind = [16]byte{}, keepNone
	switch id, ok := parseID(keep, sessionPrefix); {
	case keep == "":
	case ok:
		x.keep, x.keepKind = id, keepID
	default:
		if us.keepText == nil {
			us.keepText = make(map[uint32]string)
		}
		x.keepKind, us.keepText[xi] = keepText, keep
	}
}

// cuts reports whether user r's last cut-off (a password change or a
// deactivation) revoked the session that started at startSeq with the given
// ID (id: parsed, if canonical).
func (us *userStore) cuts(r uint32, startSeq uint64, sessionID string, id *[16]byte, canonical bool) bool {
	u := us.recs.at(r)
	if u.extra == 0 {
		return false
	}
	x := us.extras.at(u.extra - 1)
	if startSeq > x.cutoff {
		return false
	}
	switch x.keepKind {
	case keepID:
		return !canonical || x.keep != *id
	case keepText:
		return sessionID != us.keepText[u.extra-1]
	}
	return sessionID != ""
}

// keep is the kept session of user r's last cut-off, and its sequence.
func (us *userStore) keep(r uint32) (uint64, string) {
	u := us.recs.at(r)
	if u.extra == 0 {
		return 0, ""
	}
	x := us.extras.at(u.extra - 1)
	switch x.keepKind {
	case keepID:
		return x.cutoff, formatID(sessionPrefix, x.keep)
	case keepText:
		return x.cutoff, us.keepText[u.extra-1]
	}
	return x.cutoff, ""
}

// ---------------------------------------------------------------- shared role sets

// roleSets holds each distinct set of tenant roles once, as the domain's
// map: users of one organization share theirs. The maps are never written
// after they are made (domain.EvolveUser copies before it changes one).
// Set 0 is the nil map.
type roleSets struct {
	sets []roleSet
	ids  map[string]uint32 // by roleKey
	free []uint32
}

type roleSet struct {
	m    map[string]domain.Role
	key  string
	refs uint32
}

// roleKey is a set's identity: its entries, sorted.
func roleKey(m map[string]domain.Role) string {
	tenants := make([]string, 0, len(m))
	n := 1
	for t, r := range m {
		tenants = append(tenants, t)
		n += len(t) + len(r) + 2
	}
	slices.Sort(tenants)
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('{') // not nil
	for _, t := range tenants {
		b.WriteString(t)
		b.WriteByte(0)
		b.WriteString(string(m[t]))
		b.WriteByte(0)
	}
	return b.String()
}

// acquire returns the number of the set equal to m, holding it once more.
// m itself becomes the shared set when there is none yet.
func (rs *roleSets) acquire(m map[string]domain.Role) uint32 {
	if m == nil {
		return 0
	}
	key := roleKey(m)
	if i, ok := rs.ids[key]; ok {
		rs.sets[i].refs++
		return i
	}
	if rs.ids == nil {
		rs.ids = make(map[string]uint32)
	}
	if len(rs.sets) == 0 {
		rs.sets = append(rs.sets, roleSet{}) // 0: nil
	}
	set := roleSet{m: m, key: key, refs: 1}
	var i uint32
	if n := len(rs.free); n > 0 {
		i, rs.free = rs.free[n-1], rs.free[:n-1]
		rs.sets[i] = set
	} else {
		i = uint32(len(rs.sets))
		rs.sets = append(rs.sets, set)
	}
	rs.ids[key] = i
	return i
}

func (rs *roleSets) set(i uint32) map[string]domain.Role {
	if int(i) >= len(rs.sets) {
		return nil
	}
	return rs.sets[i].m
}

// release holds set i once less.
func (rs *roleSets) release(i uint32) {
	if i == 0 {
		return
	}
	s := &rs.sets[i]
	if s.refs--; s.refs == 0 {
		delete(rs.ids, s.key)
		*s = roleSet{}
		rs.free = append(rs.free, i)
	}
}

// globalLists holds each distinct list of global roles once ([], [admin]):
// 0 is nil.
type globalLists struct {
	lists [][]domain.GlobalRole
	ids   map[string]uint16
}

func (g *globalLists) id(l []domain.GlobalRole) (uint16, bool) {
	if l == nil {
		return 0, true
	}
	var b strings.Builder
	b.WriteByte('[')
	for _, r := range l {
		b.WriteString(string(r))
		b.WriteByte(0)
	}
	key := b.String()
	if i, ok := g.ids[key]; ok {
		return i, true
	}
	if len(g.lists) >= globalOdd {
		return 0, false
	}
	if g.ids == nil {
		g.ids = make(map[string]uint16)
	}
	if len(g.lists) == 0 {
		g.lists = append(g.lists, nil)
	}
	i := uint16(len(g.lists))
	g.lists = append(g.lists, slices.Clip(slices.Clone(l)))
	g.ids[key] = i
	return i, true
}

func (g *globalLists) list(i uint16) []domain.GlobalRole {
	if int(i) >= len(g.lists) {
		return nil
	}
	return g.lists[i]
}
