package events

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// TestSnapshotTrailerReader: the content comes back whole and identical
// however it is read (a byte at a time, in big reads), and a wrong, missing
// or cut trailer ends the read with ErrNoSnapshot instead of io.EOF.
func TestSnapshotTrailerReader(t *testing.T) {
	sn := &Snapshots{macKey: SnapshotMACKey(bytes.Repeat([]byte{5}, 32))}
	info := SnapshotInfo{Sequence: 9, Format: 11, EventID: "e", EventTime: time.Unix(1, 0)}
	sealed := func(content []byte) []byte {
		m := sn.macOf(info)
		m.Write(content)
		return append(append([]byte(nil), content...), m.Sum(nil)...)
	}
	read := func(object []byte, oneByte bool) ([]byte, error) {
		var r io.Reader = bytes.NewReader(object)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		return io.ReadAll(&trailerChecked{r: io.NopCloser(r), mac: sn.macOf(info), unauthentic: ErrNoSnapshot})
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 20_000) // several buffers' worth
	for _, content := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte{1}, macTrailerLen), big} {
		for _, oneByte := range []bool{false, true} {
			got, err := read(sealed(content), oneByte)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("%d bytes (one byte at a time: %v): got %d bytes, %v", len(content), oneByte, len(got), err)
			}
		}
	}
	tampered := sealed(big)
	tampered[100] ^= 1
	for name, object := range map[string][]byte{
		"content changed": tampered,
		"trailer changed": append(sealed(big)[:len(big)+macTrailerLen-1], 0),
		"trailer cut":     sealed(big)[:len(big)+10],
		"no trailer":      big,
		"too short":       []byte("short"),
		"empty":           nil,
	} {
		if _, err := read(object, false); !errors.Is(err, ErrNoSnapshot) {
			t.Errorf("%s: %v, want ErrNoSnapshot", name, err)
		}
	}
}

// TestSnapshotsSavedTogetherStayAuthentic: replicas that follow the same
// stream save snapshots at the same moment, into the same object. Whatever
// the interleaving, the object left is one save's content with that save's
// authentication — not one save's MAC over another's content, which every
// replica then refused (the metadata used to be updated after the put).
func TestSnapshotsSavedTogetherStayAuthentic(t *testing.T) {
	ctx := context.Background()
	connect := embeddedServer(t)
	key := SnapshotMACKey(bytes.Repeat([]byte{4}, 32))
	var replicas []*Snapshots
	var seq uint64
	for i := range 3 {
		st := connect()
		if i == 0 {
			var err error
			if seq, err = st.Append(ctx, Message{Subject: Subject("user", "a"), ID: "ma", Data: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
		sn, err := st.Snapshots(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, sn)
	}
	for round := range 15 {
		var wg sync.WaitGroup
		for i, sn := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				content := bytes.Repeat([]byte(strconv.Itoa(i)), 100_000+1000*i) // differs by replica
				if _, err := sn.Save(ctx, seq, 11, content); err != nil {
					t.Errorf("round %d replica %d: save: %v", round, i, err)
				}
			}()
		}
		wg.Wait()
		if _, data, err := replicas[0].Load(ctx, 11); err != nil {
			t.Fatalf("round %d: the snapshot left by concurrent saves does not load: %v", round, err)
		} else if len(data) < 100_000 {
			t.Fatalf("round %d: %d bytes loaded", round, len(data))
		}
	}
}

// embeddedServer starts an embedded nats-server for the test; each call of
// the function it returns opens the stream on a connection of its own (a
// replica). Everything stops at the test's end.
func embeddedServer(t *testing.T) func() *Store {
	t.Helper()
	ns, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return func() *Store {
		nc, err := ConnectEmbedded(ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		st, err := OpenStore(context.Background(), nc, StoreConfig{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
}
