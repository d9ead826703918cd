// Package domain is the heart of Infracast Auth: the aggregates (User, Session),
// their commands and events as plain data, the pure Decide and Evolve functions,
// roles and permissions, the route policy and the sentinel errors.
//
// Nothing here does I/O. Time, identifiers and secrets (already hashed or sealed)
// arrive inside the commands, so every rule is a table test without a server.
package domain
