// Package service assembles a running Infracast Auth from a validated Config:
// the event store (an embedded nats-server, or an external NATS), the
// projections and their runner, the command service, and the HTTP API — and
// beside them the data folder's stream-sequence marker and the check of the
// replica's clock against the event store's. It
// reads no environment and names no setting: Config.Validate reports the
// Config fields at fault (FieldError), and cmd/infracast-auth, which reads the
// flags and the environment, names them as the variables its users set.
// Tests build a Config directly.
package service
