package http

import (
	"io"
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
