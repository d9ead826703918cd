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
// Per user (by user record, as users are never removed): the creation, the
// tenant roles and whether it was a platform admin then (the global admin
// role is given at creation only), and a list of changes — role granted or
// revoked, deactivated (activated, for a future user.activated), password
// changed — newest first. A role's interval runs from its grant (or the
// creation) to the next change of that tenant's role; activity from the
// creation to a deactivation. Per API key (keyEntry.hist): the creation,
// the revocation, its owners (the creator's, then each rotation's that
// named one) and its rotated-out secrets; name, tenants, permissions
// and expiry, which never change, are the key's own (keyEntry). Per tenant,
// the users that ever held a role there and the keys that list it; beside
// them, the platform admins and the platform-wide keys.
//
// What is changed after it is written — a user's newest change, a key's
// revocation, newest owner and secret — is in tables (compact.go), so a
// snapshot being written reads them as it froze them (cow); the rest only
// grows, and a snapshot reads what was there when it froze.

// userHist is a user's history, by user record.
type userHist struct {
	created uint32 // ref of the user.created (0: none)
	init    uint32 // the tenant roles at creation: accessModel.sets, | histAdmin for a platform admin
	log     uint32 // the newest change: changes record + 1 (0: none)
}

const histAdmin = 1 << 31

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

// keyHist is an API key's history, by key number (keyEntry.hist - 1).
type keyHist struct {
	created uint32 // ref of the apikey.created
	revoked uint32 // ref of the apikey.revoked (0: not revoked)
	owner   uint32 // the newest owner: owners record + 1
	secret  uint32 // the newest rotated-out secret: secrets record + 1 (0: none)
	since   uint32 // ref of the event that made the current secret the key's
	tset    uint32 // the tenant set its events concern (journal.sets) + 1; 0: not known yet (not in snapshots)
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

// roleSetTable holds each distinct set of tenant roles users were created
// with once: a list of tenantRoleNum by tenant number. Set 0 is empty.
type roleSetTable struct {
	ids   map[string]uint32
	off   []uint32 // set i is pairs[off[i]:off[i+1]]
	pairs []tenantRoleNum
	key   []byte
}

// accessModel is the access history. Its zero value is ready to use; it
// lives inside Model and is guarded by Model.mu.
type accessModel struct {
	users   table[userHist] // by user record
	changes table[userChange]
	keys    table[keyHist] // by key number
	owners  table[keyOwner]
	secrets table[keySecret]
	sets    roleSetTable
	roles   strTable // role names
	admins  []uint32 // platform admins: user records
	// By tenant number: the users (records) that ever held a role there,
	// and the keys (numbers) that list it.
	tenantUsers [][]uint32
	tenantKeys  [][]uint32
	wideKeys    []uint32 // platform-wide keys (AllTenants)
	keyIDs      []string // by key number (the key: keyModel.byID)
	kept        []string // kept session IDs of password changes
	oddOwners   map[uint32]string
	oddSecrets  map[uint32]string
	pairs       []tenantRoleNum // scratch
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
// the state before it tells: the secret a rotation ends. ref is ev's
// journal entry. Called by Apply before it applies ev.
func (m *Model) historyBefore(ref uint32, env *events.Envelope, ev domain.Event) {
	if e, ok := ev.(domain.APIKeyRotated); ok && ref != 0 {
		if k := m.keys.byID[env.AggregateID]; k != nil && k.hist != 0 {
			m.keyRotated(ref, k, e)
		}
	}
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
			m.keyCreated(ref, env.AggregateID, hit.key, e)
		}
	case domain.APIKeyRevoked:
		if k := hit.key; k != nil && k.hist != 0 {
			if h := m.access.keys.at(k.hist - 1); h.revoked == 0 {
				m.access.keys.mut(&m.cow, k.hist-1).revoked = ref
			}
		}
	}
}

