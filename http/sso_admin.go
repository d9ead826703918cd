package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events/commands"
)

// Identity provider configuration (platform admins only):
//
//	POST   /api/v1/admin/sso/okta   {domain, client_id, client_secret, issuer?}
//	POST   /api/v1/admin/sso/azure  {tenant_id, client_id, client_secret, issuer?, allowed_tenants?}
//	POST   /api/v1/admin/sso/saml   {entity_id, sso_url, certificate}
//	POST   /api/v1/admin/sso/oidc   {name, issuer, client_id, client_secret}
//	GET    /api/v1/admin/sso        every provider, secrets redacted
//	GET    /api/v1/admin/sso/{provider}
//	DELETE /api/v1/admin/sso/{provider}
//
// Every POST also takes groups_claim, role_mappings [{group, tenant, role,
// directory?}] (directory: Azure AD only)
// and link_by_email; the OpenID Connect ones trust_idp_mfa (docs/mfa.md).
// Posting again replaces the configuration; client_secret may then be left
// out, which keeps the stored one for the same client at the same issuer
// (the answers redact it, so an edit could not send it back).

type roleMappingJSON struct {
	Group  string `json:"group"`
	Tenant string `json:"tenant"`
	Role   string `json:"role"`
}

// ssoRoleMappingJSON is a provider's role mapping: a SCIM connection's
// (roleMappingJSON) and the directory an Azure AD mapping applies to
// (domain.RoleMapping.Directory), which SCIM mappings do not take.
type ssoRoleMappingJSON struct {
	Group     string `json:"group"`
	Tenant    string `json:"tenant"`
	Role      string `json:"role"`
	Directory string `json:"directory,omitempty"`
}

// ssoOptions are the options every provider type takes.
type ssoOptions struct {
	GroupsClaim  string               `json:"groups_claim,omitempty"`
	RoleMappings []ssoRoleMappingJSON `json:"role_mappings,omitempty"`
	LinkByEmail  bool                 `json:"link_by_email,omitempty"`
	TrustIdPMFA  bool                 `json:"trust_idp_mfa,omitempty"`
}

func (o ssoOptions) apply(in *commands.SSOProviderInput) {
	in.GroupsClaim, in.LinkByEmail, in.TrustIdPMFA = o.GroupsClaim, o.LinkByEmail, o.TrustIdPMFA
	for _, m := range o.RoleMappings {
		in.RoleMappings = append(in.RoleMappings, domain.RoleMapping{Group: m.Group, Tenant: m.Tenant, Role: domain.Role(m.Role), Directory: m.Directory})
	}
}

type oktaRequest struct {
	Domain       string `json:"domain"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	Issuer       string `json:"issuer,omitempty"`
	ssoOptions
}

type azureRequest struct {
	TenantID       string   `json:"tenant_id"`
	ClientID       string   `json:"client_id"`
	ClientSecret   string   `json:"client_secret,omitempty"`
	Issuer         string   `json:"issuer,omitempty"`
	AllowedTenants []string `json:"allowed_tenants,omitempty"`
	ssoOptions
}

type samlRequest struct {
	EntityID    string `json:"entity_id"`
	SSOURL      string `json:"sso_url"`
	Certificate string `json:"certificate"`
	ssoOptions
}

type oidcRequest struct {
	Name         string `json:"name"`
	Issuer       string `json:"issuer"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	ssoOptions
}

// ssoProviderJSON is a provider as the admin API shows it: never the secret.
type ssoProviderJSON struct {
	Name           string               `json:"name"`
	Type           string               `json:"type"`
	Issuer         string               `json:"issuer,omitempty"`
	Domain         string               `json:"domain,omitempty"`
	TenantID       string               `json:"tenant_id,omitempty"`
	AllowedTenants []string             `json:"allowed_tenants,omitempty"`
	ClientID       string               `json:"client_id,omitempty"`
	ClientSecret   string               `json:"client_secret,omitempty"`
	EntityID       string               `json:"entity_id,omitempty"`
	SSOURL         string               `json:"sso_url,omitempty"`
	Certificate    *certJSON            `json:"certificate,omitempty"`  // SAML: the first of Certificates
	Certificates   []certJSON           `json:"certificates,omitempty"` // SAML: every configured certificate, in order
	GroupsClaim    string               `json:"groups_claim,omitempty"`
	RoleMappings   []ssoRoleMappingJSON `json:"role_mappings"`
	LinkByEmail    bool                 `json:"link_by_email"`
	TrustIdPMFA    bool                 `json:"trust_idp_mfa,omitempty"`
	LoginURL       string               `json:"login_url"`
	CallbackURL    string               `json:"callback_url,omitempty"` // register at the IdP (OIDC redirect URI)
	MetadataURL    string               `json:"metadata_url,omitempty"` // SAML SP metadata
	ACSURL         string               `json:"acs_url,omitempty"`
	ConfiguredAt   string               `json:"configured_at"`
	// Warnings: what configuring it could not check (the IdP was not
	// reachable); only in the answer to POST.
	Warnings []string `json:"warnings,omitempty"`
}

