package commands

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// Multi-factor authentication: TOTP (RFC 6238), passkeys (WebAuthn, with
// github.com/go-webauthn/webauthn) and recovery codes, decided on the
// user's "mfa" aggregate (domain/mfa.go). Every use of a factor is an event
// appended expecting the aggregate's last sequence, so a TOTP step, a
// recovery code, a WebAuthn challenge or an MFA token is accepted once,
// whichever replica is asked. A wrong code is an mfa.failed on the user's
// subject, which counts in the login throttle.

// MFAState reads the MFA read model (projections.Model implements it).
type MFAState interface {
	// MFA returns a user's MFA state and the sequence of its last event.
	MFA(userID string) (domain.MFA, uint64)
	// MFAPolicy returns a scope's policy and the sequence of its last event.
	MFAPolicy(scope string) (domain.MFAPolicy, uint64)
	// MFARequired: a policy requires the user to have a second factor.
	MFARequired(u domain.User) bool
	// UserCutOff is the stream sequence of the user's last cut-off — a
	// password change or a deactivation — 0 for none.
	UserCutOff(userID string) uint64
}

// Field names bound into sealed values, and the parameters of TOTP.
const (
	sealTOTPSecret = "totp_secret"
	totpPeriod     = 30
	totpDigits     = otp.DigitsSix
	// TOTPIssuer names the service in authenticator apps.
	TOTPIssuer = "Infracast"
	// DefaultMFATokenTTL is how long an MFA (or enrolment) token and a
	// WebAuthn challenge are good for.
	DefaultMFATokenTTL = 5 * time.Minute
)

// Token purposes.
const (
	purposeMFA      = "mfa"      // the second step of a login
	purposeEnroll   = "enroll"   // enrolment before a first token (policy)
	purposeRegister = "register" // a passkey registration ceremony
	purposePasskey  = "passkey"  // a passwordless sign-in ceremony
)

// Errors of the MFA flows, beside the domain's.
var (
	// ErrMFATokenInvalid: the MFA (or enrolment, or challenge) token is
	// malformed, forged, expired, or for another purpose.
	ErrMFATokenInvalid = errors.New("commands: MFA token invalid or expired")
	// ErrMFAEnrolledMeanwhile: an enrolment token, valid, whose user has a
	// second factor since (the first use of the token set it up: this is a
	// retry whose answer was lost, or another tab's).
	ErrMFAEnrolledMeanwhile = errors.New("commands: a second factor was enrolled with this enrolment token already")
	// ErrMFACodeInvalid: the code (or assertion) is wrong, or was used.
	ErrMFACodeInvalid = errors.New("commands: invalid second factor")
	// ErrPasskeyNotAccepted: the WebAuthn assertion of a login's second
	// step was refused. It is an ErrMFACodeInvalid (counted as one), told
	// apart so that the answer does not speak of a code.
	ErrPasskeyNotAccepted = fmt.Errorf("%w: the passkey was not accepted", ErrMFACodeInvalid)
	// ErrMFAUnavailable: the read models do not serve MFA.
	ErrMFAUnavailable = errors.New("commands: MFA is not available")
)

// MFARequiredError: the password was right and the user has a second
// factor; the login continues with Token at /auth/token/mfa.
type MFARequiredError struct {
	Token     string
	Factors   []string
	ExpiresAt time.Time
	UserID    string
}

func (e *MFARequiredError) Error() string { return "commands: a second factor is required" }

// MFAEnrollmentRequiredError: a policy requires a second factor that the
// user does not have; Token allows the enrolment endpoints only.
type MFAEnrollmentRequiredError struct {
	Token     string
	ExpiresAt time.Time
}

func (e *MFAEnrollmentRequiredError) Error() string {
	return "commands: a second factor must be enrolled first"
}

// RelyingParty is the WebAuthn relying party a request is for: its ID (the
// public URL's host) and the origins a ceremony may come from.
type RelyingParty struct {
	ID      string
	Origins []string
}

func (rp RelyingParty) webAuthn() (*webauthn.WebAuthn, error) {
	if rp.ID == "" || len(rp.Origins) == 0 {
		return nil, domain.Invalid("origin", "the relying party is not known (set INFRACAST_PUBLIC_URL)")
	}
	if net.ParseIP(rp.ID) != nil {
		// WebAuthn takes no IP address as an RP ID: a 400 that says so,
		// not the library's configuration error as a 500.
		return nil, domain.Invalid("origin", "passkeys need a host name, not an IP address: open the service at a name (such as localhost) or set INFRACAST_PUBLIC_URL")
	}
	return webauthn.New(&webauthn.Config{RPID: rp.ID, RPDisplayName: TOTPIssuer, RPOrigins: rp.Origins})
}

func (s *Service) mfaState() (MFAState, error) {
	if st, ok := s.state.(MFAState); ok {
		return st, nil
	}
	return nil, ErrMFAUnavailable
}

// mfaAggregate is a user's MFA aggregate as the write loop reads it: it
// always "exists" (the zero state: nothing enrolled).
func (s *Service) mfaAggregate(st MFAState, userID string) aggregate[domain.MFA] {
	return aggregate[domain.MFA]{
		ref: ref{domain.AggregateMFA, userID},
		load: func() (domain.MFA, uint64, bool) {
			m, seq := st.MFA(userID)
			return m, seq, true
		},
		version: func(m domain.MFA) uint64 { return m.Version },
	}
}

// mfaCurrent is a user's MFA state once this replica has applied the last
// event of the user's mfa subject (one round trip to the event store's
// leader). What a request reads before its write loop — the recovery set a
// regeneration replaces, the pending secret a confirmation's code is
// checked against, the factors a login's second step is checked against —
// may have been changed through another replica a moment ago; read from a
// lagging read model it refused one request after the other as if they had
// come at once (outside check 13r5: 10 of 400 regenerations alternating
// between two replicas answered 409). The write loop's expectation still
// catches what lands after this read.
func (s *Service) mfaCurrent(ctx context.Context, st MFAState, userID string) (domain.MFA, error) {
	if err := s.CatchUp(ctx, domain.AggregateMFA, userID); err != nil {
		return domain.MFA{}, err
	}
	m, _ := st.MFA(userID)
	return m, nil
}

