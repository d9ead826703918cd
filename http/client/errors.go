package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Error is an error answered by the service, in the contract's shape
// ({"error":{"code","message"}}) with the HTTP status beside it. Compare it
// with the sentinels below through errors.Is, which matches on Code:
//
//	if errors.Is(err, client.ErrForbidden) { … }
//
// and reach the details with errors.As:
//
//	var e *client.Error
//	if errors.As(err, &e) && e.RetryAfter > 0 { … }
type Error struct {
	Status  int    // the HTTP status
	Code    string // the contract's code: VALIDATION_ERROR, UNAUTHORIZED, …
	Message string // the service's message (for validation errors it names the field)
	// RetryAfter is the Retry-After the service sent (429 and 503), zero
	// without one.
	RetryAfter time.Duration
	// RequestID is the answer's X-Request-ID, to find the request in the
	// service's logs.
	RequestID string
	// ours: the answer was in the contract's shape ({"error":{"code",…}}),
	// not a proxy's page whose code was taken from its status.
	ours bool
	// Method and Path are the request's that was answered so ("POST",
	// "/api/v1/users"), when the error comes from an answer: a refresh's
	// 503 inside a read is not the read's.
	Method, Path string
	// MFAToken is, for 403 MFA_REQUIRED, the token of the login's second
	// step (LoginMFA): single use, valid for minutes, and a secret until
	// then; Factors are the second factors the user may give ("totp",
	// "recovery_code", "webauthn"). Error() shows neither.
	MFAToken string
	Factors  []string
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return "infracast: " + e.Code
	}
	return fmt.Sprintf("infracast: %d %s: %s", e.Status, e.Code, e.Message)
}

// Is matches an error with the same Code, so that errors.Is(err,
// ErrNotFound) holds for every 404 NOT_FOUND the service answers.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code != "" && t.Code == e.Code
}

// The contract's error codes (API.md), for errors.Is.
var (
	ErrValidation               = &Error{Code: "VALIDATION_ERROR"}          // 400: malformed or invalid input; the message names the field
	ErrUnauthorized             = &Error{Code: "UNAUTHORIZED"}              // 401: no, bad, expired or revoked credentials
	ErrForbidden                = &Error{Code: "FORBIDDEN"}                 // 403: authenticated, without access to this tenant or permission
	ErrMFARequired              = &Error{Code: "MFA_REQUIRED"}              // 403: the password was right; a second factor is needed (MFAToken, LoginMFA)
	ErrMFAEnrollmentRequired    = &Error{Code: "MFA_ENROLLMENT_REQUIRED"}   // 403: the password was right; a policy requires a second factor, none is enrolled
	ErrReauthenticationRequired = &Error{Code: "REAUTHENTICATION_REQUIRED"} // 403: a new API key secret or a change of second factors needs a session that signed in within 10 minutes: log in again
	ErrNotFound                 = &Error{Code: "NOT_FOUND"}                 // 404: unknown resource (or one in a tenant the caller cannot see)
	ErrMethodNotAllowed         = &Error{Code: "METHOD_NOT_ALLOWED"}        // 405
	ErrConflict                 = &Error{Code: "CONFLICT"}                  // 409: duplicate username, concurrent modification
	ErrPayloadTooLarge          = &Error{Code: "PAYLOAD_TOO_LARGE"}         // 413
	ErrUnsupportedMediaType     = &Error{Code: "UNSUPPORTED_MEDIA_TYPE"}    // 415: a request body with a Content-Encoding (the service never decompresses one)
	ErrHistoryNotKept           = &Error{Code: "HISTORY_NOT_KEPT"}          // 422: the service keeps no history to answer from
	ErrRateLimited              = &Error{Code: "RATE_LIMITED"}              // 429: too many failed logins or requests; see RetryAfter
	ErrInternal                 = &Error{Code: "INTERNAL"}                  // 500
	ErrBadGateway               = &Error{Code: "BAD_GATEWAY"}               // 502 (the gateway's upstream)
	ErrUnavailable              = &Error{Code: "UNAVAILABLE"}               // 503: event store unreachable or read models catching up
	ErrGatewayTimeout           = &Error{Code: "GATEWAY_TIMEOUT"}           // 504 (the gateway's upstream)
)

