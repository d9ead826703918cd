package projections

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
)

// The journal file (Model.JournalDir): every chunk of the audit journal
// that has filled is written to a file of the model's own and dropped from
// the heap. The file is only appended to, and read with ReadAt — through
// the page cache, never mapped, so that its pages are not in the process's
// resident set — into pooled buffers; what a question reads more than once
// (the exact times of a chunk, while access at a moment is worked out) is
// kept in a small cache of decoded chunks. The file holds nothing a
// snapshot or a replay does not give back: a replica makes a new one at
// every start.
//
// A chunk's encoding, on file and in snapshots (little-endian):
//
//	n      uint16  entries (1..1024)
//	widths 3 bytes: of an entry's time offset (0..8), actor (0..4) and tenant set (0..4)
//	0      3 bytes
//	lo     int64   the least occurred_at of its entries (jtime)
//	hi     int64   the greatest
//	n refs: what a ref needs of an entry (journal.ref) — occurred_at - lo,
//	  the actor (number << 2 | kind), the type (1 byte) — of widths' bytes
//	n subject hashes, 4 bytes each
//	n tenant sets, of widths' bytes
//
// — some 16 bytes an entry for a year's events (times 6 bytes apart, a
// million users or keys, some ten thousand tenant sets), 7 when events
// carry no time. A scan reads the fields its filters look at in place.
//
// On file, each chunk's encoding is followed by its checksums (jsumSize
// bytes, little-endian): the CRC-32C of the encoding, then one of each
// block of 64 refs (the rows a ref reads, jfile.one). A chunk is only used
// once read whole and checked — a scan, a decode into the cache, a
// snapshot — and a ref alone once its block is, so that bytes changed on disk (a failing disk, a stray write) make the
// question fail (errDamaged) rather than answer from a wrong entry: an
// entry's type, time or tenants damaged could otherwise put an event in an
// answer it does not belong to, or leave out one that does (outside check
// 18r), and only the first can be caught on the event read from the stream.
// Snapshots carry the encoding alone (their frames have checks of their
// own); the file is only ever read by the process that wrote it, so its
// layout needs no version.

const jhdrSize = 24

// jsumSize is the size of a chunk's checksums on file, after its encoding:
// the whole's, then each block's of jrefBlock rows; jcrc their polynomial
// (Castagnoli: computed by the CPU where it can). A ref checks its block
// (some 800 bytes) rather than the whole chunk (some 16 kB): a question
// about a tenant's access names hundreds of grants.
const (
	jrefBlock = 64
	jsumSize  = 4 + 4*chunkLen/jrefBlock
)

var jcrc = crc32.MakeTable(crc32.Castagnoli)

// jwidths are the byte widths of a chunk's columns.
type jwidths struct{ t, a, s uint8 }

func (w jwidths) row() int { return int(w.t) + 4 + int(w.a) + 1 + int(w.s) }

// Columns of a chunk, as a set.
const (
	colAt uint8 = 1 << iota
	colSubj
	colActor
	colTyp
	colTset
	colAll = colAt | colSubj | colActor | colTyp | colTset
)

// cols are where a chunk's fields are in its encoding: entry i's time at
// ref(i), its actor wt bytes after, its type wa after that; its subject
// hash at subj + 4i, its tenant set at tset + i*ws.
type cols struct {
	row, subj, tset int
	wt, wa, ws      int
}

func (w jwidths) cols(n int) cols {
	c := cols{row: int(w.t) + int(w.a) + 1, wt: int(w.t), wa: int(w.a), ws: int(w.s)}
	c.subj = jhdrSize + n*c.row
	c.tset = c.subj + 4*n
	return c
}

func (c *cols) ref(i int) int { return jhdrSize + i*c.row }

// jentry is one journal entry, decoded.
type jentry struct {
	at    int64
	subj  uint32
	actor uint32
	tset  uint32
	typ   uint8
}

