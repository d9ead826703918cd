package domain

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Single sign-on aggregates.
const (
	// AggregateSSO: one identity provider's configuration; the ID is the
	// provider's name ("okta", "azure", "saml" or a generic OIDC name).
	AggregateSSO = "sso"
	// AggregateSSOIdentity: the link of one identity, (issuer, subject), to
	// a user; the ID is SSOIdentityKey. Appended with "subject must be new",
	// so that an identity is linked to one user only, across replicas.
	AggregateSSOIdentity = "sso_identity"
	// AggregateSSOAssertion: a consumed SAML assertion; the ID is
	// SSOAssertionKey. Appended with "subject must be new", so that a replayed
	// assertion is refused by every replica.
	AggregateSSOAssertion = "sso_assertion"
	// AggregateSSOAdoption orders the links of an existing user by e-mail
	// (a login through a provider that links by verified e-mail): one
	// subject per user (its ID). Every such link appends SSOUserAdopted
	// there, in the same atomic batch as its SSOIdentityLinked, expecting
	// the subject's last sequence as read before checking that the user
	// holds no other subject of the issuer: of two identities linking to
	// one user at once through two replicas, one append conflicts, and the
	// login deciding again finds the other's link (it then provisions a
	// user of its own). Links of users provisioned for their identity, and
	// links by e-mail before this event existed, have none.
	AggregateSSOAdoption = "sso_adoption"
)

// SSOType is the kind of an identity provider.
type SSOType string

// Provider types.
const (
	SSOOkta  SSOType = "okta"
	SSOAzure SSOType = "azure"
	SSOOIDC  SSOType = "oidc"
	SSOSAML  SSOType = "saml"
)

// IsOIDC reports whether providers of the type speak OpenID Connect.
func (t SSOType) IsOIDC() bool { return t == SSOOkta || t == SSOAzure || t == SSOOIDC }

// RoleMapping grants Role in Tenant to users whose group (or role) claim
// contains Group.
type RoleMapping struct {
	Group  string `json:"group"`
	Tenant string `json:"tenant"`
	Role   Role   `json:"role"`
	// Directory (Azure AD only, lower case): the directory (tid) whose
	// logins the mapping applies to. A multi-directory provider needs it on
	// every mapping whose group is not an object ID (RoleMappingScoped):
	// app-role values and group names are the same strings in every
	// directory, assigned by each directory's own administrators (an
	// outside check, 18s: a user of another allowed directory carrying
	// "Prod.Admin" was granted the mapping meant for the operator's own).
	// Omitted when empty; a build before it ignores it (docs/operations.md).
	Directory string `json:"directory,omitempty"`
}

// SSOProvider is the state of an identity provider's configuration. The
// client secret is only ever known here sealed with the master key.
type SSOProvider struct {
	Name               string
	Type               SSOType
	Issuer             string // OIDC: the issuer that discovery starts from
	IssuerOverride     bool   // Issuer was given, not derived from Domain/TenantID
	Domain             string // Okta
	TenantID           string // Azure AD
	AllowedTenants     []string
	ClientID           string
	ClientSecretSealed string
	EntityID           string // SAML: the IdP's entity ID
	SSOURL             string // SAML: the IdP's single sign-on URL (HTTP-Redirect)
	Certificate        string // SAML: the IdP's signing certificate (PEM)
	GroupsClaim        string
	RoleMappings       []RoleMapping
	LinkByEmail        bool
	// TrustIdPMFA: the provider's own second factor counts as one here when
	// its ID token says the user passed one (amr/acr); OpenID Connect only.
	TrustIdPMFA  bool
	ConfiguredAt time.Time
	Deleted      bool
	Version      uint64
}

// Exists reports whether the provider is configured now.
func (p SSOProvider) Exists() bool { return p.Name != "" && !p.Deleted }

// AzureMultiTenant reports whether an Azure AD provider accepts users of
// several directories ("organizations", "common"): their tokens are issued
// by each user's own tenant, which must then be on AllowedTenants.
func (p SSOProvider) AzureMultiTenant() bool {
	return p.Type == SSOAzure && (p.TenantID == "organizations" || p.TenantID == "common")
}

// AzureIssuerTemplate is the issuer that the discovery document of a
// multi-tenant Azure AD application (…/organizations/v2.0) announces:
// …/{tenantid}/v2.0, which each token fills in with its own tenant.
func (p SSOProvider) AzureIssuerTemplate() string {
	return strings.Replace(p.Issuer, "/"+p.TenantID+"/", "/"+AzureTenantPlaceholder+"/", 1)
}

// AzureTenantPlaceholder stands for the tenant in the issuer that Azure AD's
// multi-tenant discovery documents announce.
const AzureTenantPlaceholder = "{tenantid}"

