package http

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/gofiber/fiber/v2"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/projections"
)

// Multi-factor authentication (docs/mfa.md): the second step of a login,
// passwordless passkey sign-in, the caller's own factors (enrolment,
// recovery codes, passkeys), the admin reset and the MFA policies.

// MFACommands runs the MFA flows (events/commands/mfa.go).
type MFACommands interface {
	CompleteMFA(ctx context.Context, meta events.Meta, in commands.MFAInput) (commands.LoginResult, error)
	WebAuthnChallenge(ctx context.Context, token string, rp commands.RelyingParty) (string, *protocol.CredentialAssertion, error)
	BeginPasskeyLogin(rp commands.RelyingParty) (string, *protocol.CredentialAssertion, error)
	FinishPasskeyLogin(ctx context.Context, meta events.Meta, token string, credential json.RawMessage, rp commands.RelyingParty) (commands.LoginResult, error)
	EnrollmentUser(ctx context.Context, token string) (domain.User, error)
	EnrollTOTP(ctx context.Context, meta events.Meta, userID string) (commands.TOTPEnrollment, error)
	ConfirmTOTP(ctx context.Context, meta events.Meta, userID, code string) ([]string, error)
	// RecoverySet is the set in force (caught up), and
	// RegenerateRecoveryCodesReplacing replaces that set as found before
	// the claim (Replacing, as KeyCommands').
	RecoverySet(ctx context.Context, userID string) (string, error)
	RegenerateRecoveryCodesReplacing(ctx context.Context, meta events.Meta, userID, replaces string) ([]string, error)
	Replacing(aggregate, id string) (release func(), ok bool)
	FirstRecoveryCodes(ctx context.Context, meta events.Meta, userID string) ([]string, error)
	BeginPasskeyRegistration(ctx context.Context, userID string, rp commands.RelyingParty) (string, *protocol.CredentialCreation, error)
	FinishPasskeyRegistration(ctx context.Context, meta events.Meta, userID, token, name string, credential json.RawMessage, rp commands.RelyingParty) (domain.Passkey, error)
	RegisterPasskey(ctx context.Context, meta events.Meta, userID, token, name string, credential json.RawMessage, rp commands.RelyingParty) (domain.Passkey, []string, error)
	DeletePasskey(ctx context.Context, meta events.Meta, userID, credentialID string) error
	ResetMFA(ctx context.Context, meta events.Meta, userID, reason string, may func(domain.User) error) (int, error)
	SetMFAPolicy(ctx context.Context, meta events.Meta, scope string, required bool) (domain.MFAPolicy, error)
}

// MFAReadModel reads users' factors and the policies.
type MFAReadModel interface {
	MFA(userID string) (domain.MFA, uint64)
	MFAPolicy(scope string) (domain.MFAPolicy, uint64)
	MFAPolicies() []string
}

var (
	_ MFACommands       = (*commands.Service)(nil)
	_ MFAReadModel      = (*projections.Model)(nil)
	_ commands.MFAState = (*projections.Model)(nil)
)

// The beginnings of the messages of the 409 CONFLICT answers of a TOTP
// enrolment's steps, which docs/mfa.md and the OpenAPI document promise to
// keep as they are: a client tells the answers apart by them (the login
// page does: on the first two it signs in with the factor, on the last it
// stays on the enrolment step). The contract's error has a code and a
// message only, and all three are CONFLICT.
const (
	msgTOTPConfirmed = "TOTP is already confirmed"
	msgSetUpAlready  = "A second factor is set up already"
	msgTOTPRestarted = "The TOTP enrolment was restarted elsewhere"
)

// msgPasskeyRefused answers a passkey refused at sign-in, passwordless or
// as the second factor (where a wrong code's answer would speak of a code).
const msgPasskeyRefused = "The passkey was not accepted"

// MFA error codes beside the contract's.
const (
	codeMFARequired           = "MFA_REQUIRED"
	codeMFAEnrollmentRequired = "MFA_ENROLLMENT_REQUIRED"
)

