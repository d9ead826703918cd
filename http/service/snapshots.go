package service

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/projections"
)

// Read-model snapshots (Config.SnapshotEvery): start-up restores the latest
// snapshot and replays only the events after it, so that it does not grow
// with the stream's history; every replica checks now and then whether the
// stream has grown by SnapshotEvery events since the latest snapshot (its own
// or another replica's) and, if so, saves one. Snapshots are derived data:
// anything wrong with one (missing, of another format, from another stream,
// unreadable) means a full replay, never a failed start.

// restoreSnapshot loads the latest usable snapshot into s.Model. Called by
// Start before the projections run.
func (s *Service) restoreSnapshot(ctx context.Context) {
	if s.cfg.SnapshotEvery <= 0 {
		return
	}
	s.Metrics.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "infracast_snapshot_sequence",
		Help: "Stream sequence of the latest read-model snapshot this replica restored or saved.",
	}, func() float64 { return float64(s.snapshotSeq.Load()) }))
	start := time.Now()
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	snaps, err := s.Store.Snapshots(bctx, events.SnapshotMACKey(s.cfg.MasterKey))
	if err != nil {
		s.log.Warn("snapshot bucket unavailable; replaying the whole stream", "err", err)
		return
	}
	s.snapshots = snaps
	// Reading takes about a second per million users and sessions.
	ctx, cancelRead := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelRead()
	// Another replica may replace the snapshot while this one reads it (its
	// old chunks go once the new one is in): read the newest again, a few
	// times, before falling back to a whole replay — at a million users, a
	// minute's start instead of a second's.
	var (
		info events.SnapshotInfo
		seq  uint64
	)
	for attempt := 1; ; attempt++ {
		var r io.ReadCloser
		info, r, err = snaps.Open(ctx, projections.SnapshotFormat)
		if errors.Is(err, events.ErrNoSnapshot) {
			s.log.Info("no read-model snapshot yet: the read models are built from the event stream", "reason", err)
			if info.Sequence > 0 {
				// One was refused (another stream's, another format's): not
				// current for snapshotOnce either (below).
				s.unusableSnap.Store(info.Sequence + 1)
			}
			return
		}
		if err == nil {
			// Restored as it is read, and used only if read whole and
			// authentic.
			seq, err = s.Model.RestoreFrom(r)
			r.Close()
			if err == nil {
				break
			}
		}
		if attempt == snapshotReadAttempts || ctx.Err() != nil {
			s.log.Warn("read-model snapshot unreadable; replaying the whole stream", "err", err, "attempts", attempt)
			if info.Sequence > 0 {
				// Not current for snapshotOnce, which saves a usable one as
				// soon as the stream is replayed: else every start replays the
				// whole stream until it has grown by SnapshotEvery (after an
				// upgrade, an older build's snapshot that skipped this build's
				// events is refused).
				s.unusableSnap.Store(info.Sequence + 1)
			}
			return
		}
		s.log.Debug("read-model snapshot unreadable; reading the newest again", "err", err)
	}
	s.snapshotSeq.Store(seq)
	s.log.Info("read models restored from a snapshot", "stream_seq", seq, "bytes", info.Size,
		"taken", info.Taken, "took", time.Since(start).String())
}

// snapshotReadAttempts is how many times a starting replica reads the newest
// snapshot before it replays the whole stream instead.
const snapshotReadAttempts = 3

// runSnapshots saves snapshots until ctx ends.
func (s *Service) runSnapshots(ctx context.Context) {
	if s.cfg.SnapshotEvery <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.SnapshotInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.snapshotOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("read-model snapshot not saved", "err", err)
		}
	}
}

// snapshotOnce saves a snapshot if the stream has grown by SnapshotEvery
// events since the latest one.
func (s *Service) snapshotOnce(ctx context.Context) error {
	every := uint64(s.cfg.SnapshotEvery)
	applied := s.Model.Applied()
	if !s.Runner.Current() || applied < s.snapshotSeq.Load()+every {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // hundreds of MB, fsync'd: seconds to a minute
	defer cancel()
	if s.snapshots == nil {
		snaps, err := s.Store.Snapshots(ctx, events.SnapshotMACKey(s.cfg.MasterKey))
		if err != nil {
			return err
		}
		s.snapshots = snaps
	}
	// Another replica may have saved one meanwhile (one this replica could
	// not restore at start does not count).
	latest, err := s.snapshots.Latest(ctx)
	if err == nil && latest.Format == projections.SnapshotFormat && latest.Sequence <= applied &&
		latest.Sequence+every > applied && latest.Sequence+1 != s.unusableSnap.Load() {
		s.snapshotSeq.Store(latest.Sequence)
		return nil
	}
	// Frozen under the read lock, then written to the object store as it
	// is encoded, while events are applied and requests answered.
	start := time.Now()
	frozen := s.Model.Freeze()
	defer frozen.Release()
	seq := frozen.Sequence()
	info, err := s.snapshots.SaveFrom(ctx, seq, projections.SnapshotFormat, func(w io.Writer) error {
		_, err := frozen.WriteTo(w)
		return err
	})
	if err != nil {
		return err
	}
	s.snapshotSeq.Store(seq)
	s.log.Info("read-model snapshot saved", "stream_seq", seq, "bytes", info.Size, "took", time.Since(start).String())
	return nil
}

// SnapshotSequence is the stream sequence of the latest read-model snapshot
// this replica restored at start or saved since (0: none).
func (s *Service) SnapshotSequence() uint64 { return s.snapshotSeq.Load() }
