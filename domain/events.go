package domain

import (
	"sort"
	"time"
)

// Event is the payload of one domain event. Its type name ("user.created") and
// version identify its JSON shape in the event log; see docs/events.md.
type Event interface {
	EventType() string
}

// Aggregate names: the second token of an event's subject,
// infracast.auth.<aggregate>.<id>.
const (
	AggregateUser     = "user"
	AggregateSession  = "session"
	AggregateUsername = "username" // uniqueness reservations
	AggregateLogin    = "login"    // failed logins for names that match no user
)

// UserCreated: a user account was created. The password hash is an argon2id PHC
// string sealed with the deployment's master key (AES-GCM); it is never plain.
type UserCreated struct {
	UserID             string       `json:"user_id"`
	Username           string       `json:"username"`
	Email              string       `json:"email"`
	PasswordHashSealed string       `json:"password_hash_sealed,omitempty"`
	Roles              []GlobalRole `json:"roles"`
	Tenants            []TenantRole `json:"tenants"`
	CreatedAt          time.Time    `json:"created_at"`
}

// UsernameReserved claims a username for a user; appended with "subject must be
// new" in the same atomic batch as UserCreated, so two users never share a name.
type UsernameReserved struct {
	Username string `json:"username"`
	UserID   string `json:"user_id"`
}

// UserRoleGranted: the user now holds Role in Tenant (replacing any earlier role there).
type UserRoleGranted struct {
	UserID string `json:"user_id"`
	Tenant string `json:"tenant"`
	Role   Role   `json:"role"`
}

// UserRoleRevoked: the user no longer holds any role in Tenant.
type UserRoleRevoked struct {
	UserID string `json:"user_id"`
	Tenant string `json:"tenant"`
}

// UserDeactivated: the user can no longer log in, and every token, refresh token
// and session of the user stops at once.
type UserDeactivated struct {
	UserID string `json:"user_id"`
	Reason string `json:"reason,omitempty"`
}

// UserPasswordChanged: a new password (sealed argon2id hash). Every session of the
// user other than KeptSessionID is revoked by it.
type UserPasswordChanged struct {
	UserID             string `json:"user_id"`
	PasswordHashSealed string `json:"password_hash_sealed"`
	KeptSessionID      string `json:"kept_session_id,omitempty"`
}

// UserLoginSucceeded: a login started SessionID.
type UserLoginSucceeded struct {
	UserID    string `json:"user_id"`
	SessionID string `json:"session_id"`
	Method    string `json:"method"`
}

