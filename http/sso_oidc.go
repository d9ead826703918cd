package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/oauth2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events/commands"
)

// OpenID Connect login (Okta, Azure AD, any OIDC provider): authorization
// code flow with PKCE (S256), state and nonce bound to the browser by the
// flow cookie, and consumed on the event store (a flow signs in once, on
// any replica); github.com/coreos/go-oidc verifies the ID token and caches
// the provider's keys (refetched when an unknown key ID shows up).

// discoveryTTL bounds how long a discovery document is used before it is
// fetched again.
const discoveryTTL = time.Hour

// oidcProviders caches discovery per provider configuration.
type oidcProviders struct {
	mu      sync.Mutex
	entries map[string]*oidcEntry
	// inflight: the discovery under way for a provider, which requests for
	// it wait for rather than start another. mu is never held while an IdP
	// is asked: one that does not answer held it for up to 10 s per
	// request, and every other provider's login start waited behind it (an
	// outside check, 18q: 79 s for a healthy, cached provider).
	inflight map[string]*discovery
}

// discovery is one discovery of a provider's configuration: done closes when
// e or err is set.
type discovery struct {
	version uint64
	issuer  string
	done    chan struct{}
	e       *oidcEntry
	err     error
}

type oidcEntry struct {
	version  uint64
	issuer   string
	fetched  time.Time
	provider *oidc.Provider
	// keys watches the provider's own fetches (its JWKS, after discovery).
	keys *fetchWatch
}

// fetchWatch is the transport of the HTTP client a go-oidc provider keeps
// for fetching its keys (the JWKS): it counts the fetches that complete and
// remembers the last that failed (no answer, or a 5xx), so that a failed
// verification can tell an IdP that could not be asked from a token that is
// not good (go-oidc reports both as one error).
type fetchWatch struct {
	base     http.RoundTripper
	done     atomic.Uint64
	failedAt atomic.Uint64
}

func (w *fetchWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := w.base.RoundTrip(req)
	n := w.done.Add(1)
	if err != nil || res.StatusCode >= 500 {
		w.failedAt.Store(n)
	}
	return res, err
}

// failedSince reports whether a fetch that completed after the mark
// (done.Load() before) failed.
func (w *fetchWatch) failedSince(mark uint64) bool { return w.failedAt.Load() > mark }

// watchedClient returns a client like c whose requests go through a
// fetchWatch.
func watchedClient(c *http.Client) (*http.Client, *fetchWatch) {
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	w := &fetchWatch{base: base}
	return &http.Client{Transport: w, Timeout: c.Timeout, CheckRedirect: c.CheckRedirect, Jar: c.Jar}, w
}

// discover returns the go-oidc provider of p, from the cache when it is
// fresh and of the same configuration version.
func (s *Server) discover(p domain.SSOProvider, version uint64) (*oidc.Provider, error) {
	e, err := s.discoverEntry(p, version)
	if err != nil {
		return nil, err
	}
	return e.provider, nil
}

// discoverEntry is discover, with the watch on the provider's key fetches.
// One discovery per provider and configuration runs at a time; requests
// that find one under way wait for its outcome (at most its 10 s). A
// provider whose cached entry has expired keeps being served from it while
// another request discovers it again.
func (s *Server) discoverEntry(p domain.SSOProvider, version uint64) (*oidcEntry, error) {
	o := &s.oidc
	o.mu.Lock()
	if o.entries == nil {
		o.entries = make(map[string]*oidcEntry)
		o.inflight = make(map[string]*discovery)
	}
	e := o.entries[p.Name]
	same := e != nil && e.version == version && e.issuer == p.Issuer
	if same && time.Since(e.fetched) < discoveryTTL {
		o.mu.Unlock()
		return e, nil
	}
	if d := o.inflight[p.Name]; d != nil && d.version == version && d.issuer == p.Issuer {
		o.mu.Unlock()
		if same {
			return e, nil // stale, but the same configuration: being refreshed
		}
		<-d.done
		return d.e, d.err
	}
	d := &discovery{version: version, issuer: p.Issuer, done: make(chan struct{})}
	o.inflight[p.Name] = d
	o.mu.Unlock()

	prov, keys, err := s.discoverProvider(p)
	o.mu.Lock()
	switch {
	case err == nil:
		d.e = &oidcEntry{version: version, issuer: p.Issuer, fetched: time.Now(), provider: prov, keys: keys}
		// Not over an entry of a configuration discovered meanwhile.
		if cur := o.entries[p.Name]; cur == nil || cur == e || cur.version <= version {
			o.entries[p.Name] = d.e
		}
	case same:
		d.e = e // stale but same configuration: keep serving
	default:
		d.err = err
	}
	if o.inflight[p.Name] == d {
		delete(o.inflight, p.Name)
	}
	o.mu.Unlock()
	close(d.done)
	return d.e, d.err
}

