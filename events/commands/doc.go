// Package commands is the write side of Infracast Auth. It turns a request into
// a domain command, decides it against the aggregate's state as the read models
// hold it, appends the resulting events with optimistic concurrency on the
// aggregate's subject, and waits until the local read models show the write, so
// the caller reads its own writes.
//
// It reads through State, interfaces it declares for the reads it needs (the
// read models, projections.Model, implement them: the wiring checks it), waits
// for the read models through Projection and appends through Log
// (events.Store). It imports neither the read side nor HTTP.
//
// A caller's authority that rests on the state of what it changes (a
// tenant admin's over a user, an owner's over a key) is passed in as may
// and checked in the decision, not only by the caller on the read model:
// on the state the append expects (ExecuteUserAs, ExecuteAPIKeyAs,
// RotateInput.May) — also for a write to other aggregates on the user's
// strength (ResetMFA, RevokeSessions, RevokeUserSessions), whose one-event
// appends expect the user's subject (events.Message.ExpectSubject).
//
// Every command on an aggregate's current state goes through one loop,
// execute (execute.go): read the state and the stream sequence of its last
// event, decide, append expecting the subject still at that sequence; on a
// conflict catch up with the subject and decide again, up to
// Config.MaxAttempts times (then ErrTooManyConflicts) — the retries holding
// the subject's turn among this replica's writers (subjectlocks.go), so that
// those go one at a time and only other replicas' writes can run the
// attempts out. An append whose outcome
// is unknown is not decided again. What creates an aggregate (a user with its
// username reservation, an API key, a signing key, an SSO identity link, a
// consumed SAML assertion) is appended outside the loop, to subjects that
// must be new: a conflict there means the name is taken or the assertion
// replayed (an SSO login tries its next username, or reads the link to its
// identity made meanwhile).
//
// Across replicas: a command whose events take access away (domain.Narrows)
// answers only once every other replica has applied them too
// (Config.Barrier, events.Barrier); a command whose aggregate is missing
// here first catches up with its subject, and a login, or a refresh token
// or key secret not known here, with the stream's head (secrets budgeted:
// CatchUpBudget), since another replica may have written it a moment ago —
// reads skip that while no other replica serves (Alone). An API key's name
// is reserved among its owner's live keys (apikeys.go), so a retried create
// gets ErrAPIKeyNameTaken rather than a second key.
//
// A decision over several aggregates is one atomic append of each one's
// events, each expecting its own subject where its state was read
// (writeBatch, lifecycle.go): a deactivation with the revocation of every
// API key the user owns, an activation likewise (and its SCIM token
// retirements), revoking all of a user's sessions (but a tenant admin's: a
// session at a time, each expecting the user's subject). On a conflict it
// is decided again from the caught-up state.
//
// A file per flow: users.go, login.go (passwords, throttling, the session a
// login starts), sessions.go (refresh, revocation), lifecycle.go
// (deactivation, activation, revoking a user's sessions), apikeys.go and
// keyusage.go, signingkeys.go, sso.go, scim.go (SCIM provisioning: the
// match rule of a pushed user, group membership as tenant roles, each
// write checked against the stream's head), mfa.go (TOTP, passkeys with
// go-webauthn, recovery codes, the MFA token of a login's second step, the
// policies and the admin reset), bootstrap.go; passwords.go and
// blocklist.go check and hash passwords; ids.go makes IDs, token hashes and
// the keys of aggregates named by a hash.
//
// Password hashing, sealing and secret generation happen here, before a
// command reaches the domain. No secret leaves this package in plain text
// except to the caller that needs it: a new refresh token or API key (once),
// an SSO client secret for the token exchange (SSOClientSecret), a new TOTP
// secret and recovery codes (once).
package commands
