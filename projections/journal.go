package projections

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"
	"weak"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// The audit journal (issue 16): one fixed-size entry per event the model
// applied, in stream order — its occurred_at, type, actor, a 32-bit hash of
// its aggregate ID and the set of tenants it concerns — in chunks of 1,024
// entries, column by column. An entry is never changed once appended. With
// Model.JournalDir set, a chunk that has filled is written to the journal
// file (journal_file.go) and dropped from the heap: what stays is the
// chunk being filled and, per chunk, where it is and the range of its
// times, some 40 bytes a chunk. A snapshot shares the chunks as they are
// (it reads only the entries appended before it was frozen), and so does
// AuditEvents, which scans them after it has let go of the lock. The event
// bodies are not held: the audit API reads a page's events from the stream
// by sequence.

// jchunk holds 1,024 entries, column by column: 21 bytes an entry.
type jchunk struct {
	at    [chunkLen]int64  // occurred_at (jtime)
	subj  [chunkLen]uint32 // SubjectHash of the aggregate ID
	actor [chunkLen]uint32 // actorUser | user record, actorKey | key number, or journal.actors
	tset  [chunkLen]uint32 // journal.sets
	typ   [chunkLen]uint8  // journal.types (typeOdd: journal.oddTypes)
}

// jrun: from entry pos on, stream sequences go up by one from seq (a skipped
// or an ignored event starts a new run).
type jrun struct {
	pos uint32
	seq uint64
}

// journal is the audit journal. Positions count entries from 0; a ref, in
// the access history, is a position + 1 (0: none).
type journal struct {
	model *Model // its settings (JournalDir, OnJournalError); nil: in memory
	slots []*jslot
	n     uint32
	runs  []jrun
	// first is the first stream sequence the model saw, applied or skipped
	// (0: none yet). The history is complete when it is 1.
	first uint64
	start time.Time // entry 0's occurred_at
	// file holds the chunks that have filled (nil: none yet, or none kept
	// on file); pending are full chunks still in memory because writing
	// them failed: tried again when the next one fills.
	file    *jfile
	pending []uint32
	encBuf  []byte

	types    []string // event types, as they came (typeOdd: more than 255 of them)
	typeIDs  map[string]uint8
	oddTypes map[uint32]string // by position

	// The actors that are not a user or an API key the model has (system,
	// anonymous, ...): 0 is the zero actor.
	actors     []events.Actor
	actorIDs   map[events.Actor]uint32
	actorTypes []string       // the distinct types of actors, for a query by ID
	recent     [4]recentActor // the last actors, looked at first (events come in bursts of one actor's)
	recentNext uint8

	tenants strTable   // tenant names, shared with the access history
	sets    tenantSets // the sets of tenants events concern

	oddTimes map[uint32]time.Time // occurred_at out of the range of Unix nanoseconds, by position

	// Caches of concerns (not in snapshots): a user role set's tenant set,
	// by roleSets number; a session tenant's, by sessStore.tenants number +
	// 1; a key tenant list's, by the list (keyModel.tenantLists shares them).
	roleCache []roleTenants
	sessCache []uint32
	oneCache  []uint32 // a tenant's set of one, by tenant number + 1
	keyCache  map[tenantList]uint32
	typeCache []typeSeen
	scratch   []uint32
}

type recentActor struct {
	a  events.Actor
	id uint32
}

// typeSeen is an event type's number, by where its name is: the names
// events give are constants.
type typeSeen struct {
	p  *byte
	n  int
	id uint8
}

// touched is what Apply found of the event's aggregate: a user or session
// record + 1, a key.
type touched struct {
	user, sess uint32
	key        *keyEntry
}

func (t *touched) setUser(r uint32, ok bool) {
	if ok {
		t.user = r + 1
	}
}

func (t *touched) setSession(r uint32, ok bool) {
	if ok {
		t.sess = r + 1
	}
}

// roleTenants is a role set's tenant set, for as long as the role set's
// map lives (a role set number is reused for another map once its users
// have left it: the weak pointer keeps no map alive, and tells a new one
// from it).
type roleTenants struct {
	m    weak.Pointer[byte]
	tset uint32
}

const typeOdd = math.MaxUint8

// An entry's actor: a user (by record) or an API key (by number, keyEntry.hist
// - 1) the model has is not interned — there may be millions — but named by
// its number; another actor is interned (journal.actors).
const (
	actorUser = 1 << 30
	actorKey  = 2 << 30
	actorKind = 3 << 30
)

// jtime is occurred_at as the journal compares it: Unix nanoseconds;
// math.MinInt64 for the zero time; a time out of range is clamped (and kept
// aside, exactly).
func jtime(t time.Time) (int64, bool) {
	switch s := t.Unix(); {
	case t.IsZero():
		return math.MinInt64, true
	case s < -stampMaxSec:
		return math.MinInt64 + 1, false
	case s > stampMaxSec:
		return math.MaxInt64, false
	}
	return t.UnixNano(), true
}

// SubjectHash is the 32-bit hash the journal keeps of an aggregate ID: the
// same in every process and build (snapshots carry it). Eight bytes at a
// time, each folded in by a 64x64->128-bit multiplication (as wyhash does),
// the two halves of the result folded together. A subject filter matches
// the IDs of the same hash too (one in four billion): the caller confirms
// a match on the event's body.
func SubjectHash(id string) uint32 {
	const p0, p1 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db
	h := uint64(len(id)) ^ p0
	for ; len(id) >= 8; id = id[8:] {
		w := uint64(id[0]) | uint64(id[1])<<8 | uint64(id[2])<<16 | uint64(id[3])<<24 |
			uint64(id[4])<<32 | uint64(id[5])<<40 | uint64(id[6])<<48 | uint64(id[7])<<56
		h = mix64(h^w, p1)
	}
	var w uint64
	for i := 0; i < len(id); i++ {
		w |= uint64(id[i]) << (8 * i)
	}
	h = mix64(mix64(h^w, p1), p0)
	return uint32(h ^ h>>32)
}

