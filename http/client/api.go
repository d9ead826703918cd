package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ---------------------------------------------------------------- auth

// Login exchanges a username and password for tokens (POST /api/v1/auth/token).
// Most programs want a TokenSource instead, which logs in and refreshes.
func (c *Client) Login(ctx context.Context, req LoginRequest) (*LoginResponse, error) {
	var out LoginResponse
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/auth/token", nil, req, &out)
}

// LoginMFA is a login's second step (POST /api/v1/auth/token/mfa): when
// Login answers 403 MFA_REQUIRED, its *Error carries the MFAToken to send
// here with a code: a TOTP code or a recovery code. The answer is Login's.
//
//	res, err := c.Login(ctx, client.LoginRequest{Username: u, Password: pw})
//	var e *client.Error
//	if errors.As(err, &e) && e.MFAToken != "" {
//		res, err = c.LoginMFA(ctx, client.MFALoginRequest{MFAToken: e.MFAToken, Code: code})
//	}
func (c *Client) LoginMFA(ctx context.Context, req MFALoginRequest) (*LoginResponse, error) {
	var out LoginResponse
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/auth/token/mfa", nil, req, &out)
}

// Refresh exchanges a refresh token for a new access token (and, with
// rotation on, a new refresh token).
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*RefreshResponse, error) {
	var out RefreshResponse
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/auth/refresh", nil, map[string]string{"refresh_token": refreshToken}, &out)
}

// Revoke revokes an access token, a refresh token (the whole session) or an
// API key (RFC 7009: no error whether or not it was valid).
func (c *Client) Revoke(ctx context.Context, token string) error {
	return c.Do(ctx, http.MethodPost, "/api/v1/auth/revoke", nil, map[string]string{"token": token}, nil)
}

// Logout ends the caller's own session.
func (c *Client) Logout(ctx context.Context) error {
	return c.Do(ctx, http.MethodPost, "/api/v1/auth/logout", nil, nil, nil)
}

// Me answers who the caller is, with its tenants and live permissions.
func (c *Client) Me(ctx context.Context) (*Me, error) {
	var out Me
	return &out, c.Do(ctx, http.MethodGet, "/api/v1/auth/me", nil, nil, &out)
}

// MySessions lists the caller's live sessions.
func (c *Client) MySessions(ctx context.Context, p Page) (*SessionPage, error) {
	var out SessionPage
	return &out, c.Do(ctx, http.MethodGet, "/api/v1/auth/sessions", p.query(), nil, &out)
}

// RevokeMySession ends one of the caller's own sessions.
func (c *Client) RevokeMySession(ctx context.Context, sessionID string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/auth/sessions/"+seg(sessionID), nil, nil, nil)
}

func (p Page) query() url.Values {
	q := url.Values{}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	return q
}

// ---------------------------------------------------------------- users

// ListUsers lists the users the caller may see, by username; the zero Page
// answers all of them.
func (c *Client) ListUsers(ctx context.Context, p Page) (*UserPage, error) {
	var out UserPage
	return &out, c.Do(ctx, http.MethodGet, "/api/v1/users", p.query(), nil, &out)
}

// GetUser answers one user by ID.
func (c *Client) GetUser(ctx context.Context, id string) (*User, error) {
	var out User
	return &out, c.Do(ctx, http.MethodGet, "/api/v1/users/"+seg(id), nil, nil, &out)
}

// CreateUser creates a user.
func (c *Client) CreateUser(ctx context.Context, req CreateUserRequest) (*User, error) {
	var out User
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/users", nil, req, &out)
}

// GrantRole gives the user role (viewer, editor, admin) in tenant, replacing
// the role held there; it applies to the very next request.
func (c *Client) GrantRole(ctx context.Context, userID, tenant, role string) (*User, error) {
	var out User
	return &out, c.Do(ctx, http.MethodPut, "/api/v1/users/"+seg(userID)+"/tenants/"+seg(tenant), nil, map[string]string{"role": role}, &out)
}

// RemoveRole removes the user's role in tenant.
func (c *Client) RemoveRole(ctx context.Context, userID, tenant string) (*User, error) {
	var out User
	return &out, c.Do(ctx, http.MethodDelete, "/api/v1/users/"+seg(userID)+"/tenants/"+seg(tenant), nil, nil, &out)
}