func (m *Model) userCreated(ref, r uint32, e domain.UserCreated) {
	a, c := &m.access, &m.cow
	for a.users.n <= r {
		a.users.alloc(c)
	}
	again := a.users.at(r).created != 0 // created again: a new life
	pairs := a.pairs[:0]
	for _, tr := range e.Tenants {
		if tr.Tenant == "" {
			continue
		}
		role := a.roles.id(string(tr.Role))
		if role > 1<<16-1 {
			role = 0
		}
		pairs = append(pairs, tenantRoleNum{tenant: m.journal.tenants.id(tr.Tenant), role: uint16(role)})
	}
	// By tenant; of a tenant listed twice, the last (as EvolveUser has it).
	slices.SortStableFunc(pairs, func(x, y tenantRoleNum) int { return cmp.Compare(x.tenant, y.tenant) })
	out := pairs[:0]
	for i, p := range pairs {
		if i+1 < len(pairs) && pairs[i+1].tenant == p.tenant {
			continue
		}
		out = append(out, p)
	}
	a.pairs = pairs
	h := userHist{created: ref, init: a.sets.intern(out)}
	admin := slices.Contains(e.Roles, domain.GlobalAdmin)
	if admin {
		h.init |= histAdmin
		if !again || !slices.Contains(a.admins, r) {
			a.admins = append(a.admins, r)
		}
	}
	*a.users.mut(c, r) = h
	for _, p := range out {
		a.addTenantUser(p.tenant, r, again)
	}
}

func (a *accessModel) addTenantUser(tenant, r uint32, check bool) {
	for int(tenant) >= len(a.tenantUsers) {
		a.tenantUsers = append(a.tenantUsers, nil)
	}
	if check && slices.Contains(a.tenantUsers[tenant], r) {
		return
	}
	a.tenantUsers[tenant] = append(a.tenantUsers[tenant], r)
}

// userChanged adds a change to the history of user record u - 1 (0: none).
func (m *Model) userChanged(u uint32, ch userChange) {
	a, c := &m.access, &m.cow
	r := u - 1
	if u == 0 || r >= a.users.n || a.users.at(r).created == 0 {
		return
	}
	h := a.users.at(r)
	if ch.kind == chGrant && !a.heldEver(h, ch.arg) {
		a.addTenantUser(ch.arg, r, false)
	}
	ch.prev = h.log
	i := a.changes.alloc(c)
	*a.changes.mut(c, i) = ch
	a.users.mut(c, r).log = i + 1
}

// heldEver reports whether the user held a role in tenant at some time.
func (a *accessModel) heldEver(h *userHist, tenant uint32) bool {
	if _, ok := a.sets.role(h.init&^histAdmin, tenant); ok {
		return true
	}
	for i := h.log; i != 0; {
		ch := a.changes.at(i - 1)
		if ch.kind == chGrant && ch.arg == tenant {
			return true
		}
		i = ch.prev
	}
	return false
}

func (m *Model) keyCreated(ref uint32, id string, k *keyEntry, e domain.APIKeyCreated) {
	a, c := &m.access, &m.cow
	again := k.hist != 0
	if !again {
		if k.id == id {
			id = k.id // one copy
		} else {
			id = strings.Clone(id)
		}
		k.hist = a.keys.alloc(c) + 1
		a.keyIDs = append(a.keyIDs, id)
	}
	o := a.owners.alloc(c)
	*a.owners.mut(c, o) = keyOwner{ref: ref, user: k.ownerRec}
	if k.ownerRec == 0 {
		if a.oddOwners == nil {
			a.oddOwners = make(map[uint32]string)
		}
		a.oddOwners[o] = strings.Clone(e.OwnerID)
	}
	*a.keys.mut(c, k.hist-1) = keyHist{created: ref, owner: o + 1, since: ref}
	ki := k.hist - 1
	for i, t := range e.Tenants {
		switch {
		case t == "" || slices.Contains(e.Tenants[:i], t):
		case t == domain.AllTenants:
			if !again || !slices.Contains(a.wideKeys, ki) {
				a.wideKeys = append(a.wideKeys, ki)
			}
		default:
			tn := m.journal.tenants.id(t)
			for int(tn) >= len(a.tenantKeys) {
				a.tenantKeys = append(a.tenantKeys, nil)
			}
			if !again || !slices.Contains(a.tenantKeys[tn], ki) {
				a.tenantKeys[tn] = append(a.tenantKeys[tn], ki)
			}
		}
	}
}

