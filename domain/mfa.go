package domain

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// Multi-factor authentication aggregates.
const (
	// AggregateMFA: one user's second factors (MFA); the ID is the user's
	// ID. Every use of a factor is appended expecting the subject's last
	// sequence, so two replicas cannot both accept the same TOTP step,
	// recovery code, passkey challenge or MFA token.
	AggregateMFA = "mfa"
	// AggregateMFAPolicy: whether MFA is required (MFAPolicy); the ID is
	// MFAPolicyPlatform or a tenant ID.
	AggregateMFAPolicy = "mfa_policy"
	// MFAPolicyPlatform is the ID of the platform-wide policy.
	MFAPolicyPlatform = "platform"
)

// Factor names, as the API and the MFA_REQUIRED answer list them.
const (
	FactorTOTP         = "totp"
	FactorWebAuthn     = "webauthn"
	FactorRecoveryCode = "recovery_code"
)

// Limits of the MFA aggregate.
const (
	// RecoveryCodeCount is the size of a set of recovery codes.
	RecoveryCodeCount = 10
	// MaxPasskeys bounds the passkeys one user may register.
	MaxPasskeys = 20
	// MaxPasskeyName bounds a passkey's name, in characters.
	MaxPasskeyName = 64
	// maxCredentialID bounds a WebAuthn credential ID (the spec's 1023 bytes,
	// base64url).
	maxCredentialID = 1400
)

// Errors of the MFA aggregate.
var (
	// ErrMFACodeUsed: the TOTP step (or recovery code) was used already.
	ErrMFACodeUsed = errors.New("domain: code already used")
	// ErrMFATokenUsed: the MFA token (or WebAuthn challenge) was used
	// already, or is void (a registration begun before a reset).
	ErrMFATokenUsed = errors.New("domain: MFA token already used")
	// ErrMFANotEnrolled: the factor is not enrolled (or not confirmed).
	ErrMFANotEnrolled = errors.New("domain: factor not enrolled")
	// ErrTOTPConfirmed: a confirmation with no secret pending, and TOTP in
	// force — most likely a retry of a confirmation whose answer was lost.
	ErrTOTPConfirmed = errors.New("domain: TOTP is already confirmed")
	// ErrTOTPEnrolmentReplaced: a confirmation with a code of a secret that
	// another enrolment (another tab or device) has replaced meanwhile.
	ErrTOTPEnrolmentReplaced = errors.New("domain: the TOTP secret being confirmed was replaced by a newer enrolment")
	// ErrRecoveryCodesReplaced: a new set of recovery codes was asked for
	// in place of a set that another request has replaced meanwhile.
	ErrRecoveryCodesReplaced = errors.New("domain: the recovery codes were replaced meanwhile")
)

