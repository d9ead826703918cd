package projections

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
)

// fileModel is a model that keeps its journal's full chunks in a file
// under a test folder, telling the test of any error writing it.
func fileModel(t *testing.T, dir string) *Model {
	t.Helper()
	m := NewModel()
	m.JournalDir = dir
	m.OnJournalError = func(err error) { t.Errorf("journal file: %v", err) }
	return m
}

// onFile counts the model's chunks that are on file.
func onFile(m *Model) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, s := range m.journal.slots {
		if s.mem.Load() == nil {
			n++
		}
	}
	return n
}

// journalFiles lists the journal files in dir.
func journalFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "journal-*.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestJournalOnFileAnswersAsInMemory: a model whose full chunks are on file
// answers every question — the audit log under every filter, access at
// every instant that matters (times that go back and forth, so chunks'
// ranges overlap), the histories — as the model that holds them in memory,
// and as the oracle.
func TestJournalOnFileAnswersAsInMemory(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 110))
	tl := randomHistory(rng, 3300)
	dir := t.TempDir()
	m := fileModel(t, dir)
	applyAll(m, tl.evs)
	if got, want := onFile(m), len(tl.evs)/chunkLen; got != want {
		t.Fatalf("%d chunks on file, want %d", got, want)
	}
	if files := journalFiles(t, dir); len(files) != 1 {
		t.Fatalf("journal files: %v", files)
	}
	if got, want := answersAt(t, m, tl.evs, 40), answersAt(t, tl.m, tl.evs, 40); got != want {
		t.Fatalf("on file, the model answers otherwise:\n%s", firstDiff(got, want))
	}
	concerns := concernOracle(tl.evs)
	for i, q := range randomQueries(rng, tl) {
		want := filterOracle(tl.evs, concerns, q)
		if q.NewestFirst {
			slices.Reverse(want)
		}
		if got := pageAll(t, m, q, nil); hitsText(got) != hitsText(want) {
			t.Fatalf("query %d %+v:\n%s\nthe oracle:\n%s", i, q, hitsText(got), hitsText(want))
		}
	}
	ats := instants(tl.evs)
	for i := 0; i < len(ats); i += len(ats) / 60 {
		at := ats[i]
		o := oracleAt(tl.evs, at)
		for _, tenant := range []string{"prod", "staging", "dev", "qa"} {
			if got, want := mustTenant(t, m, tenant, domain.FindingsRead, at), o.tenantAccess(tenant, domain.FindingsRead, at); got != want {
				t.Fatalf("%s, tenant %s:\n%s\nthe oracle:\n%s", at.Format(time.RFC3339Nano), tenant, got, want)
			}
		}
		for _, u := range m.Users() {
			if got, want := mustUser(t, m, u.ID, at), o.userAccess(u.ID); got != want {
				t.Fatalf("%s, user %s:\n%s\nthe oracle:\n%s", at.Format(time.RFC3339Nano), u.ID, got, want)
			}
		}
	}
}

// TestJournalSnapshotsBetweenMemoryAndFile: a snapshot of a model with its
// journal on file restores into one that keeps it in memory and into one
// that keeps it on file, and the other way round; each answers as the
// full replay, and goes on applying. A model restored again writes a new
// file and removes the one it replaced.
func TestJournalSnapshotsBetweenMemoryAndFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 120))
	tl := randomHistory(rng, 3100)
	want := answersAt(t, tl.m, tl.evs, 40)
	// Each way between the two (memory and file), each at a cut of its
	// own: at a chunk's end, within a chunk, and at a later chunk's end.
	// (Every cut with every way is 12 full comparisons: over a minute under
	// -race, for nothing these four do not show.)
	for _, c := range []struct {
		cut      int
		from, to string
	}{{1024, "memory", "file"}, {2500, "file", "memory"}, {3072, "file", "file"}, {2500, "memory", "memory"}} {
		cut, from := c.cut, c.from
		{
			src := NewModel()
			if from == "file" {
				src = fileModel(t, t.TempDir())
			}
			applyAll(src, tl.evs[:cut])
			data, _, err := src.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			for _, to := range []string{c.to} {
				dir := t.TempDir()
				dst := NewModel()
				if to == "file" {
					dst = fileModel(t, dir)
				}
				for range 2 { // the second restore replaces the first one's file
					if _, err := dst.Restore(data); err != nil {
						t.Fatalf("cut %d, %s to %s: %v", cut, from, to, err)
					}
				}
				if to == "file" {
					if got := onFile(dst); got != cut/chunkLen {
						t.Fatalf("cut %d, %s to %s: %d chunks on file", cut, from, to, got)
					}
					if files := journalFiles(t, dir); len(files) != 1 {
						t.Fatalf("cut %d: journal files after two restores: %v", cut, files)
					}
				}
				applyAll(dst, tl.evs[max(cut-3, 0):])
				if got := answersAt(t, dst, tl.evs, 40); got != want {
					t.Fatalf("cut %d, %s to %s: restored + replayed differs from the full replay:\n%s", cut, from, to, firstDiff(got, want))
				}
			}
		}
	}
}

