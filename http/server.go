package http

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/oklog/ulid/v2"
	"github.com/valyala/fasthttp"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/http/scim"
	"github.com/infracast/auth/projections"
)

// Authenticator runs the login and refresh commands.
type Authenticator interface {
	Login(ctx context.Context, meta events.Meta, in commands.LoginInput) (commands.LoginResult, error)
	Refresh(ctx context.Context, meta events.Meta, refreshToken string) (commands.RefreshResult, error)
}

// UserCommands changes users.
type UserCommands interface {
	CreateUser(ctx context.Context, meta events.Meta, in commands.CreateUserInput) (domain.User, error)
	ExecuteUser(ctx context.Context, meta events.Meta, userID string, cmd domain.UserCommand) (domain.User, error)
	// ExecuteUserAs checks may, the caller's authority over the user, on
	// the state the command is decided against (nil: none).
	ExecuteUserAs(ctx context.Context, meta events.Meta, userID string, cmd domain.UserCommand, may func(domain.User) error) (domain.User, error)
	// ChangePassword sets userID's password; current, when not "", must be
	// the present one (a user changing their own).
	ChangePassword(ctx context.Context, meta events.Meta, userID, password, current, keepSession string) error
}

// SessionCommands revokes sessions and tokens.
type SessionCommands interface {
	ExecuteSession(ctx context.Context, meta events.Meta, sessionID string, cmd domain.SessionCommand) error
	RevokeRefreshToken(ctx context.Context, meta events.Meta, refreshToken string) error
	// RevokeSessions and RevokeUserSessions check may, when not nil, on the
	// sessions' user as each revocation's append expects it (they are then
	// appended one at a time; the answer counts those stored).
	RevokeSessions(ctx context.Context, meta events.Meta, sessionIDs []string, reason string, may func(domain.User) error) (int, error)
	RevokeUserSessions(ctx context.Context, meta events.Meta, userID, reason string, may func(domain.User) error) (int, error)
}

// KeyCommands manages API keys.
type KeyCommands interface {
	CreateAPIKey(ctx context.Context, meta events.Meta, in commands.CreateAPIKeyInput) (domain.APIKey, string, error)
	ExecuteAPIKey(ctx context.Context, meta events.Meta, keyID string, cmd domain.APIKeyCommand) (domain.APIKey, error)
	// ExecuteAPIKeyAs checks may, the caller's authority over the key, on
	// the state the command is decided against (nil: none).
	ExecuteAPIKeyAs(ctx context.Context, meta events.Meta, keyID string, cmd domain.APIKeyCommand, may func(domain.APIKey) error) (domain.APIKey, error)
	RotateAPIKey(ctx context.Context, meta events.Meta, in commands.RotateInput) (domain.APIKey, string, error)
	// Replacing claims an aggregate's secret for a request that replaces
	// it (commands.Service.Replacing): false while another holds it.
	Replacing(aggregate, id string) (release func(), ok bool)
}

// KeyUsage records that a key was used, off the request path.
type KeyUsage interface {
	Touch(keyID string, t time.Time)
}

// ReadModel answers the request path's questions.
type ReadModel interface {
	Authorize(sessionID, tokenID string, now time.Time) (projections.Principal, projections.Verdict)
	AuthorizeKey(secretHash string, addr netip.Addr, now time.Time) (projections.KeyPrincipal, projections.Verdict)
	AuthorizeKeySum(sum [32]byte, addr netip.Addr, now time.Time) (projections.KeyPrincipal, projections.Verdict)
	APIKey(id string) (domain.APIKey, uint64, bool)
	APIKeys() []domain.APIKey
	ListAPIKeys(q projections.KeyListQuery) (keys []domain.APIKey, next string)
	KeyBySecretHash(secretHash string) (domain.APIKey, bool)
	User(id string) (domain.User, uint64, bool)
	ListUsers(q projections.UserListQuery) (users []domain.User, next string)
	Session(id string) (domain.Session, uint64, bool)
	UserSessions(userID string, now time.Time) ([]projections.UserSession, bool)
}

// Readiness tells whether requests can be answered.
type Readiness interface {
	// Serving: the read models have caught up once since start (and the
	// first start's bootstrap is done), so answers are not stale.
	Serving() bool
	// Ready: serving, and the event store is reachable now; otherwise why not.
	Ready() (bool, string)
	// Applied is the last stream sequence applied to the read models.
	Applied() uint64
}

