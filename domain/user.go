package domain

import (
	"crypto/subtle"
	"net/mail"
	"regexp"
	"strings"
	"time"
)

// User is the state of the user aggregate, folded from its events by EvolveUser.
// The zero value is a user that does not exist yet.
type User struct {
	ID                 string
	Username           string
	Email              string
	PasswordHashSealed string
	Roles              []GlobalRole
	Tenants            map[string]Role
	Active             bool
	// Unvouched: the account was made, or named or addressed, by someone
	// who cannot vouch for it — a tenant admin, a tenant admin's SCIM
	// connection — who may know its password or have linked an identity to
	// it. An SSO login never links to it by e-mail (link_by_email), and a
	// platform SCIM connection never adopts it by name: either would sign
	// someone's SSO identity, with the roles their groups bring from other
	// tenants, into an account another can use. It stays once set.
	Unvouched bool
	// DeactivatedByTenantAdmin: the user is inactive, deactivated by a
	// tenant admin; a tenant admin may activate it again. A user
	// deactivated otherwise — by a platform admin (offboarding a customer
	// while its people keep their roles), a SCIM connection — is activated
	// by a platform admin only: an admin of a tenant whose name was given
	// to another customer would otherwise bring the old customer's people
	// back, with their old passwords (outside check 20t). Cleared by an
	// activation.
	DeactivatedByTenantAdmin bool
	CreatedAt                time.Time
	// FailedLogins counts consecutive failed logins (reset by a success);
	// LastFailedLoginAt is the time of the last one. They drive LoginThrottle.
	FailedLogins      int
	LastFailedLoginAt time.Time
	Version           uint64 // events applied
}

// Exists reports whether the user has been created.
func (u User) Exists() bool { return u.ID != "" }

// IsPlatformAdmin reports whether the user holds the global admin role.
func (u User) IsPlatformAdmin() bool {
	for _, r := range u.Roles {
		if r == GlobalAdmin {
			return true
		}
	}
	return false
}

// Aggregate names: the second token of an event's subject,
// infracast.auth.<aggregate>.<id>.
const (
	AggregateUser     = "user"
	AggregateUsername = "username" // uniqueness reservations
)

