// Package domain is the heart of Infracast Auth: the aggregates as plain data,
// their commands and events, the pure Decide and Evolve functions, roles and
// permissions, the API key format, the route policy and the sentinel errors.
//
// The aggregates, each named as the second token of its events' subjects
// (infracast.auth.<aggregate>.<id>), with its state, commands and events in
// one file:
//
//   - User ("user", user.go), with the username reservations ("username")
//     appended with it so that no two users share a name;
//   - Session ("session", session.go): one login's refresh-token family;
//   - LoginAttempts ("login", throttle.go): failed logins on a name that
//     matches no user, throttled like a user's by LoginThrottle;
//   - APIKey ("apikey", apikey.go);
//   - SigningKey ("signingkey", signingkey.go): access-token signing keys
//     added at run time;
//   - SSOProvider ("sso", sso.go), with the links of identities to users
//     ("sso_identity") and consumed SAML assertions ("sso_assertion"), each
//     appended once to a subject that must be new;
//   - SCIM provisioning (scim.go): SCIMConnection ("scim"), the groups a
//     connection pushed (SCIMGroup, "scim_group") and a connection's record
//     of a user it provisions (SCIMLink, "scim_user"), decided by
//     DecideSCIMConnection, DecideSCIMGroup and DecideSCIMLink (closed sets
//     of commands as well) and folded by their Evolve functions; the group
//     → tenant role rule (RolesFor, SCIMRoleChanges) and the SCIM token
//     format;
//   - MFA ("mfa", mfa.go): a user's second factors — a TOTP secret (sealed),
//     recovery codes (keyed hashes), passkeys (WebAuthn public keys) — and
//     what was used of them (TOTP steps, single-use tokens), decided by
//     DecideMFA and folded by EvolveMFA; a wrong second factor is an
//     mfa.failed on the user's subject, which counts in the login throttle
//     (DecideMFAFailure); the "MFA required" policies (MFAPolicy,
//     "mfa_policy": the platform's and each tenant's).
//
// DecideUser, DecideSession, DecideAPIKey, DecideSigningKey and
// DecideSSOProvider decide a command against the aggregate's state and
// return the events to append; RecordUnknownLoginFailure is the one decision
// of the login aggregate. No events and no error means the command changes
// nothing; only DecideSession returns events with an error, a trace of the
// refusal to append all the same. Each aggregate takes only its own
// commands: UserCommand, SessionCommand, APIKeyCommand, SigningKeyCommand
// and SSOProviderCommand are closed sets, so handing an aggregate another
// one's command does not compile. EvolveUser, EvolveSession, EvolveAPIKey,
// EvolveSigningKey, EvolveSSOProvider and EvolveLoginAttempts fold one event
// into a state; an event they do not handle leaves it as it is. events.go
// holds what all events share: the Event interface, the schema version and
// the registry of event types (NewEvent) that the event log decodes with.
//
// Nothing here does I/O. Time, identifiers and secrets (already hashed or
// sealed) arrive inside the commands, so every rule is a table test without a
// server. The package imports only the standard library (a test enforces it).
package domain