var (
	_ Authenticator   = (*commands.Service)(nil)
	_ UserCommands    = (*commands.Service)(nil)
	_ SessionCommands = (*commands.Service)(nil)
	_ KeyCommands     = (*commands.Service)(nil)
	_ KeyUsage        = (*commands.KeyUsage)(nil)
	_ ReadModel       = (*projections.Model)(nil)
	_ SCIMCommands    = (*commands.Service)(nil)
	_ SCIMReadModel   = (*projections.Model)(nil)
)

// Deps are the server's collaborators.
type Deps struct {
	Auth      Authenticator
	Users     UserCommands
	Sessions  SessionCommands
	Keys      KeyCommands
	KeyUsage  KeyUsage
	Model     ReadModel
	Readiness Readiness
	Tokens    *Tokens
	Log       *slog.Logger
	// Metrics, when set, are recorded and served at GET /metrics.
	Metrics *Metrics
	// Barrier, when set, says whether another replica waits for this one
	// to apply a revocation it has not applied yet (events.Barrier): then
	// no credential is checked here before it has.
	Barrier interface {
		Behind() bool
		WaitRequired(ctx context.Context) error
	}
	// CatchUp, when set, lets a replica wait for what another replica has
	// just written (read-your-writes across replicas): an aggregate's
	// events, or everything up to the event store's head.
	CatchUp interface {
		CatchUp(ctx context.Context, aggregate, id string) error
		CatchUpHead(ctx context.Context) error
		// Alone: no other replica serves, so reads need not catch up.
		Alone() bool
		// CatchUpBudget takes one catch-up for an unknown secret from the
		// replica's budget (commands.UnknownCatchUpRate): false if none.
		CatchUpBudget() bool
	}
	// SigningKeys and SigningKeyModel rotate access-token keys as events.
	SigningKeys     SigningKeyCommands
	SigningKeyModel SigningKeyModel
	// SSO and SSOModel serve single sign-on (sso*.go); nil: no SSO.
	SSO      SSOCommands
	SSOModel SSOReadModel
	// History and Events serve the audit log and the access history
	// (audit.go, access.go, credential_check.go); nil: those answer 503.
	History HistoryModel
	Events  EventReader
	// SCIM and SCIMModel serve SCIM provisioning (scim_*.go); nil: the
	// SCIM routes answer 503 (under /scim/v2) or 404.
	SCIM      SCIMCommands
	SCIMModel SCIMReadModel
	// MFA and MFAModel serve multi-factor authentication (mfa.go); nil:
	// its routes answer 503 and logins ask for no second factor.
	MFA      MFACommands
	MFAModel MFAReadModel
}

// Config tunes the HTTP edge.
type Config struct {
	BodyLimit       int           // bytes, default 64 KiB
	RequestTimeout  time.Duration // per command, default 10 s
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration
	RefreshRotation bool
	// RefreshReuseInterval: with rotation, how long after a rotation the
	// token it spent may be presented again (the console keeps its retries
	// within it: console_session.go).
	RefreshReuseInterval time.Duration
	// RevokedSessionGrace: how long after its last use a revoked session
	// is forgotten by the read model (projections.Model.RevokedSessionGrace;
	// 0: kept until it expires), for the credential check's answer on a
	// refresh token it no longer finds.
	RevokedSessionGrace time.Duration
	Now                 func() time.Time
	// TrustedProxies may set X-Forwarded-For; for everyone else it is ignored.
	TrustedProxies TrustedProxies
	// KeyEnv is the environment of the API keys this deployment issues and
	// accepts: "live" in production, "test" elsewhere.
	KeyEnv string
	// CORSOrigins lists the exact browser origins allowed to call the API
	// cross-origin; empty (the default): no CORS headers at all.
	CORSOrigins []string
	// RoutePolicy decides which permission each tenant route needs
	// (nil: domain.DefaultPolicy()).
	RoutePolicy *domain.Policy
	// Upstream, when set, receives every authorized /api/v1/tenants/{tenant}/**
	// request (see gateway.go); UpstreamTimeout (default 30 s) bounds its silences.
	Upstream        *url.URL
	UpstreamTimeout time.Duration
	// SSO tunes single sign-on and browser (cookie) sessions (sso.go).
	SSO SSOConfig
}

// Server is the HTTP API.
type Server struct {
	app    *fiber.App
	deps   Deps
	cfg    Config
	log    *slog.Logger
	tokens *Tokens
	policy domain.Policy
	gw     *gateway // nil without an upstream
	oidc   oidcProviders
	// keyCatchUps paces the catch-ups for signing keys this replica may
	// not have applied yet (signingkeys.go).
	keyCatchUps pacedCatchUps
	// refusals logs refused requests whose caller is known (refusals.go).
	refusals *refusalLog
}