// keyRotated records a rotation, before it is applied to k: the secret it
// ends, and the owner it names.
func (m *Model) keyRotated(ref uint32, k *keyEntry, e domain.APIKeyRotated) {
	a, c := &m.access, &m.cow
	ki := k.hist - 1
	h := *a.keys.at(ki)
	s := a.secrets.alloc(c)
	sec := keySecret{since: h.since, prev: h.secret}
	if k.flags&kHashed != 0 {
		sec.hash = k.hash
	} else {
		if a.oddSecrets == nil {
			a.oddSecrets = make(map[uint32]string)
		}
		a.oddSecrets[s] = m.keys.odd[k]
	}
	*a.secrets.mut(c, s) = sec
	h.secret, h.since = s+1, ref
	if e.OwnerID != "" { // the same owner again too: the owner from then is as the stream has it
		o := a.owners.alloc(c)
		own := keyOwner{ref: ref, prev: h.owner}
		if r, ok := m.users.find(e.OwnerID); ok {
			own.user = r + 1
		} else {
			if a.oddOwners == nil {
				a.oddOwners = make(map[uint32]string)
			}
			a.oddOwners[o] = strings.Clone(e.OwnerID)
		}
		*a.owners.mut(c, o) = own
		h.owner = o + 1
	}
	*a.keys.mut(c, ki) = h
}

// ---------------------------------------------------------------- answering

// userAt is a user at a moment.
type userAt struct {
	exists, active, admin bool
	created               uint32
}

func (m *Model) userAt(r uint32, at moment) userAt {
	a, j := &m.access, &m.journal
	if r >= a.users.n {
		return userAt{}
	}
	h := a.users.at(r)
	if !j.by(h.created, at) {
		return userAt{}
	}
	u := userAt{exists: true, active: true, admin: h.init&histAdmin != 0, created: h.created}
	for i := h.log; i != 0; {
		ch := a.changes.at(i - 1)
		if (ch.kind == chDeactivate || ch.kind == chActivate) && j.by(ch.ref, at) {
			u.active = ch.kind == chActivate
			break
		}
		i = ch.prev
	}
	return u
}

// roleIn is the role user r (existing at the moment) held in tenant at
// the moment, and the ref of the event that granted it. The newest change
// of that tenant's role that had taken effect decides; without one, the
// roles the user was created with.
func (m *Model) roleIn(r, tenant uint32, at moment, u userAt) (uint16, uint32, bool) {
	a, j := &m.access, &m.journal
	h := a.users.at(r)
	for i := h.log; i != 0; {
		ch := a.changes.at(i - 1)
		if ch.arg == tenant && (ch.kind == chGrant || ch.kind == chRevoke) && j.by(ch.ref, at) {
			return ch.role, ch.ref, ch.kind == chGrant
		}
		i = ch.prev
	}
	role, ok := a.sets.role(h.init&^histAdmin, tenant)
	return role, u.created, ok
}

// heldRole is one tenant role held at a moment.
type heldRole struct {
	tenant uint32
	role   uint16
	since  uint32
}

// rolesAt is every tenant role user r (existing at the moment) held then,
// by tenant name.
func (m *Model) rolesAt(r uint32, at moment, u userAt) []heldRole {
	a, j := &m.access, &m.journal
	h := a.users.at(r)
	var out []heldRole
	var decided []uint32
	for i := h.log; i != 0; {
		ch := a.changes.at(i - 1)
		i = ch.prev
		if (ch.kind != chGrant && ch.kind != chRevoke) || !j.by(ch.ref, at) || slices.Contains(decided, ch.arg) {
			continue
		}
		decided = append(decided, ch.arg)
		if ch.kind == chGrant {
			out = append(out, heldRole{tenant: ch.arg, role: ch.role, since: ch.ref})
		}
	}
	for _, p := range a.sets.set(h.init &^ histAdmin) {
		if !slices.Contains(decided, p.tenant) {
			out = append(out, heldRole{tenant: p.tenant, role: p.role, since: u.created})
		}
	}
	slices.SortFunc(out, func(x, y heldRole) int { return cmp.Compare(j.tenants.str(x.tenant), j.tenants.str(y.tenant)) })
	return out
}