// Deactivate stops every token, refresh token, session and API key of the
// user at once.
func (c *Client) Deactivate(ctx context.Context, userID string) (*User, error) {
	var out User
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/users/"+seg(userID)+"/deactivate", nil, nil, &out)
}

// Activate lets a deactivated user log in again (nothing revoked comes back).
func (c *Client) Activate(ctx context.Context, userID string) (*User, error) {
	var out User
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/users/"+seg(userID)+"/activate", nil, nil, &out)
}

// ChangePassword sets a user's password: current is required for one's own,
// and empty for a platform admin changing anyone's.
func (c *Client) ChangePassword(ctx context.Context, userID, password, current string) error {
	body := map[string]string{"password": password}
	if current != "" {
		body["current_password"] = current
	}
	return c.Do(ctx, http.MethodPost, "/api/v1/users/"+seg(userID)+"/password", nil, body, nil)
}

// UserSessions lists a user's live sessions.
func (c *Client) UserSessions(ctx context.Context, userID string, p Page) (*SessionPage, error) {
	var out SessionPage
	return &out, c.Do(ctx, http.MethodGet, "/api/v1/users/"+seg(userID)+"/sessions", p.query(), nil, &out)
}

// RevokeUserSessions ends every live session of a user and says how many.
func (c *Client) RevokeUserSessions(ctx context.Context, userID string) (int, error) {
	var out struct {
		Revoked int `json:"revoked"`
	}
	err := c.Do(ctx, http.MethodDelete, "/api/v1/users/"+seg(userID)+"/sessions", nil, nil, &out)
	return out.Revoked, err
}

// RevokeUserSession ends one session of a user.
func (c *Client) RevokeUserSession(ctx context.Context, userID, sessionID string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/users/"+seg(userID)+"/sessions/"+seg(sessionID), nil, nil, nil)
}

// ---------------------------------------------------------------- API keys

// CreateAPIKey creates an API key; the answer's Key is the secret, shown
// this once.
func (c *Client) CreateAPIKey(ctx context.Context, req CreateAPIKeyRequest) (*APIKey, error) {
	var out APIKey
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/api-keys", nil, req, &out)
}

// ListAPIKeys lists the keys the caller owns or administers (never secrets).
func (c *Client) ListAPIKeys(ctx context.Context, p Page) (*APIKeyPage, error) {
	var out APIKeyPage
	return &out, c.Do(ctx, http.MethodGet, "/api/v1/api-keys", p.query(), nil, &out)
}

// GetAPIKey answers one key (never its secret).
func (c *Client) GetAPIKey(ctx context.Context, id string) (*APIKey, error) {
	var out APIKey
	return &out, c.Do(ctx, http.MethodGet, "/api/v1/api-keys/"+seg(id), nil, nil, &out)
}

// RotateAPIKey gives the key a new secret (in the answer's Key, shown once);
// the old one stops at once.
func (c *Client) RotateAPIKey(ctx context.Context, id string) (*APIKey, error) {
	var out APIKey
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/api-keys/"+seg(id)+"/rotate", nil, nil, &out)
}

// RevokeAPIKey revokes a key: refused everywhere from the next request on.
func (c *Client) RevokeAPIKey(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/api-keys/"+seg(id), nil, nil, nil)
}

// ---------------------------------------------------------------- SSO

// ConfigureOkta configures (or replaces) the Okta provider.
func (c *Client) ConfigureOkta(ctx context.Context, p OktaProvider) (*SSOProvider, error) {
	return c.configureSSO(ctx, "okta", p)
}

// ConfigureAzure configures (or replaces) the Azure AD provider.
func (c *Client) ConfigureAzure(ctx context.Context, p AzureProvider) (*SSOProvider, error) {
	return c.configureSSO(ctx, "azure", p)
}

// ConfigureSAML configures (or replaces) the SAML provider.
func (c *Client) ConfigureSAML(ctx context.Context, p SAMLProvider) (*SSOProvider, error) {
	return c.configureSSO(ctx, "saml", p)
}

