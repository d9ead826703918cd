package projections

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// The access history (issue 16): who could do what, in which tenant, at any
// moment. Each bound is a ref, a journal entry (journal.go), so that its
// time, type and actor come from the journal.
//
// It holds what the read models beside it do not: per user (by user
// record, as users are never removed) the ref of its creation, in
// refSeq (some 2 bytes a user); per API key (by key number, keyEntry.hist
// - 1) its entry and the ref of its creation; per tenant, the users that
// ever held a role there and the keys that list it, as lists of varint
// deltas (idList, a byte or two an entry); beside them, the platform admins
// and the platform-wide keys. A user's roles and activity, a key's owner,
// secret, name, tenants, permissions and expiry are the read models' own
// (userStore, keyModel) for as long as they have not changed: what a
// change ends is kept only once there is one, in side tables — per user
// with a change, the tenant roles it had before the first one and its
// list of changes (role granted or revoked, deactivated, activated,
// password changed), newest first; per key revoked, rotated or given
// another owner, the revocation, its owners and its rotated-out secrets.
// A role's interval runs from its grant (or the creation) to the next
// change of that tenant's role; activity from the creation to a
// deactivation, and from an activation to the next.
//
// What is changed after it is written — the side tables' maps — is copied
// for a snapshot (Freeze); the rest only grows, and a snapshot reads what
// was there when it froze.

// userSide is what a user's history holds once it has a change.
type userSide struct {
	log  uint32 // the newest change: changes record + 1
	init uint32 // the tenant roles before the first change: accessModel.sets
}

// userChange is one change of a user's access, in its user's list.
type userChange struct {
	ref  uint32
	prev uint32 // the next older change + 1 (0: none)
	arg  uint32 // grant, revoke: the tenant (journal.tenants); password: kept session ID, kept + 1 (0: none)
	role uint16 // grant: the role (accessModel.roles)
	kind uint8
}

// Kinds of change.
const (
	chGrant uint8 = iota + 1
	chRevoke
	chDeactivate
	chActivate
	chPassword
)

// keySide is what a key's history holds once it was revoked, rotated or
// given another owner, or when its owner was not a user at its creation.
type keySide struct {
	revoked uint32 // ref of the apikey.revoked (0: not revoked)
	owner   uint32 // the newest owner: owners record + 1 (0: keyEntry.ownerRec, since the creation)
	secret  uint32 // the newest rotated-out secret: secrets record + 1 (0: none)
	since   uint32 // ref of the event that made the current secret the key's (0: the creation)
}

// keyOwner: from ref on, user owns the key.
type keyOwner struct {
	ref  uint32
	prev uint32 // the owner before: owners record + 1
	user uint32 // user record + 1 (0: no such user: accessModel.oddOwners)
}

// keySecret is a secret a rotation ended.
type keySecret struct {
	hash  [32]byte // its SHA-256 (not 64 hex digits: accessModel.oddSecrets)
	since uint32   // ref of the event that made it the key's secret
	prev  uint32   // the one before it + 1
}

// tenantRoleNum is a tenant role as numbers.
type tenantRoleNum struct {
	tenant uint32 // journal.tenants
	role   uint16 // accessModel.roles
}

// roleSetTable holds each distinct set of tenant roles users had before
// their first change once: a list of tenantRoleNum by tenant number. Set 0
// is empty.
type roleSetTable struct {
	ids   map[string]uint32
	off   []uint32 // set i is pairs[off[i]:off[i+1]]
	pairs []tenantRoleNum
	key   []byte
}

// accessModel is the access history. Its zero value is ready to use; it
// lives inside Model and is guarded by Model.mu.
type accessModel struct {
	users    refSeq              // by user record: the ref of its user.created
	userSide map[uint32]userSide // by user record: users with a change
	changes  table[userChange]
	keys     []*keyEntry        // by key number
	keyRefs  refSeq             // by key number: the ref of its apikey.created
	keySide  map[uint32]keySide // by key number
	owners   table[keyOwner]
	secrets  table[keySecret]
	sets     roleSetTable
	roles    strTable // role names
	admins   []uint32 // platform admins: user records
	// By tenant number: the users (records) that ever held a role there,
	// and the keys (numbers) that list it (repeats possible: a user or key
	// created again).
	tenantUsers []idList
	tenantKeys  []idList
	wideKeys    []uint32 // platform-wide keys (AllTenants)
	kept        []string // kept session IDs of password changes
	oddOwners   map[uint32]string
	oddSecrets  map[uint32]string
	keyIDs      []string        // the keys' IDs, by number: in a snapshot's view, and while restoring (relink)
	pairs       []tenantRoleNum // scratch
}

// ---------------------------------------------------------------- refSeq

// refSeq is a list of refs that mostly grow with the index (the creations
// of users and keys, numbered in the order they came): each is kept as
// its difference from the one before, in 16 bits, with the first of every
// 64 whole — about 2 bytes a ref. A difference that does not fit, or goes
// down, is kept aside (esc); a ref set again (a user or key created again)
// is kept aside too (over), and wins.
type refSeq struct {
	base  []uint32 // per 64 refs: the first
	delta []uint16 // per ref: it minus the one before (refEsc: in esc)
	esc   map[uint32]uint32
	over  map[uint32]uint32
	prev  uint32
}

const refEsc = 1<<16 - 1

func (s *refSeq) len() uint32 { return uint32(len(s.delta)) }

// add appends ref v.
func (s *refSeq) add(v uint32) {
	i := uint32(len(s.delta))
	switch d := v - s.prev; {
	case i&63 == 0:
		s.base = append(s.base, v)
		s.delta = append(s.delta, 0)
	case v < s.prev || d >= refEsc:
		if s.esc == nil {
			s.esc = make(map[uint32]uint32)
		}
		s.esc[i] = v
		s.delta = append(s.delta, refEsc)
	default:
		s.delta = append(s.delta, uint16(d))
	}
	s.prev = v
}

// set makes ref i v.
func (s *refSeq) set(i, v uint32) {
	if s.over == nil {
		s.over = make(map[uint32]uint32)
	}
	s.over[i] = v
}

// at is ref i (< len).
func (s *refSeq) at(i uint32) uint32 {
	if v, ok := s.over[i]; ok {
		return v
	}
	v := s.base[i>>6]
	for k := i&^63 + 1; k <= i; k++ {
		if d := s.delta[k]; d == refEsc {
			v = s.esc[k]
		} else {
			v += uint32(d)
		}
	}
	return v
}