var (
	errMFAToken       = &Error{http.StatusUnauthorized, "UNAUTHORIZED", "MFA token invalid, expired or already used; sign in again"}
	errMFACode        = &Error{http.StatusUnauthorized, "UNAUTHORIZED", "Invalid or already used code"}
	errPasskeyRefused = &Error{http.StatusUnauthorized, "UNAUTHORIZED", msgPasskeyRefused}
	// A passkey registration's token expired, used, or void (a reset of the
	// factors, a password change or a deactivation since it was issued).
	errRegistrationToken = validation("registration_token: expired or already used, or the factors or the password changed since: start the passkey registration again")
	errMFANone           = &Error{http.StatusConflict, "CONFLICT", "No such factor is enrolled (or being enrolled)"}
	errMFAUnavailable    = &Error{http.StatusServiceUnavailable, "UNAVAILABLE", "Multi-factor authentication is not available"}
	errEnrollOnly        = &Error{http.StatusForbidden, "FORBIDDEN", "An enrolment token allows enrolling a second factor only"}
	// Two tabs (double clicks, retries) at once: only what is in force is shown.
	errTOTPReplaced = &Error{http.StatusConflict, "CONFLICT",
		msgTOTPRestarted + " (another tab or device): the secret this code is from was replaced, and nothing was confirmed. Confirm with a code of the newest enrolment's secret, or enrol again"}
	errRecoveryReplaced = &Error{http.StatusConflict, "CONFLICT",
		"The recovery codes were replaced by another request at the same moment; that request's answer holds the set in force. If you do not have it, make a new set"}
)

// mfaError answers the MFA flows' errors (handleError asks first): the
// MFA_REQUIRED and MFA_ENROLLMENT_REQUIRED bodies, and the statuses of
// the MFA errors. It reports whether it answered.
func (s *Server) mfaError(c *fiber.Ctx, err error) (bool, error) {
	var req *commands.MFARequiredError
	var enroll *commands.MFAEnrollmentRequiredError
	switch {
	case errors.As(err, &req):
		s.deps.Metrics.login("mfa_required")
		return true, s.mfaRequired(c, req)
	case errors.As(err, &enroll):
		s.deps.Metrics.login("mfa_enrollment_required")
		body := fiber.Map{
			"error": fiber.Map{"code": codeMFAEnrollmentRequired,
				"message": "A second factor is required here; enrol one with the enrollment_token, then sign in again"},
			"enrollment_token": enroll.Token, "expires_at": rfc3339(enroll.ExpiresAt),
		}
		return true, c.Status(fiber.StatusForbidden).JSON(body)
	}
	var apiErr *Error
	switch {
	case errors.Is(err, commands.ErrMFATokenInvalid), errors.Is(err, domain.ErrMFATokenUsed):
		apiErr = errMFAToken
	case errors.Is(err, commands.ErrPasskeyNotAccepted):
		apiErr = errPasskeyRefused
	case errors.Is(err, commands.ErrMFACodeInvalid), errors.Is(err, domain.ErrMFACodeUsed):
		apiErr = errMFACode
	case errors.Is(err, domain.ErrMFANotEnrolled):
		apiErr = errMFANone
	case errors.Is(err, domain.ErrTOTPEnrolmentReplaced):
		apiErr = errTOTPReplaced
	case errors.Is(err, domain.ErrRecoveryCodesReplaced):
		apiErr = errRecoveryReplaced
	case errors.Is(err, commands.ErrMFAUnavailable):
		apiErr = errMFAUnavailable
	default:
		return false, nil
	}
	var body errorBody
	body.Error.Code, body.Error.Message = apiErr.Code, apiErr.Message
	return true, c.Status(apiErr.Status).JSON(body)
}

// mfaRequired answers 403 MFA_REQUIRED: the MFA token, the factors, and
// for a user with passkeys the WebAuthn request options, whose challenge
// the returned token carries.
func (s *Server) mfaRequired(c *fiber.Ctx, e *commands.MFARequiredError) error {
	body := fiber.Map{
		"error":   fiber.Map{"code": codeMFARequired, "message": "A second factor is required; send it with the mfa_token to /api/v1/auth/token/mfa"},
		"factors": e.Factors, "mfa_token": e.Token, "expires_at": rfc3339(e.ExpiresAt),
	}
	if tok, options := s.webAuthnStep(c, e); options != nil {
		body["mfa_token"], body["webauthn"] = tok, options
	}
	return c.Status(fiber.StatusForbidden).JSON(body)
}