func mix64(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// saw notes the first stream sequence the model sees.
func (j *journal) saw(seq uint64) {
	if j.first == 0 {
		j.first = seq
	}
}

// next is the ref the next entry will have (0: the journal is full — four
// billion events, as refs are 32-bit).
func (j *journal) next() uint32 {
	if j.n >= math.MaxUint32-1 {
		return 0
	}
	return j.n + 1
}

// append adds the entry of event ev at stream sequence seq, which concerns
// the tenant set tset, by actor (journal.actor; next is its ref).
func (j *journal) append(seq uint64, env *events.Envelope, ev domain.Event, tset, actor uint32) {
	j.saw(seq)
	pos := j.n
	if pos >= math.MaxUint32-1 {
		return
	}
	typ := ""
	if ev != nil {
		typ = ev.EventType()
	}
	k := pos >> chunkBits
	if pos&chunkMask == 0 && int(k) == len(j.slots) {
		s := new(jslot)
		s.mem.Store(new(jchunk))
		j.slots = append(j.slots, s)
	}
	if k := len(j.runs); k == 0 || j.runs[k-1].seq+uint64(pos-j.runs[k-1].pos) != seq {
		j.runs = append(j.runs, jrun{pos: pos, seq: seq})
	}
	// The chunk may be shared with a snapshot or a scan: they read only
	// the entries before pos, which are never written again.
	c := j.slots[k].mem.Load()
	i := pos & chunkMask
	at, ok := jtime(env.OccurredAt)
	if !ok {
		if j.oddTimes == nil {
			j.oddTimes = make(map[uint32]time.Time)
		}
		j.oddTimes[pos] = env.OccurredAt.UTC()
	}
	if pos == 0 {
		j.start = env.OccurredAt.UTC()
		if env.OccurredAt.IsZero() {
			j.start = time.Time{}
		}
	}
	c.at[i] = at
	c.subj[i] = SubjectHash(env.AggregateID)
	c.actor[i] = actor
	c.tset[i] = tset
	c.typ[i] = j.typeID(pos, typ)
	j.n = pos + 1
	if i == chunkMask {
		j.filled(k)
	}
}

// filled writes chunk k, which has just filled, to the journal file (and
// any chunk an earlier write failed for), when the model keeps one. A
// write that fails leaves its chunk in memory, where it answers as well,
// and is reported (Model.OnJournalError); it is tried again when the next
// chunk fills.
func (j *journal) filled(k uint32) {
	if j.model == nil || j.model.JournalDir == "" {
		return
	}
	j.pending = append(j.pending, k)
	for len(j.pending) > 0 {
		if err := j.spill(j.pending[0]); err != nil {
			if f := j.model.OnJournalError; f != nil {
				f(err)
			}
			return
		}
		j.pending = j.pending[1:]
	}
}

// spill writes full chunk k to the file and drops it from the heap.
func (j *journal) spill(k uint32) error {
	if j.file == nil {
		f, err := newJFile(j.model.JournalDir, j.model.journalDamaged)
		if err != nil {
			return err
		}
		j.file = f
	}
	s := j.slots[k]
	buf, w, lo, hi := encodeChunk(j.encBuf[:0], s.mem.Load(), chunkLen)
	j.encBuf = buf
	off, err := j.file.write(buf)
	if err != nil {
		return fmt.Errorf("%w (chunk %d kept in memory)", err, k)
	}
	s.file, s.off, s.size, s.widths, s.lo, s.hi = j.file, off, uint32(len(buf)), w, lo, hi
	s.mem.Store(nil) // after the fields above: a reader that sees nil sees them
	return nil
}

func (j *journal) typeID(pos uint32, typ string) uint8 {
	p := unsafe.StringData(typ)
	for _, t := range j.typeCache {
		if t.p == p && t.n == len(typ) {
			return t.id
		}
	}
	if id, ok := j.typeIDs[typ]; ok {
		if len(j.typeCache) < 64 {
			j.typeCache = append(j.typeCache, typeSeen{p: p, n: len(typ), id: id})
		}
		return id
	}
	if len(j.types) >= typeOdd {
		if j.oddTypes == nil {
			j.oddTypes = make(map[uint32]string)
		}
		j.oddTypes[pos] = strings.Clone(typ)
		return typeOdd
	}
	if j.typeIDs == nil {
		j.typeIDs = make(map[string]uint8)
	}
	typ = strings.Clone(typ)
	id := uint8(len(j.types))
	j.types = append(j.types, typ)
	j.typeIDs[typ] = id
	return id
}

func (j *journal) actor(a events.Actor) uint32 {
	if a == (events.Actor{}) {
		return 0
	}
	if id, ok := j.actorIDs[a]; ok {
		return id
	}
	if j.actorIDs == nil {
		j.actorIDs = make(map[events.Actor]uint32)
	}
	if len(j.actors) == 0 {
		j.actors = append(j.actors, events.Actor{})
	}
	a = events.Actor{Type: strings.Clone(a.Type), ID: strings.Clone(a.ID)}
	id := uint32(len(j.actors))
	if id >= actorUser {
		return 0 // a billion actors that are no user nor key: recorded as none
	}
	j.actors = append(j.actors, a)
	j.actorIDs[a] = id
	if !slices.Contains(j.actorTypes, a.Type) {
		j.actorTypes = append(j.actorTypes, a.Type)
	}
	return id
}

// actorNum is the journal's number of the event's actor: a user or an API
// key the model has by its number — the one the event is about, or its
// session's user, without a look-up; the last few actors; the indexes —
// and any other actor interned.
func (m *Model) actorNum(a *events.Actor, hit *touched) uint32 {
	j := &m.journal
	for _, r := range j.recent {
		if r.id != 0 && r.a == *a {
			return r.id
		}
	}
	id := uint32(0)
	switch a.Type {
	case "user":
		u := hit.user
		if u == 0 && hit.sess != 0 {
			u = m.sessions.recs.at(hit.sess - 1).user
		}
		if u != 0 && u-1 < actorUser && m.users.id(u-1) == a.ID {
			id = actorUser | (u - 1)
		} else if r, ok := m.users.find(a.ID); ok && r < actorUser {
			id = actorUser | r
		}
	case "apikey":
		k := hit.key
		if k == nil || k.id != a.ID {
			k = m.keys.byID[a.ID]
		}
		if k != nil && k.hist != 0 && k.hist-1 < actorUser {
			id = actorKey | (k.hist - 1)
		}
	}
	if id == 0 {
		id = j.actor(*a)
	}
	if id != 0 {
		j.recent[j.recentNext&3] = recentActor{a: *a, id: id}
		j.recentNext++
	}
	return id
}

// actorOf is the actor of number id.
func (m *Model) actorOf(id uint32) events.Actor {
	n := id &^ actorKind
	switch id & actorKind {
	case actorUser:
		if n < m.users.recs.n {
			return events.Actor{Type: "user", ID: m.users.id(n)}
		}
	case actorKey:
		if int(n) < len(m.access.keys) && m.access.keys[n] != nil {
			return events.Actor{Type: "apikey", ID: m.access.keys[n].id}
		}
	case 0:
		if int(n) < len(m.journal.actors) {
			return m.journal.actors[n]
		}
	}
	return events.Actor{}
}

// seqAt is the stream sequence of entry pos (< n).
func (j *journal) seqAt(pos uint32) uint64 {
	k := sort.Search(len(j.runs), func(i int) bool { return j.runs[i].pos > pos }) - 1
	r := j.runs[k]
	return r.seq + uint64(pos-r.pos)
}

// posAfter is the first position whose sequence is above seq (n if none).
func (j *journal) posAfter(seq uint64) uint32 {
	return uint32(sort.Search(int(j.n), func(p int) bool { return j.seqAt(uint32(p)) > seq }))
}

// entry is entry pos (< n): from memory, the cache, or read alone (what a
// ref needs of it, from its chunk read and checked: jfile.one); load:
// decode its chunk into the cache when it is on file (a question that will
// look at its neighbours).
func (j *journal) entry(pos uint32, load bool) (jentry, error) {
	k, i := pos>>chunkBits, pos&chunkMask
	s := j.slots[k]
	if c := s.mem.Load(); c != nil {
		return c.entry(i), nil
	}
	return s.file.entry(k, s, i, load)
}

// timeOf is the occurred_at of entry pos whose jtime is at.
func (j *journal) timeOf(pos uint32, at int64) time.Time {
	switch at {
	case math.MinInt64:
		return time.Time{}
	case math.MinInt64 + 1, math.MaxInt64:
		if t, ok := j.oddTimes[pos]; ok {
			return t
		}
	}
	return time.Unix(0, at).UTC()
}

func (j *journal) typeOf(pos uint32, typ uint8) string {
	if typ == typeOdd {
		return j.oddTypes[pos]
	}
	if int(typ) < len(j.types) {
		return j.types[typ]
	}
	return ""
}

// moment is a time as the journal compares it.
type moment struct {
	ns  int64
	t   time.Time
	odd bool
}

func momentOf(t time.Time) moment {
	ns, ok := jtime(t)
	return moment{ns: ns, t: t, odd: !ok}
}

// atBy reports whether entry pos, of jtime ns, occurred at or before at.
func (j *journal) atBy(pos uint32, ns int64, at moment) bool {
	if at.odd || ns == math.MinInt64+1 || ns == math.MaxInt64 {
		return !j.timeOf(pos, ns).After(at.t)
	}
	return ns <= at.ns
}

// hq reads the journal for one question asked under the model's read
// lock, and keeps the first error reading the journal file; once there is
// one, nothing more is read and the answer is the error.
type hq struct {
	m   *Model
	j   *journal
	err error
}

func (m *Model) question() *hq { return &hq{m: m, j: &m.journal} }

// by reports whether the event of ref r occurred at or before at: whether
// it has taken effect at that moment (ref 0: never). An entry on file is
// read only when the range of its chunk's times does not tell.
func (q *hq) by(r uint32, at moment) bool {
	j := q.j
	if r == 0 || r > j.n || q.err != nil {
		return false
	}
	pos := r - 1
	s := j.slots[pos>>chunkBits]
	if c := s.mem.Load(); c != nil {
		return j.atBy(pos, c.at[pos&chunkMask], at)
	}
	if !at.odd { // then the entries' jtimes compare as their times
		switch {
		case s.hi <= at.ns:
			return true
		case s.lo > at.ns:
			return false
		}
	}
	e, err := j.entry(pos, true)
	if err != nil {
		q.err = err
		return false
	}
	return j.atBy(pos, e.at, at)
}

// ref is the event of a ref (position + 1), for an answer's "why".
func (q *hq) ref(r uint32) EventRef {
	j := q.j
	if r == 0 || r > j.n || q.err != nil {
		return EventRef{}
	}
	pos := r - 1
	e, err := j.entry(pos, false)
	if err != nil {
		q.err = err
		return EventRef{}
	}
	a := q.m.actorOf(e.actor)
	return EventRef{Seq: j.seqAt(pos), Time: j.timeOf(pos, e.at), Type: j.typeOf(pos, e.typ), ActorType: a.Type, ActorID: a.ID}
}

// view is the journal as it is now, for a reader that goes on without the
// lock (a snapshot, a scan): the slots, which are never replaced, and the
// lists, which only grow, shared; the maps Apply writes copied.
func (j *journal) view() journal {
	return journal{
		slots: j.slots[:len(j.slots):len(j.slots)], n: j.n, runs: j.runs[:len(j.runs):len(j.runs)], first: j.first, start: j.start,
		types: j.types[:len(j.types):len(j.types)], oddTypes: cloneSmall(j.oddTypes), actors: j.actors[:len(j.actors):len(j.actors)],
		tenants:  strTable{strs: j.tenants.strs[:len(j.tenants.strs):len(j.tenants.strs)]},
		sets:     tenantSets{off: j.sets.off[:len(j.sets.off):len(j.sets.off)], members: j.sets.members[:len(j.sets.members):len(j.sets.members)]},
		oddTimes: cloneSmall(j.oddTimes),
	}
}

func cloneSmall[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ---------------------------------------------------------------- tenant sets

// tenantSets interns the sets of tenants events concern: each distinct set
// is a list of tenant numbers (journal.tenants) in order of name, held once,
// and found by its hash. Set 0 is no tenant (the platform's own events),
// set 1 every tenant (a platform-wide key's). The lists only grow.
type tenantSets struct {
	// slots find a set by its hash (setHash): open addressing, the sets'
	// numbers (0: empty), at most three quarters full — some 6 bytes a set.
	slots   []uint32
	used    int
	off     []uint32 // set i is members[off[i]:off[i+1]]
	members []uint32
}

const (
	tsetNone = 0
	tsetAll  = 1
)

func (ts *tenantSets) count() uint32 {
	if len(ts.off) == 0 {
		return 2
	}
	return uint32(len(ts.off) - 1)
}

func (ts *tenantSets) set(i uint32) []uint32 {
	if i < 2 || int(i) >= len(ts.off)-1 {
		return nil
	}
	return ts.members[ts.off[i]:ts.off[i+1]]
}

func setHash(nums []uint32) uint64 {
	const p0, p1 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db
	h := uint64(len(nums)) ^ p0
	for _, n := range nums {
		h = mix64(h^uint64(n), p1)
	}
	return h
}

// find is the set of nums and true, or the slot to put it in and false
// (slots not empty).
func (ts *tenantSets) find(nums []uint32) (uint32, int, bool) {
	mask := len(ts.slots) - 1
	for i := int(setHash(nums)) & mask; ; i = (i + 1) & mask {
		id := ts.slots[i]
		if id == 0 {
			return 0, i, false
		}
		if slices.Equal(ts.set(id), nums) {
			return id, i, true
		}
	}
}

// index puts set id in the slots (made larger when they are three
// quarters full), unless an equal set is there.
func (ts *tenantSets) index(id uint32) {
	if (ts.used+1)*4 > len(ts.slots)*3 {
		old := ts.slots
		ts.slots, ts.used = make([]uint32, max(64, 2*len(old))), 0
		for _, o := range old {
			if o != 0 {
				ts.index(o)
			}
		}
	}
	if _, i, found := ts.find(ts.set(id)); !found {
		ts.slots[i] = id
		ts.used++
	}
}

// intern returns the set of tenant numbers nums (sorted by name, distinct).
func (ts *tenantSets) intern(nums []uint32) uint32 {
	if len(nums) == 0 {
		return tsetNone
	}
	if len(ts.slots) > 0 {
		if id, _, ok := ts.find(nums); ok {
			return id
		}
	}
	if len(ts.off) == 0 {
		ts.off = []uint32{0, 0, 0} // sets 0 and 1 have no members
	}
	id := uint32(len(ts.off) - 1)
	ts.members = append(ts.members, nums...)
	ts.off = append(ts.off, uint32(len(ts.members)))
	ts.index(id)
	return id
}

// tenantSet returns the set of the named tenants (AllTenants among them:
// every tenant; "" is no tenant).
func (j *journal) tenantSet(names []string) uint32 {
	nums := j.scratch[:0]
	for _, t := range names {
		switch t {
		case domain.AllTenants:
			return tsetAll
		case "":
			continue
		}
		nums = append(nums, j.tenants.id(t))
	}
	j.scratch = nums
	return j.sets.intern(j.sortTenants(nums))
}

// sortTenants orders tenant numbers by name and drops repeats.
func (j *journal) sortTenants(nums []uint32) []uint32 {
	if len(nums) > 1 {
		slices.SortFunc(nums, func(a, b uint32) int { return cmp.Compare(j.tenants.str(a), j.tenants.str(b)) })
		nums = slices.Compact(nums)
	}
	return nums
}

// oneTenant returns the set of one tenant.
func (j *journal) oneTenant(t string) uint32 {
	if t == "" {
		return tsetNone
	}
	n := j.tenants.id(t)
	for int(n) >= len(j.oneCache) {
		j.oneCache = append(j.oneCache, 0)
	}
	if j.oneCache[n] == 0 {
		j.scratch = append(j.scratch[:0], n)
		j.oneCache[n] = j.sets.intern(j.scratch) + 1
	}
	return j.oneCache[n] - 1
}

// ---------------------------------------------------------------- concerns

// concerns returns the set of tenants event ev concerns. An event concerns:
//
//	event                                    tenants it concerns
//	user.created                             the tenants of its tenant roles
//	user.role_granted, user.role_revoked     that tenant
//	user.deactivated, user.activated,        the tenants where the user held a role
//	user.password_changed,                     at that moment
//	user.profile_changed,
//	user.login_succeeded, user.login_failed
//	  (of an existing user)
//	user.login_failed on an unknown name,    none (the platform's own)
//	username.reserved
//	session.started                          its tenant if it is scoped to one, else
//	                                           the user's tenants at that moment
//	session.*                                the session's tenant if it is scoped to
//	                                           one, else its user's tenants at that
//	                                           moment (none once the session is pruned)
//	apikey.*                                 the key's tenants; every tenant for a
//	                                           platform-wide key ("*")
//	sso.identity_linked, sso.identity_unlinked  the (un)linked user's tenants at that moment
//	sso.provider_*, sso.assertion_consumed,  none (the platform's own)
//	signingkey.*, any other event
//
// "At that moment" is as the stream has it just before the event: a role
// granted by an earlier event counts, one granted by a later one does not.
// Apply calls it once it has applied ev, with what it found (hit): none of
// these events changes the tenants it is judged by, so the state after it
// gives the same answer, without looking the aggregate up again.
func (m *Model) concerns(env *events.Envelope, ev domain.Event, hit *touched) uint32 {
	j := &m.journal
	switch e := ev.(type) {
	case domain.UserCreated:
		nums := j.scratch[:0]
		for _, tr := range e.Tenants {
			if tr.Tenant != "" {
				nums = append(nums, j.tenants.id(tr.Tenant))
			}
		}
		j.scratch = nums
		return j.sets.intern(j.sortTenants(nums))
	case domain.UserRoleGranted:
		return j.oneTenant(e.Tenant)
	case domain.UserRoleRevoked:
		return j.oneTenant(e.Tenant)
	case domain.UserDeactivated, domain.UserLoginSucceeded, domain.UserPasswordChanged, domain.UserProfileChanged, domain.UserLoginFailed, domain.MFAFailed:
		if hit.user == 0 {
			return tsetNone
		}
		return m.userTenantSet(hit.user - 1)
	case domain.UserActivated:
		if hit.user == 0 {
			return m.userConcerns(env.AggregateID)
		}
		return m.userTenantSet(hit.user - 1)
	case domain.UserLoginChallenged: // on a login_challenge subject of its own
		return m.userConcerns(e.UserID)
	case domain.SessionStarted:
		if e.Tenant != "" {
			return j.oneTenant(e.Tenant)
		}
		return m.userConcerns(e.UserID)
	case domain.SessionRefreshed, domain.SessionTokenRevoked, domain.SessionRevoked, domain.SessionRefreshReused:
		if hit.sess == 0 {
			return tsetNone
		}
		return m.sessionConcerns(hit.sess - 1)
	case domain.APIKeyCreated, domain.APIKeyRotated, domain.APIKeyRevoked, domain.APIKeyUsed:
		if hit.key == nil {
			return tsetNone
		}
		return m.keyConcerns(hit.key)
	case domain.SSOIdentityLinked:
		return m.userConcerns(e.UserID)
	case domain.SSOIdentityUnlinked:
		return m.userConcerns(e.UserID)
	case domain.MFATOTPEnrolled, domain.MFATOTPConfirmed, domain.MFACodeUsed, domain.MFARecoveryCodesGenerated,
		domain.MFARecoveryCodeUsed, domain.MFAPasskeyRegistered, domain.MFAPasskeyUsed, domain.MFAPasskeyDeleted, domain.MFAReset:
		return m.userConcerns(env.AggregateID) // the user's tenants (mfa.go)
	case domain.MFAPolicySet:
		if e.Scope != domain.MFAPolicyPlatform {
			return j.oneTenant(e.Scope)
		}
	}
	return tsetNone
}

// userConcerns is the set of tenants where user id holds a role.
func (m *Model) userConcerns(id string) uint32 {
	r, ok := m.users.find(id)
	if !ok {
		return tsetNone
	}
	return m.userTenantSet(r)
}

func (m *Model) userTenantSet(r uint32) uint32 {
	j := &m.journal
	i := m.users.recs.at(r).roles
	roles := m.users.sets.set(i)
	if len(roles) == 0 {
		return tsetNone
	}
	p := (*byte)(mapPtr(roles))
	if int(i) < len(j.roleCache) && j.roleCache[i].m.Value() == p {
		return j.roleCache[i].tset
	}
	nums := j.scratch[:0]
	for t := range roles {
		if t != "" {
			nums = append(nums, j.tenants.id(t))
		}
	}
	j.scratch = nums
	tset := j.sets.intern(j.sortTenants(nums))
	for int(i) >= len(j.roleCache) {
		j.roleCache = append(j.roleCache, roleTenants{})
	}
	j.roleCache[i] = roleTenants{m: weak.Make(p), tset: tset}
	return tset
}

// sessionConcerns is the set of tenants session record r concerns.
func (m *Model) sessionConcerns(r uint32) uint32 {
	if t := m.sessions.recs.at(r).tenant; t != 0 {
		j := &m.journal
		for int(t) >= len(j.sessCache) {
			j.sessCache = append(j.sessCache, 0)
		}
		if j.sessCache[t] == 0 {
			j.sessCache[t] = j.oneTenant(m.sessions.tenants.str(t)) + 1
		}
		return j.sessCache[t] - 1
	}
	u, ok := m.sessions.user(&m.users, r)
	if !ok {
		return tsetNone
	}
	return m.userTenantSet(u)
}

// keyConcerns is the set of tenants API key k lists (its tenants never
// change; keys share their lists: keyModel.tenantList).
func (m *Model) keyConcerns(k *keyEntry) uint32 {
	if len(k.tenants) == 0 {
		return tsetNone
	}
	j := &m.journal
	l := tenantList{unsafe.SliceData(k.tenants), len(k.tenants)}
	if t, ok := j.keyCache[l]; ok {
		return t
	}
	tset := j.tenantSet(k.tenants)
	if j.keyCache == nil {
		j.keyCache = make(map[tenantList]uint32)
	}
	j.keyCache[l] = tset
	return tset
}

// tenantList names a key's list of tenants (keyModel.tenantList).
type tenantList struct {
	p *string
	n int
}

// ---------------------------------------------------------------- queries

// HistoryStart returns the oldest journal entry's stream sequence and
// occurred_at, and whether the history is complete (it starts at the
// stream's first event, sequence 1).
func (m *Model) HistoryStart() (seq uint64, at time.Time, complete bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	j := &m.journal
	complete = j.first <= 1 && !m.NoHistory
	if j.n == 0 {
		return 0, time.Time{}, complete
	}
	return j.seqAt(0), j.start, complete
}

// beforeHistory reports whether at is older than the history kept (all
// of time when the model keeps none).
func (m *Model) beforeHistory(at time.Time) bool {
	j := &m.journal
	switch {
	case m.NoHistory:
		return true
	case j.first <= 1:
		return false
	}
	return j.n == 0 || at.Before(j.start)
}

// auditScan is a query compiled against the journal, and a view of the
// journal taken under the read lock: the entries and the lists it reads
// are never changed after, so the scan runs without the lock.
type auditScan struct {
	j        journal // the view (journal.view)
	none     bool    // nothing can match
	types    [4]uint64
	anyType  bool
	oddType  func(string) bool
	tsets    []uint64 // bit per tenant set; nil: any
	scope    []uint64 // bit per tenant number the reader may see; nil: all
	actors   []uint32 // nil: any
	subject  uint32
	bySubj   bool
	since    int64
	until    int64
	byTime   bool // Since or Until
	oddTimes bool
	q        *AuditQuery
}

// AuditEvents returns the journal entries that match q, in the order asked
// (oldest- or newest-first), at most q.Limit (0: 100; at most 1000), and
// whether more match after the last one returned. The entries are scanned
// after the read lock is let go (they never change once appended), so a
// long scan does not hold up Apply; the chunks on file are read a chunk at
// a time into pooled buffers, and those out of the query's time range are
// not read at all. A page is stable while events keep arriving: the cursor
// is a stream sequence, and entries are only appended. The error is one
// reading the journal file.
func (m *Model) AuditEvents(q AuditQuery) (hits []AuditHit, more bool, err error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = 100
	case limit > 1000:
		limit = 1000
	}
	m.mu.RLock()
	s := m.compileAudit(&q)
	m.mu.RUnlock()
	if s.none || s.j.n == 0 {
		return nil, false, nil
	}
	j := &s.j
	var from, to uint32 // positions [from, to), read forwards or backwards
	if q.NewestFirst {
		to = j.n
		if q.After != 0 {
			to = j.posAfter(q.After - 1) // entries below After
		}
	} else {
		from = j.posAfter(q.After)
		to = j.n
	}
	hits = make([]AuditHit, 0, min(limit+1, 128))
	if q.NewestFirst {
		hits, err = s.scanBack(from, to, limit+1, hits)
	} else {
		hits, err = s.scanForward(from, to, limit+1, hits)
	}
	if err != nil {
		return nil, false, err
	}
	if len(hits) > limit {
		hits, more = hits[:limit], true
	}
	return hits, more, nil
}

// compileAudit prepares q for a scan; called with the read lock held.
func (m *Model) compileAudit(q *AuditQuery) *auditScan {
	j := &m.journal
	s := &auditScan{j: j.view(), q: q, since: math.MinInt64, until: math.MaxInt64}
	// Types: exact, or a prefix ending in ".", and the login result.
	match := func(t string) bool {
		switch q.Result {
		case "":
		case "succeeded":
			if t != domain.TypeUserLoginSucceeded {
				return false
			}
		case "failed": // a wrong password, or a wrong second factor
			if t != domain.TypeUserLoginFailed && t != domain.TypeMFAFailed {
				return false
			}
		default:
			return false
		}
		switch {
		case q.Type == "":
			return true
		case strings.HasSuffix(q.Type, "."):
			return strings.HasPrefix(t, q.Type)
		}
		return t == q.Type
	}
	if q.Type == "" && q.Result == "" {
		s.anyType = true
	} else {
		for i, t := range j.types {
			if match(t) {
				s.types[i>>6] |= 1 << (i & 63)
			}
		}
		if len(j.oddTypes) > 0 {
			s.types[typeOdd>>6] |= 1 << (typeOdd & 63)
			s.oddType = match
		}
		if s.types == [4]uint64{} {
			s.none = true
		}
	}
	// Tenants: the sets that concern at least one tenant of Scope (when set),
	// Tenant (when set), and any tenant (AnyTenant).
	if q.Scope != nil && len(q.Scope) == 0 {
		s.none = true
	}
	if q.Scope != nil || q.Tenant != "" || q.AnyTenant {
		var scope, tenant []uint64
		nt := len(j.tenants.strs) + 1
		if q.Scope != nil {
			scope = make([]uint64, (nt+63)/64)
			for _, t := range q.Scope {
				if n, ok := j.tenants.ids[t]; ok && t != "" {
					scope[n>>6] |= 1 << (n & 63)
				}
			}
			s.scope = scope
		}
		if q.Tenant != "" {
			tenant = make([]uint64, (nt+63)/64)
			if n, ok := j.tenants.ids[q.Tenant]; ok {
				tenant[n>>6] |= 1 << (n & 63)
			}
		}
		count := j.sets.count()
		s.tsets = make([]uint64, (count+63)/64)
		s.tsets[0] |= 1 << tsetAll // every tenant: also each of Scope's, and Tenant
		for i := uint32(2); i < count; i++ {
			members := j.sets.set(i)
			ok := len(members) > 0
			if ok && scope != nil {
				ok = anyBit(scope, members)
			}
			if ok && tenant != nil {
				ok = anyBit(tenant, members)
			}
			if ok {
				s.tsets[i>>6] |= 1 << (i & 63)
			}
		}
	}
	if q.Actor != "" {
		if r, ok := m.users.find(q.Actor); ok && r < actorUser {
			s.actors = append(s.actors, actorUser|r)
		}
		if k := m.keys.byID[q.Actor]; k != nil && k.hist != 0 && k.hist-1 < actorUser {
			s.actors = append(s.actors, actorKey|(k.hist-1))
		}
		for _, typ := range j.actorTypes {
			if id, ok := j.actorIDs[events.Actor{Type: typ, ID: q.Actor}]; ok {
				s.actors = append(s.actors, id)
			}
		}
		if len(s.actors) == 0 {
			s.none = true
		}
	}
	if q.Subject != "" {
		s.bySubj, s.subject = true, SubjectHash(q.Subject)
	}
	if !q.Since.IsZero() {
		s.since, _ = jtime(q.Since)
	}
	if !q.Until.IsZero() {
		s.until, _ = jtime(q.Until)
	}
	s.byTime = !q.Since.IsZero() || !q.Until.IsZero()
	s.oddTimes = len(j.oddTimes) > 0 && s.byTime
	return s
}

func anyBit(bits []uint64, nums []uint32) bool {
	for _, n := range nums {
		if bits[n>>6]&(1<<(n&63)) != 0 {
			return true
		}
	}
	return false
}

// matches reports whether entry i of chunk c, at position pos, matches.
func (s *auditScan) matches(c *jchunk, i, pos uint32) bool {
	if !s.anyType {
		t := c.typ[i]
		if s.types[t>>6]&(1<<(t&63)) == 0 {
			return false
		}
		if t == typeOdd && !s.oddType(s.j.oddTypes[pos]) {
			return false
		}
	}
	if s.tsets != nil {
		ts := c.tset[i]
		if int(ts>>6) >= len(s.tsets) || s.tsets[ts>>6]&(1<<(ts&63)) == 0 {
			return false
		}
	}
	if s.bySubj && c.subj[i] != s.subject {
		return false
	}
	if s.actors != nil {
		a := c.actor[i]
		if a != s.actors[0] && !slices.Contains(s.actors[1:], a) {
			return false
		}
	}
	if !s.byTime {
		return true
	}
	at := c.at[i]
	if s.oddTimes && (at == math.MinInt64+1 || at == math.MaxInt64) {
		return s.oddTimeMatches(at, pos)
	}
	return at >= s.since && at < s.until
}

// matchesRaw is matches for a chunk on file, read in place.
func (s *auditScan) matchesRaw(r *rawChunk, i, pos uint32) bool {
	if !s.anyType {
		t := r.typ(i)
		if s.types[t>>6]&(1<<(t&63)) == 0 {
			return false
		}
		if t == typeOdd && !s.oddType(s.j.oddTypes[pos]) {
			return false
		}
	}
	if s.tsets != nil {
		ts := r.tset(i)
		if int(ts>>6) >= len(s.tsets) || s.tsets[ts>>6]&(1<<(ts&63)) == 0 {
			return false
		}
	}
	if s.bySubj && r.subj(i) != s.subject {
		return false
	}
	if s.actors != nil {
		a := r.actor(i)
		if a != s.actors[0] && !slices.Contains(s.actors[1:], a) {
			return false
		}
	}
	if !s.byTime {
		return true
	}
	at := r.at(i)
	if s.oddTimes && (at == math.MinInt64+1 || at == math.MaxInt64) {
		return s.oddTimeMatches(at, pos)
	}
	return at >= s.since && at < s.until
}

// oddTimeMatches compares an entry's time kept aside with Since and Until
// exactly.
func (s *auditScan) oddTimeMatches(at int64, pos uint32) bool {
	t, ok := s.j.oddTimes[pos]
	if !ok {
		return at >= s.since && at < s.until
	}
	q := s.q
	return (q.Since.IsZero() || !t.Before(q.Since)) && (q.Until.IsZero() || t.Before(q.Until))
}

// skip reports whether no entry of slot sl (on file) can be in the query's
// time range.
func (s *auditScan) skip(sl *jslot) bool {
	return !s.oddTimes && (sl.hi < s.since || sl.lo >= s.until)
}

// rawChunk is a chunk's encoding, read in place (the buffer holds 8 bytes
// more after it).
type rawChunk struct {
	b  []byte
	w  jwidths
	c  cols
	lo int64
}

func (r *rawChunk) at(i uint32) int64 {
	return int64(uint64(r.lo) + leAt(r.b, r.c.ref(int(i)), r.w.t))
}
func (r *rawChunk) actor(i uint32) uint32 {
	return expandActor(uint32(leAt(r.b, r.c.ref(int(i))+r.c.wt, r.w.a)))
}
func (r *rawChunk) typ(i uint32) uint8   { return r.b[r.c.ref(int(i))+r.c.wt+r.c.wa] }
func (r *rawChunk) subj(i uint32) uint32 { return binary.LittleEndian.Uint32(r.b[r.c.subj+4*int(i):]) }
func (r *rawChunk) tset(i uint32) uint32 { return uint32(leAt(r.b, r.c.tset+int(i)*r.c.ws, r.w.s)) }

// jwindow is what a scan read of the journal file last: the chunks that
// lie one after the other there, in the scan's direction, up to
// jwindowSize, read at once into a pooled buffer.
type jwindow struct {
	bp  *[]byte
	off int64 // where the buffer starts in the file
	len int
}

const jwindowSize = 256 << 10

var jwindowPool = sync.Pool{New: func() any { b := make([]byte, 0, jwindowSize+8); return &b }}

func (w *jwindow) release() {
	if w.bp != nil {
		jwindowPool.Put(w.bp)
		w.bp = nil
	}
}

// raw is chunk k (on file) of the scan, read with its neighbours in the
// scan's direction (forward) when it is not in the window.
func (s *auditScan) raw(w *jwindow, k uint32, forward bool) (rawChunk, error) {
	sl := s.j.slots[k]
	if w.bp == nil || sl.off < w.off || sl.end() > w.off+int64(w.len) {
		first, last := sl, sl // the run of chunks to read, in file order
		for next := k; ; {
			if forward {
				next++
			} else if next--; next == math.MaxUint32 {
				break
			}
			if int(next) >= len(s.j.slots) || uint64(next)*chunkLen >= uint64(s.j.n) {
				break
			}
			n := s.j.slots[next]
			if n.mem.Load() != nil || s.skip(n) || n.file != sl.file {
				break
			}
			if forward {
				if n.off != last.end() || n.end()-first.off > jwindowSize {
					break
				}
				last = n
			} else {
				if n.end() != first.off || last.end()-n.off > jwindowSize {
					break
				}
				first = n
			}
		}
		if w.bp == nil {
			w.bp = jwindowPool.Get().(*[]byte)
		}
		size := int(last.end() - first.off)
		if cap(*w.bp) < size+8 {
			*w.bp = make([]byte, 0, max(size+8, jwindowSize+8))
		}
		b := (*w.bp)[:size]
		if _, err := first.file.f.ReadAt(b, first.off); err != nil {
			w.len = 0
			return rawChunk{}, fmt.Errorf("projections: audit journal: read: %w", err)
		}
		w.off, w.len = first.off, size
	}
	start := int(sl.off - w.off)
	b := (*w.bp)[start : start+int(sl.size) : w.len+8]
	if err := sl.file.check(b, (*w.bp)[start+int(sl.size):start+int(sl.size)+jsumSize], sl.off); err != nil {
		return rawChunk{}, err
	}
	n, wd, lo, _, err := chunkHeader(b)
	if err != nil || n != chunkLen {
		return rawChunk{}, fmt.Errorf("projections: audit journal: read: %w", errChunk)
	}
	return rawChunk{b: b[:len(b)+8], w: wd, c: wd.cols(n), lo: lo}, nil
}

func (s *auditScan) scanForward(from, to uint32, want int, out []AuditHit) ([]AuditHit, error) {
	var w jwindow
	defer w.release()
	for pos := from; pos < to; {
		end := min(to, (pos|chunkMask)+1)
		sl := s.j.slots[pos>>chunkBits]
		if c := sl.mem.Load(); c != nil {
			for ; pos < end; pos++ {
				if s.matches(c, pos&chunkMask, pos) {
					if out = append(out, s.hit(c.subj[pos&chunkMask], c.tset[pos&chunkMask], pos)); len(out) == want {
						return out, nil
					}
				}
			}
		} else if !s.skip(sl) {
			r, err := s.raw(&w, pos>>chunkBits, true)
			if err != nil {
				return out, err
			}
			for ; pos < end; pos++ {
				if i := pos & chunkMask; s.matchesRaw(&r, i, pos) {
					if out = append(out, s.hit(r.subj(i), r.tset(i), pos)); len(out) == want {
						return out, nil
					}
				}
			}
		}
		pos = end
	}
	return out, nil
}

func (s *auditScan) scanBack(from, to uint32, want int, out []AuditHit) ([]AuditHit, error) {
	var w jwindow
	defer w.release()
	for pos := to; pos > from; {
		start := max(from, (pos-1)&^chunkMask)
		sl := s.j.slots[(pos-1)>>chunkBits]
		if c := sl.mem.Load(); c != nil {
			for ; pos > start; pos-- {
				if i := (pos - 1) & chunkMask; s.matches(c, i, pos-1) {
					if out = append(out, s.hit(c.subj[i], c.tset[i], pos-1)); len(out) == want {
						return out, nil
					}
				}
			}
		} else if !s.skip(sl) {
			r, err := s.raw(&w, (pos-1)>>chunkBits, false)
			if err != nil {
				return out, err
			}
			for ; pos > start; pos-- {
				if i := (pos - 1) & chunkMask; s.matchesRaw(&r, i, pos-1) {
					if out = append(out, s.hit(r.subj(i), r.tset(i), pos-1)); len(out) == want {
						return out, nil
					}
				}
			}
		}
		pos = start
	}
	return out, nil
}

// hit is entry pos, of subject hash subj and tenant set ts, as an
// AuditHit: its tenants, within the reader's scope when the query has one.
func (s *auditScan) hit(subj, ts uint32, pos uint32) AuditHit {
	h := AuditHit{Seq: s.j.seqAt(pos), SubjectHash: subj}
	switch ts {
	case tsetNone:
	case tsetAll:
		h.AllTenantsConcerned = true
	default:
		members := s.j.sets.set(ts)
		h.Tenants = make([]string, 0, len(members))
		for _, n := range members {
			if s.scope == nil || s.scope[n>>6]&(1<<(n&63)) != 0 {
				h.Tenants = append(h.Tenants, s.j.tenants.str(n))
			}
		}
	}
	return h
}

// ---------------------------------------------------------------- snapshots

// writeHistory writes the journal and the access history (snapshot.go):
// a frHistory frame with their counts and small lists first, then the
// rest in frames of about frameSize; the journal a frame per chunk, in the
// encoding the journal file has (a chunk on file is copied as it is).
func writeHistory(fw *frameWriter, j *journal, a *accessModel) {
	fw.start(frHistory)
	fw.uvarint(j.first)
	fw.uvarint(uint64(j.n))
	fw.uvarint(uint64(len(j.runs)))
	for _, r := range j.runs {
		fw.uvarint(uint64(r.pos))
		fw.uvarint(r.seq)
	}
	fw.uvarint(uint64(len(j.types)))
	for _, t := range j.types {
		fw.str(t)
	}
	for _, v := range []int{len(j.tenants.strs), len(j.actors), int(j.sets.count()), len(j.sets.members)} {
		fw.uvarint(uint64(v))
	}
	fw.uvarint(uint64(len(j.oddTypes)))
	for pos, t := range j.oddTypes {
		fw.uvarint(uint64(pos))
		fw.str(t)
	}
	fw.uvarint(uint64(len(j.oddTimes)))
	for pos, t := range j.oddTimes {
		fw.uvarint(uint64(pos))
		fw.varint(t.Unix())
		fw.uvarint(uint64(t.Nanosecond()))
	}
	a.writeHeader(fw)
	fw.flush()

	fw.strings(frJTenants, j.tenants.strs)
	fw.start(frJActors)
	for _, act := range j.actors {
		fw.str(act.Type)
		fw.str(act.ID)
		fw.flushIfFull(frJActors)
	}
	fw.flush()
	fw.start(frJSets)
	for i := uint32(2); i < j.sets.count(); i++ {
		set := j.sets.set(i)
		fw.uvarint(uint64(len(set)))
		for _, n := range set {
			fw.uvarint(uint64(n))
		}
		fw.flushIfFull(frJSets)
	}
	fw.flush()
	if err := writeJournal(fw, j); err != nil && fw.err == nil {
		fw.err = err
	}
	a.writeFrames(fw)
}

// writeJournal writes the journal's chunks, a frame each: its number, then
// its encoding.
func writeJournal(fw *frameWriter, j *journal) error {
	var scratch *jchunk
	defer func() {
		if scratch != nil {
			jchunkPool.Put(scratch)
		}
	}()
	for k := uint32(0); uint64(k)*chunkLen < uint64(j.n); k++ {
		n := min(j.n-k*chunkLen, chunkLen)
		s := j.slots[k]
		fw.start(frJournal)
		fw.uvarint(uint64(k))
		switch c := s.mem.Load(); {
		case c != nil:
			fw.buf, _, _, _ = encodeChunk(fw.buf, c, int(n))
		case n == chunkLen:
			bp, err := s.file.raw(s)
			if err != nil {
				return err
			}
			fw.bytes(*bp)
			jbufPool.Put(bp)
		default: // filled and written after the snapshot was frozen: the entries it had
			if scratch == nil {
				scratch = jchunkPool.Get().(*jchunk)
			}
			if err := s.file.read(s, scratch, colAll); err != nil {
				return err
			}
			fw.buf, _, _, _ = encodeChunk(fw.buf, scratch, int(n))
		}
		fw.flush()
	}
	return nil
}

// historyFrame reads a frame of the journal or the access history.
func (b *builder) historyFrame(kind byte, d *dec) error {
	j, a := &b.journal, &b.access
	if kind != frHistory && !b.seen[frHistory] {
		return errors.New("history before its header")
	}
	switch kind {
	case frHistory:
		j.model = b.m
		j.first = d.uvarint()
		j.n = d.u32(math.MaxUint32 - 1)
		runs := d.u32(uint64(j.n))
		j.runs = make([]jrun, 0, runs)
		for range runs {
			r := jrun{pos: d.u32(uint64(j.n)), seq: d.uvarint()}
			bad := r.pos >= j.n
			if k := len(j.runs); k == 0 {
				bad = bad || r.pos != 0
			} else if p := j.runs[k-1]; r.pos <= p.pos || r.seq < p.seq+uint64(r.pos-p.pos) {
				bad = true
			}
			if bad && d.err == nil {
				return errors.New("bad journal runs")
			}
			j.runs = append(j.runs, r)
		}
		if j.n > 0 && len(j.runs) == 0 {
			return errors.New("journal without runs")
		}
		types := d.u32(typeOdd)
		for range types {
			j.types = append(j.types, d.str())
		}
		for i := range b.hcounts {
			b.hcounts[i] = d.u32(1 << 31)
		}
		if b.hcounts[2] < 2 {
			return errors.New("bad tenant set count")
		}
		for range d.u32(uint64(j.n)) {
			pos, t := d.u32(uint64(j.n)), d.str()
			if j.oddTypes == nil {
				j.oddTypes = make(map[uint32]string)
			}
			j.oddTypes[pos] = t
		}
		for range d.u32(uint64(j.n)) {
			pos, sec, nsec := d.u32(uint64(j.n)), d.varint(), d.u32(999_999_999)
			if j.oddTimes == nil {
				j.oddTimes = make(map[uint32]time.Time)
			}
			j.oddTimes[pos] = time.Unix(sec, int64(nsec)).UTC()
		}
		j.slots = make([]*jslot, 0, (uint64(j.n)+chunkLen-1)/chunkLen)
		j.tenants.strs = make([]string, 0, b.hcounts[0])
		j.actors = make([]events.Actor, 0, b.hcounts[1])
		j.sets.off = make([]uint32, 3, b.hcounts[2]+1)
		j.sets.members = make([]uint32, 0, b.hcounts[3])
		return a.readHeader(d, b)
	case frJTenants:
		for len(d.b) > 0 && d.err == nil {
			j.tenants.strs = append(j.tenants.strs, d.str())
		}
	case frJActors:
		for len(d.b) > 0 && d.err == nil {
			j.actors = append(j.actors, events.Actor{Type: d.str(), ID: d.str()})
		}
	case frJSets:
		for len(d.b) > 0 && d.err == nil {
			n := d.u32(uint64(b.hcounts[3]))
			for range n {
				j.sets.members = append(j.sets.members, d.index(b.hcounts[0]))
			}
			j.sets.off = append(j.sets.off, uint32(len(j.sets.members)))
		}
	case frJournal:
		k := d.u32(math.MaxUint32)
		if d.err != nil {
			return d.err
		}
		if int(k) != len(j.slots) || uint64(k)*chunkLen >= uint64(j.n) {
			return errors.New("journal chunks out of order, or more than its entries")
		}
		raw := d.b
		d.b = nil
		return b.journalChunk(raw, min(j.n-k*chunkLen, chunkLen))
	default:
		return a.readFrame(kind, d, b)
	}
	return nil
}

// journalChunk restores a chunk of want entries from its encoding raw:
// checked entry by entry, then written to the journal file as it is (a
// full chunk, when the model keeps one) or held in memory.
func (b *builder) journalChunk(raw []byte, want uint32) error {
	j := &b.journal
	if cap(raw) < len(raw)+8 { // decodeChunk reads 8 bytes at a time
		raw = append(make([]byte, 0, len(raw)+8), raw...)
	}
	toFile := want == chunkLen && b.m.JournalDir != ""
	var c *jchunk
	if toFile {
		c = jchunkPool.Get().(*jchunk)
		defer jchunkPool.Put(c)
	} else {
		c = new(jchunk)
	}
	n, w, lo, hi, err := decodeChunk(raw, c, colAll)
	switch {
	case err != nil:
		return err
	case uint32(n) != want:
		return fmt.Errorf("a journal chunk of %d entries, want %d", n, want)
	}
	for i := range uint32(n) {
		switch a, num := c.actor[i]&actorKind, c.actor[i]&^actorKind; {
		case a == actorUser && num >= b.users.recs.n:
			return errors.New("journal entry of an unknown user")
		case a == actorKey && num >= uint32(len(b.access.keys)):
			return errors.New("journal entry of an unknown key")
		case a == 0 && num >= max(b.hcounts[1], 1):
			return errors.New("journal entry of an unknown actor")
		case a == actorKind:
			return errors.New("journal entry of an unknown kind of actor")
		case c.tset[i] >= b.hcounts[2]:
			return errors.New("journal entry of an unknown tenant set")
		case c.typ[i] != typeOdd && int(c.typ[i]) >= len(j.types):
			return errors.New("journal entry of an unknown type")
		}
	}
	s := new(jslot)
	if toFile {
		if j.file == nil {
			if j.file, err = newJFile(b.m.JournalDir, b.m.journalDamaged); err != nil {
				return err
			}
		}
		off, err := j.file.write(raw)
		if err != nil {
			return err
		}
		s.file, s.off, s.size, s.widths, s.lo, s.hi = j.file, off, uint32(len(raw)), w, lo, hi
	} else {
		s.mem.Store(c)
	}
	j.slots = append(j.slots, s)
	return nil
}

// finishHistory checks what the frames gave against the header, and
// rebuilds the maps (builder.finish).
func (b *builder) finishHistory() error {
	j := &b.journal
	if !b.seen[frHistory] {
		return errors.New("no history")
	}
	if len(j.tenants.strs) != int(b.hcounts[0]) || len(j.actors) != int(b.hcounts[1]) ||
		j.sets.count() != b.hcounts[2] || len(j.sets.members) != int(b.hcounts[3]) {
		return errors.New("the journal's lists differ from its header")
	}
	if uint64(len(j.slots)) != (uint64(j.n)+chunkLen-1)/chunkLen {
		return errors.New("the journal's chunks differ from its header")
	}
	if j.n > 0 {
		e, err := j.entry(0, false)
		if err != nil {
			return err
		}
		j.start = j.timeOf(0, e.at)
	}
	j.tenants.ids = make(map[string]uint32, len(j.tenants.strs))
	for i, s := range j.tenants.strs {
		if i > 0 {
			j.tenants.ids[s] = uint32(i)
		}
	}
	j.typeIDs = make(map[string]uint8, len(j.types))
	for i, t := range j.types {
		j.typeIDs[t] = uint8(i)
	}
	j.actorIDs = make(map[events.Actor]uint32, len(j.actors))
	for i, act := range j.actors {
		if i > 0 {
			j.actorIDs[act] = uint32(i)
			if !slices.Contains(j.actorTypes, act.Type) {
				j.actorTypes = append(j.actorTypes, act.Type)
			}
		}
	}
	for i := uint32(2); i < j.sets.count(); i++ {
		if len(j.sets.set(i)) > 0 {
			j.sets.index(i)
		}
	}
	return b.access.finish(b)
}

// abandonHistory removes the journal file a restore that failed made.
func (b *builder) abandonHistory() error {
	if b.journal.file == nil {
		return nil
	}
	return b.journal.file.name.remove()
}

// swapHistory puts a restored journal and access history in the model
// (with the lock held), and removes the journal file it replaces; readers
// of the old one (a snapshot being written, a scan) keep reading it until
// they let go of it.
func (m *Model) swapHistory(j *journal, a *accessModel) {
	old := m.journal.file
	m.journal, m.access = *j, *a
	m.journal.model = m
	m.access.relink(&m.keys)
	if old != nil && old != m.journal.file {
		if err := old.name.remove(); err != nil && m.OnJournalError != nil {
			m.OnJournalError(err)
		}
	}
}
