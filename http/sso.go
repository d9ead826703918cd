package http

import (
	"cmp"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// SSOCommands configures identity providers and signs their users in.
type SSOCommands interface {
	ConfigureSSOProvider(ctx context.Context, meta events.Meta, in commands.SSOProviderInput) (domain.SSOProvider, bool, error)
	DeleteSSOProvider(ctx context.Context, meta events.Meta, name string) error
	UnlinkSSOIdentity(ctx context.Context, meta events.Meta, provider, subject string) (string, error)
	SSOClientSecret(p domain.SSOProvider) (string, error)
	SSOLogin(ctx context.Context, meta events.Meta, in domain.SSOLogin) (commands.LoginResult, error)
	ConsumeSSOAssertion(ctx context.Context, meta events.Meta, provider, assertionID string, expiresAt time.Time) error
}

// SSOReadModel reads the identity provider configurations.
type SSOReadModel interface {
	SSOProvider(name string) (domain.SSOProvider, uint64, bool)
	SSOProviders() []domain.SSOProvider
}

var _ SSOCommands = (*commands.Service)(nil)

// SSOConfig tunes single sign-on and browser sessions.
type SSOConfig struct {
	// PublicURL is the service's external base URL (https://auth.example.com):
	// the OIDC redirect URIs and the SAML entity ID and ACS URL are built from
	// it. Nil: from each request's scheme and Host (development only).
	PublicURL *url.URL
	// ReturnToAllowlist lists the exact origins (https://app.example.com) to
	// which a login may redirect with return_to; relative paths ("/app") are
	// always allowed.
	ReturnToAllowlist []string
	// CookieKey (32 bytes, derived from the master key) encrypts and
	// authenticates the short-lived login-flow cookie.
	CookieKey []byte
	// SAMLKeys returns the SAML service provider's key pair (its certificate
	// is published in the SP metadata); nil: no SAML.
	SAMLKeys func() (*rsa.PrivateKey, *x509.Certificate, error)
	// HTTPClient talks to the identity providers (discovery, JWKS, token
	// endpoint); nil: a client with a 10 s timeout.
	HTTPClient *http.Client
	// FlowTTL bounds a login at the identity provider (default 10 min).
	FlowTTL time.Duration
}

// Cookie names.
const (
	// TokenCookie holds the access token of a browser session (HttpOnly).
	TokenCookie = "infracast_token"
	// CSRFCookie holds the CSRF token that cookie-authenticated requests
	// changing state must repeat in the X-CSRF-Token header (readable by
	// the page's script, by design).
	CSRFCookie = "infracast_csrf"
	// CSRFHeader carries the CSRF token.
	CSRFHeader = "X-CSRF-Token"
	// flowCookiePrefix names the cookies that bind logins at identity
	// providers to the browser: one per login in progress,
	// infracast_sso_<id>, the id derived from the flow's state (OIDC) or
	// RelayState (SAML), so that logins in two tabs do not clobber each
	// other. Over https they are __Host-infracast_sso_<id> (hostCookiePrefix).
	flowCookiePrefix = "infracast_sso_"
	flowPath         = "/api/v1/auth/sso/"
	// hostCookiePrefix: a browser keeps a cookie so named only when it is
	// Secure, has Path=/ and no Domain, and was set over https by this very
	// host — never one a sibling subdomain (Domain=parent) or a plain-http
	// page of the same host set. The flow cookies carry it over https, so
	// that no one else can plant his own login's flow cookie in a victim's
	// browser (login CSRF: the victim signed in as the attacker).
	hostCookiePrefix = "__Host-"
	// maxFlowCookies and maxFlowCookieBytes bound the flow cookies one
	// browser holds (count, and the sum of names and values): a new login
	// expires the oldest ones beyond, so the Cookie header of the SSO paths
	// stays well within what proxies and this server accept.
	maxFlowCookies     = 5
	maxFlowCookieBytes = 6 << 10
)

var (
	errSSOFailed    = &Error{http.StatusUnauthorized, "UNAUTHORIZED", "Single sign-on failed"}
	errSSOState     = &Error{http.StatusUnauthorized, "UNAUTHORIZED", "Single sign-on state missing, expired or not matching; start the login again"}
	errIdPDown      = &Error{http.StatusBadGateway, "BAD_GATEWAY", "Identity provider unavailable"}
	errCSRF         = &Error{http.StatusForbidden, "FORBIDDEN", "Missing or invalid CSRF token"}
	errBadReturnTo  = validation("return_to: not an allowed redirect target (a path like /app, or an allowed origin)")
	errSSONotConfig = &Error{http.StatusNotFound, "NOT_FOUND", "No such identity provider is configured"}
	errSSONotLinked = &Error{http.StatusNotFound, "NOT_FOUND", "No user is linked to this identity of the provider"}
)

// DeriveKey derives a purpose-bound 32-byte key from the master key
// (HMAC-SHA256), so that one secret never serves two purposes.
func DeriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("infracast-auth/" + purpose))
	return m.Sum(nil)
}

