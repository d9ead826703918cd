package service

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// get is a GET of base+path with a 1 s timeout (as `curl -m 1`).
func get(base, path string) (int, http.Header, string, error) {
	res, err := (&http.Client{Timeout: time.Second}).Get(base + path)
	if err != nil {
		return 0, nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b), err
}

// readyPhase is /ready's status and the phase a 503 of the start names.
func readyPhase(t *testing.T, base string) (int, string) {
	t.Helper()
	code, _, body, err := get(base, "/ready")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error struct{ Code, Message string }
	}
	if code == http.StatusOK {
		return code, ""
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Error.Code != "UNAVAILABLE" {
		t.Fatalf("/ready %d: %s (%v)", code, body, err)
	}
	phase, _ := strings.CutPrefix(r.Error.Message, StartingMessage) // the service's own /ready: its message
	return code, phase
}

// TestStartingAnswersUntilServeTakesOver: from ServeStarting on, /health is
// 200, /ready 503 naming the phase Start is in, and the rest 503 with
// Retry-After — before the service exists (outside check 20s: the address
// answered nothing for 20 s while the embedded NATS recovered the stream,
// and a liveness probe restarted the replica in the middle of it). Serve
// then takes the address over: the service's own answers, on the same
// listener, and Shutdown closes it.
func TestStartingAnswersUntilServeTakesOver(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st := ServeStarting(tcp, nil)
	base := "http://" + st.Addr().String()
	code, _, body, err := get(base, "/health")
	if err != nil || code != http.StatusOK || body != `{"status":"ok"}` {
		t.Fatalf("/health while starting: %d %s %v", code, body, err)
	}
	if code, phase := readyPhase(t, base); code != http.StatusServiceUnavailable || phase != StartingPhase {
		t.Fatalf("/ready while starting: %d %q", code, phase)
	}
	// HEAD as GET, as once running (re-check 20r5: HEAD /health was 503).
	for path, want := range map[string]int{"/health": http.StatusOK, "/ready": http.StatusServiceUnavailable} {
		res, err := (&http.Client{Timeout: time.Second}).Head(base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("HEAD %s while starting: %d, want %d", path, res.StatusCode, want)
		}
	}
	for _, path := range []string{"/api/v1/users", "/login", "/nowhere"} {
		code, hdr, body, err := get(base, path)
		if err != nil || code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "1" || hdr.Get("X-Request-ID") == "" || !strings.Contains(body, "UNAVAILABLE") {
			t.Fatalf("%s while starting: %d %v %s %v", path, code, hdr, body, err)
		}
	}

	c := testConfig(t)
	var (
		mu     sync.Mutex
		phases []string
	)
	c.OnPhase = func(p string) {
		st.SetPhase(p)
		mu.Lock()
		phases = append(phases, p)
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	said := strings.Join(phases, "; ")
	mu.Unlock()
	for _, want := range []string{"starting the embedded NATS", "opening the event stream", "restoring the read-model snapshot"} {
		if !strings.Contains(said, want) {
			t.Errorf("phases %q: no %q", said, want)
		}
	}
	if _, phase := readyPhase(t, base); phase != "building the API" {
		t.Errorf("/ready before Serve names %q", phase)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(st) }()
	if err := s.WaitReady(ctx, io.Discard); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if code, _ := readyPhase(t, base); code != http.StatusOK {
			return fmt.Errorf("/ready %d after WaitReady", code)
		}
		return nil
	})
	if code, _, body, err := get(base, "/openapi.json"); err != nil || code != http.StatusOK {
		t.Fatalf("the service's own route after the handover: %d %.100s %v", code, body, err)
	}
	for _, path := range []string{"/health", "/ready"} {
		res, err := (&http.Client{Timeout: time.Second}).Head(base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("HEAD %s once running: %d", path, res.StatusCode)
		}
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if _, _, _, err := get(base, "/health"); err == nil {
		t.Fatal("the address still answers after Shutdown")
	}
}

// TestStartingClosed: a start that fails closes the address (Close), and
// nothing answers on it.
func TestStartingClosed(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st := ServeStarting(tcp, nil)
	base := "http://" + st.Addr().String()
	if code, _, _, err := get(base, "/health"); err != nil || code != http.StatusOK {
		t.Fatalf("/health: %d %v", code, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := get(base, "/health"); err == nil {
		t.Fatal("the address answers after Close")
	}
	if _, err := st.Accept(); err == nil {
		t.Fatal("Accept after Close")
	}
}

// TestStartingHandsOverConnectionsWaitingForARequest: a connection opened
// while starting whose request comes after the handover — none of it yet,
// or half of its head — is answered by the service, never "Starting, not
// ready yet" (re-check 20r5: the early server kept such connections for up
// to its 15 s read timeout and answered 503 after /ready had said 200).
func TestStartingHandsOverConnectionsWaitingForARequest(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st := ServeStarting(tcp, nil)
	base := "http://" + st.Addr().String()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", st.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	idle, half := dial(), dial()
	if _, err := half.Write([]byte("GET /ready HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	// Both accepted by the start, waiting for their requests: a later
	// connection was answered (the listener accepts in order).
	if code, _, _, err := get(base, "/health"); err != nil || code != http.StatusOK {
		t.Fatalf("/health: %d %v", code, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, testConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(st) }()
	defer func() {
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	if err := s.WaitReady(ctx, io.Discard); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if code, _ := readyPhase(t, base); code != http.StatusOK {
			return fmt.Errorf("/ready %d", code)
		}
		return nil
	})
	answer := func(c net.Conn, rest string) (int, string) {
		t.Helper()
		if _, err := c.Write([]byte(rest)); err != nil {
			t.Fatal(err)
		}
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(b)
	}
	if code, body := answer(idle, "GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"); code != http.StatusOK || strings.Contains(body, StartingMessage) {
		t.Errorf("a request sent after ready on a connection opened while starting: %d %.200s", code, body)
	}
	if code, body := answer(half, "\r\n"); code != http.StatusOK || strings.Contains(body, StartingMessage) {
		t.Errorf("the rest of a request's head sent after ready: %d %.200s", code, body)
	}
}
