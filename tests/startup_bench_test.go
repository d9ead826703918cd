package tests

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/http/service"
)

// history1M appends total events to the stream of an embedded store in
// dataDir, shaped like months of use: users (created, username reserved), each
// with sessions (started, login succeeded, refreshed three times), a failed
// login now and then, an access-token revocation, a session revoked; from
// sequence from on (the stream may hold events already).
func history1M(b *testing.B, dataDir string, total int, tag string) {
	b.Helper()
	ns, err := events.StartEmbedded(events.EmbeddedOptions{StoreDir: filepath.Join(dataDir, "jetstream")})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := events.ConnectEmbedded(ns)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	st, err := events.OpenStore(ctx, nc, events.StoreConfig{})
	if err != nil {
		b.Fatal(err)
	}
	js := st.JetStream()
	t0 := time.Now().Add(-365 * 24 * time.Hour).UTC()
	step := 365 * 24 * time.Hour / time.Duration(total)
	sealed := strings.Repeat("s", 140) // the size of a sealed argon2id hash
	n := 0
	pub := func(agg, id string, e domain.Event) {
		if n >= total {
			return
		}
		at := t0.Add(time.Duration(n) * step)
		data, err := events.Encode(fmt.Sprintf("evt-%s-%d", tag, n), agg, id, 1, at,
			events.Meta{Actor: events.Actor{Type: "user", ID: id}, Request: events.RequestInfo{IP: "10.1.2.3", UserAgent: "bench/1.0"}}, e)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishAsync(events.Subject(agg, id), data); err != nil {
			b.Fatal(err)
		}
		n++
	}
	for u := 0; n < total; u++ {
		uid := fmt.Sprintf("user-%s-%07d", tag, u)
		at := t0.Add(time.Duration(n) * step)
		pub("username", uid, domain.UsernameReserved{Username: uid, UserID: uid})
		pub("user", uid, domain.UserCreated{UserID: uid, Username: uid, Email: uid + "@example.com", PasswordHashSealed: sealed,
			Roles: []domain.GlobalRole{}, Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleEditor}}, CreatedAt: at})
		pub("user", uid, domain.UserLoginFailed{UserID: uid, Username: uid, Reason: "invalid_credentials", At: at})
		for s := 0; s < 9 && n < total; s++ {
			sid := fmt.Sprintf("sess-%s-%07d-%d", tag, u, s)
			pub("session", sid, domain.SessionStarted{SessionID: sid, UserID: uid, RefreshTokenHash: fmt.Sprintf("%064x", n),
				Method: "password", StartedAt: at, ExpiresAt: at.Add(7 * 24 * time.Hour)})
			pub("user", uid, domain.UserLoginSucceeded{UserID: uid, SessionID: sid, Method: "password"})
			for k := range 3 {
				pub("session", sid, domain.SessionRefreshed{SessionID: sid, TokenID: fmt.Sprintf("tok-%s-%d", sid, k), At: at})
			}
			switch s {
			case 3:
				pub("session", sid, domain.SessionTokenRevoked{SessionID: sid, TokenID: fmt.Sprintf("tok-%s-2", sid), ExpiresAt: at.Add(time.Hour)})
			case 5:
				pub("session", sid, domain.SessionRevoked{SessionID: sid, Reason: domain.RevokeReasonLogout})
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("publishing did not complete")
	}
}

// startReady starts a service on dataDir and returns it once ready, with the
// time Start took (connecting, opening the stream, restoring a snapshot) and
// the time until ready (the rest being the replay).
func startReady(b *testing.B, cfg service.Config) (*service.Service, time.Duration, time.Duration) {
	b.Helper()
	start := time.Now()
	svc, err := service.Start(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	started := time.Since(start)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := svc.WaitReady(ctx, io.Discard); err != nil {
		b.Fatal(err)
	}
	return svc, started, time.Since(start)
}

func stopService(b *testing.B, svc *service.Service) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := svc.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStartup1M measures how long a replica with 1,000,000 events of
// history takes from Start to ready, with and without a read-model snapshot
// (the "snapshot" case: the latest snapshot, then 10,000 events after it —
// at most SnapshotEvery, by default, since a snapshot is saved every 10,000
// events). The stream is in the embedded server's store on local disk;
// building it takes a minute or so, outside the timing. Run once:
//
//	go test -run '^$' -bench Startup1M -benchtime 1x -timeout 30m ./tests/
//
// full-replay reports the replay rate (decoding and applying included) as
// events/s.
func BenchmarkStartup1M(b *testing.B) {
	const total, tail = 1_000_000, 10_000
	dir := b.TempDir()
	history1M(b, dir, total, "h")

	cfg := service.Defaults()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	cfg.BootstrapAdmin, cfg.BootstrapPassword, cfg.Hash = AdminUser, AdminPassword, CheapHash

	// Save a snapshot at sequence 1,000,000, then add a tail after it.
	snapCfg := cfg
	snapCfg.SnapshotEvery, snapCfg.SnapshotInterval = 1, 10*time.Millisecond
	svc, _, _ := startReady(b, snapCfg)
	Eventually(b, 5*time.Minute, func() error {
		if seq := svc.SnapshotSequence(); seq < total {
			return fmt.Errorf("no snapshot of %d events yet (latest: %d)", total, seq)
		}
		return nil
	})
	stopService(b, svc)
	history1M(b, dir, tail, "t")

	b.Run("full-replay", func(b *testing.B) {
		c := cfg
		c.SnapshotEvery = 0
		for range b.N {
			svc, _, ready := startReady(b, c)
			if got := svc.Runner.Applied(); got != total+tail {
				b.Fatalf("ready at %d", got)
			}
			stopService(b, svc)
			b.ReportMetric(ready.Seconds(), "s-to-ready")
			b.ReportMetric(float64(total+tail)/ready.Seconds(), "events/s")
		}
	})
	b.Run("snapshot", func(b *testing.B) {
		c := cfg
		c.SnapshotInterval = time.Hour // measure the start, not a save
		for range b.N {
			svc, restore, ready := startReady(b, c)
			if got, snap := svc.Runner.Applied(), svc.SnapshotSequence(); got != total+tail || snap != total {
				b.Fatalf("ready at %d from a snapshot at %d", got, snap)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			snaps, err := svc.Store.Snapshots(ctx, []byte("Latest reads metadata only"))
			if err != nil {
				b.Fatal(err)
			}
			info, err := snaps.Latest(ctx)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(info.Size)/1e6, "snapshot-MB")
			stopService(b, svc)
			b.ReportMetric(ready.Seconds(), "s-to-ready")
			b.ReportMetric(restore.Seconds(), "s-in-Start")
		}
	})
}