func (c *jchunk) entry(i uint32) jentry {
	return jentry{at: c.at[i], subj: c.subj[i], actor: c.actor[i], tset: c.tset[i], typ: c.typ[i]}
}

// jslot is one chunk of the journal: in memory, or, once filled and
// written, in the journal file. A slot is never replaced; mem is cleared
// (atomically, after the fields it then makes valid are written) when the
// chunk is on file, so that views of the journal taken before — a scan, a
// snapshot — may share the slots without the lock.
type jslot struct {
	mem atomic.Pointer[jchunk]
	// Valid once mem is nil: the file and where in it its encoding is (size
	// bytes, then its checksum: jsumSize), its widths, and the least and
	// greatest occurred_at of its entries.
	file   *jfile
	off    int64
	size   uint32
	widths jwidths
	lo, hi int64
}

// end is where slot s's chunk (on file) ends: after its checksum.
func (s *jslot) end() int64 { return s.off + int64(s.size) + jsumSize }

// compactActor is an entry's actor as rows hold it: number << 2 | kind.
func compactActor(a uint32) uint32 { return (a&^actorKind)<<2 | a>>30 }

func expandActor(c uint32) uint32 { return (c&3)<<30 | c>>2 }

// bytesFor is how many bytes hold v.
func bytesFor(v uint64) uint8 { return uint8((bits.Len64(v) + 7) / 8) }

// encodeChunk appends the encoding of c's first n entries to dst.
func encodeChunk(dst []byte, c *jchunk, n int) ([]byte, jwidths, int64, int64) {
	lo, hi := c.at[0], c.at[0]
	var actors, sets uint32
	for i := range n {
		lo, hi = min(lo, c.at[i]), max(hi, c.at[i])
		actors |= compactActor(c.actor[i])
		sets |= c.tset[i]
	}
	w := jwidths{t: bytesFor(uint64(hi) - uint64(lo)), a: bytesFor(uint64(actors)), s: bytesFor(uint64(sets))}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(n))
	dst = append(dst, w.t, w.a, w.s, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(lo))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(hi))
	for i := range n {
		dst = appendLE(dst, uint64(c.at[i])-uint64(lo), w.t)
		dst = appendLE(dst, uint64(compactActor(c.actor[i])), w.a)
		dst = append(dst, c.typ[i])
	}
	for i := range n {
		dst = binary.LittleEndian.AppendUint32(dst, c.subj[i])
	}
	for i := range n {
		dst = appendLE(dst, uint64(c.tset[i]), w.s)
	}
	return dst, w, lo, hi
}

func appendLE(dst []byte, v uint64, w uint8) []byte {
	for ; w > 0; w-- {
		dst = append(dst, byte(v))
		v >>= 8
	}
	return dst
}

// leAt reads w bytes at b[off:] (b has 8 bytes to spare after them).
func leAt(b []byte, off int, w uint8) uint64 {
	v := binary.LittleEndian.Uint64(b[off:])
	if w < 8 {
		v &= 1<<(8*w) - 1
	}
	return v
}

var errChunk = errors.New("a malformed journal chunk")

// errDamaged: a chunk read from the journal file is not what was written
// there (its checksum differs).
var errDamaged = errors.New("a damaged journal chunk: its checksum does not match what was written")

// chunkHeader reads and checks a chunk's header against the encoding's
// length.
func chunkHeader(b []byte) (n int, w jwidths, lo, hi int64, err error) {
	if len(b) < jhdrSize {
		return 0, w, 0, 0, errChunk
	}
	n = int(binary.LittleEndian.Uint16(b))
	w = jwidths{t: b[2], a: b[3], s: b[4]}
	lo, hi = int64(binary.LittleEndian.Uint64(b[8:])), int64(binary.LittleEndian.Uint64(b[16:]))
	if n == 0 || n > chunkLen || w.t > 8 || w.a > 4 || w.s > 4 || b[5]|b[6]|b[7] != 0 || lo > hi ||
		len(b) != jhdrSize+n*w.row() {
		return 0, w, 0, 0, errChunk
	}
	return n, w, lo, hi, nil
}

