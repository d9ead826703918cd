package projections

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/infracast/auth/domain"
)

// SnapshotFormat identifies what a snapshot holds and how it is encoded. Bump
// it whenever Apply folds an event differently (the domain's Evolve functions
// included: TestSnapshotFormatPinsTheFold fails until it is bumped) or the
// Model gains state (a field of Model, its stores or their records;
// TestSnapshotCoversEveryField fails until snapshot.go carries it): older
// snapshots are then ignored and replicas replay the stream in full once.
const SnapshotFormat = 18 // 18: who deactivated a user (a tenant admin's may be activated by a tenant admin; an older build dropped the field of user.deactivated); 17: pending signing keys (an older build dropped the field of signingkey.added: a new replica that restored its snapshot signed with a key not activated); 16: Azure AD role mappings' directory (an older build dropped the field of the event: a new replica that restored its snapshot lost the mappings' scope); 15: user.password_changed sets the user's failed logins to 0 (an older build's snapshot kept them: a reset account stayed locked on the replica that restored it); 14: a SCIM token rotation written without its owner (by a build from before owners) has the owner of its event's actor; 13: the count of a user's MFA resets (enrolment tokens from before one are void); 12: SCIM connections' names (an older build dropped the field of the event); 11: users' unvouched e-mail, SCIM connections' platform flag and owner (an older build dropped these fields of the events); 10: the writer's event vocabulary (a 9 could be written by a build that skipped events this one decodes); 9: the audit journal's chunks as its file has them, the access history's side tables; 8: second factors and MFA policies (an older build skipped their events); 7: SCIM connections, groups and users; 6: a deactivation is a cut-off (user extras); 5: the audit journal and the access history; 4: compact records, streamed in frames; 3: SSO identities keyed by (issuer, subject); 2: sessions carry RotatedAt

// vocabulary identifies the events this build decodes: EventVersion and
// every event type. A snapshot carries its writer's. One whose writer
// skipped events it could not decode and knew other events than this build
// is not restored (ErrSnapshotFormat): this build might decode those events,
// and a restored model must be identical to a replayed one — a build rolled
// back to, which skips the newer events, must not leave its snapshot to the
// build that knows them.
var vocabulary = func() uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "v%d", domain.EventVersion)
	for _, t := range domain.EventTypes() {
		h.Write([]byte{0})
		h.Write([]byte(t))
	}
	return h.Sum64()
}()

// ErrSnapshotFormat: the snapshot was written by a build with another
// SnapshotFormat (or, having skipped events, another vocabulary).
var ErrSnapshotFormat = errors.New("projections: snapshot of another format")

// A snapshot (format 5) is snapshotMagic, the format as a uvarint, then
// frames — a kind byte, the payload's length as a uvarint, the payload — and
// nothing after the end frame. The users' and sessions' records go as they
// are held (compact.go), in frames of about frameSize, so that neither side
// holds more than a frame of it at once; the indexes are rebuilt on restore.
// The rest of the state (API keys, revoked access tokens, failed logins,
// SSO, signing keys), small by comparison, is one gob frame. The audit
// journal and the access history (journal.go, access.go) follow it: their
// counts and small lists, then their entries and records in frames too.
const snapshotMagic = "infracast-auth read models\n"

const frameSize = 1 << 20

// Frame kinds.
const (
	frEnd      = iota // uvarint: frames before it
	frHeader          // applied, skipped, record counts
	frTenants         // strings
	frReasons         // strings
	frLists           // global role lists
	frSets            // tenant role sets
	frUsers           // first record, then records
	frExtras          // first record, then records
	frSessions        // first record, then records
	frSpent           // first node, then nodes
	frFree            // free session records and spent nodes
	frAside           // gob: asideState
	frRest            // gob: restState
	frHistory         // the journal's and the access history's counts and small lists
	frJTenants        // strings
	frJActors         // strings: type, ID
	frJSets           // tenant sets
	frJournal         // first entry, then entries
	frAUsers          // first record, then records
	frAChanges        // first record, then records
	frAKeys           // first record, then records
	frAOwners         // first record, then records
	frASecrets        // first record, then records
	frALists          // tenants' users and keys, platform admins and keys, role sets
	frAKept           // strings

	frLast = frAKept
)

// restState is the state beside users and sessions, as gob encodes it
// (snapshots) and JSON (Dump). Entries carry their map key explicitly, and
// Empty: which slice and map fields of the state were empty but not nil,
// since gob decodes both as nil and a nil slice renders as null in a response
// where [] was before.
type restState struct {
	RevokedTokens map[string]time.Time
	Logins        []snapLogin
	AddrFailures  []snapAddr
	Keys          []snapKey
	KeyByHash     map[string]string `json:",omitempty"` // Dump only: snapshots rebuild the index
	SSOProviders  []snapSSOProvider
	SSOIdentities map[string]string
	SSOLinkSeq    map[string]uint64
	SigningKeys   []snapSigningKey
	// The SCIM read model (scim.go): its states with their sequences; the
	// indexes are rebuilt on restore.
	SCIMConns  []snapSCIMConn
	SCIMGroups []snapSCIMGroup
	SCIMLinks  []snapSCIMLink
	// The MFA read model (mfa.go).
	MFA         []snapMFA
	MFAPolicies []snapMFAPolicy
}

type snapSCIMConn struct {
	Empty emptyFields
	State domain.SCIMConnection
	Seq   uint64
}