func (s *Service) executeMFA(ctx context.Context, meta events.Meta, st MFAState, userID string, cmd domain.MFACommand) (domain.MFA, error) {
	return execute(ctx, s, meta, write[domain.MFA]{
		on:     s.mfaAggregate(st, userID),
		decide: func(m domain.MFA) ([]domain.Event, error) { return domain.DecideMFA(m, cmd) },
	})
}

// ---------------------------------------------------------------- tokens

// mfaClaims is what an MFA token says. It is signed (HMAC-SHA256 with a
// key derived from the master key, the same on every replica), not
// encrypted: it holds nothing secret. Single use is the MFA aggregate's:
// the token's ID is spent by the event that accepts it.
type mfaClaims struct {
	Purpose string `json:"p"`
	UserID  string `json:"u,omitempty"`
	ID      string `json:"i"`
	Expires int64  `json:"e"`
	Tenant  string `json:"t,omitempty"`
	// Method is the first factor's: "password" or "sso:<provider>".
	Method string `json:"m,omitempty"`
	// Hash fingerprints the sealed password hash the password was verified
	// against: a password change in between ends the login.
	Hash string `json:"h,omitempty"`
	// Cut is the user's last cut-off (MFAState.UserCutOff) when the token
	// was issued: a deactivation (even one undone since) or a password
	// change in between ends the login or the enrolment, as it ends
	// every session started before it.
	Cut uint64 `json:"c,omitempty"`
	// Resets is the user's domain.MFA.Resets when an enrolment token (or a
	// passkey registration's) was issued: an administrator's reset of the
	// factors in between voids it.
	Resets uint64 `json:"r,omitempty"`
	// Session is the WebAuthn ceremony's (challenge, allowed credentials).
	Session *webauthn.SessionData `json:"w,omitempty"`
}

func (s *Service) mfaKey(purpose string) []byte {
	m := hmac.New(sha256.New, s.cfg.MFAKey)
	m.Write([]byte("infracast-auth/mfa/" + purpose))
	return m.Sum(nil)
}

func (s *Service) signMFA(c mfaClaims) (string, time.Time, error) {
	exp := s.cfg.Now().Add(s.cfg.MFATokenTTL).Truncate(time.Second)
	c.Expires, c.ID = exp.Unix(), NewID("mfa")
	payload, err := json.Marshal(c)
	if err != nil {
		return "", time.Time{}, err
	}
	body := base64.RawURLEncoding.EncodeToString(payload)
	m := hmac.New(sha256.New, s.mfaKey("token"))
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)), exp, nil
}

// LooksLikeMFAToken reports whether s has the form of an MFA token (a
// login's second step, an enrolment: signMFA): base64url claims naming a
// purpose and an mfa- ID, a dot, a signature. Whether it is valid is
// openMFA's to say.
func LooksLikeMFAToken(s string) bool {
	body, sig, ok := strings.Cut(s, ".")
	if !ok || sig == "" || strings.Contains(sig, ".") || len(s) > 16<<10 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return false
	}
	var c struct {
		Purpose string `json:"p"`
		ID      string `json:"i"`
	}
	return json.Unmarshal(payload, &c) == nil && c.Purpose != "" && strings.HasPrefix(c.ID, "mfa-")
}

// openMFA verifies a token of one of the purposes and that it has not expired.
func (s *Service) openMFA(token string, purposes ...string) (mfaClaims, error) {
	var c mfaClaims
	body, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > 16<<10 {
		return c, ErrMFATokenInvalid
	}
	// Strict: one spelling per token (spare bits of the last character zero).
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil {
		return c, ErrMFATokenInvalid
	}
	m := hmac.New(sha256.New, s.mfaKey("token"))
	m.Write([]byte(body))
	if !hmac.Equal(got, m.Sum(nil)) {
		return c, ErrMFATokenInvalid
	}
	payload, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || json.Unmarshal(payload, &c) != nil {
		return c, ErrMFATokenInvalid
	}
	if !s.cfg.Now().Before(time.Unix(c.Expires, 0)) {
		return c, ErrMFATokenInvalid
	}
	for _, p := range purposes {
		if c.Purpose == p {
			return c, nil
		}
	}
	return c, ErrMFATokenInvalid
}

func hashFingerprint(sealed string) string {
	if sealed == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(sealed))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// ---------------------------------------------------------------- the login's gate

// mfaGate is asked once the first factor is right (the password, or an
// identity provider's answer): nil lets the login start a session; a
// *MFARequiredError or *MFAEnrollmentRequiredError says what comes first.
// idpMFA: a trusted identity provider asserted a second factor of its own.
//
// The factors are the user's once this replica has caught up with the
// user's mfa subject: a first factor set up through another replica a
// moment ago is asked for here too. The session's start is decided on the
// user's subject, not on this one, so nothing later would catch a factor
// read from a lagging read model (an SSO login, which did not catch up with
// the head, skipped it). caughtUp: the login caught up with the head
// already (loginCatchUp), which covers the subject; so does no other
// replica serving.
func (s *Service) mfaGate(ctx context.Context, caughtUp bool, u domain.User, tenant, method, verifiedHash string, idpMFA bool) error {
	if idpMFA {
		return nil
	}
	st, err := s.mfaState()
	if err != nil {
		return nil // a State without MFA (unit tests' fakes): nothing enrolled anywhere
	}
	if !caughtUp && !s.Alone() {
		if err := s.CatchUp(ctx, domain.AggregateMFA, u.ID); err != nil {
			return err
		}
	}
	m, _ := st.MFA(u.ID)
	if m.HasFactor() {
		tok, exp, err := s.signMFA(mfaClaims{Purpose: purposeMFA, UserID: u.ID, Tenant: tenant, Method: method, Hash: hashFingerprint(verifiedHash),
			Cut: st.UserCutOff(u.ID)})
		if err != nil {
			return err
		}
		return &MFARequiredError{Token: tok, Factors: m.Factors(), ExpiresAt: exp, UserID: u.ID}
	}
	if st.MFARequired(u) {
		tok, exp, err := s.signMFA(mfaClaims{Purpose: purposeEnroll, UserID: u.ID, Cut: st.UserCutOff(u.ID), Resets: m.Resets})
		if err != nil {
			return err
		}
		return &MFAEnrollmentRequiredError{Token: tok, ExpiresAt: exp}
	}
	return nil
}