// RequestError is a request that got no whole answer: no connection could
// be made, the connection broke or timed out, or the answer could not be
// read (a proxy's page where JSON was due, included). Its text is
// "infracast: METHOD /path: cause", and it unwraps to the cause (a
// *url.Error, io.ErrUnexpectedEOF, …), so that errors.Is(err,
// syscall.ECONNREFUSED) holds as it did before this type.
//
// Whether a write it carried was applied is unknown unless NotSent: the
// service may have applied it and its answer been lost (outside check 15b:
// a proxy's reset on 'keys rotate' is when a new secret is lost).
type RequestError struct {
	Method, Path string // the request's ("POST", "/api/v1/api-keys/key-1/rotate")
	Err          error  // the cause
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("infracast: %s %s: %v", e.Method, e.Path, e.Err)
}

func (e *RequestError) Unwrap() error { return e.Err }

// NotSent reports whether the request surely never reached the service: no
// connection could be made to it (refused, no such host, unreachable) or
// its TLS handshake failed (a certificate refused, a server that does not
// speak TLS). Anything else, a timeout included, may have come after the
// service received the request.
func (e *RequestError) NotSent() bool {
	var op *net.OpError
	var cert *tls.CertificateVerificationError
	var rec tls.RecordHeaderError
	return (errors.As(e.Err, &op) && op.Op == "dial") || errors.As(e.Err, &cert) || errors.As(e.Err, &rec)
}

// RedirectError is an answer that redirects the request elsewhere (a 3xx
// with Location). The client follows no redirect: an API has no reason to
// send one, and following it sent the password, refresh or access token
// over plain http before the redirect to https, re-sent a refresh token's
// body to another host (Go drops only the Authorization header there), and
// turned a login's POST into a GET after a 301 (outside check 20c). Use
// the URL it names as the service's URL, if it is the service's.
type RedirectError struct {
	Method, Path string // the request's
	Status       int    // 301, 302, 303, 307, 308
	From         string // the URL asked, without its query
	Location     string // where the service sends it, without its query or user information ("" when none)
}

func (e *RedirectError) Error() string {
	to := e.Location
	if to == "" {
		to = "nowhere (no Location)"
	}
	return fmt.Sprintf("infracast: %s %s: the server at %s redirects to %s (%d %s): this client follows no redirect; use that URL if it is the service's",
		e.Method, e.Path, e.From, to, e.Status, http.StatusText(e.Status))
}

// redirectError makes the *RedirectError of a 3xx answer to req.
func redirectError(req *http.Request, res *http.Response) *RedirectError {
	from := *req.URL
	from.RawQuery, from.ForceQuery, from.Fragment, from.RawFragment, from.User = "", false, "", "", nil
	loc := ""
	if l, err := res.Location(); err == nil {
		loc = shownURL(l.String())
	}
	return &RedirectError{Method: req.Method, Path: req.URL.Path, Status: res.StatusCode, From: from.String(), Location: loc}
}

// noRedirect is the CheckRedirect of the client's http.Client: the
// redirect is answered as it is (a *RedirectError), never followed.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// ErrLoginRequired is returned by a TokenSource whose session has ended
// (refresh token expired or revoked, user deactivated) and that was not told
// how to log in again (WithRelogin). The error also matches ErrUnauthorized.
var ErrLoginRequired = errors.New("infracast: the session has ended; log in again")

// codeForStatus is the contract's code for an answer whose body is not in
// the contract's shape (a proxy's page, an empty body).
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return ErrValidation.Code
	case http.StatusUnauthorized:
		return ErrUnauthorized.Code
	case http.StatusForbidden:
		return ErrForbidden.Code
	case http.StatusNotFound:
		return ErrNotFound.Code
	case http.StatusMethodNotAllowed:
		return ErrMethodNotAllowed.Code
	case http.StatusConflict:
		return ErrConflict.Code
	case http.StatusRequestEntityTooLarge:
		return ErrPayloadTooLarge.Code
	case http.StatusUnsupportedMediaType:
		return ErrUnsupportedMediaType.Code
	case http.StatusUnprocessableEntity:
		return ErrHistoryNotKept.Code
	case http.StatusTooManyRequests:
		return ErrRateLimited.Code
	case http.StatusBadGateway:
		return ErrBadGateway.Code
	case http.StatusServiceUnavailable:
		return ErrUnavailable.Code
	case http.StatusGatewayTimeout:
		return ErrGatewayTimeout.Code
	}
	return ErrInternal.Code
}
