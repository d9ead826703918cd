// Package service assembles a running Infracast Auth from a validated Config:
// the event store (an embedded nats-server, or an external NATS), the
// projections and their runner, the command service, and the HTTP API. It
// reads no environment; cmd/infracast-auth does that, and tests build a
// Config directly.
package service