func (m *Model) roleGrant(tenant string, role uint16, since uint32) Grant {
	rl := domain.Role(m.access.roles.str(uint32(role)))
	return Grant{Tenant: tenant, Permissions: rl.Permissions(), Via: "role", Role: rl, Since: m.ref(since)}
}

func (m *Model) adminGrant(tenant string, created uint32) Grant {
	return Grant{Tenant: tenant, Permissions: domain.SetOf(domain.AdminAll), Via: "platform_admin", Since: m.ref(created)}
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

// keyOwnerAt is key ki's owner at the moment: its owners record, and false
// if the key was not created yet, was revoked or had expired.
func (m *Model) keyOwnerAt(k *keyEntry, ki uint32, at moment) (keyOwner, uint32, bool) {
	a, j := &m.access, &m.journal
	h := a.keys.at(ki)
	if !j.by(h.created, at) || j.by(h.revoked, at) {
		return keyOwner{}, 0, false
	}
	if exp := k.time(keyExpires); !exp.IsZero() && !at.t.Before(exp) {
		return keyOwner{}, 0, false
	}
	for i := h.owner; i != 0; {
		o := a.owners.at(i - 1)
		if j.by(o.ref, at) {
			return *o, i - 1, true
		}
		i = o.prev
	}
	return keyOwner{}, 0, false
}

// keyGrant is what key ki could do in one tenant (tn: its number, known:
// whether any event named it) at the moment: the key's permissions capped
// by its owner's there.
func (m *Model) keyGrant(k *keyEntry, ki uint32, tenant string, tn uint32, known bool, at moment) (Grant, bool) {
	o, _, ok := m.keyOwnerAt(k, ki, at)
	if !ok || o.user == 0 {
		return Grant{}, false
	}
	r := o.user - 1
	u := m.userAt(r, at)
	if !u.exists || !u.active {
		return Grant{}, false
	}
	var og Grant
	switch {
	case u.admin:
		og = m.adminGrant(tenant, u.created)
	case known:
		role, since, held := m.roleIn(r, tn, at, u)
		if !held {
			return Grant{}, false
		}
		og = m.roleGrant(tenant, role, since)
	default:
		return Grant{}, false
	}
	perms := intersectPerms(k.perms, og.Permissions)
	if perms == 0 {
		return Grant{}, false
	}
	return Grant{Tenant: tenant, Permissions: perms, Via: "api_key", Since: m.ref(o.ref), OwnerID: m.users.id(r), OwnerGrant: &og}, true
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
// ErrBeforeHistory when at is older than the history kept.
func (m *Model) TenantAccess(tenant string, perm domain.Permission, at time.Time) ([]Access, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, j := &m.access, &m.journal
	if m.beforeHistory(at) {
		return nil, ErrBeforeHistory
	}
	mo := momentOf(at)
	tn, known := j.tenants.ids[tenant]
	known = known && tenant != ""
	var cands []uint32
	if known && int(tn) < len(a.tenantUsers) {
		cands = append(cands, a.tenantUsers[tn]...)
	}
	cands = append(cands, a.admins...)
	slices.Sort(cands)
	cands = slices.Compact(cands)
	var users []Access
	for _, r := range cands {
		u := m.userAt(r, mo)
		if !u.exists || !u.active {
			continue
		}
		var g Grant
		switch {
		case u.admin:
			g = m.adminGrant(tenant, u.created)
		case known:
			role, since, held := m.roleIn(r, tn, mo, u)
			if !held {
				continue
			}
			g = m.roleGrant(tenant, role, since)
		default:
			continue
		}
		if grants(g.Permissions, perm) {
			users = append(users, Access{Kind: PrincipalUser, ID: m.users.id(r), Name: m.users.name(r), Grants: []Grant{g}})
		}
	}
	slices.SortFunc(users, func(x, y Access) int { return cmp.Compare(x.ID, y.ID) })
	cands = cands[:0]
	if known && int(tn) < len(a.tenantKeys) {
		cands = append(cands, a.tenantKeys[tn]...)
	}
	cands = append(cands, a.wideKeys...)
	slices.Sort(cands)
	cands = slices.Compact(cands)
	var keys []Access
	for _, ki := range cands {
		k := m.keys.byID[a.keyIDs[ki]]
		if k == nil || k.hist != ki+1 || !keyLists(k, tenant) {
			continue
		}
		if g, ok := m.keyGrant(k, ki, tenant, tn, known, mo); ok && grants(g.Permissions, perm) {
			keys = append(keys, Access{Kind: PrincipalAPIKey, ID: a.keyIDs[ki], Name: k.name, Grants: []Grant{g}})
		}
	}
	slices.SortFunc(keys, func(x, y Access) int { return cmp.Compare(x.ID, y.ID) })
	return append(users, keys...), nil
}

// UserAccess returns what user id could do in each tenant at the moment at
// (platform admins: one Grant with Tenant "*"), by tenant; no grants
// before its creation or while it was deactivated. False if no such user;
// ErrBeforeHistory when at is older than the history kept.
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
	mo := momentOf(at)
	u := m.userAt(r, mo)
	switch {
	case !u.exists || !u.active:
	case u.admin:
		acc.Grants = []Grant{m.adminGrant(domain.AllTenants, u.created)}
	default:
		for _, h := range m.rolesAt(r, mo, u) {
			acc.Grants = append(acc.Grants, m.roleGrant(m.journal.tenants.str(h.tenant), h.role, h.since))
		}
	}
	return acc, true, nil
}

// KeyAccess returns what API key id could do in each tenant at the moment
// at, by tenant: for each tenant it lists, its permissions capped by its
// owner's there (a platform-wide key: one Grant per tenant where its owner
// held a role, or Tenant "*" for a platform-admin owner); no grants before
// its creation, once revoked or expired, or while its owner was unknown or
// deactivated. False if no such key; ErrBeforeHistory when at is older
// than the history kept.
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
	ki, mo := k.hist-1, momentOf(at)
	for i, t := range k.tenants {
		if t == "" || slices.Contains(k.tenants[:i], t) {
			continue
		}
		if t != domain.AllTenants {
			tn, known := j.tenants.ids[t]
			if g, ok := m.keyGrant(k, ki, t, tn, known, mo); ok {
				acc.Grants = append(acc.Grants, g)
			}
			continue
		}
		// Platform-wide: wherever its owner could act.
		o, _, ok := m.keyOwnerAt(k, ki, mo)
		if !ok || o.user == 0 {
			continue
		}
		r := o.user - 1
		u := m.userAt(r, mo)
		if !u.exists || !u.active {
			continue
		}
		if u.admin {
			if g, ok := m.keyGrant(k, ki, domain.AllTenants, 0, false, mo); ok {
				acc.Grants = append(acc.Grants, g)
			}
			continue
		}
		for _, h := range m.rolesAt(r, mo, u) {
			name := j.tenants.str(h.tenant)
			if slices.Contains(k.tenants, name) {
				continue // listed as well: its own grant
			}
			if g, ok := m.keyGrant(k, ki, name, h.tenant, true, mo); ok {
				acc.Grants = append(acc.Grants, g)
			}
		}
	}
	slices.SortFunc(acc.Grants, func(x, y Grant) int { return cmp.Compare(x.Tenant, y.Tenant) })
	return acc, true, nil
}