// TestJournalFileWritesDuringASnapshot: a snapshot frozen while a chunk was
// being filled writes the entries it had, though the chunk has filled and
// gone to the file since — the first one too, for which the file did not
// exist yet when the snapshot was frozen; and Apply, scans and questions
// run beside a snapshot being written (go test -race).
func TestJournalFileWritesDuringASnapshot(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 130))
	tl := randomHistory(rng, 4200)
	for _, cut := range []int{1000, 1500} { // a snapshot and a scan taken within the first chunk (before the file is made), and the second
		m := fileModel(t, t.TempDir())
		applyAll(m, tl.evs[:cut])
		f := m.Freeze()
		s := m.compileAudit(&AuditQuery{Limit: 1000})
		applyAll(m, tl.evs[cut:2100])
		if onFile(m) != 2 {
			t.Fatalf("%d chunks on file", onFile(m))
		}
		var buf bytes.Buffer
		if _, err := f.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		f.Release()
		if hits, err := s.scanForward(0, s.j.n, 2000, nil); err != nil || len(hits) != cut {
			t.Fatalf("cut %d: a scan of a view taken before: %d hits, %v", cut, len(hits), err)
		}
		restored := NewModel()
		if _, err := restored.RestoreFrom(&buf); err != nil {
			t.Fatal(err)
		}
		ref := NewModel()
		applyAll(ref, tl.evs[:cut])
		if got, want := answersAt(t, restored, tl.evs[:cut], 40), answersAt(t, ref, tl.evs[:cut], 40); got != want {
			t.Fatalf("cut %d: the snapshot differs from the state it froze:\n%s", cut, firstDiff(got, want))
		}
	}

	cut := 2000 // within the second chunk
	m := fileModel(t, t.TempDir())
	applyAll(m, tl.evs[:cut])
	f := m.Freeze()
	applyAll(m, tl.evs[cut:3000]) // the second chunk fills and goes to the file
	if onFile(m) != 2 {
		t.Fatalf("%d chunks on file", onFile(m))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		applyAll(m, tl.evs[3000:])
	}()
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, _, err := m.AuditEvents(AuditQuery{Limit: 1000, Type: "apikey."}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.TenantAccess("prod", "", tl.evs[cut].env.OccurredAt); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	f.Release()
	restored := fileModel(t, t.TempDir())
	if _, err := restored.RestoreFrom(&buf); err != nil {
		t.Fatal(err)
	}
	ref := NewModel()
	applyAll(ref, tl.evs[:cut])
	if got, want := answersAt(t, restored, tl.evs[:cut], 40), answersAt(t, ref, tl.evs[:cut], 40); got != want {
		t.Fatalf("the snapshot differs from the state it froze:\n%s", firstDiff(got, want))
	}
	if got, want := answersAt(t, m, tl.evs, 40), answersAt(t, tl.m, tl.evs, 40); got != want {
		t.Fatalf("applied beside a snapshot, the model answers otherwise:\n%s", firstDiff(got, want))
	}
}

// TestJournalFileScansWhileApplying: scans of chunks on file run without
// the lock while Apply fills and writes more (go test -race).
func TestJournalFileScansWhileApplying(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 140))
	tl := randomHistory(rng, 6000)
	m := fileModel(t, t.TempDir())
	applyAll(m, tl.evs[:1500])
	done := make(chan struct{})
	go func() {
		defer close(done)
		applyAll(m, tl.evs[1500:])
	}()
	for scans := 0; ; scans++ {
		hits, _, err := m.AuditEvents(AuditQuery{Limit: 1000, NewestFirst: true, Type: "user."})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(hits); i++ {
			if hits[i].Seq >= hits[i-1].Seq {
				t.Fatalf("scan %d: out of order: %d after %d", scans, hits[i].Seq, hits[i-1].Seq)
			}
		}
		select {
		case <-done:
			if all := pageAll(t, m, AuditQuery{Limit: 1000}, nil); len(all) != len(tl.evs) {
				t.Fatalf("%d entries for %d events", len(all), len(tl.evs))
			}
			return
		default:
		}
	}
}

