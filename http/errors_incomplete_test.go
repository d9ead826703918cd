package http

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// TestIncompleteIsNotNothingChanged: a change stored whose follow-up
// failed (commands.ErrIncomplete: a deactivation whose retirement of the
// user's SCIM tokens failed) answers 503 with a message saying so — never
// the "nothing was changed" of a write refused before it started — and is
// logged.
func TestIncompleteIsNotNothingChanged(t *testing.T) {
	err := fmt.Errorf("%w: retiring the SCIM tokens: %v", commands.ErrIncomplete, events.ErrUnavailable)
	e, logged := toAPIError(err)
	if e.Status != http.StatusServiceUnavailable || e.Code != "UNAVAILABLE" || e.Message == errUnavailable.Message || !logged {
		t.Errorf("incomplete: %d %s %q (logged %v), want 503 UNAVAILABLE, not %q, logged", e.Status, e.Code, e.Message, logged, errUnavailable.Message)
	}
}