// User events. UsernameReserved lives on the "username" aggregate of the
// reserved name; UserLoginFailed for a name that matches no user on the
// "login" aggregate (LoginAttempts).
// UserCreated: a user account was created. The password hash is an argon2id PHC
// string sealed with the deployment's master key (AES-GCM); it is never plain.
type UserCreated struct {
	UserID             string       `json:"user_id"`
	Username           string       `json:"username"`
	Email              string       `json:"email"`
	PasswordHashSealed string       `json:"password_hash_sealed,omitempty"`
	Roles              []GlobalRole `json:"roles"`
	Tenants            []TenantRole `json:"tenants"`
	// Unvouched: User.Unvouched (absent: vouched for, as every account
	// was before it existed).
	Unvouched bool      `json:"unvouched,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// UsernameReserved claims a username for a user; appended with "subject must be
// new" in the same atomic batch as UserCreated, so two users never share a name.
type UsernameReserved struct {
	Username string `json:"username"`
	UserID   string `json:"user_id"`
}

// UserRoleGranted: the user now holds Role in Tenant (replacing any earlier role there).
type UserRoleGranted struct {
	UserID string `json:"user_id"`
	Tenant string `json:"tenant"`
	Role   Role   `json:"role"`
}

// UserRoleRevoked: the user no longer holds any role in Tenant.
type UserRoleRevoked struct {
	UserID string `json:"user_id"`
	Tenant string `json:"tenant"`
}

// UserDeactivated: the user can no longer log in, and every token, refresh token
// and session of the user stops at once. It is also a cut-off, as a password
// change is: a session started at or before it never works again, even once
// the user is activated.
type UserDeactivated struct {
	UserID string `json:"user_id"`
	Reason string `json:"reason,omitempty"`
	// ByTenantAdmin: a tenant admin deactivated the user, and a tenant
	// admin may activate it (User.DeactivatedByTenantAdmin). Absent — a
	// platform admin, a SCIM connection, or a build from before the field
	// — only a platform admin may.
	ByTenantAdmin bool `json:"by_tenant_admin,omitempty"`
}

// UserActivated: a deactivated user may log in again. It brings back nothing
// the deactivation stopped: the sessions (and their tokens) it cut off stay
// revoked, and so do the API keys revoked with it.
type UserActivated struct {
	UserID string `json:"user_id"`
	Reason string `json:"reason,omitempty"`
}

// UserPasswordChanged: a new password (sealed argon2id hash). Every session of the
// user other than KeptSessionID is revoked by it; so is KeptSessionID if an
// earlier password change or a deactivation revoked it: a cut-off is never
// undone (the read model's keepIfLive).
type UserPasswordChanged struct {
	UserID             string `json:"user_id"`
	PasswordHashSealed string `json:"password_hash_sealed"`
	KeptSessionID      string `json:"kept_session_id,omitempty"`
}

// UserProfileChanged: the user's username or e-mail changed (a field
// omitted is unchanged). A new username — unless it differs from the old
// one only in case — is reserved (username.reserved) in the same atomic
// batch, as at creation; the old name's reservation stays: a username once
// used is never given to anyone else (nor back to its user).
type UserProfileChanged struct {
	UserID   string `json:"user_id"`
	Username string `json:"username,omitempty"`
	Email    string `json:"email,omitempty"`
	// Unvouched: the change was made by someone who cannot vouch for it:
	// the account is User.Unvouched from now on.
	Unvouched bool `json:"unvouched,omitempty"`
}

// UserLoginSucceeded: a login started SessionID.
type UserLoginSucceeded struct {
	UserID    string `json:"user_id"`
	SessionID string `json:"session_id"`
	Method    string `json:"method"`
}

// UserLoginChallenged: a login's first factor was right and it waits for a
// second one (the answer was 403 MFA_REQUIRED, or MFA_ENROLLMENT_REQUIRED).
// Decided against the login throttle and stored only if the user's subject
// has not moved since, like a session's start: in a burst of guesses, the
// right password of a user with a second factor is told apart from the
// wrong ones only while fewer than the limit of failures stand. Like
// session.started, it lives on a subject of its own (AggregateLoginChallenge),
// not on the user's: it changes nothing of the user (the failures stand),
// and a replica of an older build, which skips it, keeps the user's subject
// where it reads it.
//
// Reason LoginRefusedTenant marks the other answer that tells a password
// was right without starting a session: 403 FORBIDDEN, the user holds no
// role in the tenant the login asked for (Tenant). Without it, guessing
// with any tenant added hid the right guess from the trail (an outside
// check, 20a). A field on this event rather than a new type: it is
// audit-only already, and an older build decodes it (ignoring the fields)
// instead of skipping an unknown type.
type UserLoginChallenged struct {
	UserID string    `json:"user_id"`
	Method string    `json:"method"`
	Reason string    `json:"reason,omitempty"`
	Tenant string    `json:"tenant,omitempty"`
	At     time.Time `json:"at"`
}

// LoginRefusedTenant is the reason of a user.login_challenged that
// records a right password refused (403 FORBIDDEN) for the tenant it asked
// for, in which the user holds no role. No reason: a second factor is asked.
const LoginRefusedTenant = "no_role_in_tenant"

// AggregateLoginChallenge names the aggregate of a user.login_challenged
// event: a new ID ("chl-<ULID>") for each.
const AggregateLoginChallenge = "login_challenge"

// UserLoginFailed: a login attempt was refused. When the name matched no user,
// UserID and Username are empty and the event lives on the "login" aggregate,
// whose ID is a hash of the name: a name as typed is never recorded, since
// people sometimes type their password into it.
type UserLoginFailed struct {
	UserID   string    `json:"user_id,omitempty"`
	Username string    `json:"username,omitempty"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// KeyRevokedOwnerDeactivated is the reason of the apikey.revoked events a
// deactivation (or an activation, for a key it finds still live) appends for
// each live API key the user owns.
const KeyRevokedOwnerDeactivated = "owner deactivated"

// User event type names, as they appear in the envelope's "type".
const (
	TypeUserCreated         = "user.created"
	TypeUsernameReserved    = "username.reserved"
	TypeUserRoleGranted     = "user.role_granted"
	TypeUserRoleRevoked     = "user.role_revoked"
	TypeUserDeactivated     = "user.deactivated"
	TypeUserActivated       = "user.activated"
	TypeUserPasswordChanged = "user.password_changed"
	TypeUserProfileChanged  = "user.profile_changed"
	TypeUserLoginSucceeded  = "user.login_succeeded"
	TypeUserLoginChallenged = "user.login_challenged"
	TypeUserLoginFailed     = "user.login_failed"
)

func (UserCreated) EventType() string         { return TypeUserCreated }
func (UsernameReserved) EventType() string    { return TypeUsernameReserved }
func (UserRoleGranted) EventType() string     { return TypeUserRoleGranted }
func (UserRoleRevoked) EventType() string     { return TypeUserRoleRevoked }
func (UserDeactivated) EventType() string     { return TypeUserDeactivated }
func (UserActivated) EventType() string       { return TypeUserActivated }
func (UserPasswordChanged) EventType() string { return TypeUserPasswordChanged }
func (UserProfileChanged) EventType() string  { return TypeUserProfileChanged }
func (UserLoginSucceeded) EventType() string  { return TypeUserLoginSucceeded }
func (UserLoginFailed) EventType() string     { return TypeUserLoginFailed }
func (UserLoginChallenged) EventType() string { return TypeUserLoginChallenged }

// UserCommand is a command on the user aggregate: one of the types below.
// The set is closed (the marker method is unexported), so that handing
// DecideUser, or commands.Service.ExecuteUser, another aggregate's command
// does not compile.
type UserCommand interface{ userCommand() }

// Commands on the user aggregate.
type (
	// CreateUser creates a user. PasswordHashSealed is already hashed and sealed.
	CreateUser struct {
		UserID             string
		Username           string
		Email              string
		PasswordHashSealed string
		Roles              []string
		Tenants            []TenantRole
		Unvouched          bool // User.Unvouched
		Now                time.Time
	}
	// GrantRole gives the user Role in Tenant, replacing an earlier role there.
	GrantRole struct {
		Tenant string
		Role   string
	}
	// RevokeRole removes the user's role in Tenant.
	RevokeRole struct{ Tenant string }
	// Deactivate stops the user and everything issued to them. A user
	// already deactivated is left as it is. ByTenantAdmin: a tenant admin
	// (not a platform admin) deactivates, so a tenant admin may activate
	// the user again (User.DeactivatedByTenantAdmin). By: the acting
	// account (a session's user, an API key's owner); when set, the
	// command decides ByTenantAdmin again from its role as the decision
	// reads it — a platform admin acting through an API key or a token
	// scoped to a tenant is still a platform admin (re-check 20r6).
	Deactivate struct {
		Reason        string
		ByTenantAdmin bool
		By            string
	}
	// Activate lets a deactivated user log in again (nothing the
	// deactivation stopped comes back). Refused for an active user:
	// ErrUserActive.
	Activate struct{ Reason string }
	// ChangePassword sets a new (sealed) password hash; sessions other than
	// KeepSessionID are revoked.
	ChangePassword struct {
		PasswordHashSealed string
		KeepSessionID      string
		// VerifiedHash, when set, is the sealed hash the user's current
		// password was verified against: the change is refused
		// (current_password) unless it is still the user's. Two changes
		// raced with the same current password: only the first holds.
		VerifiedHash string
		// Throttle and Now, with VerifiedHash: the change was a guess of
		// the password, decided against the login lockout like a login —
		// else, in a burst of guesses with a stolen access token, the right
		// one changed the password after the wrong ones had locked the
		// account (an outside check, 15e).
		Throttle LoginThrottle
		Now      time.Time
	}
	// ChangeProfile gives the user a new username and/or e-mail ("": left
	// as it is), validated as at creation. The caller reserves a new
	// username (commands.Service does, in the same atomic append).
	ChangeProfile struct {
		Username string
		Email    string
		// Unvouched: who changes the profile cannot vouch for it
		// (User.Unvouched).
		Unvouched bool
	}
	// RecordLogin records a successful login that started SessionID, unless
	// the throttle locks the account at Now. VerifiedHash, for a password
	// login, is the sealed hash the password was verified against: if the
	// password has changed since, the login is refused (else a session
	// decided on the old password would outlive the change).
	RecordLogin struct {
		SessionID    string
		Method       string
		Now          time.Time
		Throttle     LoginThrottle
		VerifiedHash string
	}
	// RecordLoginChallenge records that a login's first factor was right and
	// a second is asked (or, Reason LoginRefusedTenant, that the login was
	// refused for its tenant), unless the throttle locks the account at Now.
	RecordLoginChallenge struct {
		Method       string
		Reason       string // "" (a second factor is asked) or LoginRefusedTenant
		Tenant       string // with LoginRefusedTenant: the tenant asked for
		Now          time.Time
		Throttle     LoginThrottle
		VerifiedHash string
	}
	// RecordLoginFailure records a refused login, unless the throttle already
	// locks the account at Now (then nothing is recorded).
	RecordLoginFailure struct {
		Username string
		Reason   string
		Now      time.Time
		Throttle LoginThrottle
	}
)

var (
	usernamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)
	tenantPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
)