// view is the list as it is now, for a snapshot (the maps copied).
func (s *refSeq) view() refSeq {
	return refSeq{base: s.base[:len(s.base):len(s.base)], delta: s.delta[:len(s.delta):len(s.delta)],
		esc: cloneSmall(s.esc), over: cloneSmall(s.over), prev: s.prev}
}

// ---------------------------------------------------------------- idList

// idList is a list of numbers as varint differences (zigzag) from the one
// before: a byte or two each for lists that mostly grow.
type idList struct {
	b    []byte
	last uint32
	n    uint32
}

func (l *idList) add(v uint32) {
	d := int64(v) - int64(l.last)
	l.b = binary.AppendUvarint(l.b, uint64(d<<1)^uint64(d>>63))
	l.last = v
	l.n++
}

// appendTo appends the list's numbers to out.
func (l *idList) appendTo(out []uint32) []uint32 {
	out = slices.Grow(out, int(l.n))
	b, v := l.b, int64(0)
	for len(b) > 0 {
		u, k := binary.Uvarint(b)
		if k <= 0 {
			break // not written by add
		}
		b = b[k:]
		v += int64(u>>1) ^ -int64(u&1)
		out = append(out, uint32(v))
	}
	return out
}

func listOf(lists []idList, i uint32) *idList {
	if int(i) < len(lists) {
		return &lists[i]
	}
	return nil
}

// addTo adds v to list i of lists, made long enough.
func addTo(lists *[]idList, i, v uint32) {
	for int(i) >= len(*lists) {
		*lists = append(*lists, idList{})
	}
	(*lists)[i].add(v)
}

// ---------------------------------------------------------------- role sets

func (rs *roleSetTable) intern(pairs []tenantRoleNum) uint32 {
	if len(pairs) == 0 {
		return 0
	}
	rs.key = rs.key[:0]
	for _, p := range pairs {
		rs.key = binary.LittleEndian.AppendUint32(rs.key, p.tenant)
		rs.key = binary.LittleEndian.AppendUint16(rs.key, p.role)
	}
	if id, ok := rs.ids[string(rs.key)]; ok {
		return id
	}
	if rs.ids == nil {
		rs.ids = make(map[string]uint32)
	}
	if len(rs.off) == 0 {
		rs.off = []uint32{0, 0} // set 0: empty
	}
	id := uint32(len(rs.off) - 1)
	rs.pairs = append(rs.pairs, pairs...)
	rs.off = append(rs.off, uint32(len(rs.pairs)))
	rs.ids[string(rs.key)] = id
	return id
}

func (rs *roleSetTable) set(i uint32) []tenantRoleNum {
	if i == 0 || int(i) >= len(rs.off)-1 {
		return nil
	}
	return rs.pairs[rs.off[i]:rs.off[i+1]]
}

func (rs *roleSetTable) role(i, tenant uint32) (uint16, bool) {
	for _, p := range rs.set(i) {
		if p.tenant == tenant {
			return p.role, true
		}
	}
	return 0, false
}

// ---------------------------------------------------------------- applying

// historyBefore records what ev changes in the access history that only
// the state before it tells: the tenant roles a user had before its first
// change; the secret a rotation ends, and the owner before the first owner
// change. ref is ev's journal entry. Called by Apply before it applies ev.
func (m *Model) historyBefore(ref uint32, env *events.Envelope, ev domain.Event) {
	if ref == 0 {
		return
	}
	id := env.AggregateID
	switch e := ev.(type) {
	case domain.APIKeyRotated:
		if k := m.keys.byID[env.AggregateID]; k != nil && k.hist != 0 {
			m.keyRotated(ref, k, e)
		}
		return
	case domain.UserPasswordChanged:
		id = e.UserID // as Apply finds the user
	case domain.UserRoleGranted, domain.UserRoleRevoked, domain.UserDeactivated, domain.UserActivated:
	default:
		return
	}
	if r, ok := m.users.find(id); ok {
		m.sideOf(r)
	}
}

// sideOf is user record r's side record, made with the tenant roles the
// user has now if it has none yet (before its first change: the roles it
// was created with).
func (m *Model) sideOf(r uint32) (userSide, bool) {
	a := &m.access
	if r >= a.users.len() || a.users.at(r) == 0 {
		return userSide{}, false
	}
	if s, ok := a.userSide[r]; ok {
		return s, true
	}
	pairs := a.pairs[:0]
	for t, role := range m.users.sets.set(m.users.recs.at(r).roles) {
		if t == "" {
			continue
		}
		rn := a.roles.id(string(role))
		if rn > 1<<16-1 {
			rn = 0 // more than 65,535 role names: recorded as ""
		}
		pairs = append(pairs, tenantRoleNum{tenant: m.journal.tenants.id(t), role: uint16(rn)})
	}
	slices.SortFunc(pairs, func(x, y tenantRoleNum) int { return cmp.Compare(x.tenant, y.tenant) })
	a.pairs = pairs
	s := userSide{init: a.sets.intern(pairs)}
	if a.userSide == nil {
		a.userSide = make(map[uint32]userSide)
	}
	a.userSide[r] = s
	return s, true
}

// historyAfter records the rest of what ev changes in the access history,
// once Apply has applied it: hit is what Apply found (the user, the key).
func (m *Model) historyAfter(ref uint32, env *events.Envelope, ev domain.Event, hit *touched) {
	switch e := ev.(type) {
	case domain.UserCreated:
		if r, ok := m.users.find(e.UserID); ok {
			m.userCreated(ref, r, e)
		}
	case domain.UserRoleGranted:
		role := m.access.roles.id(string(e.Role))
		if role > 1<<16-1 {
			role = 0 // more than 65,535 role names: recorded as ""
		}
		m.userChanged(hit.user, userChange{ref: ref, kind: chGrant, arg: m.journal.tenants.id(e.Tenant), role: uint16(role)})
	case domain.UserRoleRevoked:
		m.userChanged(hit.user, userChange{ref: ref, kind: chRevoke, arg: m.journal.tenants.id(e.Tenant)})
	case domain.UserDeactivated:
		m.userChanged(hit.user, userChange{ref: ref, kind: chDeactivate})
	case domain.UserActivated:
		u := hit.user
		if r, ok := m.users.find(env.AggregateID); ok && u == 0 {
			u = r + 1
		}
		m.userChanged(u, userChange{ref: ref, kind: chActivate})
	case domain.UserPasswordChanged:
		ch := userChange{ref: ref, kind: chPassword}
		if e.KeptSessionID != "" && hit.user != 0 {
			m.access.kept = append(m.access.kept, strings.Clone(e.KeptSessionID))
			ch.arg = uint32(len(m.access.kept))
		}
		m.userChanged(hit.user, ch)
	case domain.APIKeyCreated:
		if hit.key != nil {
			m.keyCreated(ref, hit.key, e)
		}
	case domain.APIKeyRevoked:
		if k := hit.key; k != nil && k.hist != 0 {
			a := &m.access
			if s := a.keySide[k.hist-1]; s.revoked == 0 {
				s.revoked = ref
				a.setKeySide(k.hist-1, s)
			}
		}
	}
}