// EnrollmentUser returns the user an enrolment token stands for: valid,
// unexpired, and the user still has no second factor (an enrolment token
// ends with the first one).
//
// It reads the user's factors once this replica has caught up with the
// user's mfa subject: a reset or a first factor through another replica a
// moment ago ends the token here too.
func (s *Service) EnrollmentUser(ctx context.Context, token string) (domain.User, error) {
	c, err := s.openMFA(token, purposeEnroll)
	if err != nil {
		return domain.User{}, err
	}
	st, err := s.mfaState()
	if err != nil {
		return domain.User{}, err
	}
	u, _, ok := s.state.User(c.UserID)
	if !ok || !u.Active || st.UserCutOff(u.ID) != c.Cut {
		return domain.User{}, ErrMFATokenInvalid
	}
	m, err := s.mfaCurrent(ctx, st, c.UserID)
	if err != nil {
		return domain.User{}, err
	}
	if m.Resets != c.Resets {
		return domain.User{}, ErrMFATokenInvalid // the factors were reset since
	}
	if m.HasFactor() {
		return domain.User{}, ErrMFAEnrolledMeanwhile
	}
	return u, nil
}

// ---------------------------------------------------------------- the second step

// MFAInput is the second step of a login: the MFA token and a TOTP or
// recovery code, or a WebAuthn assertion (the credential's JSON as the
// browser gives it).
type MFAInput struct {
	Token    string
	Code     string
	WebAuthn json.RawMessage
	RP       RelyingParty
}

// CompleteMFA checks the second factor of a login and starts its session.
// A wrong code or assertion counts in the login throttle (per account and
// per address); the MFA token, the TOTP step and a recovery code are each
// accepted once, on any replica.
func (s *Service) CompleteMFA(ctx context.Context, meta events.Meta, in MFAInput) (LoginResult, error) {
	st, err := s.mfaState()
	if err != nil {
		return LoginResult{}, err
	}
	c, err := s.openMFA(in.Token, purposeMFA)
	if err != nil {
		return LoginResult{}, err
	}
	now := s.cfg.Now()
	u, m, err := s.mfaLoginUser(ctx, st, c, c.UserID, meta.Request.IP, now)
	if err != nil {
		return LoginResult{}, err
	}
	// What would refuse the login whatever the factor comes before the
	// factor is used: a code spent on a login that is then refused could not
	// sign the user in a moment later (and counted as reused, in the
	// lockout). The password changed since the first step: this MFA token
	// is dead, sign in again. A tenant the user holds no role in (asked for
	// at the first step, which asks for the factor whatever the tenant and
	// recorded the challenge, or taken away meanwhile): 403 here.
	if st.UserCutOff(u.ID) != c.Cut {
		return LoginResult{}, ErrMFATokenInvalid // deactivated (or a new password) since the first step
	}
	verified := ""
	if c.Method == "password" {
		if hashFingerprint(u.PasswordHashSealed) != c.Hash {
			return LoginResult{}, ErrMFATokenInvalid
		}
		verified = u.PasswordHashSealed
	}
	if c.Tenant != "" && u.PermissionsIn(c.Tenant) == 0 {
		return LoginResult{}, domain.ErrForbidden
	}
	exp := time.Unix(c.Expires, 0)
	var factor string
	switch {
	case len(in.WebAuthn) > 0:
		factor = domain.FactorWebAuthn
		err = s.useAssertion(ctx, meta, st, u, m, c, in.WebAuthn, in.RP)
	case in.Code != "":
		factor, err = s.useCode(ctx, meta, st, u, m, c.ID, exp, in.Code, now)
	default:
		return LoginResult{}, domain.Invalid("code", "is required (or webauthn)")
	}
	if errors.Is(err, domain.ErrMFATokenUsed) {
		return LoginResult{}, ErrMFATokenInvalid
	}
	if err != nil {
		return LoginResult{}, err
	}
	// The factor is spent (stored): a store failure from here on is
	// ErrIncomplete, not "nothing was changed".
	res, err := s.startSession(ctx, meta, u.ID, c.Tenant, c.Method+"+"+factor, verified)
	return res, AfterSignInSpent(err)
}

// normalizeCode drops the spaces and dashes people type or copy.
func normalizeCode(code string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, code)
}

// useCode accepts a TOTP code (6 digits) or a recovery code and spends it,
// with the MFA token tokenID.
func (s *Service) useCode(ctx context.Context, meta events.Meta, st MFAState, u domain.User, m domain.MFA, tokenID string, tokenExp time.Time, code string, now time.Time) (string, error) {
	code = normalizeCode(code)
	if len(code) > 64 {
		return "", s.mfaFailure(ctx, meta, u, domain.FactorTOTP, "invalid_code", now)
	}
	if len(code) == int(totpDigits) && m.HasTOTP() {
		step, ok, err := s.matchTOTP(m.TOTPSecretSealed, code, now)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", s.mfaFailure(ctx, meta, u, domain.FactorTOTP, "invalid_code", now)
		}
		if step <= m.LastTOTPStep {
			return "", s.mfaFailure(ctx, meta, u, domain.FactorTOTP, "code_reused", now)
		}
		_, err = s.executeMFA(ctx, meta, st, u.ID, domain.UseTOTP{Step: step, TokenID: tokenID, TokenExpires: tokenExp, Now: now})
		if errors.Is(err, domain.ErrMFACodeUsed) { // another replica took it first
			return "", s.mfaFailure(ctx, meta, u, domain.FactorTOTP, "code_reused", now)
		}
		return domain.FactorTOTP, err
	}
	if m.HasFactor() {
		if i := s.matchRecoveryCode(m, code); i >= 0 {
			_, err := s.executeMFA(ctx, meta, st, u.ID, domain.UseRecoveryCode{Index: i, TokenID: tokenID, TokenExpires: tokenExp, Now: now})
			if errors.Is(err, domain.ErrMFACodeUsed) {
				return "", s.mfaFailure(ctx, meta, u, domain.FactorRecoveryCode, "code_reused", now)
			}
			return domain.FactorRecoveryCode, err
		}
	}
	return "", s.mfaFailure(ctx, meta, u, domain.FactorRecoveryCode, "invalid_code", now)
}