// TestJournalFileErrors: a journal file that cannot be written leaves the
// chunks in memory, where they answer as well, and says so each time;
// one that can no longer be read makes the questions fail, not answer
// wrong; a restore that fails removes the file it was writing.
func TestJournalFileErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 150))
	tl := randomHistory(rng, 2200)

	// Not a folder: the file cannot be made.
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m := NewModel()
	m.JournalDir = notDir
	var errs []error
	m.OnJournalError = func(err error) { errs = append(errs, err) }
	applyAll(m, tl.evs)
	if len(errs) != 2 || onFile(m) != 0 {
		t.Fatalf("%d errors (%v), %d chunks on file", len(errs), errs, onFile(m))
	}
	if got, want := answersAt(t, m, tl.evs, 40), answersAt(t, tl.m, tl.evs, 40); got != want {
		t.Fatalf("with its chunks kept in memory, the model answers otherwise:\n%s", firstDiff(got, want))
	}

	// A file that can no longer be read.
	m = fileModel(t, t.TempDir())
	applyAll(m, tl.evs)
	if err := m.journal.file.f.Close(); err != nil {
		t.Fatal(err)
	}
	m.journal.file.cache = jcache{} // nothing decoded left to answer from
	first := tl.evs[0].env.OccurredAt
	if _, _, err := m.AuditEvents(AuditQuery{}); err == nil {
		t.Error("AuditEvents: no error")
	}
	if _, err := m.TenantAccess("prod", "", first.Add(time.Second)); err == nil {
		t.Error("TenantAccess: no error")
	}
	if _, _, err := m.UserHistory(tl.evs[0].env.AggregateID); err == nil {
		t.Error("UserHistory: no error")
	}
	if _, _, err := m.Snapshot(); err == nil {
		t.Error("Snapshot: no error")
	}

	// A restore that fails: its file goes.
	src := NewModel()
	applyAll(src, tl.evs)
	data, _, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dst := fileModel(t, dir)
	if _, err := dst.Restore(data[:len(data)-1]); err == nil {
		t.Fatal("a snapshot cut short restored")
	}
	if files := journalFiles(t, dir); len(files) != 0 {
		t.Fatalf("a failed restore left %v", files)
	}
}