const (
	localRequestID = "request_id"
	localCaller    = "caller"
)

// New builds the Fiber app with every route.
func New(cfg Config, deps Deps) *Server {
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = 64 << 10
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 15 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.KeyEnv == "" {
		cfg.KeyEnv = domain.KeyEnvLive
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{deps: deps, cfg: cfg, log: log, tokens: deps.Tokens, policy: domain.DefaultPolicy()}
	s.refusals = newRefusalLog(log, cfg.Now, deps.Metrics)
	if cfg.RoutePolicy != nil {
		s.policy = *cfg.RoutePolicy
	}
	if cfg.Upstream != nil {
		s.gw = newGateway(cfg.Upstream, cfg.UpstreamTimeout)
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "infracast-auth",
		BodyLimit:             cfg.BodyLimit,
		ReadBufferSize:        16 << 10,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		// Fiber's helpers (BaseURL, Hostname, Protocol) believe a client's
		// X-Forwarded-Host and -Proto unless this is on: with no proxy of
		// its own trusted, they read the request itself. The service's
		// external origin is INFRACAST_PUBLIC_URL, or the Host header; only
		// X-Forwarded-For is read, from TrustedProxies (clientip.go). (A
		// re-check: SCIM's meta.location followed a client's header.)
		EnableTrustedProxyCheck: true,
	})
	s.routes()
	s.answerUnknownMethods()
	return s
}

// answerUnknownMethods makes a request with a method Fiber does not know
// (PROPFIND, FOO, a lower-case get) get the contract's 501 NOT_IMPLEMENTED
// (RFC 9110: a method the server does not recognise for any resource), with
// the security headers — and the console's under /console — and counted in
// the metrics, instead of Fiber's plain-text 400 "Invalid http method",
// which it answers before any middleware runs (two re-checks).
func (s *Server) answerUnknownMethods() {
	srv := s.app.Server()
	inner := srv.Handler
	known := s.app.Config().RequestMethods
	srv.Handler = func(rctx *fasthttp.RequestCtx) {
		m := rctx.Method()
		for _, k := range known {
			if string(m) == k { // compared without a copy: on every request
				inner(rctx)
				return
			}
		}
		start := time.Now()
		c := s.app.AcquireCtx(rctx)
		defer s.app.ReleaseCtx(c)
		if err := s.handleError(c, errMethodUnknown); err != nil {
			rctx.Error("Method not implemented", fiber.StatusNotImplemented)
			return
		}
		if isConsolePath(c.Path()) { // after handleError's default CSP
			setConsoleHeaders(c)
		}
		if m := s.deps.Metrics; m != nil {
			m.observe("/", string(rctx.Method()), fiber.StatusNotImplemented, time.Since(start))
		}
	}
}

// App returns the Fiber app (for Listen, Listener, Test and Shutdown).
func (s *Server) App() *fiber.App { return s.app }