// mfaFailure records a wrong second factor on the user's subject (it
// counts in the login throttle) and answers ErrMFACodeInvalid, or the
// lockout when the account is locked by now.
func (s *Service) mfaFailure(ctx context.Context, meta events.Meta, u domain.User, factor, reason string, now time.Time) error {
	unlock, err := s.addressFailure(meta.Request.IP, now)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = execute(ctx, s, meta, write[domain.User]{
		on: s.userAggregate(u.ID), missing: domain.ErrNotFound,
		decide: func(u domain.User) ([]domain.Event, error) {
			return domain.DecideMFAFailure(u, factor, reason, now, s.cfg.Throttle)
		},
	})
	if err != nil {
		return err
	}
	return ErrMFACodeInvalid
}

// matchTOTP finds the step, within one step of now either way, whose code
// is code; constant-time per step.
func (s *Service) matchTOTP(sealed, code string, now time.Time) (int64, bool, error) {
	secret, err := s.sealer.Open(sealTOTPSecret, sealed)
	if err != nil {
		return 0, false, fmt.Errorf("commands: unseal TOTP secret: %w", err)
	}
	cur := now.Unix() / totpPeriod
	found, step := 0, int64(0)
	for _, st := range []int64{cur - 1, cur, cur + 1} {
		want, err := hotp.GenerateCodeCustom(secret, uint64(st), hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, false, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && found == 0 {
			found, step = 1, st
		}
	}
	return step, found == 1, nil
}

// TOTPStep is the RFC 6238 time step of t (30-second steps).
func TOTPStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// ---------------------------------------------------------------- recovery codes

// recoveryAlphabet: no 0/O, 1/I/L.
var recoveryEncoding = base32.NewEncoding("ABCDEFGHJKMNPQRSTUVWXYZ23456789_").WithPadding(base32.NoPadding)

// newRecoveryCodes draws a set of codes (12 characters, about 60 bits,
// shown as xxxx-xxxx-xxxx) and their keyed hashes.
func (s *Service) newRecoveryCodes() ([]string, []string, error) {
	codes := make([]string, domain.RecoveryCodeCount)
	hashes := make([]string, domain.RecoveryCodeCount)
	for i := range codes {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return nil, nil, err
		}
		raw := strings.ReplaceAll(recoveryEncoding.EncodeToString(b)[:12], "_", "Z")
		codes[i] = raw[:4] + "-" + raw[4:8] + "-" + raw[8:]
		hashes[i] = s.recoveryHash(raw)
	}
	return codes, hashes, nil
}

// recoveryHash is HMAC-SHA256 keyed from the master key: a reader of the
// event stream cannot test guesses without the key.
func (s *Service) recoveryHash(code string) string {
	m := hmac.New(sha256.New, s.mfaKey("recovery-code"))
	m.Write([]byte(strings.ToUpper(normalizeCode(code))))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// matchRecoveryCode returns the index of the unused code code is, or -1.
func (s *Service) matchRecoveryCode(m domain.MFA, code string) int {
	h := s.recoveryHash(code)
	found := -1
	for i, want := range m.RecoveryHashes {
		if subtle.ConstantTimeCompare([]byte(h), []byte(want)) == 1 && !m.RecoveryUsed[i] {
			found = i
		}
	}
	return found
}

// RegenerateRecoveryCodes replaces a user's recovery codes and returns the
// new ones (shown once). The user must have a second factor. The set
// replaced is the one this request found, caught up with the event store
// (mfaCurrent): when another request replaced it meanwhile (two at once),
// nothing is made and the answer is domain.ErrRecoveryCodesReplaced — only
// the set in force is ever shown.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, meta events.Meta, userID string) ([]string, error) {
	return s.generateRecoveryCodes(ctx, meta, userID, false, nil)
}

// RecoverySet returns the recovery codes in force for userID (the first
// code's hash; "": none), caught up with the event store: what a
// regeneration replaces (RegenerateRecoveryCodesReplacing).
func (s *Service) RecoverySet(ctx context.Context, userID string) (string, error) {
	st, err := s.mfaState()
	if err != nil {
		return "", err
	}
	m, err := s.mfaCurrent(ctx, st, userID)
	if err != nil {
		return "", err
	}
	return m.RecoverySet(), nil
}

// RegenerateRecoveryCodesReplacing is RegenerateRecoveryCodes of the set
// replaces (RecoverySet), as the caller found it — before it claimed the
// user's codes (Replacing), so that a regeneration that overtook it
// meanwhile refuses it rather than be replaced after its answer was made
// (re-check 15r4).
func (s *Service) RegenerateRecoveryCodesReplacing(ctx context.Context, meta events.Meta, userID, replaces string) ([]string, error) {
	return s.generateRecoveryCodes(ctx, meta, userID, false, &replaces)
}

// generateRecoveryCodes makes a set of recovery codes (with ifNone, only for
// a user who has none) replacing the set *replaces (nil: the one in force
// now) and returns it, or nothing when none was made.
func (s *Service) generateRecoveryCodes(ctx context.Context, meta events.Meta, userID string, ifNone bool, replaces *string) ([]string, error) {
	st, err := s.mfaState()
	if err != nil {
		return nil, err
	}
	codes, hashes, err := s.newRecoveryCodes()
	if err != nil {
		return nil, err
	}
	if replaces == nil {
		seen, err := s.mfaCurrent(ctx, st, userID)
		if err != nil {
			return nil, err
		}
		set := seen.RecoverySet()
		replaces = &set
	}
	after, err := s.executeMFA(ctx, meta, st, userID, domain.GenerateRecoveryCodes{
		Hashes: hashes, IfNone: ifNone, Replaces: *replaces, Now: s.cfg.Now(),
	})
	if err != nil {
		return nil, err
	}
	if len(after.RecoveryHashes) == 0 || after.RecoveryHashes[0] != hashes[0] {
		return nil, nil // the user had codes: none made
	}
	if !ifNone {
		// Another regeneration decided after this one was stored — a
		// second tab whose catch-up read this set — may have replaced it
		// before this answer goes out: then this set is void and is not
		// shown, the other request's is (a re-check, 14r5: two requests
		// sent together both answered a set, one of them void, in 13 of 14
		// runs through two replicas). One round trip, on a rare request.
		if s.replacedMeanwhile(ctx, domain.AggregateMFA, userID, func() bool {
			now, _ := st.MFA(userID)
			return now.RecoverySet() != hashes[0]
		}) {
			return nil, domain.ErrRecoveryCodesReplaced
		}
	}
	return codes, nil
}