// UserLoginFailed: a login attempt was refused. When the name matched no user,
// UserID and Username are empty and the event lives on the "login" aggregate,
// whose ID is a hash of the name: a name as typed is never recorded, since
// people sometimes type their password into it.
type UserLoginFailed struct {
	UserID   string    `json:"user_id,omitempty"`
	Username string    `json:"username,omitempty"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// SessionStarted: a login created a session (a refresh-token family). Only the
// SHA-256 of the refresh token is recorded.
type SessionStarted struct {
	SessionID        string    `json:"session_id"`
	UserID           string    `json:"user_id"`
	Tenant           string    `json:"tenant,omitempty"`
	RefreshTokenHash string    `json:"refresh_token_hash"`
	Method           string    `json:"method"`
	StartedAt        time.Time `json:"started_at"`
	ExpiresAt        time.Time `json:"expires_at"`
}

// SessionRefreshed: an access token (TokenID) was issued from the session. With
// rotation, RefreshTokenHash is the hash of the new refresh token.
// RefreshTokenReissued: the refresh token spent last was presented again
// within the reuse interval, and the current one was handed out again
// (nothing rotated; RefreshTokenHash is empty).
type SessionRefreshed struct {
	SessionID            string    `json:"session_id"`
	TokenID              string    `json:"token_id"`
	RefreshTokenHash     string    `json:"refresh_token_hash,omitempty"`
	RefreshTokenReissued bool      `json:"refresh_token_reissued,omitempty"`
	At                   time.Time `json:"at"`
}

// SessionRefreshReused: a spent refresh token was presented again (rotation on);
// the session is revoked by the SessionRevoked that follows it.
type SessionRefreshReused struct {
	SessionID        string `json:"session_id"`
	RefreshTokenHash string `json:"refresh_token_hash"`
}

// SessionRevoked: the session, its refresh token and every access token issued
// from it stop.
type SessionRevoked struct {
	SessionID string `json:"session_id"`
	Reason    string `json:"reason"`
}

// SessionTokenRevoked: one access token (by its ID, the JWT "jti") stops; the
// revocation can be forgotten after ExpiresAt.
type SessionTokenRevoked struct {
	SessionID string    `json:"session_id"`
	TokenID   string    `json:"token_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// EventType names, as they appear in the envelope's "type".
const (
	TypeUserCreated          = "user.created"
	TypeUsernameReserved     = "username.reserved"
	TypeUserRoleGranted      = "user.role_granted"
	TypeUserRoleRevoked      = "user.role_revoked"
	TypeUserDeactivated      = "user.deactivated"
	TypeUserPasswordChanged  = "user.password_changed"
	TypeUserLoginSucceeded   = "user.login_succeeded"
	TypeUserLoginFailed      = "user.login_failed"
	TypeSessionStarted       = "session.started"
	TypeSessionRefreshed     = "session.refreshed"
	TypeSessionRefreshReused = "session.refresh_reused"
	TypeSessionRevoked       = "session.revoked"
	TypeSessionTokenRevoked  = "session.token_revoked"
)

func (UserCreated) EventType() string          { return TypeUserCreated }
func (UsernameReserved) EventType() string     { return TypeUsernameReserved }
func (UserRoleGranted) EventType() string      { return TypeUserRoleGranted }
func (UserRoleRevoked) EventType() string      { return TypeUserRoleRevoked }
func (UserDeactivated) EventType() string      { return TypeUserDeactivated }
func (UserPasswordChanged) EventType() string  { return TypeUserPasswordChanged }
func (UserLoginSucceeded) EventType() string   { return TypeUserLoginSucceeded }
func (UserLoginFailed) EventType() string      { return TypeUserLoginFailed }
func (SessionStarted) EventType() string       { return TypeSessionStarted }
func (SessionRefreshed) EventType() string     { return TypeSessionRefreshed }
func (SessionRefreshReused) EventType() string { return TypeSessionRefreshReused }
func (SessionRevoked) EventType() string       { return TypeSessionRevoked }
func (SessionTokenRevoked) EventType() string  { return TypeSessionTokenRevoked }

// EventVersion is the current schema version of every event type. A type's
// version goes up only with an incompatible change; fields are only ever added.
const EventVersion = 1

// NewEvent returns a pointer to a zero event of the named type, for decoding.
func NewEvent(eventType string) (Event, bool) {
	f, ok := eventFactories[eventType]
	if !ok {
		return nil, false
	}
	return f(), true
}

// EventTypes lists every known event type name.
func EventTypes() []string {
	out := make([]string, 0, len(eventFactories))
	for t := range eventFactories {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

var eventFactories = map[string]func() Event{
	TypeUserCreated:           func() Event { return &UserCreated{} },
	TypeUsernameReserved:      func() Event { return &UsernameReserved{} },
	TypeUserRoleGranted:       func() Event { return &UserRoleGranted{} },
	TypeUserRoleRevoked:       func() Event { return &UserRoleRevoked{} },
	TypeUserDeactivated:       func() Event { return &UserDeactivated{} },
	TypeUserPasswordChanged:   func() Event { return &UserPasswordChanged{} },
	TypeUserLoginSucceeded:    func() Event { return &UserLoginSucceeded{} },
	TypeUserLoginFailed:       func() Event { return &UserLoginFailed{} },
	TypeSessionStarted:        func() Event { return &SessionStarted{} },
	TypeSessionRefreshed:      func() Event { return &SessionRefreshed{} },
	TypeSessionRefreshReused:  func() Event { return &SessionRefreshReused{} },
	TypeSessionRevoked:        func() Event { return &SessionRevoked{} },
	TypeSessionTokenRevoked:   func() Event { return &SessionTokenRevoked{} },
	TypeAPIKeyCreated:         func() Event { return &APIKeyCreated{} },
	TypeAPIKeyRotated:         func() Event { return &APIKeyRotated{} },
	TypeAPIKeyRevoked:         func() Event { return &APIKeyRevoked{} },
	TypeAPIKeyUsed:            func() Event { return &APIKeyUsed{} },
	TypeSigningKeyAdded:       func() Event { return &SigningKeyAdded{} },
	TypeSigningKeyRetired:     func() Event { return &SigningKeyRetired{} },
	TypeSSOProviderConfigured: func() Event { return &SSOProviderConfigured{} },
	TypeSSOProviderDeleted:    func() Event { return &SSOProviderDeleted{} },
	TypeSSOIdentityLinked:     func() Event { return &SSOIdentityLinked{} },
	TypeSSOAssertionConsumed:  func() Event { return &SSOAssertionConsumed{} },
}

// Deref returns the event value behind a pointer produced by NewEvent, so that
// type switches can match on values.
func Deref(e Event) Event {
	switch v := e.(type) {
	case *UserCreated:
		return *v
	case *UsernameReserved:
		return *v
	case *UserRoleGranted:
		return *v
	case *UserRoleRevoked:
		return *v
	case *UserDeactivated:
		return *v
	case *UserPasswordChanged:
		return *v
	case *UserLoginSucceeded:
		return *v
	case *UserLoginFailed:
		return *v
	case *SessionStarted:
		return *v
	case *SessionRefreshed:
		return *v
	case *SessionRefreshReused:
		return *v
	case *SessionRevoked:
		return *v
	case *SessionTokenRevoked:
		return *v
	case *APIKeyCreated:
		return *v
	case *APIKeyRotated:
		return *v
	case *APIKeyRevoked:
		return *v
	case *APIKeyUsed:
		return *v
	case *SigningKeyAdded:
		return *v
	case *SigningKeyRetired:
		return *v
	case *SSOProviderConfigured:
		return *v
	case *SSOProviderDeleted:
		return *v
	case *SSOIdentityLinked:
		return *v
	case *SSOAssertionConsumed:
		return *v
	}
	return e
}