// ConfigureOIDC configures (or replaces) a generic OpenID Connect provider.
func (c *Client) ConfigureOIDC(ctx context.Context, p OIDCProvider) (*SSOProvider, error) {
	return c.configureSSO(ctx, "oidc", p)
}

func (c *Client) configureSSO(ctx context.Context, typ string, body any) (*SSOProvider, error) {
	var out SSOProvider
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/admin/sso/"+typ, nil, body, &out)
}

// ListSSOProviders lists the configured providers, secrets redacted.
func (c *Client) ListSSOProviders(ctx context.Context) ([]SSOProvider, error) {
	var out struct {
		Providers []SSOProvider `json:"providers"`
	}
	err := c.Do(ctx, http.MethodGet, "/api/v1/admin/sso", nil, nil, &out)
	return out.Providers, err
}

// GetSSOProvider answers one provider by name.
func (c *Client) GetSSOProvider(ctx context.Context, name string) (*SSOProvider, error) {
	var out SSOProvider
	return &out, c.Do(ctx, http.MethodGet, "/api/v1/admin/sso/"+seg(name), nil, nil, &out)
}

// DeleteSSOProvider removes a provider.
func (c *Client) DeleteSSOProvider(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/admin/sso/"+seg(name), nil, nil, nil)
}

// ---------------------------------------------------------------- signing keys

// ListSigningKeys lists the access-token signing keys (platform admins).
func (c *Client) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	var out struct {
		SigningKeys []SigningKey `json:"signing_keys"`
	}
	err := c.Do(ctx, http.MethodGet, "/api/v1/admin/signing-keys", nil, nil, &out)
	return out.SigningKeys, err
}

// AddSigningKey adds a signing key ("EdDSA" or "HS256"; empty: the service's
// default, HS256) that signs new tokens from then on. An EdDSA key is
// published in the JWKS, for offline verification; to publish it before it
// signs, use AddPendingSigningKey. An HS256 key while an EdDSA key signs
// is refused (409 CONFLICT): see AddSigningKeyFallingBackToHS256.
func (c *Client) AddSigningKey(ctx context.Context, algorithm string) (*SigningKey, error) {
	return c.addSigningKey(ctx, algorithm, true, false)
}

// AddSigningKeyFallingBackToHS256 is AddSigningKey even when an HS256 key
// takes over from the EdDSA key that signs: offline verifiers refuse every
// new token.
func (c *Client) AddSigningKeyFallingBackToHS256(ctx context.Context, algorithm string) (*SigningKey, error) {
	return c.addSigningKey(ctx, algorithm, true, true)
}

// AddPendingSigningKey adds a signing key that is published (it verifies;
// EdDSA: it is in the JWKS) but signs only once activated
// (ActivateSigningKey): activate it once offline verifiers have fetched the
// JWKS, so that none refuses its first tokens.
func (c *Client) AddPendingSigningKey(ctx context.Context, algorithm string) (*SigningKey, error) {
	return c.addSigningKey(ctx, algorithm, false, false)
}

func (c *Client) addSigningKey(ctx context.Context, algorithm string, signing, fallBack bool) (*SigningKey, error) {
	var body struct {
		Algorithm string `json:"algorithm,omitempty"`
		Signing   *bool  `json:"signing,omitempty"`
		FallBack  bool   `json:"fall_back_to_hs256,omitempty"`
	}
	body.Algorithm, body.FallBack = algorithm, fallBack
	if !signing {
		body.Signing = &signing
	}
	var out SigningKey
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/admin/signing-keys", nil, body, &out)
}

// ActivateSigningKey makes a key the one that signs new tokens, on every
// replica by the answer; the others keep verifying until retired. An HS256
// key while an EdDSA key signs is refused (409 CONFLICT): see
// ActivateSigningKeyFallingBackToHS256.
func (c *Client) ActivateSigningKey(ctx context.Context, id string) (*SigningKey, error) {
	var out SigningKey
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/admin/signing-keys/"+seg(id)+"/activate", nil, nil, &out)
}

// ActivateSigningKeyFallingBackToHS256 activates a key even when it is an
// HS256 key that takes over from the EdDSA key that signs: offline
// verifiers refuse every new token.
func (c *Client) ActivateSigningKeyFallingBackToHS256(ctx context.Context, id string) (*SigningKey, error) {
	body := struct {
		FallBack bool `json:"fall_back_to_hs256"`
	}{true}
	var out SigningKey
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/admin/signing-keys/"+seg(id)+"/activate", nil, body, &out)
}

