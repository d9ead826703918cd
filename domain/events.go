package domain

import "sort"

// Event is the payload of one domain event. Its type name ("user.created") and
// version identify its JSON shape in the event log; see docs/events.md.
type Event interface {
	EventType() string
}

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
	TypeAPIKeyNameReserved:    func() Event { return &APIKeyNameReserved{} },
	TypeSCIMNameReserved:      func() Event { return &SCIMNameReserved{} },
	TypeSCIMGroupNameReserved: func() Event { return &SCIMGroupNameReserved{} },
	TypeUserRoleGranted:       func() Event { return &UserRoleGranted{} },
	TypeUserRoleRevoked:       func() Event { return &UserRoleRevoked{} },
	TypeUserDeactivated:       func() Event { return &UserDeactivated{} },
	TypeUserActivated:         func() Event { return &UserActivated{} },
	TypeUserPasswordChanged:   func() Event { return &UserPasswordChanged{} },
	TypeUserProfileChanged:    func() Event { return &UserProfileChanged{} },
	TypeUserLoginSucceeded:    func() Event { return &UserLoginSucceeded{} },
	TypeUserLoginFailed:       func() Event { return &UserLoginFailed{} },
	TypeUserLoginChallenged:   func() Event { return &UserLoginChallenged{} },
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
	TypeSigningKeyActivated:   func() Event { return &SigningKeyActivated{} },
	TypeSigningKeyRetired:     func() Event { return &SigningKeyRetired{} },
	TypeSSOProviderConfigured: func() Event { return &SSOProviderConfigured{} },
	TypeSSOProviderDeleted:    func() Event { return &SSOProviderDeleted{} },
	TypeSSOIdentityLinked:     func() Event { return &SSOIdentityLinked{} },
	TypeSSOIdentityUnlinked:   func() Event { return &SSOIdentityUnlinked{} },
	TypeSSOAssertionConsumed:  func() Event { return &SSOAssertionConsumed{} },
	TypeSSOUserAdopted:        func() Event { return &SSOUserAdopted{} },
	// SCIM provisioning (scim.go).
	TypeSCIMConnectionCreated:   func() Event { return &SCIMConnectionCreated{} },
	TypeSCIMTokenRotated:        func() Event { return &SCIMTokenRotated{} },
	TypeSCIMConnectionUpdated:   func() Event { return &SCIMConnectionUpdated{} },
	TypeSCIMConnectionDeleted:   func() Event { return &SCIMConnectionDeleted{} },
	TypeSCIMGroupCreated:        func() Event { return &SCIMGroupCreated{} },
	TypeSCIMGroupRenamed:        func() Event { return &SCIMGroupRenamed{} },
	TypeSCIMGroupMembersChanged: func() Event { return &SCIMGroupMembersChanged{} },
	TypeSCIMGroupDeleted:        func() Event { return &SCIMGroupDeleted{} },
	TypeSCIMUserLinked:          func() Event { return &SCIMUserLinked{} },
	TypeSCIMUserUpdated:         func() Event { return &SCIMUserUpdated{} },
	TypeSCIMUserUnlinked:        func() Event { return &SCIMUserUnlinked{} },
	TypeSCIMUserAdopted:         func() Event { return &SCIMUserAdopted{} },
}

// Deref returns the event value behind a pointer produced by NewEvent, so that
// type switches can match on values.
func Deref(e Event) Event {
	switch v := e.(type) {
	case *UserCreated:
		return *v
	case *UsernameReserved:
		return *v
	case *APIKeyNameReserved:
		return *v
	case *SCIMNameReserved:
		return *v
	case *SCIMGroupNameReserved:
		return *v
	case *UserRoleGranted:
		return *v
	case *UserRoleRevoked:
		return *v
	case *UserDeactivated:
		return *v
	case *UserActivated:
		return *v
	case *UserPasswordChanged:
		return *v
	case *UserProfileChanged:
		return *v
	case *UserLoginSucceeded:
		return *v
	case *UserLoginFailed:
		return *v
	case *UserLoginChallenged:
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
	case *SigningKeyActivated:
		return *v
	case *SigningKeyRetired:
		return *v
	case *SSOProviderConfigured:
		return *v
	case *SSOProviderDeleted:
		return *v
	case *SSOIdentityLinked:
		return *v
	case *SSOIdentityUnlinked:
		return *v
	case *SSOAssertionConsumed:
		return *v
	case *SSOUserAdopted:
		return *v
	case *SCIMConnectionCreated:
		return *v
	case *SCIMTokenRotated:
		return *v
	case *SCIMConnectionUpdated:
		return *v
	case *SCIMConnectionDeleted:
		return *v
	case *SCIMGroupCreated:
		return *v
	case *SCIMGroupRenamed:
		return *v
	case *SCIMGroupMembersChanged:
		return *v
	case *SCIMGroupDeleted:
		return *v
	case *SCIMUserLinked:
		return *v
	case *SCIMUserUpdated:
		return *v
	case *SCIMUserAdopted:
		return *v
	case *SCIMUserUnlinked:
		return *v
	case interface{ derefEvent() Event }: // MFA events (mfa.go)
		return v.derefEvent()
	}
	return e
}

// Narrows reports whether an event of the named type can take away access
// that a credential had: a revocation, a deactivation, a role revoked or
// changed, a password changed (it cuts the sessions off), a key rotated or
// retired, an identity provider or SCIM connection changed or removed, a
// second factor required or removed. A replica that stores one waits until
// every other replica has applied it before it answers
// (commands.Config.Barrier), so that the change is enforced everywhere by
// then. The other events grant access, record use, or change nothing that a
// check reads: a replica that has not applied them yet refuses too much,
// never too little (and for a token issued moments ago it waits for the
// session's events instead of refusing). One more is waited for although
// it takes nothing away: a signing key activated, so that every replica
// signs with it by the answer — the wait before the old key may be
// retired (an access-token lifetime) starts there.
func Narrows(eventType string) bool {
	switch eventType {
	case TypeUserRoleGranted, // may replace a role with a lesser one
		TypeUserRoleRevoked, TypeUserDeactivated, TypeUserPasswordChanged,
		TypeSessionRevoked, TypeSessionTokenRevoked, TypeSessionRefreshReused,
		TypeAPIKeyRotated, TypeAPIKeyRevoked,
		TypeSigningKeyRetired,
		TypeSigningKeyActivated, // which key signs: every replica signs with it by the answer
		TypeSSOProviderConfigured, TypeSSOProviderDeleted,
		TypeSCIMTokenRotated, TypeSCIMConnectionUpdated, TypeSCIMConnectionDeleted,
		TypeSCIMGroupMembersChanged, TypeSCIMGroupDeleted, TypeSCIMUserUpdated, TypeSCIMUserUnlinked,
		TypeMFATOTPConfirmed, TypeMFAPasskeyDeleted, TypeMFAReset, TypeMFAPolicySet:
		return true
	}
	return false
}