func (m *Model) userCreated(ref, r uint32, e domain.UserCreated) {
	a := &m.access
	for a.users.len() < r {
		a.users.add(0) // no such record: cannot be, but keep the numbers
	}
	again := r < a.users.len() // created again: a new life
	if again {
		a.users.set(r, ref)
		delete(a.userSide, r)
	} else {
		a.users.add(ref)
	}
	if slices.Contains(e.Roles, domain.GlobalAdmin) && (!again || !slices.Contains(a.admins, r)) {
		a.admins = append(a.admins, r)
	}
	for i, tr := range e.Tenants {
		if tr.Tenant != "" && !slices.ContainsFunc(e.Tenants[:i], func(p domain.TenantRole) bool { return p.Tenant == tr.Tenant }) {
			addTo(&a.tenantUsers, m.journal.tenants.id(tr.Tenant), r)
		}
	}
}

// userChanged adds a change to the history of user record u - 1 (0: none).
func (m *Model) userChanged(u uint32, ch userChange) {
	a, c := &m.access, &m.cow
	if u == 0 {
		return
	}
	r := u - 1
	side, ok := m.sideOf(r) // made before Apply (historyBefore)
	if !ok {
		return
	}
	if ch.kind == chGrant && !a.heldEver(side, ch.arg) {
		addTo(&a.tenantUsers, ch.arg, r)
	}
	ch.prev = side.log
	i := a.changes.alloc(c)
	*a.changes.mut(c, i) = ch
	side.log = i + 1
	a.userSide[r] = side
}

// heldEver reports whether the user of side s held a role in tenant at
// some time.
func (a *accessModel) heldEver(s userSide, tenant uint32) bool {
	if _, ok := a.sets.role(s.init, tenant); ok {
		return true
	}
	for i := s.log; i != 0; {
		ch := a.changes.at(i - 1)
		if ch.kind == chGrant && ch.arg == tenant {
			return true
		}
		i = ch.prev
	}
	return false
}

func (a *accessModel) setKeySide(ki uint32, s keySide) {
	if a.keySide == nil {
		a.keySide = make(map[uint32]keySide)
	}
	a.keySide[ki] = s
}

func (m *Model) keyCreated(ref uint32, k *keyEntry, e domain.APIKeyCreated) {
	a, c := &m.access, &m.cow
	again := k.hist != 0
	if again {
		a.keyRefs.set(k.hist-1, ref)
		delete(a.keySide, k.hist-1)
	} else {
		k.hist = uint32(len(a.keys)) + 1
		a.keys = append(a.keys, k)
		a.keyRefs.add(ref)
	}
	ki := k.hist - 1
	if k.ownerRec == 0 { // its owner is no user: kept aside, for good
		o := a.owners.alloc(c)
		*a.owners.mut(c, o) = keyOwner{ref: ref}
		if a.oddOwners == nil {
			a.oddOwners = make(map[uint32]string)
		}
		a.oddOwners[o] = strings.Clone(e.OwnerID)
		a.setKeySide(ki, keySide{owner: o + 1})
	}
	for i, t := range e.Tenants {
		switch {
		case t == "" || slices.Contains(e.Tenants[:i], t):
		case t == domain.AllTenants:
			if !again || !slices.Contains(a.wideKeys, ki) {
				a.wideKeys = append(a.wideKeys, ki)
			}
		default:
			addTo(&a.tenantKeys, m.journal.tenants.id(t), ki)
		}
	}
}

// keyRotated records a rotation, before it is applied to k: the secret it
// ends, and the owner it names.
func (m *Model) keyRotated(ref uint32, k *keyEntry, e domain.APIKeyRotated) {
	a, c := &m.access, &m.cow
	ki := k.hist - 1
	s := a.keySide[ki]
	created := a.keyRefs.at(ki)
	i := a.secrets.alloc(c)
	sec := keySecret{since: cmp.Or(s.since, created), prev: s.secret}
	if k.flags&kHashed != 0 {
		sec.hash = k.hash
	} else {
		if a.oddSecrets == nil {
			a.oddSecrets = make(map[uint32]string)
		}
		a.oddSecrets[i] = m.keys.odd[k]
	}
	*a.secrets.mut(c, i) = sec
	s.secret, s.since = i+1, ref
	if e.OwnerID != "" { // the same owner again too: the owner from then is as the stream has it
		if s.owner == 0 { // the owner since the creation, first
			o := a.owners.alloc(c)
			*a.owners.mut(c, o) = keyOwner{ref: created, user: k.ownerRec}
			s.owner = o + 1
		}
		o := a.owners.alloc(c)
		own := keyOwner{ref: ref, prev: s.owner}
		if r, ok := m.users.find(e.OwnerID); ok {
			own.user = r + 1
		} else {
			if a.oddOwners == nil {
				a.oddOwners = make(map[uint32]string)
			}
			a.oddOwners[o] = strings.Clone(e.OwnerID)
		}
		*a.owners.mut(c, o) = own
		s.owner = o + 1
	}
	a.setKeySide(ki, s)
}

// ---------------------------------------------------------------- answering

// userAt is a user at a moment.
type userAt struct {
	exists, active, admin bool
	created               uint32
	changed               bool // side holds its changes
	side                  userSide
}

// platformAdmin reports whether user record r has the global admin role
// (given at creation only).
func (m *Model) platformAdmin(r uint32) bool {
	us := &m.users
	u := us.recs.at(r)
	if u.flags&(uRolesNil|uRolesEmpty) != 0 || u.extra == 0 {
		return false
	}
	x := us.extras.at(u.extra - 1)
	if x.global == globalOdd {
		return slices.Contains(us.oddGlobal[u.extra-1], domain.GlobalAdmin)
	}
	return slices.Contains(us.lists.list(x.global), domain.GlobalAdmin)
}