type snapSCIMGroup struct {
	Empty emptyFields
	State domain.SCIMGroup
	Seq   uint64
}

type snapSCIMLink struct {
	Key   string
	State domain.SCIMLink
	Seq   uint64
}

type snapLogin struct {
	ID    string
	State domain.LoginAttempts
	Seq   uint64
}

type snapAddr struct {
	Addr  string
	Count int
	Last  time.Time
}

type snapKey struct {
	ID    string
	Empty emptyFields
	State domain.APIKey
	Seq   uint64
}

type snapSSOProvider struct {
	Name  string
	Empty emptyFields
	State domain.SSOProvider
	Seq   uint64
}

type snapSigningKey struct {
	ID    string
	Empty emptyFields
	State domain.SigningKey
	Seq   uint64
}

// asideState is what users and sessions keep aside (rare: values the records
// cannot hold), as gob encodes it. Users' strings and hashes kept aside
// (the arena or the pools full) travel in their records.
type asideState struct {
	OddGlobal map[uint32][]domain.GlobalRole // by extra
	KeepText  map[uint32]string              // by extra
	UserTimes map[oddTimeKey]time.Time
	OddID     map[uint32]string
	OddHash   map[uint32]string
	OddUser   map[uint32]string
	OddReason map[uint32]string
	OddSpent  map[uint32]string
	SessTimes map[oddTimeKey]time.Time
	// Stale index entries: a normalized username -> its user's record, a
	// refresh-token hash -> a session ID.
	StaleNames  map[string]uint32
	StaleHashes map[string]string
}

// staleHashText is the stale hashes by their text (gob: sumKey's fields are
// unexported).
func staleHashText(m map[sumKey]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, id := range m {
		if k.odd {
			out[k.text] = id
		} else {
			out[formatHash(&k.sum)] = id
		}
	}
	return out
}

// ---------------------------------------------------------------- taking one

// Frozen is the model's state at one stream sequence, taken by Freeze and
// written by WriteTo while the model goes on applying events and answering:
// the records' chunks, the arena's slabs and the hash pools' slabs are
// shared with the model (compact.go: cow, and they are never written over),
// the rest was copied. Release it when done.
type Frozen struct {
	m        *Model
	applied  uint64
	skipped  uint64
	users    userStore
	sessions sessStore
	rest     restState
	journal  journal
	access   accessModel
	released bool
}

// Freeze takes the model's state for a snapshot. It holds the read lock for
// as long as it takes to copy the lists of chunks and slabs of the users'
// and sessions' records (about a thousand per million records) and what is
// kept beside them — API keys, revoked access tokens, failed logins, SSO,
// signing keys, and what records keep aside — in full; applying events
// waits that long, requests do not (but for those queued behind a waiting
// Apply). One snapshot is taken at a time: Freeze waits for the previous
// one's Release.
func (m *Model) Freeze() *Frozen {
	m.snapshotting.Lock()
	m.mu.RLock()
	defer m.mu.RUnlock()
	// Chunks of the epoch before this one are the snapshot's from now on:
	// Apply copies one before it writes to it. Only Freeze writes the
	// epoch, one at a time; Apply, which reads it, holds the write lock.
	m.cow.epoch++
	m.cow.frozen.Store(m.cow.epoch)
	us, ss := &m.users, &m.sessions
	f := &Frozen{
		m: m, applied: m.applied, skipped: m.skipped,
		users: userStore{
			recs: us.recs.frozenCopy(), extras: us.extras.frozenCopy(), text: us.text.frozenCopy(), hashes: us.hashes.frozenCopy(),
			sets: roleSets{sets: slices.Clone(us.sets.sets)}, lists: globalLists{lists: us.lists.lists},
			oddText: maps.Clone(us.oddText), oddHash: maps.Clone(us.oddHash), oddGlobal: maps.Clone(us.oddGlobal),
			keepText: maps.Clone(us.keepText), times: maps.Clone(us.times), staleNames: maps.Clone(us.staleNames),
		},
		sessions: sessStore{
			recs: ss.recs.frozenCopy(), spent: ss.spent.frozenCopy(),
			tenants: strTable{strs: ss.tenants.strs}, reasons: strTable{strs: ss.reasons.strs},
			oddID: maps.Clone(ss.oddID), oddHash: maps.Clone(ss.oddHash), oddUser: maps.Clone(ss.oddUser),
			oddReason: maps.Clone(ss.oddReason), oddSpent: maps.Clone(ss.oddSpent), times: maps.Clone(ss.times),
			staleHashes: maps.Clone(ss.staleHashes),
		},
		rest:    m.copyRest(false),
		journal: m.journal.view(),
		access:  m.access.view(),
	}
	f.sessions.recs.free = slices.Clone(ss.recs.free)
	f.sessions.spent.free = slices.Clone(ss.spent.free)
	return f
}

// Sequence is the stream sequence the frozen state reflects: restoring it
// and applying the stream from Sequence + 1 gives the same model as
// applying the whole stream.
func (f *Frozen) Sequence() uint64 { return f.applied }

// Release ends the snapshot: the model writes its chunks in place again.
func (f *Frozen) Release() {
	if f.released {
		return
	}
	f.released = true
	f.m.cow.frozen.Store(0)
	f.m.snapshotting.Unlock()
}