// RetireSigningKey retires a key: tokens it signed stop verifying. The EdDSA
// key that signs, when no other EdDSA key would take over, is refused (409
// CONFLICT): see RetireSigningKeyFallingBackToHS256.
func (c *Client) RetireSigningKey(ctx context.Context, id string) (*SigningKey, error) {
	var out SigningKey
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/admin/signing-keys/"+seg(id)+"/retire", nil, nil, &out)
}

// RetireSigningKeyFallingBackToHS256 retires a key even when it is the last
// EdDSA key that signs: the configured HS256 keys sign again, and offline
// verifiers refuse every new token.
func (c *Client) RetireSigningKeyFallingBackToHS256(ctx context.Context, id string) (*SigningKey, error) {
	body := struct {
		FallBack bool `json:"fall_back_to_hs256"`
	}{true}
	var out SigningKey
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/admin/signing-keys/"+seg(id)+"/retire", nil, body, &out)
}

// JWKS fetches the public keys of the EdDSA signing keys in use.
func (c *Client) JWKS(ctx context.Context) (*JWKS, error) {
	var out JWKS
	return &out, c.Do(ctx, http.MethodGet, "/.well-known/jwks.json", nil, nil, &out)
}

// ---------------------------------------------------------------- audit and access

// AuditEvents answers one page of the audit log.
func (c *Client) AuditEvents(ctx context.Context, q AuditQuery) (*AuditPage, error) {
	v := url.Values{}
	for k, s := range map[string]string{"tenant": q.Tenant, "actor": q.Actor, "subject": q.Subject, "type": q.Type, "result": q.Result, "cursor": q.Cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	timeQuery(v, "since", q.Since)
	timeQuery(v, "until", q.Until)
	if q.Desc {
		v.Set("order", "desc")
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out AuditPage
	return &out, c.Do(ctx, http.MethodGet, "/api/v1/audit/events", v, nil, &out)
}

// AuditCursorAfter is the oldest-first cursor of the position just after
// stream sequence seq (docs/audit.md: a cursor is a position in the stream):
// the events that follow an event already seen. It does not name the event
// at seq, so a store restored from a backup that has grown past seq takes it
// too: prefer the event's own Cursor, as FollowAudit does.
func AuditCursorAfter(seq uint64) string { return "a" + strconv.FormatUint(seq, 10) }

// FollowAudit calls fn with every event matching q (oldest first, from q's
// cursor, or from the start), then keeps asking for new ones every interval
// until ctx ends, fn returns an error, or the service refuses the request.
//
// A passing failure does not end it (outside check 15b: the first network
// error or a service restart of a second ended 'infracast audit --follow'):
// no whole answer (the service unreachable, restarting, a connection
// broken) or an answer of 429, 502, 503 or 504 — after the client's own
// retries (Retry) — is tried again from the same cursor, so that no event
// is missed or shown twice, after interval, doubled each time, at most the
// client's Retry.MaxWait (30 s by default; at least interval), with jitter
// (or the Retry-After the service sent, within the same bound). The options
// OnFollowInterrupted and OnFollowResumed are told when that starts and
// ends. Any other error ends it: a refused credential (401, and
// ErrLoginRequired from a TokenSource), 403, 404, 400, a 500, fn's own.
// It returns ctx's error, fn's, or the one that ended it.
func (c *Client) FollowAudit(ctx context.Context, q AuditQuery, interval time.Duration, fn func(AuditEvent) error, opts ...FollowOption) error {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	var f follow
	for _, o := range opts {
		o(&f)
	}
	q.Desc = false
	failures := 0 // in a row
	for {
		page, err := c.AuditEvents(ctx, q)
		if err != nil {
			if ctx.Err() != nil || !passingFailure(err) {
				return err
			}
			failures++
			wait := c.followBackoff(interval, failures, err)
			if failures == 1 && f.interrupted != nil {
				f.interrupted(err, wait)
			}
			if err := c.sleep(ctx, wait); err != nil {
				return err
			}
			continue
		}
		if failures > 0 {
			failures = 0
			if f.resumed != nil {
				f.resumed()
			}
		}
		for _, e := range page.Events {
			if err := fn(e); err != nil {
				return err
			}
			q.Cursor = e.Cursor
			if q.Cursor == "" { // a service from before events' cursors
				q.Cursor = AuditCursorAfter(e.Sequence)
			}
		}
		if page.NextCursor != "" {
			q.Cursor = page.NextCursor
			continue
		}
		if err := c.sleep(ctx, interval); err != nil {
			return err
		}
	}
}

// FollowOption configures FollowAudit.
type FollowOption func(*follow)

type follow struct {
	interrupted func(err error, retryIn time.Duration)
	resumed     func()
}

// OnFollowInterrupted calls fn when FollowAudit meets a passing failure
// after an answer (or at its start): once for a run of failures, with the
// first one's error and the wait before the next try. It goes on trying
// until the service answers (OnFollowResumed) or ctx ends.
func OnFollowInterrupted(fn func(err error, retryIn time.Duration)) FollowOption {
	return func(f *follow) { f.interrupted = fn }
}

// OnFollowResumed calls fn when the service answers FollowAudit again after
// a passing failure (OnFollowInterrupted), before the events it answered.
func OnFollowResumed(fn func()) FollowOption {
	return func(f *follow) { f.resumed = fn }
}

// passingFailure reports whether err may pass by itself: no whole answer
// (RequestError: the service unreachable, restarting, a connection broken)
// or an answer of 429, 502, 503 or 504. Not a session that ended.
func passingFailure(err error) bool {
	if errors.Is(err, ErrLoginRequired) {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Status {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var re *RequestError
	return errors.As(err, &re)
}

// followBackoff is the wait before FollowAudit's next try after failures
// passing failures in a row, the last err: interval doubled each time, at
// most max(interval, Retry.MaxWait), jittered over its upper half; a longer
// Retry-After, within the same bound, instead.
func (c *Client) followBackoff(interval time.Duration, failures int, err error) time.Duration {
	limit := max(interval, c.retry.MaxWait)
	d := interval
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	d = d/2 + rand.N(d/2+1)
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > d {
		d = min(e.RetryAfter, limit)
	}
	return d
}

// TenantAccess answers who held permission (empty: any) in tenant at a
// moment (zero: now), and why.
func (c *Client) TenantAccess(ctx context.Context, tenant, permission string, at time.Time) (*TenantAccess, error) {
	q := url.Values{}
	if permission != "" {
		q.Set("permission", permission)
	}
	timeQuery(q, "at", at)
	var out TenantAccess
	return &out, c.Do(ctx, http.MethodGet, "/api/v1/tenants/"+seg(tenant)+"/access", q, nil, &out)
}

// UserAccess answers what a user could do in each tenant at a moment.
func (c *Client) UserAccess(ctx context.Context, userID string, at time.Time) (*PrincipalAccess, error) {
	q := url.Values{}
	timeQuery(q, "at", at)
	var out PrincipalAccess
	return &out, c.Do(ctx, http.MethodGet, "/api/v1/users/"+seg(userID)+"/access", q, nil, &out)
}

// APIKeyAccess answers what an API key could do in each tenant at a moment.
func (c *Client) APIKeyAccess(ctx context.Context, keyID string, at time.Time) (*PrincipalAccess, error) {
	q := url.Values{}
	timeQuery(q, "at", at)
	var out PrincipalAccess
	return &out, c.Do(ctx, http.MethodGet, "/api/v1/api-keys/"+seg(keyID)+"/access", q, nil, &out)
}

// CheckCredential answers whether a token or key was usable at a moment, and
// if not why and since when.
func (c *Client) CheckCredential(ctx context.Context, req CredentialCheckRequest) (*CredentialCheck, error) {
	body := map[string]string{}
	if req.Token != "" {
		body["token"] = req.Token
	}
	if req.Key != "" {
		body["key"] = req.Key
	}
	if !req.At.IsZero() {
		body["at"] = req.At.UTC().Format(time.RFC3339Nano)
	}
	var out CredentialCheck
	return &out, c.Do(ctx, http.MethodPost, "/api/v1/audit/credential-check", nil, body, &out)
}