func (s *Server) routes() {
	a := s.app
	a.Use(s.recoverPanics, s.observe)
	if len(s.cfg.CORSOrigins) > 0 {
		a.Use(cors.New(cors.Config{
			AllowOrigins:  strings.Join(s.cfg.CORSOrigins, ","),
			AllowMethods:  "GET,POST,PUT,PATCH,DELETE",
			AllowHeaders:  "Authorization,Content-Type,X-CSRF-Token",
			ExposeHeaders: "X-Request-ID,Retry-After,X-Next-Cursor", // X-Next-Cursor: the audit log's CSV pages
			MaxAge:        600,
		}))
	}
	a.Get("/health", s.health)
	a.Get("/openapi.json", s.openAPI)
	if s.deps.Metrics != nil {
		a.Get("/metrics", s.deps.Metrics.handler)
	}
	a.Get("/ready", s.ready)
	a.Get("/.well-known/jwks.json", s.jwks)
	a.Get("/login", s.requireServing, s.loginPage)
	// The admin console (console_session.go, http/console): its own strict
	// CSP, its assets embedded.
	s.mountConsole()

	v1 := a.Group("/api/v1", s.requireServing)
	v1.Post("/auth/token", s.browserSession, s.login)
	v1.Post("/auth/refresh", s.browserRefresh, s.refresh)
	v1.Post("/auth/revoke", s.revoke)
	// Multi-factor authentication (mfa.go).
	v1.Post("/auth/token/mfa", s.browserSession, s.tokenMFA)
	v1.Post("/auth/passkey/options", s.passkeyOptions)
	v1.Post("/auth/token/passkey", s.browserSession, s.tokenPasskey)

	// Authenticated routes take the middleware per route, so that an unknown
	// method on a known path still answers 405 and an unknown path 404.
	auth := s.authenticate
	v1.Post("/auth/logout", s.authenticateLogout, s.logout)
	v1.Get("/auth/sessions", auth, s.current, s.mySessions)
	v1.Delete("/auth/sessions/:id", auth, s.revokeMySession)
	v1.Get("/auth/me", auth, s.me)
	v1.Get("/auth/verify", auth, s.verify)
	v1.All("/auth/verify/*", verifyEnvoyNeedsPath, auth, s.verifyEnvoy)
	enroll := s.authenticateOrEnroll // a session, or an enrolment token (mfa.go)
	v1.Get("/auth/mfa", enroll, s.getMFA)
	v1.Post("/auth/mfa/totp", enroll, s.enrollTOTP)
	v1.Post("/auth/mfa/totp/confirm", enroll, s.confirmTOTP)
	v1.Post("/auth/mfa/recovery-codes", auth, s.regenerateRecoveryCodes)
	v1.Post("/auth/mfa/passkeys/options", enroll, s.passkeyRegistrationOptions)
	v1.Post("/auth/mfa/passkeys", enroll, s.registerPasskey)
	v1.Delete("/auth/mfa/passkeys/:id", auth, s.deletePasskey)
	v1.Get("/admin/mfa/policy", auth, s.getMFAPolicy)
	v1.Put("/admin/mfa/policy", auth, s.setMFAPolicy)
	v1.Get("/admin/mfa/policy/:tenant", auth, s.getMFAPolicy)
	v1.Put("/admin/mfa/policy/:tenant", auth, s.setMFAPolicy)

	v1.Post("/users", auth, s.createUser)
	v1.Get("/users", auth, s.current, s.listUsers)
	v1.Get("/users/:id", auth, s.getUser)
	v1.Put("/users/:id/tenants/:tenant", auth, s.grantRole)
	v1.Delete("/users/:id/tenants/:tenant", auth, s.revokeRole)
	v1.Post("/users/:id/deactivate", auth, s.deactivate)
	v1.Post("/users/:id/activate", auth, s.activate)
	v1.Get("/users/:id/sessions", auth, s.current, s.userSessions)
	v1.Delete("/users/:id/sessions", auth, s.revokeUserSessions)
	v1.Delete("/users/:id/sessions/:sid", auth, s.revokeUserSession)
	v1.Post("/users/:id/password", auth, s.changePassword)
	v1.Post("/users/:id/mfa/reset", auth, s.resetMFA)
	v1.Get("/users/:id/access", auth, s.current, s.userAccess)

	v1.Post("/api-keys", auth, s.createAPIKey)
	v1.Get("/api-keys", auth, s.current, s.listAPIKeys)
	v1.Get("/api-keys/:id", auth, s.getAPIKey)
	v1.Delete("/api-keys/:id", auth, s.revokeAPIKey)
	v1.Post("/api-keys/:id/rotate", auth, s.rotateAPIKey)
	v1.Get("/api-keys/:id/access", auth, s.current, s.keyAccess)

	v1.Get("/audit/events", auth, s.current, s.auditEvents)
	v1.Post("/audit/credential-check", auth, s.credentialCheck)

	v1.Get("/admin/signing-keys", auth, s.requirePlatformAdmin, s.current, s.listSigningKeys)
	v1.Post("/admin/signing-keys", auth, s.requirePlatformAdmin, s.addSigningKey)
	v1.Post("/admin/signing-keys/:id/activate", auth, s.requirePlatformAdmin, s.activateSigningKey)
	v1.Post("/admin/signing-keys/:id/retire", auth, s.requirePlatformAdmin, s.retireSigningKey)

	// Before the gateway's catch-all: this one is the service's own.
	v1.Get("/tenants/:tenant/access", auth, s.current, s.tenantAccess)
	// The tenant's own path is the gateway's too (the policy's "anything
	// else": admin:*). The wildcard route matched it already, with an empty
	// rest; registered on its own, it is listed, so documented (outside
	// check 13a).
	v1.All("/tenants/:tenant", auth, s.tenantResource)
	v1.All("/tenants/:tenant/*", auth, s.tenantResource)

	v1.Get("/auth/sso/saml/metadata", s.samlMetadata)
	v1.Get("/auth/sso/saml/login", s.samlLoginStart)
	v1.Post("/auth/sso/saml/acs", s.samlACS)
	v1.Get("/auth/sso/:provider/login", s.ssoLoginStart)
	v1.Get("/auth/sso/:provider/callback", s.ssoCallback)
	v1.Get("/admin/sso", auth, s.current, s.listSSO)
	v1.Post("/admin/sso/:type", auth, s.configureSSO)
	v1.Get("/admin/sso/:provider", auth, s.getSSO)
	v1.Delete("/admin/sso/:provider", auth, s.deleteSSO)
	v1.Delete("/admin/sso/:provider/identities", auth, s.unlinkSSOIdentity)

	v1.Get("/admin/scim", auth, s.current, s.listSCIM)
	v1.Post("/admin/scim", auth, s.createSCIM)
	v1.Get("/admin/scim/:id", auth, s.getSCIM)
	v1.Put("/admin/scim/:id", auth, s.updateSCIM)
	v1.Delete("/admin/scim/:id", auth, s.deleteSCIM)
	v1.Post("/admin/scim/:id/rotate", auth, s.rotateSCIM)

	// SCIM 2.0 (http/scim): only a SCIM connection's token is accepted there.
	scimOpts := scim.Options{AcceptPasswords: true, Log: s.log}
	if u := s.cfg.SSO.PublicURL; u != nil {
		scimOpts.BaseURL = strings.TrimSuffix(u.String(), "/") + scimPrefix
	}
	scim.New(scimBackend{s}, scimOpts).Register(a.Group(scimPrefix, s.scimAuthenticate))
}

