// Package http is the Fiber HTTP API of Infracast Auth: routes, request and
// response types, the one error handler that maps domain errors to the
// contract's codes (a few handlers give an error its route's meaning first:
// docs/architecture.md, "Errors"), the access-token issuer and verifier
// (HS256 and EdDSA, the JWKS), the authentication middleware that checks every
// request against the live read models (no I/O on that path, unless another
// replica told this one it is behind a revocation, or a credential is
// unknown here and another replica may have issued it a moment ago:
// middleware.go), forward auth
// and the gateway, single sign-on (OIDC, SAML) with its browser cookie
// sessions and the /login page, the audit log and the access history (who
// could do what, in which tenant, at a moment, and why; credential checks),
// the sessions API (a user's live sessions, listed and revoked), cursor
// pagination of the lists, SCIM provisioning (the connections' admin API,
// and the SCIM 2.0 service provider of http/scim mounted at /scim/v2 over a
// Backend of the service's own, where only a connection's token is
// accepted: scim_admin.go, scim_auth.go, scim_backend.go), multi-factor
// authentication (the second step of a login, passwordless passkey
// sign-in, enrolment, the policies and the admin reset: mfa.go), the admin
// console at /console (http/console embeds its built assets;
// console_session.go mounts it under its own strict CSP, keeps a browser
// session's refresh token in an HttpOnly cookie that only the refresh path
// receives, and refuses and clears a session cookie another site set beside
// the service's own), and the Prometheus metrics.
//
// It depends on small interfaces it declares itself (server.go: Deps);
// http/service wires the implementations in (the write side, the read
// models, the store's readiness) and cmd/infracast-auth runs it.
package http