// NormalizeUsername is the form in which usernames are compared and reserved:
// without ASCII white space around it, A-Z lowered to a-z, every other byte
// left as it is. Usernames are ASCII (usernamePattern), so a name with any
// other character matches none: Unicode case folding would let 'mİke'
// (U+0130) or 'Kim' with a Kelvin sign (U+212A) log in as mike or kim
// (outside check 14d), and Unicode trimming a name with a no-break space.
func NormalizeUsername(s string) string {
	return LowerASCII(strings.Trim(s, " \t\r\n\v\f"))
}

// LowerASCII is s with the ASCII letters A–Z lowered and nothing else
// changed: how usernames and e-mail addresses are compared without regard to
// case, so that no Unicode lookalike (İ, the Kelvin sign), which
// strings.ToLower maps onto an ASCII letter, matches them.
func LowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = asciiLower(b[j])
			}
			return string(b)
		}
	}
	return s
}

// SameUsername reports whether two usernames are the same account's:
// equal once normalized (NormalizeUsername).
func SameUsername(a, b string) bool { return NormalizeUsername(a) == NormalizeUsername(b) }

// ValidTenantID reports whether s is a well-formed tenant identifier: what
// tenantPattern matches, checked byte by byte (it is on the path of every
// forward-auth and gateway request, where the regexp cost ~0.4 µs).
func ValidTenantID(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

func (CreateUser) userCommand()           {}
func (GrantRole) userCommand()            {}
func (RevokeRole) userCommand()           {}
func (Deactivate) userCommand()           {}
func (Activate) userCommand()             {}
func (ChangePassword) userCommand()       {}
func (ChangeProfile) userCommand()        {}
func (RecordLogin) userCommand()          {}
func (RecordLoginFailure) userCommand()   {}
func (RecordLoginChallenge) userCommand() {}

// DecideUser decides a command against the user's state and returns the events
// to append. No events and no error means the command changes nothing. A
// command it does not know (nil, or a pointer to a command) is refused:
// ErrNotFound for a user that does not exist, else a *ValidationError on
// "command".
func DecideUser(u User, cmd UserCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case CreateUser:
		return decideCreateUser(u, c)
	}
	if !u.Exists() {
		return nil, ErrNotFound
	}
	switch c := cmd.(type) {
	case GrantRole:
		if !ValidTenantID(c.Tenant) {
			return nil, Invalid("tenant", "must match %s", tenantPattern)
		}
		r, err := ParseRole(c.Role)
		if err != nil {
			return nil, Invalid("role", "must be one of viewer, editor, admin")
		}
		if u.Tenants[c.Tenant] == r {
			return nil, nil
		}
		return []Event{UserRoleGranted{UserID: u.ID, Tenant: c.Tenant, Role: r}}, nil
	case RevokeRole:
		if _, ok := u.Tenants[c.Tenant]; !ok {
			return nil, nil
		}
		return []Event{UserRoleRevoked{UserID: u.ID, Tenant: c.Tenant}}, nil
	case Deactivate:
		if !u.Active {
			return nil, nil
		}
		return []Event{UserDeactivated{UserID: u.ID, Reason: c.Reason, ByTenantAdmin: c.ByTenantAdmin}}, nil
	case Activate:
		if u.Active {
			return nil, ErrUserActive
		}
		return []Event{UserActivated{UserID: u.ID, Reason: c.Reason}}, nil
	case ChangePassword:
		if !u.Active {
			return nil, ErrUserInactive
		}
		if c.PasswordHashSealed == "" {
			return nil, Invalid("password", "is required")
		}
		if c.VerifiedHash != "" {
			if err := c.Throttle.Check(u.FailedLogins, u.LastFailedLoginAt, c.Now); err != nil {
				return nil, err
			}
			if subtle.ConstantTimeCompare([]byte(c.VerifiedHash), []byte(u.PasswordHashSealed)) != 1 {
				return nil, Invalid("current_password", "does not match")
			}
		}
		return []Event{UserPasswordChanged{UserID: u.ID, PasswordHashSealed: c.PasswordHashSealed, KeptSessionID: c.KeepSessionID}}, nil
	case ChangeProfile:
		return decideChangeProfile(u, c)
	case RecordLogin:
		if err := LoginAllowed(u, c.Throttle, c.Now, c.VerifiedHash); err != nil {
			return nil, err
		}
		return []Event{UserLoginSucceeded{UserID: u.ID, SessionID: c.SessionID, Method: c.Method}}, nil
	case RecordLoginChallenge:
		if err := LoginAllowed(u, c.Throttle, c.Now, c.VerifiedHash); err != nil {
			return nil, err
		}
		return []Event{UserLoginChallenged{UserID: u.ID, Method: c.Method, Reason: c.Reason, Tenant: c.Tenant, At: c.Now.UTC()}}, nil
	case RecordLoginFailure:
		if err := c.Throttle.Check(u.FailedLogins, u.LastFailedLoginAt, c.Now); err != nil {
			return nil, err
		}
		return []Event{UserLoginFailed{UserID: u.ID, Username: u.Username, Reason: c.Reason, At: c.Now.UTC()}}, nil
	}
	return nil, Invalid("command", "unknown user command %T", cmd)
}

