package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SnapshotBucket is the JetStream object store that keeps the latest
// read-model snapshot, next to the stream and replicated like it. It holds
// derived data only: deleting it costs one full replay at the next start.
const SnapshotBucket = "INFRACAST_AUTH_SNAPSHOTS"

// snapshotObject is the one object of the bucket; each save replaces it.
const snapshotObject = "read-models"

// ErrNoSnapshot: there is no snapshot this stream and build can use.
var ErrNoSnapshot = errors.New("events: no usable snapshot")

// SnapshotInfo describes a stored snapshot.
type SnapshotInfo struct {
	// Sequence is the last stream sequence the snapshot reflects.
	Sequence uint64
	// Format is the projections' snapshot format that encoded it.
	Format int
	// EventID and EventTime identify the event stored at Sequence: a
	// snapshot is used only on the stream it was taken from, not on a
	// recreated or restored one that merely reaches the same sequence.
	EventID   string
	EventTime time.Time
	Size      uint64
	Taken     time.Time
}

// Snapshots stores read-model snapshots in SnapshotBucket, each
// authenticated with an HMAC-SHA256 under a key derived from the
// deployment's master key: a client that may write to the bucket but does
// not hold the master key (an audit consumer, say) cannot plant a read model
// that replicas would load.
type Snapshots struct {
	st     *Store
	obs    jetstream.ObjectStore
	macKey []byte
}

// SnapshotMACKey derives the snapshot authentication key from the master key.
func SnapshotMACKey(masterKey []byte) []byte {
	m := hmac.New(sha256.New, masterKey)
	m.Write([]byte("infracast-auth/read-model-snapshot/v1"))
	return m.Sum(nil)
}

// macOf is the HMAC of a snapshot described by info, to be fed its content.
func (sn *Snapshots) macOf(info SnapshotInfo) hash.Hash {
	m := hmac.New(sha256.New, sn.macKey)
	fmt.Fprintf(m, "%d\x00%d\x00%s\x00%s\x00", info.Sequence, info.Format, info.EventID, info.EventTime.Format(time.RFC3339Nano))
	return m
}

// mac is the HMAC of data as the first snapshots had it: in the object's
// metadata, over the whole content.
func (sn *Snapshots) mac(info SnapshotInfo, data []byte) string {
	m := sn.macOf(info)
	m.Write(data)
	return hex.EncodeToString(m.Sum(nil))
}

// macDigest is the metadata that authenticates a snapshot: the HMAC of its
// fields (macOf) and of the object's SHA-256 digest, which the object store
// computes as the snapshot is written and checks as it is read (a read ends
// with an error if the content is not the digest's). So neither side makes
// a pass of its own over hundreds of megabytes. ("mac", an HMAC over the
// whole content, is how the first snapshots were authenticated.)
const macDigest = "mac-digest"

// macTrailer marks the snapshots saved since session 7: the HMAC (macOf,
// fed the content) is the content's last macTrailerLen bytes, written as
// the snapshot is, so the metadata is complete when the object is put and
// never updated after. (Updating it — mac-digest — re-read the object's
// info, which on a replicated bucket a follower may answer, and which
// another replica's save running at the same time may have replaced: an
// outside check found a snapshot carrying one save's MAC over another's
// content, refused by every replica until the next save.)
const (
	macTrailer      = "mac-trailer"
	macTrailerValue = "hmac-sha256"
	macTrailerLen   = sha256.Size
)

func (sn *Snapshots) macOfDigest(info SnapshotInfo, digest string) string {
	m := sn.macOf(info)
	m.Write([]byte(digest))
	return hex.EncodeToString(m.Sum(nil))
}

// snapshotChunkSize is the size of the object's chunks: a snapshot of
// hundreds of megabytes is hundreds of messages, each fsync'd by a file
// stream that syncs always.
const snapshotChunkSize = 512 << 10

// Pacing of a save: JetStream drops what a stream's ingest queue cannot
// hold (128 MiB, then "429 too many requests"), and the object store
// publishes a chunk as soon as it is read, without waiting for earlier ones
// to be stored. So at most saveWindow bytes are let out before the stream
// has stored them, checked every saveStep bytes.
const (
	saveWindow = 32 << 20
	saveStep   = 4 << 20
)

