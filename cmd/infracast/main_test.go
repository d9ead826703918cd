package main

import (
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"testing"

	"github.com/infracast/auth/http/client"
)

// TestClassifyOnePrefix: what run prints after "infracast: " carries no
// second prefix (the Go client's errors start with one) and is one line.
func TestClassifyOnePrefix(t *testing.T) {
	_, newErr := client.New("not-a-url")
	for _, c := range []struct {
		err  error
		code int
		want string
	}{
		{runErr{usageErr{newErr.Error()}}, exitUsage, `base URL "not-a-url": want http(s)://host[:port][/path], without credentials, query or fragment`},
		{runErr{fmt.Errorf("infracast: GET /api/v1/auth/me: %w", syscall.ECONNREFUSED)}, exitFailure, "GET /api/v1/auth/me: connection refused"},
		{runErr{fmt.Errorf("logged in, but the tokens could not be stored: %w", errors.New("infracast: a\nb"))}, exitFailure, "logged in, but the tokens could not be stored: a b"},
		{runErr{client.ErrLoginRequired}, exitUnauthorized, "the session has ended (signed out, expired or revoked): run 'infracast login' again"},
	} {
		code, msg := classify(c.err)
		if code != c.code || oneLine(msg) != c.want {
			t.Errorf("%v: %d %q, want %d %q", c.err, code, oneLine(msg), c.code, c.want)
		}
	}
}

// TestAPIExitByStatus: an answer's exit code follows its HTTP status,
// whatever its code: every 403 is 4 (FORBIDDEN, MFA_REQUIRED,
// MFA_ENROLLMENT_REQUIRED, a code the CLI does not know yet).
func TestAPIExitByStatus(t *testing.T) {
	for _, c := range []struct {
		status int
		code   string
		want   int
	}{
		{http.StatusBadRequest, "VALIDATION_ERROR", exitUsage},
		{http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", exitUsage},
		{http.StatusUnauthorized, "UNAUTHORIZED", exitUnauthorized},
		{http.StatusForbidden, "FORBIDDEN", exitForbidden},
		{http.StatusForbidden, "MFA_REQUIRED", exitForbidden},
		{http.StatusForbidden, "MFA_ENROLLMENT_REQUIRED", exitForbidden},
		{http.StatusForbidden, "SOMETHING_NEW", exitForbidden},
		{http.StatusNotFound, "NOT_FOUND", exitNotFound},
		{http.StatusConflict, "CONFLICT", exitConflict},
		{http.StatusUnprocessableEntity, "HISTORY_NOT_KEPT", exitFailure},
		{http.StatusTooManyRequests, "RATE_LIMITED", exitRateLimited},
		{http.StatusInternalServerError, "INTERNAL", exitFailure},
		{http.StatusServiceUnavailable, "UNAVAILABLE", exitUnavailable},
	} {
		err := runErr{&client.Error{Status: c.status, Code: c.code, Message: "m"}}
		if code, msg := classify(err); code != c.want || msg != c.code+": m" {
			t.Errorf("%d %s: exit %d %q, want %d", c.status, c.code, code, msg, c.want)
		}
	}
}