// discoverProvider asks p's issuer for its configuration (10 s at most).
func (s *Server) discoverProvider(p domain.SSOProvider) (*oidc.Provider, *fetchWatch, error) {
	// The provider keeps this context for fetching keys later: it carries
	// the HTTP client (watched: fetchWatch), and no request's deadline.
	client, keys := watchedClient(s.ssoHTTPClient())
	dctx := oidc.ClientContext(context.Background(), client)
	if p.AzureMultiTenant() {
		// Discovery of .../organizations/v2.0 announces the issuer
		// .../{tenantid}/v2.0; each ID token's issuer is then checked
		// against the tenant allowlist (checkAzureIssuer).
		dctx = oidc.InsecureIssuerURLContext(dctx, azureIssuerTemplate(p))
	}
	fctx, cancel := context.WithTimeout(dctx, 10*time.Second)
	defer cancel()
	prov, err := oidc.NewProvider(fctx, p.Issuer)
	return prov, keys, err
}

// exchangeError maps a failed code exchange to the answer: the token
// endpoint refusing the code or the client (an OAuth error, 4xx) fails the
// login (401); an IdP that cannot be reached, times out, answers 5xx, 429,
// a 4xx without an OAuth error, or something that is not a token answer is
// down (502). What it logs names
// the status and the OAuth error code only: no body, which an IdP may fill
// with what it was sent — nor an error code that is not a registered one,
// since the code is the IdP's free text too (one that echoed the request
// put the client secret in the log: outside check 19f).
func exchangeError(err error) (*Error, error) {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		logged := fmt.Errorf("token endpoint answered %d %s", status, loggableOAuthError(re.ErrorCode))
		// A refusal is an OAuth error (RFC 6749 §5.2: invalid_grant,
		// invalid_client, …) in a 4xx. A 4xx without one — a proxy's 404
		// page, a 429 — and the errors that say the server is in trouble
		// are the IdP failing, not the login (re-check 14r2).
		switch {
		case status >= 500, status == http.StatusTooManyRequests, re.ErrorCode == "",
			re.ErrorCode == "temporarily_unavailable", re.ErrorCode == "server_error":
			return errIdPDown, logged
		}
		return errSSOFailed, logged
	}
	return errIdPDown, err
}

// azureIssuerTemplate replaces the tenant segment of a multi-tenant Azure
// issuer (…/organizations/v2.0) with the placeholder.
func azureIssuerTemplate(p domain.SSOProvider) string { return p.AzureIssuerTemplate() }

// checkAzureIssuer accepts a multi-tenant Azure AD token only when its
// issuer is the template with its own tenant ("tid") filled in, and that
// tenant is on the allowlist.
func checkAzureIssuer(p domain.SSOProvider, iss, tid string) error {
	if tid == "" {
		return errors.New("azure: token has no tid claim")
	}
	allowed := false
	for _, t := range p.AllowedTenants {
		if strings.EqualFold(t, tid) {
			allowed = true
		}
	}
	if !allowed {
		return fmt.Errorf("azure: tenant %q is not on allowed_tenants", tid)
	}
	if want := strings.Replace(azureIssuerTemplate(p), domain.AzureTenantPlaceholder, tid, 1); iss != want {
		return fmt.Errorf("azure: issuer %q, want %q", iss, want)
	}
	return nil
}