// LoginAllowed checks what a login's success, or its challenge for a second
// factor, is decided on: the throttle does not lock the account at now, the
// user is active, and, for a password login, the password has not changed
// since verifiedHash was verified. A refusal that tells the password was
// right without recording anything (a tenant the user holds no role in) is
// decided on it too, on the user as the event store has it.
func LoginAllowed(u User, throttle LoginThrottle, now time.Time, verifiedHash string) error {
	if err := throttle.Check(u.FailedLogins, u.LastFailedLoginAt, now); err != nil {
		return err
	}
	if !u.Active {
		return ErrUserInactive
	}
	if verifiedHash != "" && subtle.ConstantTimeCompare([]byte(verifiedHash), []byte(u.PasswordHashSealed)) != 1 {
		return ErrInvalidCredentials
	}
	return nil
}

func decideCreateUser(u User, c CreateUser) ([]Event, error) {
	if u.Exists() {
		return nil, ErrAlreadyExists
	}
	if c.UserID == "" {
		return nil, Invalid("user_id", "is required")
	}
	if err := checkUsername(c.Username); err != nil {
		return nil, err
	}
	if c.Email != "" {
		if err := checkEmail(c.Email); err != nil {
			return nil, err
		}
	}
	if c.PasswordHashSealed == "" {
		return nil, Invalid("password", "is required")
	}
	roles := make([]GlobalRole, 0, len(c.Roles))
	for _, r := range c.Roles {
		gr, err := ParseGlobalRole(r)
		if err != nil {
			return nil, Invalid("roles", "unknown global role %q (only \"admin\")", r)
		}
		roles = append(roles, gr)
	}
	seen := make(map[string]bool, len(c.Tenants))
	tenants := make([]TenantRole, 0, len(c.Tenants))
	for _, tr := range c.Tenants {
		if !ValidTenantID(tr.Tenant) {
			return nil, Invalid("tenants", "tenant id %q must match %s", tr.Tenant, tenantPattern)
		}
		if seen[tr.Tenant] {
			return nil, Invalid("tenants", "tenant %q listed twice", tr.Tenant)
		}
		seen[tr.Tenant] = true
		r, err := ParseRole(string(tr.Role))
		if err != nil {
			return nil, Invalid("tenants", "unknown role %q for tenant %q", tr.Role, tr.Tenant)
		}
		tenants = append(tenants, TenantRole{Tenant: tr.Tenant, Role: r})
	}
	SortTenantRoles(tenants)
	return []Event{
		UserCreated{
			UserID: c.UserID, Username: c.Username, Email: c.Email,
			PasswordHashSealed: c.PasswordHashSealed, Roles: roles, Tenants: tenants,
			Unvouched: c.Unvouched, CreatedAt: c.Now.UTC(),
		},
	}, nil
}