func (q *hq) userAt(r uint32, at moment) userAt {
	m := q.m
	a := &m.access
	if r >= a.users.len() {
		return userAt{}
	}
	created := a.users.at(r)
	if !q.by(created, at) {
		return userAt{}
	}
	u := userAt{exists: true, active: true, admin: m.platformAdmin(r), created: created}
	u.side, u.changed = a.userSide[r]
	for i := u.side.log; i != 0; {
		ch := a.changes.at(i - 1)
		if (ch.kind == chDeactivate || ch.kind == chActivate) && q.by(ch.ref, at) {
			u.active = ch.kind == chActivate
			break
		}
		i = ch.prev
	}
	return u
}

// roleIn is the role user r (existing at the moment: u) held in tenant
// (number tn; name) at the moment, and the ref of the event that granted
// it. The newest change of that tenant's role that had taken effect
// decides; without one, the roles the user had before its first change;
// without a change, the roles it has.
func (q *hq) roleIn(r, tn uint32, tenant string, at moment, u userAt) (domain.Role, uint32, bool) {
	a := &q.m.access
	if !u.changed {
		role, ok := q.m.users.sets.set(q.m.users.recs.at(r).roles)[tenant]
		return role, u.created, ok && tenant != ""
	}
	for i := u.side.log; i != 0; {
		ch := a.changes.at(i - 1)
		if ch.arg == tn && (ch.kind == chGrant || ch.kind == chRevoke) && q.by(ch.ref, at) {
			return domain.Role(a.roles.str(uint32(ch.role))), ch.ref, ch.kind == chGrant
		}
		i = ch.prev
	}
	role, ok := a.sets.role(u.side.init, tn)
	return domain.Role(a.roles.str(uint32(role))), u.created, ok
}

// heldRole is one tenant role held at a moment.
type heldRole struct {
	tenant string
	tn     uint32
	role   domain.Role
	since  uint32
}

// rolesAt is every tenant role user r (existing at the moment: u) held
// then, by tenant name.
func (q *hq) rolesAt(r uint32, at moment, u userAt) []heldRole {
	m := q.m
	a, j := &m.access, &m.journal
	var out []heldRole
	if !u.changed {
		for t, role := range m.users.sets.set(m.users.recs.at(r).roles) {
			if t != "" {
				out = append(out, heldRole{tenant: t, tn: j.tenants.ids[t], role: role, since: u.created})
			}
		}
	} else {
		var decided []uint32
		for i := u.side.log; i != 0; {
			ch := a.changes.at(i - 1)
			i = ch.prev
			if (ch.kind != chGrant && ch.kind != chRevoke) || slices.Contains(decided, ch.arg) || !q.by(ch.ref, at) {
				continue
			}
			decided = append(decided, ch.arg)
			if ch.kind == chGrant {
				out = append(out, heldRole{tenant: j.tenants.str(ch.arg), tn: ch.arg, role: domain.Role(a.roles.str(uint32(ch.role))), since: ch.ref})
			}
		}
		for _, p := range a.sets.set(u.side.init) {
			if !slices.Contains(decided, p.tenant) {
				out = append(out, heldRole{tenant: j.tenants.str(p.tenant), tn: p.tenant, role: domain.Role(a.roles.str(uint32(p.role))), since: u.created})
			}
		}
	}
	slices.SortFunc(out, func(x, y heldRole) int { return cmp.Compare(x.tenant, y.tenant) })
	return out
}

func (q *hq) roleGrant(tenant string, role domain.Role, since uint32) Grant {
	return Grant{Tenant: tenant, Permissions: role.Permissions(), Via: "role", Role: role, Since: q.ref(since)}
}

func (q *hq) adminGrant(tenant string, created uint32) Grant {
	return Grant{Tenant: tenant, Permissions: domain.SetOf(domain.AdminAll), Via: "platform_admin", Since: q.ref(created)}
}

// intersectPerms is what both sets grant, admin:* standing for every
// permission (as the request path has it: http/middleware.go).
func intersectPerms(a, b domain.PermissionSet) domain.PermissionSet {
	switch {
	case a.Has(domain.AdminAll):
		return b
	case b.Has(domain.AdminAll):
		return a
	}
	return a & b
}

// grants reports whether perms include perm ("": any permission).
func grants(perms domain.PermissionSet, perm domain.Permission) bool {
	if perm == "" {
		return perms != 0
	}
	return perms.Has(perm)
}

// keyOwnerAt is key ki's owner at the moment, and false if the key was not
// created yet, was revoked or had expired.
func (q *hq) keyOwnerAt(k *keyEntry, ki uint32, at moment) (keyOwner, bool) {
	a := &q.m.access
	created := a.keyRefs.at(ki)
	s := a.keySide[ki]
	if !q.by(created, at) || q.by(s.revoked, at) {
		return keyOwner{}, false
	}
	if exp := k.time(keyExpires); !exp.IsZero() && !at.t.Before(exp) {
		return keyOwner{}, false
	}
	if s.owner == 0 {
		return keyOwner{ref: created, user: k.ownerRec}, true
	}
	for i := s.owner; i != 0; {
		o := a.owners.at(i - 1)
		if q.by(o.ref, at) {
			return *o, true
		}
		i = o.prev
	}
	return keyOwner{}, false
}

// keyGrant is what key ki could do in one tenant (tn: its number, known:
// whether any event named it) at the moment: the key's permissions capped
// by its owner's there.
func (q *hq) keyGrant(k *keyEntry, ki uint32, tenant string, tn uint32, known bool, at moment) (Grant, bool) {
	o, ok := q.keyOwnerAt(k, ki, at)
	if !ok || o.user == 0 {
		return Grant{}, false
	}
	r := o.user - 1
	u := q.userAt(r, at)
	if !u.exists || !u.active {
		return Grant{}, false
	}
	var og Grant
	switch {
	case u.admin:
		og = q.adminGrant(tenant, u.created)
	case known:
		role, since, held := q.roleIn(r, tn, tenant, at, u)
		if !held {
			return Grant{}, false
		}
		og = q.roleGrant(tenant, role, since)
	default:
		return Grant{}, false
	}
	perms := intersectPerms(k.perms, og.Permissions)
	if perms == 0 {
		return Grant{}, false
	}
	return Grant{Tenant: tenant, Permissions: perms, Via: "api_key", Since: q.ref(o.ref), OwnerID: q.m.users.id(r), OwnerGrant: &og}, true
}