// decodeChunk decodes an encoding (followed in its buffer by 8 spare
// bytes) into dst, the fields of want only (the time, actor and type go
// together), and returns its entries and header. Each entry's time is checked to lie in [lo, hi], and each actor's
// kind to be one.
func decodeChunk(b []byte, dst *jchunk, want uint8) (int, jwidths, int64, int64, error) {
	n, w, lo, hi, err := chunkHeader(b)
	if err != nil {
		return 0, w, 0, 0, err
	}
	if cap(b) < len(b)+8 {
		return 0, w, 0, 0, errors.New("projections: decodeChunk needs 8 spare bytes")
	}
	b = b[:len(b)+8]
	c := w.cols(n)
	if want&(colAt|colActor|colTyp) != 0 {
		span, mt, ma := uint64(hi)-uint64(lo), mask(w.t), mask(w.a)
		for i := range n {
			o := c.ref(i)
			d := binary.LittleEndian.Uint64(b[o:]) & mt
			a := uint32(binary.LittleEndian.Uint64(b[o+c.wt:]) & ma)
			if d > span || a&3 == 3 {
				return 0, w, 0, 0, errChunk
			}
			dst.at[i] = int64(uint64(lo) + d)
			dst.actor[i] = expandActor(a)
			dst.typ[i] = b[o+c.wt+c.wa]
		}
	}
	if want&colSubj != 0 {
		col := b[c.subj : c.subj+4*n]
		for i := range n {
			dst.subj[i] = binary.LittleEndian.Uint32(col[4*i:])
		}
	}
	if want&colTset != 0 {
		decodeCol(&dst.tset, b[c.tset:], n, w.s)
	}
	return n, w, lo, hi, nil
}

// decodeCol decodes a column of n values of w bytes (b has 8 bytes to
// spare after them).
func decodeCol(dst *[chunkLen]uint32, b []byte, n int, w uint8) {
	switch w {
	case 0:
		clear(dst[:n])
	case 1:
		for i, v := range b[:n] {
			dst[i] = uint32(v)
		}
	case 2:
		for i := range n {
			dst[i] = uint32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case 4:
		for i := range n {
			dst[i] = binary.LittleEndian.Uint32(b[4*i:])
		}
	default:
		for i := range n {
			dst[i] = binary.LittleEndian.Uint32(b[3*i:]) & (1<<24 - 1)
		}
	}
}

// decodeEntry decodes entry i of an encoding of n entries (with 8 bytes to
// spare).
func decodeEntry(b []byte, w jwidths, n int, lo int64, i int) jentry {
	c := w.cols(n)
	e := decodeRef(b[c.ref(i):], w, lo)
	e.subj = binary.LittleEndian.Uint32(b[c.subj+4*i:])
	e.tset = uint32(leAt(b, c.tset+i*c.ws, w.s))
	return e
}

// decodeRef decodes what a ref needs of an entry (b has 8 bytes to spare).
func decodeRef(b []byte, w jwidths, lo int64) jentry {
	return jentry{
		at:    int64(uint64(lo) + leAt(b, 0, w.t)),
		actor: expandActor(uint32(leAt(b, int(w.t), w.a))),
		typ:   b[int(w.t)+int(w.a)],
	}
}

// mask keeps the low w bytes.
func mask(w uint8) uint64 {
	if w >= 8 {
		return math.MaxUint64
	}
	return 1<<(8*w) - 1
}

// Pooled buffers: a chunk's encoding (with 8 bytes to spare), and a
// decoded chunk for a scan.
var (
	jbufPool   = sync.Pool{New: func() any { b := make([]byte, 0, jhdrSize+chunkLen*(8+4+4+1+4)+8); return &b }}
	jchunkPool = sync.Pool{New: func() any { return new(jchunk) }}
)

// ---------------------------------------------------------------- the file

// jfile is a journal file: the model's own, in Model.JournalDir. Readers
// that took a view of the journal keep it open: the descriptor is closed
// when the last of them lets go of it, and the name is removed then (or
// when the model replaces its journal: RestoreFrom).
type jfile struct {
	f     *os.File
	name  *jname
	size  int64 // bytes written, where the next chunk goes (the writer's: Model.mu, or the builder's)
	cache jcache
	// damaged is told of each chunk found damaged (check); nil: no one.
	damaged func(error)
}

type jname struct {
	path    string
	removed atomic.Bool
}

// remove removes the file's name (once).
func (n *jname) remove() error {
	if n.removed.Swap(true) {
		return nil
	}
	if err := os.Remove(n.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("projections: audit journal: %w", err)
	}
	return nil
}

// newJFile makes a journal file in dir; damaged is told of each chunk read
// back damaged (nil: no one).
func newJFile(dir string, damaged func(error)) (*jfile, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("projections: audit journal: %w", err)
	}
	f, err := os.CreateTemp(dir, "journal-*.bin")
	if err != nil {
		return nil, fmt.Errorf("projections: audit journal: %w", err)
	}
	jf := &jfile{f: f, name: &jname{path: f.Name()}, damaged: damaged}
	// The descriptor closes with f (os.File's own cleanup); the name goes
	// with the last view of the journal, if nothing removed it before.
	runtime.AddCleanup(jf, func(n *jname) {
		_ = n.remove() // the model is gone: there is no one to tell; the next start empties the folder
	}, jf.name)
	return jf, nil
}