// Passkey is a registered WebAuthn credential: what verifying an assertion
// needs (its ID, COSE public key, sign count and flags), its name and times.
type Passkey struct {
	ID              string    `json:"id"` // credential ID, base64url without padding
	Name            string    `json:"name"`
	PublicKey       []byte    `json:"public_key"` // COSE_Key
	SignCount       uint32    `json:"sign_count"`
	AAGUID          []byte    `json:"aaguid,omitempty"`
	Transports      []string  `json:"transports,omitempty"`
	AttestationType string    `json:"attestation_type,omitempty"`
	UserVerified    bool      `json:"user_verified,omitempty"`
	BackupEligible  bool      `json:"backup_eligible,omitempty"`
	BackupState     bool      `json:"backup_state,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	LastUsedAt      time.Time `json:"last_used_at,omitzero"`
}

// SpentToken is a single-use token (an MFA token, a WebAuthn challenge)
// that has been used; it is remembered until it expires.
type SpentToken struct {
	ID    string
	Until time.Time
}

// MFA is the state of a user's MFA aggregate. The zero value: nothing
// enrolled.
type MFA struct {
	UserID string
	// TOTPSecretSealed is the confirmed TOTP secret (sealed); PendingSecretSealed
	// one enrolled and not confirmed yet, which replaces it once confirmed.
	TOTPSecretSealed    string
	PendingSecretSealed string
	TOTPConfirmedAt     time.Time
	// LastTOTPStep is the highest time step used: codes of it and of every
	// step before are refused (RFC 6238 §5.2).
	LastTOTPStep int64
	// RecoveryHashes are the current set's keyed hashes; RecoveryUsed says
	// which are spent.
	RecoveryHashes      []string
	RecoveryUsed        []bool
	RecoveryGeneratedAt time.Time
	Passkeys            []Passkey
	// Spent: single-use tokens used and not expired yet.
	Spent []SpentToken
	// Resets counts the administrators' resets of the user's factors: an
	// enrolment token carries the count it was issued at, and one issued
	// before a reset is void.
	Resets  uint64
	Version uint64
}

// TOTPPending returns nil when a TOTP secret waits for its confirmation,
// else why not: ErrTOTPConfirmed (none pending, and TOTP in force: most
// likely a confirmation sent again after its answer was lost) or
// ErrMFANotEnrolled.
func (m MFA) TOTPPending() error {
	switch {
	case m.PendingSecretSealed != "":
		return nil
	case m.HasTOTP():
		return ErrTOTPConfirmed
	}
	return ErrMFANotEnrolled
}

// RecoverySet names the current set of recovery codes (its first keyed
// hash; "" for none): what GenerateRecoveryCodes.Replaces compares.
func (m MFA) RecoverySet() string {
	if len(m.RecoveryHashes) == 0 {
		return ""
	}
	return m.RecoveryHashes[0]
}

// HasTOTP reports whether a TOTP secret is confirmed.
func (m MFA) HasTOTP() bool { return m.TOTPSecretSealed != "" }

// HasFactor reports whether the user has a second factor: a confirmed TOTP
// secret or a passkey. Recovery codes alone are not one.
func (m MFA) HasFactor() bool { return m.HasTOTP() || len(m.Passkeys) > 0 }

// RecoveryCodesLeft counts the unused recovery codes.
func (m MFA) RecoveryCodesLeft() int {
	n := 0
	for _, used := range m.RecoveryUsed {
		if !used {
			n++
		}
	}
	return n
}

// Factors lists what may serve as the second factor, in a fixed order.
func (m MFA) Factors() []string {
	out := []string{}
	if m.HasTOTP() {
		out = append(out, FactorTOTP)
	}
	if len(m.Passkeys) > 0 {
		out = append(out, FactorWebAuthn)
	}
	if m.HasFactor() && m.RecoveryCodesLeft() > 0 {
		out = append(out, FactorRecoveryCode)
	}
	return out
}

// Passkey returns the passkey with credential ID id.
func (m MFA) Passkey(id string) (Passkey, bool) {
	for _, p := range m.Passkeys {
		if p.ID == id {
			return p, true
		}
	}
	return Passkey{}, false
}

// IsSpent reports whether single-use token id was used.
func (m MFA) IsSpent(id string) bool {
	for _, s := range m.Spent {
		if s.ID == id {
			return true
		}
	}
	return false
}

// MFA events. None carries a secret, a code or key material beyond a
// passkey's public key: the TOTP secret is sealed with the master key,
// recovery codes are keyed hashes, and a use names the step, the code's
// index or the credential, never the code.
type (
	// MFATOTPEnrolled: a TOTP secret (sealed) awaits confirmation.
	MFATOTPEnrolled struct {
		UserID       string    `json:"user_id"`
		SecretSealed string    `json:"secret_sealed"`
		At           time.Time `json:"at"`
	}
	// MFATOTPConfirmed: the pending secret is the user's TOTP secret; Step,
	// the step of the code that confirmed it, counts as used.
	MFATOTPConfirmed struct {
		UserID string    `json:"user_id"`
		Step   int64     `json:"step"`
		At     time.Time `json:"at"`
	}
	// MFACodeUsed: a TOTP code of Step was accepted (for MFA token TokenID).
	MFACodeUsed struct {
		UserID       string    `json:"user_id"`
		Step         int64     `json:"step"`
		TokenID      string    `json:"token_id,omitempty"`
		TokenExpires time.Time `json:"token_expires,omitzero"`
		At           time.Time `json:"at"`
	}
	// MFAFailed: a wrong second-factor code or assertion. It lives on the
	// *user's* subject and counts in the login throttle like a failed login
	// (EvolveUser).
	MFAFailed struct {
		UserID string    `json:"user_id"`
		Factor string    `json:"factor"`
		Reason string    `json:"reason"`
		At     time.Time `json:"at"`
	}
	// MFARecoveryCodesGenerated: a new set of recovery codes (keyed hashes)
	// replaces the old one.
	MFARecoveryCodesGenerated struct {
		UserID string    `json:"user_id"`
		Hashes []string  `json:"hashes"`
		At     time.Time `json:"at"`
	}
	// MFARecoveryCodeUsed: recovery code Index of the current set is spent.
	MFARecoveryCodeUsed struct {
		UserID       string    `json:"user_id"`
		Index        int       `json:"index"`
		TokenID      string    `json:"token_id,omitempty"`
		TokenExpires time.Time `json:"token_expires,omitzero"`
		At           time.Time `json:"at"`
	}
	// MFAPasskeyRegistered: a WebAuthn credential was registered (its
	// registration challenge TokenID is spent).
	MFAPasskeyRegistered struct {
		UserID       string    `json:"user_id"`
		Passkey      Passkey   `json:"passkey"`
		TokenID      string    `json:"token_id,omitempty"`
		TokenExpires time.Time `json:"token_expires,omitzero"`
	}
	// MFAPasskeyUsed: an assertion of the credential was accepted, as the
	// second factor or (Passwordless) as the whole sign-in.
	MFAPasskeyUsed struct {
		UserID       string    `json:"user_id"`
		CredentialID string    `json:"credential_id"`
		SignCount    uint32    `json:"sign_count"`
		Passwordless bool      `json:"passwordless,omitempty"`
		TokenID      string    `json:"token_id,omitempty"`
		TokenExpires time.Time `json:"token_expires,omitzero"`
		At           time.Time `json:"at"`
	}
	// MFAPasskeyDeleted: the credential is no longer accepted.
	MFAPasskeyDeleted struct {
		UserID       string `json:"user_id"`
		CredentialID string `json:"credential_id"`
	}
	// MFAReset: an administrator removed every factor of the user; the
	// user's sessions are revoked with it.
	MFAReset struct {
		UserID string `json:"user_id"`
		Reason string `json:"reason,omitempty"`
	}
	// MFAPolicySet: whether MFA is required, platform-wide (Scope
	// MFAPolicyPlatform) or in one tenant (Scope: the tenant ID).
	MFAPolicySet struct {
		Scope    string `json:"scope"`
		Required bool   `json:"required"`
	}
)

// MFA event type names.
const (
	TypeMFATOTPEnrolled           = "mfa.totp_enrolled"
	TypeMFATOTPConfirmed          = "mfa.totp_confirmed"
	TypeMFACodeUsed               = "mfa.code_used"
	TypeMFAFailed                 = "mfa.failed"
	TypeMFARecoveryCodesGenerated = "mfa.recovery_codes_generated"
	TypeMFARecoveryCodeUsed       = "mfa.recovery_code_used"
	TypeMFAPasskeyRegistered      = "mfa.passkey_registered"
	TypeMFAPasskeyUsed            = "mfa.passkey_used"
	TypeMFAPasskeyDeleted         = "mfa.passkey_deleted"
	TypeMFAReset                  = "mfa.reset"
	TypeMFAPolicySet              = "mfa.policy_set"
)

func (MFATOTPEnrolled) EventType() string           { return TypeMFATOTPEnrolled }
func (MFATOTPConfirmed) EventType() string          { return TypeMFATOTPConfirmed }
func (MFACodeUsed) EventType() string               { return TypeMFACodeUsed }
func (MFAFailed) EventType() string                 { return TypeMFAFailed }
func (MFARecoveryCodesGenerated) EventType() string { return TypeMFARecoveryCodesGenerated }
func (MFARecoveryCodeUsed) EventType() string       { return TypeMFARecoveryCodeUsed }
func (MFAPasskeyRegistered) EventType() string      { return TypeMFAPasskeyRegistered }
func (MFAPasskeyUsed) EventType() string            { return TypeMFAPasskeyUsed }
func (MFAPasskeyDeleted) EventType() string         { return TypeMFAPasskeyDeleted }
func (MFAReset) EventType() string                  { return TypeMFAReset }
func (MFAPolicySet) EventType() string              { return TypeMFAPolicySet }

// derefEvent lets Deref return the value behind a decoded MFA event.
func (e *MFATOTPEnrolled) derefEvent() Event           { return *e }
func (e *MFATOTPConfirmed) derefEvent() Event          { return *e }
func (e *MFACodeUsed) derefEvent() Event               { return *e }
func (e *MFAFailed) derefEvent() Event                 { return *e }
func (e *MFARecoveryCodesGenerated) derefEvent() Event { return *e }
func (e *MFARecoveryCodeUsed) derefEvent() Event       { return *e }
func (e *MFAPasskeyRegistered) derefEvent() Event      { return *e }
func (e *MFAPasskeyUsed) derefEvent() Event            { return *e }
func (e *MFAPasskeyDeleted) derefEvent() Event         { return *e }
func (e *MFAReset) derefEvent() Event                  { return *e }
func (e *MFAPolicySet) derefEvent() Event              { return *e }

func init() {
	for t, f := range map[string]func() Event{
		TypeMFATOTPEnrolled:           func() Event { return &MFATOTPEnrolled{} },
		TypeMFATOTPConfirmed:          func() Event { return &MFATOTPConfirmed{} },
		TypeMFACodeUsed:               func() Event { return &MFACodeUsed{} },
		TypeMFAFailed:                 func() Event { return &MFAFailed{} },
		TypeMFARecoveryCodesGenerated: func() Event { return &MFARecoveryCodesGenerated{} },
		TypeMFARecoveryCodeUsed:       func() Event { return &MFARecoveryCodeUsed{} },
		TypeMFAPasskeyRegistered:      func() Event { return &MFAPasskeyRegistered{} },
		TypeMFAPasskeyUsed:            func() Event { return &MFAPasskeyUsed{} },
		TypeMFAPasskeyDeleted:         func() Event { return &MFAPasskeyDeleted{} },
		TypeMFAReset:                  func() Event { return &MFAReset{} },
		TypeMFAPolicySet:              func() Event { return &MFAPolicySet{} },
	} {
		eventFactories[t] = f
	}
}

// MFACommand is a command on an MFA aggregate: a closed set.
type MFACommand interface{ mfaCommand() }

// MFA commands. Codes are checked by the caller (it holds the unsealed
// secret and the recovery codes' key): a command says what matched.
type (
	// EnrollTOTP records a new secret (sealed), pending until confirmed.
	EnrollTOTP struct {
		UserID       string
		SecretSealed string
		Now          time.Time
	}
	// ConfirmTOTP confirms the pending secret with a code of Step, and
	// records a new set of recovery codes (RecoveryHashes). SecretSealed is
	// the pending secret the code was checked against: a confirmation is
	// refused (ErrTOTPEnrolmentReplaced) when another enrolment has
	// replaced it, rather than confirming a secret the code never matched.
	ConfirmTOTP struct {
		SecretSealed   string
		Step           int64
		RecoveryHashes []string
		Now            time.Time
	}
	// UseTOTP spends Step (and MFA token TokenID, when set).
	UseTOTP struct {
		Step         int64
		TokenID      string
		TokenExpires time.Time
		Now          time.Time
	}
	// UseRecoveryCode spends recovery code Index (and the MFA token).
	UseRecoveryCode struct {
		Index        int
		TokenID      string
		TokenExpires time.Time
		Now          time.Time
	}
	// GenerateRecoveryCodes replaces the set of recovery codes; with
	// IfNone, it gives one only to a user who has none (a first factor's
	// registration: of two at once, only one set is made, and shown).
	// Without IfNone, Replaces is the set the request saw (MFA.RecoverySet):
	// when another request has replaced it meanwhile, the command is
	// refused (ErrRecoveryCodesReplaced), so that of two at once only the
	// set in force is shown.
	GenerateRecoveryCodes struct {
		Hashes   []string
		IfNone   bool
		Replaces string
		Now      time.Time
	}
	// RegisterPasskey adds a credential (and spends its registration
	// challenge). Resets is MFA.Resets when the ceremony began: a reset of
	// the factors since refuses it (ErrMFATokenUsed), also one that lands
	// while the answer is verified.
	RegisterPasskey struct {
		UserID       string
		Passkey      Passkey
		TokenID      string
		TokenExpires time.Time
		Resets       uint64
	}
	// UsePasskey records an accepted assertion (and spends its challenge).
	UsePasskey struct {
		CredentialID string
		SignCount    uint32
		Passwordless bool
		TokenID      string
		TokenExpires time.Time
		Now          time.Time
	}
	// DeletePasskey removes a credential.
	DeletePasskey struct{ CredentialID string }
	// ResetMFA removes every factor.
	ResetMFA struct {
		UserID string
		Reason string
	}
)

func (EnrollTOTP) mfaCommand()            {}
func (ConfirmTOTP) mfaCommand()           {}
func (UseTOTP) mfaCommand()               {}
func (UseRecoveryCode) mfaCommand()       {}
func (GenerateRecoveryCodes) mfaCommand() {}
func (RegisterPasskey) mfaCommand()       {}
func (UsePasskey) mfaCommand()            {}
func (DeletePasskey) mfaCommand()         {}
func (ResetMFA) mfaCommand()              {}

// spend refuses a single-use token that was used; "" is no token.
func (m MFA) spend(tokenID string) error {
	if tokenID != "" && m.IsSpent(tokenID) {
		return ErrMFATokenUsed
	}
	return nil
}

// ValidPasskeyName checks a passkey's name: 1 to MaxPasskeyName
// characters, none of them hidden (hiddenRune).
func ValidPasskeyName(name string) error {
	if strings.TrimSpace(name) == "" {
		return Invalid("name", "is required")
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxPasskeyName {
		return Invalid("name", "must be at most %d characters of valid UTF-8", MaxPasskeyName)
	}
	if hasHiddenRuneInName(name) {
		return Invalid("name", hiddenMessage)
	}
	return nil
}

// DecideMFA decides a command against a user's MFA state. The state of a
// user without any factor is the zero MFA (EnrollTOTP and RegisterPasskey
// name the user).
func DecideMFA(m MFA, cmd MFACommand) ([]Event, error) {
	switch c := cmd.(type) {
	case EnrollTOTP:
		if c.UserID == "" || c.SecretSealed == "" {
			return nil, Invalid("secret", "is required")
		}
		return []Event{MFATOTPEnrolled{UserID: c.UserID, SecretSealed: c.SecretSealed, At: c.Now.UTC()}}, nil
	case RegisterPasskey:
		if c.UserID == "" {
			return nil, Invalid("user_id", "is required")
		}
		if err := ValidPasskeyName(c.Passkey.Name); err != nil {
			return nil, err
		}
		if c.Passkey.ID == "" || len(c.Passkey.ID) > maxCredentialID || len(c.Passkey.PublicKey) == 0 {
			return nil, Invalid("credential", "has no usable ID or public key")
		}
		if err := m.spend(c.TokenID); err != nil {
			return nil, err
		}
		if m.Resets != c.Resets {
			return nil, ErrMFATokenUsed // the ceremony began before a reset of the factors
		}
		if _, dup := m.Passkey(c.Passkey.ID); dup {
			return nil, ErrAlreadyExists
		}
		if len(m.Passkeys) >= MaxPasskeys {
			return nil, Invalid("credential", "at most %d passkeys per user; delete one first", MaxPasskeys)
		}
		return []Event{MFAPasskeyRegistered{UserID: c.UserID, Passkey: c.Passkey, TokenID: c.TokenID, TokenExpires: c.TokenExpires.UTC()}}, nil
	case ResetMFA:
		// Always an event, also with nothing enrolled: the reset voids the
		// enrolment tokens issued before it (MFA.Resets), and a token's
		// holder must not enrol a factor of theirs after it.
		uid := m.UserID
		if uid == "" {
			uid = c.UserID
		}
		if uid == "" {
			return nil, Invalid("user_id", "is required")
		}
		return []Event{MFAReset{UserID: uid, Reason: c.Reason}}, nil
	}
	if m.UserID == "" {
		return nil, ErrMFANotEnrolled
	}
	switch c := cmd.(type) {
	case ConfirmTOTP:
		if err := m.TOTPPending(); err != nil {
			if errors.Is(err, ErrTOTPConfirmed) && c.SecretSealed != m.TOTPSecretSealed {
				// Another enrolment replaced the secret, and was confirmed.
				return nil, ErrTOTPEnrolmentReplaced
			}
			return nil, err
		}
		if c.SecretSealed != m.PendingSecretSealed {
			// The code matched a secret that another enrolment (another
			// tab, a retried request) replaced since it was checked.
			return nil, ErrTOTPEnrolmentReplaced
		}
		// No replay check against LastTOTPStep: that is the old secret's
		// (kept across a reset), and the new one's codes were never used —
		// a re-check's rotation was refused 401 "already used" for a valid
		// code of the new secret in the step of the old one's last.
		if len(c.RecoveryHashes) != RecoveryCodeCount {
			return nil, Invalid("recovery_codes", "want %d", RecoveryCodeCount)
		}
		return []Event{
			MFATOTPConfirmed{UserID: m.UserID, Step: c.Step, At: c.Now.UTC()},
			MFARecoveryCodesGenerated{UserID: m.UserID, Hashes: c.RecoveryHashes, At: c.Now.UTC()},
		}, nil
	case UseTOTP:
		if !m.HasTOTP() {
			return nil, ErrMFANotEnrolled
		}
		if err := m.spend(c.TokenID); err != nil {
			return nil, err
		}
		if c.Step <= m.LastTOTPStep {
			return nil, ErrMFACodeUsed
		}
		return []Event{MFACodeUsed{UserID: m.UserID, Step: c.Step, TokenID: c.TokenID, TokenExpires: c.TokenExpires.UTC(), At: c.Now.UTC()}}, nil
	case UseRecoveryCode:
		if c.Index < 0 || c.Index >= len(m.RecoveryHashes) {
			return nil, ErrMFANotEnrolled
		}
		if err := m.spend(c.TokenID); err != nil {
			return nil, err
		}
		if m.RecoveryUsed[c.Index] {
			return nil, ErrMFACodeUsed
		}
		return []Event{MFARecoveryCodeUsed{UserID: m.UserID, Index: c.Index, TokenID: c.TokenID, TokenExpires: c.TokenExpires.UTC(), At: c.Now.UTC()}}, nil
	case GenerateRecoveryCodes:
		if !m.HasFactor() {
			return nil, ErrMFANotEnrolled
		}
		if c.IfNone && len(m.RecoveryHashes) > 0 {
			return nil, nil
		}
		if !c.IfNone && c.Replaces != m.RecoverySet() {
			return nil, ErrRecoveryCodesReplaced
		}
		if len(c.Hashes) != RecoveryCodeCount {
			return nil, Invalid("recovery_codes", "want %d", RecoveryCodeCount)
		}
		return []Event{MFARecoveryCodesGenerated{UserID: m.UserID, Hashes: c.Hashes, At: c.Now.UTC()}}, nil
	case UsePasskey:
		if _, ok := m.Passkey(c.CredentialID); !ok {
			return nil, ErrMFANotEnrolled
		}
		if err := m.spend(c.TokenID); err != nil {
			return nil, err
		}
		return []Event{MFAPasskeyUsed{
			UserID: m.UserID, CredentialID: c.CredentialID, SignCount: c.SignCount, Passwordless: c.Passwordless,
			TokenID: c.TokenID, TokenExpires: c.TokenExpires.UTC(), At: c.Now.UTC(),
		}}, nil
	case DeletePasskey:
		if _, ok := m.Passkey(c.CredentialID); !ok {
			return nil, ErrNotFound
		}
		return []Event{MFAPasskeyDeleted{UserID: m.UserID, CredentialID: c.CredentialID}}, nil
	}
	return nil, Invalid("command", "unknown MFA command %T", cmd)
}

// DecideMFAFailure decides a wrong second factor of user u: refused as a
// lockout when the login throttle already locks the account, else recorded
// (on the user's subject) as a failure that counts in the throttle.
func DecideMFAFailure(u User, factor, reason string, now time.Time, p LoginThrottle) ([]Event, error) {
	if !u.Exists() {
		return nil, ErrNotFound
	}
	if err := p.Check(u.FailedLogins, u.LastFailedLoginAt, now); err != nil {
		return nil, err
	}
	return []Event{MFAFailed{UserID: u.ID, Factor: factor, Reason: reason, At: now.UTC()}}, nil
}

// EvolveMFA applies one event to a user's MFA state. Events of other
// aggregates are ignored. It never mutates the slices of its input.
func EvolveMFA(m MFA, e Event) MFA {
	switch ev := Deref(e).(type) {
	case MFATOTPEnrolled:
		m.UserID = ev.UserID
		m.PendingSecretSealed = ev.SecretSealed
	case MFATOTPConfirmed:
		m.TOTPSecretSealed, m.PendingSecretSealed = m.PendingSecretSealed, ""
		m.TOTPConfirmedAt = ev.At
		// The guard follows the secret: the new one's last used step is the
		// one it was confirmed with.
		m.LastTOTPStep = ev.Step
	case MFACodeUsed:
		m.LastTOTPStep = max(m.LastTOTPStep, ev.Step)
		m.Spent = spendToken(m.Spent, ev.TokenID, ev.TokenExpires, ev.At)
	case MFARecoveryCodesGenerated:
		m.UserID = ev.UserID
		m.RecoveryHashes = append([]string(nil), ev.Hashes...)
		m.RecoveryUsed = make([]bool, len(ev.Hashes))
		m.RecoveryGeneratedAt = ev.At
	case MFARecoveryCodeUsed:
		if ev.Index >= 0 && ev.Index < len(m.RecoveryUsed) {
			m.RecoveryUsed = append([]bool(nil), m.RecoveryUsed...)
			m.RecoveryUsed[ev.Index] = true
		}
		m.Spent = spendToken(m.Spent, ev.TokenID, ev.TokenExpires, ev.At)
	case MFAPasskeyRegistered:
		m.UserID = ev.UserID
		m.Passkeys = append(append([]Passkey(nil), m.Passkeys...), ev.Passkey)
		m.Spent = spendToken(m.Spent, ev.TokenID, ev.TokenExpires, ev.Passkey.CreatedAt)
	case MFAPasskeyUsed:
		keys := append([]Passkey(nil), m.Passkeys...)
		for i := range keys {
			if keys[i].ID == ev.CredentialID {
				keys[i].SignCount, keys[i].LastUsedAt = ev.SignCount, ev.At
			}
		}
		m.Passkeys = keys
		m.Spent = spendToken(m.Spent, ev.TokenID, ev.TokenExpires, ev.At)
	case MFAPasskeyDeleted:
		keys := make([]Passkey, 0, len(m.Passkeys))
		for _, p := range m.Passkeys {
			if p.ID != ev.CredentialID {
				keys = append(keys, p)
			}
		}
		m.Passkeys = keys
	case MFAReset:
		// Everything goes but the replay guard: a code used before the reset
		// stays used, and so do the spent tokens.
		m = MFA{UserID: ev.UserID, LastTOTPStep: m.LastTOTPStep, Spent: m.Spent, Resets: m.Resets + 1, Version: m.Version}
	default:
		return m
	}
	m.Version++
	return m
}

// spendToken adds a spent token and forgets those expired at now.
func spendToken(spent []SpentToken, id string, until, now time.Time) []SpentToken {
	out := make([]SpentToken, 0, len(spent)+1)
	for _, s := range spent {
		if s.Until.After(now) {
			out = append(out, s)
		}
	}
	if id != "" {
		out = append(out, SpentToken{ID: id, Until: until})
	}
	return out
}

// MFAPolicy is whether MFA is required in a scope.
type MFAPolicy struct {
	Scope    string
	Required bool
	Version  uint64
}

// SetMFAPolicy decides a policy change: nothing when it is already so.
func SetMFAPolicy(p MFAPolicy, scope string, required bool) ([]Event, error) {
	if scope != MFAPolicyPlatform && !ValidTenantID(scope) {
		return nil, Invalid("tenant", "must match %s", tenantPattern)
	}
	if p.Version > 0 && p.Required == required {
		return nil, nil
	}
	if p.Version == 0 && !required {
		return nil, nil
	}
	return []Event{MFAPolicySet{Scope: scope, Required: required}}, nil
}

// EvolveMFAPolicy applies a policy event.
func EvolveMFAPolicy(p MFAPolicy, e Event) MFAPolicy {
	if ev, ok := Deref(e).(MFAPolicySet); ok {
		p.Scope, p.Required = ev.Scope, ev.Required
		p.Version++
	}
	return p
}
