package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/events/commands"
)

// testConfig is a valid configuration on a new data folder, with a cheap
// password hash.
func testConfig(t *testing.T) Config {
	t.Helper()
	c := Defaults()
	c.Listen, c.DataDir = "127.0.0.1:0", t.TempDir()
	c.Hash = commands.HashParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}
	return c
}

// checkFor polls f until it returns nil or wait has passed, and fails the
// test with f's last error then.
func checkFor(t *testing.T, wait, poll time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(poll)
	}
}

// freeAddr is a loopback address nothing listens on (at the moment).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestStartFailureLeavesNothingRunning: a start that fails — before NATS
// (a configuration Validate refuses, a data folder that cannot be one) or
// after the embedded server is up (a SAML key that does not parse) — returns
// an error and leaves nothing behind: no goroutine, the embedded server's
// listener closed, its data folder free for the next start.
func TestStartFailureLeavesNothingRunning(t *testing.T) {
	ctx := context.Background()
	before := runtime.NumGoroutine()

	t.Run("route policy file", func(t *testing.T) {
		c := testConfig(t)
		c.RoutePolicyFile = filepath.Join(t.TempDir(), "missing.json")
		var fe *FieldError
		if _, err := Start(ctx, c, nil); !errors.As(err, &fe) || fe.Field != "RoutePolicyFile" {
			t.Fatalf("Start: %v, want the problem of RoutePolicyFile", err)
		}
	})
	t.Run("data folder is a file", func(t *testing.T) {
		c := testConfig(t)
		c.DataDir = filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(c.DataDir, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Start(ctx, c, nil); err == nil || !strings.Contains(err.Error(), "data dir") {
			t.Fatalf("Start: %v, want the data folder refused", err)
		}
	})
	t.Run("after the embedded server started", func(t *testing.T) {
		c := testConfig(t)
		c.NATSListen, c.NATSListenPassword = freeAddr(t), "replica-password-0123456789"
		c.SAMLKeyFile, c.SAMLCertFile = filepath.Join(c.DataDir, "sp.key"), filepath.Join(c.DataDir, "sp.crt")
		for _, f := range []string{c.SAMLKeyFile, c.SAMLCertFile} {
			if err := os.WriteFile(f, []byte("not PEM"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("the configuration must pass Validate, to fail later: %v", err)
		}
		if _, err := Start(ctx, c, nil); err == nil || !strings.Contains(err.Error(), "SAMLKeyFile") {
			t.Fatalf("Start: %v, want the SAML key refused", err)
		}
		if _, err := os.Stat(filepath.Join(c.DataDir, "jetstream")); err != nil {
			t.Fatalf("the embedded server never started, so this tests nothing: %v", err)
		}
		ln, err := net.Listen("tcp", c.NATSListen)
		if err != nil {
			t.Fatalf("the embedded server's listener %s is still open: %v", c.NATSListen, err)
		}
		ln.Close()

		// The data folder is free: a start on it gets the store (a lock
		// still held would make it wait, then fail with ErrStoreInUse).
		c.SAMLKeyFile, c.SAMLCertFile = "", ""
		startCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		s, err := Start(startCtx, c, nil)
		if err != nil {
			t.Fatalf("start on the same data folder: %v", err)
		}
		if err := s.Shutdown(startCtx); err != nil {
			t.Fatal(err)
		}
	})

	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			return fmt.Errorf("%d goroutines, %d before the starts:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		return nil
	})
}

// TestStartWarnsNowAndThenWhileNATSIsUnreachable: a start against an
// external NATS nobody answers at keeps trying for initialConnectWait, with
// a warning every connectWarnEvery — not one per attempt (an outside check
// counted 60 identical lines in 15 s) — then fails saying how often it tried.
func TestStartWarnsNowAndThenWhileNATSIsUnreachable(t *testing.T) {
	wait, every := initialConnectWait, connectWarnEvery
	initialConnectWait, connectWarnEvery = 2*time.Second, time.Second
	t.Cleanup(func() { initialConnectWait, connectWarnEvery = wait, every })
	c := testConfig(t)
	// With a password in the URL: neither the error nor a warning prints it
	// (an outside check, 14g, found it in the error).
	c.NATSURLs = []string{"nats://replica:UrlPasswordMarker@" + freeAddr(t), "nats://UrlTokenMarker@" + freeAddr(t)}
	c.MasterKey, c.JWTKeys = make([]byte, 32), [][]byte{make([]byte, 32)}
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, c, slog.New(slog.NewTextHandler(&logs, nil)))
	if err == nil {
		if serr := s.Shutdown(ctx); serr != nil {
			t.Error(serr)
		}
		t.Fatal("started without NATS")
	}
	if !strings.Contains(err.Error(), "attempts") {
		t.Errorf("the error does not say how often it tried: %v", err)
	}
	if all := err.Error() + logs.String(); strings.Contains(all, "UrlPasswordMarker") || strings.Contains(all, "UrlTokenMarker") {
		t.Errorf("the NATS password is shown: %v\n%s", err, logs.String())
	}
	if n := strings.Count(logs.String(), "nats not reachable yet"); n < 1 || n > 3 {
		t.Fatalf("%d warnings in 2 s (one a second at most, and at least one):\n%s", n, logs.String())
	}
}