// RegisterPasskey is FinishPasskeyRegistration, then FirstRecoveryCodes:
// a first factor's registration shows the user's first set of recovery
// codes (nil when the user has a set). The passkey is stored then, and its
// registration token spent: a failure to make the set is logged and
// counted (FollowUpFailures), not the answer — the store's "nothing was
// changed" was untrue, and the same request was refused after it
// (re-check 16r6). The user then makes a set with
// RegenerateRecoveryCodes (POST /api/v1/auth/mfa/recovery-codes).
func (s *Service) RegisterPasskey(ctx context.Context, meta events.Meta, userID, token, name string, credential json.RawMessage, rp RelyingParty) (domain.Passkey, []string, error) {
	pk, err := s.FinishPasskeyRegistration(ctx, meta, userID, token, name, credential, rp)
	if err != nil {
		return pk, nil, err
	}
	if st, err := s.mfaState(); err == nil {
		if m, _ := st.MFA(userID); len(m.RecoveryHashes) > 0 {
			return pk, nil, nil // a set is in force: none to make (nor to fail at)
		}
	}
	codes, err := s.FirstRecoveryCodes(ctx, meta, userID)
	if err != nil {
		s.followUpFailures.Add(1)
		s.cfg.Log.Error("a passkey was registered, its first recovery codes not made; the user makes a set with POST /api/v1/auth/mfa/recovery-codes",
			"user_id", userID, "err", err)
		return pk, nil, nil
	}
	return pk, codes, nil
}

// FirstRecoveryCodes gives a user who has no recovery codes a set (shown
// once), and returns none when the user has some: a first factor's
// registration. Decided on the MFA aggregate, so of two registrations at
// once (two devices, a retried request) only one makes a set.
func (s *Service) FirstRecoveryCodes(ctx context.Context, meta events.Meta, userID string) ([]string, error) {
	return s.generateRecoveryCodes(ctx, meta, userID, true, nil)
}

// ---------------------------------------------------------------- TOTP enrolment

// TOTPEnrollment is a new TOTP secret, shown once.
type TOTPEnrollment struct {
	Secret string // base32
	URI    string // otpauth://totp/…
}

// ReasonEnrolmentCode is the reason of the mfa.failed of a wrong code sent
// to confirm a TOTP enrolment (ConfirmTOTP), told apart from a login's
// second step ("invalid_code").
const ReasonEnrolmentCode = "invalid_enrolment_code"

// EnrollTOTP draws a TOTP secret for the user and records it (sealed),
// pending until ConfirmTOTP. A confirmed secret stays in force until the
// new one is confirmed.
func (s *Service) EnrollTOTP(ctx context.Context, meta events.Meta, userID string) (TOTPEnrollment, error) {
	st, err := s.mfaState()
	if err != nil {
		return TOTPEnrollment{}, err
	}
	u, _, ok := s.state.User(userID)
	if !ok {
		return TOTPEnrollment{}, domain.ErrNotFound
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: TOTPIssuer, AccountName: u.Username, Period: totpPeriod, SecretSize: 20,
		Digits: totpDigits, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return TOTPEnrollment{}, err
	}
	sealed, err := s.sealer.Seal(sealTOTPSecret, key.Secret())
	if err != nil {
		return TOTPEnrollment{}, err
	}
	if _, err := s.executeMFA(ctx, meta, st, userID, domain.EnrollTOTP{UserID: userID, SecretSealed: sealed, Now: s.cfg.Now()}); err != nil {
		return TOTPEnrollment{}, err
	}
	return TOTPEnrollment{Secret: key.Secret(), URI: key.URL()}, nil
}

// ConfirmTOTP confirms the pending secret with a code of it and returns a
// new set of recovery codes (shown once; the old set is void). When another
// enrolment replaces the secret while the code is checked, nothing is
// confirmed: domain.ErrTOTPEnrolmentReplaced.
//
// A code is a guess like a second step's: a wrong one is recorded as
// mfa.failed (reason ReasonEnrolmentCode), counting in the login throttle
// per account and per address, and a locked account or address is refused
// (domain.ErrThrottled) before the code is checked and again, on the user
// as the event store has it, before the right one confirms. Else a pending
// secret, which never expires, took unlimited guesses — a thousand a
// second — and a hit answered a new set of recovery codes (an outside
// check, 17b).
func (s *Service) ConfirmTOTP(ctx context.Context, meta events.Meta, userID, code string) ([]string, error) {
	st, err := s.mfaState()
	if err != nil {
		return nil, err
	}
	m, err := s.mfaCurrent(ctx, st, userID)
	if err != nil {
		return nil, err
	}
	if err := m.TOTPPending(); err != nil {
		return nil, err
	}
	u, _, found := s.state.User(userID)
	if !found {
		return nil, domain.ErrNotFound
	}
	now := s.cfg.Now()
	if err := s.throttled(u, true, "", meta.Request.IP, now); err != nil {
		return nil, err
	}
	code = normalizeCode(code)
	step, ok, err := s.matchTOTP(m.PendingSecretSealed, code, now)
	if err != nil {
		return nil, err
	}
	if !ok || len(code) != int(totpDigits) {
		if err := s.mfaFailure(ctx, meta, u, domain.FactorTOTP, ReasonEnrolmentCode, now); !errors.Is(err, ErrMFACodeInvalid) {
			return nil, err // the lockout, or the failure not recorded
		}
		// Only the newest enrolment's secret is kept: a code of an older
		// one (another tab's QR code) cannot be told from a wrong one.
		return nil, domain.Invalid("code", "does not match the secret being enrolled: use the authenticator entry of the newest enrolment (a new enrolment replaces the secret of an earlier one, whose QR code is void), and check the device's clock")
	}
	// The right code of a burst whose wrong ones locked the account while
	// it was checked confirms nothing: the lockout as it stands now, read
	// at the user's subject's last sequence.
	if err := s.CatchUp(ctx, domain.AggregateUser, userID); err != nil {
		return nil, err
	}
	if u, _, found = s.state.User(userID); !found {
		return nil, domain.ErrNotFound
	}
	if err := s.cfg.Throttle.Check(u.FailedLogins, u.LastFailedLoginAt, now); err != nil {
		return nil, err
	}
	codes, hashes, err := s.newRecoveryCodes()
	if err != nil {
		return nil, err
	}
	// The decision confirms the secret the code was checked against, or
	// nothing: another enrolment may replace it before the append.
	cmd := domain.ConfirmTOTP{SecretSealed: m.PendingSecretSealed, Step: step, RecoveryHashes: hashes, Now: now}
	if _, err := s.executeMFA(ctx, meta, st, userID, cmd); err != nil {
		return nil, err
	}
	return codes, nil
}

