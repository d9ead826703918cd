package tests

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/infracast/auth/http/service"
)

// TestRestartKeepsUsersTokensAndRevocations: everything that was acknowledged
// before a stop is there after a start on the same data folder: users,
// revocations, and the signing keys (old access tokens still verify).
func TestRestartKeepsUsersTokensAndRevocations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := Start(t, WithDataDir(dir))
	admin := in.AdminToken()
	aliceID := in.CreateUser(admin, "alice", "alice-passphrase", map[string]string{"prod": "viewer"})
	bobID := in.CreateUser(admin, "bob", "bob-password", map[string]string{"staging": "editor"})
	kept := in.Login("alice", "alice-passphrase")           // stays valid
	revoked := in.Login("alice", "alice-passphrase")        // its access token is revoked
	revokedSession := in.Login("alice", "alice-passphrase") // its refresh token is revoked
	bob := in.Login("bob", "bob-password")
	expectStatus(t, "revoke access token", in.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": revoked.String("token")}), 200)
	expectStatus(t, "revoke refresh token", in.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": revokedSession.String("refresh_token")}), 200)
	expectBody(t, "revoked before restart", me(t, in, revoked.String("token")), 401, bodyUnauthorized)
	headBefore := head(t, in)
	in.Stop()

	in2 := Start(t, WithDataDir(dir))
	if h := head(t, in2); h != headBefore {
		t.Fatalf("stream head %d after restart, %d before", h, headBefore)
	}
	if a := in2.Svc.Model.Applied(); a != headBefore {
		t.Fatalf("read model applied %d of %d events", a, headBefore)
	}
	for _, name := range []string{"master.key", "jwt-signing.key"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}

	// Users log in, with the same IDs.
	if got := in2.Login("alice", "alice-passphrase").JSON["user"].(map[string]any)["id"]; got != aliceID {
		t.Fatalf("alice is %v after restart, was %s", got, aliceID)
	}
	if got := in2.Login("bob", "bob-password").JSON["user"].(map[string]any)["id"]; got != bobID {
		t.Fatalf("bob is %v after restart, was %s", got, bobID)
	}
	// Revocations hold.
	expectBody(t, "revoked access token after restart", me(t, in2, revoked.String("token")), 401, bodyUnauthorized)
	expectBody(t, "revoked refresh token after restart", refresh(t, in2, revokedSession.String("refresh_token")), 401, bodyUnauthorized)
	expectBody(t, "access token of the revoked session after restart", me(t, in2, revokedSession.String("token")), 401, bodyUnauthorized)
	// Tokens issued before the restart still work: same keys.
	expectStatus(t, "access token from before the restart", me(t, in2, kept.String("token")), 200)
	expectStatus(t, "verify with a token from before the restart", verify(t, in2, kept.String("token"), "GET", prodNodes), 200)
	expectStatus(t, "bob's token from before the restart", verify(t, in2, bob.String("token"), "POST", stagingNodes), 200)
	expectStatus(t, "refresh of the session whose access token was revoked", refresh(t, in2, revoked.String("refresh_token")), 200)
	// Refresh tokens from before the restart still work.
	r := refresh(t, in2, kept.String("refresh_token"))
	expectStatus(t, "refresh token from before the restart", r, 200)
	expectStatus(t, "token refreshed after the restart", me(t, in2, r.String("token")), 200)
	expectStatus(t, "bob's refresh token", refresh(t, in2, bob.String("refresh_token")), 200)
}

// TestBootstrapNeverTwice: a restart on the same data never creates a second
// admin, nor resets the first one's password, even when the configured
// bootstrap password changed.
func TestBootstrapNeverTwice(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := Start(t, WithDataDir(dir))
	adminID := in.Login(AdminUser, AdminPassword).JSON["user"].(map[string]any)["id"]
	in.Stop()

	for i := range 2 {
		in = Start(t, WithDataDir(dir), WithBootstrapPassword(fmt.Sprintf("another-password-%d", i)))
		bad := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": AdminUser, "password": fmt.Sprintf("another-password-%d", i)})
		expectStatus(t, "login with the new bootstrap password", bad, 401)
		tok := in.AdminToken()
		list := in.Do("GET", "/api/v1/users", tok, nil)
		expectStatus(t, "list users", list, 200)
		admins := 0
		for _, u := range list.JSON["users"].([]any) {
			if u.(map[string]any)["username"] == AdminUser {
				admins++
				if u.(map[string]any)["id"] != adminID {
					t.Fatalf("admin is %v, was %v", u.(map[string]any)["id"], adminID)
				}
			}
		}
		if admins != 1 {
			t.Fatalf("restart %d: %d users named admin", i, admins)
		}
		envs := storedEvents(t, in.Svc)
		if n := countEvents(envs, "user.created", ""); n != 1 {
			t.Fatalf("restart %d: %d user.created events", i, n)
		}
		if created, err := in.Svc.Commands.Bootstrap(context.Background(), "root", "root-passphrase"); created || err != nil {
			t.Fatalf("Bootstrap on a non-empty store: %v %v", created, err)
		}
		in.Stop()
	}
}

// startNATS runs a standalone JetStream nats-server on a free loopback port,
// standing for a shared external NATS.
func startNATS(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		ServerName: "shared", Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns.ClientURL()
}

// replica is one service on a shared NATS.
type replica struct {
	svc *service.Service
	url string
}

// sharedConfig configures a replica of a deployment on an external NATS.
func sharedConfig(natsURL string, masterKey, jwtKey []byte) service.Config {
	cfg := service.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = ""
	cfg.NATSURLs = []string{natsURL}
	cfg.MasterKey, cfg.JWTKeys = masterKey, [][]byte{jwtKey}
	cfg.BootstrapAdmin, cfg.BootstrapPassword = AdminUser, AdminPassword
	cfg.Hash = CheapHash
	return cfg
}

// startReplica starts and serves a replica; with ready it also waits until it
// is ready (which bootstraps). Safe to call from any goroutine.
func startReplica(cfg service.Config, ready bool) (*replica, error) {
	svc, err := service.Start(context.Background(), cfg, nil)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = svc.Shutdown(context.Background())
		return nil, err
	}
	go func() { _ = svc.Serve(ln) }()
	r := &replica{svc: svc, url: "http://" + ln.Addr().String()}
	if ready {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := svc.WaitReady(ctx, io.Discard); err != nil {
			_ = svc.Shutdown(context.Background())
			return nil, err
		}
	}
	return r, nil
}