// checkUsername validates a username as it is created or changed.
func checkUsername(name string) error {
	if !usernamePattern.MatchString(name) {
		return Invalid("username", "must be 1-128 characters of letters, digits and . _ @ + -, starting with a letter or digit")
	}
	if LooksLikeUserID(name) {
		return Invalid("username", "must not look like a user ID (user- and a ULID): clients that take an ID or a username would take it for another user's ID")
	}
	return nil
}

// LooksLikeUserID reports whether s has the shape of a user ID — "user-"
// and a ULID — in any letter case. No username may: a command given a user
// ID must never find someone else by name (re-check 17r3: the CLI, given a
// user ID its caller could not see, acted on the user named after it).
func LooksLikeUserID(s string) bool {
	rest, ok := strings.CutPrefix(strings.ToUpper(s), "USER-")
	if !ok || len(rest) != 26 || rest[0] > '7' {
		return false // a ULID is 26 characters, the first at most 7
	}
	for i := 0; i < len(rest); i++ {
		// Crockford's base32, as ULIDs write it: no I, L, O or U.
		if c := rest[i]; !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U') {
			return false
		}
	}
	return true
}

// SameEmail reports whether a and b are the same e-mail address for linking
// an SSO login to a user: equal but for the letter case of A-Z. Any other
// byte must match exactly — Unicode case folding (strings.EqualFold) would
// take "\u212Aim@corp.example" (KELVIN SIGN) for "kim@corp.example" and
// "le\u017F@corp.example" (LONG S) for "les@corp.example", addresses a mail
// system delivers elsewhere, and hand their owners' accounts to whoever an
// IdP lets assert them (outside check 12).
func SameEmail(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if x, y := a[i], b[i]; x != y && asciiLower(x) != asciiLower(y) {
			return false
		}
	}
	return true
}