// ---------------------------------------------------------------- passkeys

// waUser is a user as go-webauthn sees it: the user handle is the user's ID.
type waUser struct {
	id, name string
	keys     []domain.Passkey
}

func (u waUser) WebAuthnID() []byte          { return []byte(u.id) }
func (u waUser) WebAuthnName() string        { return u.name }
func (u waUser) WebAuthnDisplayName() string { return u.name }
func (u waUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, 0, len(u.keys))
	for _, k := range u.keys {
		id, err := base64.RawURLEncoding.DecodeString(k.ID)
		if err != nil {
			continue // not one of ours: never matches
		}
		var transports []protocol.AuthenticatorTransport
		for _, t := range k.Transports {
			transports = append(transports, protocol.AuthenticatorTransport(t))
		}
		out = append(out, webauthn.Credential{
			ID: id, PublicKey: k.PublicKey, AttestationType: k.AttestationType, Transport: transports,
			Flags: webauthn.CredentialFlags{
				UserPresent: true, UserVerified: k.UserVerified, BackupEligible: k.BackupEligible, BackupState: k.BackupState,
			},
			Authenticator: webauthn.Authenticator{AAGUID: k.AAGUID, SignCount: k.SignCount},
		})
	}
	return out
}

func (s *Service) webAuthnUser(st MFAState, u domain.User) (waUser, domain.MFA) {
	m, _ := st.MFA(u.ID)
	return waUser{id: u.ID, name: u.Username, keys: m.Passkeys}, m
}

// BeginPasskeyRegistration starts registering a passkey for the user: the
// creation options for navigator.credentials.create and a token that
// carries the ceremony to FinishPasskeyRegistration. The passkey is
// discoverable and verifies its user, so that it also signs in on its own.
//
// The passkeys it asks the authenticator not to register again are the
// user's once this replica has caught up with the user's mfa subject: one
// registered through another replica a moment ago is excluded too.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, userID string, rp RelyingParty) (string, *protocol.CredentialCreation, error) {
	st, err := s.mfaState()
	if err != nil {
		return "", nil, err
	}
	u, _, ok := s.state.User(userID)
	if !ok {
		return "", nil, domain.ErrNotFound
	}
	wa, err := rp.webAuthn()
	if err != nil {
		return "", nil, err
	}
	if err := s.CatchUp(ctx, domain.AggregateMFA, userID); err != nil {
		return "", nil, err
	}
	wu, m := s.webAuthnUser(st, u)
	var exclude []protocol.CredentialDescriptor
	for _, c := range wu.WebAuthnCredentials() {
		exclude = append(exclude, c.Descriptor())
	}
	creation, session, err := wa.BeginRegistration(wu,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationRequired,
		}),
		webauthn.WithExclusions(exclude),
	)
	if err != nil {
		return "", nil, err
	}
	tok, _, err := s.signMFA(mfaClaims{Purpose: purposeRegister, UserID: userID, Session: session,
		Cut: st.UserCutOff(userID), Resets: m.Resets})
	return tok, creation, err
}

// FinishPasskeyRegistration verifies the authenticator's answer to the
// ceremony of token and registers the passkey under name.
//
// A ceremony begun before an administrator's reset of the user's factors,
// a password change or a deactivation (the cut-offs that end the user's
// sessions) does not finish after it, even in a session started since:
// its token is refused as an expired one, before the answer is verified
// (outside check 14e), as an enrolment token is (EnrollmentUser).
func (s *Service) FinishPasskeyRegistration(ctx context.Context, meta events.Meta, userID, token, name string, credential json.RawMessage, rp RelyingParty) (domain.Passkey, error) {
	st, err := s.mfaState()
	if err != nil {
		return domain.Passkey{}, err
	}
	if err := domain.ValidPasskeyName(name); err != nil {
		return domain.Passkey{}, err
	}
	c, err := s.openMFA(token, purposeRegister)
	if err != nil || c.UserID != userID || c.Session == nil {
		return domain.Passkey{}, ErrMFATokenInvalid
	}
	u, _, ok := s.state.User(userID)
	if !ok {
		return domain.Passkey{}, domain.ErrNotFound
	}
	if st.UserCutOff(userID) != c.Cut {
		return domain.Passkey{}, ErrMFATokenInvalid // a new password, or a deactivation, since it began
	}
	seen, err := s.mfaCurrent(ctx, st, userID)
	if err != nil {
		return domain.Passkey{}, err
	}
	if seen.Resets != c.Resets {
		return domain.Passkey{}, ErrMFATokenInvalid // the factors were reset since it began
	}
	wa, err := rp.webAuthn()
	if err != nil {
		return domain.Passkey{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credential)
	if err != nil {
		return domain.Passkey{}, domain.Invalid("credential", "is not a WebAuthn registration response")
	}
	wu, _ := s.webAuthnUser(st, u)
	cred, err := wa.CreateCredential(wu, *c.Session, parsed)
	if err != nil {
		return domain.Passkey{}, domain.Invalid("credential", "was not accepted: %s", webAuthnReason(err))
	}
	now := s.cfg.Now().UTC()
	pk := domain.Passkey{
		ID: base64.RawURLEncoding.EncodeToString(cred.ID), Name: strings.TrimSpace(name), PublicKey: cred.PublicKey,
		SignCount: cred.Authenticator.SignCount, AAGUID: cred.Authenticator.AAGUID, AttestationType: cred.AttestationType,
		UserVerified: cred.Flags.UserVerified, BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState,
		CreatedAt: now,
	}
	for _, t := range cred.Transport {
		pk.Transports = append(pk.Transports, string(t))
	}
	m, err := s.executeMFA(ctx, meta, st, userID, domain.RegisterPasskey{
		UserID: userID, Passkey: pk, TokenID: c.ID, TokenExpires: time.Unix(c.Expires, 0), Resets: c.Resets,
	})
	if errors.Is(err, domain.ErrMFATokenUsed) {
		return domain.Passkey{}, ErrMFATokenInvalid
	}
	if err != nil {
		return domain.Passkey{}, err
	}
	out, _ := m.Passkey(pk.ID)
	return out, nil
}

// webAuthnReason is a WebAuthn verification error's reason, safe to show.
func webAuthnReason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		return pe.Details
	}
	return "verification failed"
}