// webAuthnStep is, for a user with a passkey, the MFA token that carries a
// WebAuthn assertion ceremony and the request options for
// navigator.credentials.get; else e's token and nil.
func (s *Server) webAuthnStep(c *fiber.Ctx, e *commands.MFARequiredError) (string, *protocol.PublicKeyCredentialRequestOptions) {
	if s.deps.MFA == nil || !slices.Contains(e.Factors, domain.FactorWebAuthn) {
		return e.Token, nil
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	tok, assertion, err := s.deps.MFA.WebAuthnChallenge(ctx, e.Token, s.relyingParty(c))
	if err != nil {
		// Without a relying party (no public URL, an odd Host) the other
		// factors still work.
		s.log.Warn("no WebAuthn challenge for MFA_REQUIRED", "err", err)
		return e.Token, nil
	}
	return tok, &assertion.Response
}

// ssoMFAStep answers an SSO login that needs a second factor (or its
// enrolment) first. A browser — an OpenID Connect login with a return_to,
// and every SAML login (browser says so: the browser posted the IdP's form
// to the ACS) — is sent to the login page, the MFA or enrolment token in
// the fragment (never sent to a server, nor in a Referer), with the
// WebAuthn request options (base64url JSON) when the user has a passkey.
// An OpenID Connect login without return_to gets the JSON of POST
// /auth/token (403 MFA_REQUIRED). Other errors are returned as they are.
func (s *Server) ssoMFAStep(c *fiber.Ctx, err error, returnTo string, browser bool) error {
	var req *commands.MFARequiredError
	var enroll *commands.MFAEnrollmentRequiredError
	if !isMFAStep(err) || (returnTo == "" && !browser) {
		return err
	}
	target := "/login"
	if returnTo != "" {
		if _, ok := s.checkReturnTo(returnTo); !ok {
			return errBadReturnTo
		}
		target += "?return_to=" + url.QueryEscape(returnTo)
	}
	frag := url.Values{}
	switch {
	case errors.As(err, &req):
		s.deps.Metrics.login("mfa_required")
		tok, options := s.webAuthnStep(c, req)
		frag.Set("mfa", tok)
		if options != nil {
			raw, err := json.Marshal(options)
			if err != nil {
				return err
			}
			frag.Set("webauthn", base64.RawURLEncoding.EncodeToString(raw))
		}
	case errors.As(err, &enroll):
		s.deps.Metrics.login("mfa_enrollment_required")
		frag.Set("enroll", enroll.Token)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Redirect(target+"#"+frag.Encode(), fiber.StatusFound)
}

// relyingParty is the WebAuthn relying party of the request: the public
// URL's host and origin (INFRACAST_PUBLIC_URL), or in development the
// request's own.
func (s *Server) relyingParty(c *fiber.Ctx) commands.RelyingParty {
	base := s.baseURL(c)
	u, err := url.Parse(base)
	if err != nil {
		return commands.RelyingParty{}
	}
	return commands.RelyingParty{ID: u.Hostname(), Origins: []string{u.Scheme + "://" + u.Host}}
}

func (s *Server) mfaCommands() (MFACommands, error) {
	if s.deps.MFA == nil || s.deps.MFAModel == nil {
		return nil, errMFAUnavailable
	}
	return s.deps.MFA, nil
}

// ---------------------------------------------------------------- login

type mfaTokenRequest struct {
	MFAToken string          `json:"mfa_token"`
	Code     string          `json:"code,omitempty"`
	WebAuthn json.RawMessage `json:"webauthn,omitempty"`
}

// tokenMFA: POST /api/v1/auth/token/mfa, the second step of a login:
// {"mfa_token","code"} (a TOTP or recovery code) or {"mfa_token","webauthn"}
// (the assertion). The answer is POST /auth/token's.
func (s *Server) tokenMFA(c *fiber.Ctx) error {
	m, err := s.mfaCommands()
	if err != nil {
		return err
	}
	var req mfaTokenRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := required("mfa_token", req.MFAToken); err != nil {
		return err
	}
	if req.Code == "" && len(req.WebAuthn) == 0 {
		return validation("code: is required (or webauthn, an assertion)")
	}
	return s.loginStep(c, func(ctx context.Context) (commands.LoginResult, error) {
		return m.CompleteMFA(ctx, s.meta(c), commands.MFAInput{Token: req.MFAToken, Code: req.Code, WebAuthn: req.WebAuthn, RP: s.relyingParty(c)})
	}, nil)
}

// loginStep runs a login step: a refusal is counted (loginFailed) and
// returned, through refused when given; a success is counted and answered
// with the tokens (loginAnswer).
func (s *Server) loginStep(c *fiber.Ctx, run func(context.Context) (commands.LoginResult, error), refused func(error) error) error {
	ctx, cancel := s.ctx(c)
	defer cancel()
	res, err := run(ctx)
	if err != nil {
		s.loginFailed(err)
		if refused != nil {
			return refused(err)
		}
		return err
	}
	s.deps.Metrics.login("success")
	return s.loginAnswer(c, res)
}

// loginFailed counts a refused login step.
func (s *Server) loginFailed(err error) {
	switch {
	case errors.Is(err, domain.ErrThrottled):
		s.deps.Metrics.login("throttled")
	case errors.Is(err, commands.ErrMFACodeInvalid), errors.Is(err, domain.ErrInvalidCredentials):
		s.deps.Metrics.login("failure")
	}
}

// loginAnswer is the token response of a started session.
func (s *Server) loginAnswer(c *fiber.Ctx, res commands.LoginResult) error {
	tok, exp, err := s.tokens.IssueUntil(res.User.ID, res.Session.ID, commands.NewID("tok"), res.Session.Tenant, res.Session.ExpiresAt)
	if err != nil {
		return err
	}
	return c.JSON(loginResponse{Token: tok, ExpiresAt: rfc3339(exp), RefreshToken: res.RefreshToken, User: toUserJSON(res.User)})
}

// passkeyOptions: POST /api/v1/auth/passkey/options starts a passwordless
// sign-in: {"passkey_token","publicKey"} (the request options).
func (s *Server) passkeyOptions(c *fiber.Ctx) error {
	m, err := s.mfaCommands()
	if err != nil {
		return err
	}
	tok, assertion, err := m.BeginPasskeyLogin(s.relyingParty(c))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"passkey_token": tok, "publicKey": assertion.Response})
}