// ssoFlow is what the flow cookie remembers between the redirect to the
// identity provider and the answer.
type ssoFlow struct {
	Provider    string `json:"p"`
	State       string `json:"s"`
	Nonce       string `json:"n,omitempty"`
	Verifier    string `json:"v,omitempty"`
	RedirectURI string `json:"u,omitempty"`
	RequestID   string `json:"q,omitempty"` // SAML AuthnRequest ID (InResponseTo)
	ReturnTo    string `json:"r,omitempty"`
	Expires     int64  `json:"e"`
	// Started orders a browser's flows when Expires (whole seconds) ties:
	// the wall clock's nanoseconds when the login began (0 in a flow sealed
	// before this field: it sorts first, as it is older).
	Started int64 `json:"t,omitempty"`
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) flowAEAD() (cipher.AEAD, error) {
	if len(s.cfg.SSO.CookieKey) != 32 {
		return nil, errors.New("http: SSO cookie key is not configured")
	}
	block, err := aes.NewCipher(s.cfg.SSO.CookieKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// flowCookieName is the name of the cookie of the flow with this state: a
// hash of the state (which the callback carries), not the state itself;
// with the __Host- prefix when cookies are Secure (flowCookieNames).
func flowCookieName(state string, secure bool) string {
	h := sha256.Sum256([]byte("infracast-auth/sso-flow/" + state))
	return flowCookieNames(secure) + base64.RawURLEncoding.EncodeToString(h[:12])
}

// flowCookieNames is the prefix of the flow cookies' names: over https
// __Host-infracast_sso_ (only this host, over https, can have set them),
// over plain http infracast_sso_ (which any page of the host's domain or
// of another port could set: development only).
func flowCookieNames(secure bool) string {
	if secure {
		return hostCookiePrefix + flowCookiePrefix
	}
	return flowCookiePrefix
}

// flowCookiePath is the Path of a flow cookie: / for a __Host- cookie, which
// browsers require; the SSO paths otherwise.
func flowCookiePath(name string) string {
	if strings.HasPrefix(name, hostCookiePrefix) {
		return "/"
	}
	return flowPath
}

// sealFlow encrypts and authenticates f (AES-256-GCM with the cookie key,
// the cookie name as additional data).
func (s *Server) sealFlow(name string, f ssoFlow) (string, error) {
	aead, err := s.flowAEAD()
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

// openFlow returns the flow of the cookie name=v if this service sealed it
// under that name and it has not expired.
func (s *Server) openFlow(name, v string) (ssoFlow, bool) {
	var f ssoFlow
	aead, err := s.flowAEAD()
	if err != nil || v == "" || len(v) > 4096 {
		return f, false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(v) // one spelling per cookie
	if err != nil || len(raw) < aead.NonceSize() {
		return f, false
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, raw[:n], raw[n:], []byte(name))
	if err != nil || json.Unmarshal(plain, &f) != nil {
		return f, false
	}
	if s.cfg.Now().Unix() >= f.Expires {
		return f, false
	}
	return f, true
}

func (s *Server) flowTTL() time.Duration {
	if s.cfg.SSO.FlowTTL > 0 {
		return s.cfg.SSO.FlowTTL
	}
	return 10 * time.Minute
}

// secureCookies reports whether cookies get the Secure attribute: always
// behind an https public URL; otherwise when the request came over TLS.
func (s *Server) secureCookies(c *fiber.Ctx) bool {
	if u := s.cfg.SSO.PublicURL; u != nil {
		return u.Scheme == "https"
	}
	return c.Context().IsTLS()
}

// requestScheme is the scheme of the request as received (forwarded headers
// are not believed; set SSOConfig.PublicURL behind a proxy).
func requestScheme(c *fiber.Ctx) string {
	if c.Context().IsTLS() {
		return "https"
	}
	return "http"
}

// setFlowCookie binds f to the browser, in a cookie of its own (named by its
// state), beside the browser's other logins in progress, of which it expires
// the oldest beyond the bounds. The SAML answer arrives as a cross-site POST,
// which a SameSite=Lax cookie would not accompany: that one is SameSite=None
// (which browsers accept only with Secure). Over https the cookie is a
// __Host- one: Path=/, no Domain (flowCookieNames).
func (s *Server) setFlowCookie(c *fiber.Ctx, f ssoFlow, crossSitePost bool) error {
	secure := s.secureCookies(c)
	name := flowCookieName(f.State, secure)
	v, err := s.sealFlow(name, f)
	if err != nil {
		return err
	}
	s.boundFlowCookies(c, len(name)+len(v))
	sameSite := fiber.CookieSameSiteLaxMode
	if crossSitePost && secure {
		sameSite = fiber.CookieSameSiteNoneMode
	}
	c.Cookie(&fiber.Cookie{
		Name: name, Value: v, Path: flowCookiePath(name), MaxAge: int(s.flowTTL().Seconds()),
		Secure: secure, HTTPOnly: true, SameSite: sameSite,
	})
	return nil
}

// boundFlowCookies makes room for a new flow cookie of size bytes: it clears
// the browser's flow cookies that no longer open (expired, foreign), then the
// oldest ones until at most maxFlowCookies, of at most maxFlowCookieBytes in
// all, remain with the new one. Over https it counts only __Host- flow
// cookies, and clears flow cookies without the prefix (an earlier release's,
// or planted: those of another domain it cannot reach, but a callback never
// reads them either).
func (s *Server) boundFlowCookies(c *fiber.Ctx, size int) {
	prefix := flowCookieNames(s.secureCookies(c))
	type held struct {
		name             string
		size             int
		expires, started int64
	}
	var flows []held
	c.Request().Header.VisitAllCookie(func(k, v []byte) {
		name := string(k)
		if !strings.HasPrefix(name, prefix) {
			if strings.HasPrefix(name, flowCookiePrefix) {
				s.clearFlowCookie(c, name)
			}
			return
		}
		f, ok := s.openFlow(name, string(v))
		if !ok {
			s.clearFlowCookie(c, name)
			return
		}
		flows = append(flows, held{name, len(k) + len(v), f.Expires, f.Started})
	})
	count, total := len(flows)+1, size
	for _, h := range flows {
		total += h.size
	}
	// Oldest first: the earliest to expire (all live equally long), then,
	// for logins begun within the same second, the earliest begun.
	slices.SortFunc(flows, func(a, b held) int {
		return cmp.Or(cmp.Compare(a.expires, b.expires), cmp.Compare(a.started, b.started), strings.Compare(a.name, b.name))
	})
	for _, h := range flows {
		if count <= maxFlowCookies && total <= maxFlowCookieBytes {
			break
		}
		s.clearFlowCookie(c, h.name)
		count, total = count-1, total-h.size
	}
}

// clearFlowCookie expires a flow cookie, at the Path it was set with. Over
// https with SameSite=None, which a browser accepts even on the answer to a
// cross-site POST (the SAML ACS).
func (s *Server) clearFlowCookie(c *fiber.Ctx, name string) {
	secure := s.secureCookies(c)
	sameSite := fiber.CookieSameSiteLaxMode
	if secure {
		sameSite = fiber.CookieSameSiteNoneMode
	}
	c.Cookie(&fiber.Cookie{
		Name: name, Value: "", Path: flowCookiePath(name), MaxAge: -1, Expires: time.Unix(1, 0),
		Secure: secure, HTTPOnly: true, SameSite: sameSite,
	})
}

// takeFlow reads and clears the cookie of the flow this callback answers,
// found by the callback's own state (OIDC: the state query parameter; SAML:
// the RelayState form field): a flow is used once, and a callback, even a
// failed one, touches no other login of the browser. The flow's sealed state
// must equal the callback's. Over https only the __Host- cookie counts: a
// cookie of the name without the prefix may have been planted by another
// site of the domain (and would not open under the other name either: the
// name is sealed with the flow).
func (s *Server) takeFlow(c *fiber.Ctx) (ssoFlow, bool) {
	state := c.Query("state")
	if c.Method() == fiber.MethodPost {
		state = c.FormValue("RelayState")
	}
	if state == "" || len(state) > 512 {
		return ssoFlow{}, false
	}
	name := flowCookieName(state, s.secureCookies(c))
	v := c.Cookies(name)
	if v == "" {
		return ssoFlow{}, false
	}
	s.clearFlowCookie(c, name)
	f, ok := s.openFlow(name, v)
	if !ok || !sameString(f.State, state) {
		return ssoFlow{}, false
	}
	return f, true
}

// consumeSSOAssertion records that a login's assertion (a SAML assertion's
// ID, an OIDC flow's: commands.ConsumeSSOAssertion) was used, before anyone
// is signed in with it: a second use, on any replica, is refused as the
// login failing (logged as replayed), any other trouble returned.
func (s *Server) consumeSSOAssertion(c *fiber.Ctx, provider, id string, expires time.Time, replayed string) error {
	ctx, cancel := s.ctx(c)
	defer cancel()
	err := s.deps.SSO.ConsumeSSOAssertion(ctx, s.meta(c), provider, id, expires)
	if errors.Is(err, commands.ErrAssertionReplayed) {
		s.ssoReject(c, replayed, err)
		return errSSOFailed
	}
	return err
}

// baseURL is the service's external base URL, without a trailing slash.
func (s *Server) baseURL(c *fiber.Ctx) string {
	if u := s.cfg.SSO.PublicURL; u != nil {
		return strings.TrimSuffix(u.String(), "/")
	}
	return requestScheme(c) + "://" + string(c.Request().Host())
}

// checkReturnTo validates a return_to target: a path on this site ("/app",
// never "//host" or "/\host", which browsers read as another host), or an
// absolute URL whose origin is exactly one on the allowlist. It returns the
// target to redirect to.
func (s *Server) checkReturnTo(raw string) (string, bool) {
	return CheckReturnTo(raw, s.cfg.SSO.ReturnToAllowlist)
}

// CheckReturnTo is the return_to rule (see SSOConfig.ReturnToAllowlist).
func CheckReturnTo(raw string, allowlist []string) (string, bool) {
	if raw == "" || len(raw) > 2048 {
		return "", false
	}
	for _, r := range raw {
		// Browsers drop tabs and newlines from URLs and read "\" as "/".
		if r < 0x21 || r == 0x7f || r == '\\' {
			return "", false
		}
	}
	if strings.HasPrefix(raw, "/") {
		if strings.HasPrefix(raw, "//") {
			return "", false
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
			return "", false
		}
		return raw, true
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", false
	}
	origin, err := CanonicalOrigin(u.Scheme + "://" + u.Host)
	if err != nil {
		return "", false
	}
	for _, a := range allowlist {
		if ca, err := CanonicalOrigin(a); err == nil && ca == origin {
			return raw, true
		}
	}
	return "", false
}

// finishSSOLogin answers a completed SSO login: like /auth/token, or, when
// the login was started with a return_to, with the session cookies and a
// redirect there.
func (s *Server) finishSSOLogin(c *fiber.Ctx, res commands.LoginResult, returnTo string) error {
	tok, exp, err := s.tokens.IssueUntil(res.User.ID, res.Session.ID, commands.NewID("tok"), res.Session.Tenant, res.Session.ExpiresAt)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	if returnTo == "" {
		return c.JSON(loginResponse{Token: tok, ExpiresAt: rfc3339(exp), RefreshToken: res.RefreshToken, User: toUserJSON(res.User)})
	}
	target, ok := s.checkReturnTo(returnTo)
	if !ok {
		return errBadReturnTo
	}
	s.setSessionCookies(c, tok, exp)
	s.setRefreshCookie(c, res.RefreshToken) // console_session.go
	return c.Redirect(target, fiber.StatusFound)
}

// setSessionCookies sets the access token (HttpOnly; SameSite=Lax) and a fresh
// CSRF token (readable by the page) for a browser session.
func (s *Server) setSessionCookies(c *fiber.Ctx, token string, exp time.Time) {
	secure := s.secureCookies(c)
	maxAge := max(int(exp.Sub(s.cfg.Now()).Seconds()), 1)
	c.Cookie(&fiber.Cookie{
		Name: TokenCookie, Value: token, Path: "/", MaxAge: maxAge,
		Secure: secure, HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode,
	})
	c.Cookie(&fiber.Cookie{
		Name: CSRFCookie, Value: randomToken(), Path: "/", MaxAge: maxAge,
		Secure: secure, HTTPOnly: false, SameSite: fiber.CookieSameSiteStrictMode,
	})
}

// cookieToken returns the access token of a browser session. A request
// authenticated by it that changes state must carry the CSRF token.
func (s *Server) cookieToken(c *fiber.Ctx) (string, error) {
	tok := c.Cookies(TokenCookie)
	if tok == "" || domain.LooksLikeAPIKey(tok) {
		return "", errUnauthorized
	}
	if tossedCookie(c) {
		return "", s.refuseTossedCookies(c) // console_session.go
	}
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return tok, nil
	}
	if err := checkCSRF(c); err != nil {
		return "", err
	}
	return tok, nil
}

// checkCSRF: a cookie-authenticated request that changes state must not come
// from another site (Sec-Fetch-Site), and must repeat the CSRF cookie in the
// X-CSRF-Token header (double submit), which another site cannot read.
func checkCSRF(c *fiber.Ctx) error {
	if site := c.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return errCSRF
	}
	want, got := c.Cookies(CSRFCookie), c.Get(CSRFHeader)
	if len(want) < 16 || len(got) != len(want) || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return errCSRF
	}
	return nil
}

func (s *Server) ssoHTTPClient() *http.Client {
	if s.cfg.SSO.HTTPClient != nil {
		return s.cfg.SSO.HTTPClient
	}
	return defaultIdPClient
}

var defaultIdPClient = &http.Client{Timeout: 10 * time.Second}

// ssoProvider returns a configured provider by name.
func (s *Server) ssoProvider(name string) (domain.SSOProvider, error) {
	if s.deps.SSOModel == nil || s.deps.SSO == nil {
		return domain.SSOProvider{}, errSSONotConfig
	}
	p, _, ok := s.deps.SSOModel.SSOProvider(name)
	if !ok || !p.Exists() {
		return domain.SSOProvider{}, errSSONotConfig
	}
	return p, nil
}

// errSSOAccountInactive: the identity belongs to a deactivated user.
var errSSOAccountInactive = &Error{http.StatusUnauthorized, "UNAUTHORIZED", "Login refused: the account is deactivated"}

// ssoLogin runs the login command for a verified identity.
func (s *Server) ssoLogin(c *fiber.Ctx, in domain.SSOLogin) (commands.LoginResult, error) {
	ctx, cancel := s.ctx(c)
	defer cancel()
	res, err := s.deps.SSO.SSOLogin(ctx, s.meta(c), in)
	if errors.Is(err, domain.ErrInvalidCredentials) || errors.Is(err, domain.ErrUserInactive) {
		// The IdP vouched for the person: tell them why, as a refused login
		// (401, like a password login of a deactivated user).
		s.ssoReject(c, "account deactivated", err)
		return res, errSSOAccountInactive
	}
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		s.ssoReject(c, "identity refused", err)
		return res, errSSOFailed
	}
	// The assertion (or the OIDC flow) is consumed, stored, before this
	// runs: a store failure here is not "nothing was changed".
	return res, commands.AfterSignInSpent(err)
}

// ssoReject logs why an SSO answer was refused (the client only learns that
// it was).
func (s *Server) ssoReject(c *fiber.Ctx, why string, err error) {
	rid, _ := c.Locals(localRequestID).(string)
	s.log.Warn("sso login refused", "request_id", rid, "path", c.Path(), "reason", why, "err", err)
}

func sameString(a, b string) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