// TestChunkEncoding: chunks round-trip through their encoding, whatever
// their values; the row widths follow them; a malformed encoding is
// refused.
func TestChunkEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 160))
	for round := range 200 {
		var c jchunk
		n := 1 + rng.IntN(chunkLen)
		base := rng.Int64()
		for i := range n {
			switch round % 4 {
			case 0: // a year of events
				c.at[i] = base/2 + rng.Int64N(int64(365*24*time.Hour))
			case 1: // no times
				c.at[i] = math.MinInt64
			case 2: // anything, sentinels too
				c.at[i] = []int64{math.MinInt64, math.MinInt64 + 1, math.MaxInt64, rng.Int64() - rng.Int64()}[rng.IntN(4)]
			default:
				c.at[i] = base
			}
			c.subj[i] = rng.Uint32()
			c.actor[i] = uint32(rng.IntN(3))<<30 | uint32(rng.IntN(1<<(2*(round%16))))
			c.tset[i] = rng.Uint32N(1 << (round % 32))
			c.typ[i] = uint8(rng.IntN(256))
		}
		enc, w, lo, hi := encodeChunk(nil, &c, n)
		if round%4 == 1 && w.t != 0 {
			t.Fatalf("no times, %d bytes of time a row", w.t)
		}
		enc = append(enc, make([]byte, 8)...)[:len(enc)]
		var d jchunk
		dn, dw, dlo, dhi, err := decodeChunk(enc, &d, colAll)
		if err != nil || dn != n || dw != w || dlo != lo || dhi != hi {
			t.Fatalf("round %d: %d %v %d %d %v", round, dn, dw, dlo, dhi, err)
		}
		for i := range n {
			if d.entry(uint32(i)) != c.entry(uint32(i)) {
				t.Fatalf("round %d, entry %d: %+v, want %+v", round, i, d.entry(uint32(i)), c.entry(uint32(i)))
			}
			if e := decodeEntry(enc[:len(enc)+8], w, n, lo, i); e != c.entry(uint32(i)) {
				t.Fatalf("round %d, entry %d alone: %+v, want %+v", round, i, e, c.entry(uint32(i)))
			}
		}
	}
	var c jchunk
	c.at[0], c.at[1] = 10, 20
	enc, _, _, _ := encodeChunk(nil, &c, 2)
	for name, bad := range map[string][]byte{
		"short":         enc[:jhdrSize-1],
		"a byte more":   append(bytes.Clone(enc), 0),
		"a byte less":   enc[:len(enc)-1],
		"no entries":    append([]byte{0, 0}, enc[2:]...),
		"wide times":    append(append(bytes.Clone(enc[:2]), 9), enc[3:]...),
		"reserved":      append(append(bytes.Clone(enc[:5]), 1), enc[6:]...),
		"time too late": append(append(bytes.Clone(enc[:16]), 15, 0, 0, 0, 0, 0, 0, 0), enc[24:]...),
	} {
		bad = append(bad, make([]byte, 8)...)[:len(bad)]
		if _, _, _, _, err := decodeChunk(bad, new(jchunk), colAll); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// TestRefSeqAndIDList: the compact lists give back what was put in them,
// however it goes up and down.
func TestRefSeqAndIDList(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 170))
	var s refSeq
	var l idList
	var want, added []uint32
	v := uint32(0)
	for i := range 5000 {
		switch d := rng.IntN(20); {
		case d < 15:
			v += uint32(rng.IntN(300))
		case d < 17:
			v += uint32(rng.IntN(200_000)) // too far for 16 bits
		case d < 19:
			v -= min(v, uint32(rng.IntN(1000))) // down
		default:
			v = 0
		}
		s.add(v)
		l.add(v)
		want, added = append(want, v), append(added, v)
		if i%7 == 0 && i > 0 { // set again
			j := uint32(rng.IntN(i))
			want[j] = rng.Uint32()
			s.set(j, want[j])
		}
	}
	for i, w := range want {
		if got := s.at(uint32(i)); got != w {
			t.Fatalf("refSeq.at(%d) = %d, want %d", i, got, w)
		}
	}
	if got := l.appendTo(nil); !slices.Equal(got, added) {
		t.Fatalf("idList: %d numbers, want %d, or other ones", len(got), len(added))
	}
	if len(s.delta)*2+len(s.base)*4 > 3*len(want) {
		t.Errorf("refSeq: %d bytes for %d refs", len(s.delta)*2+len(s.base)*4, len(want))
	}
}