type certJSON struct {
	Subject   string `json:"subject"`
	NotAfter  string `json:"not_after"`
	NotBefore string `json:"not_before"`
}

// redactedSecret stands for a client secret in every answer (posted back,
// it keeps the stored one: domain.RedactedClientSecret).
const redactedSecret = domain.RedactedClientSecret

func (s *Server) toProviderJSON(c *fiber.Ctx, p domain.SSOProvider) ssoProviderJSON {
	base := s.baseURL(c)
	out := ssoProviderJSON{
		Name: p.Name, Type: string(p.Type), Issuer: p.Issuer, Domain: p.Domain, TenantID: p.TenantID,
		AllowedTenants: p.AllowedTenants, ClientID: p.ClientID, EntityID: p.EntityID, SSOURL: p.SSOURL,
		GroupsClaim: p.GroupsClaim, RoleMappings: []ssoRoleMappingJSON{}, LinkByEmail: p.LinkByEmail, TrustIdPMFA: p.TrustIdPMFA,
		LoginURL: base + flowPath + p.Name + "/login", ConfiguredAt: rfc3339(p.ConfiguredAt),
	}
	if p.ClientSecretSealed != "" {
		out.ClientSecret = redactedSecret
	}
	for _, m := range p.RoleMappings {
		out.RoleMappings = append(out.RoleMappings, ssoRoleMappingJSON{Group: m.Group, Tenant: m.Tenant, Role: string(m.Role), Directory: m.Directory})
	}
	if p.Type == domain.SSOSAML {
		out.MetadataURL, out.ACSURL = base+flowPath+"saml/metadata", base+flowPath+"saml/acs"
		if certs, err := parseCertsLenient(p.Certificate); err == nil {
			for _, cert := range certs {
				out.Certificates = append(out.Certificates, certJSON{
					Subject: cert.Subject.String(), NotAfter: rfc3339(cert.NotAfter), NotBefore: rfc3339(cert.NotBefore),
				})
			}
			out.Certificate = &out.Certificates[0]
		}
	} else {
		out.CallbackURL = base + flowPath + p.Name + "/callback"
	}
	return out
}

func requirePlatformAdmin(c *fiber.Ctx) error {
	if cl := caller(c); cl == nil || !cl.IsPlatformAdmin() {
		return errForbidden
	}
	return nil
}