// copyRest copies the state beside users and sessions; called with the read
// lock held. withIndex adds the API keys' hash index (Dump).
func (m *Model) copyRest(withIndex bool) restState {
	r := restState{
		RevokedTokens: maps.Clone(m.revokedTokens),
		Logins:        make([]snapLogin, 0, len(m.logins)),
		AddrFailures:  make([]snapAddr, 0, len(m.addrFailures)),
		Keys:          make([]snapKey, 0, len(m.keys.byID)),
		SSOProviders:  make([]snapSSOProvider, 0, len(m.sso.providers)),
		SSOIdentities: cloneMap(m.sso.identities),
		SSOLinkSeq:    cloneMap(m.sso.linkSeq),
		SigningKeys:   make([]snapSigningKey, 0, len(m.signing.keys)),
	}
	if r.RevokedTokens == nil {
		r.RevokedTokens = map[string]time.Time{}
	}
	if withIndex {
		r.KeyByHash = m.keys.hashIndex()
	}
	for id, l := range m.logins {
		r.Logins = append(r.Logins, snapLogin{ID: id, State: l.state, Seq: l.seq})
	}
	for addr, f := range m.addrFailures {
		r.AddrFailures = append(r.AddrFailures, snapAddr{Addr: addr, Count: f.count, Last: f.last})
	}
	for id, k := range m.keys.byID {
		st := m.keys.fullState(k)
		r.Keys = append(r.Keys, snapKey{ID: id, Empty: markEmpty(&st), State: st, Seq: k.seq})
	}
	for name, p := range m.sso.providers {
		r.SSOProviders = append(r.SSOProviders, snapSSOProvider{Name: name, Empty: markEmpty(&p.state), State: p.state, Seq: p.seq})
	}
	for id, k := range m.signing.keys {
		r.SigningKeys = append(r.SigningKeys, snapSigningKey{ID: id, Empty: markEmpty(&k.state), State: k.state, Seq: k.seq})
	}
	r.SCIMConns, r.SCIMGroups, r.SCIMLinks = m.scim.snapshot()
	r.MFA, r.MFAPolicies = m.mfa.snapshot()
	return r
}

// WriteTo writes the snapshot to w, a frame at a time.
func (f *Frozen) WriteTo(w io.Writer) (int64, error) {
	fw := &frameWriter{w: bufio.NewWriterSize(w, 256<<10), buf: make([]byte, 0, frameSize+64<<10)}
	fw.w.WriteString(snapshotMagic)
	fw.w.Write(binary.AppendUvarint(nil, SnapshotFormat))
	fw.written = int64(len(snapshotMagic) + 1)

	us, ss := &f.users, &f.sessions
	fw.start(frHeader)
	for _, v := range []uint64{f.applied, f.skipped, uint64(us.recs.n), uint64(us.extras.n), uint64(ss.recs.n), uint64(ss.spent.n),
		uint64(len(us.sets.sets)), uint64(len(us.lists.lists)), uint64(len(ss.tenants.strs)), uint64(len(ss.reasons.strs)), vocabulary} {
		fw.uvarint(v)
	}
	fw.flush()
	fw.strings(frTenants, ss.tenants.strs)
	fw.strings(frReasons, ss.reasons.strs)

	fw.start(frLists)
	for _, l := range us.lists.lists {
		if l == nil {
			fw.uvarint(0)
			continue
		}
		fw.uvarint(uint64(len(l)) + 1)
		for _, r := range l {
			fw.str(string(r))
		}
		fw.flushIfFull(frLists)
	}
	fw.flush()
	fw.start(frSets)
	for i, s := range us.sets.sets {
		if s.refs == 0 {
			continue // set 0 (nil) and free sets
		}
		fw.uvarint(uint64(i))
		fw.uvarint(uint64(s.refs))
		fw.uvarint(uint64(len(s.m)))
		for t, r := range s.m {
			fw.str(t)
			fw.str(string(r))
		}
		fw.flushIfFull(frSets)
	}
	fw.flush()

	writeRecords(fw, frUsers, &us.recs, func(fw *frameWriter, r uint32, u *userRec) {
		fw.str(us.textOf(r, u))
		fw.str(us.hashOf(r, u))
		fw.uvarint(u.seq)
		fw.u64(uint64(u.created))
		fw.uvarint(uint64(u.version))
		fw.uvarint(uint64(u.roles))
		fw.uvarint(uint64(u.extra))
		fw.byte(u.flags &^ (uOddText | uOddHash))
	})
	writeRecords(fw, frExtras, &us.extras, func(fw *frameWriter, _ uint32, x *userExtra) {
		fw.u64(uint64(x.lastFail))
		fw.uvarint(x.cutoff)
		fw.uvarint(uint64(x.failed))
		fw.uvarint(uint64(x.global))
		fw.byte(x.keepKind)
		if x.keepKind == keepID {
			fw.bytes(x.keep[:])
		}
		if x.byTenant {
			fw.byte(1)
		} else {
			fw.byte(0)
		}
	})
	writeRecords(fw, frSessions, &ss.recs, func(fw *frameWriter, _ uint32, s *sessRec) {
		fw.byte(s.flags)
		if s.flags&sLive == 0 {
			return
		}
		if s.flags&sOddID == 0 {
			fw.bytes(s.id[:])
		}
		if s.flags&sOddHash == 0 {
			fw.bytes(s.hash[:])
		}
		fw.uvarint(s.seq)
		fw.uvarint(s.seq - s.startSeq)
		fw.u64(uint64(s.started))
		fw.varint(int64(s.expires - s.started))
		fw.varint(int64(s.lastUsed - s.started))
		if s.rotated == stampZero {
			fw.byte(0)
		} else {
			fw.byte(1)
			fw.varint(int64(s.rotated - s.started))
		}
		fw.uvarint(uint64(s.user))
		fw.uvarint(uint64(s.tenant))
		fw.uvarint(uint64(s.spent))
		fw.uvarint(uint64(s.refreshes))
		fw.uvarint(uint64(s.version))
		fw.uvarint(uint64(s.reason))
	})
	writeRecords(fw, frSpent, &ss.spent, func(fw *frameWriter, _ uint32, n *spentNode) {
		fw.bytes(n.hash[:])
		fw.uvarint(uint64(n.prev))
		fw.uvarint(uint64(n.sess))
	})
	fw.start(frFree)
	for _, free := range [][]uint32{ss.recs.free, ss.spent.free} {
		fw.uvarint(uint64(len(free)))
		for _, i := range free {
			fw.uvarint(uint64(i))
		}
	}
	fw.flush()
	fw.gob(frAside, &asideState{
		OddGlobal: us.oddGlobal, KeepText: us.keepText, UserTimes: us.times,
		OddID: ss.oddID, OddHash: ss.oddHash, OddUser: ss.oddUser, OddReason: ss.oddReason, OddSpent: ss.oddSpent, SessTimes: ss.times,
		StaleNames: us.staleNames, StaleHashes: staleHashText(ss.staleHashes),
	})
	fw.gob(frRest, &f.rest)
	writeHistory(fw, &f.journal, &f.access)
	fw.start(frEnd)
	fw.uvarint(fw.frames)
	fw.flush()
	if fw.err == nil {
		fw.err = fw.w.Flush()
	}
	return fw.written, fw.err
}

