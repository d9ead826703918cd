package http

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

type readyStub struct{}

func (readyStub) Serving() bool         { return true }
func (readyStub) Ready() (bool, string) { return true, "" }
func (readyStub) Applied() uint64       { return 0 }

// TestPanicBecomesInternalError: a panic in a handler answers 500 INTERNAL in
// the contract's shape, without the panic's text, and the server keeps going.
func TestPanicBecomesInternalError(t *testing.T) {
	s := New(Config{}, Deps{Tokens: newTestTokens(t, time.Now), Readiness: readyStub{}})
	s.App().Get("/boom", func(*fiber.Ctx) error { panic("secret internal detail: db password hunter2") })
	res, err := s.App().Test(httptest.NewRequest("GET", "/boom", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 500 || string(body) != `{"error":{"code":"INTERNAL","message":"Internal server error"}}` {
		t.Fatalf("panic answered %d %s", res.StatusCode, body)
	}
	if strings.Contains(string(body), "hunter2") {
		t.Fatal("panic text leaked")
	}
	res, err = s.App().Test(httptest.NewRequest("GET", "/health", nil))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("after the panic: %v %v", res, err)
	}
}

// TestUnusedConnectionGets408: a connection that sends nothing within the
// read timeout is answered 408 REQUEST_TIMEOUT and closed, not 400
// VALIDATION_ERROR: Go's transport takes an unsolicited 408 on an idle
// spare connection for the close it is, where a 400 is logged as a stray
// answer (outside check 11c), and no request was invalid.
func TestUnusedConnectionGets408(t *testing.T) {
	s := New(Config{ReadTimeout: 200 * time.Millisecond}, Deps{Tokens: newTestTokens(t, time.Now), Readiness: readyStub{}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.App().Listener(ln) }() // ends with Shutdown below
	t.Cleanup(func() { _ = s.App().Shutdown() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer on the unused connection: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), `"code":"REQUEST_TIMEOUT"`) {
		t.Fatalf("unused connection: %d %s", res.StatusCode, body)
	}
}