// UserHistory returns the life of user id (credential checks).
func (m *Model) UserHistory(id string) (UserHistory, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.users.find(id)
	if !ok {
		return UserHistory{}, false
	}
	a := &m.access
	out := UserHistory{ID: m.users.id(r)}
	if r >= a.users.n {
		return out, true
	}
	h := a.users.at(r)
	out.Created, out.PlatformAdmin = m.ref(h.created), h.init&histAdmin != 0
	activity := false
	for i := h.log; i != 0; {
		ch := a.changes.at(i - 1)
		i = ch.prev
		switch ch.kind {
		case chDeactivate, chActivate:
			ref := m.ref(ch.ref)
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
			pc := PasswordChange{Event: m.ref(ch.ref)}
			if ch.arg != 0 {
				pc.KeptSessionID = a.kept[ch.arg-1]
			}
			out.PasswordChanges = append(out.PasswordChanges, pc)
		}
	}
	slices.Reverse(out.PasswordChanges)
	slices.Reverse(out.Deactivations)
	slices.Reverse(out.Activations)
	return out, true
}

// KeyHistory returns the life of API key id (credential checks).
func (m *Model) KeyHistory(id string) (KeyHistory, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k := m.keys.byID[id]
	if k == nil {
		return KeyHistory{}, false
	}
	a := &m.access
	out := KeyHistory{ID: k.id, Name: k.name, ExpiresAt: k.time(keyExpires)}
	if k.hist == 0 {
		return out, true
	}
	h := a.keys.at(k.hist - 1)
	out.Created = m.ref(h.created)
	if h.revoked != 0 {
		ref := m.ref(h.revoked)
		out.Revoked = &ref
	}
	for i := h.secret; i != 0; {
		s := a.secrets.at(i - 1)
		hash, odd := a.oddSecrets[i-1]
		if !odd {
			hash = formatHash(&s.hash)
		}
		out.Secrets = append(out.Secrets, KeySecret{Hash: hash, Since: m.ref(s.since)})
		i = s.prev
	}
	slices.Reverse(out.Secrets)
	out.Secrets = append(out.Secrets, KeySecret{Hash: m.keys.secretHash(k), Since: m.ref(h.since)})
	return out, true
}

