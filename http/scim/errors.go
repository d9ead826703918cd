package scim

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
)

// The scimType values of RFC 7644, section 3.12.
const (
	InvalidFilter = "invalidFilter"
	TooMany       = "tooMany"
	Uniqueness    = "uniqueness"
	Mutability    = "mutability"
	InvalidSyntax = "invalidSyntax"
	InvalidPath   = "invalidPath"
	NoTarget      = "noTarget"
	InvalidValue  = "invalidValue"
	InvalidVers   = "invalidVers"
	Sensitive     = "sensitive"
)

// Error is an answer in the SCIM error schema
// (urn:ietf:params:scim:api:messages:2.0:Error): an HTTP status, an optional
// scimType and a detail for the client. A Backend returns one (or wraps one
// of the sentinels below) to choose the answer; any other error is a 500
// whose text is logged, never shown.
type Error struct {
	Status   int
	ScimType string
	Detail   string
	// RetryAfter, when positive, is sent as Retry-After in whole seconds
	// (rounded up): a 429 says when to come back.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.ScimType != "" {
		return fmt.Sprintf("scim %d %s: %s", e.Status, e.ScimType, e.Detail)
	}
	return fmt.Sprintf("scim %d: %s", e.Status, e.Detail)
}

// Errorf makes an *Error; the detail must hold no secret (it is sent to the
// client).
func Errorf(status int, scimType, format string, args ...any) *Error {
	return &Error{Status: status, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

// The errors a Backend returns (directly or wrapped with %w).
var (
	// ErrNotFound: no such resource, or not one this connection may see.
	ErrNotFound = &Error{Status: http.StatusNotFound, ScimType: "", Detail: "Resource not found"}
	// ErrUniqueness: the userName (or a group's displayName) is taken.
	ErrUniqueness = &Error{Status: http.StatusConflict, ScimType: Uniqueness, Detail: "A resource with this unique attribute already exists"}
	// ErrConflict: the resource changed since the Base of an update was
	// read. The handler reads it again, resolves the request again and
	// retries (a few times); then answers 409.
	ErrConflict = &Error{Status: http.StatusConflict, ScimType: "", Detail: "Concurrent modification; try again"}
	// ErrUnauthorized: no valid SCIM credential (the authentication
	// middleware answers with it through WriteError).
	ErrUnauthorized = &Error{Status: http.StatusUnauthorized, ScimType: "", Detail: "Authentication required: a valid SCIM bearer token"}
	// ErrForbidden: the connection may not do this.
	ErrForbidden = &Error{Status: http.StatusForbidden, ScimType: "", Detail: "This SCIM connection may not do this"}
	// ErrUnavailable: the store did not answer; nothing was changed.
	ErrUnavailable = &Error{Status: http.StatusServiceUnavailable, ScimType: "", Detail: "Service temporarily unavailable; nothing was changed"}
	// ErrIncomplete: the change was stored, but not all that follows from
	// it (the store failed in between); the same request again completes
	// it. Never "nothing was changed": a create sent again would get 409.
	ErrIncomplete = &Error{Status: http.StatusServiceUnavailable, ScimType: "", Detail: "The change was stored, but not all that follows from it: send the same request again"}
)

var errInternal = &Error{Status: http.StatusInternalServerError, ScimType: "", Detail: "Internal server error"}

// errorBody is the SCIM error schema; status is a string (RFC 7644 3.12).
type errorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// WriteError answers err in the SCIM error schema with Content-Type
// application/scim+json. An error that is not an *Error answers 500 with a
// generic detail. A 401 carries the challenge of RFC 6750 section 3
// (Challenge; without an error code unless the caller set one). For the
// authentication middleware in front of the handlers:
// `scim.Challenge(c, presented); return scim.WriteError(c, scim.ErrUnauthorized)`.
func WriteError(c *fiber.Ctx, err error) error {
	var se *Error
	if !errors.As(err, &se) {
		se = errInternal
	}
	body := errorBody{
		Schemas:  []string{ErrorSchema},
		Status:   strconv.Itoa(se.Status),
		ScimType: se.ScimType,
		Detail:   se.Detail,
	}
	if se.Status == http.StatusUnauthorized && len(c.Response().Header.Peek(fiber.HeaderWWWAuthenticate)) == 0 {
		Challenge(c, false)
	}
	if se.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.FormatInt(int64((se.RetryAfter+time.Second-1)/time.Second), 10))
	}
	if se == ErrUnavailable || se == ErrIncomplete {
		// Nothing was changed, or the same request completes the change:
		// the identity provider may send it again (as the main API's 503
		// says too).
		c.Set(fiber.HeaderRetryAfter, "1")
	}
	return writeJSON(c, se.Status, body)
}

// Challenge sets the WWW-Authenticate header of a 401 under the SCIM base
// (RFC 6750 section 3; ServiceProviderConfig declares oauthbearertoken):
// Bearer realm="scim", with error="invalid_token" when the request
// presented a credential (one that is not a live SCIM token). A request
// without one gets no error code, as the RFC asks.
func Challenge(c *fiber.Ctx, presented bool) {
	v := `Bearer realm="scim"`
	if presented {
		v += `, error="invalid_token"`
	}
	c.Set(fiber.HeaderWWWAuthenticate, v)
}

func badSyntax(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, InvalidSyntax, format, args...)
}

func badValue(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, InvalidValue, format, args...)
}

func badPath(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, InvalidPath, format, args...)
}

func badFilter(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, InvalidFilter, format, args...)
}

func readOnly(name string) *Error {
	return Errorf(http.StatusBadRequest, Mutability, "attribute %q is read-only", name)
}
