package events_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/natstest"
)

// replicasOf returns the replicas a stream is configured with.
func replicasOf(t testing.TB, js jetstream.JetStream, stream string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().Config.Replicas
}

// TestOpenStoreReplicasOnAnExistingStream: a store opened with the default
// replicas (not given) keeps an existing stream's, and says so; given and
// higher, they are raised, and the snapshot bucket follows the stream;
// given and lower, the start is refused with how to lower them. An outside
// check (20n) saw one replica left at the default turn the production R3
// stream into R1, and the bucket keep the replicas it was created with.
func TestOpenStoreReplicasOnAnExistingStream(t *testing.T) {
	t.Parallel()
	c := natstest.StartCluster(t, 3)
	nc, err := nats.Connect(strings.Join(c.URLs(), ","), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	open := func(cfg events.StoreConfig) (*events.Store, string, error) {
		var logs bytes.Buffer
		cfg.Log = slog.New(slog.NewTextHandler(&logs, nil))
		st, err := events.OpenStore(ctx, nc, cfg)
		return st, logs.String(), err
	}

	// Begun with the default: R1, and its bucket R1.
	st, _, err := open(events.StoreConfig{Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Snapshots(ctx, []byte("test key")); err != nil {
		t.Fatal(err)
	}
	// Moved to 3, as docs advise on a cluster: the stream and the bucket.
	if _, logs, err := open(events.StoreConfig{Replicas: 3, ReplicasGiven: true}); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(logs, "replicas 1 → 3") || !strings.Contains(logs, "the snapshot bucket follows the stream's replicas") {
		t.Fatalf("raising the replicas was not logged:\n%s", logs)
	}
	if n := replicasOf(t, js, events.StreamName); n != 3 {
		t.Fatalf("stream replicas %d after a start with 3 given, want 3", n)
	}
	if n := replicasOf(t, js, "OBJ_"+events.SnapshotBucket); n != 3 {
		t.Fatalf("the snapshot bucket has %d replicas after the stream moved to 3, want 3", n)
	}
	// One replica started without the setting: nothing changes, and it
	// says why.
	st, logs, err := open(events.StoreConfig{Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	if n := replicasOf(t, js, events.StreamName); n != 3 {
		t.Fatalf("a start with the default replicas (1) made the stream R%d, want R3 kept", n)
	}
	if !strings.Contains(logs, "the stream keeps its replicas") {
		t.Fatalf("keeping the stream's replicas was not logged:\n%s", logs)
	}
	// Its bucket, if it creates one, has the stream's replicas: not the default.
	if n := replicasOf(t, js, "OBJ_"+events.SnapshotBucket); n != 3 {
		t.Fatalf("bucket R%d after a start with the default, want R3 kept", n)
	}
	if _, err := st.Snapshots(ctx, []byte("test key")); err != nil {
		t.Fatal(err)
	}
	// Given lower: refused, saying how to lower them.
	_, _, err = open(events.StoreConfig{Replicas: 1, ReplicasGiven: true})
	if !errors.Is(err, events.ErrStoreRefused) || !strings.Contains(err.Error(), "`nats stream edit INFRACAST_AUTH --replicas 1 -f`") {
		t.Fatalf("a start with 1 given on an R3 stream: %v, want ErrStoreRefused saying how to lower them (with -f: the nats CLI asks otherwise)", err)
	}
	if n := replicasOf(t, js, events.StreamName); n != 3 {
		t.Fatalf("stream R%d after a refused start, want R3", n)
	}
}

// TestOpenStoreNamesTheSnapshotBucketItWaitedFor: the bucket, kept on one
// node by an older build, is unreachable (that node is down) while the R3
// stream keeps its quorum. A start fails — it checks the stream against
// the latest snapshot's sequence — and says it waited for the bucket, not
// "create stream INFRACAST_AUTH: context deadline exceeded" (an outside
// check, 20n).
func TestOpenStoreNamesTheSnapshotBucketItWaitedFor(t *testing.T) {
	t.Parallel()
	c := natstest.StartCluster(t, 3)
	st, nc := clusterStore(t, c, events.StoreConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// As an older build created it: with the stream's replicas of then.
	if _, err := st.JetStream().CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: events.SnapshotBucket, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	idx, err := c.WaitStreamLeader("OBJ_"+events.SnapshotBucket, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Stop(idx)
	if _, err := c.WaitStreamLeader(events.StreamName, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
	defer ocancel()
	_, err = events.OpenStore(octx, nc, events.StoreConfig{Replicas: 3, ReplicasGiven: true})
	if err == nil || !strings.Contains(err.Error(), "the snapshot bucket "+events.SnapshotBucket) || !strings.Contains(err.Error(), "is its stream leader's server down?") {
		t.Fatalf("start with the bucket's only node down: %v, want an error naming the snapshot bucket, asking whether its leader's server is down", err)
	}
}

// TestBucketErrorAsksAboutServersOnlyWhenTheWaitRanOut: a start ended by
// its caller — at a permissions violation NATS reported (the service cancels
// the start, and names it) — is not told to look for a server down (re-check
// 20r3: the audit user, refused the bucket's stream info, read that).
func TestBucketErrorAsksAboutServersOnlyWhenTheWaitRanOut(t *testing.T) {
	const hint = "is its stream leader's server down?"
	ran, cancelRan := context.WithTimeout(context.Background(), 0)
	defer cancelRan()
	<-ran.Done()
	if err := events.BucketError(ran, "reading its configuration", ran.Err()); !strings.Contains(err.Error(), hint) {
		t.Fatalf("the wait ran out: %v, want the question %q", err, hint)
	}
	ended, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("NATS reported a permissions violation"))
	if err := events.BucketError(ended, "reading its configuration", ended.Err()); strings.Contains(err.Error(), hint) {
		t.Fatalf("the start was ended: %v, want no question about servers", err)
	}
}

// standalone starts a JetStream server and connects to it.
func standalone(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// TestOpenStoreRefusesAStreamThatCannotKeepEvents: a stream created in
// advance in memory (or as a work queue, or with per-message TTLs) cannot be
// changed in place: the start is refused, naming each setting and the
// value it needs. The stream is left as it was.
func TestOpenStoreRefusesAStreamThatCannotKeepEvents(t *testing.T) {
	nc, js := standalone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: events.StreamName, Subjects: []string{events.SubjectPrefix + ".>"},
		Storage: jetstream.MemoryStorage, Retention: jetstream.WorkQueuePolicy, AllowMsgTTL: true}); err != nil {
		t.Fatal(err)
	}
	_, err := events.OpenStore(ctx, nc, events.StoreConfig{})
	if !errors.Is(err, events.ErrStoreRefused) {
		t.Fatalf("open: %v, want ErrStoreRefused", err)
	}
	for _, want := range []string{"storage Memory (needs File)", "retention WorkQueue (needs Limits)", "allow_msg_ttl true (needs false", "nats stream backup INFRACAST_AUTH"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
}

// TestOpenStoreCorrectsAStreamThatDropsEvents: a stream created in advance
// on file, but with MaxMsgs 10 and DiscardOld, a MaxAge, and delete and
// purge allowed (an outside check, 20n: taken as it was, it dropped the
// first events). The start corrects what the service owns, logging each
// setting at WARN; and since 5 of its 15 events are already gone, a replay
// from the beginning is refused (CheckReplay) — one from a snapshot that
// covers them is not.
func TestOpenStoreCorrectsAStreamThatDropsEvents(t *testing.T) {
	nc, js := standalone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: events.StreamName, Subjects: []string{events.SubjectPrefix + ".>"},
		Storage: jetstream.FileStorage, MaxMsgs: 10, MaxAge: 24 * time.Hour, Discard: jetstream.DiscardOld}); err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		if _, err := js.Publish(ctx, events.Subject("user", fmt.Sprint("u", i)), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	st, err := events.OpenStore(ctx, nc, events.StoreConfig{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	info, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.CachedInfo().Config
	if cfg.MaxMsgs != -1 || cfg.MaxAge != 0 || cfg.Discard != jetstream.DiscardNew || !cfg.DenyDelete || !cfg.DenyPurge {
		t.Fatalf("stream after the start: max_msgs %d, max_age %s, discard %s, deny_delete %t, deny_purge %t; want the service's settings",
			cfg.MaxMsgs, cfg.MaxAge, cfg.Discard, cfg.DenyDelete, cfg.DenyPurge)
	}
	for _, want := range []string{"level=WARN", "max_msgs 10 → unlimited", "max_age 24h0m0s → unlimited", "discard DiscardOld → DiscardNew", "deny_delete false → true", "deny_purge false → true"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs.String())
		}
	}
	err = st.CheckReplay(ctx, 0)
	if !errors.Is(err, events.ErrStoreRefused) || !strings.Contains(err.Error(), "begins at sequence 6: its events 1 to 5 are gone") {
		t.Fatalf("replay from the beginning on a stream that lost 1..5: %v, want ErrStoreRefused", err)
	}
	if err := st.CheckReplay(ctx, 5); err != nil {
		t.Fatalf("replay after a snapshot at 5 on a stream that begins at 6: %v", err)
	}
}

// TestCheckReplayOnAStreamMadeToBeginLater: a stream configured to begin
// at a later sequence (FirstSeq, as the bench's start-up case makes one)
// held nothing before it: a replay from the beginning is not refused.
func TestCheckReplayOnAStreamMadeToBeginLater(t *testing.T) {
	nc, js := standalone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: events.StreamName, Subjects: []string{events.SubjectPrefix + ".>"},
		Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew, DenyDelete: true, DenyPurge: true, FirstSeq: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, events.Subject("user", "u"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	st, err := events.OpenStore(ctx, nc, events.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CheckReplay(ctx, 0); err != nil {
		t.Fatalf("replay of a stream made to begin at 100: %v", err)
	}
}
