package projections

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/infracast/auth/domain"
)

// keyModel is the API key read model. A deployment may hold a million keys,
// so each is packed (keyEntry) and the strings keys share are held once. Its
// zero value is ready to use (maps are made on first write); it lives inside
// Model and is guarded by Model.mu.
type keyModel struct {
	byID map[string]*keyEntry
	// byHash finds a live key by its secret's SHA-256: by the hash's first 8
	// bytes, then along next to the entry whose whole hash matches.
	byHash map[uint64]*keyEntry
	// odd holds a SecretHash that is not 64 lower-case hex digits (never
	// written by this service) as is; a live one is found by a scan.
	odd map[*keyEntry]string
	// tenantLists holds one copy of each tenant list (keyed by its
	// elements joined with NUL): most keys share a few lists.
	tenantLists map[string][]string
	// byOwner lists the keys each user owns that are not revoked
	// (lifecycle.go: noteOwner; keyEntry.slot is a key's place in its
	// owner's list): what the owner's key count, their keys' names and
	// their deactivation read, none of them by a scan of every key or of
	// the keys they revoked. Derived, rebuilt on restore.
	byOwner map[string][]*keyEntry
	// revoked finds a revoked key by its secret's SHA-256 (its current
	// one), as byHash finds a live one — by the hash's first 8 bytes, then
	// along next, which a revoked key, out of byHash, is free to use: a
	// request with it is refused as key_revoked, not as an unknown key —
	// what an alert on a leaked key still in use counts (outside check 16o:
	// key_revoked never appeared, a revoked key being out of byHash) — and
	// logged by the key's ID (re-check 20r2: a set of hashes named no key,
	// so the refusal left no line). Derived, rebuilt on restore; only a
	// refusal reads it, after byHash found no live key. A rotated-out
	// secret is in neither: it is an unknown key (docs/audit.md).
	revoked map[uint64]*keyEntry
}

// noteRevoked lists k among the revoked keys when k is revoked.
func (km *keyModel) noteRevoked(k *keyEntry) {
	if k.flags&(kRevoked|kHashed|kRevokedListed) != kRevoked|kHashed {
		return
	}
	if km.revoked == nil {
		km.revoked = make(map[uint64]*keyEntry)
	}
	p := hashPrefix(&k.hash)
	k.next, k.flags = km.revoked[p], k.flags|kRevokedListed
	km.revoked[p] = k
}

// unlistRevoked takes k off the revoked keys' list (its secret changes).
func (km *keyModel) unlistRevoked(k *keyEntry) {
	if k.flags&kRevokedListed == 0 {
		return
	}
	unchain(km.revoked, k)
	k.flags &^= kRevokedListed
}

// wasRevoked returns the revoked key whose secret hashes to sum (nil: none).
func (km *keyModel) wasRevoked(sum *[32]byte) *keyEntry { return chainFind(km.revoked, sum) }

// revokedSecret returns the revoked key whose secret hash is secretHash
// (a non-canonical one by a scan of odd, as findOdd finds a live one).
func (km *keyModel) revokedSecret(secretHash string) *keyEntry {
	if sum, ok := parseHash(secretHash); ok {
		return km.wasRevoked(&sum)
	}
	for k, h := range km.odd {
		if h == secretHash && k.flags&kRevoked != 0 {
			return k
		}
	}
	return nil
}

// keyEntry is a domain.APIKey packed: times as Unix seconds and nanoseconds
// (in UTC), the secret's SHA-256 as bytes, the owner and tenant strings shared.
// state and pack convert; Evolve stays the one definition of the state.
type keyEntry struct {
	id, name, owner string
	tenants         []string
	allowed         []netip.Prefix
	secs            [4]int64 // created, expires, rotated, last used
	nanos           [4]int32
	hash            [32]byte
	seq             uint64
	version         uint32
	ownerRec        uint32    // the owner's user record + 1 (0: no such user when packed)
	hist            uint32    // its access history: accessModel.keys record + 1 (access.go)
	slot            uint32    // its place in keyModel.byOwner[owner] while listed (in padding: no byte more)
	next            *keyEntry // next key of its chain whose hash starts with the same 8 bytes: byHash (live) or revoked
	perms           domain.PermissionSet
	flags           uint8 // kHashed, kIndexed, kRevoked, kRevokedListed (one byte: the entry stays 208 bytes)
}

const (
	kHashed  = 1 << iota // hash is the secret's SHA-256 (else see keyModel.odd)
	kIndexed             // live: in byHash (or, odd, found in odd)
	kRevoked
	kRevokedListed // in keyModel.revoked
)