// keyLists reports whether k lists tenant (or is platform-wide).
func keyLists(k *keyEntry, tenant string) bool {
	for _, t := range k.tenants {
		if t == tenant || t == domain.AllTenants {
			return true
		}
	}
	return false
}

// TenantAccess returns every principal that held perm in tenant at the
// moment at (perm "": any access), with what and why: users through their
// tenant role, platform admins (Via "platform_admin"), API keys (their
// permissions capped by their owner's in the tenant at that moment). Each
// has one Grant, for tenant. Users come first, then API keys, each by ID.
// ErrBeforeHistory when at is older than the history kept; another error
// is one reading the journal file.
func (m *Model) TenantAccess(tenant string, perm domain.Permission, at time.Time) ([]Access, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, j := &m.access, &m.journal
	if m.beforeHistory(at) {
		return nil, ErrBeforeHistory
	}
	q, mo := m.question(), momentOf(at)
	tn, known := j.tenants.ids[tenant]
	known = known && tenant != ""
	var cands []uint32
	if l := listOf(a.tenantUsers, tn); known && l != nil {
		cands = l.appendTo(cands)
	}
	cands = append(cands, a.admins...)
	slices.Sort(cands)
	cands = slices.Compact(cands)
	var users []Access
	for _, r := range cands {
		u := q.userAt(r, mo)
		if !u.exists || !u.active {
			continue
		}
		var g Grant
		switch {
		case u.admin:
			g = q.adminGrant(tenant, u.created)
		case known:
			role, since, held := q.roleIn(r, tn, tenant, mo, u)
			if !held {
				continue
			}
			g = q.roleGrant(tenant, role, since)
		default:
			continue
		}
		if grants(g.Permissions, perm) {
			users = append(users, Access{Kind: PrincipalUser, ID: m.users.id(r), Name: m.users.name(r), Grants: []Grant{g}})
		}
	}
	slices.SortFunc(users, func(x, y Access) int { return cmp.Compare(x.ID, y.ID) })
	cands = cands[:0]
	if l := listOf(a.tenantKeys, tn); known && l != nil {
		cands = l.appendTo(cands)
	}
	cands = append(cands, a.wideKeys...)
	slices.Sort(cands)
	cands = slices.Compact(cands)
	var keys []Access
	for _, ki := range cands {
		k := a.keys[ki]
		if k == nil || k.hist != ki+1 || !keyLists(k, tenant) {
			continue
		}
		if g, ok := q.keyGrant(k, ki, tenant, tn, known, mo); ok && grants(g.Permissions, perm) {
			keys = append(keys, Access{Kind: PrincipalAPIKey, ID: k.id, Name: k.name, Grants: []Grant{g}})
		}
	}
	if q.err != nil {
		return nil, q.err
	}
	slices.SortFunc(keys, func(x, y Access) int { return cmp.Compare(x.ID, y.ID) })
	return append(users, keys...), nil
}

// UserAccess returns what user id could do in each tenant at the moment at
// (platform admins: one Grant with Tenant "*"), by tenant; no grants
// before its creation or while it was deactivated. False if no such user;
// ErrBeforeHistory when at is older than the history kept; another error
// is one reading the journal file.
func (m *Model) UserAccess(id string, at time.Time) (Access, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.users.find(id)
	if !ok {
		return Access{}, false, nil
	}
	if m.beforeHistory(at) {
		return Access{}, true, ErrBeforeHistory
	}
	acc := Access{Kind: PrincipalUser, ID: m.users.id(r), Name: m.users.name(r)}
	q, mo := m.question(), momentOf(at)
	u := q.userAt(r, mo)
	switch {
	case !u.exists || !u.active:
	case u.admin:
		acc.Grants = []Grant{q.adminGrant(domain.AllTenants, u.created)}
	default:
		for _, h := range q.rolesAt(r, mo, u) {
			acc.Grants = append(acc.Grants, q.roleGrant(h.tenant, h.role, h.since))
		}
	}
	if q.err != nil {
		return Access{}, true, q.err
	}
	return acc, true, nil
}

// KeyAccess returns what API key id could do in each tenant at the moment
// at, by tenant: for each tenant it lists, its permissions capped by its
// owner's there (a platform-wide key: one Grant per tenant where its owner
// held a role, or Tenant "*" for a platform-admin owner); no grants before
// its creation, once revoked or expired, or while its owner was unknown or
// deactivated. False if no such key; ErrBeforeHistory when at is older
// than the history kept; another error is one reading the journal file.
func (m *Model) KeyAccess(id string, at time.Time) (Access, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k := m.keys.byID[id]
	if k == nil {
		return Access{}, false, nil
	}
	j := &m.journal
	if m.beforeHistory(at) {
		return Access{}, true, ErrBeforeHistory
	}
	acc := Access{Kind: PrincipalAPIKey, ID: k.id, Name: k.name}
	if k.hist == 0 {
		return acc, true, nil
	}
	ki, q, mo := k.hist-1, m.question(), momentOf(at)
	for i, t := range k.tenants {
		if t == "" || slices.Contains(k.tenants[:i], t) {
			continue
		}
		if t != domain.AllTenants {
			tn, known := j.tenants.ids[t]
			if g, ok := q.keyGrant(k, ki, t, tn, known, mo); ok {
				acc.Grants = append(acc.Grants, g)
			}
			continue
		}
		// Platform-wide: wherever its owner could act.
		o, ok := q.keyOwnerAt(k, ki, mo)
		if !ok || o.user == 0 {
			continue
		}
		r := o.user - 1
		u := q.userAt(r, mo)
		if !u.exists || !u.active {
			continue
		}
		if u.admin {
			if g, ok := q.keyGrant(k, ki, domain.AllTenants, 0, false, mo); ok {
				acc.Grants = append(acc.Grants, g)
			}
			continue
		}
		for _, h := range q.rolesAt(r, mo, u) {
			if slices.Contains(k.tenants, h.tenant) {
				continue // listed as well: its own grant
			}
			if g, ok := q.keyGrant(k, ki, h.tenant, h.tn, true, mo); ok {
				acc.Grants = append(acc.Grants, g)
			}
		}
	}
	if q.err != nil {
		return Access{}, true, q.err
	}
	slices.SortFunc(acc.Grants, func(x, y Grant) int { return cmp.Compare(x.Tenant, y.Tenant) })
	return acc, true, nil
}

