package client

import (
	"encoding/json"
	"time"
)

// The API's shapes (http/openapi.json is the reference). Nullable times are
// pointers; fields the service adds later are ignored, so a client built
// against this version keeps working with newer services.

// TenantRole is a user's role in one tenant: viewer, editor or admin.
type TenantRole struct {
	ID   string `json:"id"`
	Role string `json:"role"`
}

// User is a user as the API shows it (never a password).
type User struct {
	ID       string       `json:"id"`
	Username string       `json:"username"`
	Email    string       `json:"email"`
	Roles    []string     `json:"roles"`   // global roles: ["admin"] for a platform admin
	Tenants  []TenantRole `json:"tenants"` // per-tenant roles (to a tenant admin: in its tenants)
	// OtherTenants: to a tenant admin, the user holds roles in tenants left
	// out of Tenants (not shown): the admin may not deactivate them.
	OtherTenants bool `json:"other_tenants,omitempty"`
	Active       bool `json:"active"`
	// DeactivatedByTenantAdmin, on a deactivated user only (nil while
	// active): whether a tenant admin deactivated it — and a tenant admin
	// may activate it; false: only a platform admin may.
	DeactivatedByTenantAdmin *bool     `json:"deactivated_by_tenant_admin,omitempty"`
	CreatedAt                time.Time `json:"created_at"`
}