// setFlag sets or clears flag f.
func (k *keyEntry) setFlag(f uint8, on bool) {
	if on {
		k.flags |= f
	} else {
		k.flags &^= f
	}
}

const (
	keyCreated = iota
	keyExpires
	keyRotated
	keyLastUsed
)

func (k *keyEntry) setTime(i int, t time.Time) {
	k.secs[i], k.nanos[i] = t.Unix(), int32(t.Nanosecond())
}

// time returns a time as set, in UTC; the zero time comes back as the zero time.
func (k *keyEntry) time(i int) time.Time { return time.Unix(k.secs[i], int64(k.nanos[i])).UTC() }

// state unpacks the key, with secretHash as its SecretHash.
func (k *keyEntry) state(secretHash string) domain.APIKey {
	return domain.APIKey{
		ID: k.id, Name: k.name, OwnerID: k.owner, Tenants: k.tenants, Permissions: k.perms,
		AllowedIPs: k.allowed, SecretHash: secretHash, CreatedAt: k.time(keyCreated), ExpiresAt: k.time(keyExpires),
		RotatedAt: k.time(keyRotated), LastUsedAt: k.time(keyLastUsed), Revoked: k.flags&kRevoked != 0, Version: uint64(k.version),
	}
}

// secretHash is the key's SecretHash as the domain has it (hex).
func (km *keyModel) secretHash(k *keyEntry) string {
	if k.flags&kHashed != 0 {
		return hex.EncodeToString(k.hash[:])
	}
	return km.odd[k]
}

// fullState is the key's whole domain state.
func (km *keyModel) fullState(k *keyEntry) domain.APIKey { return k.state(km.secretHash(k)) }

// pack stores st (but its SecretHash: see setHash) in k, sharing the owner's
// ID string with users and the tenant list with other keys.
func (km *keyModel) pack(k *keyEntry, st domain.APIKey, users *userStore) {
	if k.owner != st.OwnerID || k.ownerRec == 0 {
		k.owner, k.ownerRec = st.OwnerID, 0
		if r, ok := users.find(st.OwnerID); ok {
			k.owner, k.ownerRec = users.id(r), r+1 // a user's record never changes
		}
	}
	if len(st.Tenants) != len(k.tenants) || (len(st.Tenants) > 0 && &st.Tenants[0] != &k.tenants[0]) || (st.Tenants == nil) != (k.tenants == nil) {
		k.tenants = km.tenantList(st.Tenants)
	}
	k.id, k.name, k.allowed, k.perms, k.version = st.ID, st.Name, st.AllowedIPs, st.Permissions, uint32(st.Version)
	k.setFlag(kRevoked, st.Revoked)
	k.setTime(keyCreated, st.CreatedAt)
	k.setTime(keyExpires, st.ExpiresAt)
	k.setTime(keyRotated, st.RotatedAt)
	k.setTime(keyLastUsed, st.LastUsedAt)
}

// tenantList returns the shared copy of list (nil stays nil, empty stays empty).
func (km *keyModel) tenantList(list []string) []string {
	if len(list) == 0 {
		return list
	}
	id := strings.Join(list, "\x00")
	if l, ok := km.tenantLists[id]; ok {
		return l
	}
	if km.tenantLists == nil {
		km.tenantLists = make(map[string][]string)
	}
	l := slices.Clip(slices.Clone(list))
	km.tenantLists[id] = l
	return l
}

// setHash makes secretHash the key's secret hash, indexed while the key lives.
func (km *keyModel) setHash(k *keyEntry, secretHash string) {
	km.unindex(k)
	km.unlistRevoked(k)
	delete(km.odd, k)
	k.hash, k.flags = [32]byte{}, k.flags&^kHashed
	if sum, ok := parseHash(secretHash); ok {
		k.hash, k.flags = sum, k.flags|kHashed
		return
	}
	if km.odd == nil {
		km.odd = make(map[*keyEntry]string)
	}
	km.odd[k] = secretHash
}

func hashPrefix(sum *[32]byte) uint64 { return binary.LittleEndian.Uint64(sum[:8]) }

func (km *keyModel) index(k *keyEntry) {
	if k.flags&(kIndexed|kRevoked) != 0 {
		return
	}
	if k.flags&kHashed == 0 {
		k.flags |= kIndexed
		return
	}
	if km.byHash == nil {
		km.byHash = make(map[uint64]*keyEntry)
	}
	p := hashPrefix(&k.hash)
	k.next, k.flags = km.byHash[p], k.flags|kIndexed
	km.byHash[p] = k
}

