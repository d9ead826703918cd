package natstest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/infracast/auth/events/natstest"
)

// TestClusterKeepsAStreamAcrossALeaderRestart: three nodes form a cluster
// with a meta leader; an R3 stream keeps taking writes while its leader is
// down and after it comes back on the same folder and ports.
func TestClusterKeepsAStreamAcrossALeaderRestart(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	nc, err := nats.Connect(strings.Join(c.URLs(), ","), nats.MaxReconnects(-1))
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
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	leader, err := c.WaitStreamLeader("S", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	published := 0 // message IDs: a retry of a publish that landed is stored once
	publish := func() {
		t.Helper()
		for {
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := js.Publish(actx, "s.x", []byte("x"), jetstream.WithMsgID(fmt.Sprint("m", published)))
			cancel()
			if err == nil {
				published++
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("publish: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	publish()
	c.Stop(leader)
	publish()
	if now := c.StreamLeader("S"); now == leader || now < 0 {
		t.Fatalf("stream leader after stopping node %d: %d", leader, now)
	}
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	publish()
	st, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 3 {
		t.Fatalf("%d messages, want 3", n)
	}
}