// configureSSO: POST /api/v1/admin/sso/{okta|azure|saml|oidc}.
func (s *Server) configureSSO(c *fiber.Ctx) error {
	if err := requirePlatformAdmin(c); err != nil {
		return err
	}
	if s.deps.SSO == nil {
		return errSSONotConfig
	}
	var in commands.SSOProviderInput
	switch kind := domain.SSOType(c.Params("type")); kind {
	case domain.SSOOkta:
		var req oktaRequest
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
		if err := required("domain", req.Domain, "client_id", req.ClientID); err != nil {
			return err
		}
		in = commands.SSOProviderInput{Name: string(kind), Type: kind, Domain: req.Domain, ClientID: req.ClientID, ClientSecret: req.ClientSecret, Issuer: req.Issuer}
		req.ssoOptions.apply(&in)
	case domain.SSOAzure:
		var req azureRequest
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
		if err := required("tenant_id", req.TenantID, "client_id", req.ClientID); err != nil {
			return err
		}
		in = commands.SSOProviderInput{
			Name: string(kind), Type: kind, TenantID: req.TenantID, ClientID: req.ClientID,
			ClientSecret: req.ClientSecret, Issuer: req.Issuer, AllowedTenants: req.AllowedTenants,
		}
		req.ssoOptions.apply(&in)
	case domain.SSOSAML:
		var req samlRequest
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
		if err := required("entity_id", req.EntityID, "sso_url", req.SSOURL, "certificate", req.Certificate); err != nil {
			return err
		}
		in = commands.SSOProviderInput{Name: string(kind), Type: kind, EntityID: req.EntityID, SSOURL: req.SSOURL, Certificate: req.Certificate}
		req.ssoOptions.apply(&in)
	case domain.SSOOIDC:
		var req oidcRequest
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
		if err := required("name", req.Name, "issuer", req.Issuer, "client_id", req.ClientID); err != nil {
			return err
		}
		in = commands.SSOProviderInput{Name: req.Name, Type: kind, Issuer: req.Issuer, ClientID: req.ClientID, ClientSecret: req.ClientSecret}
		req.ssoOptions.apply(&in)
	default:
		return errNotFound
	}
	// Before anything is stored: what can be known to never work is refused,
	// an IdP that cannot be asked now is accepted with a warning.
	var warnings []string
	in.Check = func(ctx context.Context, p domain.SSOProvider) error {
		w, err := s.checkSSOProvider(ctx, p)
		warnings = w
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	p, created, err := s.deps.SSO.ConfigureSSOProvider(ctx, s.meta(c), in)
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	out := s.toProviderJSON(c, p)
	out.Warnings = warnings
	return c.Status(status).JSON(out)
}

// listSSO: GET /api/v1/admin/sso.
func (s *Server) listSSO(c *fiber.Ctx) error {
	if err := requirePlatformAdmin(c); err != nil {
		return err
	}
	if _, err := queryParams(c); err != nil { // it takes none
		return err
	}
	out := []ssoProviderJSON{}
	if s.deps.SSOModel != nil {
		for _, p := range s.deps.SSOModel.SSOProviders() {
			out = append(out, s.toProviderJSON(c, p))
		}
	}
	return c.JSON(fiber.Map{"providers": out})
}

// getSSO: GET /api/v1/admin/sso/{provider}.
func (s *Server) getSSO(c *fiber.Ctx) error {
	if err := requirePlatformAdmin(c); err != nil {
		return err
	}
	p, err := s.ssoProvider(c.Params("provider"))
	if err != nil {
		return err
	}
	return c.JSON(s.toProviderJSON(c, p))
}

// deleteSSO: DELETE /api/v1/admin/sso/{provider}.
func (s *Server) deleteSSO(c *fiber.Ctx) error {
	if err := requirePlatformAdmin(c); err != nil {
		return err
	}
	if _, err := s.ssoProvider(c.Params("provider")); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	if err := s.deps.SSO.DeleteSSOProvider(ctx, s.meta(c), c.Params("provider")); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return errSSONotConfig
		}
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// unlinkSSOIdentity cuts an identity of a provider (?subject=, as the
// provider names the person: OpenID Connect's sub, SAML's NameID) off its
// user, so that its next login is a first one again. Platform admins only.
func (s *Server) unlinkSSOIdentity(c *fiber.Ctx) error {
	if err := requirePlatformAdmin(c); err != nil {
		return err
	}
	if _, err := s.ssoProvider(c.Params("provider")); err != nil {
		return err
	}
	q := c.Context().QueryArgs()
	if q.Len() != 1 || len(q.PeekMulti("subject")) != 1 || len(q.Peek("subject")) == 0 {
		return validation("subject: give the identity as exactly one non-empty query parameter subject (and nothing else)")
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	if _, err := s.deps.SSO.UnlinkSSOIdentity(ctx, s.meta(c), c.Params("provider"), string(q.Peek("subject"))); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return errSSONotLinked
		}
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// discoveryCheckTimeout bounds the discovery that configuring a provider
// makes.
const discoveryCheckTimeout = 5 * time.Second

// discoveryDoc is what the configuration check reads of a discovery document.
type discoveryDoc struct {
	Issuer   string `json:"issuer"`
	AuthURL  string `json:"authorization_endpoint"`
	TokenURL string `json:"token_endpoint"`
	JWKSURL  string `json:"jwks_uri"`
}

// checkSSOProvider asks an OpenID Connect provider for its discovery
// document, as its logins will, and refuses a configuration that can never
// work: the document announces another issuer than the one logins will
// compare with (a trailing slash too many or too few, an Azure AD tenant
// given by a domain name), or lacks an endpoint. An IdP that cannot be asked
// (unreachable, an error status, not a discovery document) is accepted with
// a warning: IdPs are sometimes configured before they are reachable. An
// Azure AD tenant given by a domain name without an issuer of its own is
// refused even then, since Azure AD always announces the directory's ID.
func (s *Server) checkSSOProvider(ctx context.Context, p domain.SSOProvider) ([]string, error) {
	if !p.Type.IsOIDC() {
		return nil, nil
	}
	wellKnown := strings.TrimSuffix(p.Issuer, "/") + "/.well-known/openid-configuration"
	doc, why := s.fetchDiscovery(ctx, wellKnown)
	if why != "" {
		if p.Type == domain.SSOAzure && !p.IssuerOverride && domain.AzureTenantIsDomain(p.TenantID) {
			return nil, domain.Invalid("tenant_id", "%q is a domain name; Azure AD announces the directory (tenant) ID in its issuer, "+
				"so logins through the domain never verify: use the directory ID, a GUID (Entra ID, Overview, Tenant ID)", p.TenantID)
		}
		return []string{fmt.Sprintf("The identity provider could not be asked for its configuration at %s (%s), so the issuer was not checked: "+
			"logins answer 502 until it answers with a discovery document announcing the issuer %q.", wellKnown, why, announcedWant(p))}, nil
	}
	if want := announcedWant(p); doc.Issuer != want {
		return nil, issuerMismatch(p, wellKnown, doc.Issuer, want)
	}
	for _, e := range []struct{ name, v string }{
		{"authorization_endpoint", doc.AuthURL}, {"token_endpoint", doc.TokenURL}, {"jwks_uri", doc.JWKSURL},
	} {
		if e.v == "" {
			return nil, domain.Invalid("issuer", "the discovery document at %s has no %s", wellKnown, e.name)
		}
	}
	return nil, nil
}

// announcedWant is the issuer that p's discovery document must announce:
// p's issuer, or for a multi-tenant Azure AD application the template
// …/{tenantid}/v2.0.
func announcedWant(p domain.SSOProvider) string {
	if p.AzureMultiTenant() {
		return p.AzureIssuerTemplate()
	}
	return p.Issuer
}

// issuerMismatch says why an announced issuer cannot work, and what to
// configure instead.
func issuerMismatch(p domain.SSOProvider, wellKnown, announced, want string) error {
	if p.Type == domain.SSOAzure && domain.AzureTenantIsDomain(p.TenantID) {
		// …/contoso.onmicrosoft.com/v2.0 announces …/<directory ID>/v2.0.
		if before, after, ok := strings.Cut(want, "/"+p.TenantID+"/"); ok &&
			strings.HasPrefix(announced, before+"/") && strings.HasSuffix(announced, "/"+after) &&
			len(announced) > len(before)+len(after)+2 {
			id := announced[len(before)+1 : len(announced)-len(after)-1]
			if !strings.Contains(id, "/") {
				also := ""
				if p.IssuerOverride {
					also = fmt.Sprintf(" and issuer %q", announced)
				}
				return domain.Invalid("tenant_id", "%q is a domain name; its directory announces the issuer %q: use tenant_id %q%s",
					p.TenantID, announced, id, also)
			}
		}
	}
	if announced == "" {
		return domain.Invalid("issuer", "the discovery document at %s announces no issuer", wellKnown)
	}
	hint := "configure the issuer exactly as announced"
	switch {
	case announced == want+"/":
		hint = "the IdP's issuer ends in \"/\": configure it with the trailing slash"
	case want == announced+"/":
		hint = "the IdP's issuer has no trailing slash: configure it without"
	case p.AzureMultiTenant():
		hint = fmt.Sprintf("a multi-tenant application (tenant_id %q) expects Azure AD's %q", p.TenantID, want)
	case p.Type == domain.SSOOkta && !p.IssuerOverride:
		hint = fmt.Sprintf("set \"issuer\": %q", announced)
	}
	return domain.Invalid("issuer", "the identity provider announces the issuer %q at %s, not %q: %s", announced, wellKnown, want, hint)
}

// fetchDiscovery fetches and parses a discovery document; why says, when it
// could not, what happened.
func (s *Server) fetchDiscovery(ctx context.Context, wellKnown string) (doc discoveryDoc, why string) {
	ctx, cancel := context.WithTimeout(ctx, discoveryCheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, wellKnown, nil)
	if err != nil {
		return doc, "not a URL"
	}
	req.Header.Set("Accept", "application/json")
	res, err := s.ssoHTTPClient().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return doc, "unreachable: " + err.Error()
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return doc, "HTTP " + res.Status
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return doc, "unreachable: " + err.Error()
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Issuer == "" && doc.AuthURL == "" && doc.JWKSURL == "" {
		return discoveryDoc{}, "the answer is not a discovery document"
	}
	return doc, ""
}