func (km *keyModel) unindex(k *keyEntry) {
	if k.flags&kIndexed == 0 {
		return
	}
	if k.flags&kHashed == 0 {
		k.flags &^= kIndexed
		return
	}
	unchain(km.byHash, k)
	k.next, k.flags = nil, k.flags&^kIndexed
}

// unchain takes k, found by its hash's prefix, off chains (byHash or
// revoked).
func unchain(chains map[uint64]*keyEntry, k *keyEntry) {
	p := hashPrefix(&k.hash)
	if head := chains[p]; head == k {
		if k.next == nil {
			delete(chains, p)
		} else {
			chains[p] = k.next
		}
	} else {
		for e := head; e != nil; e = e.next {
			if e.next == k {
				e.next = k.next
				break
			}
		}
	}
	k.next = nil
}

// find returns the live key whose secret hashes to sum.
func (km *keyModel) find(sum *[32]byte) *keyEntry { return chainFind(km.byHash, sum) }

// chainFind returns the key whose secret hashes to sum in chains, keyed by
// the hash's first 8 bytes and linked by next (byHash, revoked).
func chainFind(chains map[uint64]*keyEntry, sum *[32]byte) *keyEntry {
	for k := chains[hashPrefix(sum)]; k != nil; k = k.next {
		if k.hash == *sum {
			return k
		}
	}
	return nil
}

// findOdd returns the live key whose SecretHash is the non-canonical s.
func (km *keyModel) findOdd(s string) *keyEntry {
	for k, h := range km.odd {
		if h == s && k.flags&kIndexed != 0 {
			return k
		}
	}
	return nil
}

// lookup finds the live key whose SecretHash is secretHash.
func (km *keyModel) lookup(secretHash string) *keyEntry {
	if sum, ok := parseHash(secretHash); ok {
		return km.find(&sum)
	}
	return km.findOdd(secretHash)
}

// parseHash reads a SHA-256 as HashToken writes it: 64 lower-case hex digits.
func parseHash(s string) (sum [32]byte, ok bool) {
	if len(s) != 2*len(sum) {
		return sum, false
	}
	// Eight characters at a time (SWAR): each byte must be '0'-'9' or
	// 'a'-'f'; its value is its low nibble, plus 9 for a letter.
	const ones, highs, nibbles = 0x0101010101010101, 0x8080808080808080, 0x0f0f0f0f0f0f0f0f
	b := (*[64]byte)(unsafe.Pointer(unsafe.StringData(s)))
	valid := uint64(highs)
	for i := 0; i < 8; i++ {
		x := binary.LittleEndian.Uint64(b[8*i : 8*i+8])
		hx := x | highs
		digit := (hx - '0'*ones) & (('9'|0x80)*ones - x)
		letter := (hx - 'a'*ones) & (('f'|0x80)*ones - x)
		valid &= ^x & (digit | letter)
		v := x&nibbles + (x>>6&ones)*9
		w := (v&0x000f000f000f000f)<<4 | (v>>8)&0x000f000f000f000f
		w = (w | w>>8) & 0x0000ffff0000ffff
		binary.LittleEndian.PutUint32(sum[4*i:4*i+4], uint32(w|w>>16))
	}
	if valid != highs {
		return [32]byte{}, false
	}
	return sum, true
}

// applyKey folds an API key event, and returns the key (nil: none); called
// with the write lock held.
func (m *Model) applyKey(id string, seq uint64, e domain.Event) *keyEntry {
	km := &m.keys
	k := km.byID[id]
	if k == nil {
		c, ok := e.(domain.APIKeyCreated)
		if !ok {
			return nil
		}
		if km.byID == nil {
			km.byID = make(map[string]*keyEntry)
		}
		if c.KeyID == id {
			id = c.KeyID // one copy of the ID: the state's
		}
		k = &keyEntry{}
		km.byID[id] = k
	}
	st := domain.EvolveAPIKey(k.state(""), e)
	switch ev := e.(type) {
	case domain.APIKeyCreated:
		km.setHash(k, ev.SecretHash) // a rotated-out secret stops at once
	case domain.APIKeyRotated:
		km.setHash(k, ev.SecretHash)
	}
	owner, revoked := k.owner, k.flags&kRevoked != 0
	km.pack(k, st, &m.users)
	km.noteOwner(k, owner, revoked)
	k.seq = seq
	if k.flags&kRevoked != 0 {
		km.unindex(k)
		km.noteRevoked(k)
	} else {
		km.unlistRevoked(k) // never revoked again, as the domain has it; its next is byHash's
		km.index(k)
	}
	return k
}