// asciiLower maps A-Z to a-z and leaves every other byte alone.
func asciiLower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + ('a' - 'A')
	}
	return b
}

// checkEmail validates an e-mail address as it is created or changed.
func checkEmail(email string) error {
	if hasHiddenRune(email) {
		return Invalid("email", "must be a plain address like you@company.com, without control or invisible characters (direction overrides, zero-width characters, line separators, blank fillers)")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email {
		return Invalid("email", "must be a plain address like you@company.com")
	}
	return nil
}

// UsernameChangeNeedsReservation reports whether renaming a user from old
// to new needs new's reservation: the names differ other than in case.
func UsernameChangeNeedsReservation(old, new string) bool {
	return NormalizeUsername(old) != NormalizeUsername(new)
}

func decideChangeProfile(u User, c ChangeProfile) ([]Event, error) {
	ev := UserProfileChanged{UserID: u.ID}
	if c.Username != "" && c.Username != u.Username {
		if err := checkUsername(c.Username); err != nil {
			return nil, err
		}
		ev.Username = c.Username
	}
	if c.Email != "" && c.Email != u.Email {
		if err := checkEmail(c.Email); err != nil {
			return nil, err
		}
		ev.Email = c.Email
	}
	if ev.Username == "" && ev.Email == "" {
		return nil, nil
	}
	ev.Unvouched = c.Unvouched
	return []Event{ev}, nil
}

// EvolveUser applies one event to the user's state. Events of other aggregates
// are ignored. It never mutates the maps of its input.
func EvolveUser(u User, e Event) User {
	switch ev := Deref(e).(type) {
	case UserCreated:
		u = User{
			ID: ev.UserID, Username: ev.Username, Email: ev.Email, Unvouched: ev.Unvouched,
			PasswordHashSealed: ev.PasswordHashSealed, Roles: ev.Roles,
			Tenants: make(map[string]Role, len(ev.Tenants)), Active: true, CreatedAt: ev.CreatedAt,
			Version: u.Version,
		}
		for _, tr := range ev.Tenants {
			u.Tenants[tr.Tenant] = tr.Role
		}
	case UserRoleGranted:
		u.Tenants = cloneRoles(u.Tenants)
		u.Tenants[ev.Tenant] = ev.Role
	case UserRoleRevoked:
		u.Tenants = cloneRoles(u.Tenants)
		delete(u.Tenants, ev.Tenant)
	case UserDeactivated:
		u.Active = false
		u.DeactivatedByTenantAdmin = ev.ByTenantAdmin
	case UserActivated:
		u.Active, u.DeactivatedByTenantAdmin = true, false
	case UserPasswordChanged:
		u.PasswordHashSealed = ev.PasswordHashSealed
		// The failures counted guesses of the password that is gone: a
		// new one starts with none, and an admin's reset lets the user
		// sign in with it at once (an outside check, 15e, found a reset
		// account still locked).
		u.FailedLogins = 0
	case UserProfileChanged:
		if ev.Username != "" {
			u.Username = ev.Username
		}
		if ev.Email != "" {
			u.Email = ev.Email
		}
		u.Unvouched = u.Unvouched || ev.Unvouched
	case UserLoginSucceeded:
		u.FailedLogins = 0
	case UserLoginFailed:
		u.FailedLogins++
		u.LastFailedLoginAt = ev.At
	case MFAFailed: // a wrong second factor counts as a failed login (mfa.go)
		u.FailedLogins++
		u.LastFailedLoginAt = ev.At
	default:
		return u
	}
	u.Version++
	return u
}

func cloneRoles(m map[string]Role) map[string]Role {
	out := make(map[string]Role, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TenantRoles returns the user's tenant roles sorted by tenant.
func (u User) TenantRoles() []TenantRole {
	out := make([]TenantRole, 0, len(u.Tenants))
	for t, r := range u.Tenants {
		out = append(out, TenantRole{Tenant: t, Role: r})
	}
	SortTenantRoles(out)
	return out
}

// PermissionsIn returns what the user may do in tenant: admin:* for a platform
// admin, the role's permissions otherwise, nothing without a role.
func (u User) PermissionsIn(tenant string) PermissionSet {
	if u.IsPlatformAdmin() {
		return SetOf(AdminAll)
	}
	return u.Tenants[tenant].Permissions()
}
