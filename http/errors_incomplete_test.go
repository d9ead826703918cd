package http

import (
	"fmt"
	"net/http"
	"os"
	"strings"
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

// TestSignInSpentAsItsClientsKnowIt: the sign-in page and the console tell
// the "sign in again" 503 from the others by the beginning of its message
// (msgSignInSpent), and the browser test answers the page with the whole
// message: all four must say what the service says.
func TestSignInSpentAsItsClientsKnowIt(t *testing.T) {
	if !strings.HasPrefix(errSignInSpent.Message, msgSignInSpent) {
		t.Errorf("%q does not begin with %q", errSignInSpent.Message, msgSignInSpent)
	}
	for file, want := range map[string]string{
		"console/src/main.tsx":               "const signInSpent = '" + msgSignInSpent + "';",
		"../tests/mfa_browser_spent_test.go": `"message":"` + errSignInSpent.Message + `"`,
		"../docs/mfa.md":                     "`UNAVAILABLE` \"" + msgSignInSpent,
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s does not say %s", file, want)
		}
	}
}