func (s *Server) recoverPanics(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic recovered", "request_id", c.Locals(localRequestID), "panic", r)
			err = errInternal
		}
	}()
	return c.Next()
}

// The request ID and security headers every answer carries (startAnswer,
// defaultCSP), as byte slices.
var (
	hdrRequestID             = []byte("X-Request-ID")
	hdrContentTypeOptions    = []byte(fiber.HeaderXContentTypeOptions)
	hdrReferrerPolicy        = []byte(fiber.HeaderReferrerPolicy)
	hdrFrameOptions          = []byte(fiber.HeaderXFrameOptions)
	hdrCacheControl          = []byte(fiber.HeaderCacheControl)
	hdrContentSecurityPolicy = []byte(fiber.HeaderContentSecurityPolicy)
	valNosniff               = []byte("nosniff")
	valNoReferrer            = []byte("no-referrer")
	valDeny                  = []byte("DENY")
	valNoStore               = []byte("no-store")
	valNoneCSP               = []byte("default-src 'none'; frame-ancestors 'none'")
)

// observe gives every request an ID (X-Request-ID, and in logs), sets the
// security headers, answers errors in the contract's shape, and records the
// request's metrics and, at debug level, an access log line.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	id := startAnswer(c, start)
	h := &c.Response().Header
	if err := c.Next(); err != nil {
		if herr := s.handleError(c, err); herr != nil {
			return herr
		}
	}
	defaultCSP(h)
	status := c.Response().StatusCode()
	if m := s.deps.Metrics; m != nil {
		m.observe(c.Route().Path, c.Method(), status, time.Since(start))
	}
	if s.log.Enabled(c.UserContext(), slog.LevelDebug) {
		s.log.Debug("request", "request_id", id, "method", c.Method(), "route", c.Route().Path,
			"status", status, "duration", time.Since(start), "ip", s.clientAddr(c).String())
	}
	return nil
}

// startAnswer gives the request c an ID (returned, and in c's locals) and
// sets it and the default security headers on the answer.
func startAnswer(c *fiber.Ctx, start time.Time) string {
	id := requestID(start)
	c.Locals(localRequestID, id)
	h := &c.Response().Header
	// The names are canonical already: SetCanonical skips normalizing them.
	h.SetCanonical(hdrRequestID, []byte(id))
	h.SetCanonical(hdrContentTypeOptions, valNosniff)
	h.SetCanonical(hdrReferrerPolicy, valNoReferrer)
	h.SetCanonical(hdrFrameOptions, valDeny)
	h.SetCanonical(hdrCacheControl, valNoStore)
	return id
}