func writeRecords[T any](fw *frameWriter, kind byte, t *table[T], enc func(*frameWriter, uint32, *T)) {
	for i := uint32(0); i < t.n; i++ {
		if len(fw.buf) == 0 {
			fw.start(kind)
			fw.uvarint(uint64(i))
		}
		enc(fw, i, t.at(i))
		if len(fw.buf) >= frameSize {
			fw.flush()
		}
	}
	fw.flush()
}

// frameWriter builds a frame in buf and writes it out whole.
type frameWriter struct {
	w       *bufio.Writer
	buf     []byte
	kind    byte
	frames  uint64
	written int64
	err     error
}

func (fw *frameWriter) start(kind byte) { fw.kind, fw.buf = kind, fw.buf[:0] }

func (fw *frameWriter) flush() {
	if len(fw.buf) == 0 && fw.kind != frEnd && fw.kind != frHeader && fw.kind != frFree {
		return
	}
	if fw.err == nil {
		var hdr [1 + binary.MaxVarintLen64]byte
		hdr[0] = fw.kind
		n := 1 + binary.PutUvarint(hdr[1:], uint64(len(fw.buf)))
		fw.w.Write(hdr[:n])
		_, fw.err = fw.w.Write(fw.buf)
		fw.written += int64(n + len(fw.buf))
		fw.frames++
	}
	fw.buf = fw.buf[:0]
	fw.kind = 0xff
}

func (fw *frameWriter) flushIfFull(kind byte) {
	if len(fw.buf) >= frameSize {
		fw.flush()
		fw.start(kind)
	}
}

func (fw *frameWriter) uvarint(v uint64) { fw.buf = binary.AppendUvarint(fw.buf, v) }
func (fw *frameWriter) varint(v int64)   { fw.buf = binary.AppendVarint(fw.buf, v) }
func (fw *frameWriter) u64(v uint64)     { fw.buf = binary.LittleEndian.AppendUint64(fw.buf, v) }
func (fw *frameWriter) byte(b byte)      { fw.buf = append(fw.buf, b) }
func (fw *frameWriter) bytes(b []byte)   { fw.buf = append(fw.buf, b...) }
func (fw *frameWriter) str(s string) {
	fw.uvarint(uint64(len(s)))
	fw.buf = append(fw.buf, s...)
}

func (fw *frameWriter) strings(kind byte, strs []string) {
	fw.start(kind)
	for _, s := range strs {
		fw.str(s)
		fw.flushIfFull(kind)
	}
	fw.flush()
}

func (fw *frameWriter) gob(kind byte, v any) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil && fw.err == nil {
		fw.err = fmt.Errorf("projections: encode snapshot: %w", err)
	}
	fw.start(kind)
	fw.buf = append(fw.buf, b.Bytes()...)
	fw.flush()
}

// Snapshot encodes the model's state and returns it with the stream sequence
// it reflects (Freeze, then WriteTo into memory): restoring it and applying
// the stream from that sequence + 1 gives the same model as applying the
// whole stream. A replica writes its snapshots with Freeze and WriteTo
// instead, without holding them in memory.
func (m *Model) Snapshot() ([]byte, uint64, error) {
	f := m.Freeze()
	defer f.Release()
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), f.Sequence(), nil
}

// ---------------------------------------------------------------- restoring

// Restore replaces the model's state with a snapshot's and returns the stream
// sequence it reflects (RestoreFrom).
func (m *Model) Restore(data []byte) (uint64, error) {
	return m.RestoreFrom(bytes.NewReader(data))
}