type passkeyTokenRequest struct {
	PasskeyToken string          `json:"passkey_token"`
	Credential   json.RawMessage `json:"credential"`
}

// tokenPasskey: POST /api/v1/auth/token/passkey {"passkey_token","credential"}:
// a passwordless sign-in; the answer is POST /auth/token's.
func (s *Server) tokenPasskey(c *fiber.Ctx) error {
	m, err := s.mfaCommands()
	if err != nil {
		return err
	}
	var req passkeyTokenRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := required("passkey_token", req.PasskeyToken); err != nil {
		return err
	}
	if len(req.Credential) == 0 {
		return validation("credential: is required")
	}
	return s.loginStep(c, func(ctx context.Context) (commands.LoginResult, error) {
		return m.FinishPasskeyLogin(ctx, s.meta(c), req.PasskeyToken, req.Credential, s.relyingParty(c))
	}, func(err error) error {
		if errors.Is(err, domain.ErrInvalidCredentials) {
			return errPasskeyRefused
		}
		return err
	})
}

// ---------------------------------------------------------------- the caller's factors

const localEnrollment = "mfa_enrollment"

// authenticateOrEnroll is authenticate, or an enrolment token
// (MFA_ENROLLMENT_REQUIRED) as the bearer: the enrolment endpoints take
// either.
func (s *Server) authenticateOrEnroll(c *fiber.Ctx) error {
	if repeatedAuthorization(c) {
		return s.refuse("repeated_authorization")
	}
	raw, ok := bearer(c)
	if !ok || domain.LooksLikeAPIKey(raw) || s.deps.MFA == nil {
		return s.authenticate(c)
	}
	if _, err := s.tokens.VerifySignature(raw); err == nil {
		return s.authenticate(c)
	}
	ctx, cancel := s.ctx(c)
	u, err := s.deps.MFA.EnrollmentUser(ctx, raw)
	cancel()
	switch {
	case errors.Is(err, commands.ErrMFAEnrolledMeanwhile):
		return errEnrolledMeanwhile
	case errors.Is(err, commands.ErrMFATokenInvalid):
		return s.authenticate(c) // refused as any bad token is
	case err != nil:
		return err // the user's factors could not be read (the event store)
	}
	cb := callers.Get().(*callerBox)
	cb.Caller = Caller{User: u}
	c.Locals(localEnrollment, true)
	defer c.Locals(localEnrollment, nil)
	return s.withCaller(c, cb)
}

