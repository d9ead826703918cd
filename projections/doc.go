// Package projections builds the read models of Infracast Auth from the event
// log: users (by ID and by normalized username) and their tenant roles;
// sessions (by ID, and each user's: lifecycle.go), their refresh tokens
// (current and spent) and revoked access tokens, and the cut-offs of
// password changes and deactivations; failed logins per unknown name and
// per client address (the throttle); API keys (by ID, by the hash of their
// secret and by owner); SSO providers,
// their linked identities and consumed SAML assertions; SCIM connections
// (by ID, and the live ones by the hash of their token), the groups they
// pushed and the users they provision (scim.go); users' second factors and
// the MFA policies, in a side table of the users that have any (mfa.go);
// the signing keys
// added at run time; and, for audits (issue 16), the audit journal — one
// fixed-size entry per applied event: its sequence, time, type, actor,
// subject and the tenants it concerns (journal.go), whose chunks, once
// filled, go to a file of the model's own and are read back through the
// page cache (journal_file.go, Model.JournalDir) — and the access history,
// which answers who could do what in which tenant at any moment, and why,
// from intervals bounded by journal entries, keeping only what the users'
// and keys' own records do not hold (access.go, history.go). Model holds
// them behind one RWMutex; Runner feeds it
// through an ordered consumer, knows when it has caught up, and keeps applying
// new events as they arrive, so a revocation accepted anywhere is enforced
// here as soon as its event is delivered — and says when it cannot read the
// stream (Stalled), so that the replica stops being routed to. Users and sessions, which a
// deployment has by the million on every replica, are held as compact
// records (users.go, sessions.go, compact.go) and turned into the domain's
// types on the way out. A model can be frozen and written to a snapshot
// while it goes on applying events, and restored from one as it is read
// (snapshot.go) — a snapshot whose writer skipped events it could not
// decode only by a build that knows the same events; it forgets what can no
// longer matter (prune.go). Lookups on
// the request path take only a read lock, and do not allocate.
//
// The write side reads the model through the interfaces it declares
// (commands.State); this package never imports the write side.
package projections