// UserHistory returns the life of user id (credential checks); false if no
// such user. The error is one reading the journal file.
func (m *Model) UserHistory(id string) (UserHistory, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.users.find(id)
	if !ok {
		return UserHistory{}, false, nil
	}
	a, q := &m.access, m.question()
	out := UserHistory{ID: m.users.id(r)}
	if r >= a.users.len() {
		return out, true, nil
	}
	out.Created, out.PlatformAdmin = q.ref(a.users.at(r)), m.platformAdmin(r)
	activity := false
	for i := a.userSide[r].log; i != 0; {
		ch := a.changes.at(i - 1)
		i = ch.prev
		switch ch.kind {
		case chDeactivate, chActivate:
			ref := q.ref(ch.ref)
			if ch.kind == chDeactivate {
				out.Deactivations = append(out.Deactivations, ref)
				if !activity {
					out.Deactivated = &ref
				}
			} else {
				out.Activations = append(out.Activations, ref)
			}
			activity = true
		case chPassword:
			pc := PasswordChange{Event: q.ref(ch.ref)}
			if ch.arg != 0 {
				pc.KeptSessionID = a.kept[ch.arg-1]
			}
			out.PasswordChanges = append(out.PasswordChanges, pc)
		}
	}
	if q.err != nil {
		return UserHistory{}, true, q.err
	}
	slices.Reverse(out.PasswordChanges)
	slices.Reverse(out.Deactivations)
	slices.Reverse(out.Activations)
	return out, true, nil
}

// KeyHistory returns the life of API key id (credential checks); false if
// no such key. The error is one reading the journal file.
func (m *Model) KeyHistory(id string) (KeyHistory, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k := m.keys.byID[id]
	if k == nil {
		return KeyHistory{}, false, nil
	}
	a, q := &m.access, m.question()
	out := KeyHistory{ID: k.id, Name: k.name, ExpiresAt: k.time(keyExpires)}
	if k.hist == 0 {
		return out, true, nil
	}
	ki := k.hist - 1
	created, s := a.keyRefs.at(ki), a.keySide[ki]
	out.Created = q.ref(created)
	if s.revoked != 0 {
		ref := q.ref(s.revoked)
		out.Revoked = &ref
	}
	for i := s.secret; i != 0; {
		sec := a.secrets.at(i - 1)
		hash, odd := a.oddSecrets[i-1]
		if !odd {
			hash = formatHash(&sec.hash)
		}
		out.Secrets = append(out.Secrets, KeySecret{Hash: hash, Since: q.ref(sec.since)})
		i = sec.prev
	}
	slices.Reverse(out.Secrets)
	out.Secrets = append(out.Secrets, KeySecret{Hash: m.keys.secretHash(k), Since: q.ref(cmp.Or(s.since, created))})
	if q.err != nil {
		return KeyHistory{}, true, q.err
	}
	return out, true, nil
}

// KeyHadSecret reports whether secretHash (hex SHA-256) is or was API key
// id's secret, from memory alone: the question to ask of many keys before
// KeyHistory, which reads the journal, is asked of the one.
func (m *Model) KeyHadSecret(id, secretHash string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k := m.keys.byID[id]
	if k == nil {
		return false
	}
	if m.keys.secretHash(k) == secretHash {
		return true
	}
	if k.hist == 0 {
		return false
	}
	a := &m.access
	for i := a.keySide[k.hist-1].secret; i != 0; {
		sec := a.secrets.at(i - 1)
		hash, odd := a.oddSecrets[i-1]
		if !odd {
			hash = formatHash(&sec.hash)
		}
		if hash == secretHash {
			return true
		}
		i = sec.prev
	}
	return false
}

// RoleAt returns the role user id held in tenant at the moment at, and the
// event that granted it ("" and false if none, or if the user did not
// exist or was not active then). It does not tell a moment older than the
// history kept: the caller checks HistoryStart first. The error is one
// reading the journal file.
func (m *Model) RoleAt(id, tenant string, at time.Time) (domain.Role, EventRef, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.users.find(id)
	tn, known := m.journal.tenants.ids[tenant]
	if !ok || !known || tenant == "" {
		return "", EventRef{}, false, nil
	}
	q, mo := m.question(), momentOf(at)
	u := q.userAt(r, mo)
	if !u.exists || !u.active {
		return "", EventRef{}, false, q.err
	}
	role, since, held := q.roleIn(r, tn, tenant, mo, u)
	if !held {
		return "", EventRef{}, false, q.err
	}
	ref := q.ref(since)
	if q.err != nil {
		return "", EventRef{}, false, q.err
	}
	return role, ref, true, nil
}

// view is the access history as it is now, for a snapshot: the tables'
// chunks shared (cow), the lists (which only grow) as they are, the maps
// Apply writes copied.
func (a *accessModel) view() accessModel {
	ids := make([]string, len(a.keys)) // Apply writes the keys' entries
	for i, k := range a.keys {
		if k != nil {
			ids[i] = k.id
		}
	}
	return accessModel{
		users: a.users.view(), userSide: cloneSmall(a.userSide), changes: a.changes.frozenCopy(),
		keys: a.keys[:len(a.keys):len(a.keys)], keyRefs: a.keyRefs.view(), keySide: cloneSmall(a.keySide),
		owners: a.owners.frozenCopy(), secrets: a.secrets.frozenCopy(),
		sets: roleSetTable{off: a.sets.off, pairs: a.sets.pairs}, roles: strTable{strs: a.roles.strs},
		admins: a.admins[:len(a.admins):len(a.admins)], tenantUsers: slices.Clone(a.tenantUsers), tenantKeys: slices.Clone(a.tenantKeys),
		wideKeys: a.wideKeys[:len(a.wideKeys):len(a.wideKeys)], kept: a.kept[:len(a.kept):len(a.kept)],
		oddOwners: cloneSmall(a.oddOwners), oddSecrets: cloneSmall(a.oddSecrets), keyIDs: ids,
	}
}

// ---------------------------------------------------------------- snapshots

// Lists in frALists.
const (
	listTenantUsers = iota
	listTenantKeys
	listAdmins
	listWideKeys
	listRoleSet
	listUserSides // user record, log, init
	listKeySides  // key number, revoked, owner, secret, since
)