// errEnrolledMeanwhile: an enrolment token whose user has set up a second
// factor since — with this token: a confirmation sent again because its
// answer was lost, or a second tab. Nothing changes; the user signs in with
// the factor, and the recovery codes of the lost answer, in force but shown
// nowhere, are replaced by a new set.
var errEnrolledMeanwhile = &Error{http.StatusConflict, "CONFLICT",
	msgSetUpAlready + " (was the answer to its confirmation lost?): sign in with it, then make new recovery codes (POST /api/v1/auth/mfa/recovery-codes), as the ones shown with it are in force but lost"}

// requireSession refuses an enrolment token where it does not serve.
func (s *Server) requireSession(c *fiber.Ctx) error {
	if enrolling(c) {
		return errEnrollOnly
	}
	return c.Next()
}

func enrolling(c *fiber.Ctx) bool {
	v, _ := c.Locals(localEnrollment).(bool)
	return v
}

// mfaUserCommands opens the caller's-factor endpoints: the MFA commands
// (503 without them), and the caller as a user.
func (s *Server) mfaUserCommands(c *fiber.Ctx) (MFACommands, *Caller, error) {
	m, err := s.mfaCommands()
	if err != nil {
		return nil, nil, err
	}
	cl, err := mfaUser(c)
	if err != nil {
		return nil, nil, err
	}
	return m, cl, nil
}

// ReauthWindow is how recently the caller's session must have signed in —
// with the password (and second factor), a passkey or single sign-on; a
// refresh is not a sign-in — for a change of the caller's second factors
// or a new API key secret. A stolen access token (it lives an hour, its
// session a week) must not add a factor of the thief's — a passkey signs
// in on its own — print new recovery codes, take the user's factors away,
// or become an API key that outlives it and the user's next password.
const ReauthWindow = 10 * time.Minute

var (
	errReauthenticate = &Error{http.StatusForbidden, "REAUTHENTICATION_REQUIRED",
		"Sign in again to change your second factors: this session signed in more than 10 minutes ago"}
	errReauthenticateKey = &Error{http.StatusForbidden, "REAUTHENTICATION_REQUIRED",
		"Sign in again to create or rotate an API key: this session signed in more than 10 minutes ago"}
	errReauthenticateSCIM = &Error{http.StatusForbidden, "REAUTHENTICATION_REQUIRED",
		"Sign in again for a new SCIM token: this session signed in more than 10 minutes ago"}
)

// signedInRecently is nil when the caller's session signed in within
// ReauthWindow, else refused (401 without a session, else refusal).
func (s *Server) signedInRecently(cl *Caller, refusal *Error) error {
	sess, _, ok := s.deps.Model.Session(cl.SessionID)
	if !ok {
		return errUnauthorized
	}
	if s.cfg.Now().Sub(sess.StartedAt) > ReauthWindow {
		return refusal
	}
	return nil
}