// restoreKey puts a key's state back (Restore).
func (km *keyModel) restoreKey(id string, st domain.APIKey, seq uint64, users *userStore) {
	if km.byID == nil {
		km.byID = make(map[string]*keyEntry)
	}
	if st.ID == id {
		id = st.ID
	}
	k := &keyEntry{seq: seq}
	km.byID[id] = k
	km.setHash(k, st.SecretHash)
	km.pack(k, st, users)
	km.noteOwner(k, "", false)
	km.index(k)
	km.noteRevoked(k)
}

// hashIndex is the index as a map from hex SHA-256 to key ID (snapshots).
func (km *keyModel) hashIndex() map[string]string {
	out := make(map[string]string, len(km.byHash))
	for _, head := range km.byHash {
		for k := head; k != nil; k = k.next {
			out[hex.EncodeToString(k.hash[:])] = k.id
		}
	}
	for k, h := range km.odd {
		if k.flags&kIndexed != 0 {
			out[h] = k.id
		}
	}
	return out
}

// APIKey returns a key's state and the stream sequence of its last event.
func (m *Model) APIKey(id string) (domain.APIKey, uint64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k := m.keys.byID[id]
	if k == nil {
		return domain.APIKey{}, 0, false
	}
	return m.keys.fullState(k), k.seq, true
}

// APIKeys returns every key, by ID, with its secret's hash: for the
// credential check's walk of rotated and revoked keys, and tests. It holds
// the lock for listChunk keys at a time (ListAPIKeys), never across them
// all.
func (m *Model) APIKeys() []domain.APIKey {
	var out []domain.APIKey
	m.walkKeys(func(k *keyEntry) { out = append(out, m.keys.fullState(k)) })
	slices.SortFunc(out, func(a, b domain.APIKey) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// walkKeys calls f on every key, listChunk keys under each hold of the
// read lock, the lock released between chunks: an event applied meanwhile
// is reflected in the keys after it, not in those before. A key created
// during the walk is seen if its place comes after the walk's.
//
// It walks the access history's keys (accessModel.keys: every key, by the
// order the model learnt of it, never removed), which a map cannot give
// in parts across releases of the lock; a list of its own would cost every
// key 8–10 bytes more (memory.apikey is at 499 of its 500). A model
// without the history (NoHistory), or one whose history does not hold
// every key, is walked in one hold of the lock, as before.
func (m *Model) walkKeys(f func(k *keyEntry)) {
	m.mu.RLock()
	if m.NoHistory || len(m.access.keys) != len(m.keys.byID) {
		for _, k := range m.keys.byID {
			f(k)
		}
		if m.listHeld != nil {
			m.listHeld(len(m.keys.byID))
		}
		m.mu.RUnlock()
		return
	}
	m.mu.RUnlock()
	for start := 0; ; start += listChunk {
		m.mu.RLock()
		order := m.access.keys
		if start >= len(order) {
			m.mu.RUnlock()
			return
		}
		part := order[start:min(start+listChunk, len(order))]
		for _, k := range part {
			if k != nil {
				f(k)
			}
		}
		if m.listHeld != nil {
			m.listHeld(len(part))
		}
		m.mu.RUnlock()
	}
}

// KeyListQuery says which keys a list (GET /api/v1/api-keys) asks for.
type KeyListQuery struct {
	// Sees reports whether the caller sees a key, given its ID, OwnerID
	// and Tenants only (the rest zero) — what it is chosen by, without
	// building each key's state — and again on the whole state of those
	// chosen. nil: every key. It is called with the model's read lock
	// held: it must not call the model.
	Sees func(domain.APIKey) bool
	// After: only the keys whose ID is after it ("": from the first).
	After string
	// Limit: at most this many keys (0: all of them).
	Limit int
}

// ListAPIKeys returns the keys q asks for, by ID, without their secrets'
// hashes, and next: the ID of the last one when there are more after it
// ("" when there are none). As ListUsers, it holds the lock for a chunk of
// keys at a time, keeps the best limit+1 in a bounded heap, and builds the
// state of those alone; a list reflects events applied during it in some
// keys and not in others.
func (m *Model) ListAPIKeys(q KeyListQuery) (keys []domain.APIKey, next string) {
	// The ID as the walk read it: the entry is written under the lock.
	type chosen struct {
		k  *keyEntry
		id string
	}
	byID := func(a, b chosen) int { return strings.Compare(a.id, b.id) }
	sel := smallest[chosen]{keep: q.Limit + 1, cmp: byID}
	var all []chosen
	m.walkKeys(func(k *keyEntry) {
		if q.After != "" && k.id <= q.After {
			return
		}
		if q.Sees != nil && !q.Sees(domain.APIKey{ID: k.id, OwnerID: k.owner, Tenants: k.tenants}) {
			return
		}
		if q.Limit == 0 {
			all = append(all, chosen{k, k.id})
		} else {
			sel.offer(chosen{k, k.id})
		}
	})
	if q.Limit == 0 {
		slices.SortFunc(all, byID)
	} else if all = sel.sorted(); len(all) > q.Limit {
		all = all[:q.Limit]
		next = all[len(all)-1].id
	}
	out := make([]domain.APIKey, 0, len(all))
	for len(all) > 0 {
		part := all[:min(len(all), listChunk)]
		all = all[len(part):]
		m.mu.RLock()
		for _, c := range part {
			if st := c.k.state(""); q.Sees == nil || q.Sees(st) {
				out = append(out, st)
			}
		}
		if m.listHeld != nil {
			m.listHeld(len(part))
		}
		m.mu.RUnlock()
	}
	return out, next
}

// KeyPrincipal is what the request path knows about an API key's holder.
// Its Owner comes without PasswordHashSealed (see Principal).
type KeyPrincipal struct {
	Key   domain.APIKey
	Owner domain.User
}

// Verdicts of AuthorizeKey beside Valid.
const (
	UnknownKey Verdict = iota + 16
	KeyRevoked
	KeyExpired
	KeyIPDenied
	KeyOwnerInactive
)

// AuthorizeKey finds the key whose secret hashes to secretHash (hex, as
// commands.HashToken writes it) and checks, under one read lock, that it is
// not revoked or expired, that addr is on its allowlist and that its owner is
// active. The hash lookup is a map lookup on a SHA-256 of a 256-bit secret:
// it reveals nothing by timing that a constant-time comparison would hide.
func (m *Model) AuthorizeKey(secretHash string, addr netip.Addr, now time.Time) (KeyPrincipal, Verdict) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k := m.keys.lookup(secretHash)
	if k == nil {
		k = m.keys.revokedSecret(secretHash) // refused below as revoked, by its ID
	}
	return m.authorizeKey(k, secretHash, addr, now)
}

// AuthorizeKeySum is AuthorizeKey with the SHA-256 of the secret as bytes (the
// request path: no hex encoding). The key comes back without its SecretHash:
// the caller holds the secret itself.
func (m *Model) AuthorizeKeySum(sum [32]byte, addr netip.Addr, now time.Time) (KeyPrincipal, Verdict) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k := m.keys.find(&sum)
	if k == nil {
		k = m.keys.wasRevoked(&sum) // refused below as revoked, by its ID
	}
	return m.authorizeKey(k, "", addr, now)
}

