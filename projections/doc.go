// Package projections builds the read models of Infracast Auth from the event
// log: users and their tenant roles, sessions and refresh tokens, and revoked
// access tokens. Every replica replays the whole stream through an ordered
// consumer at start, knows when it has caught up, and keeps applying new events
// as they arrive, so a revocation accepted anywhere is enforced here as soon as
// its event is delivered. Lookups on the request path take only a read lock.
package projections
