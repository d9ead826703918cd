package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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

func (sn *Snapshots) mac(info SnapshotInfo, data []byte) string {
	m := hmac.New(sha256.New, sn.macKey)
	fmt.Fprintf(m, "%d\x00%d\x00%s\x00%s\x00", info.Sequence, info.Format, info.EventID, info.EventTime.Format(time.RFC3339Nano))
	m.Write(data)
	return hex.EncodeToString(m.Sum(nil))
}

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

// Save stores data, the snapshot of the read models at stream sequence seq,
// in place of the previous one.
func (sn *Snapshots) Save(ctx context.Context, seq uint64, format int, data []byte) (SnapshotInfo, error) {
	info := SnapshotInfo{Sequence: seq, Format: format, Size: uint64(len(data)), Taken: time.Now().UTC()}
	if seq > 0 {
		m, err := sn.st.leaderGet(ctx, seq, "")
		if err != nil {
			return SnapshotInfo{}, fmt.Errorf("events: snapshot: event %d: %w", seq, err)
		}
		info.EventID, info.EventTime = m.id, m.time
	}
	_, err := sn.obs.Put(ctx, jetstream.ObjectMeta{
		Name:        snapshotObject,
		Description: "read models at stream sequence " + strconv.FormatUint(seq, 10),
		Metadata: map[string]string{
			"sequence":   strconv.FormatUint(seq, 10),
			"format":     strconv.Itoa(format),
			"event-id":   info.EventID,
			"event-time": info.EventTime.Format(time.RFC3339Nano),
			"taken":      info.Taken.Format(time.RFC3339Nano),
			"mac":        sn.mac(info, data),
		},
	}, bytes.NewReader(data))
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("%w: save snapshot: %v", ErrUnavailable, err)
	}
	return info, nil
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
	return SnapshotInfo{Sequence: seq, Format: format, EventID: md["event-id"], EventTime: evTime, Size: oi.Size, Taken: taken}, nil
}

// Load returns the stored snapshot if it was encoded in format and taken from
// this stream (the event at its sequence is the one it names), or
// ErrNoSnapshot.
func (sn *Snapshots) Load(ctx context.Context, format int) (SnapshotInfo, []byte, error) {
	res, err := sn.obs.Get(ctx, snapshotObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return SnapshotInfo{}, nil, ErrNoSnapshot
	}
	if err != nil {
		return SnapshotInfo{}, nil, fmt.Errorf("%w: load snapshot: %v", ErrUnavailable, err)
	}
	defer res.Close()
	oi, err := res.Info()
	if err != nil {
		return SnapshotInfo{}, nil, fmt.Errorf("%w: load snapshot: %v", ErrUnavailable, err)
	}
	info, err := parseSnapshotInfo(oi)
	if err != nil {
		return SnapshotInfo{}, nil, err
	}
	if info.Format != format {
		return info, nil, fmt.Errorf("%w: format %d, this build reads %d", ErrNoSnapshot, info.Format, format)
	}
	if info.Sequence > 0 {
		m, err := sn.st.leaderGet(ctx, info.Sequence, "")
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return info, nil, fmt.Errorf("%w: the stream has no event %d", ErrNoSnapshot, info.Sequence)
		}
		if err != nil {
			return info, nil, fmt.Errorf("%w: check snapshot: %v", ErrUnavailable, err)
		}
		if m.id != info.EventID || !m.time.Equal(info.EventTime) {
			return info, nil, fmt.Errorf("%w: taken from another stream (event %d differs)", ErrNoSnapshot, info.Sequence)
		}
	}
	buf := bytes.NewBuffer(make([]byte, 0, oi.Size))
	if _, err := io.Copy(buf, res); err != nil {
		return info, nil, fmt.Errorf("%w: read snapshot: %v", ErrUnavailable, err)
	}
	want, _ := hex.DecodeString(sn.mac(info, buf.Bytes()))
	have, err := hex.DecodeString(oi.Metadata["mac"])
	if err != nil || !hmac.Equal(have, want) {
		return info, nil, fmt.Errorf("%w: not authenticated by this deployment's master key", ErrNoSnapshot)
	}
	return info, buf.Bytes(), nil
}
