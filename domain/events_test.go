package domain

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"
	"time"
)

// sampleEvents holds one populated value of every event type: every field is
// non-zero, so that a field lost in the JSON round trip shows.
func sampleEvents() []Event {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	later := time.Date(2026, 1, 31, 12, 30, 15, 123456789, time.UTC)
	return []Event{
		UserCreated{
			UserID: "u-1", Username: "alice", Email: "alice@example.com",
			PasswordHashSealed: "sealed:v1:abcdef",
			Roles:              []GlobalRole{GlobalAdmin},
			Tenants:            []TenantRole{{Tenant: "acme", Role: RoleEditor}, {Tenant: "globex", Role: RoleViewer}},
			Unvouched:          true,
			CreatedAt:          at,
		},
		UsernameReserved{Username: "alice", UserID: "u-1"},
		APIKeyNameReserved{OwnerID: "u-1", Name: "ci", KeyID: "key-1"},
		SCIMNameReserved{OwnerID: "u-1", Name: "okta prod", ConnectionID: "scim-1"},
		SCIMGroupNameReserved{ConnectionID: "scim-1", Name: "Engineering", GroupID: "group-1"},
		UserRoleGranted{UserID: "u-1", Tenant: "acme", Role: RoleAdmin},
		UserRoleRevoked{UserID: "u-1", Tenant: "acme"},
		UserDeactivated{UserID: "u-1", Reason: "left the company", ByTenantAdmin: true},
		UserActivated{UserID: "u-1", Reason: "back from leave"},
		UserPasswordChanged{UserID: "u-1", PasswordHashSealed: "sealed:v1:123", KeptSessionID: "s-1"},
		UserProfileChanged{UserID: "u-1", Username: "alice.smith", Email: "alice.smith@example.com", Unvouched: true},
		UserLoginSucceeded{UserID: "u-1", SessionID: "s-1", Method: "password"},
		UserLoginFailed{UserID: "u-1", Username: "alice", Reason: "bad_password", At: later},
		UserLoginChallenged{UserID: "u-1", Method: "password", Reason: LoginRefusedTenant, Tenant: "staging", At: later},
		SessionStarted{
			SessionID: "s-1", UserID: "u-1", Tenant: "acme", RefreshTokenHash: "sha256:aa",
			Method: "sso", StartedAt: at, ExpiresAt: later,
		},
		SessionRefreshed{SessionID: "s-1", TokenID: "t-1", RefreshTokenHash: "sha256:bb", RefreshTokenReissued: true, At: later},
		SessionRefreshReused{SessionID: "s-1", RefreshTokenHash: "sha256:aa"},
		SessionRevoked{SessionID: "s-1", Reason: RevokeReasonReuse},
		SessionTokenRevoked{SessionID: "s-1", TokenID: "t-1", ExpiresAt: later},
		APIKeyCreated{
			KeyID: "key-1", Name: "ci", OwnerID: "u-1", Tenants: []string{"acme"},
			Permissions: []Permission{NodesRead}, AllowedIPs: []string{"10.0.0.0/8"},
			SecretHash: "sha256:cc", CreatedAt: at, ExpiresAt: &later,
		},
		APIKeyRotated{KeyID: "key-1", SecretHash: "sha256:dd", RotatedAt: later, OwnerID: "u-2"},
		APIKeyRevoked{KeyID: "key-1", Reason: "leaked"},
		APIKeyUsed{KeyID: "key-1", UsedAt: later},
		SSOProviderConfigured{
			Provider: "okta", Type: SSOOkta, Issuer: "https://acme.okta.com", IssuerOverride: true,
			Domain: "acme.okta.com", TenantID: "t-1", AllowedTenants: []string{"t-1"}, ClientID: "c-1",
			ClientSecretSealed: "aesgcm1:xx", EntityID: "https://idp", SSOURL: "https://idp/sso",
			Certificate: "-----BEGIN CERTIFICATE-----", GroupsClaim: "groups",
			RoleMappings: []RoleMapping{{Group: "ops", Tenant: "acme", Role: RoleAdmin}}, LinkByEmail: true,
			TrustIdPMFA: true, ConfiguredAt: at,
		},
		SSOProviderDeleted{Provider: "okta"},
		SSOIdentityLinked{Provider: "okta", Issuer: "https://acme.okta.com", Subject: "00u1", UserID: "u-1", Method: LinkProvisioned, LinkedAt: at},
		SSOIdentityUnlinked{Provider: "okta", Issuer: "https://acme.okta.com", Subject: "00u1", UserID: "u-1"},
		SSOAssertionConsumed{Provider: "saml", AssertionID: "id-1", ExpiresAt: later},
		SigningKeyAdded{KeyID: "sk-1", Algorithm: AlgEdDSA, SecretSealed: "aesgcm1:x", PublicKey: "pub", Pending: true, AddedAt: at},
		SigningKeyActivated{KeyID: "sk-1", ActivatedAt: later},
		SigningKeyRetired{KeyID: "sk-1", RetiredAt: later},
		SCIMConnectionCreated{
			ConnectionID: "scim-1", Name: "okta prod", Provider: "okta", Tenants: []string{"acme"}, TokenHash: "sha256:ee", Platform: true,
			OwnerID: "u-1", OwnerKeyID: "key-1", CreatedAt: at,
			GroupMappings: []RoleMapping{{Group: "ops", Tenant: "acme", Role: RoleAdmin}},
		},
		SCIMTokenRotated{ConnectionID: "scim-1", TokenHash: "sha256:ff", OwnerID: "u-2", OwnerKeyID: "key-2", RotatedAt: later},
		SCIMConnectionUpdated{ConnectionID: "scim-1", Tenants: []string{"acme", "globex"}, Platform: true, UpdatedAt: later,
			GroupMappings: []RoleMapping{{Group: "dev", Tenant: "globex", Role: RoleEditor}}},
		SCIMConnectionDeleted{ConnectionID: "scim-1"},
		SCIMGroupCreated{GroupID: "group-1", ConnectionID: "scim-1", DisplayName: "ops", ExternalID: "g-1", Members: []string{"u-1"}, CreatedAt: at},
		SCIMGroupRenamed{GroupID: "group-1", DisplayName: "dev", ExternalID: "g-2", RenamedAt: later},
		SCIMGroupMembersChanged{GroupID: "group-1", Added: []string{"u-2"}, Removed: []string{"u-1"}, ChangedAt: later},
		SCIMGroupDeleted{GroupID: "group-1"},
		SCIMUserLinked{ConnectionID: "scim-1", UserID: "u-1", Method: SCIMLinkCreated, LinkedAt: at, Profile: sampleProfile},
		SCIMUserUpdated{ConnectionID: "scim-1", UserID: "u-1", UpdatedAt: later, Profile: sampleProfile},
		SCIMUserUnlinked{ConnectionID: "scim-1", UserID: "u-1"},
		SCIMUserAdopted{UserID: "u-1", ConnectionID: "scim-1"},
		SSOUserAdopted{UserID: "u-1", Provider: "okta"},
		MFATOTPEnrolled{UserID: "u-1", SecretSealed: "aesgcm1:x", At: at},
		MFATOTPConfirmed{UserID: "u-1", Step: 7, At: at},
		MFACodeUsed{UserID: "u-1", Step: 8, TokenID: "mfa-1", TokenExpires: later, At: at},
		MFAFailed{UserID: "u-1", Factor: FactorTOTP, Reason: "invalid_code", At: at},
		MFARecoveryCodesGenerated{UserID: "u-1", Hashes: []string{"h"}, At: at},
		MFARecoveryCodeUsed{UserID: "u-1", Index: 3, TokenID: "mfa-2", TokenExpires: later, At: at},
		MFAPasskeyRegistered{UserID: "u-1", Passkey: Passkey{ID: "c-1", Name: "key", PublicKey: []byte{1}}, TokenID: "mfa-3", TokenExpires: later},
		MFAPasskeyUsed{UserID: "u-1", CredentialID: "c-1", SignCount: 2, Passwordless: true, TokenID: "mfa-4", TokenExpires: later, At: at},
		MFAPasskeyDeleted{UserID: "u-1", CredentialID: "c-1"},
		MFAReset{UserID: "u-1", Reason: "lost"},
		MFAPolicySet{Scope: "acme", Required: true},
	}
}

