// Package http is the Fiber HTTP API of Infracast Auth: routes, request and
// response types, the one error handler that maps domain errors to the
// contract's codes, the access-token issuer and verifier, and the
// authentication middleware that checks every request against the live read
// models (no I/O on that path).
//
// It depends on small interfaces it declares itself; cmd/ wires the
// implementations in.
package http