func (s *Server) oauthConfig(p domain.SSOProvider, prov *oidc.Provider, redirectURI, secret string) *oauth2.Config {
	scopes := []string{oidc.ScopeOpenID, "email", "profile"}
	if p.Type == domain.SSOOkta && len(p.RoleMappings) > 0 {
		scopes = append(scopes, "groups")
	}
	return &oauth2.Config{
		ClientID: p.ClientID, ClientSecret: secret, Endpoint: prov.Endpoint(),
		RedirectURL: redirectURI, Scopes: scopes,
	}
}

// ssoLoginStart: GET /api/v1/auth/sso/{provider}/login[?return_to=].
func (s *Server) ssoLoginStart(c *fiber.Ctx) error {
	name := c.Params("provider")
	if name == string(domain.SSOSAML) {
		return s.samlLoginStart(c)
	}
	p, err := s.ssoProvider(name)
	if err != nil {
		return err
	}
	if !p.Type.IsOIDC() {
		return errSSONotConfig
	}
	returnTo := c.Query("return_to")
	if returnTo != "" {
		if _, ok := s.checkReturnTo(returnTo); !ok {
			return errBadReturnTo
		}
	}
	_, version, _ := s.deps.SSOModel.SSOProvider(name)
	prov, err := s.discover(p, version)
	if err != nil {
		s.ssoReject(c, "discovery failed", err)
		return errIdPDown
	}
	f := ssoFlow{
		Provider: p.Name, State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(),
		RedirectURI: s.baseURL(c) + flowPath + p.Name + "/callback", ReturnTo: returnTo,
		Expires: s.cfg.Now().Add(s.flowTTL()).Unix(), Started: time.Now().UnixNano(),
	}
	if err := s.setFlowCookie(c, f, false); err != nil {
		return err
	}
	target := s.oauthConfig(p, prov, f.RedirectURI, "").AuthCodeURL(f.State,
		oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Redirect(target, fiber.StatusFound)
}

// idClaims are the ID token (and userinfo) claims an SSO login reads,
// decoded with exact names (exactClaims).
type idClaims struct {
	// Subject, Issuer and Nonce as spelled exactly: go-oidc verified the
	// ones encoding/json read, which may be another letter case's
	// ("Sub"); the two must agree.
	Subject           string `json:"sub"`
	Issuer            string `json:"iss"`
	Nonce             string `json:"nonce"`
	Email             string `json:"email"`
	EmailVerified     any    `json:"email_verified"`
	PreferredUsername string `json:"preferred_username"`
	Name              string `json:"name"`
	TenantID          string `json:"tid"`
	// amr and acr say how the provider authenticated the user (RFC 8176,
	// OIDC Core §2): honoured as a second factor for trusted providers.
	AMR []string `json:"amr"`
	ACR string   `json:"acr"`
}

// ssoCallback: GET /api/v1/auth/sso/{provider}/callback.
func (s *Server) ssoCallback(c *fiber.Ctx) error {
	name := c.Params("provider")
	f, ok := s.takeFlow(c)
	if !ok {
		return errSSOState
	}
	// The flow must have been started for this very provider (mix-up
	// defence: an answer meant for one provider is never taken for another).
	if !sameString(f.Provider, name) {
		s.ssoReject(c, "provider mismatch", fmt.Errorf("flow for %q, callback of %q", f.Provider, name))
		return errSSOState
	}
	if !sameString(f.State, c.Query("state")) {
		return errSSOState
	}
	p, err := s.ssoProvider(name)
	if err != nil {
		return err
	}
	if !p.Type.IsOIDC() {
		return errSSONotConfig
	}
	if e := c.Query("error"); e != "" {
		s.ssoReject(c, "provider answered an error", fmt.Errorf("%.64s: %.256s", e, c.Query("error_description")))
		return errSSOFailed
	}
	code := c.Query("code")
	if code == "" {
		return validation("code: is required")
	}
	_, version, _ := s.deps.SSOModel.SSOProvider(name)
	entry, err := s.discoverEntry(p, version)
	if err != nil {
		s.ssoReject(c, "discovery failed", err)
		return errIdPDown
	}
	prov := entry.provider
	// RFC 9207: an authorization server that names itself must be ours.
	if iss := c.Query("iss"); iss != "" && !p.AzureMultiTenant() && iss != p.Issuer {
		s.ssoReject(c, "iss parameter mismatch", fmt.Errorf("iss %q, want %q", iss, p.Issuer))
		return errSSOFailed
	}
	secret, err := s.deps.SSO.SSOClientSecret(p)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	ctx = oidc.ClientContext(ctx, s.ssoHTTPClient())
	tok, err := s.oauthConfig(p, prov, f.RedirectURI, secret).Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		answer, logged := exchangeError(err)
		s.ssoReject(c, "code exchange failed", logged)
		return answer
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		s.ssoReject(c, "no id_token", nil)
		return errSSOFailed
	}
	verifier := prov.Verifier(&oidc.Config{ClientID: p.ClientID, Now: s.cfg.Now, SkipIssuerCheck: p.AzureMultiTenant()})
	mark := entry.keys.done.Load()
	idt, err := verifier.Verify(ctx, rawID)
	if err != nil {
		s.ssoReject(c, "id_token verification failed", err)
		if entry.keys.failedSince(mark) {
			return errIdPDown // its keys could not be fetched
		}
		return errSSOFailed
	}
	if !sameString(idt.Nonce, f.Nonce) {
		s.ssoReject(c, "nonce mismatch", nil)
		return errSSOFailed
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			s.ssoReject(c, "at_hash mismatch", err)
			return errSSOFailed
		}
	}
	var claims idClaims
	var all map[string]any
	var raw json.RawMessage
	if err := idt.Claims(&raw); err != nil {
		s.ssoReject(c, "claims", err)
		return errSSOFailed
	}
	if err := exactClaims(raw, &claims, &all); err != nil {
		s.ssoReject(c, "claims", err)
		return errSSOFailed
	}
	if claims.Subject != idt.Subject || claims.Issuer != idt.Issuer || claims.Nonce != idt.Nonce {
		s.ssoReject(c, "claims", fmt.Errorf("%w: sub, iss or nonce is not spelled exactly", errClaimsMalformed))
		return errSSOFailed
	}
	if p.AzureMultiTenant() {
		if err := checkAzureIssuer(p, idt.Issuer, claims.TenantID); err != nil {
			s.ssoReject(c, "azure issuer", err)
			return errSSOFailed
		}
	}
	if needsUserinfo(p, claims, all) && prov.UserInfoEndpoint() != "" {
		if err := s.addUserinfo(ctx, p, prov, tok, idt.Subject, &claims, all); err != nil {
			s.ssoReject(c, "userinfo", err)
			if errors.Is(err, errUserinfoSubject) || errors.Is(err, errClaimsMalformed) {
				return errSSOFailed
			}
			return errIdPDown
		}
	}
	groups, err := groupsClaim(all, p.GroupsClaim)
	if err != nil {
		s.ssoReject(c, "groups claim", err)
		return errSSOFailed
	}
	if groups == nil && wantsGroups(p) && groupsOverage(all, groupsClaimName(p)) {
		rid, _ := c.Locals(localRequestID).(string)
		s.log.Warn("sso login: the ID token names a source for the groups claim instead of the groups (Azure AD's groups overage: the user is in more groups than a token holds); no role is mapped from groups for this login — map app roles (groups_claim \"roles\") or limit the groups the token carries",
			"request_id", rid, "provider", p.Name)
	}
	// The flow is used once, on every replica: clearing its cookie alone
	// would not stop a copy of it with the callback's URL, through an IdP
	// that accepts a code twice (the SAML callback consumes its assertion).
	if err := s.consumeSSOAssertion(c, p.Name, commands.OIDCFlowAssertionID(f.Nonce), time.Unix(f.Expires, 0), "OIDC login flow replayed"); err != nil {
		return err
	}
	tid := ""
	if p.AzureMultiTenant() {
		tid = claims.TenantID // checked: checkAzureIssuer
	}
	res, err := s.ssoLogin(c, domain.SSOLogin{
		Provider: p.Name, Issuer: p.IdentityIssuer(), Subject: idt.Subject, Email: claims.Email,
		EmailVerified: truthy(claims.EmailVerified), Username: claims.PreferredUsername, Groups: groups,
		TenantID: tid, MFA: p.TrustIdPMFA && assertsMFA(claims.AMR, claims.ACR),
	})
	if err != nil {
		return s.ssoMFAStep(c, err, f.ReturnTo, false)
	}
	return s.finishSSOLogin(c, res, f.ReturnTo)
}