// defaultCSP sets the default Content-Security-Policy on an answer that
// has none of its own (the console and the login page set theirs).
func defaultCSP(h *fasthttp.ResponseHeader) {
	if len(h.Peek(fiber.HeaderContentSecurityPolicy)) == 0 {
		h.SetCanonical(hdrContentSecurityPolicy, valNoneCSP)
	}
}

// requestID is a new request ID: "req-" and a ULID of t (the request's
// start) whose 80 random bits come from math/rand/v2's generator, which each
// thread has its own of. ulid.Make read the clock again and drew from one
// generator behind a mutex for the whole process, on every request; a
// request ID must be unique, not secret, and none of its readers relies on
// two made in the same millisecond being in order.
// NewRequestID is a request ID as the server makes one, for the answers of
// a start before the server runs (service.Starting).
func NewRequestID() string { return requestID(time.Now()) }

func requestID(t time.Time) string {
	var id ulid.ULID
	if err := id.SetTime(ulid.Timestamp(t)); err != nil {
		panic(err) // after the year 10889 (ulid.MustNew panics alike)
	}
	r := rand.Uint64()
	for i := 6; i < 14; i++ {
		id[i], r = byte(r), r>>8
	}
	r = rand.Uint64()
	id[14], id[15] = byte(r), byte(r>>8)
	var b [len("req-") + ulid.EncodedSize]byte
	copy(b[:], "req-")
	if err := id.MarshalTextTo(b[len("req-"):]); err != nil {
		panic(err) // b has room for exactly ulid.EncodedSize: cannot happen
	}
	return string(b[:])
}

func (s *Server) health(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (s *Server) ready(c *fiber.Ctx) error {
	if ok, why := s.deps.Readiness.Ready(); !ok {
		var body errorBody
		body.Error.Code, body.Error.Message = "UNAVAILABLE", why
		return c.Status(fiber.StatusServiceUnavailable).JSON(body)
	}
	return c.JSON(fiber.Map{"status": "ready", "applied_sequence": s.deps.Readiness.Applied()})
}

// requireServing answers 503 until the read models have caught up at start:
// before that, a revoked token could still look valid.
func (s *Server) requireServing(c *fiber.Ctx) error {
	if !s.deps.Readiness.Serving() {
		c.Set(fiber.HeaderRetryAfter, "1")
		return &Error{fiber.StatusServiceUnavailable, "UNAVAILABLE", "Read models are catching up with the event store; try again shortly"}
	}
	return c.Next()
}

// meta describes the request for the events it causes.
func (s *Server) meta(c *fiber.Ctx) events.Meta {
	m := events.Meta{Actor: events.Actor{Type: "anonymous"}, Request: events.RequestInfo{
		IP: s.clientAddr(c).String(), UserAgent: truncate(c.Get(fiber.HeaderUserAgent), 256),
	}}
	m.Request.RequestID, _ = c.Locals(localRequestID).(string)
	if cl, ok := c.Locals(localCaller).(*Caller); ok {
		m.Actor = events.Actor{Type: "user", ID: cl.User.ID}
		if cl.Key != nil {
			m.Actor = events.Actor{Type: "apikey", ID: cl.Key.ID}
		}
	}
	return m
}

// truncate is s as valid UTF-8 (a run of invalid bytes becomes one U+FFFD,
// as the event's JSON would otherwise have each byte become one), cut to at
// most n bytes at a character boundary: never half a character, which the
// JSON would store as a longer U+FFFD.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ctx bounds a command by the request timeout.
func (s *Server) ctx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
}

// rfc3339 formats times as the contract does: UTC, whole seconds.
func rfc3339(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// bearer returns the token of the request's Authorization: Bearer header
// (ok false without one). The authentication middlewares refuse a request
// with more than one Authorization header first (repeatedAuthorization).
func bearer(c *fiber.Ctx) (string, bool) {
	h := c.Get(fiber.HeaderAuthorization)
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(h[7:])
	return tok, tok != ""
}

// repeatedAuthorization reports whether the request carries more than one
// Authorization header. It is refused as a bad credential (401), before any
// is looked at, never the first taken: a proxy in forward-auth mode may pass
// both upstream, where a service may read the other one (outside check 14d;
// nginx itself refuses such a request with its own 400). A
// 401, not a 400: forward-auth proxies pass a 401 on as the answer, and take
// any other status but 2xx and 403 for a failure of the service.
func repeatedAuthorization(c *fiber.Ctx) bool {
	return len(c.Request().Header.PeekAll(fiber.HeaderAuthorization)) > 1
}