// IdentityIssuer is the issuer that the identities signing in through p
// belong to: an identity is (issuer, subject), since a subject is unique
// only at its issuer. It is the OIDC issuer (for a multi-tenant Azure AD
// application the template …/{tenantid}/v2.0, the same for "organizations"
// and "common": Azure's subjects are unique per application, across
// directories), or the SAML IdP's entity ID.
func (p SSOProvider) IdentityIssuer() string {
	switch {
	case p.Type == SSOSAML:
		return p.EntityID
	case p.AzureMultiTenant():
		return p.AzureIssuerTemplate()
	}
	return p.Issuer
}

// OtherFormIssuers returns the issuers under which the other form of an
// Azure AD provider linked the identities that now sign in through p, so
// that switching between one directory and several keeps every user: a
// single-directory application (tenant_id <GUID>) links under
// …/<GUID>/v2.0, a multi-tenant one under the template …/{tenantid}/v2.0.
// For a multi-tenant provider it is the one directory's issuer of tid, the
// directory the login's ID token came from ("" for none); for a
// single-directory one the template. Azure's subjects are unique per
// application across directories, so the subject under either issuer is the
// same person. Nil for every other provider.
func (p SSOProvider) OtherFormIssuers(tid string) []string {
	if p.Type != SSOAzure || p.TenantID == "" {
		return nil
	}
	tmpl := p.AzureIssuerTemplate()
	if tmpl == p.Issuer {
		return nil // the tenant is not in the issuer: a form of its own
	}
	if !p.AzureMultiTenant() {
		return []string{tmpl}
	}
	if tid == "" || strings.ContainsAny(tid, "/{}") {
		return nil
	}
	return []string{strings.Replace(tmpl, "/"+AzureTenantPlaceholder+"/", "/"+tid+"/", 1)}
}

// objectIDPattern is an Azure AD object ID (a GUID), as its groups claim
// carries them.
var objectIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// groupsAreObjectIDs reports whether p's groups claim is the one Azure AD
// fills with the groups' object IDs ("groups", the default). An object ID
// is unique across directories, so no other directory can hand it to its
// users. Any other claim ("roles": app-role values, defined once for the
// application and assigned by each directory's administrators) carries
// strings every directory can assign, GUID-shaped or not.
func (p SSOProvider) groupsAreObjectIDs() bool {
	return p.GroupsClaim == "" || p.GroupsClaim == "groups"
}

// RoleMappingScoped reports whether m may apply to the logins of p without
// naming a directory: always, but for a multi-directory Azure AD provider,
// where only a group object ID of the groups claim does (no other directory
// can carry it). Mappings stored before Directory existed that are not
// scoped grant nothing (TenantRolesFor; UnscopedMappedGroups).
func (p SSOProvider) RoleMappingScoped(m RoleMapping) bool {
	if m.Directory != "" || !p.AzureMultiTenant() {
		return true
	}
	return p.groupsAreObjectIDs() && objectIDPattern.MatchString(m.Group)
}

// roleMappingApplies reports whether m applies to a login from directory
// tid (the ID token's, for a multi-directory provider; "" otherwise).
func (p SSOProvider) roleMappingApplies(m RoleMapping, tid string) bool {
	if !p.RoleMappingScoped(m) {
		return false
	}
	if m.Directory == "" || !p.AzureMultiTenant() {
		// A single directory's provider only takes its own directory's
		// tokens (the mapping may not name another one).
		return true
	}
	return tid != "" && SameEmail(tid, m.Directory) // A-Z folded only
}

// TenantRolesFor returns the tenant roles that groups, of a login from
// directory tid (SSOLogin.TenantID), map to: per tenant, the strongest role
// any of the groups maps to, through the mappings that apply to the login
// (a multi-directory Azure AD provider's: those of its directory, and
// object IDs; see RoleMappingScoped).
func (p SSOProvider) TenantRolesFor(groups []string, tid string) []TenantRole {
	if len(p.RoleMappings) == 0 || len(groups) == 0 {
		return nil
	}
	have := make(map[string]bool, len(groups))
	for _, g := range groups {
		have[g] = true
	}
	best := map[string]Role{}
	for _, m := range p.RoleMappings {
		if !have[m.Group] || !p.roleMappingApplies(m, tid) {
			continue
		}
		if cur, ok := best[m.Tenant]; !ok || roleRank(m.Role) > roleRank(cur) {
			best[m.Tenant] = m.Role
		}
	}
	out := make([]TenantRole, 0, len(best))
	for t, r := range best {
		out = append(out, TenantRole{Tenant: t, Role: r})
	}
	SortTenantRoles(out)
	return out
}