// write appends a chunk's encoding, then its checksums, and returns where
// the encoding went. (b is not appended to: it may be a part of a
// snapshot's buffer.)
func (jf *jfile) write(b []byte) (int64, error) {
	n, w, _, _, err := chunkHeader(b)
	if err != nil {
		return 0, fmt.Errorf("projections: audit journal: write: %w", err)
	}
	off := jf.size
	var sum [jsumSize]byte
	binary.LittleEndian.PutUint32(sum[:], crc32.Checksum(b, jcrc))
	c := w.cols(n)
	for blk := 0; blk*jrefBlock < n; blk++ {
		rows := b[c.ref(blk*jrefBlock):c.ref(min(n, (blk+1)*jrefBlock))]
		binary.LittleEndian.PutUint32(sum[4+4*blk:], crc32.Checksum(rows, jcrc))
	}
	if _, err := jf.f.WriteAt(b, off); err != nil {
		return 0, fmt.Errorf("projections: audit journal: write: %w", err)
	}
	if _, err := jf.f.WriteAt(sum[:], off+int64(len(b))); err != nil {
		return 0, fmt.Errorf("projections: audit journal: write: %w", err)
	}
	jf.size += int64(len(b)) + jsumSize
	return off, nil
}

// check compares encoding b, read from the file at off, with the checksum
// that follows it there (sum), and reports a mismatch (jfile.damaged): the
// question that read it fails with errDamaged.
func (jf *jfile) check(b, sum []byte, off int64) error {
	if crc32.Checksum(b, jcrc) == binary.LittleEndian.Uint32(sum) {
		return nil
	}
	err := fmt.Errorf("projections: audit journal: read: %w (%d bytes at offset %d of %s)", errDamaged, len(b), off, jf.name.path)
	if jf.damaged != nil {
		jf.damaged(err)
	}
	return err
}

// raw reads slot s's encoding into a pooled buffer (with 8 bytes to
// spare), checked against its checksum; put it back with jbufPool.Put.
func (jf *jfile) raw(s *jslot) (*[]byte, error) {
	bp := jbufPool.Get().(*[]byte)
	if need := int(s.size) + 8; cap(*bp) < need {
		*bp = make([]byte, 0, need)
	}
	b := (*bp)[:int(s.size)+4] // the encoding and the whole's checksum
	if _, err := jf.f.ReadAt(b, s.off); err != nil {
		jbufPool.Put(bp)
		return nil, fmt.Errorf("projections: audit journal: read: %w", err)
	}
	if err := jf.check(b[:s.size], b[s.size:], s.off); err != nil {
		jbufPool.Put(bp)
		return nil, err
	}
	*bp = b[:s.size]
	return bp, nil
}