var sampleProfile = SCIMProfile{
	UserName: "alice", ExternalID: "00u1", DisplayName: "Alice", Formatted: "Alice Smith", GivenName: "Alice", FamilyName: "Smith",
	Emails: []SCIMEmail{{Value: "alice@example.com", Type: "work", Primary: true}}, EmployeeNumber: "7", Department: "Ops",
}

// nonZero fails when any field of e is the zero value, so the samples stay
// meaningful when fields are added to an event.
func nonZero(t *testing.T, e Event) {
	t.Helper()
	v := reflect.ValueOf(e)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Errorf("sample %T has zero field %s; populate it", e, v.Type().Field(i).Name)
		}
	}
}

func TestEventTypesMatchSamples(t *testing.T) {
	var fromSamples []string
	for _, e := range sampleEvents() {
		fromSamples = append(fromSamples, e.EventType())
	}
	types := EventTypes()
	sort.Strings(fromSamples)
	sort.Strings(types)
	if !reflect.DeepEqual(types, fromSamples) {
		t.Fatalf("EventTypes() = %v\nsamples cover %v", types, fromSamples)
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	for _, orig := range sampleEvents() {
		t.Run(orig.EventType(), func(t *testing.T) {
			nonZero(t, orig)
			data, err := json.Marshal(orig)
			if err != nil {
				t.Fatal(err)
			}
			fresh, ok := NewEvent(orig.EventType())
			if !ok {
				t.Fatalf("NewEvent(%q) unknown", orig.EventType())
			}
			if rv := reflect.ValueOf(fresh); rv.Kind() != reflect.Pointer || !rv.Elem().IsZero() {
				t.Fatalf("NewEvent(%q) = %#v, want a pointer to a zero value", orig.EventType(), fresh)
			}
			if err := json.Unmarshal(data, fresh); err != nil {
				t.Fatalf("unmarshal %s: %v", data, err)
			}
			if fresh.EventType() != orig.EventType() {
				t.Fatalf("decoded EventType() = %q, want %q", fresh.EventType(), orig.EventType())
			}
			got := Deref(fresh)
			if !reflect.DeepEqual(got, orig) {
				t.Fatalf("round trip through %s\ngot  %#v\nwant %#v", data, got, orig)
			}
			// Deref of a value is the value itself.
			if !reflect.DeepEqual(Deref(orig), orig) {
				t.Fatalf("Deref(value) = %#v", Deref(orig))
			}
		})
	}
}

func TestEventTypeNamesAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range EventTypes() {
		if seen[name] {
			t.Errorf("duplicate event type %q", name)
		}
		seen[name] = true
		e, ok := NewEvent(name)
		if !ok || e.EventType() != name {
			t.Errorf("NewEvent(%q) = %T, %v", name, e, ok)
		}
	}
	if len(seen) != 55 {
		t.Errorf("%d event types, want 55", len(seen))
	}
}