// RestoreFrom replaces the model's state with the snapshot read from r and
// returns the stream sequence it reflects. The model is built aside and
// swapped in at once, and only once r has been read to its end without an
// error (a reader that authenticates what it reads tells so at the end);
// AddressWindow, RevokedTokenGrace and RevokedSessionGrace (configuration,
// not state) stay. A snapshot of another
// format is ErrSnapshotFormat (the caller replays the stream instead).
//
// Reading and decoding run side by side, and the indexes are built two at a
// time, so that restoring uses both cores of a small replica.
func (m *Model) RestoreFrom(r io.Reader) (seq uint64, err error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return 0, fmt.Errorf("%w: not a snapshot of format %d or later", ErrSnapshotFormat, SnapshotFormat)
	}
	format, err := binary.ReadUvarint(br)
	if err != nil {
		return 0, fmt.Errorf("projections: decode snapshot: %w", err)
	}
	if format != SnapshotFormat {
		return 0, fmt.Errorf("%w: %d, this build reads %d", ErrSnapshotFormat, format, SnapshotFormat)
	}

	// A reader goroutine hands frames over; decoding takes them in order.
	type frame struct {
		kind byte
		data []byte
	}
	frames := make(chan frame, 8)
	free := make(chan []byte, 10)
	stop := make(chan struct{})
	var readErr error
	go func() {
		defer close(frames)
		for {
			kind, err := br.ReadByte()
			if err != nil {
				readErr = fmt.Errorf("projections: read snapshot: %w", noEOF(err))
				return
			}
			n, err := binary.ReadUvarint(br)
			if err != nil || n > 1<<31 {
				readErr = fmt.Errorf("projections: read snapshot: bad frame (%v)", noEOF(err))
				return
			}
			var buf []byte
			select {
			case buf = <-free:
			default:
			}
			if uint64(cap(buf)) < n {
				buf = make([]byte, n, max(n, frameSize+64<<10))
			}
			buf = buf[:n]
			if _, err := io.ReadFull(br, buf); err != nil {
				readErr = fmt.Errorf("projections: read snapshot: %w", noEOF(err))
				return
			}
			if kind == frEnd {
				// Nothing may follow, and the reader must end without an
				// error: that is where an authenticating reader says no.
				if _, err := br.ReadByte(); err != io.EOF {
					if err == nil {
						err = errors.New("data after the end")
					}
					readErr = fmt.Errorf("projections: read snapshot: %w", err)
					return
				}
			}
			select {
			case frames <- frame{kind, buf}:
			case <-stop:
				return
			}
			if kind == frEnd {
				return
			}
		}
	}()
	defer close(stop) // a reader still reading ends when r does

	b := newBuilder(m)
	defer func() {
		if err != nil { // the journal file it was writing goes
			err = errors.Join(err, b.abandonHistory())
		}
	}()
	ended := false
	for fr := range frames {
		if ended {
			break
		}
		if err := b.frame(fr.kind, fr.data); err != nil {
			return 0, fmt.Errorf("projections: decode snapshot: %w", err)
		}
		ended = fr.kind == frEnd
		select {
		case free <- fr.data:
		default:
		}
	}
	if readErr != nil {
		return 0, readErr
	}
	if !ended {
		return 0, errors.New("projections: decode snapshot: no end")
	}
	if err := b.finish(); err != nil {
		return 0, fmt.Errorf("projections: decode snapshot: %w", err)
	}
	b.swap()
	return b.applied, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// builder puts a model together from a snapshot's frames.
type builder struct {
	m                *Model
	applied, skipped uint64
	users            userStore
	sessions         sessStore
	rest             restState
	journal          journal
	access           accessModel
	frames           uint64
	counts           [8]uint64 // users, extras, sessions, spent, sets, lists, tenants, reasons
	hcounts          [4]uint32 // the journal's tenants, actors, tenant sets, their members
	acounts          [5]uint32 // the access history's kept session IDs, role sets, role names, users, keys
	seen             [frLast + 1]bool
	cow              cow // its own: a snapshot of the model being restored never reaches these
}

func newBuilder(m *Model) *builder { return &builder{m: m} }

// dec reads a frame's payload; the first error sticks.
type dec struct {
	b   []byte
	err error
}

var errShort = errors.New("frame too short")

func (d *dec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) u32(limit uint64) uint32 {
	v := d.uvarint()
	if v > limit {
		d.fail(fmt.Errorf("value %d out of range (%d)", v, limit))
		return 0
	}
	return uint32(v)
}