// read decodes the columns want of slot s into dst.
func (jf *jfile) read(s *jslot, dst *jchunk, want uint8) error {
	bp, err := jf.raw(s)
	if err != nil {
		return err
	}
	defer jbufPool.Put(bp)
	if _, _, _, _, err := decodeChunk(*bp, dst, want); err != nil {
		return fmt.Errorf("projections: audit journal: read: %w", err)
	}
	return nil
}

// one reads what a ref needs of entry i of slot s — its time, actor and
// type; not its subject nor its tenants — alone: the rows of its block,
// checked against the block's checksum (the chunk's lo and widths are the
// slot's, in memory).
func (jf *jfile) one(s *jslot, i uint32) (jentry, error) {
	var b [jrefBlock*(8+4+1) + 8]byte
	c := s.widths.cols(chunkLen)
	blk := int(i) / jrefBlock
	rows := b[:jrefBlock*c.row]
	at := s.off + int64(c.ref(blk*jrefBlock))
	if _, err := jf.f.ReadAt(rows, at); err != nil {
		return jentry{}, fmt.Errorf("projections: audit journal: read: %w", err)
	}
	var sum [4]byte
	if _, err := jf.f.ReadAt(sum[:], s.off+int64(s.size)+4+4*int64(blk)); err != nil {
		return jentry{}, fmt.Errorf("projections: audit journal: read: %w", err)
	}
	if err := jf.check(rows, sum[:], at); err != nil {
		return jentry{}, err
	}
	return decodeRef(b[(int(i)%jrefBlock)*c.row:], s.widths, s.lo), nil
}

// ---------------------------------------------------------------- the cache

// jcache keeps the last chunks decoded for questions about a moment, which
// look at many entries of the few chunks around that moment. Entries are
// copied out under its lock, so that a slot is reused in place.
type jcache struct {
	mu     sync.Mutex
	tick   uint64
	keys   [jcacheSlots]uint32 // chunk number + 1 (0: empty)
	used   [jcacheSlots]uint64
	chunks [jcacheSlots]*jchunk
}

const jcacheSlots = 8

// entry is entry i of chunk k (slot s); load: decode the chunk into the
// cache if it is not there (else read what a ref needs of the entry
// alone: one).
func (jf *jfile) entry(k uint32, s *jslot, i uint32, load bool) (jentry, error) {
	c := &jf.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick++
	lru := 0
	for x := range jcacheSlots {
		if c.keys[x] == k+1 {
			c.used[x] = c.tick
			return c.chunks[x].entry(i), nil
		}
		if c.used[x] < c.used[lru] {
			lru = x
		}
	}
	if !load {
		return jf.one(s, i)
	}
	if c.chunks[lru] == nil {
		c.chunks[lru] = new(jchunk)
	}
	c.keys[lru] = 0
	if err := jf.read(s, c.chunks[lru], colAll); err != nil {
		return jentry{}, err
	}
	c.keys[lru], c.used[lru] = k+1, c.tick
	return c.chunks[lru].entry(i), nil
}

// ResetJournalDir makes dir ready to be a model's JournalDir at a process's
// start: made if missing, and emptied of the journal files a process that
// ended without removing them left (a journal file is only ever read by
// the process that wrote it).
func ResetJournalDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("projections: audit journal: %w", err)
	}
	old, err := filepath.Glob(filepath.Join(dir, "journal-*.bin"))
	if err != nil {
		return fmt.Errorf("projections: audit journal: %w", err)
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("projections: audit journal: %w", err)
		}
	}
	return nil
}

// journalDamaged tells Model.OnJournalDamage of a damaged chunk.
func (m *Model) journalDamaged(err error) {
	if f := m.OnJournalDamage; f != nil {
		f(err)
	}
}