// assertsMFA reports whether an ID token's amr (RFC 8176) or acr says the
// user passed more than one factor, or a phishing-resistant one: amr
// "mfa", "otp", "hwk" (a hardware key), "sc" (a smart card) or "swk" with
// a PIN or biometrics; acr naming multi-factor or phishing-resistant
// authentication (acrAssertsMFA).
func assertsMFA(amr []string, acr string) bool {
	var swk, unlock bool
	for _, m := range amr {
		switch strings.ToLower(m) {
		case "mfa", "otp", "hwk", "sc":
			return true
		case "swk":
			swk = true
		case "pin", "fpt", "face", "iris", "retina", "vbm":
			unlock = true
		}
	}
	if swk && unlock {
		return true
	}
	return acrAssertsMFA(acr)
}

// mfaACRSegments are the last segments of an acr (split at "/", ":" and
// "#") that name multi-factor or phishing-resistant authentication:
// REFEDS' https://refeds.org/profile/mfa, the PAPE policies
// (…/policies/2007/06/multi-factor, multi-factor-physical,
// phishing-resistant), Microsoft's …/claims/multipleauthn, the OpenID EAP
// profile's phr and phrh.
var mfaACRSegments = map[string]bool{
	"mfa": true, "multi-factor": true, "multifactor": true, "multi-factor-physical": true,
	"phishing-resistant": true, "multipleauthn": true, "phr": true, "phrh": true,
}