func randomKey(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// startReplicas starts n replicas concurrently on one NATS.
func startReplicas(t *testing.T, n int, cfg service.Config, ready bool) []*replica {
	t.Helper()
	out := make([]*replica, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = startReplica(cfg, ready)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if out[i] != nil {
			svc := out[i].svc
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = svc.Shutdown(ctx)
			})
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	return out
}

// TestConcurrentBootstrapOnSharedNATS: replicas starting together on one empty
// event store create exactly one admin.
func TestConcurrentBootstrapOnSharedNATS(t *testing.T) {
	t.Parallel()

	t.Run("replicas starting together", func(t *testing.T) {
		cfg := sharedConfig(startNATS(t), randomKey(t), randomKey(t))
		reps := startReplicas(t, 3, cfg, true)
		envs := storedEvents(t, reps[0].svc)
		if n := countEvents(envs, "user.created", ""); n != 1 {
			t.Fatalf("%d user.created events after 3 replicas bootstrapped", n)
		}
		for i, r := range reps {
			Eventually(t, 10*time.Second, func() error {
				if _, _, ok := r.svc.Model.UserByName(AdminUser); !ok {
					return Errorf("replica %d does not know the admin yet", i)
				}
				return nil
			})
			res, err := send(r.url, request{Method: "POST", Path: "/api/v1/auth/token", ContentType: "application/json",
				Body: jsonBody(map[string]string{"username": AdminUser, "password": AdminPassword})})
			if err != nil || res.Status != 200 {
				t.Fatalf("login on replica %d: %v %d %s", i, err, res.Status, res.Raw)
			}
			// A token from one replica works on another (shared keys and
			// events) once that one has applied the session's start: replicas
			// catch up asynchronously.
			other := reps[(i+1)%len(reps)]
			Eventually(t, 10*time.Second, func() error {
				m, err := send(other.url, request{Method: "GET", Path: "/api/v1/auth/me", Token: res.String("token")})
				if err != nil || m.Status != 200 {
					return Errorf("token of replica %d on another: %v %d %s", i, err, m.Status, m.Raw)
				}
				return nil
			})
		}
	})

	t.Run("Bootstrap called concurrently", func(t *testing.T) {
		cfg := sharedConfig(startNATS(t), randomKey(t), randomKey(t))
		reps := startReplicas(t, 2, cfg, false) // not bootstrapped yet
		for _, r := range reps {
			Eventually(t, 10*time.Second, func() error {
				if !r.svc.Runner.Ready() {
					return Errorf("replica not caught up")
				}
				return nil
			})
		}
		const n = 6
		created := make([]bool, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				created[i], errs[i] = reps[i%2].svc.Commands.Bootstrap(context.Background(), "root", "root-passphrase")
			}()
		}
		close(start)
		wg.Wait()
		wins := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("Bootstrap %d: %v", i, errs[i])
			}
			if created[i] {
				wins++
			}
		}
		if wins != 1 {
			t.Fatalf("%d Bootstrap calls created the admin, want exactly 1", wins)
		}
		if n := countEvents(storedEvents(t, reps[0].svc), "user.created", ""); n != 1 {
			t.Fatalf("%d user.created events", n)
		}
	})
}