// mfaChangeCommands is mfaUserCommands for a change of the caller's
// factors: the caller's session signed in within ReauthWindow, or the
// caller holds an enrolment token (issued by the sign-in, 5 minutes).
func (s *Server) mfaChangeCommands(c *fiber.Ctx) (MFACommands, *Caller, error) {
	m, cl, err := s.mfaUserCommands(c)
	if err != nil || enrolling(c) {
		return m, cl, err
	}
	if err := s.mayChangeOwnFactors(cl); err != nil {
		return nil, nil, err
	}
	return m, cl, nil
}

// mayChangeOwnFactors is nil when the user caller cl (no enrolment token)
// may change its own second factors: a token not scoped to a tenant, of a
// session that signed in within ReauthWindow.
func (s *Server) mayChangeOwnFactors(cl *Caller) error {
	if cl.Tenant != "" {
		return errScopedAccount
	}
	return s.signedInRecently(cl, errReauthenticate)
}

// errOwnFactorsByKey refuses an API key the reset of its own user's
// factors: a key has no sign-in to be recent.
var errOwnFactorsByKey = &Error{http.StatusForbidden, "REAUTHENTICATION_REQUIRED",
	"Sign in again to change your second factors: an API key does not reset its own user's"}

// mfaUser is the caller as a user: an API key has no factors.
func mfaUser(c *fiber.Ctx) (*Caller, error) {
	cl := caller(c)
	if !cl.IsUser() {
		return nil, validation("an API key has no second factor; use a user's token")
	}
	return cl, nil
}

type passkeyJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	CreatedAt  string `json:"created_at"`
	LastUsedAt string `json:"last_used_at,omitempty"`
}

func toPasskeyJSON(p domain.Passkey) passkeyJSON {
	out := passkeyJSON{ID: p.ID, Name: p.Name, CreatedAt: rfc3339(p.CreatedAt)}
	if !p.LastUsedAt.IsZero() {
		out.LastUsedAt = rfc3339(p.LastUsedAt)
	}
	return out
}

type mfaStatusJSON struct {
	TOTP              bool          `json:"totp"`
	TOTPPending       bool          `json:"totp_pending"`
	Passkeys          []passkeyJSON `json:"passkeys"`
	RecoveryCodesLeft int           `json:"recovery_codes_left"`
	Factors           []string      `json:"factors"`
	Required          bool          `json:"required"`
}

func (s *Server) mfaStatus(u domain.User) mfaStatusJSON {
	m, _ := s.deps.MFAModel.MFA(u.ID)
	out := mfaStatusJSON{
		TOTP: m.HasTOTP(), TOTPPending: m.PendingSecretSealed != "", Passkeys: []passkeyJSON{},
		RecoveryCodesLeft: m.RecoveryCodesLeft(), Factors: m.Factors(),
	}
	for _, p := range m.Passkeys {
		out.Passkeys = append(out.Passkeys, toPasskeyJSON(p))
	}
	if p, _ := s.deps.MFAModel.MFAPolicy(domain.MFAPolicyPlatform); p.Required {
		out.Required = true
	}
	for t := range u.Tenants {
		if p, _ := s.deps.MFAModel.MFAPolicy(t); p.Required {
			out.Required = true
		}
	}
	return out
}

// getMFA: GET /api/v1/auth/mfa, the caller's factors (never a secret).
func (s *Server) getMFA(c *fiber.Ctx) error {
	_, cl, err := s.mfaUserCommands(c)
	if err != nil {
		return err
	}
	return c.JSON(s.mfaStatus(cl.User))
}

// enrollTOTP: POST /api/v1/auth/mfa/totp → {"secret","otpauth_uri","qr_png"}
// (the QR code of the URI as a base64 PNG), shown once; pending until confirmed.
func (s *Server) enrollTOTP(c *fiber.Ctx) error {
	m, cl, err := s.mfaChangeCommands(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	e, err := m.EnrollTOTP(ctx, s.meta(c), cl.User.ID)
	if err != nil {
		return err
	}
	png, err := qrcode.Encode(e.URI, qrcode.Medium, 256)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{
		"secret": e.Secret, "otpauth_uri": e.URI, "qr_png": base64.StdEncoding.EncodeToString(png),
	})
}

type codeRequest struct {
	Code string `json:"code"`
}

