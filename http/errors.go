package http

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/http/scim"
)

// Error is an error with the contract's status, code and message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// The errors of the contract.
// msgSignInSpent begins errSignInSpent's message; the sign-in page and the
// console tell that 503 from the others by it (docs/mfa.md keeps it as it
// is), and go back to the password form.
const msgSignInSpent = "The sign-in could not be completed"

var (
	errUnauthorized = &Error{http.StatusUnauthorized, "UNAUTHORIZED", "Invalid or expired token"}
	errBadLogin     = &Error{http.StatusUnauthorized, "UNAUTHORIZED", "Invalid username or password"}
	errForbidden    = &Error{http.StatusForbidden, "FORBIDDEN", "Insufficient permissions"}
	errNotFound     = &Error{http.StatusNotFound, "NOT_FOUND", "Resource not found"}
	errInternal     = &Error{http.StatusInternalServerError, "INTERNAL", "Internal server error"}
	errUnavailable  = &Error{http.StatusServiceUnavailable, "UNAVAILABLE", "Service temporarily unavailable; nothing was changed"}
	// errIncomplete: the change was stored, but not all that follows from
	// it (commands.ErrIncomplete): a 503 all the same (send it again), but
	// never "nothing was changed".
	errIncomplete = &Error{http.StatusServiceUnavailable, "UNAVAILABLE", "The change was stored, but not all that follows from it: send the same request again"}
	// errSignInSpent: a sign-in spent its second factor or the identity
	// provider's answer, and no session was started
	// (commands.ErrSignInSpent): no Retry-After — the same request is
	// refused now — but sign in again.
	errSignInSpent = &Error{http.StatusServiceUnavailable, "UNAVAILABLE", msgSignInSpent + ", and the code or identity provider's answer it used is spent: sign in again"}
	// The gateway's: the upstream refused, failed or broke the exchange; or
	// stayed silent for longer than the upstream timeout.
	errBadGateway     = &Error{http.StatusBadGateway, "BAD_GATEWAY", "Upstream unavailable"}
	errGatewayTimeout = &Error{http.StatusGatewayTimeout, "GATEWAY_TIMEOUT", "Upstream timed out"}
)

// errMethodUnknown answers a method the service does not know at all
// (answerUnknownMethods).
var errMethodUnknown = &Error{http.StatusNotImplemented, "NOT_IMPLEMENTED", "The service does not know this HTTP method"}