// UnscopedMappedGroups returns the groups among groups that a mapping of p
// names without the directory it needs (RoleMappingScoped: stored before
// mappings named one), each once: they grant nothing, and the login says
// so (a warning, counted).
func (p SSOProvider) UnscopedMappedGroups(groups []string) []string {
	if !p.AzureMultiTenant() || len(groups) == 0 {
		return nil
	}
	have := make(map[string]bool, len(groups))
	for _, g := range groups {
		have[g] = true
	}
	var out []string
	for _, m := range p.RoleMappings {
		if have[m.Group] && !p.RoleMappingScoped(m) {
			out = append(out, m.Group)
			delete(have, m.Group)
		}
	}
	return out
}

func roleRank(r Role) int {
	switch r {
	case RoleViewer:
		return 1
	case RoleEditor:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// SSO events.
type (
	// SSOProviderConfigured: an identity provider was configured, or its
	// configuration replaced. ClientSecretSealed is AES-GCM sealed with the
	// master key; it is never plain.
	SSOProviderConfigured struct {
		Provider           string        `json:"provider"`
		Type               SSOType       `json:"type"`
		Issuer             string        `json:"issuer,omitempty"`
		IssuerOverride     bool          `json:"issuer_override,omitempty"`
		Domain             string        `json:"domain,omitempty"`
		TenantID           string        `json:"tenant_id,omitempty"`
		AllowedTenants     []string      `json:"allowed_tenants,omitempty"`
		ClientID           string        `json:"client_id,omitempty"`
		ClientSecretSealed string        `json:"client_secret_sealed,omitempty"`
		EntityID           string        `json:"entity_id,omitempty"`
		SSOURL             string        `json:"sso_url,omitempty"`
		Certificate        string        `json:"certificate,omitempty"`
		GroupsClaim        string        `json:"groups_claim,omitempty"`
		RoleMappings       []RoleMapping `json:"role_mappings,omitempty"`
		LinkByEmail        bool          `json:"link_by_email,omitempty"`
		// TrustIdPMFA: an ID token's amr/acr naming a second factor counts
		// as one here (docs/mfa.md); omitted when false.
		TrustIdPMFA  bool      `json:"trust_idp_mfa,omitempty"`
		ConfiguredAt time.Time `json:"configured_at"`
	}
	// SSOProviderDeleted: the provider is no longer configured; logins through
	// it stop. Identities linked through it stay (a new configuration under
	// the same name finds them again).
	SSOProviderDeleted struct {
		Provider string `json:"provider"`
	}
	// SSOIdentityLinked: the identity (Issuer, Subject) is the user UserID;
	// it signed in through the provider named Provider. Events written before
	// identities were keyed by issuer have no Issuer: UpcastIdentityLinked
	// completes them.
	SSOIdentityLinked struct {
		Provider string    `json:"provider"`
		Issuer   string    `json:"issuer,omitempty"`
		Subject  string    `json:"subject"`
		UserID   string    `json:"user_id"`
		Method   string    `json:"method"` // "provisioned" or "verified_email"
		LinkedAt time.Time `json:"linked_at"`
	}
	// SSOIdentityUnlinked: a platform admin cut the identity (Issuer,
	// Subject) off the user UserID: the identity's next login is a first
	// one again (linked by verified e-mail, or a user provisioned).
	SSOIdentityUnlinked struct {
		Provider string `json:"provider"`
		Issuer   string `json:"issuer"`
		Subject  string `json:"subject"`
		UserID   string `json:"user_id"`
	}
	// SSOAssertionConsumed: a SAML assertion, or an OpenID Connect login's
	// flow (AssertionID "oidc-nonce:<hash of its nonce>"), was used for a
	// login; it is refused if presented again until ExpiresAt (and after,
	// by its expiry).
	SSOAssertionConsumed struct {
		Provider    string    `json:"provider"`
		AssertionID string    `json:"assertion_id"`
		ExpiresAt   time.Time `json:"expires_at"`
	}
	// SSOUserAdopted: an identity of Provider links to the existing user
	// UserID by its verified e-mail in this batch (AggregateSSOAdoption).
	// It changes no state: its subject's sequence is what concurrent links
	// to the user contend on.
	SSOUserAdopted struct {
		UserID   string `json:"user_id"`
		Provider string `json:"provider"`
	}
)

// SSO event type names.
const (
	TypeSSOProviderConfigured = "sso.provider_configured"
	TypeSSOProviderDeleted    = "sso.provider_deleted"
	TypeSSOIdentityLinked     = "sso.identity_linked"
	TypeSSOIdentityUnlinked   = "sso.identity_unlinked"
	TypeSSOAssertionConsumed  = "sso.assertion_consumed"
	TypeSSOUserAdopted        = "sso.user_adopted"
)

func (SSOProviderConfigured) EventType() string { return TypeSSOProviderConfigured }
func (SSOProviderDeleted) EventType() string    { return TypeSSOProviderDeleted }
func (SSOIdentityLinked) EventType() string     { return TypeSSOIdentityLinked }
func (SSOIdentityUnlinked) EventType() string   { return TypeSSOIdentityUnlinked }
func (SSOAssertionConsumed) EventType() string  { return TypeSSOAssertionConsumed }
func (SSOUserAdopted) EventType() string        { return TypeSSOUserAdopted }

// Identity link methods recorded in SSOIdentityLinked.
const (
	LinkProvisioned   = "provisioned"
	LinkVerifiedEmail = "verified_email"
)

// SSOProviderCommand is a command on the SSO provider aggregate: one of the
// types below. The set is closed (the marker method is unexported), so that
// handing DecideSSOProvider another aggregate's command does not compile.
type SSOProviderCommand interface{ ssoProviderCommand() }

// Commands on the SSO provider aggregate.
type (
	// ConfigureSSOProvider creates or replaces a provider's configuration.
	// ClientSecretSealed is already sealed. Now also decides whether the SAML
	// certificate has expired.
	ConfigureSSOProvider struct {
		Name               string
		Type               SSOType
		Issuer             string // optional for Okta and Azure (derived), required for generic OIDC
		Domain             string
		TenantID           string
		AllowedTenants     []string
		ClientID           string
		ClientSecretSealed string
		// KeepClientSecret: no secret was given (ClientSecretSealed is
		// empty); the stored one is kept when the provider exists with the
		// same type, issuer and client_id — an edit of its mappings or
		// options, the secret being redacted everywhere it is shown. A
		// changed client or issuer needs the secret again: the stored one
		// would otherwise be sent to another token endpoint.
		KeepClientSecret bool
		// ClientSecretRedacted: the secret was given as RedactedClientSecret,
		// the placeholder every answer shows (a configuration posted back as
		// it was read): KeepClientSecret, and a refusal names it.
		ClientSecretRedacted bool
		EntityID             string
		SSOURL               string
		Certificate          string
		GroupsClaim          string
		RoleMappings         []RoleMapping
		LinkByEmail          bool
		TrustIdPMFA          bool
		Now                  time.Time
	}
	// DeleteSSOProvider removes a provider's configuration.
	DeleteSSOProvider struct{}
)

// RedactedClientSecret stands for a client secret in every answer. Sent
// back as the secret, it means "keep the stored one", as an absent one does
// (ConfigureSSOProvider.ClientSecretRedacted): stored as given, every login
// through the provider failed at the IdP (re-check 20r6).
const RedactedClientSecret = "[redacted]"

var (
	providerNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	hostnamePattern     = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`)
	azureTenantPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,127}$`)
	claimNamePattern    = regexp.MustCompile(`^[A-Za-z0-9_:./-]{1,128}$`)
)

// checkOktaDomain accepts a bare host name (your-company.okta.com). Okta's
// issuer is https://<domain>, exactly: a scheme, a port or a path would make
// an issuer that Okta never announces.
func checkOktaDomain(d string) error {
	const want = "must be a host name like your-company.okta.com"
	switch {
	case strings.Contains(d, "://"):
		return Invalid("domain", "%s, without scheme (https://)", want)
	case strings.ContainsAny(d, "/?#"):
		return Invalid("domain", "%s, without path", want)
	case strings.Contains(d, ":"):
		return Invalid("domain", "%s, without port: Okta's issuer is https:// and the domain alone", want)
	case !hostnamePattern.MatchString(d) || len(d) > 253:
		return Invalid("domain", "%s", want)
	}
	return nil
}

// AzureTenantIsDomain reports whether an Azure AD tenant is given as one of
// the directory's domain names (contoso.onmicrosoft.com) rather than its
// ID: Azure AD's discovery for it announces the issuer with the directory's
// ID (…/<guid>/v2.0), which is never the one the domain implies.
func AzureTenantIsDomain(tenant string) bool { return strings.Contains(tenant, ".") }

// ValidSSOProviderName reports whether s can name a provider (and a URL
// path segment).
func ValidSSOProviderName(s string) bool { return providerNamePattern.MatchString(s) }

// ErrCertificate is wrapped by the errors of ParseCertificatesPEM.
var ErrCertificate = errors.New("domain: invalid certificate")

// MaxSAMLCertificates is how many signing certificates a SAML provider may
// have at once: the one in use and those the IdP publishes ahead of a
// rollover (Entra ID and AD FS announce the next one and switch on their
// own). An assertion signed under any of them is accepted.
const MaxSAMLCertificates = 3

// ParseCertificatesPEM parses the 1 to MaxSAMLCertificates PEM "CERTIFICATE"
// blocks of s, one after the other, and checks that each is valid at now.
func ParseCertificatesPEM(s string, now time.Time) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	several := strings.Count(s, "-----BEGIN") > 1
	rest := []byte(strings.TrimSpace(s))
	for len(rest) > 0 {
		n := len(certs) + 1
		// bad names the certificate by its place if there are several.
		bad := func(format string, args ...any) error {
			if several {
				format = "PEM certificate " + strconv.Itoa(n) + " " + format
			}
			return Invalid("certificate", format, args...)
		}
		var block *pem.Block
		block, rest = pem.Decode(rest)
		switch {
		case block == nil && n == 1:
			return nil, Invalid("certificate", "is not a PEM certificate (-----BEGIN CERTIFICATE----- …)")
		case block == nil:
			return nil, Invalid("certificate", "holds something else than PEM certificates after PEM certificate %d", n-1)
		case block.Type != "CERTIFICATE":
			return nil, bad("is a PEM block %q, want CERTIFICATE", block.Type)
		case n > MaxSAMLCertificates:
			return nil, Invalid("certificate", "holds more than %d PEM certificates: keep the one the IdP signs with and the next ones it publishes", MaxSAMLCertificates)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, bad("is not a valid X.509 certificate")
		}
		if now.After(cert.NotAfter) {
			return nil, bad("expired at %s", cert.NotAfter.UTC().Format(time.RFC3339))
		}
		if now.Before(cert.NotBefore) {
			return nil, bad("is not valid before %s", cert.NotBefore.UTC().Format(time.RFC3339))
		}
		certs = append(certs, cert)
		rest = []byte(strings.TrimSpace(string(rest)))
	}
	if len(certs) == 0 {
		return nil, Invalid("certificate", "is not a PEM certificate (-----BEGIN CERTIFICATE----- …)")
	}
	return certs, nil
}