// confirmTOTP: POST /api/v1/auth/mfa/totp/confirm {"code"} → {"recovery_codes"}.
// A change of the caller's factors like the enrolment it confirms
// (mfaChangeCommands): a stolen access token too old for the enrolment, or
// scoped to a tenant, must not confirm a pending secret by guessing its
// codes and print a new set of recovery codes (an outside check, 17b).
// The guesses themselves count in the login throttle (ConfirmTOTP).
func (s *Server) confirmTOTP(c *fiber.Ctx) error {
	m, cl, err := s.mfaChangeCommands(c)
	if err != nil {
		return err
	}
	var req codeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := required("code", req.Code); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	codes, err := m.ConfirmTOTP(ctx, s.meta(c), cl.User.ID, req.Code)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"recovery_codes": codes})
}

// regenerateRecoveryCodes: POST /api/v1/auth/mfa/recovery-codes → a new
// set (the old one is void).
func (s *Server) regenerateRecoveryCodes(c *fiber.Ctx) error {
	m, cl, err := s.mfaChangeCommands(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	// The set replaced is read before the claim, which is held until the
	// answer is made (as a key's rotation, rotateAPIKey): a regeneration
	// that overtook this one between the two makes this one refused, not
	// the other's answer void (re-check 15r4).
	replaces, err := m.RecoverySet(ctx, cl.User.ID)
	if err != nil {
		return err
	}
	release, ok := m.Replacing(domain.AggregateMFA, cl.User.ID)
	if !ok {
		return domain.ErrRecoveryCodesReplaced // answered as errRecoveryReplaced
	}
	defer release()
	codes, err := m.RegenerateRecoveryCodesReplacing(ctx, s.meta(c), cl.User.ID, replaces)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"recovery_codes": codes})
}

// passkeyRegistrationOptions: POST /api/v1/auth/mfa/passkeys/options →
// {"registration_token","publicKey"} (the creation options).
func (s *Server) passkeyRegistrationOptions(c *fiber.Ctx) error {
	m, cl, err := s.mfaChangeCommands(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	tok, creation, err := m.BeginPasskeyRegistration(ctx, cl.User.ID, s.relyingParty(c))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"registration_token": tok, "publicKey": creation.Response})
}

type passkeyRegisterRequest struct {
	RegistrationToken string          `json:"registration_token"`
	Name              string          `json:"name"`
	Credential        json.RawMessage `json:"credential"`
}

