package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/infracast/auth/events"
)

// The data folder's stream-sequence marker: the highest stream sequence
// this data folder's replica has applied, as a decimal number in the file
// <DataDir>/stream-sequence. A stream's sequence never goes back, so a
// start that finds the stream ending below it refuses (events.Seen): the
// stream's messages were removed (a msgs/ folder removed whole, index and
// all, loads as a new stream) or the store was replaced by an older or an
// empty one, and the service would otherwise start afresh with a new
// bootstrap admin (an outside check, 18r2).
//
// It is written off the request path: every seqMarkEvery while the applied
// sequence has moved, and once more at a clean shutdown — a file, its
// fsync and a rename, never more often than that. So it may lag the stream
// by up to seqMarkEvery (a crash), which only makes it weaker evidence, never
// wrong: whatever it says, the stream reached. A data folder without one
// (a first start, or one from a build before it) is not checked until one
// is written.
//
// The audit journal's files (audit-journal/) are not used as evidence: they
// hold no stream sequences (an entry's sequence lives in memory and in
// snapshots only), just entries, some of which may be a journal's that a
// new one replaced; a count of them would be a loose bound at best, and a
// wrong one would refuse a sound store.

// seqMarkFile is the marker's name in the data folder.
const seqMarkFile = "stream-sequence"

// seqMarkEvery is how often the marker is brought up to the applied
// sequence (a variable for the tests).
var seqMarkEvery = 10 * time.Second

// seqMarkPath is the marker's path ("" without a data folder).
func (s *Service) seqMarkPath() string {
	if s.cfg.DataDir == "" {
		return ""
	}
	return filepath.Join(s.cfg.DataDir, seqMarkFile)
}

// seenSequences is what start-up knows the stream reached: the marker's
// sequence. A marker that does not read as a sequence refuses the start
// (events.ErrStoreRefused): the service writes it whole or not at all
// (writeSeqMark), so a damaged one means the data folder was damaged or
// tampered with, and ignoring it would drop the very check it is for; the
// error says to remove it to start without the check. A marker the service's
// user may not read (left owned by root after a chown, say) refuses too, but
// is not damaged: the error says to fix its owner and permissions, as for an
// unreadable file of jetstream/ — removing it would drop the check for
// nothing (an outside check, 19r1).
func (s *Service) seenSequences() ([]events.Seen, error) {
	path := s.seqMarkPath()
	if path == "" {
		return nil, nil
	}
	seq, ok, err := readSeqMark(path)
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("%w: %v; fix the owner and permissions of %s (the service's user reads and writes it), and start again", events.ErrStoreRefused, err, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v; restore the data folder from your backup, or remove the file %s to start without checking the stream against it", events.ErrStoreRefused, err, path)
	}
	if !ok {
		return nil, nil
	}
	return []events.Seen{{
		Seq: seq, Where: "this data folder's marker " + path,
		Drop: "remove the file " + path + " (the data folder's record of the highest sequence it has seen; it is written again)",
	}}, nil
}

// readSeqMark reads the marker at path: ok false when there is none.
func readSeqMark(path string) (seq uint64, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("stream-sequence marker: %w", err)
	}
	seq, err = strconv.ParseUint(strings.TrimSuffix(string(b), "\n"), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("stream-sequence marker %s: not a stream sequence (%d bytes)", path, len(b))
	}
	return seq, true, nil
}

// writeSeqMark replaces the marker at path with seq, atomically: a
// temporary file beside it, written and fsync'd, renamed over it. A crash
// leaves the old marker or the new one (and perhaps a temporary file, which
// the next write does not trip over), never a part of one. (The folder is
// not fsync'd: a rename lost in a crash leaves the older, lower marker —
// weaker evidence, still true.)
func writeSeqMark(path string, seq uint64) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+seqMarkFile+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.WriteString(strconv.FormatUint(seq, 10) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("stream-sequence marker: %w", err)
	}
	return nil
}

// markSeq brings the marker up to the applied sequence if it moved since
// the last write (written: that write's sequence). Failures are logged and
// counted (infracast_background_errors_total{task="stream_sequence_marker"}):
// the marker is evidence for the next start, not needed to serve.
func (s *Service) markSeq(written *uint64) {
	path := s.seqMarkPath()
	applied := s.Runner.Applied()
	if path == "" || applied <= *written {
		return
	}
	if err := writeSeqMark(path, applied); err != nil {
		s.log.Warn("the data folder's stream-sequence marker was not written; retried", "err", err)
		s.Metrics.BackgroundError("stream_sequence_marker")
		return
	}
	*written = applied
}

// runSeqMark keeps the marker up to the applied sequence until ctx ends,
// starting from what the marker said at start (written), and returns the
// sequence last written.
func (s *Service) runSeqMark(ctx context.Context, written uint64) uint64 {
	if s.seqMarkPath() == "" {
		return written
	}
	t := time.NewTicker(seqMarkEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return written
		case <-t.C:
			s.markSeq(&written)
		}
	}
}
