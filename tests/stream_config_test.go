package tests

import (
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
	"github.com/infracast/auth/http/service"
)

// streamReplicas returns the replicas of a stream of the deployment.
func streamReplicas(t testing.TB, d *Deployment, stream string) int {
	t.Helper()
	return streamInfo(t, d, stream).Config.Replicas
}

// streamInfo returns a stream's info, as its leader answers.
func streamInfo(t testing.TB, d *Deployment, stream string) *jetstream.StreamInfo {
	t.Helper()
	nc, err := nats.Connect(strings.Join(d.NATS.URLs(), ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo()
}

// TestStreamReplicasOnAnExistingStream: a deployment began with
// INFRACAST_STREAM_REPLICAS=1 and saved a snapshot, then moved to 3 as the
// docs advise on a cluster: the stream and the snapshot bucket both become
// R3 (an outside check, 20n: the bucket stayed R1, and with its one node
// down no replica could start). One more replica started without the
// setting (its default, 1), with the bucket's first node down, starts, leaves
// them R3 and says so in its log (20n: it turned the stream into R1,
// silently).
func TestStreamReplicasOnAnExistingStream(t *testing.T) {
	d := NewDeployment(t, 3)
	a := Start(t, d.Replica(), func(c *service.Config) { c.StreamReplicas = 1 }, WithSnapshots(10, 10*time.Millisecond))
	admin := a.AdminToken()
	for i := range 6 {
		a.CreateUser(admin, fmt.Sprintf("u%d", i), fmt.Sprintf("u%d-passphrase", i), nil)
	}
	Eventually(t, 10*time.Second, func() error {
		if a.Svc.SnapshotSequence() == 0 {
			return Errorf("no snapshot yet")
		}
		return nil
	})
	a.Stop()
	if n := streamReplicas(t, d, "OBJ_"+events.SnapshotBucket); n != 1 {
		t.Fatalf("the bucket has %d replicas at first, want 1", n)
	}
	d.StartReplica(t) // INFRACAST_STREAM_REPLICAS=3
	for _, s := range []string{events.StreamName, "OBJ_" + events.SnapshotBucket} {
		if n := streamReplicas(t, d, s); n != 3 {
			t.Fatalf("%s has %d replicas after a replica started with INFRACAST_STREAM_REPLICAS=3, want 3", s, n)
		}
	}
	// Once the bucket's new members have caught up, its first node may go:
	// a replica still starts (20n: with the bucket on that node alone,
	// none could).
	Eventually(t, 10*time.Second, func() error {
		info := streamInfo(t, d, "OBJ_"+events.SnapshotBucket)
		if info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			return Errorf("the bucket's members: %+v", info.Cluster)
		}
		for _, p := range info.Cluster.Replicas {
			if !p.Current {
				return Errorf("the bucket's member %s is not current", p.Name)
			}
		}
		return nil
	})
	idx, err := d.NATS.WaitStreamLeader("OBJ_"+events.SnapshotBucket, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d.NATS.Stop(idx)
	for _, s := range []string{events.StreamName, "OBJ_" + events.SnapshotBucket} {
		if _, err := d.NATS.WaitStreamLeader(s, 15*time.Second); err != nil {
			t.Fatalf("%s after node %d stopped: %v", s, idx, err)
		}
	}
	logs := &LogBuffer{}
	StartLogged(t, logs, d.Replica(), func(c *service.Config) { c.StreamReplicas, c.StreamReplicasGiven = 1, false })
	for _, s := range []string{events.StreamName, "OBJ_" + events.SnapshotBucket} {
		if n := streamReplicas(t, d, s); n != 3 {
			t.Fatalf("%s has %d replicas after a replica started with the default INFRACAST_STREAM_REPLICAS, want 3 kept", s, n)
		}
	}
	if !strings.Contains(logs.String(), "the stream keeps its replicas") {
		t.Fatalf("the replica with the default did not say it kept the stream's replicas:\n%s", logs.String())
	}
}

// TestPreCreatedStreamThatDroppedEventsIsRefused: INFRACAST_AUTH was
// created in advance with MaxMsgs 3 and DiscardOld, and its first events
// are gone. A replica (no snapshot to cover them) does not start — an
// outside check, 20n, saw one ready on a model without the bootstrap admin
// — and the stream's settings that drop events are corrected and logged.
func TestPreCreatedStreamThatDroppedEventsIsRefused(t *testing.T) {
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
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: events.StreamName, Subjects: []string{events.SubjectPrefix + ".>"},
		Storage: jetstream.FileStorage, MaxMsgs: 3, Discard: jetstream.DiscardOld, Duplicates: 2 * time.Minute, AllowAtomicPublish: true, AllowDirect: true}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := js.Publish(ctx, events.Subject("user", fmt.Sprint("u", i)), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	cfg := service.Defaults()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.NATSURLs = []string{ns.ClientURL()}
	cfg.MasterKey, cfg.JWTKeys = newKey(t), [][]byte{newKey(t)}
	cfg.BootstrapAdmin, cfg.BootstrapPassword, cfg.Hash = AdminUser, AdminPassword, CheapHash
	cfg.SnapshotEvery = 0
	logs := &LogBuffer{}
	svc, err := service.Start(ctx, cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err == nil {
		_ = svc.Shutdown(context.Background())
		t.Fatal("a replica started on a stream whose events 1 and 2 are gone")
	}
	if !errors.Is(err, events.ErrStoreRefused) || !strings.Contains(err.Error(), "begins at sequence 3: its events 1 to 2 are gone") {
		t.Fatalf("start: %v, want ErrStoreRefused naming the events gone", err)
	}
	if !strings.Contains(logs.String(), "max_msgs 3 → unlimited") || !strings.Contains(logs.String(), "discard DiscardOld → DiscardNew") {
		t.Fatalf("the settings that drop events were not corrected with a log line:\n%s", logs.String())
	}
	st, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if c := st.CachedInfo().Config; c.MaxMsgs != -1 || c.Discard != jetstream.DiscardNew || !c.DenyDelete || !c.DenyPurge {
		t.Fatalf("stream after the start: max_msgs %d, discard %s, deny_delete %t, deny_purge %t", c.MaxMsgs, c.Discard, c.DenyDelete, c.DenyPurge)
	}
}
