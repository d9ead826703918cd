package scim

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// TestUnavailableSaysRetryAfter: a 503 that changed nothing (or whose
// change the same request completes) tells the identity provider when to
// send it again, as the main API's does; other
// errors (and a 503 whose outcome is unknown) do not.
func TestUnavailableSaysRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{ErrUnavailable, "1"},
		{fmt.Errorf("store: %w", ErrUnavailable), "1"},
		{ErrIncomplete, "1"},
		{Errorf(503, "", "The event store did not confirm the change in time; it may have been applied"), ""},
		{ErrConflict, ""},
		// A lockout says when it ends, in whole seconds rounded up.
		{&Error{Status: 429, Detail: "Too many failed password checks", RetryAfter: 827500 * time.Millisecond}, "828"},
	} {
		app := fiber.New()
		app.Get("/", func(c *fiber.Ctx) error { return WriteError(c, tc.err) })
		res, err := app.Test(httptest.NewRequest("GET", "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Header.Get("Retry-After"); got != tc.want {
			t.Errorf("%v: Retry-After %q, want %q", tc.err, got, tc.want)
		}
	}
}