// Snapshots opens the snapshot bucket, creating it (with the stream's
// replicas and storage) if it is missing; like OpenStore, it retries until
// ctx ends. macKey (SnapshotMACKey) authenticates the snapshots.
func (s *Store) Snapshots(ctx context.Context, macKey []byte) (*Snapshots, error) {
	if len(macKey) == 0 {
		return nil, errors.New("events: snapshots need a key")
	}
	storage := jetstream.FileStorage
	if s.cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	cfg := jetstream.ObjectStoreConfig{
		Bucket:      SnapshotBucket,
		Description: "Infracast Auth read-model snapshots (derived from " + s.name + ")",
		Storage:     storage,
		Replicas:    s.cfg.Replicas,
	}
	backoff := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, s.cfg.TryTimeout)
		obs, err := s.js.ObjectStore(actx, SnapshotBucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			obs, err = s.js.CreateObjectStore(actx, cfg)
		}
		cancel()
		if err == nil {
			return &Snapshots{st: s, obs: obs, macKey: macKey}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: snapshot bucket: %v", ErrUnavailable, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// savedAtLeader reports whether the bucket's stream leader holds the
// snapshot's info (STREAM.MSG.GET: answered by the leader, not a direct get).
func (sn *Snapshots) savedAtLeader(ctx context.Context) (bool, error) {
	req, err := json.Marshal(msgGetRequest{LastFor: "$O." + SnapshotBucket + ".M." + base64.URLEncoding.EncodeToString([]byte(snapshotObject))})
	if err != nil {
		return false, err
	}
	reply, err := sn.st.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.OBJ_"+SnapshotBucket, req)
	if err != nil {
		return false, fmt.Errorf("%w: check snapshot: %v", ErrUnavailable, err)
	}
	var resp struct {
		Error *struct {
			ErrCode     uint16 `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return false, fmt.Errorf("%w: check snapshot: %v", ErrUnavailable, err)
	}
	switch {
	case resp.Error == nil:
		return true, nil
	case resp.Error.ErrCode == uint16(jetstream.JSErrCodeMessageNotFound):
		return false, nil
	}
	return false, fmt.Errorf("%w: check snapshot: %s (%d)", ErrUnavailable, resp.Error.Description, resp.Error.ErrCode)
}

// Save stores data, the snapshot of the read models at stream sequence seq,
// in place of the previous one.
func (sn *Snapshots) Save(ctx context.Context, seq uint64, format int, data []byte) (SnapshotInfo, error) {
	return sn.SaveFrom(ctx, seq, format, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// SaveFrom stores the snapshot of the read models at stream sequence seq
// that write writes, in place of the previous one, as write writes it:
// through a pipe into the object store, a chunk at a time, never whole in
// memory. The previous snapshot stays until this one is stored whole. It
// returns once write has returned.
func (sn *Snapshots) SaveFrom(ctx context.Context, seq uint64, format int, write func(io.Writer) error) (SnapshotInfo, error) {
	info := SnapshotInfo{Sequence: seq, Format: format, Taken: time.Now().UTC()}
	if seq > 0 {
		m, err := sn.st.leaderGet(ctx, seq, "")
		if err != nil {
			return SnapshotInfo{}, fmt.Errorf("events: snapshot: event %d: %w", seq, err)
		}
		info.EventID, info.EventTime = m.id, m.time
	}
	stream, err := sn.st.js.Stream(ctx, "OBJ_"+SnapshotBucket)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("%w: save snapshot: %v", ErrUnavailable, err)
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		mac := sn.macOf(info)
		err := write(io.MultiWriter(pw, mac))
		if err == nil {
			_, err = pw.Write(mac.Sum(nil)) // the trailer
		}
		pw.CloseWithError(err) // nil: EOF
	}()
	meta := jetstream.ObjectMeta{
		Name:        snapshotObject,
		Description: "read models at stream sequence " + strconv.FormatUint(seq, 10),
		Opts:        &jetstream.ObjectMetaOptions{ChunkSize: snapshotChunkSize},
		Metadata: map[string]string{
			"sequence":   strconv.FormatUint(seq, 10),
			"format":     strconv.Itoa(format),
			"event-id":   info.EventID,
			"event-time": info.EventTime.Format(time.RFC3339Nano),
			"taken":      info.Taken.Format(time.RFC3339Nano),
			macTrailer:   macTrailerValue,
		},
	}
	oi, err := sn.obs.Put(ctx, meta, &pacedReader{ctx: ctx, r: pr, stream: stream})
	pr.CloseWithError(errors.New("events: snapshot not saved")) // ends write if Put stopped reading
	<-done
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("%w: save snapshot: %v", ErrUnavailable, err)
	}
	info.Size = oi.Size - macTrailerLen
	return info, nil
}

// pacedReader lets at most saveWindow bytes through to the object store
// before its stream has stored them.
type pacedReader struct {
	ctx    context.Context
	r      io.Reader
	stream jetstream.Stream
	sent   uint64 // bytes read through
	base   uint64 // the stream's bytes before
	check  uint64 // next check at sent >= check
	err    error
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.sent >= p.check {
		if err := p.wait(); err != nil {
			p.err = err
			return 0, err
		}
		p.check = p.sent + saveStep
	}
	n, err := p.r.Read(b)
	p.sent += uint64(n)
	return n, err
}

func (p *pacedReader) wait() error {
	for first := p.sent == 0; ; first = false {
		si, err := p.stream.Info(p.ctx)
		if err != nil {
			return err
		}
		if first {
			p.base = si.State.Bytes
			return nil
		}
		if stored := si.State.Bytes - min(p.base, si.State.Bytes); p.sent <= stored+saveWindow {
			return nil
		}
		select {
		case <-p.ctx.Done():
			return p.ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Latest describes the stored snapshot (ErrNoSnapshot: none yet).
func (sn *Snapshots) Latest(ctx context.Context) (SnapshotInfo, error) {
	oi, err := sn.obs.GetInfo(ctx, snapshotObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return SnapshotInfo{}, ErrNoSnapshot
	}
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("%w: snapshot info: %v", ErrUnavailable, err)
	}
	return parseSnapshotInfo(oi)
}

func parseSnapshotInfo(oi *jetstream.ObjectInfo) (SnapshotInfo, error) {
	md := oi.Metadata
	seq, err1 := strconv.ParseUint(md["sequence"], 10, 64)
	format, err2 := strconv.Atoi(md["format"])
	evTime, err3 := time.Parse(time.RFC3339Nano, md["event-time"])
	taken, _ := time.Parse(time.RFC3339Nano, md["taken"])
	if err := errors.Join(err1, err2, err3); err != nil {
		return SnapshotInfo{}, fmt.Errorf("%w: bad snapshot metadata: %v", ErrNoSnapshot, err)
	}
	size := oi.Size
	if md[macTrailer] != "" && size >= macTrailerLen {
		size -= macTrailerLen
	}
	return SnapshotInfo{Sequence: seq, Format: format, EventID: md["event-id"], EventTime: evTime, Size: size, Taken: taken}, nil
}

// Load returns the stored snapshot if it was encoded in format and taken from
// this stream (the event at its sequence is the one it names), or
// ErrNoSnapshot. It holds the snapshot in memory: Open does not.
func (sn *Snapshots) Load(ctx context.Context, format int) (SnapshotInfo, []byte, error) {
	info, r, err := sn.Open(ctx, format)
	if err != nil {
		return info, nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return info, nil, err
	}
	return info, data, nil
}

// Open opens the stored snapshot if it was encoded in format and taken from
// this stream (the event at its sequence is the one it names), or returns
// ErrNoSnapshot. The reader gives the snapshot as it arrives, and tells at
// its end whether it is what was saved: its last Read returns an error
// instead of io.EOF when it is not (the object store's digest, which this
// deployment's master key authenticates, does not match). Use nothing read
// from it before its io.EOF.
func (sn *Snapshots) Open(ctx context.Context, format int) (SnapshotInfo, io.ReadCloser, error) {
	res, err := sn.obs.Get(ctx, snapshotObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		// The object's info is read by a direct get, which a follower of a
		// replicated bucket may answer before it stored a save the leader
		// has: a replica starting just after another saved its first
		// snapshot found none and replayed everything. Ask the leader, and
		// read again while a follower catches up.
		// (Up to 2 s: a follower of a busy cluster took longer than half a
		// second in CI.)
		saved, lerr := sn.savedAtLeader(ctx)
		for i := 0; saved && lerr == nil && errors.Is(err, jetstream.ErrObjectNotFound) && i < 80; i++ {
			select {
			case <-ctx.Done():
				return SnapshotInfo{}, nil, fmt.Errorf("%w: load snapshot: %v", ErrUnavailable, ctx.Err())
			case <-time.After(25 * time.Millisecond):
			}
			res, err = sn.obs.Get(ctx, snapshotObject)
		}
		if lerr != nil {
			return SnapshotInfo{}, nil, lerr
		}
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return SnapshotInfo{}, nil, ErrNoSnapshot
		}
	}
	if err != nil {
		return SnapshotInfo{}, nil, fmt.Errorf("%w: load snapshot: %v", ErrUnavailable, err)
	}
	oi, err := res.Info()
	if err != nil {
		res.Close()
		return SnapshotInfo{}, nil, fmt.Errorf("%w: load snapshot: %v", ErrUnavailable, err)
	}
	info, err := parseSnapshotInfo(oi)
	if err == nil && info.Format != format {
		err = fmt.Errorf("%w: format %d, this build reads %d", ErrNoSnapshot, info.Format, format)
	}
	if err == nil && info.Sequence > 0 {
		m, gerr := sn.st.leaderGet(ctx, info.Sequence, "")
		switch {
		case errors.Is(gerr, jetstream.ErrMsgNotFound):
			err = fmt.Errorf("%w: the stream has no event %d", ErrNoSnapshot, info.Sequence)
		case gerr != nil:
			err = fmt.Errorf("%w: check snapshot: %v", ErrUnavailable, gerr)
		case m.id != info.EventID || !m.time.Equal(info.EventTime):
			err = fmt.Errorf("%w: taken from another stream (event %d differs)", ErrNoSnapshot, info.Sequence)
		}
	}
	if err != nil {
		res.Close()
		return info, nil, err
	}
	unauthentic := fmt.Errorf("%w: not authenticated by this deployment's master key", ErrNoSnapshot)
	if kind, ok := oi.Metadata[macTrailer]; ok {
		if kind != macTrailerValue || oi.Size < macTrailerLen {
			res.Close()
			return info, nil, unauthentic
		}
		return info, &trailerChecked{r: &digestChecked{res}, mac: sn.macOf(info), unauthentic: unauthentic}, nil
	}
	// Snapshots of builds before session 7: the MAC of the digest in the
	// metadata.
	if mac, ok := oi.Metadata[macDigest]; ok {
		want, _ := hex.DecodeString(sn.macOfDigest(info, oi.Digest))
		have, err := hex.DecodeString(mac)
		if err != nil || oi.Digest == "" || !hmac.Equal(have, want) {
			res.Close()
			return info, nil, unauthentic
		}
		return info, &digestChecked{res}, nil
	}
	// The first snapshots: an HMAC over the whole, read first.
	defer res.Close()
	buf := bytes.NewBuffer(make([]byte, 0, oi.Size))
	if _, err := io.Copy(buf, res); err != nil {
		return info, nil, fmt.Errorf("%w: read snapshot: %v", ErrUnavailable, err)
	}
	want, _ := hex.DecodeString(sn.mac(info, buf.Bytes()))
	have, err := hex.DecodeString(oi.Metadata["mac"])
	if err != nil || !hmac.Equal(have, want) {
		return info, nil, unauthentic
	}
	return info, io.NopCloser(buf), nil
}

// digestChecked is the object store's reader, which checks the content
// against the digest at the end; a mismatch is ErrNoSnapshot.
type digestChecked struct{ jetstream.ObjectResult }

func (d *digestChecked) Read(p []byte) (int, error) {
	n, err := d.ObjectResult.Read(p)
	if errors.Is(err, jetstream.ErrDigestMismatch) {
		err = fmt.Errorf("%w: the content is not what was saved (%v)", ErrNoSnapshot, err)
	}
	return n, err
}

// trailerChecked reads a snapshot whose last macTrailerLen bytes are the
// HMAC of the rest: it gives the rest, feeding the HMAC, and ends with
// io.EOF only if the trailer is that HMAC — else with unauthentic
// (ErrNoSnapshot). It holds back at most a buffer's worth of bytes, and
// moves at most the trailer's length within it per refill.
type trailerChecked struct {
	r           io.ReadCloser
	mac         hash.Hash
	unauthentic error
	buf         []byte // read from r; buf[off:] not given yet, its end the trailer
	off         int
	srcDone     bool
	end         error // what every Read returns once the content is given
}

func (t *trailerChecked) Read(p []byte) (int, error) {
	if t.end != nil {
		return 0, t.end
	}
	if len(p) == 0 {
		return 0, nil
	}
	if t.buf == nil {
		t.buf = make([]byte, 0, 64<<10)
	}
	for len(t.buf)-t.off <= macTrailerLen && !t.srcDone {
		t.buf = t.buf[:copy(t.buf, t.buf[t.off:])] // at most the trailer's length
		t.off = 0
		n, err := t.r.Read(t.buf[len(t.buf):cap(t.buf)])
		t.buf = t.buf[:len(t.buf)+n]
		if err == io.EOF {
			t.srcDone = true
		} else if err != nil {
			return 0, err
		}
	}
	avail := len(t.buf) - t.off - macTrailerLen
	if avail <= 0 { // the source is done: what is left is the trailer
		t.end = io.EOF
		if rest := t.buf[t.off:]; len(rest) != macTrailerLen || !hmac.Equal(t.mac.Sum(nil), rest) {
			t.end = t.unauthentic
		}
		return 0, t.end
	}
	n := copy(p, t.buf[t.off:t.off+avail])
	t.mac.Write(p[:n])
	t.off += n
	return n, nil
}

func (t *trailerChecked) Close() error { return t.r.Close() }