// DeletePasskey removes one of the user's passkeys.
func (s *Service) DeletePasskey(ctx context.Context, meta events.Meta, userID, credentialID string) error {
	st, err := s.mfaState()
	if err != nil {
		return err
	}
	// A passkey registered through another replica a moment ago is found
	// (the decision refuses an unknown one without appending, so the
	// write loop's expectation would not catch a lagging read).
	if err := s.CatchUp(ctx, domain.AggregateMFA, userID); err != nil {
		return err
	}
	_, err = s.executeMFA(ctx, meta, st, userID, domain.DeletePasskey{CredentialID: credentialID})
	if errors.Is(err, domain.ErrMFANotEnrolled) {
		return domain.ErrNotFound
	}
	return err
}

// WebAuthnChallenge turns an MFA token of a user with passkeys into one
// that carries an assertion ceremony, and returns the request options for
// navigator.credentials.get.
//
// The passkeys it allows are the user's once this replica has caught up
// with the user's mfa subject: one registered through another replica a
// moment ago signs in too (the second step checks the assertion against
// the same caught-up state).
func (s *Service) WebAuthnChallenge(ctx context.Context, token string, rp RelyingParty) (string, *protocol.CredentialAssertion, error) {
	st, err := s.mfaState()
	if err != nil {
		return "", nil, err
	}
	c, err := s.openMFA(token, purposeMFA)
	if err != nil {
		return "", nil, err
	}
	u, _, ok := s.state.User(c.UserID)
	if !ok {
		return "", nil, ErrMFATokenInvalid
	}
	wa, err := rp.webAuthn()
	if err != nil {
		return "", nil, err
	}
	if err := s.CatchUp(ctx, domain.AggregateMFA, u.ID); err != nil {
		return "", nil, err
	}
	wu, _ := s.webAuthnUser(st, u)
	assertion, session, err := wa.BeginLogin(wu, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return "", nil, err
	}
	c.Session = session
	tok, _, err := s.signMFA(c)
	return tok, assertion, err
}

// useAssertion verifies a WebAuthn assertion as the second factor of the
// login of c and spends the token.
func (s *Service) useAssertion(ctx context.Context, meta events.Meta, st MFAState, u domain.User, m domain.MFA, c mfaClaims, raw json.RawMessage, rp RelyingParty) error {
	now := s.cfg.Now()
	if c.Session == nil {
		return domain.Invalid("webauthn", "the MFA token carries no WebAuthn challenge; ask for one first")
	}
	wa, err := rp.webAuthn()
	if err != nil {
		return err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(raw)
	if err != nil {
		return domain.Invalid("webauthn", "is not a WebAuthn assertion")
	}
	wu := waUser{id: u.ID, name: u.Username, keys: m.Passkeys}
	cred, err := wa.ValidateLogin(wu, *c.Session, parsed)
	if err != nil || cred.Authenticator.CloneWarning {
		if err := s.mfaFailure(ctx, meta, u, domain.FactorWebAuthn, "invalid_assertion", now); !errors.Is(err, ErrMFACodeInvalid) {
			return err
		}
		return ErrPasskeyNotAccepted
	}
	_, err = s.executeMFA(ctx, meta, st, u.ID, domain.UsePasskey{
		CredentialID: base64.RawURLEncoding.EncodeToString(cred.ID), SignCount: cred.Authenticator.SignCount,
		TokenID: c.ID, TokenExpires: time.Unix(c.Expires, 0), Now: now,
	})
	return err
}

// BeginPasskeyLogin starts a passwordless sign-in: request options for a
// discoverable credential (the authenticator names its user) that verifies
// its user, and the token carrying the ceremony.
func (s *Service) BeginPasskeyLogin(rp RelyingParty) (string, *protocol.CredentialAssertion, error) {
	wa, err := rp.webAuthn()
	if err != nil {
		return "", nil, err
	}
	assertion, session, err := wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return "", nil, err
	}
	tok, _, err := s.signMFA(mfaClaims{Purpose: purposePasskey, Session: session})
	return tok, assertion, err
}

// mfaLoginUser is the user of a login's MFA or passkey step, and their
// factors as the event store has them (mfaCurrent: a code of a set or a
// passkey made through another replica a moment ago is not a wrong one): an
// active user (else ErrInvalidCredentials), not throttled from addr, whose
// step token c is not spent yet (else ErrMFATokenInvalid).
func (s *Service) mfaLoginUser(ctx context.Context, st MFAState, c mfaClaims, userID, addr string, now time.Time) (domain.User, domain.MFA, error) {
	u, _, ok := s.state.User(userID)
	if !ok || !u.Active {
		return domain.User{}, domain.MFA{}, domain.ErrInvalidCredentials
	}
	if err := s.throttled(u, true, "", addr, now); err != nil {
		return domain.User{}, domain.MFA{}, err
	}
	m, err := s.mfaCurrent(ctx, st, u.ID)
	if err != nil {
		return domain.User{}, domain.MFA{}, err
	}
	if m.IsSpent(c.ID) {
		return domain.User{}, domain.MFA{}, ErrMFATokenInvalid
	}
	return u, m, nil
}