// authorizeKey checks k (nil: unknown); called with the read lock held.
func (m *Model) authorizeKey(k *keyEntry, secretHash string, addr netip.Addr, now time.Time) (KeyPrincipal, Verdict) {
	if k == nil {
		return KeyPrincipal{}, UnknownKey
	}
	key := k.state(secretHash)
	// A refused key is named (Key, no Owner): the refusal is logged by its
	// ID (http/refusals.go).
	switch {
	case key.Revoked:
		return KeyPrincipal{Key: key}, KeyRevoked
	case key.Expired(now):
		return KeyPrincipal{Key: key}, KeyExpired
	case !key.AllowsIP(addr):
		return KeyPrincipal{Key: key}, KeyIPDenied
	}
	owner, ok := k.ownerRec-1, k.ownerRec != 0
	if !ok {
		owner, ok = m.users.find(key.OwnerID) // created after the key
	}
	if !ok || m.users.recs.at(owner).flags&uActive == 0 {
		return KeyPrincipal{Key: key}, KeyOwnerInactive
	}
	return KeyPrincipal{Key: key, Owner: m.users.state(owner, false)}, Valid
}

// KeyBySecretHash finds the live key whose current secret hashes to secretHash.
func (m *Model) KeyBySecretHash(secretHash string) (domain.APIKey, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k := m.keys.lookup(secretHash)
	if k == nil {
		return domain.APIKey{}, false
	}
	return k.state(secretHash), true
}

var verdictNames = map[Verdict]string{
	Valid: "valid", UnknownSession: "unknown_session", SessionRevoked: "session_revoked",
	TokenRevoked: "token_revoked", UserInactive: "user_inactive", SessionExpired: "session_expired",
	UnknownKey: "unknown_key", KeyRevoked: "key_revoked", KeyExpired: "key_expired",
	KeyIPDenied: "key_ip_denied", KeyOwnerInactive: "key_owner_inactive",
}

// String names the verdict (a metrics label).
func (v Verdict) String() string {
	if n, ok := verdictNames[v]; ok {
		return n
	}
	return "unknown"
}
