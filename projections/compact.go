package projections

import (
	"encoding/base64"
	"encoding/hex"
	"hash/maphash"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/oklog/ulid/v2"
)

// The compact forms the read models keep their entities in (users.go,
// sessions.go). A deployment may hold millions of users and sessions on
// every replica, so each is a fixed-size record without pointers where a
// value will do, kept in chunked tables, and found through maps of 32-bit
// hashes to record numbers; what is variable (a user's strings) is one
// allocation per entity. The domain types are built from them at the method
// boundary, without allocating on the request path.

// ---------------------------------------------------------------- IDs

// crockford is the value of each character of Crockford base32 as ULIDs
// are written (upper case, without I, L, O, U); 0xff for any other byte.
var crockford = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789ABCDEFGHJKMNPQRSTVWXYZ" {
		t[c] = byte(i)
	}
	return t
}()

// parseID reads an ID as commands.NewID writes them — prefix, "-", a ULID
// in its canonical 26 characters — into its 16 bytes. It is false for any
// other string (another prefix, lower case, a non-ULID), which formatID
// could not give back as it was.
func parseID(s, prefix string) (id [16]byte, ok bool) {
	n := len(prefix)
	if len(s) != n+1+ulid.EncodedSize || s[:n] != prefix || s[n] != '-' {
		return id, false
	}
	t := s[n+1:]
	var v [ulid.EncodedSize]byte
	bad := byte(0)
	for i := range v {
		v[i] = crockford[t[i]]
		bad |= v[i]
	}
	// 26 characters hold 130 bits: the first at most 3 of them.
	if bad&0xe0 != 0 || v[0] > 7 {
		return id, false
	}
	id[0] = v[0]<<5 | v[1]
	id[1] = v[2]<<3 | v[3]>>2
	id[2] = v[3]<<6 | v[4]<<1 | v[5]>>4
	id[3] = v[5]<<4 | v[6]>>1
	id[4] = v[6]<<7 | v[7]<<2 | v[8]>>3
	id[5] = v[8]<<5 | v[9]
	id[6] = v[10]<<3 | v[11]>>2
	id[7] = v[11]<<6 | v[12]<<1 | v[13]>>4
	id[8] = v[13]<<4 | v[14]>>1
	id[9] = v[14]<<7 | v[15]<<2 | v[16]>>3
	id[10] = v[16]<<5 | v[17]
	id[11] = v[18]<<3 | v[19]>>2
	id[12] = v[19]<<6 | v[20]<<1 | v[21]>>4
	id[13] = v[21]<<4 | v[22]>>1
	id[14] = v[22]<<7 | v[23]<<2 | v[24]>>3
	id[15] = v[24]<<5 | v[25]
	return id, true
}

// formatID is prefix-<ULID> (allocates).
func formatID(prefix string, id [16]byte) string {
	var buf [64]byte
	n := copy(buf[:], prefix)
	buf[n] = '-'
	_ = ulid.ULID(id).MarshalTextTo(buf[n+1 : n+1+ulid.EncodedSize])
	return string(buf[:n+1+ulid.EncodedSize])
}

// ---------------------------------------------------------------- hashes

// hashSeed seeds the 32-bit hashes of the indexes (per process: indexes are
// rebuilt, never stored).
var hashSeed = maphash.MakeSeed()

func hashString(s string) uint32 { return uint32(maphash.String(hashSeed, s)) }

func hashID(id *[16]byte) uint32 { return uint32(maphash.Bytes(hashSeed, id[:])) }

// hashSum keys a SHA-256 in an index. Hashed again, not cut: hashes that
// are not a SHA-256's output (sequential test values, say) would share
// their first bytes and pile up in one run of the table.
func hashSum(sum *[32]byte) uint32 { return uint32(maphash.Bytes(hashSeed, sum[:])) }

func formatHash(sum *[32]byte) string { return hex.EncodeToString(sum[:]) }

// ---------------------------------------------------------------- times

// stamp is a time as Unix nanoseconds, in UTC, with its sign bit flipped so
// that the zero stamp is the zero time (a zeroed record holds zero times). A
// time out of the range of Unix nanoseconds (years 1678-2262) is stampOdd,
// and kept aside as it is (oddTimes). Differences between stamps are those
// between their nanoseconds.
type stamp int64