func TestNewEventUnknown(t *testing.T) {
	for _, name := range []string{"", "user", "user.Created", "user.created.v2", "session.deleted"} {
		e, ok := NewEvent(name)
		if ok || e != nil {
			t.Errorf("NewEvent(%q) = %v, %v; want nil, false", name, e, ok)
		}
	}
}

// A few JSON field names are part of the event log format (docs/events.md).
func TestEventJSONFieldNames(t *testing.T) {
	tests := []struct {
		event Event
		want  string
	}{
		{
			UserRoleGranted{UserID: "u-1", Tenant: "acme", Role: RoleViewer},
			`{"user_id":"u-1","tenant":"acme","role":"viewer"}`,
		},
		{
			UserCreated{UserID: "u-1", Username: "a", Tenants: []TenantRole{{Tenant: "acme", Role: RoleAdmin}}, CreatedAt: t0},
			`{"user_id":"u-1","username":"a","email":"","roles":null,"tenants":[{"id":"acme","role":"admin"}],"created_at":"2026-01-01T00:00:00Z"}`,
		},
		{
			SessionRefreshed{SessionID: "s-1", TokenID: "t-1", At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
			`{"session_id":"s-1","token_id":"t-1","at":"2026-01-01T00:00:00Z"}`,
		},
		{
			UserLoginFailed{Reason: "invalid_credentials", At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
			`{"reason":"invalid_credentials","at":"2026-01-01T00:00:00Z"}`,
		},
	}
	for _, tc := range tests {
		data, err := json.Marshal(tc.event)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != tc.want {
			t.Errorf("%T:\n got %s\nwant %s", tc.event, data, tc.want)
		}
	}
}

// TestNarrowsClassifiesEveryEventType: every event type is decided on — a
// new one must be added here, as narrowing (a replica waits for the others
// to apply it) or not.
func TestNarrowsClassifiesEveryEventType(t *testing.T) {
	narrowing := map[string]bool{
		TypeUserRoleGranted: true, TypeUserRoleRevoked: true, TypeUserDeactivated: true, TypeUserPasswordChanged: true,
		TypeSessionRevoked: true, TypeSessionTokenRevoked: true, TypeSessionRefreshReused: true,
		TypeAPIKeyRotated: true, TypeAPIKeyRevoked: true, TypeSigningKeyRetired: true, TypeSigningKeyActivated: true,
		TypeSSOProviderConfigured: true, TypeSSOProviderDeleted: true,
		TypeSCIMTokenRotated: true, TypeSCIMConnectionUpdated: true, TypeSCIMConnectionDeleted: true,
		TypeSCIMGroupMembersChanged: true, TypeSCIMGroupDeleted: true, TypeSCIMUserUpdated: true, TypeSCIMUserUnlinked: true,
		TypeMFATOTPConfirmed: true, TypeMFAPasskeyDeleted: true, TypeMFAReset: true, TypeMFAPolicySet: true,
	}
	other := map[string]bool{
		TypeUserCreated: true, TypeUsernameReserved: true, TypeUserActivated: true, TypeUserProfileChanged: true,
		TypeUserLoginSucceeded: true, TypeUserLoginFailed: true, TypeUserLoginChallenged: true,
		TypeSessionStarted: true, TypeSessionRefreshed: true,
		TypeAPIKeyCreated: true, TypeAPIKeyNameReserved: true, TypeAPIKeyUsed: true, TypeSigningKeyAdded: true,
		TypeSCIMNameReserved: true, TypeSCIMGroupNameReserved: true,
		TypeSSOIdentityLinked: true, TypeSSOIdentityUnlinked: true, TypeSSOAssertionConsumed: true, TypeSSOUserAdopted: true,
		TypeSCIMConnectionCreated: true, TypeSCIMGroupCreated: true, TypeSCIMGroupRenamed: true, TypeSCIMUserLinked: true, TypeSCIMUserAdopted: true,
		TypeMFATOTPEnrolled: true, TypeMFACodeUsed: true, TypeMFAFailed: true, TypeMFARecoveryCodesGenerated: true,
		TypeMFARecoveryCodeUsed: true, TypeMFAPasskeyRegistered: true, TypeMFAPasskeyUsed: true,
	}
	for _, typ := range EventTypes() {
		switch {
		case narrowing[typ] && other[typ]:
			t.Errorf("%s is in both lists", typ)
		case narrowing[typ] != Narrows(typ):
			t.Errorf("Narrows(%q) = %v, want %v", typ, Narrows(typ), narrowing[typ])
		case !narrowing[typ] && !other[typ]:
			t.Errorf("%s is not classified: does it take access away? Add it to one of the lists (and to Narrows if it does)", typ)
		}
	}
	if Narrows("no.such_type") {
		t.Error("an unknown type narrows")
	}
}