func validation(msg string) *Error {
	return &Error{http.StatusBadRequest, "VALIDATION_ERROR", msg}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// toAPIError maps any error to the contract. The table is the only place
// where domain errors meet HTTP statuses.
func toAPIError(err error) (*Error, bool) {
	var apiErr *Error
	var fe *fiber.Error
	var ve *domain.ValidationError
	switch {
	case errors.As(err, &apiErr):
		return apiErr, false
	case errors.As(err, &ve):
		return validation(ve.Field + ": " + ve.Message), false
	case errors.As(err, &fe):
		switch fe.Code {
		case http.StatusNotFound:
			return errNotFound, false
		case http.StatusMethodNotAllowed:
			return &Error{fe.Code, "METHOD_NOT_ALLOWED", "Method not allowed on this resource"}, false
		case http.StatusRequestEntityTooLarge:
			return &Error{fe.Code, "PAYLOAD_TOO_LARGE", "Request body is larger than the limit"}, false
		case http.StatusRequestHeaderFieldsTooLarge:
			return &Error{fe.Code, "VALIDATION_ERROR", "Request headers are too large"}, false
		case http.StatusRequestTimeout:
			// No whole request within the read timeout (a connection opened
			// and left unused, as HTTP clients keep spares): fasthttp answers
			// before closing it. A 408 is what clients expect there — Go's
			// transport drops an unsolicited 408 on an idle connection
			// quietly, and logs any other status as a stray answer — and no
			// one sent anything invalid.
			return &Error{fe.Code, "REQUEST_TIMEOUT", "No complete request arrived within the read timeout"}, false
		}
		if fe.Code >= 400 && fe.Code < 500 {
			// Left are fasthttp's answers to a request it could not parse,
			// whose text quotes the request, Authorization header and all:
			// never echoed (an outside check found a bearer token in one).
			return validation("Malformed HTTP request: its request line or headers could not be parsed"), false
		}
		return errInternal, true
	case errors.Is(err, commands.ErrIncomplete):
		return errIncomplete, true
	case errors.Is(err, commands.ErrSignInSpent):
		return errSignInSpent, true
	case errors.Is(err, commands.ErrUsernameTaken):
		return &Error{http.StatusConflict, "CONFLICT", "Username is already taken"}, false
	case errors.Is(err, domain.ErrUserActive):
		return &Error{http.StatusConflict, "CONFLICT", "User is already active"}, false
	case errors.Is(err, domain.ErrTOTPConfirmed):
		return &Error{http.StatusConflict, "CONFLICT", msgTOTPConfirmed + "; if the answer with the recovery codes was lost, make a new set with POST /api/v1/auth/mfa/recovery-codes"}, false
	case errors.Is(err, commands.ErrSCIMConnectionNameTaken):
		return &Error{http.StatusConflict, "CONFLICT", "A SCIM connection with this name already exists (if this repeats a create whose answer was lost, it is that one: rotate its token to get one; else delete it, or choose another name)"}, false
	case errors.Is(err, commands.ErrAPIKeyNameTaken):
		return &Error{http.StatusConflict, "CONFLICT", "An API key with this name already exists (if this repeats a create whose answer was lost, it is that one: rotate it to get its secret; else revoke it, or choose another name)"}, false
	case errors.Is(err, domain.ErrAlreadyExists):
		return &Error{http.StatusConflict, "CONFLICT", "Resource already exists"}, false
	case errors.Is(err, domain.ErrHS256DisplacesEdDSA):
		return &Error{http.StatusConflict, "CONFLICT", "An EdDSA key signs: an HS256 key that signs makes access tokens HS256 again, which no offline verifier (JWKS) accepts. Add an EdDSA key instead (\"algorithm\": \"EdDSA\"; the default is HS256), or send {\"fall_back_to_hs256\": true} to make the HS256 key sign anyway"}, false
	case errors.Is(err, domain.ErrLastAsymmetricKey):
		return &Error{http.StatusConflict, "CONFLICT", "This is the last EdDSA key that signs: retiring it makes access tokens HS256 again, which no offline verifier (JWKS) accepts. Add another EdDSA key first (with \"signing\": false, then activate it once verifiers have fetched the JWKS), or send {\"fall_back_to_hs256\": true} to retire it anyway"}, false
	case errors.Is(err, domain.ErrSigningKeyRetired):
		return &Error{http.StatusConflict, "CONFLICT", "The signing key is retired and cannot sign again; add a new one"}, false
	case errors.Is(err, commands.ErrTooManyConflicts):
		return &Error{http.StatusConflict, "CONFLICT", "Concurrent modification; try again"}, false
	case errors.Is(err, domain.ErrThrottled):
		return &Error{http.StatusTooManyRequests, "RATE_LIMITED", "Too many failed login attempts; try again later"}, false
	case errors.Is(err, domain.ErrNotFound):
		return errNotFound, false
	case errors.Is(err, domain.ErrForbidden):
		return errForbidden, false
	case errors.Is(err, domain.ErrInvalidCredentials), errors.Is(err, domain.ErrUserInactive),
		errors.Is(err, domain.ErrSessionRevoked), errors.Is(err, domain.ErrSessionExpired),
		errors.Is(err, domain.ErrRefreshReused), errors.Is(err, ErrInvalidToken):
		return errUnauthorized, false
	case errors.Is(err, commands.ErrCatchUpBudget):
		return errUnavailable, false // a flood: counted, not logged line by line (handleError)
	case errors.Is(err, commands.ErrHashBusy):
		return errUnavailable, false // a flood of password checks: counted, not logged line by line (handleError)
	case errors.Is(err, events.ErrOutcomeUnknown):
		return &Error{http.StatusServiceUnavailable, "UNAVAILABLE", "The event store did not confirm the change in time; it may have been applied"}, true
	case errors.Is(err, events.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return errUnavailable, true
	}
	return errInternal, true
}

func (s *Server) handleError(c *fiber.Ctx, err error) error {
	if done, herr := s.mfaError(c, err); done { // MFA_REQUIRED and the MFA errors (mfa.go)
		return herr
	}
	rid, _ := c.Locals(localRequestID).(string)
	if rid == "" {
		// Refused before any route ran (a body or headers over the limit,
		// a malformed request: fasthttp's error handler calls this one),
		// so observe did not give the answer its ID and security headers.
		rid = startAnswer(c, time.Now())
		defaultCSP(&c.Response().Header)
	}
	apiErr, logIt := toAPIError(err)
	if logIt {
		s.log.Error("request failed", "request_id", rid, "method", c.Method(), "path", c.Path(), "err", err)
	}
	if errors.Is(err, commands.ErrCatchUpBudget) {
		s.deps.Metrics.BackgroundError("catch_up_budget")
	}
	if errors.Is(err, commands.ErrHashBusy) {
		s.deps.Metrics.BackgroundError("password_hash_busy")
	}
	if apiErr == errUnavailable || apiErr == errIncomplete {
		// "Nothing was changed": refused before it started, so a client
		// may send it again, a POST too (docs/client.md). Or the change
		// was stored and the same request completes the rest.
		c.Set(fiber.HeaderRetryAfter, "1")
	}
	var te *domain.ThrottledError
	if errors.As(err, &te) {
		secs := int(math.Ceil(te.Until.Sub(s.cfg.Now()).Seconds()))
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(secs, 1)))
	}
	if apiErr.Status == http.StatusRequestEntityTooLarge && isSCIMPath(c.Path()) {
		// Refused by fasthttp before the SCIM handlers ran: SCIM clients
		// get every error in SCIM's shape (outside check 13a).
		return scim.WriteError(c, scim.Errorf(apiErr.Status, "", "%s", apiErr.Message))
	}
	var body errorBody
	body.Error.Code, body.Error.Message = apiErr.Code, apiErr.Message
	return c.Status(apiErr.Status).JSON(body)
}

// isSCIMPath: /scim/v2 or a path under it, in any letter case (routes
// ignore case).
func isSCIMPath(path string) bool {
	p := strings.ToLower(path)
	return p == scimPrefix || strings.HasPrefix(p, scimPrefix+"/")
}