// acrAssertsMFA reports whether acr names multi-factor authentication: its
// last segment is one of mfaACRSegments — not a substring, which took
// "b2c_1_signin_nomfa" (an Azure AD B2C flow's name), "urn:x:no-mfa" and
// "mfa-skipped" for a second factor (outside check 17b), nor an earlier
// segment qualified by a later one ("urn:acme:mfa:skipped",
// ".../mfa/optional": re-check 17r2) — or it is Okta's
// urn:okta:loa:2fa:any (not its …:ifpossible).
func acrAssertsMFA(acr string) bool {
	a := strings.ToLower(acr)
	if a == "urn:okta:loa:2fa:any" {
		return true
	}
	segments := strings.FieldsFunc(a, func(r rune) bool { return r == '/' || r == ':' || r == '#' })
	return len(segments) > 0 && mfaACRSegments[segments[len(segments)-1]]
}

// truthy reads email_verified, which some providers send as a string.
func truthy(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return b == "true"
	}
	return false
}

// wantsGroups reports whether logins through p read a groups claim: one is
// configured, or role mappings need one.
func wantsGroups(p domain.SSOProvider) bool { return p.GroupsClaim != "" || len(p.RoleMappings) > 0 }

func groupsClaimName(p domain.SSOProvider) string {
	if p.GroupsClaim != "" {
		return p.GroupsClaim
	}
	return "groups"
}

// needsUserinfo reports whether the ID token lacks what a login reads: the
// e-mail, both the preferred username and the name (some IdPs put profile
// claims in the userinfo answer only), or the groups claim when one is
// wanted.
func needsUserinfo(p domain.SSOProvider, claims idClaims, all map[string]any) bool {
	if claims.Email == "" || (claims.PreferredUsername == "" && claims.Name == "") {
		return true
	}
	if wantsGroups(p) {
		if _, ok := all[groupsClaimName(p)]; !ok {
			return true
		}
	}
	return false
}

// oauthErrorCodes are the error codes a token endpoint may answer with
// (RFC 6749 §5.2, and those of the extensions an IdP's token endpoint
// uses: RFC 8628, RFC 8693, RFC 9449, OpenID Connect Core 3.1.2.6).
var oauthErrorCodes = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true,
	"access_denied": true, "server_error": true, "temporarily_unavailable": true,
	"authorization_pending": true, "slow_down": true, "expired_token": true,
	"invalid_target": true, "invalid_dpop_proof": true, "use_dpop_nonce": true,
	"interaction_required": true, "login_required": true, "consent_required": true,
	"invalid_request_object": true,
}