// registerPasskey: POST /api/v1/auth/mfa/passkeys
// {"registration_token","name","credential"} → 201 the passkey, and the
// recovery codes when the user had none yet (shown once).
func (s *Server) registerPasskey(c *fiber.Ctx) error {
	m, cl, err := s.mfaUserCommands(c)
	if err != nil {
		return err
	}
	var req passkeyRegisterRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := required("registration_token", req.RegistrationToken, "name", req.Name); err != nil {
		return err
	}
	if len(req.Credential) == 0 {
		return validation("credential: is required")
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	// The passkey, then for a user without recovery codes the first set
	// (of two registrations at once, one makes it and shows it); a set not
	// made once the passkey is stored is no error (RegisterPasskey).
	pk, codes, err := m.RegisterPasskey(ctx, s.meta(c), cl.User.ID, req.RegistrationToken, req.Name, req.Credential, s.relyingParty(c))
	if errors.Is(err, commands.ErrMFATokenInvalid) {
		// The registration token, not the caller's session or enrolment
		// token: "sign in again" (errMFAToken) would be wrong, and a 401
		// would say the caller is signed out (outside check 14e).
		return errRegistrationToken
	}
	if err != nil {
		return err
	}
	out := fiber.Map{"passkey": toPasskeyJSON(pk)}
	if codes != nil {
		out["recovery_codes"] = codes
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

// deletePasskey: DELETE /api/v1/auth/mfa/passkeys/{id}.
func (s *Server) deletePasskey(c *fiber.Ctx) error {
	m, cl, err := s.mfaChangeCommands(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	if err := m.DeletePasskey(ctx, s.meta(c), cl.User.ID, c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// ---------------------------------------------------------------- administration

// resetMFA: POST /api/v1/users/{id}/mfa/reset (who may deactivate the
// user): every factor goes, and every session of the user ends.
//
// One's own reset is a change of one's own factors, and needs what the
// self-service ones need (mayChangeOwnFactors): else an admin's stolen
// access token, refused 403 REAUTHENTICATION_REQUIRED a passkey's deletion,
// took every factor away here (an outside check, 17b). Another user's
// reset is an admin change like a deactivation, made with any valid token
// of an admin's (docs/security.md, "Known limits").
func (s *Server) resetMFA(c *fiber.Ctx) error {
	m, err := s.mfaCommands()
	if err != nil {
		return err
	}
	cl := caller(c)
	u, err := s.target(c)
	if err != nil {
		return err
	}
	if !cl.managesUser(u) {
		return errForbidden
	}
	if u.ID == cl.User.ID {
		if !cl.IsUser() {
			return errOwnFactorsByKey
		}
		if err := s.mayChangeOwnFactors(cl); err != nil {
			return err
		}
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	n, err := m.ResetMFA(ctx, s.meta(c), u.ID, "reset by "+cl.Subject(), cl.mayManageUser)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"user": toUserJSON(u), "sessions_revoked": n, "mfa": s.mfaStatus(u)})
}

type policyRequest struct {
	Required *bool `json:"required"`
}

type policyJSON struct {
	Scope    string `json:"scope"`
	Required bool   `json:"required"`
}

// mfaPolicyScope is the scope of GET/PUT /api/v1/admin/mfa/policy[/{tenant}],
// and whether the caller may see and set it: the platform's for platform
// admins, a tenant's also for its admins.
func (s *Server) mfaPolicyScope(c *fiber.Ctx) (string, error) {
	cl := caller(c)
	tenant := c.Params("tenant")
	if tenant == "" {
		if !cl.IsPlatformAdmin() {
			return "", errForbidden
		}
		return domain.MFAPolicyPlatform, nil
	}
	if !domain.ValidTenantID(tenant) {
		return "", validation("tenant: is not a valid tenant id")
	}
	if tenant == domain.MFAPolicyPlatform {
		// The platform-wide policy's scope: set through this path, the
		// admin of a tenant named "platform" switched the policy of every
		// user on or off (an outside check, 16j).
		return "", validation(`tenant: "platform" names the platform-wide policy (GET and PUT /api/v1/admin/mfa/policy, platform admins only); a tenant of that id has no policy of its own`)
	}
	if !cl.IsUser() || !cl.PermissionsIn(tenant).Has(domain.AdminAll) {
		return "", errForbidden
	}
	return tenant, nil
}

// getMFAPolicy: GET /api/v1/admin/mfa/policy[/{tenant}].
func (s *Server) getMFAPolicy(c *fiber.Ctx) error {
	if _, err := s.mfaCommands(); err != nil {
		return err
	}
	scope, err := s.mfaPolicyScope(c)
	if err != nil {
		return err
	}
	p, _ := s.deps.MFAModel.MFAPolicy(scope)
	return c.JSON(policyJSON{Scope: scope, Required: p.Required})
}

// setMFAPolicy: PUT /api/v1/admin/mfa/policy[/{tenant}] {"required"}.
func (s *Server) setMFAPolicy(c *fiber.Ctx) error {
	m, err := s.mfaCommands()
	if err != nil {
		return err
	}
	scope, err := s.mfaPolicyScope(c)
	if err != nil {
		return err
	}
	var req policyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Required == nil {
		return validation("required: is required (true or false)")
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	p, err := m.SetMFAPolicy(ctx, s.meta(c), scope, *req.Required)
	if err != nil {
		return err
	}
	return c.JSON(policyJSON{Scope: scope, Required: p.Required})
}

// isMFAStep reports whether a login's error is a step to take next: a
// second factor, or enrolling one.
func isMFAStep(err error) bool {
	var req *commands.MFARequiredError
	var enroll *commands.MFAEnrollmentRequiredError
	return errors.As(err, &req) || errors.As(err, &enroll)
}