// RoleAt returns the role user id held in tenant at the moment at, and the
// event that granted it ("" and false if none, or if the user did not
// exist or was not active then). It does not tell a moment older than the
// history kept: the caller checks HistoryStart first.
func (m *Model) RoleAt(id, tenant string, at time.Time) (domain.Role, EventRef, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.users.find(id)
	tn, known := m.journal.tenants.ids[tenant]
	if !ok || !known || tenant == "" {
		return "", EventRef{}, false
	}
	mo := momentOf(at)
	u := m.userAt(r, mo)
	if !u.exists || !u.active {
		return "", EventRef{}, false
	}
	role, since, held := m.roleIn(r, tn, mo, u)
	if !held {
		return "", EventRef{}, false
	}
	return domain.Role(m.access.roles.str(uint32(role))), m.ref(since), true
}

// frozenCopy is the access history as it is now, for a snapshot: the
// tables' chunks shared (cow), the lists (which only grow) as they are.
func (a *accessModel) frozenCopy() accessModel {
	return accessModel{
		users: a.users.frozenCopy(), changes: a.changes.frozenCopy(), keys: a.keys.frozenCopy(),
		owners: a.owners.frozenCopy(), secrets: a.secrets.frozenCopy(),
		sets: roleSetTable{off: a.sets.off, pairs: a.sets.pairs}, roles: strTable{strs: a.roles.strs},
		admins: a.admins, tenantUsers: slices.Clone(a.tenantUsers), tenantKeys: slices.Clone(a.tenantKeys),
		wideKeys: a.wideKeys, keyIDs: a.keyIDs, kept: a.kept,
		oddOwners: cloneSmall(a.oddOwners), oddSecrets: cloneSmall(a.oddSecrets),
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
)

// writeHeader writes the counts and small lists (in frHistory).
func (a *accessModel) writeHeader(fw *frameWriter) {
	for _, v := range []int{int(a.users.n), int(a.changes.n), int(a.keys.n), int(a.owners.n), int(a.secrets.n),
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

// writeFrames writes the records and the lists.
func (a *accessModel) writeFrames(fw *frameWriter) {
	writeRecords(fw, frAUsers, &a.users, func(fw *frameWriter, _ uint32, h *userHist) {
		fw.uvarint(uint64(h.created))
		fw.uvarint(uint64(h.init))
		fw.uvarint(uint64(h.log))
	})
	writeRecords(fw, frAChanges, &a.changes, func(fw *frameWriter, _ uint32, ch *userChange) {
		fw.uvarint(uint64(ch.ref))
		fw.uvarint(uint64(ch.prev))
		fw.uvarint(uint64(ch.arg))
		fw.uvarint(uint64(ch.role))
		fw.byte(ch.kind)
	})
	writeRecords(fw, frAKeys, &a.keys, func(fw *frameWriter, i uint32, h *keyHist) {
		fw.str(a.keyIDs[i])
		for _, v := range []uint32{h.created, h.revoked, h.owner, h.secret, h.since} {
			fw.uvarint(uint64(v))
		}
	})
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
	// A list in parts of at most 65,536 items (a role set: whole, even if empty).
	list := func(tag, index int, items []uint32) {
		for first := true; first || len(items) > 0; first = false {
			part := items[:min(len(items), 1<<16)]
			if tag == listRoleSet {
				part = items
			} else if len(part) == 0 {
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
	for t, l := range a.tenantUsers {
		list(listTenantUsers, t, l)
	}
	for t, l := range a.tenantKeys {
		list(listTenantKeys, t, l)
	}
	list(listAdmins, 0, a.admins)
	list(listWideKeys, 0, a.wideKeys)
	for i := 1; i < len(a.sets.off)-1; i++ {
		set := a.sets.set(uint32(i))
		items := make([]uint32, 0, 2*len(set))
		for _, p := range set {
			items = append(items, p.tenant, uint32(p.role))
		}
		list(listRoleSet, i, items)
	}
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
	a.users.grow(c, n[0])
	a.changes.grow(c, n[1])
	a.keys.grow(c, n[2])
	a.owners.grow(c, n[3])
	a.secrets.grow(c, n[4])
	b.acounts = [3]uint32{n[5], n[8], 0}
	a.kept = make([]string, 0, n[5])
	a.tenantUsers = make([][]uint32, n[6])
	a.tenantKeys = make([][]uint32, n[7])
	a.sets.off = make([]uint32, 2, n[8]+1) // set 0: empty
	a.keyIDs = make([]string, n[2])
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
		return records(&a.users, "user histories", func(i uint32) {
			*a.users.at(i) = userHist{created: d.u32(refs), init: d.u32(math32), log: d.u32(uint64(a.changes.n))}
		})
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
	case frAKeys:
		return records(&a.keys, "key histories", func(i uint32) {
			a.keyIDs[i] = d.str()
			h := a.keys.at(i)
			h.created, h.revoked, h.owner = d.u32(refs), d.u32(refs), d.u32(uint64(a.owners.n))
			h.secret, h.since = d.u32(uint64(a.secrets.n)), d.u32(refs)
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
			tag, index, n := d.u32(listRoleSet), d.u32(math32), d.u32(1<<20)
			if d.err != nil {
				break
			}
			switch tag {
			case listTenantUsers, listTenantKeys:
				lists, limit := a.tenantUsers, a.users.n
				if tag == listTenantKeys {
					lists, limit = a.tenantKeys, a.keys.n
				}
				if int(index) >= len(lists) {
					return errors.New("a list of an unknown tenant")
				}
				for range n {
					lists[index] = append(lists[index], d.index(limit))
				}
			case listAdmins:
				for range n {
					a.admins = append(a.admins, d.index(a.users.n))
				}
			case listWideKeys:
				for range n {
					a.wideKeys = append(a.wideKeys, d.index(a.keys.n))
				}
			case listRoleSet:
				if n%2 != 0 || int(index) != len(a.sets.off)-1 {
					return errors.New("a malformed role set")
				}
				for range n / 2 {
					a.sets.pairs = append(a.sets.pairs, tenantRoleNum{tenant: d.index(b.hcounts[0]), role: uint16(d.u32(uint64(max(b.acounts[2], 1) - 1)))})
				}
				a.sets.off = append(a.sets.off, uint32(len(a.sets.pairs)))
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
	if len(a.kept) != int(b.acounts[0]) || len(a.sets.off)-1 != int(b.acounts[1]) {
		return errors.New("the access history's lists differ from its header")
	}
	sets := uint32(len(a.sets.off) - 1)
	for i := range a.users.n {
		if a.users.at(i).init&^histAdmin >= sets {
			return errors.New("a user created with an unknown role set")
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
		}
	}
}