func (d *dec) u64() uint64 {
	if len(d.b) < 8 {
		d.fail(errShort)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *dec) byte() byte {
	if len(d.b) < 1 {
		d.fail(errShort)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *dec) bytes(n int) []byte {
	if len(d.b) < n {
		d.fail(errShort)
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string { return string(d.bytes(int(d.u32(1 << 30)))) }

func (d *dec) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (b *builder) frame(kind byte, data []byte) error {
	if kind != frEnd {
		b.frames++
	}
	if kind > frLast {
		return fmt.Errorf("unknown frame %d", kind)
	}
	if kind != frHeader && !b.seen[frHeader] {
		return errors.New("no header")
	}
	b.seen[kind] = true
	d := &dec{b: data}
	us, ss := &b.users, &b.sessions
	switch kind {
	case frHeader:
		b.applied, b.skipped = d.uvarint(), d.uvarint()
		for i := range b.counts {
			b.counts[i] = d.uvarint()
			if b.counts[i] > 1<<31 {
				return errors.New("count out of range")
			}
		}
		if vocab := d.uvarint(); b.skipped > 0 && vocab != vocabulary {
			return fmt.Errorf("%w: written by a build that skipped %d events it could not decode and knew other events than this one", ErrSnapshotFormat, b.skipped)
		}
		c := &b.cow
		us.recs.grow(c, uint32(b.counts[0]))
		us.extras.grow(c, uint32(b.counts[1]))
		ss.recs.grow(c, uint32(b.counts[2]))
		ss.spent.grow(c, uint32(b.counts[3]))
		us.sets.sets = make([]roleSet, max(b.counts[4], 1))
		us.lists.lists = make([][]domain.GlobalRole, 0, b.counts[5])
		ss.tenants.strs = make([]string, 0, b.counts[6])
		ss.reasons.strs = make([]string, 0, b.counts[7])
	case frTenants:
		for len(d.b) > 0 {
			ss.tenants.strs = append(ss.tenants.strs, d.str())
		}
	case frReasons:
		for len(d.b) > 0 {
			ss.reasons.strs = append(ss.reasons.strs, d.str())
		}
	case frLists:
		for len(d.b) > 0 {
			n := d.u32(1 << 20)
			if n == 0 {
				us.lists.lists = append(us.lists.lists, nil)
				continue
			}
			l := make([]domain.GlobalRole, n-1)
			for i := range l {
				l[i] = domain.GlobalRole(d.str())
			}
			us.lists.lists = append(us.lists.lists, l)
		}
	case frSets:
		for len(d.b) > 0 {
			i := d.u32(uint64(len(us.sets.sets) - 1))
			refs := d.u32(math32)
			n := d.u32(1 << 20)
			set := make(map[string]domain.Role, n)
			for range n {
				t := d.str()
				set[t] = domain.Role(d.str())
			}
			if i == 0 || refs == 0 {
				return errors.New("bad role set")
			}
			us.sets.sets[i] = roleSet{m: set, refs: refs}
		}
	case frUsers:
		b.users.decode(d, b)
	case frExtras:
		first := d.u32(uint64(us.extras.n))
		for i := first; len(d.b) > 0 && d.err == nil; i++ {
			if i >= us.extras.n {
				return errors.New("too many extras")
			}
			x := us.extras.at(i)
			x.lastFail = stamp(d.u64())
			x.cutoff = d.uvarint()
			x.failed = d.u32(math32)
			x.global = uint16(d.u32(globalOdd))
			if x.global != globalOdd && int(x.global) >= max(len(us.lists.lists), 1) {
				return errors.New("an unknown list of global roles")
			}
			x.keepKind = d.byte()
			if x.keepKind == keepID {
				copy(x.keep[:], d.bytes(16))
			}
			x.byTenant = d.byte() == 1
		}
	case frSessions:
		b.sessions.decode(d, b)
	case frSpent:
		first := d.u32(uint64(ss.spent.n))
		for i := first; len(d.b) > 0 && d.err == nil; i++ {
			if i >= ss.spent.n {
				return errors.New("too many spent hashes")
			}
			n := ss.spent.at(i)
			copy(n.hash[:], d.bytes(32))
			n.prev = d.u32(uint64(ss.spent.n))
			n.sess = d.u32(math32)
			if n.sess&^spentFlags >= ss.recs.n {
				return errors.New("spent hash of no session")
			}
		}
	case frFree:
		for _, t := range []struct {
			free *[]uint32
			n    uint32
		}{{&ss.recs.free, ss.recs.n}, {&ss.spent.free, ss.spent.n}} {
			n := d.u32(uint64(t.n))
			*t.free = make([]uint32, n)
			for i := range *t.free {
				(*t.free)[i] = d.u32(uint64(t.n) - 1)
			}
		}
	case frAside:
		var a asideState
		if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&a); err != nil {
			return err
		}
		us.oddGlobal, us.keepText, us.times = a.OddGlobal, a.KeepText, a.UserTimes
		ss.oddID, ss.oddHash, ss.oddUser, ss.oddReason, ss.oddSpent, ss.times = a.OddID, a.OddHash, a.OddUser, a.OddReason, a.OddSpent, a.SessTimes
		us.staleNames = a.StaleNames
		for text, id := range a.StaleHashes {
			if ss.staleHashes == nil {
				ss.staleHashes = make(map[sumKey]string, len(a.StaleHashes))
			}
			k, _ := hashKey(text)
			ss.staleHashes[k] = id
		}
		d.b = nil
	case frRest:
		if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&b.rest); err != nil {
			return err
		}
		d.b = nil
	default:
		if err := b.historyFrame(kind, d); err != nil {
			return err
		}
	case frEnd:
		if n := d.uvarint(); d.err == nil && n != b.frames {
			return fmt.Errorf("%d frames, the end says %d", b.frames, n)
		}
		for _, k := range []byte{frFree, frAside, frRest, frHistory} {
			if !b.seen[k] {
				return fmt.Errorf("no frame of kind %d", k)
			}
		}
	}
	if d.err == nil && len(d.b) > 0 {
		return fmt.Errorf("%d bytes left in a frame of kind %d", len(d.b), kind)
	}
	return d.err
}

const math32 = 1<<32 - 1

// decode reads a frame of user records: strings into the arena, hashes into
// the pools, as Apply puts them.
func (us *userStore) decode(d *dec, b *builder) {
	first := d.u32(uint64(us.recs.n))
	c := &b.cow
	for i := first; len(d.b) > 0 && d.err == nil; i++ {
		if i >= us.recs.n {
			d.fail(errors.New("too many users"))
			return
		}
		u := us.recs.at(i)
		text := d.bytes(int(d.u32(1 << 30)))
		hash := d.bytes(int(d.u32(1 << 30)))
		u.seq = d.uvarint()
		u.created = stamp(d.u64())
		u.version = d.u32(math32)
		u.roles = d.u32(uint64(len(us.sets.sets) - 1))
		u.extra = d.u32(uint64(us.extras.n))
		u.flags = d.byte() &^ (uOddText | uOddHash)
		if d.err != nil {
			return
		}
		if !wellFormed(string(text)) || u.roles != 0 && us.sets.sets[u.roles].refs == 0 ||
			u.flags&(uRolesNil|uRolesEmpty) == 0 && u.extra == 0 {
			d.fail(errors.New("a malformed user"))
			return
		}
		if h, ok := us.text.add(text); ok {
			u.text = h
		} else {
			if us.oddText == nil {
				us.oddText = make(map[uint32]string)
			}
			u.flags, us.oddText[i] = u.flags|uOddText, string(text)
		}
		packed := u.flags&uPacked != 0
		u.flags &^= uPacked
		us.setHashBytes(c, i, u, hash, packed)
	}
}

// wellFormed reports whether t is three length-prefixed fields, exactly.
func wellFormed(t string) bool {
	for range 3 {
		n, k := uvarintAt(t)
		if k == 0 || n > uint64(len(t)-k) {
			return false
		}
		t = t[k+int(n):]
	}
	return t == ""
}

// decode reads a frame of session records.
func (ss *sessStore) decode(d *dec, b *builder) {
	first := d.u32(uint64(ss.recs.n))
	users := uint64(b.users.recs.n)
	for i := first; len(d.b) > 0 && d.err == nil; i++ {
		if i >= ss.recs.n {
			d.fail(errors.New("too many sessions"))
			return
		}
		s := ss.recs.at(i)
		s.flags = d.byte()
		if s.flags&sLive == 0 {
			continue
		}
		if s.flags&sOddID == 0 {
			copy(s.id[:], d.bytes(16))
		}
		if s.flags&sOddHash == 0 {
			copy(s.hash[:], d.bytes(32))
		}
		s.seq = d.uvarint()
		s.startSeq = s.seq - d.uvarint()
		s.started = stamp(d.u64())
		s.expires = s.started + stamp(d.varint())
		s.lastUsed = s.started + stamp(d.varint())
		if d.byte() == 0 {
			s.rotated = stampZero
		} else {
			s.rotated = s.started + stamp(d.varint())
		}
		s.user = d.u32(users)
		s.tenant = d.u32(uint64(max(len(ss.tenants.strs), 1) - 1))
		s.spent = d.u32(uint64(ss.spent.n))
		s.refreshes = d.u32(math32)
		s.version = d.u32(math32)
		s.reason = uint16(d.u32(reasonOdd))
		if s.reason != reasonOdd && int(s.reason) >= max(len(ss.reasons.strs), 1) {
			d.fail(errors.New("session of an unknown reason"))
		}
	}
}

// finish rebuilds what the snapshot does not carry: the role sets' keys and
// free list, the string tables' maps, and the indexes (two at a time).
func (b *builder) finish() error {
	us, ss := &b.users, &b.sessions
	if len(us.sets.sets) == 0 {
		us.sets.sets = []roleSet{{}}
	}
	us.sets.ids = make(map[string]uint32, len(us.sets.sets))
	for i := 1; i < len(us.sets.sets); i++ {
		s := &us.sets.sets[i]
		if s.refs == 0 {
			us.sets.free = append(us.sets.free, uint32(i))
			continue
		}
		s.key = roleKey(s.m)
		us.sets.ids[s.key] = uint32(i)
	}
	if len(us.lists.lists) == 0 {
		us.lists.lists = [][]domain.GlobalRole{nil}
	}
	us.lists.ids = make(map[string]uint16, len(us.lists.lists))
	for i, l := range us.lists.lists[1:] {
		var k bytes.Buffer
		k.WriteByte('[')
		for _, r := range l {
			k.WriteString(string(r))
			k.WriteByte(0)
		}
		us.lists.ids[k.String()] = uint16(i + 1)
	}
	for _, t := range []*strTable{&ss.tenants, &ss.reasons} {
		t.ids = make(map[string]uint32, len(t.strs))
		for i, s := range t.strs {
			if i > 0 {
				t.ids[s] = uint32(i)
			}
		}
	}
	// The indexes, from the sorted hashes (htab.build), two at a time.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ids := make([]uint64, 0, us.recs.n)
		names := make([]uint64, 0, us.recs.n)
		for r := range us.recs.n {
			ids = append(ids, htabEntry(hashString(us.id(r)), r))
			if us.recs.at(r).flags&uNamed != 0 {
				names = append(names, htabEntry(hashString(domain.NormalizeUsername(us.name(r))), r))
			}
		}
		us.byID.build(ids)
		us.byName.build(names)
	}()
	go func() {
		defer wg.Done()
		ids := make([]uint64, 0, ss.recs.n)
		hashes := make([]uint64, 0, ss.recs.n+ss.spent.n)
		for r := range ss.recs.n {
			s := ss.recs.at(r)
			if s.flags&sLive == 0 {
				continue
			}
			if s.flags&sOddID != 0 {
				ids = append(ids, htabEntry(hashString(ss.oddID[r]), r))
			} else {
				ids = append(ids, htabEntry(hashID(&s.id), r))
			}
			if s.flags&sHashOwned != 0 {
				_, h := ss.currentKey(r)
				hashes = append(hashes, htabEntry(h, r))
			}
		}
		freeNode := make(map[uint32]bool, len(ss.spent.free))
		for _, i := range ss.spent.free {
			freeNode[i] = true
		}
		for i := range ss.spent.n {
			if !freeNode[i] && ss.spent.at(i).sess&spentOwned != 0 {
				_, h := ss.nodeKey(i)
				hashes = append(hashes, htabEntry(h, i|spentRef))
			}
		}
		ss.byID.build(ids)
		ss.byHash.build(hashes)
	}()
	wg.Wait()
	linkAllSessions(ss, &b.cow) // each user's sessions (lifecycle.go)
	return b.finishHistory()
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// swap puts the built state in the model.
func (b *builder) swap() {
	m, s := b.m, &b.rest
	logins := make(map[string]loginEntry, len(s.Logins))
	for _, l := range s.Logins {
		logins[l.ID] = loginEntry{state: l.State, seq: l.Seq}
	}
	addrs := make(map[string]addrFailures, len(s.AddrFailures))
	for _, a := range s.AddrFailures {
		// Snapshots written by earlier versions count IPv6 addresses one
		// by one: those of one domain.AddressKey become one count, their sum (what
		// a replay of the same failures counts), at the latest.
		k := domain.AddressKey(a.Addr)
		f := addrFailures{count: a.Count, last: a.Last}
		if o, ok := addrs[k]; ok {
			f.count, f.last = f.count+o.count, maxTime(f.last, o.last)
		}
		addrs[k] = f
	}
	// The key index is rebuilt from the keys' states.
	var keys keyModel
	for _, k := range s.Keys {
		k.Empty.restore(&k.State)
		keys.restoreKey(k.ID, k.State, k.Seq, &b.users)
	}
	var sso ssoModel
	if len(s.SSOProviders) > 0 {
		sso.providers = make(map[string]*ssoProviderEntry, len(s.SSOProviders))
		for _, p := range s.SSOProviders {
			p.Empty.restore(&p.State)
			sso.providers[p.Name] = &ssoProviderEntry{state: p.State, seq: p.Seq}
		}
	}
	if len(s.SSOIdentities) > 0 || len(s.SSOLinkSeq) > 0 {
		sso.identities, sso.linkSeq = nonNil(s.SSOIdentities), nonNil(s.SSOLinkSeq)
	}
	scim := restoreSCIM(s.SCIMConns, s.SCIMGroups, s.SCIMLinks)
	mfa := restoreMFA(s.MFA, s.MFAPolicies)
	var signing map[string]*signingEntry
	if len(s.SigningKeys) > 0 {
		signing = make(map[string]*signingEntry, len(s.SigningKeys))
		for _, k := range s.SigningKeys {
			k.Empty.restore(&k.State)
			signing[k.ID] = &signingEntry{state: k.State, seq: k.Seq}
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.applied, m.skipped = b.applied, b.skipped
	m.users, m.sessions = b.users, b.sessions
	m.revokedTokens = nonNil(s.RevokedTokens)
	m.logins, m.addrFailures = logins, addrs
	m.keys = keys
	m.swapHistory(&b.journal, &b.access)
	m.sso = sso
	m.scim = scim
	m.mfa = mfa
	m.signing.keys = signing
	m.signing.version.Add(1) // token verifiers reload the keys
}

func cloneMap[K comparable, V any](in map[K]V) map[K]V {
	out := make(map[K]V, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// nonNil returns m, or an empty map for nil (gob decodes an empty map as nil).
func nonNil[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return make(map[K]V)
	}
	return m
}

// emptyFields is a bit set of a struct's top-level slice and map fields (by
// field index) that are empty but not nil.
type emptyFields uint64

// collectionFields caches, per struct type, the indexes of its slice and map
// fields.
var collectionFields sync.Map // reflect.Type -> []int

func collectionsOf(t reflect.Type) []int {
	if v, ok := collectionFields.Load(t); ok {
		return v.([]int)
	}
	var idx []int
	for i := range min(t.NumField(), 64) {
		if k := t.Field(i).Type.Kind(); k == reflect.Slice || k == reflect.Map {
			idx = append(idx, i)
		}
	}
	collectionFields.Store(t, idx)
	return idx
}

// markEmpty returns the empty-but-not-nil collections of the struct *v.
func markEmpty[T any](v *T) emptyFields {
	rv := reflect.ValueOf(v).Elem()
	var m emptyFields
	for _, i := range collectionsOf(rv.Type()) {
		if f := rv.Field(i); !f.IsNil() && f.Len() == 0 {
			m |= 1 << i
		}
	}
	return m
}

// restore makes the marked fields of the struct *v empty, not nil.
func (m emptyFields) restore(v any) {
	if m == 0 {
		return
	}
	rv := reflect.ValueOf(v).Elem()
	for _, i := range collectionsOf(rv.Type()) {
		if m&(1<<i) == 0 {
			continue
		}
		switch f := rv.Field(i); f.Kind() {
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 0, 0))
		case reflect.Map:
			f.Set(reflect.MakeMap(f.Type()))
		}
	}
}