// checkEndpointURL accepts an absolute https URL, or http on a loopback
// host (local test identity providers), without user info or fragment, and
// without a hiddenRune.
func checkEndpointURL(field, raw string) error {
	if err := checkNoHidden(field, raw); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return Invalid(field, "must be an absolute https URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return Invalid(field, "must be an absolute https URL")
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (ConfigureSSOProvider) ssoProviderCommand() {}
func (DeleteSSOProvider) ssoProviderCommand()    {}

// DecideSSOProvider decides a command against a provider's state; a command
// it does not know (nil, or a pointer to a command) is a *ValidationError on
// "command".
func DecideSSOProvider(p SSOProvider, cmd SSOProviderCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case ConfigureSSOProvider:
		ev, err := decideConfigureSSO(p, c)
		if err != nil {
			return nil, err
		}
		return []Event{ev}, nil
	case DeleteSSOProvider:
		if !p.Exists() {
			return nil, ErrNotFound
		}
		return []Event{SSOProviderDeleted{Provider: p.Name}}, nil
	}
	return nil, Invalid("command", "unknown SSO command %T", cmd)
}

func decideConfigureSSO(p SSOProvider, c ConfigureSSOProvider) (SSOProviderConfigured, error) {
	ev := SSOProviderConfigured{
		Provider: c.Name, Type: c.Type, ClientID: strings.TrimSpace(c.ClientID),
		ClientSecretSealed: c.ClientSecretSealed, GroupsClaim: strings.TrimSpace(c.GroupsClaim),
		LinkByEmail: c.LinkByEmail, TrustIdPMFA: c.TrustIdPMFA, ConfiguredAt: c.Now.UTC(),
	}
	if !ValidSSOProviderName(c.Name) {
		return ev, Invalid("name", "must be 1-63 lower-case letters, digits and -, starting with a letter or digit")
	}
	issuer := strings.TrimSpace(c.Issuer)
	if issuer != "" {
		if err := checkEndpointURL("issuer", issuer); err != nil {
			return ev, err
		}
		// The issuer is an identifier, compared exactly with the one that
		// discovery announces and with the "iss" of ID tokens: it is kept as
		// given, trailing slash included (Auth0's issuers end in "/";
		// discovery drops it before appending "/.well-known/…").
		ev.Issuer, ev.IssuerOverride = issuer, true
	}
	switch c.Type {
	case SSOOkta:
		d := strings.ToLower(strings.TrimSpace(c.Domain))
		if d == "" {
			return ev, Invalid("domain", "is required (your-company.okta.com)")
		}
		if err := checkOktaDomain(d); err != nil {
			return ev, err
		}
		ev.Domain = d
		if ev.Issuer == "" {
			ev.Issuer = "https://" + d
		}
	case SSOAzure:
		// In lower case, as Azure AD announces it in its issuer and tid: an
		// upper-case directory ID made an issuer that no discovery document
		// or token matched (outside check 17i).
		t := strings.ToLower(strings.TrimSpace(c.TenantID))
		if t == "" {
			return ev, Invalid("tenant_id", "is required")
		}
		if !azureTenantPattern.MatchString(t) {
			return ev, Invalid("tenant_id", "must be a directory (tenant) ID or domain")
		}
		ev.TenantID = t
		if ev.Issuer == "" {
			ev.Issuer = "https://login.microsoftonline.com/" + t + "/v2.0"
		}
		seen := map[string]bool{}
		for _, a := range c.AllowedTenants {
			a = strings.ToLower(strings.TrimSpace(a))
			if !azureTenantPattern.MatchString(a) || a == "common" || a == "organizations" || a == "consumers" {
				return ev, Invalid("allowed_tenants", "%q is not a directory (tenant) ID", a)
			}
			if !seen[a] {
				seen[a] = true
				ev.AllowedTenants = append(ev.AllowedTenants, a)
			}
		}
		sort.Strings(ev.AllowedTenants)
		if (t == "organizations" || t == "common") && len(ev.AllowedTenants) == 0 {
			return ev, Invalid("allowed_tenants", "a multi-tenant Azure AD application (tenant_id %q) needs the list of directory IDs whose users may sign in", t)
		}
		if t == "consumers" {
			return ev, Invalid("tenant_id", "personal Microsoft accounts (consumers) are not supported")
		}
	case SSOOIDC:
		if ev.Issuer == "" {
			return ev, Invalid("issuer", "is required")
		}
		switch c.Name {
		case string(SSOOkta), string(SSOAzure), string(SSOSAML):
			return ev, Invalid("name", "%q is reserved for its own provider type", c.Name)
		}
	case SSOSAML:
		if c.Name != string(SSOSAML) {
			return ev, Invalid("name", "the SAML provider is named \"saml\"")
		}
		ev.Issuer, ev.IssuerOverride = "", false
		ev.EntityID = strings.TrimSpace(c.EntityID)
		if ev.EntityID == "" || len(ev.EntityID) > 1024 {
			return ev, Invalid("entity_id", "is required (at most 1024 characters)")
		}
		if err := checkNoHidden("entity_id", ev.EntityID); err != nil {
			return ev, err
		}
		ev.SSOURL = strings.TrimSpace(c.SSOURL)
		if ev.SSOURL == "" {
			return ev, Invalid("sso_url", "is required")
		}
		if err := checkEndpointURL("sso_url", ev.SSOURL); err != nil {
			return ev, err
		}
		if strings.TrimSpace(c.Certificate) == "" {
			return ev, Invalid("certificate", "is required")
		}
		if _, err := ParseCertificatesPEM(c.Certificate, c.Now); err != nil {
			return ev, err
		}
		ev.Certificate = strings.TrimSpace(c.Certificate) + "\n"
	default:
		return ev, Invalid("type", "must be okta, azure, oidc or saml")
	}
	if c.LinkByEmail && c.Type == SSOAzure {
		return ev, Invalid("link_by_email", "is not available for Azure AD: its email claim is whatever a directory holds for the user, verified by no one, so an Azure login is never linked by e-mail")
	}
	if c.TrustIdPMFA && !c.Type.IsOIDC() {
		return ev, Invalid("trust_idp_mfa", "applies to OpenID Connect providers (the ID token's amr/acr); a SAML assertion's authentication context is not read")
	}
	if c.Type.IsOIDC() {
		if ev.ClientID == "" {
			return ev, Invalid("client_id", "is required")
		}
		if err := checkNoHidden("client_id", ev.ClientID); err != nil {
			return ev, err
		}
		if ev.ClientSecretSealed == "" && c.KeepClientSecret && p.Exists() &&
			p.Type == c.Type && p.Issuer == ev.Issuer && p.ClientID == ev.ClientID {
			ev.ClientSecretSealed = p.ClientSecretSealed
		}
		if ev.ClientSecretSealed == "" {
			if c.ClientSecretRedacted {
				return ev, Invalid("client_secret", "%q stands for the stored secret, kept only for the same provider with the same type, issuer and client_id: give the secret itself", RedactedClientSecret)
			}
			if c.KeepClientSecret && p.Exists() {
				return ev, Invalid("client_secret", "is required when the type, issuer or client_id changes (the stored secret is kept only for the same client at the same issuer)")
			}
			return ev, Invalid("client_secret", "is required")
		}
	} else {
		ev.ClientID, ev.ClientSecretSealed = "", ""
	}
	if ev.GroupsClaim != "" && !claimNamePattern.MatchString(ev.GroupsClaim) {
		return ev, Invalid("groups_claim", "must be a claim (attribute) name")
	}
	seen := map[[3]string]bool{}
	for _, m := range c.RoleMappings {
		g := strings.TrimSpace(m.Group)
		if g == "" || len(g) > 256 {
			return ev, Invalid("role_mappings", "group is required (at most 256 characters)")
		}
		if hasHiddenRuneInName(g) {
			return ev, Invalid("role_mappings", "a group "+hiddenMessage)
		}
		if !ValidTenantID(m.Tenant) {
			return ev, Invalid("role_mappings", "tenant %q is not a valid tenant id", m.Tenant)
		}
		r, err := ParseRole(string(m.Role))
		if err != nil {
			return ev, Invalid("role_mappings", "unknown role %q (viewer, editor or admin)", m.Role)
		}
		dir, err := mappingDirectory(ev, c.Type, g, m)
		if err != nil {
			return ev, err
		}
		k := [3]string{g, m.Tenant, dir}
		if seen[k] {
			if dir != "" {
				return ev, Invalid("role_mappings", "group %q is mapped twice in tenant %q for directory %q", g, m.Tenant, dir)
			}
			return ev, Invalid("role_mappings", "group %q is mapped twice in tenant %q", g, m.Tenant)
		}
		seen[k] = true
		ev.RoleMappings = append(ev.RoleMappings, RoleMapping{Group: g, Tenant: m.Tenant, Role: r, Directory: dir})
	}
	if len(ev.RoleMappings) > 500 {
		return ev, Invalid("role_mappings", "at most 500 mappings")
	}
	return ev, nil
}

// mappingDirectory checks the directory of the mapping m (its group g) of
// the provider ev is configuring, and returns it in lower case. Only Azure
// AD mappings name one: a single directory's provider its own (or none), a
// multi-directory provider one of allowed_tenants — required unless the
// group is an object ID of the groups claim (RoleMappingScoped).
func mappingDirectory(ev SSOProviderConfigured, typ SSOType, g string, m RoleMapping) (string, error) {
	dir := strings.ToLower(strings.TrimSpace(m.Directory))
	name := func() string { return fmt.Sprintf("group %q in tenant %q", g, m.Tenant) }
	if typ != SSOAzure {
		if dir != "" {
			return "", Invalid("role_mappings", "%s: directory applies to Azure AD mappings only", name())
		}
		return "", nil
	}
	p := SSOProvider{Type: typ, TenantID: ev.TenantID, GroupsClaim: ev.GroupsClaim}
	if !p.AzureMultiTenant() {
		if dir != "" && dir != ev.TenantID {
			return "", Invalid("role_mappings", "%s: directory %q is not the provider's directory (tenant_id %q)", name(), dir, ev.TenantID)
		}
		return dir, nil
	}
	if dir == "" {
		if !p.RoleMappingScoped(RoleMapping{Group: g}) {
			return "", Invalid("role_mappings", "%s: a multi-directory Azure AD provider's mapping must name its directory (\"directory\": one of allowed_tenants) — app roles and group names are the same strings in every directory, which each directory's administrators assign; only a group object ID of the groups claim is unique", name())
		}
		return "", nil
	}
	for _, a := range ev.AllowedTenants {
		if dir == a {
			return dir, nil
		}
	}
	return "", Invalid("role_mappings", "%s: directory %q is not one of allowed_tenants", name(), dir)
}

// EvolveSSOProvider applies one event to a provider's state.
func EvolveSSOProvider(p SSOProvider, e Event) SSOProvider {
	switch ev := Deref(e).(type) {
	case SSOProviderConfigured:
		p = SSOProvider{
			Name: ev.Provider, Type: ev.Type, Issuer: ev.Issuer, IssuerOverride: ev.IssuerOverride,
			Domain: ev.Domain, TenantID: ev.TenantID, AllowedTenants: ev.AllowedTenants,
			ClientID: ev.ClientID, ClientSecretSealed: ev.ClientSecretSealed,
			EntityID: ev.EntityID, SSOURL: ev.SSOURL, Certificate: ev.Certificate,
			GroupsClaim: ev.GroupsClaim, RoleMappings: ev.RoleMappings, LinkByEmail: ev.LinkByEmail,
			TrustIdPMFA: ev.TrustIdPMFA, ConfiguredAt: ev.ConfiguredAt, Version: p.Version,
		}
	case SSOProviderDeleted:
		p.Deleted = true
	default:
		return p
	}
	p.Version++
	return p
}

// UpcastIdentityLinked completes a link written before identities were keyed
// by issuer (no Issuer, only the provider's name): it was linked through the
// provider as configured when the link was appended — p, the provider's
// state at that point of the stream — so its issuer is p's identity issuer.
// History is not rewritten: the event is completed as it is read.
func UpcastIdentityLinked(ev SSOIdentityLinked, p SSOProvider) SSOIdentityLinked {
	if ev.Issuer == "" && p.Name == ev.Provider {
		ev.Issuer = p.IdentityIssuer()
	}
	return ev
}

// SSOLogin is what an identity provider asserted about a user, after the
// HTTP layer verified it (signature, issuer, audience, nonce or
// InResponseTo, expiry).
type SSOLogin struct {
	Provider      string
	Issuer        string // the provider's IdentityIssuer the answer was verified against
	Subject       string
	Email         string
	EmailVerified bool
	Username      string // a preferred username, when the IdP gives one
	Groups        []string
	// TenantID is the Azure AD directory (tid) whose issuer a multi-tenant
	// application's ID token was verified against; "" otherwise.
	TenantID string
	// MFA: the provider asserted a second factor of its own (amr/acr) and
	// is trusted for it (SSOProvider.TrustIdPMFA), so no second factor is
	// asked here (mfa.go).
	MFA bool
}

// Validate checks the asserted identity's shape.
func (l SSOLogin) Validate() error {
	if l.Subject == "" || len(l.Subject) > 1024 {
		return Invalid("subject", "the identity provider sent no usable subject")
	}
	if l.Issuer == "" {
		return Invalid("issuer", "the identity has no issuer")
	}
	return nil
}

// LinksByEmail reports whether a first login l through p may link to the
// one active user with its e-mail address: p links by e-mail and says the
// address is verified. Azure AD never does: its email claim is whatever a
// directory holds for the user, set by that directory's administrators and
// verified by no one (and the email_verified claim it may carry is a
// directory's own customization), so a login through it is never linked by
// e-mail, whatever the configuration says (link_by_email is refused for it
// since, but configurations stored before may have it).
func (p SSOProvider) LinksByEmail(l SSOLogin) bool {
	return p.LinkByEmail && p.Type != SSOAzure && l.EmailVerified && l.Email != ""
}

// VouchesForEmail reports whether p vouches for l's e-mail address, so that a
// user it provisions records it, and takes it as its username: the address
// is verified (email_verified, or asserted by a SAML IdP), or p is an Azure AD
// application of a single directory, whose own administrators set its
// users' addresses. An address no one vouches for is not recorded: it would
// be another person's address on the new user, and with it two active users
// with that address, which keeps the real owner's later login from linking
// (LinksByEmail needs exactly one).
func (p SSOProvider) VouchesForEmail(l SSOLogin) bool {
	if l.Email == "" {
		return false
	}
	if p.Type == SSOAzure {
		return !p.AzureMultiTenant()
	}
	return l.EmailVerified
}

// VouchesForUsername reports whether l's preferred username may name a user
// p provisions. A plain name claims nothing but itself. One shaped like an
// e-mail address claims that address, as the e-mail as username would: it
// is taken only where p vouches for its directory's names (a SAML IdP's
// asserted attribute; an Azure AD single-directory application's
// preferred_username, the UPN its administrators set), or where it is the
// very address p vouches for (VouchesForEmail). An OIDC provider's
// preferred_username may be whatever the user chose (OpenID Connect Core 5.1:
// relying parties must not rely on it), and a multi-tenant application's
// is whatever any directory set: taken as a username, an unverified
// "boss@corp.example" would keep that name, and its owner's own later
// login, from the real owner.
func (p SSOProvider) VouchesForUsername(l SSOLogin) bool {
	switch name := strings.TrimSpace(l.Username); {
	case !strings.Contains(name, "@"):
		return true
	case p.Type == SSOSAML:
		return true
	case p.Type == SSOAzure && !p.AzureMultiTenant():
		return true
	default:
		return p.VouchesForEmail(l) && SameEmail(name, strings.TrimSpace(l.Email))
	}
}

// ProvisionUsernames lists the usernames to try, in order, for a user
// provisioned from l: the e-mail address when vouched for (see
// SSOProvider.VouchesForEmail) and the preferred username when vouched for
// (SSOProvider.VouchesForUsername), when they are valid usernames, then
// "<provider>-<fallback>" (fallback: a hash of the subject), which is always
// valid.
func (l SSOLogin) ProvisionUsernames(fallback string, emailVouched, usernameVouched bool) []string {
	var out []string
	var names []string
	if emailVouched {
		names = append(names, l.Email)
	}
	if usernameVouched {
		names = append(names, l.Username)
	}
	for _, s := range names {
		s = strings.TrimSpace(s)
		if s != "" && usernamePattern.MatchString(s) && !LooksLikeUserID(s) {
			out = append(out, s)
		}
	}
	return append(out, l.Provider+"-"+fallback)
}

// ProvisionEmail returns the e-mail to record for a provisioned user: the
// asserted address when vouched for (see SSOProvider.VouchesForEmail) and a
// plain address without hidden characters (one CreateUser takes), else
// none: such an address does not stop the login.
func (l SSOLogin) ProvisionEmail(vouched bool) string {
	if !vouched || checkEmail(l.Email) != nil {
		return ""
	}
	return l.Email
}
