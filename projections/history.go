package projections

import (
	"errors"
	"time"

	"github.com/infracast/auth/domain"
)

// The audit journal and the access history (issue 16): two read models fed
// by Model.Apply like the others, included in snapshots, identical on every
// replica.
//
// The journal (journal.go) holds one fixed-size entry per applied event —
// stream sequence, occurred_at, type, actor, the aggregate ID's hash and the
// set of tenants the event concerns (docs/events.md, "Which tenants an event
// concerns"), computed when the event is applied, from the state at that
// moment; with Model.JournalDir set, its chunks go to a file once filled
// (journal_file.go), so that it costs disk, not memory. The audit API
// filters it and then reads the page's events from the stream by sequence;
// the event bodies are never held here.
//
// The access history (access.go) holds, per user, the intervals during
// which it held each tenant role and was active, and per API key its
// tenants, permissions, owners, secrets and life; each bound of an interval
// is a journal entry (the event that opened or closed it). Questions about
// a moment are answered from these intervals, never by replaying the log.
//
// The boundary rule: an event takes effect at its occurred_at. At the
// instant of a grant the grant holds; at the instant of a revocation,
// deactivation, expiry or rotation it no longer does (intervals are
// half-open, [from, to)). Precisely: the state at a moment t is the fold,
// in stream order, of the events whose occurred_at is at or before t — which
// is the intervals above while occurred_at grows with the stream sequence,
// and stays well defined when two replicas' clocks put a later event a
// little earlier.
//
// Answers are from the history the journal holds: a user created again
// under the same ID (which the service never does) starts a new history,
// and what the journal does not hold — before the oldest event the stream
// kept, when the model was built from a stream that had lost its first
// events — is ErrBeforeHistory, never a guess.

// EventRef names the event that opened or closed an interval: the "why".
type EventRef struct {
	Seq       uint64    // stream sequence
	Time      time.Time // its occurred_at
	Type      string    // its type, e.g. "user.role_granted"
	ActorType string    // "user", "apikey", "system" or "anonymous"
	ActorID   string    // omitted for anonymous
}

// AuditQuery selects journal entries. Zero fields do not filter.
type AuditQuery struct {
	// Scope, when not nil, is the set of tenants the reader may see: only
	// events that concern at least one of them match (a tenant admin, an
	// API key with audit:read), and a hit's Tenants are those among them.
	// Nil: everything (a platform admin). An empty non-nil slice matches
	// nothing. An event that concerns every tenant (AllTenantsConcerned)
	// concerns each of Scope's, and Tenant.
	Scope []string
	// AnyTenant: only events that concern at least one tenant (a
	// platform-wide API key with audit:read sees every tenant's events but
	// not the platform's own: signing keys, SSO providers, ...).
	AnyTenant bool
	// Tenant: only events that concern this tenant.
	Tenant string
	// Actor: only events whose actor ID is this (a user or key ID).
	Actor string
	// Subject: only events whose aggregate ID is this (user, key, session,
	// provider, ...). The journal keeps a 32-bit hash of it (SubjectHash);
	// a match is confirmed by the caller against the event read from the
	// stream.
	Subject string
	// Type: an exact event type ("user.created"), or a prefix ending in "."
	// ("apikey.").
	Type string
	// Since (inclusive) and Until (exclusive) bound occurred_at.
	Since, Until time.Time
	// Result: "succeeded" (user.login_succeeded) or "failed"
	// (user.login_failed and mfa.failed); "" for any event.
	Result string
	// After: oldest-first, only entries with a stream sequence above it;
	// newest-first (NewestFirst), only entries below it (0: from the newest).
	After       uint64
	NewestFirst bool
	// Limit: at most this many hits (1..1000; 0 is 100, more than 1000 is
	// 1000).
	Limit int
}

// AuditHit is one journal entry that matched.
type AuditHit struct {
	Seq uint64
	// Tenants are the tenants the event concerns, sorted (within the
	// query's Scope, when it has one); AllTenantsConcerned marks an event
	// that concerns every tenant (a platform-wide key's), with no Tenants.
	Tenants             []string
	AllTenantsConcerned bool
	SubjectHash         uint32 // see SubjectHash
}

// ErrBeforeHistory: the moment asked about is older than the oldest event
// the stream still keeps (its limits removed the history of that moment),
// so no answer would be right. Never returned while the stream holds its
// first event.
var ErrBeforeHistory = errors.New("projections: no history is kept for that moment")

// Grant is one thing a principal could do in one tenant at a moment, and why.
type Grant struct {
	// Tenant is the tenant the grant is in: the one asked about
	// (TenantAccess), or each of the principal's; "*" for a platform
	// admin's, and a platform-wide key's with a platform-admin owner, in
	// UserAccess and KeyAccess (every tenant).
	Tenant      string
	Permissions domain.PermissionSet
	// Via: "role" (a tenant role: Role set), "platform_admin" (the global
	// admin role: every permission in every tenant), or "api_key".
	Via  string
	Role domain.Role
	// Since is the event that granted it: the role grant (or user.created
	// holding the role), the user's creation for a platform admin, the key's
	// creation (or the rotation that made its current owner the owner).
	Since EventRef
	// For an API key: its owner at that moment and the owner's grant that
	// caps the key (the key's permissions ∩ the owner's in the tenant,
	// admin:* standing for every permission).
	OwnerID    string
	OwnerGrant *Grant
}

// Principal kinds of an Access.
const (
	PrincipalUser   = "user"
	PrincipalAPIKey = "apikey"
)

// Access is what one principal could do at a moment, tenant by tenant.
type Access struct {
	Kind   string // PrincipalUser or PrincipalAPIKey
	ID     string
	Name   string // username, or the key's name
	Grants []Grant
}

// UserHistory is the life of a user as the access history has it, for
// credential checks.
type UserHistory struct {
	ID            string
	Created       EventRef
	PlatformAdmin bool
	Deactivated   *EventRef // the deactivation in force; nil while active
	// Deactivations and Activations (user.activated), in order. Each
	// deactivation cut off every session started at or before it, whether
	// or not an activation followed.
	Deactivations []EventRef
	Activations   []EventRef
	// PasswordChanges in order; each revoked every session started before
	// it except KeptSessionID.
	PasswordChanges []PasswordChange
}

// PasswordChange is one user.password_changed.
type PasswordChange struct {
	Event         EventRef
	KeptSessionID string
}

// KeyHistory is the life of an API key, for credential checks.
type KeyHistory struct {
	ID        string
	Name      string
	Created   EventRef
	ExpiresAt time.Time // zero: never
	Revoked   *EventRef
	// Secrets in order: the secret's SHA-256 (hex) and the event that made
	// it the key's secret (creation, then each rotation; a rotation ends the
	// previous secret at once). The last is the current one.
	Secrets []KeySecret
}

// KeySecret is one secret an API key had.
type KeySecret struct {
	Hash  string
	Since EventRef
}