// writeHeader writes the counts and small lists (in frHistory).
func (a *accessModel) writeHeader(fw *frameWriter) {
	for _, v := range []int{int(a.users.len()), int(a.changes.n), len(a.keys), int(a.owners.n), int(a.secrets.n),
		len(a.kept), len(a.tenantUsers), len(a.tenantKeys), max(len(a.sets.off)-1, 1)} {
		fw.uvarint(uint64(v))
	}
	fw.uvarint(uint64(len(a.roles.strs)))
	for _, r := range a.roles.strs {
		fw.str(r)
	}
	for _, m := range []map[uint32]string{a.oddOwners, a.oddSecrets} {
		fw.uvarint(uint64(len(m)))
		for i, s := range m {
			fw.uvarint(uint64(i))
			fw.str(s)
		}
	}
}

// writeRefs writes a refSeq in frames of kind: the first index, then each
// ref as its difference from the one before (zigzag), and for keys their
// IDs.
func writeRefs(fw *frameWriter, kind byte, s *refSeq, ids []string) {
	prev := int64(0)
	for i := range s.len() {
		if len(fw.buf) == 0 {
			fw.start(kind)
			fw.uvarint(uint64(i))
			prev = 0
		}
		if ids != nil {
			fw.str(ids[i])
		}
		v := int64(s.at(i))
		fw.varint(v - prev)
		prev = v
		if len(fw.buf) >= frameSize {
			fw.flush()
		}
	}
	fw.flush()
}

// writeFrames writes the records and the lists.
func (a *accessModel) writeFrames(fw *frameWriter) {
	writeRefs(fw, frAUsers, &a.users, nil)
	writeRecords(fw, frAChanges, &a.changes, func(fw *frameWriter, _ uint32, ch *userChange) {
		fw.uvarint(uint64(ch.ref))
		fw.uvarint(uint64(ch.prev))
		fw.uvarint(uint64(ch.arg))
		fw.uvarint(uint64(ch.role))
		fw.byte(ch.kind)
	})
	writeRefs(fw, frAKeys, &a.keyRefs, a.keyIDs)
	writeRecords(fw, frAOwners, &a.owners, func(fw *frameWriter, _ uint32, o *keyOwner) {
		fw.uvarint(uint64(o.ref))
		fw.uvarint(uint64(o.prev))
		fw.uvarint(uint64(o.user))
	})
	writeRecords(fw, frASecrets, &a.secrets, func(fw *frameWriter, _ uint32, s *keySecret) {
		fw.bytes(s.hash[:])
		fw.uvarint(uint64(s.since))
		fw.uvarint(uint64(s.prev))
	})
	fw.start(frALists)
	// A list in parts of at most 65,536 items (a role set: whole, even if
	// empty; sides: whole records).
	list := func(tag, index int, items []uint32) {
		for first := true; first || len(items) > 0; first = false {
			part := items[:min(len(items), 1<<16)]
			switch tag {
			case listRoleSet:
				part = items
			case listUserSides:
				part = items[:min(len(items), 3<<14)]
			case listKeySides:
				part = items[:min(len(items), 5<<13)]
			}
			if len(part) == 0 && tag != listRoleSet {
				return
			}
			items = items[len(part):]
			fw.uvarint(uint64(tag))
			fw.uvarint(uint64(index))
			fw.uvarint(uint64(len(part)))
			for _, v := range part {
				fw.uvarint(uint64(v))
			}
			fw.flushIfFull(frALists)
		}
	}
	var items []uint32
	for t := range a.tenantUsers {
		items = a.tenantUsers[t].appendTo(items[:0])
		list(listTenantUsers, t, items)
	}
	for t := range a.tenantKeys {
		items = a.tenantKeys[t].appendTo(items[:0])
		list(listTenantKeys, t, items)
	}
	list(listAdmins, 0, a.admins)
	list(listWideKeys, 0, a.wideKeys)
	for i := 1; i < len(a.sets.off)-1; i++ {
		set := a.sets.set(uint32(i))
		items = items[:0]
		for _, p := range set {
			items = append(items, p.tenant, uint32(p.role))
		}
		list(listRoleSet, i, items)
	}
	items = items[:0]
	for r, s := range a.userSide {
		items = append(items, r, s.log, s.init)
	}
	list(listUserSides, 0, items)
	items = items[:0]
	for ki, s := range a.keySide {
		items = append(items, ki, s.revoked, s.owner, s.secret, s.since)
	}
	list(listKeySides, 0, items)
	fw.flush()
	fw.strings(frAKept, a.kept)
}

// readHeader reads what writeHeader wrote.
func (a *accessModel) readHeader(d *dec, b *builder) error {
	var n [9]uint32
	for i := range n {
		n[i] = d.u32(1 << 31)
	}
	if d.err != nil {
		return d.err
	}
	if n[0] > b.users.recs.n {
		return errors.New("access history of more users than there are")
	}
	c := &b.cow
	b.acounts = [5]uint32{n[5], n[8], 0, n[0], n[2]}
	a.users = refSeq{base: make([]uint32, 0, (n[0]+63)/64), delta: make([]uint16, 0, n[0])}
	a.changes.grow(c, n[1])
	a.keys = make([]*keyEntry, n[2])
	a.keyRefs = refSeq{base: make([]uint32, 0, (n[2]+63)/64), delta: make([]uint16, 0, n[2])}
	a.keyIDs = make([]string, 0, n[2])
	a.owners.grow(c, n[3])
	a.secrets.grow(c, n[4])
	a.kept = make([]string, 0, n[5])
	a.tenantUsers = make([]idList, n[6])
	a.tenantKeys = make([]idList, n[7])
	a.sets.off = make([]uint32, 2, n[8]+1) // set 0: empty
	if max(n[6], n[7]) > b.hcounts[0] {
		return errors.New("lists of unknown tenants")
	}
	roles := d.u32(1 << 16)
	for range roles {
		a.roles.strs = append(a.roles.strs, d.str())
	}
	b.acounts[2] = roles
	for _, m := range []*map[uint32]string{&a.oddOwners, &a.oddSecrets} {
		limit := a.owners.n
		if m == &a.oddSecrets {
			limit = a.secrets.n
		}
		for range d.u32(uint64(limit)) {
			i, s := d.u32(uint64(limit)), d.str()
			if *m == nil {
				*m = make(map[uint32]string)
			}
			(*m)[i] = s
		}
	}
	return nil
}

// readRefs reads a frame writeRefs wrote into s (of at most n refs).
func readRefs(d *dec, s *refSeq, n uint32, refs uint32, ids *[]string) error {
	if d.u32(uint64(n)) != s.len() {
		return errors.New("access history records out of order")
	}
	prev := int64(0)
	for len(d.b) > 0 && d.err == nil {
		if s.len() >= n {
			return errors.New("too many access history records")
		}
		if ids != nil {
			*ids = append(*ids, d.str())
		}
		v := prev + d.varint()
		if v < 0 || v > int64(refs) {
			return errors.New("a ref out of the journal")
		}
		s.add(uint32(v))
		prev = v
	}
	return nil
}