// TestJournalFileDamageFailsNeverAnswersWrong: bytes of the journal file
// changed on disk (outside check 18r: random bytes flipped while the
// service ran answered a session.refreshed to type=session.started, and
// left real events out) make each question that reads the damaged chunk
// fail with errDamaged, told to OnJournalDamage — a scan, a decode for a
// moment, a ref alone, a snapshot — and every answer that is given is the
// undamaged one. The bytes put back, every question answers again.
func TestJournalFileDamageFailsNeverAnswersWrong(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 181))
	tl := randomHistory(rng, 3300)
	m := fileModel(t, t.TempDir())
	damaged := 0
	m.OnJournalDamage = func(err error) {
		if !errors.Is(err, errDamaged) {
			t.Errorf("OnJournalDamage: %v", err)
		}
		damaged++
	}
	applyAll(m, tl.evs)
	if onFile(m) != 3 {
		t.Fatalf("%d chunks on file", onFile(m))
	}
	// Every chunk on file is read by a subject no event has.
	queries := append(randomQueries(rng, tl), AuditQuery{Subject: "user-none", Limit: 1000},
		AuditQuery{Type: "session.started", Limit: 1000}, AuditQuery{Type: "apikey.", Limit: 1000, NewestFirst: true})
	pageOf := func(m *Model, q AuditQuery) (string, error) {
		hits, more, err := m.AuditEvents(q)
		return fmt.Sprintf("%s%v", hitsText(hits), more), err
	}
	want := make([]string, len(queries))
	for i, q := range queries {
		var err error
		if want[i], err = pageOf(tl.m, q); err != nil {
			t.Fatal(err)
		}
	}
	ats := instants(tl.evs)
	ats = ats[len(ats)/4 : len(ats)/4+len(ats)/2 : len(ats)/4+len(ats)/2] // moments within the chunks on file
	type access struct {
		tenant string
		at     time.Time
		want   string
	}
	var accesses []access
	for i := 0; i < len(ats); i += len(ats) / 20 {
		for _, tenant := range []string{"prod", "staging", "dev", "qa"} {
			accesses = append(accesses, access{tenant, ats[i], mustTenant(t, tl.m, tenant, "", ats[i])})
		}
	}

	// Each entry on file, read alone (what a ref needs: jfile.one) and
	// from its decoded chunk.
	onFileN := uint32(onFile(m)) * chunkLen
	entries := make([]jentry, onFileN)
	for pos := range onFileN {
		e, err := m.journal.entry(pos, true)
		if err != nil {
			t.Fatal(err)
		}
		entries[pos] = e
	}

	f, err := os.OpenFile(m.journal.file.name.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := m.journal.file.size
	flip := func(offs []int64, masks []byte) {
		for i, off := range offs {
			var b [1]byte
			if _, err := f.ReadAt(b[:], off); err != nil {
				t.Fatal(err)
			}
			b[0] ^= masks[i]
			if _, err := f.WriteAt(b[:], off); err != nil {
				t.Fatal(err)
			}
		}
	}
	for trial := range 60 {
		var offs []int64
		var masks []byte
		for range 1 + rng.IntN(6) {
			offs = append(offs, rng.Int64N(size))
			masks = append(masks, byte(1+rng.IntN(255)))
		}
		flip(offs, masks)
		m.journal.file.cache = jcache{} // nothing decoded before the damage to answer from
		failed := 0
		for i, q := range queries {
			got, err := pageOf(m, q)
			switch {
			case err != nil && !errors.Is(err, errDamaged):
				t.Fatalf("trial %d, query %d %+v: %v", trial, i, q, err)
			case err != nil:
				failed++
			case got != want[i]:
				t.Fatalf("trial %d (bytes at %v damaged), query %d %+v answered wrong:\n%s\nundamaged:\n%s", trial, offs, i, q, got, want[i])
			}
		}
		if failed == 0 {
			t.Fatalf("trial %d: bytes at %v damaged, and no question failed", trial, offs)
		}
		for _, a := range accesses {
			accs, err := m.TenantAccess(a.tenant, "", a.at)
			switch {
			case err != nil && !errors.Is(err, errDamaged):
				t.Fatalf("trial %d, %s at %s: %v", trial, a.tenant, a.at, err)
			case err == nil && render(accs) != a.want:
				t.Fatalf("trial %d (bytes at %v damaged), %s at %s answered wrong:\n%s\nundamaged:\n%s", trial, offs, a.tenant, a.at, render(accs), a.want)
			}
		}
		badEntries := 0
		for pos := range onFileN {
			for _, load := range []bool{false, true} {
				m.journal.file.cache = jcache{}
				e, err := m.journal.entry(pos, load)
				switch {
				case err != nil && !errors.Is(err, errDamaged):
					t.Fatalf("trial %d, entry %d: %v", trial, pos, err)
				case err != nil:
					badEntries++
				case load && e != entries[pos], !load && (e.at != entries[pos].at || e.actor != entries[pos].actor || e.typ != entries[pos].typ):
					t.Fatalf("trial %d (bytes at %v damaged), entry %d (load %v): %+v, undamaged %+v", trial, offs, pos, load, e, entries[pos])
				}
			}
		}
		if badEntries == 0 {
			t.Fatalf("trial %d: bytes at %v damaged, and every entry read", trial, offs)
		}
		if _, _, err := m.Snapshot(); !errors.Is(err, errDamaged) {
			t.Fatalf("trial %d: a snapshot of a damaged journal: %v", trial, err)
		}
		flip(offs, masks) // put back
	}
	if damaged == 0 {
		t.Fatal("OnJournalDamage was never told")
	}
	m.journal.file.cache = jcache{}
	if got, want := answersAt(t, m, tl.evs, 40), answersAt(t, tl.m, tl.evs, 40); got != want {
		t.Fatalf("undamaged again, the model answers otherwise:\n%s", firstDiff(got, want))
	}
}