// UserPage is a page of users (all of them when no Page was asked for).
type UserPage struct {
	Users      []User `json:"users"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Page asks for one page of a list: Limit entries (1–1000) after Cursor (the
// previous page's NextCursor). The zero Page asks for the whole list where
// the API allows it (users, API keys).
type Page struct {
	Limit  int
	Cursor string
}

// LoginRequest logs a user in with a password; Tenant scopes the token to
// one tenant.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Tenant   string `json:"tenant,omitempty"`
}

// MFALoginRequest is a login's second step: the MFA token of the 403
// MFA_REQUIRED (Error.MFAToken) and a TOTP code or a recovery code.
type MFALoginRequest struct {
	MFAToken string `json:"mfa_token"`
	Code     string `json:"code"`
}

// LoginResponse is the answer to a login.
type LoginResponse struct {
	Token        string    `json:"token"`
	ExpiresAt    time.Time `json:"expires_at"`
	RefreshToken string    `json:"refresh_token"`
	User         User      `json:"user"`
}

// RefreshResponse is the answer to a refresh; RefreshToken is set when the
// service rotates refresh tokens (the one presented is then spent).
type RefreshResponse struct {
	Token        string    `json:"token"`
	ExpiresAt    time.Time `json:"expires_at"`
	RefreshToken string    `json:"refresh_token,omitempty"`
}

// MeTenant is one tenant of the caller with its live permissions.
type MeTenant struct {
	ID          string   `json:"id"`
	Role        string   `json:"role,omitempty"` // users only
	Permissions []string `json:"permissions"`
}

// Me is the caller: a user (Type "user") or an API key (Type "apikey").
type Me struct {
	Type      string     `json:"type"`
	ID        string     `json:"id"`
	Username  string     `json:"username,omitempty"` // user
	Email     string     `json:"email,omitempty"`    // user
	Roles     []string   `json:"roles,omitempty"`    // user
	Name      string     `json:"name,omitempty"`     // API key
	OwnerID   string     `json:"owner_id,omitempty"` // API key
	Tenants   []MeTenant `json:"tenants"`
	Tenant    string     `json:"tenant,omitempty"`     // a tenant-scoped token's tenant
	SessionID string     `json:"session_id,omitempty"` // user
	ExpiresAt *time.Time `json:"expires_at"`
}

// CreateUserRequest creates a user. Tenants gives per-tenant roles; Roles
// global ones (["admin"], platform admins only).
type CreateUserRequest struct {
	Username string       `json:"username"`
	Email    string       `json:"email"`
	Password string       `json:"password"`
	Roles    []string     `json:"roles,omitempty"`
	Tenants  []TenantRole `json:"tenants,omitempty"`
}

// Session is a live session: one login's refresh-token family.
type Session struct {
	ID              string     `json:"id"`
	UserID          string     `json:"user_id"`
	Tenant          string     `json:"tenant,omitempty"`
	StartedAt       time.Time  `json:"started_at"`
	LastRefreshedAt *time.Time `json:"last_refreshed_at"`
	ExpiresAt       time.Time  `json:"expires_at"`
	Method          string     `json:"method,omitempty"`
	IP              string     `json:"ip,omitempty"`
	UserAgent       string     `json:"user_agent,omitempty"`
	Current         bool       `json:"current"`
}

// SessionPage is a page of sessions.
type SessionPage struct {
	Sessions   []Session `json:"sessions"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// CreateAPIKeyRequest creates an API key. Tenants: tenant IDs, or ["*"]
// (platform admins); Permissions no more than the caller holds there.
// Empty fields take the service's defaults.
type CreateAPIKeyRequest struct {
	Name        string     `json:"name"`
	Tenants     []string   `json:"tenants,omitempty"`
	Permissions []string   `json:"permissions,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	AllowedIPs  []string   `json:"allowed_ips,omitempty"`
}

// APIKey is an API key. Key, the secret, is set only in the answers to
// CreateAPIKey and RotateAPIKey: it is shown once.
type APIKey struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Key         string     `json:"key,omitempty"`
	Tenants     []string   `json:"tenants"`
	Permissions []string   `json:"permissions"`
	AllowedIPs  []string   `json:"allowed_ips"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	RotatedAt   *time.Time `json:"rotated_at,omitempty"`
	Revoked     bool       `json:"revoked"`
	OwnerID     string     `json:"owner_id"`
	// OtherTenants: to an admin of some of its tenants, the key has others,
	// left out of Tenants: the admin may not rotate or revoke it.
	OtherTenants bool `json:"other_tenants,omitempty"`
}

// APIKeyPage is a page of API keys (never their secrets).
type APIKeyPage struct {
	APIKeys    []APIKey `json:"api_keys"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

// RoleMapping maps an identity provider's group to a tenant role.
type RoleMapping struct {
	Group  string `json:"group"`
	Tenant string `json:"tenant"`
	Role   string `json:"role"`
	// Directory (Azure AD): the directory (tid) whose logins the mapping
	// applies to; required by a multi-directory provider unless Group is
	// a group object ID (docs/sso.md).
	Directory string `json:"directory,omitempty"`
}

// SSOOptions are the settings every provider type shares.
type SSOOptions struct {
	GroupsClaim  string        `json:"groups_claim,omitempty"`
	RoleMappings []RoleMapping `json:"role_mappings,omitempty"`
	LinkByEmail  bool          `json:"link_by_email,omitempty"`
	// TrustIdPMFA: the provider's own second factor (the ID token's
	// amr/acr) counts as one here; OpenID Connect providers only.
	TrustIdPMFA bool `json:"trust_idp_mfa,omitempty"`
}

// OktaProvider configures Okta (POST /api/v1/admin/sso/okta).
type OktaProvider struct {
	Domain       string `json:"domain"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Issuer       string `json:"issuer,omitempty"`
	SSOOptions
}

// AzureProvider configures Azure AD / Entra ID (POST /api/v1/admin/sso/azure).
// Its SSOOptions.LinkByEmail must stay false: the service refuses it (400),
// since no one verifies an Azure AD user's address (docs/sso.md).
type AzureProvider struct {
	TenantID       string   `json:"tenant_id"`
	ClientID       string   `json:"client_id"`
	ClientSecret   string   `json:"client_secret"`
	Issuer         string   `json:"issuer,omitempty"`
	AllowedTenants []string `json:"allowed_tenants,omitempty"`
	SSOOptions
}

// SAMLProvider configures a SAML 2.0 identity provider.
type SAMLProvider struct {
	EntityID    string `json:"entity_id"`
	SSOURL      string `json:"sso_url"`
	Certificate string `json:"certificate"` // PEM: 1 to 3 certificates, one after the other (a rollover)
	SSOOptions
}

// OIDCProvider configures a generic OpenID Connect provider named Name.
type OIDCProvider struct {
	Name         string `json:"name"`
	Issuer       string `json:"issuer"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	SSOOptions
}

// SSOCertificate describes a SAML IdP's certificate.
type SSOCertificate struct {
	Subject   string    `json:"subject"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

// SSOProvider is a configured identity provider, its secret redacted.
type SSOProvider struct {
	Name           string           `json:"name"`
	Type           string           `json:"type"` // okta, azure, saml, oidc
	Issuer         string           `json:"issuer,omitempty"`
	Domain         string           `json:"domain,omitempty"`
	TenantID       string           `json:"tenant_id,omitempty"`
	AllowedTenants []string         `json:"allowed_tenants,omitempty"`
	ClientID       string           `json:"client_id,omitempty"`
	ClientSecret   string           `json:"client_secret,omitempty"` // always "[redacted]" when set
	EntityID       string           `json:"entity_id,omitempty"`
	SSOURL         string           `json:"sso_url,omitempty"`
	Certificate    *SSOCertificate  `json:"certificate,omitempty"` // SAML: the first of Certificates
	Certificates   []SSOCertificate `json:"certificates,omitempty"`
	GroupsClaim    string           `json:"groups_claim,omitempty"`
	RoleMappings   []RoleMapping    `json:"role_mappings"`
	LinkByEmail    bool             `json:"link_by_email"`
	TrustIdPMFA    bool             `json:"trust_idp_mfa,omitempty"`
	LoginURL       string           `json:"login_url"`
	CallbackURL    string           `json:"callback_url,omitempty"`
	MetadataURL    string           `json:"metadata_url,omitempty"`
	ACSURL         string           `json:"acs_url,omitempty"`
	ConfiguredAt   time.Time        `json:"configured_at"`
	Warnings       []string         `json:"warnings,omitempty"` // only in the answer to a configuration
}

// SigningKey is an access-token signing key (never its key material).
type SigningKey struct {
	ID        string `json:"id"`
	Algorithm string `json:"algorithm"` // HS256 or EdDSA
	Source    string `json:"source"`    // config or event
	Signing   bool   `json:"signing"`
	// Pending: published (verifies, in the JWKS), signs once activated.
	Pending     bool       `json:"pending"`
	Retired     bool       `json:"retired"`
	AddedAt     *time.Time `json:"added_at"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
}

// JWK is an Ed25519 public key of the JWKS (RFC 8037).
type JWK struct {
	KeyType string `json:"kty"`
	Curve   string `json:"crv"`
	X       string `json:"x"`
	KeyID   string `json:"kid"`
	Use     string `json:"use"`
	Alg     string `json:"alg"`
}

// JWKS is GET /.well-known/jwks.json.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// Actor is who caused an event: Type user, apikey, system or anonymous.
type Actor struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

// RequestInfo is the HTTP request that caused an event.
type RequestInfo struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// AuditEvent is one event of the audit log (docs/events.md), secrets withheld.
type AuditEvent struct {
	Sequence    uint64          `json:"sequence"`
	ID          string          `json:"id"`
	Time        time.Time       `json:"time"`
	Type        string          `json:"type"`
	Version     int             `json:"version"`
	Aggregate   string          `json:"aggregate"`
	AggregateID string          `json:"aggregate_id"`
	Actor       Actor           `json:"actor"`
	Tenants     []string        `json:"tenants"`
	Request     RequestInfo     `json:"request"`
	Data        json.RawMessage `json:"data"`
	// Cursor asks, oldest first, for the events after this one, whatever
	// the order of its page (AuditQuery.Cursor). It names this event
	// store's event: a store restored from a backup refuses it rather than
	// skip what came after. Empty from a service before events' cursors.
	Cursor string `json:"cursor,omitempty"`
}

// AuditPage is a page of the audit log.
type AuditPage struct {
	Events     []AuditEvent `json:"events"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// AuditQuery filters the audit log; every field is optional.
type AuditQuery struct {
	Tenant  string    // events that concern this tenant
	Actor   string    // caused by this user or key ID
	Subject string    // of this user, key, session or provider ID
	Type    string    // an event type, or a prefix ending in "." ("apikey.")
	Since   time.Time // inclusive
	Until   time.Time // exclusive
	Result  string    // logins: succeeded or failed
	Desc    bool      // newest first
	Limit   int       // page size, 1–1000 (default 100)
	Cursor  string    // the previous page's NextCursor
}

// EventRef is the event that granted something.
type EventRef struct {
	Sequence uint64    `json:"sequence"`
	Time     time.Time `json:"time"`
	Type     string    `json:"type"`
	Actor    Actor     `json:"actor"`
}

// OwnerGrant is the grant of an API key's owner that caps the key.
type OwnerGrant struct {
	Tenant      string   `json:"tenant"`
	Via         string   `json:"via"`
	Role        string   `json:"role,omitempty"`
	Permissions []string `json:"permissions"`
	GrantedBy   EventRef `json:"granted_by"`
}

// Grant is one thing a principal could do, and why.
type Grant struct {
	Tenant      string      `json:"tenant"`
	Via         string      `json:"via"` // role, platform_admin or api_key
	Role        string      `json:"role,omitempty"`
	Permissions []string    `json:"permissions"`
	GrantedBy   EventRef    `json:"granted_by"`
	OwnerID     string      `json:"owner_id,omitempty"`
	OwnerGrant  *OwnerGrant `json:"owner_grant,omitempty"`
}

// Principal is a user or API key with access to a tenant.
type Principal struct {
	Type        string   `json:"type"` // user or apikey
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	Grants      []Grant  `json:"grants"`
}

// TenantAccess is who had access to a tenant at a moment.
type TenantAccess struct {
	Tenant     string      `json:"tenant"`
	At         time.Time   `json:"at"`
	Permission string      `json:"permission,omitempty"`
	Principals []Principal `json:"principals"`
}

// PrincipalTenant is what a principal could do in one tenant.
type PrincipalTenant struct {
	ID          string   `json:"id"`
	Permissions []string `json:"permissions"`
	Grants      []Grant  `json:"grants"`
}

// PrincipalAccess is what one user or key could do at a moment.
type PrincipalAccess struct {
	Type    string            `json:"type"`
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	At      time.Time         `json:"at"`
	Tenants []PrincipalTenant `json:"tenants"`
}

// CredentialCheckRequest asks whether one credential was usable at At
// (zero: now). Set exactly one of Token (an access or refresh token) and Key.
type CredentialCheckRequest struct {
	Token string    `json:"token,omitempty"`
	Key   string    `json:"key,omitempty"`
	At    time.Time `json:"-"`
}

// Since is since when a credential was not usable, and why.
type Since struct {
	Sequence uint64    `json:"sequence,omitempty"`
	Time     time.Time `json:"time"`
	Type     string    `json:"type,omitempty"`
	Actor    *Actor    `json:"actor,omitempty"`
}

// CredentialCheck is the answer of a credential check (never the credential).
type CredentialCheck struct {
	Kind      string     `json:"kind"` // access_token, refresh_token, api_key
	Usable    bool       `json:"usable"`
	Reason    string     `json:"reason,omitempty"`
	Since     *Since     `json:"since,omitempty"`
	Subject   *Actor     `json:"subject,omitempty"`
	SessionID string     `json:"session_id,omitempty"`
	Tenant    string     `json:"tenant,omitempty"`
	At        time.Time  `json:"at"`
	IssuedAt  *time.Time `json:"issued_at,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Notes     []string   `json:"notes"`
}
