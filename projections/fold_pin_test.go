package projections

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// foldDigest pins what history() folds to (the SHA-256 of the model's Dump)
// under each SnapshotFormat. A snapshot records the state the events were
// folded into, not the events, so a build that folds an event differently
// must not restore an older build's snapshot: the two builds would then
// disagree with each other and with a replay (an outside check of a rolling
// upgrade found exactly that: user.password_changed began to end a lockout,
// the format stayed 14, and a new replica that restored an old replica's
// snapshot kept a reset account locked while one that replayed let it in).
var foldDigest = map[int]string{
	15: "c1781965e79eaef5d05169cedcc5d5ea2d72d428748ca5e498818f5d7513d7c6",
	16: "824be37205f7fb0ba109fb578bfcf58405546b1c336b3264dd73e131c43c6b7a",
	17: "f17dfc6163e779cbc3a353804a425e9cdc11307f1cd8aba3b22d3faa1bb9cc81",
	18: "238b82f6f625a2f48ddcca47b9c0e748ad63313b8c91a1f38b5ae824aaeb070a",
}

// TestSnapshotFormatPinsTheFold fails when Apply — or a domain Evolve
// function it calls — folds history() into another model. If the fold itself
// changed, bump SnapshotFormat and pin the new digest under the new number
// (docs/operations.md says what an upgrade across it does). If only
// history() or Dump changed, pin the new digest under the same number.
func TestSnapshotFormatPinsTheFold(t *testing.T) {
	m := NewModel()
	applyAll(m, history())
	sum := sha256.Sum256(canonical(t, m))
	got := hex.EncodeToString(sum[:])
	want, ok := foldDigest[SnapshotFormat]
	switch {
	case !ok:
		t.Fatalf("no digest pinned for SnapshotFormat %d: pin %s", SnapshotFormat, got)
	case got != want:
		t.Fatalf("history() folds to %s, not %s as pinned for SnapshotFormat %d: if Apply or a domain Evolve function "+
			"now folds an event differently, bump SnapshotFormat and pin the new digest under it; if only history() "+
			"or Dump changed, pin it under %d", got, want, SnapshotFormat, SnapshotFormat)
	}
}