// loggableOAuthError is what the log may say of a token endpoint's error
// code: a registered code as it is, else only its length — the field is
// the IdP's to fill, and one that echoes what it was sent would put the
// client secret in the log.
func loggableOAuthError(code string) string {
	switch {
	case code == "":
		return "without an OAuth error code"
	case oauthErrorCodes[code]:
		return code
	default:
		return fmt.Sprintf("with an unregistered OAuth error code (%d bytes, not logged)", len(code))
	}
}

// userinfoError is what the log may say of a failed userinfo request:
// go-oidc puts the answer's status and whole body in its error ("500
// Internal Server Error: <body>"; "401: <body>" when the status line has no
// reason phrase), and a body — or a reason phrase — may echo the request:
// the user's access token at the IdP (outside checks 19f, 19r2). So only
// go-oidc's own errors ("oidc: …", no body in them) and the transport's
// (*url.Error: the endpoint's URL, no token) pass; of anything else, the
// status code's digits alone.
func userinfoError(err error) error {
	var ue *url.Error
	msg := err.Error()
	if errors.As(err, &ue) || strings.HasPrefix(msg, "oidc: ") {
		return err
	}
	n := 0
	for n < len(msg) && n < 3 && isDigit(msg[n]) {
		n++
	}
	if n == 3 && (len(msg) == 3 || !isDigit(msg[3])) {
		return fmt.Errorf("userinfo endpoint answered %s (the rest not logged)", msg[:3])
	}
	return errors.New("userinfo request failed (its error not logged: it may carry the answer's body)")
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// errUserinfoSubject: the userinfo answer is about someone else than the
// ID token.
var errUserinfoSubject = errors.New("userinfo sub is not the ID token's")

// addUserinfo asks the userinfo endpoint (with the access token of the
// exchange) for what the ID token lacks, and adds it to claims and all. The
// answer must be about the ID token's subject (OpenID Connect Core 5.3.2);
// claims the ID token has are kept.
func (s *Server) addUserinfo(ctx context.Context, p domain.SSOProvider, prov *oidc.Provider, tok *oauth2.Token, subject string, claims *idClaims, all map[string]any) error {
	ui, err := prov.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return userinfoError(err)
	}
	var more idClaims
	var moreAll map[string]any
	var raw json.RawMessage
	if err := ui.Claims(&raw); err != nil {
		return err
	}
	// Names matched exactly, as the ID token's (exactClaims); its sub as
	// spelled exactly is the one that must be the ID token's.
	if err := exactClaims(raw, &more, &moreAll); err != nil {
		return err
	}
	if !sameString(ui.Subject, subject) || !sameString(more.Subject, subject) {
		return errUserinfoSubject
	}
	if claims.Email == "" && more.Email != "" {
		claims.Email, claims.EmailVerified = more.Email, more.EmailVerified
	}
	if claims.PreferredUsername == "" {
		claims.PreferredUsername = more.PreferredUsername
	}
	if claims.Name == "" {
		claims.Name = more.Name
	}
	if wantsGroups(p) {
		name := groupsClaimName(p)
		if _, ok := all[name]; !ok {
			if v, ok := moreAll[name]; ok {
				all[name] = v
			}
		}
	}
	return nil
}

// groupsClaim reads the group claim (default "groups"): a list of strings,
// or one string.
// groupsOverage reports whether the claims name a source for claim in
// _claim_names (OpenID Connect's distributed claims) instead of carrying it:
// Azure AD does so for a user in more groups than a token holds (200 in a
// JWT), pointing at Microsoft Graph, which this service does not call.
func groupsOverage(all map[string]any, claim string) bool {
	names, _ := all["_claim_names"].(map[string]any)
	_, ok := names[claim]
	return ok
}

func groupsClaim(all map[string]any, claim string) ([]string, error) {
	if claim == "" {
		claim = "groups"
	}
	switch v := all[claim].(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, g := range v {
			if s, ok := g.(string); ok {
				out = append(out, s)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("claim %q is neither a string nor a list", claim)
}
