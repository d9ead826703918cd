// Package client is the Go client of Infracast Auth, for programs that call
// the service and for the resource services behind it. It speaks only the
// public HTTP API (http/openapi.json) and imports nothing of the service.
//
// What it has:
//
//   - Client: typed calls for users and their tenant roles, sessions, API
//     keys, SSO providers, signing keys and the JWKS, the audit log (one page,
//     or FollowAudit to tail it), access at a moment and credential checks,
//     with a context on every call, and Do for anything else. Errors the
//     service answers are *Error, matched by code with errors.Is
//     (errors.Is(err, client.ErrForbidden)); a request without a whole
//     answer (no connection, a broken one) is a *RequestError naming it,
//     which says whether it surely never reached the service (NotSent).
//     429 and 503 are retried after the Retry-After the service sends,
//     else with a bounded exponential backoff with jitter (Retry).
//   - Authentication: an API key (WithAPIKey), or a TokenSource — an
//     oauth2.TokenSource that logs in, refreshes ahead of expiry (5 minutes
//     by default, with jitter; a fifth of a short-lived token's life), one
//     refresh for any number of goroutines, keeping a rotated refresh
//     token, and logs in again only when told how.
//   - Resource-service middleware for net/http: Middleware with ForwardAuth
//     (asks the service on each request over kept-alive connections; sees a
//     revocation on the next request) or JWKSVerifier (verifies EdDSA-signed
//     tokens offline; cannot see revocations), the caller's Identity in the
//     request context (IdentityFrom). A Fiber app can mount Middleware through
//     Fiber's adaptor package (adaptor.HTTPMiddleware) and read the identity
//     with c.Locals(IdentityKey).
//
// docs/client.md has examples of each.
package client