const (
	stampZero stamp = 0
	stampOdd  stamp = 1
	// stampMaxSec bounds the seconds of a time kept as a stamp: Unix
	// nanoseconds hold about ±292 years.
	stampMaxSec = 9_000_000_000
)

func stampOf(ns int64) stamp { return stamp(uint64(ns) ^ 1<<63) }

func (s stamp) nanos() int64 { return int64(uint64(s) ^ 1<<63) }

// toStamp is t as a stamp; false when t must be kept aside.
func toStamp(t time.Time) (stamp, bool) {
	if t.IsZero() {
		return stampZero, true
	}
	if s := t.Unix(); s < -stampMaxSec || s > stampMaxSec {
		return stampOdd, false
	}
	return stampOf(t.UnixNano()), true
}

// time is the stamp as a time in UTC (the zero time for stampZero). An odd
// stamp is resolved by the owner (oddTimes).
func (s stamp) time() time.Time {
	if s == stampZero || s == stampOdd {
		return time.Time{}
	}
	return time.Unix(0, s.nanos()).UTC()
}

// oddTimeKey names a time field of a record kept aside.
type oddTimeKey struct {
	Kind  uint8 // oddUserTime, oddExtraTime, oddSessionTime
	Field uint8
	Rec   uint32
}

const (
	oddUserTime uint8 = iota + 1
	oddExtraTime
	oddSessionTime
)

// oddTimes holds the times that are not stamps. It is nil until one comes.
type oddTimes map[oddTimeKey]time.Time

// put stores t for the field and returns its stamp.
func (o *oddTimes) put(k oddTimeKey, t time.Time) stamp {
	s, ok := toStamp(t)
	if ok {
		if *o != nil {
			delete(*o, k)
		}
		return s
	}
	if *o == nil {
		*o = make(oddTimes)
	}
	(*o)[k] = t.UTC()
	return stampOdd
}

// get is the time of a stamp, looked up aside when odd.
func (o oddTimes) get(k oddTimeKey, s stamp) time.Time {
	if s == stampOdd {
		return o[k]
	}
	return s.time()
}

// before reports whether now is before the stamp's time.
func (o oddTimes) before(now time.Time, k oddTimeKey, s stamp) bool {
	if s == stampOdd || s == stampZero {
		return now.Before(o.get(k, s))
	}
	if sec := now.Unix(); sec < -stampMaxSec || sec > stampMaxSec {
		return now.Before(s.time())
	}
	return now.UnixNano() < s.nanos()
}

// ---------------------------------------------------------------- sealed hashes

// sealPrefix starts a sealed value (events.Sealer).
const sealPrefix = "aesgcm1:"

var sealEncoding = base64.RawURLEncoding

// packSealed is a sealed value as its bytes, when unpackSealed gives it back
// exactly; else ok is false and it is kept as text.
func packSealed(s string) (raw []byte, ok bool) {
	rest, found := strings.CutPrefix(s, sealPrefix)
	if !found || len(rest) > 4096 {
		return nil, false
	}
	raw, err := sealEncoding.DecodeString(rest)
	if err != nil {
		return nil, false
	}
	var buf [4096]byte
	enc := buf[:sealEncoding.EncodedLen(len(raw))]
	sealEncoding.Encode(enc, raw)
	if string(enc) != rest {
		return nil, false
	}
	return raw, true
}