// FinishPasskeyLogin verifies a passwordless sign-in and starts its
// session. The passkey verified its user (PIN or biometrics): both factors
// at once. An assertion that fails for a known user counts in the
// throttle.
func (s *Service) FinishPasskeyLogin(ctx context.Context, meta events.Meta, token string, raw json.RawMessage, rp RelyingParty) (LoginResult, error) {
	st, err := s.mfaState()
	if err != nil {
		return LoginResult{}, err
	}
	c, err := s.openMFA(token, purposePasskey)
	if err != nil || c.Session == nil {
		return LoginResult{}, ErrMFATokenInvalid
	}
	wa, err := rp.webAuthn()
	if err != nil {
		return LoginResult{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(raw)
	if err != nil {
		return LoginResult{}, domain.Invalid("credential", "is not a WebAuthn assertion")
	}
	now := s.cfg.Now()
	u, m, err := s.mfaLoginUser(ctx, st, c, string(parsed.Response.UserHandle), meta.Request.IP, now)
	if err != nil {
		return LoginResult{}, err
	}
	wu := waUser{id: u.ID, name: u.Username, keys: m.Passkeys}
	handler := func(_, userHandle []byte) (webauthn.User, error) {
		if string(userHandle) != u.ID {
			return nil, domain.ErrInvalidCredentials
		}
		return wu, nil
	}
	_, cred, err := wa.ValidatePasskeyLogin(handler, *c.Session, parsed)
	if err != nil || cred.Authenticator.CloneWarning {
		if err := s.mfaFailure(ctx, meta, u, domain.FactorWebAuthn, "invalid_assertion", now); !errors.Is(err, ErrMFACodeInvalid) {
			return LoginResult{}, err
		}
		return LoginResult{}, domain.ErrInvalidCredentials
	}
	_, err = s.executeMFA(ctx, meta, st, u.ID, domain.UsePasskey{
		CredentialID: base64.RawURLEncoding.EncodeToString(cred.ID), SignCount: cred.Authenticator.SignCount,
		Passwordless: true, TokenID: c.ID, TokenExpires: time.Unix(c.Expires, 0), Now: now,
	})
	if errors.Is(err, domain.ErrMFATokenUsed) {
		return LoginResult{}, ErrMFATokenInvalid
	}
	if err != nil {
		return LoginResult{}, err
	}
	res, err := s.startSession(ctx, meta, u.ID, "", "webauthn", "") // the passkey use is stored
	return res, AfterSignInSpent(err)
}

// ---------------------------------------------------------------- admin

// ResetMFA removes every factor of a user (mfa.reset) and revokes the
// user's sessions. It returns how many sessions were revoked.
//
// The reset is decided against the user and appended to the user's mfa
// subject expecting the user's subject (execute's into): may, when not nil
// — the caller's authority over the user — is checked on the user state
// the append expects, so a change of the user in between (a role granted
// in another tenant) makes it conflict, and the decision made again is
// refused with nothing stored. The mfa subject's own expectation gives way
// to the user's: a factor enrolled meanwhile is reset too, as when the
// reset comes after it. The sessions are then revoked as the reset's
// consequence, without may: the authority was held when the reset was
// stored, and the answer says what was stored (a check made again there
// answered 403 after a reset stored, the sessions left live: outside
// check 13r2).
func (s *Service) ResetMFA(ctx context.Context, meta events.Meta, userID, reason string, may func(domain.User) error) (int, error) {
	st, err := s.mfaState()
	if err != nil {
		return 0, err
	}
	if _, _, ok := s.state.User(userID); !ok {
		return 0, domain.ErrNotFound
	}
	cmd := domain.ResetMFA{UserID: userID, Reason: reason}
	factors := s.mfaAggregate(st, userID)
	var version uint64 // the factors' version the reset was decided on
	_, err = execute(ctx, s, meta, write[domain.User]{
		on: s.userAggregate(userID), missing: domain.ErrNotFound,
		into: factors.ref, intoVersion: func() uint64 { return version },
		decide: func(u domain.User) ([]domain.Event, error) {
			if may != nil {
				if err := may(u); err != nil {
					return nil, err
				}
			}
			if err := s.catchUpSubject(ctx, factors.subject()); err != nil {
				return nil, err
			}
			m, _, _ := factors.load()
			version = m.Version
			return domain.DecideMFA(m, cmd)
		},
	})
	if err != nil { // (a reset is decided also with nothing enrolled)
		return 0, err
	}
	// The reset is stored: a failure to end the sessions is ErrIncomplete,
	// not "nothing was changed" (re-check 16r3); the same request again
	// ends them.
	n, err := s.RevokeUserSessions(ctx, meta, userID, domain.RevokeReasonAdmin, nil)
	return n, incomplete(err)
}

// SetMFAPolicy sets whether MFA is required platform-wide (scope
// domain.MFAPolicyPlatform) or in a tenant.
func (s *Service) SetMFAPolicy(ctx context.Context, meta events.Meta, scope string, required bool) (domain.MFAPolicy, error) {
	st, err := s.mfaState()
	if err != nil {
		return domain.MFAPolicy{}, err
	}
	return execute(ctx, s, meta, write[domain.MFAPolicy]{
		on: aggregate[domain.MFAPolicy]{
			ref: ref{domain.AggregateMFAPolicy, scope},
			load: func() (domain.MFAPolicy, uint64, bool) {
				p, seq := st.MFAPolicy(scope)
				return p, seq, true
			},
			version: func(p domain.MFAPolicy) uint64 { return p.Version },
		},
		decide: func(p domain.MFAPolicy) ([]domain.Event, error) { return domain.SetMFAPolicy(p, scope, required) },
	})
}