// readFrame reads a frame writeFrames wrote.
func (a *accessModel) readFrame(kind byte, d *dec, b *builder) error {
	j := &b.journal
	refs := uint64(j.n)
	records := func(t interface{ count() uint32 }, what string, read func(i uint32)) error {
		first := d.u32(uint64(t.count()))
		for i := first; len(d.b) > 0 && d.err == nil; i++ {
			if i >= t.count() {
				return fmt.Errorf("too many %s", what)
			}
			read(i)
		}
		return nil
	}
	switch kind {
	case frAUsers:
		return readRefs(d, &a.users, b.acounts[3], j.n, nil)
	case frAKeys:
		return readRefs(d, &a.keyRefs, b.acounts[4], j.n, &a.keyIDs)
	case frAChanges:
		return records(&a.changes, "user changes", func(i uint32) {
			ch := userChange{ref: d.u32(refs), prev: d.u32(uint64(i)), arg: d.u32(math32), role: uint16(d.u32(uint64(max(b.acounts[2], 1) - 1))), kind: d.byte()}
			switch ch.kind {
			case chGrant, chRevoke:
				if ch.arg >= b.hcounts[0] {
					d.fail(errors.New("a change in an unknown tenant"))
				}
			case chPassword:
				if ch.arg > b.acounts[0] {
					d.fail(errors.New("a password change keeping an unknown session"))
				}
			case chDeactivate, chActivate:
			default:
				d.fail(errors.New("a change of an unknown kind"))
			}
			*a.changes.at(i) = ch
		})
	case frAOwners:
		return records(&a.owners, "key owners", func(i uint32) {
			*a.owners.at(i) = keyOwner{ref: d.u32(refs), prev: d.u32(uint64(i)), user: d.u32(uint64(b.users.recs.n))}
		})
	case frASecrets:
		return records(&a.secrets, "key secrets", func(i uint32) {
			s := a.secrets.at(i)
			copy(s.hash[:], d.bytes(32))
			s.since, s.prev = d.u32(refs), d.u32(uint64(i))
		})
	case frALists:
		for len(d.b) > 0 && d.err == nil {
			tag, index, n := d.u32(listKeySides), d.u32(math32), d.u32(1<<20)
			if d.err != nil {
				break
			}
			switch tag {
			case listTenantUsers, listTenantKeys:
				lists, limit := a.tenantUsers, b.acounts[3]
				if tag == listTenantKeys {
					lists, limit = a.tenantKeys, b.acounts[4]
				}
				if int(index) >= len(lists) {
					return errors.New("a list of an unknown tenant")
				}
				for range n {
					lists[index].add(d.index(limit))
				}
			case listAdmins:
				for range n {
					a.admins = append(a.admins, d.index(b.acounts[3]))
				}
			case listWideKeys:
				for range n {
					a.wideKeys = append(a.wideKeys, d.index(b.acounts[4]))
				}
			case listRoleSet:
				if n%2 != 0 || int(index) != len(a.sets.off)-1 {
					return errors.New("a malformed role set")
				}
				for range n / 2 {
					a.sets.pairs = append(a.sets.pairs, tenantRoleNum{tenant: d.index(b.hcounts[0]), role: uint16(d.u32(uint64(max(b.acounts[2], 1) - 1)))})
				}
				a.sets.off = append(a.sets.off, uint32(len(a.sets.pairs)))
			case listUserSides:
				if n%3 != 0 {
					return errors.New("a malformed list of user histories")
				}
				for range n / 3 {
					r, s := d.index(b.acounts[3]), userSide{log: d.u32(uint64(a.changes.n)), init: d.u32(uint64(b.acounts[1]))}
					if a.userSide == nil {
						a.userSide = make(map[uint32]userSide)
					}
					a.userSide[r] = s
				}
			case listKeySides:
				if n%5 != 0 {
					return errors.New("a malformed list of key histories")
				}
				for range n / 5 {
					ki := d.index(b.acounts[4])
					a.setKeySide(ki, keySide{revoked: d.u32(refs), owner: d.u32(uint64(a.owners.n)), secret: d.u32(uint64(a.secrets.n)), since: d.u32(refs)})
				}
			}
		}
	case frAKept:
		for len(d.b) > 0 && d.err == nil {
			a.kept = append(a.kept, d.str())
		}
	default:
		return fmt.Errorf("unknown frame %d", kind)
	}
	return nil
}

func (t *table[T]) count() uint32 { return t.n }

// index reads a number below n.
func (d *dec) index(n uint32) uint32 {
	v := d.uvarint()
	if v >= uint64(n) {
		d.fail(fmt.Errorf("index %d out of range (%d)", v, n))
		return 0
	}
	return uint32(v)
}

// finish checks the lists against the header and rebuilds the maps.
func (a *accessModel) finish(b *builder) error {
	if len(a.kept) != int(b.acounts[0]) || len(a.sets.off)-1 != int(b.acounts[1]) ||
		a.users.len() != b.acounts[3] || a.keyRefs.len() != b.acounts[4] {
		return errors.New("the access history's lists differ from its header")
	}
	sets := uint32(len(a.sets.off) - 1)
	for _, s := range a.userSide {
		if s.init >= sets {
			return errors.New("a user history with an unknown role set")
		}
	}
	a.sets.ids = make(map[string]uint32, sets)
	for i := uint32(1); i < sets; i++ {
		var key []byte
		for _, p := range a.sets.set(i) {
			key = binary.LittleEndian.AppendUint32(key, p.tenant)
			key = binary.LittleEndian.AppendUint16(key, p.role)
		}
		a.sets.ids[string(key)] = i
	}
	a.roles.ids = make(map[string]uint32, len(a.roles.strs))
	for i, r := range a.roles.strs {
		if i > 0 {
			a.roles.ids[r] = uint32(i)
		}
	}
	return nil
}

// relink points the keys and their histories at each other, by ID (the
// keys are rebuilt from their states: builder.swap).
func (a *accessModel) relink(keys *keyModel) {
	for i, id := range a.keyIDs {
		if k := keys.byID[id]; k != nil {
			k.hist = uint32(i) + 1
			a.keys[i] = k
		}
	}
	a.keyIDs = nil
}