func unpackSealed(raw string) string {
	b := make([]byte, len(sealPrefix)+sealEncoding.EncodedLen(len(raw)))
	copy(b, sealPrefix)
	sealEncoding.Encode(b[len(sealPrefix):], unsafe.Slice(unsafe.StringData(raw), len(raw)))
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// ---------------------------------------------------------------- tables

// chunkBits: records are kept in chunks of 1,024.
const (
	chunkBits = 10
	chunkLen  = 1 << chunkBits
	chunkMask = chunkLen - 1
)

// cow shares chunks with a snapshot being written (snapshot.go): while a
// snapshot holds the chunks of epoch frozen and before, a write to one of
// them copies the chunk first, so that the snapshot reads the state it
// froze without holding any lock.
type cow struct {
	epoch  uint64        // of chunks made now; guarded by Model.mu
	frozen atomic.Uint64 // chunks of an earlier epoch are a snapshot's (0: none)
}

type chunk[T any] struct {
	epoch uint64
	recs  [chunkLen]T
}

// table is a growable array of records in chunks, with a free list. Record
// numbers stay valid until freed.
type table[T any] struct {
	chunks []*chunk[T]
	n      uint32   // records ever allocated (the high-water mark)
	free   []uint32 // freed records, reused first
}

// at is record i, for reading.
func (t *table[T]) at(i uint32) *T { return &t.chunks[i>>chunkBits].recs[i&chunkMask] }

// mut is record i, for writing: copied out of a snapshot's chunk first.
func (t *table[T]) mut(c *cow, i uint32) *T {
	ch := t.chunks[i>>chunkBits]
	if ch.epoch < c.frozen.Load() {
		cp := new(chunk[T])
		*cp = *ch
		cp.epoch = c.epoch
		t.chunks[i>>chunkBits], ch = cp, cp
	}
	return &ch.recs[i&chunkMask]
}

// alloc returns a zeroed record's number.
func (t *table[T]) alloc(c *cow) uint32 {
	if n := len(t.free); n > 0 {
		i := t.free[n-1]
		t.free = t.free[:n-1]
		var zero T
		*t.mut(c, i) = zero
		return i
	}
	if t.n&chunkMask == 0 && int(t.n>>chunkBits) == len(t.chunks) {
		t.chunks = append(t.chunks, &chunk[T]{epoch: c.epoch})
	}
	t.n++
	return t.n - 1
}

// release zeroes record i and makes it free.
func (t *table[T]) release(c *cow, i uint32) {
	var zero T
	*t.mut(c, i) = zero
	t.free = append(t.free, i)
}

// frozenCopy is the table as it is now, for a snapshot: the chunk list is
// copied, the chunks shared (cow).
func (t *table[T]) frozenCopy() table[T] {
	return table[T]{chunks: append([]*chunk[T](nil), t.chunks...), n: t.n}
}

// grow makes room for n records (Restore).
func (t *table[T]) grow(c *cow, n uint32) {
	for uint32(len(t.chunks))*chunkLen < n {
		t.chunks = append(t.chunks, &chunk[T]{epoch: c.epoch})
	}
	t.n = n
}

// ---------------------------------------------------------------- indexes

// htab finds records by a key through the key's 32-bit hash: an open
// addressing table of hash<<32 | record+1 (0: empty), with linear probing
// from a home slot that grows with the hash (home), kept in order of hash.
// The owner checks that a record found has the key (is); keys of equal
// hash sit side by side. In order, a search stops at the first larger hash,
// the table grows by copying it in one sequential pass, and a restore
// builds it from the sorted hashes in another (build) — no random writes,
// which cost a cache miss each. At most 85% full: about 10 bytes a key.
type htab struct {
	slots []uint64 // home slots, then a tail for the last ones pushed past the end
	size  uint64   // home slots
	n     int
}

const (
	htabMaxLoad = 0.85
	htabMinSize = 64
)

func (t *htab) home(h uint32) int { return int(uint64(h) * t.size >> 32) }

// get returns the record whose hash is h and that has the key (is).
func (t *htab) get(h uint32, is func(uint32) bool) (uint32, bool) {
	for i := t.home(h); i < len(t.slots); i++ {
		s := t.slots[i]
		if s == 0 || uint32(s>>32) > h {
			break
		}
		if uint32(s>>32) == h && is(uint32(s)-1) {
			return uint32(s) - 1, true
		}
	}
	return 0, false
}

// put makes the key of hash h find record r, in place of the record that
// has it (is), if any.
func (t *htab) put(h uint32, r uint32, is func(uint32) bool) {
	if float64(t.n+1) > htabMaxLoad*float64(t.size) {
		t.grow()
	}
	v := uint64(h)<<32 | uint64(r+1)
	i := t.home(h)
	for ; i < len(t.slots); i++ {
		s := t.slots[i]
		if s == 0 || uint32(s>>32) > h {
			break
		}
		if uint32(s>>32) == h && is(uint32(s)-1) {
			t.slots[i] = v
			return
		}
	}
	// Insert at i, moving the run after it one slot on.
	j := i
	for j < len(t.slots) && t.slots[j] != 0 {
		j++
	}
	if j == len(t.slots) {
		t.slots = append(t.slots, 0)
	}
	copy(t.slots[i+1:j+1], t.slots[i:j])
	t.slots[i] = v
	t.n++
}

// del forgets that the key of hash h finds record r.
func (t *htab) del(h uint32, r uint32) {
	v := uint64(h)<<32 | uint64(r+1)
	i := t.home(h)
	for ; i < len(t.slots) && t.slots[i] != v; i++ {
		if t.slots[i] == 0 || uint32(t.slots[i]>>32) > h {
			return
		}
	}
	if i == len(t.slots) {
		return
	}
	// Move back what follows, up to an empty slot or an entry at home.
	j := i + 1
	for j < len(t.slots) && t.slots[j] != 0 && t.home(uint32(t.slots[j]>>32)) < j {
		j++
	}
	copy(t.slots[i:j-1], t.slots[i+1:j])
	t.slots[j-1] = 0
	t.n--
}

// grow makes the table a quarter larger, in one pass.
func (t *htab) grow() {
	old := t.slots
	t.size = max(htabMinSize, t.size+t.size/4)
	t.slots = make([]uint64, t.size)
	t.place(old)
}

// place lays out sorted entries (zeroes skipped) in t.slots, each at its
// home or just after the one before.
func (t *htab) place(sorted []uint64) {
	next, n := 0, 0
	for _, s := range sorted {
		if s == 0 {
			continue
		}
		i := max(t.home(uint32(s>>32)), next)
		if i >= len(t.slots) {
			t.slots = append(t.slots, make([]uint64, i+1-len(t.slots))...)
		}
		t.slots[i] = s
		next, n = i+1, n+1
	}
	t.n = n
}

// build makes the table of entries (hash<<32 | record+1), which it sorts.
func (t *htab) build(entries []uint64) {
	sortByHash(entries)
	t.size = max(htabMinSize, uint64(float64(len(entries))/0.75))
	t.slots = make([]uint64, t.size)
	t.place(entries)
}

func htabEntry(h, r uint32) uint64 { return uint64(h)<<32 | uint64(r+1) }

// sortByHash sorts entries by their hash (the high 32 bits): a radix sort,
// three passes of 11 bits, some ten times faster than a comparison sort of
// millions.
func sortByHash(a []uint64) {
	if len(a) < 256 {
		slices.Sort(a)
		return
	}
	tmp := make([]uint64, len(a))
	src, dst := a, tmp
	for shift := 32; shift < 64; shift += 11 {
		var count [1 << 11]int
		for _, v := range src {
			count[v>>shift&(1<<11-1)]++
		}
		pos := 0
		for i, c := range count {
			count[i], pos = pos, pos+c
		}
		for _, v := range src {
			d := v >> shift & (1<<11 - 1)
			dst[count[d]] = v
			count[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &a[0] {
		copy(a, src)
	}
}

// ---------------------------------------------------------------- arena

// arena keeps strings that are never changed once written back to back in
// slabs of 1 MiB, each found by a 32-bit handle (slab<<20 | offset): no
// allocation, header or rounding per string, and no pointer for the
// collector to follow. A snapshot shares the slabs: what it reads was
// written before it was taken, and nothing is ever written over.
type arena struct {
	slabs [][]byte
}

const (
	arenaSlabBits = 20
	arenaSlabSize = 1 << arenaSlabBits
	arenaMaxSlabs = 1 << (32 - arenaSlabBits) // 4 GiB
)

// add copies b into the arena; false when it is full (or b larger than a
// slab).
func (a *arena) add(b []byte) (uint32, bool) {
	if len(b) > arenaSlabSize {
		return 0, false
	}
	n := len(a.slabs)
	if n == 0 || len(a.slabs[n-1])+len(b) > arenaSlabSize {
		if n == arenaMaxSlabs {
			return 0, false
		}
		a.slabs = append(a.slabs, make([]byte, 0, arenaSlabSize))
		n++
	}
	s := &a.slabs[n-1]
	off := len(*s)
	*s = append(*s, b...)
	return uint32(n-1)<<arenaSlabBits | uint32(off), true
}

// ptr is where handle h's string starts.
func (a *arena) ptr(h uint32) *byte {
	return (*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(a.slabs[h>>arenaSlabBits])), h&(arenaSlabSize-1)))
}

// frozenCopy is the arena for a snapshot (the slabs shared).
func (a *arena) frozenCopy() arena { return arena{slabs: slices.Clone(a.slabs)} }

// ---------------------------------------------------------------- slot pools

// slotPools keep byte strings that are replaced now and then (sealed
// password hashes) in pools of slots of one size each (pool 0: none), in
// slabs of poolSlabSlots: a replaced one's slot is reused. While a snapshot
// is being written, freed slots are held back, since the snapshot may
// still read them.
type slotPools struct {
	pools []*slotPool // by number - 1
}

type slotPool struct {
	size  int
	slabs [][]byte
	n     uint32
	free  []uint32
	held  []uint32 // freed while a snapshot was frozen
}

const poolSlabSlots = 4096

// add copies b into a slot of the pool of its size, and returns both;
// false when there are 255 pools of other sizes.
func (ps *slotPools) add(c *cow, b []byte) (uint8, uint32, bool) {
	var p *slotPool
	var id int
	for i, q := range ps.pools {
		if q.size == len(b) {
			p, id = q, i+1
			break
		}
	}
	if p == nil {
		if len(ps.pools) == 255 {
			return 0, 0, false
		}
		p = &slotPool{size: len(b)}
		ps.pools = append(ps.pools, p)
		id = len(ps.pools)
	}
	slot := p.alloc(c)
	copy(p.bytes(slot), b)
	return uint8(id), slot, true
}

func (p *slotPool) alloc(c *cow) uint32 {
	if len(p.held) > 0 && c.frozen.Load() == 0 {
		p.free, p.held = append(p.free, p.held...), p.held[:0]
	}
	if n := len(p.free); n > 0 {
		slot := p.free[n-1]
		p.free = p.free[:n-1]
		return slot
	}
	if p.n%poolSlabSlots == 0 {
		p.slabs = append(p.slabs, make([]byte, poolSlabSlots*p.size))
	}
	p.n++
	return p.n - 1
}

func (p *slotPool) bytes(slot uint32) []byte {
	off := int(slot%poolSlabSlots) * p.size
	return p.slabs[slot/poolSlabSlots][off : off+p.size : off+p.size]
}

func (ps *slotPools) str(pool uint8, slot uint32) string {
	b := ps.pools[pool-1].bytes(slot)
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// release frees a slot (held back while a snapshot is frozen).
func (ps *slotPools) release(c *cow, pool uint8, slot uint32) {
	p := ps.pools[pool-1]
	if c.frozen.Load() != 0 {
		p.held = append(p.held, slot)
	} else {
		p.free = append(p.free, slot)
	}
}

// frozenCopy is the pools for a snapshot (the slabs shared).
func (ps *slotPools) frozenCopy() slotPools {
	out := slotPools{pools: make([]*slotPool, len(ps.pools))}
	for i, p := range ps.pools {
		out.pools[i] = &slotPool{size: p.size, slabs: slices.Clone(p.slabs), n: p.n}
	}
	return out
}

// ---------------------------------------------------------------- strings

// strTable interns strings that many records share (tenants, revocation
// reasons) as numbers; 0 is "". It only grows: there are few of them.
type strTable struct {
	strs []string
	ids  map[string]uint32
}

func (t *strTable) id(s string) uint32 {
	if s == "" {
		return 0
	}
	if i, ok := t.ids[s]; ok {
		return i
	}
	if t.ids == nil {
		t.ids = make(map[string]uint32)
	}
	if len(t.strs) == 0 {
		t.strs = append(t.strs, "") // 0: ""
	}
	i := uint32(len(t.strs))
	s = strings.Clone(s)
	t.strs = append(t.strs, s)
	t.ids[s] = i
	return i
}

func (t *strTable) str(i uint32) string {
	if i == 0 {
		return ""
	}
	return t.strs[i]
}

// mapPtr identifies a map (equal for the same map).
func mapPtr[K comparable, V any](m map[K]V) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&m))
}
