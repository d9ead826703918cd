package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// DefaultRefreshMargin is how long before expiry a TokenSource refreshes:
// the product documentation's "refresh your token proactively before it
// expires (e.g., when 5 minutes remain)".
const DefaultRefreshMargin = 5 * time.Minute

// DefaultRefreshJitter spreads the refreshes of a fleet of clients that
// logged in together over one minute (before the margin).
const DefaultRefreshJitter = time.Minute

// Token is what a TokenSource holds: the access token, when it expires, and
// the refresh token that renews it.
type Token struct {
	AccessToken  string
	ExpiresAt    time.Time
	RefreshToken string
}

// TokenSource gives a valid access token, logging in and refreshing as
// needed. It refreshes once less than the margin (plus a random jitter drawn
// for each token, so that clients started together do not refresh in the
// same second) remains — for a token that lives less than five times both,
// once a fifth of its life remains — and:
//
//   - single-flight: however many goroutines ask at once, one refresh is
//     sent, and every one of them gets its result;
//   - rotation-aware: when the service rotates refresh tokens, the new one
//     replaces the spent one (and OnRefreshToken is called, to store it);
//   - a refresh that fails for a passing reason (503, a network error) while
//     the current token is still valid gives the current token, and is
//     tried again on a later call (no sooner than refreshPause later, while
//     the token works); for a token the service refused (401) before it
//     expired, the calls in that pause get the refresh's error;
//   - shared (WithSharedTokens): before refreshing it takes the tokens
//     another process using the same login stored, under a lock they share,
//     rather than refresh with a refresh token rotation has spent;
//   - when the session has ended (the refresh token is refused), it logs in
//     again only if told how (WithRelogin); otherwise every call returns
//     ErrLoginRequired.
//
// It is an oauth2.TokenSource. oauth2.NewClient wraps a source in
// oauth2.ReuseTokenSource, which asks for a new token only when the one it
// holds expires: so the Expiry of the oauth2.Token this source gives is the
// moment it will refresh (the token's own expiry is in Extra("expires_at")),
// and the reuse wrapper comes back in time.
type TokenSource struct {
	c      *Client // without credentials
	margin time.Duration
	jitter time.Duration
	now    func() time.Time

	login   *LoginRequest // the first login (cleared once used)
	relogin func(ctx context.Context) (LoginRequest, error)
	onToken func(Token)
	shared  func(ctx context.Context) (Token, func(), error)

	mu        sync.Mutex
	tok       Token
	refreshAt time.Time // when tok is due for a refresh (margin and jitter applied)
	flight    *flight
	failedAt  time.Time // the last refresh that failed for a passing reason
	failedErr error     // its error
	ended     error     // the session ended, and no relogin
	refused   string    // an access token the service refused (401) before it expired: not to be taken again
	// A login answered 429 with Retry-After: no login is sent until
	// lockedUntil, and lockedErr is answered instead.
	lockedUntil time.Time
	lockedErr   *Error
}

type flight struct {
	done chan struct{}
	tok  Token
	err  error
}

// refreshPause is how long a TokenSource keeps using a token that still
// works after a refresh failed for a passing reason, before it tries again.
const refreshPause = 30 * time.Second

// TokenSourceOption configures a TokenSource.
type TokenSourceOption func(*TokenSource)

// WithRefreshMargin sets how long before expiry to refresh (default 5 min).
func WithRefreshMargin(d time.Duration) TokenSourceOption {
	return func(ts *TokenSource) { ts.margin = max(d, 0) }
}

// WithRefreshJitter sets the upper bound of the random extra time, drawn for
// each token, by which a refresh comes earlier than the margin (default 1 min;
// 0: none).
func WithRefreshJitter(d time.Duration) TokenSourceOption {
	return func(ts *TokenSource) { ts.jitter = max(d, 0) }
}

// WithClock sets the source's clock (tests; default time.Now).
func WithClock(now func() time.Time) TokenSourceOption {
	return func(ts *TokenSource) { ts.now = now }
}

// WithRelogin tells the source how to log in again once its session has
// ended: login gives the credentials (read from a secret store, asked of a
// person, …). Without it the source returns ErrLoginRequired.
func WithRelogin(login func(ctx context.Context) (LoginRequest, error)) TokenSourceOption {
	return func(ts *TokenSource) { ts.relogin = login }
}

// ReloginWith is WithRelogin with fixed credentials.
func ReloginWith(req LoginRequest) TokenSourceOption {
	return WithRelogin(func(context.Context) (LoginRequest, error) { return req, nil })
}

// OnToken is called (under the source's lock: keep it short) with every new
// token the source obtains, by login or refresh, so that a program can keep
// the refresh token (which rotation replaces) for its next start.
func OnToken(fn func(Token)) TokenSourceOption {
	return func(ts *TokenSource) { ts.onToken = fn }
}

// WithSharedTokens makes the source share its tokens with the other
// processes that use the same login (the CLI's credentials file): with
// rotation, two of them refreshing with the same refresh token would look
// like a stolen token, and the service would end the session. Before each
// refresh (or login) the source calls lock, which takes a lock those
// processes share (a file lock, say) and gives the tokens stored now. When
// their refresh token differs from the source's, another process refreshed
// (and spent the source's one): the source takes the stored tokens, and
// refreshes with them only if they are due too. Otherwise it refreshes. Its
// OnToken (which stores the new tokens) is called before unlock. An error of
// lock fails the refresh; one that wraps ErrLoginRequired ends the session
// (the stored tokens are another user's now, say: the source must not take
// them).
func WithSharedTokens(lock func(ctx context.Context) (stored Token, unlock func(), err error)) TokenSourceOption {
	return func(ts *TokenSource) { ts.shared = lock }
}

// PasswordTokenSource logs in with req on first use, then refreshes. It logs
// in again when the session ends only with WithRelogin (or ReloginWith(req)).
func (c *Client) PasswordTokenSource(req LoginRequest, opts ...TokenSourceOption) *TokenSource {
	ts := c.newTokenSource(opts)
	ts.login = &req
	return ts
}

// RefreshTokenSource starts from tokens already held: a refresh token, and
// optionally a still valid access token with its expiry.
func (c *Client) RefreshTokenSource(tok Token, opts ...TokenSourceOption) *TokenSource {
	ts := c.newTokenSource(opts)
	ts.setToken(tok, false)
	return ts
}

func (c *Client) newTokenSource(opts []TokenSourceOption) *TokenSource {
	ts := &TokenSource{c: c.With(func(c *Client) { c.cred = nil }), margin: DefaultRefreshMargin, jitter: DefaultRefreshJitter, now: time.Now}
	for _, o := range opts {
		o(ts)
	}
	return ts
}

// setToken installs tok and draws its refresh moment; under mu (or before
// the source is shared). fresh: tok was just issued, so that what is left of
// its life is all of it (a token restored from storage may be near its end).
func (ts *TokenSource) setToken(tok Token, fresh bool) {
	if tok.RefreshToken == "" {
		tok.RefreshToken = ts.tok.RefreshToken // no rotation: the refresh token stays
	}
	ts.tok = tok
	margin, jitter := ts.margin, ts.jitter
	// A token that lives less than five times margin and jitter (a
	// deployment with INFRACAST_ACCESS_TOKEN_TTL=1m, say) is refreshed once
	// a fifth of its life remains, margin and jitter shrunk alike: at the
	// full margin every call would refresh (outside check 11d: ten calls,
	// nine refreshes), as the console caps its own. A stored token's life
	// is the one its JWT says (exp − iat, read, not verified: it only
	// schedules the refresh), not what is left of it (outside check 20c:
	// with a 1-minute TTL every CLI command refreshed, its stored token
	// due at the full margin).
	life := tok.ExpiresAt.Sub(ts.now())
	if !fresh {
		life = lifetime(tok.AccessToken)
	}
	if life > 0 && margin+jitter > life/5 {
		total := margin + jitter
		margin = time.Duration(float64(life/5) * float64(margin) / float64(total))
		jitter = life/5 - margin
	}
	extra := time.Duration(0)
	if jitter > 0 {
		extra = rand.N(jitter)
	}
	ts.refreshAt = tok.ExpiresAt.Add(-margin - extra)
}

// lifetime is exp − iat of access, a JWT, read without verifying it; zero
// when access is not a JWT or lacks either claim.
func lifetime(access string) time.Duration {
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		return 0
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0
	}
	var claims struct {
		Iat, Exp json.Number
	}
	if json.Unmarshal(raw, &claims) != nil {
		return 0
	}
	iat, err1 := claims.Iat.Int64()
	exp, err2 := claims.Exp.Int64()
	if err1 != nil || err2 != nil || iat <= 0 || exp <= iat || exp-iat > 100*365*24*3600 {
		return 0
	}
	return time.Duration(exp-iat) * time.Second
}

// Refreshing is the channel closed when the refresh (or login) under way
// ends, its tokens given to OnToken; ok is false when none is under way. A
// program that exits on an interrupt waits for it a little (the CLI: up to
// a few seconds): with rotation, a refresh the service made whose tokens
// were not stored leaves a spent refresh token behind, and the next start
// presenting it ends the session as stolen (outside check 20c).
func (ts *TokenSource) Refreshing() (done <-chan struct{}, ok bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.flight == nil {
		return nil, false
	}
	return ts.flight.done, true
}

// Token gives a valid access token (oauth2.TokenSource), with no deadline
// but the service client's timeout: prefer TokenContext.
func (ts *TokenSource) Token() (*oauth2.Token, error) { return ts.TokenContext(context.Background()) }

// TokenContext gives a valid access token, refreshing or logging in first
// when due; ctx bounds this caller's wait only (a refresh under way goes on
// for the others).
func (ts *TokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	ts.mu.Lock()
	now := ts.now()
	if ts.ended != nil {
		err := ts.ended
		ts.mu.Unlock()
		return nil, err
	}
	refused := ts.tok.AccessToken != "" && ts.tok.AccessToken == ts.refused
	if ts.tok.AccessToken != "" && !refused && now.Before(ts.refreshAt) {
		t := ts.oauth2Token()
		ts.mu.Unlock()
		return t, nil
	}
	// Due. A refresh that failed lately for a passing reason (after its own
	// retries) is not sent again while the token still works, for
	// refreshPause: a call that retries its request must not send a whole
	// refresh, retries and all, before each of its tries. Nor while the
	// token is one the service refused: then the call gets that failure.
	if now.Sub(ts.failedAt) < refreshPause {
		if ts.usable(now) {
			t := ts.oauth2Token()
			ts.mu.Unlock()
			return t, nil
		}
		if refused && ts.failedErr != nil {
			err := ts.failedErr
			ts.mu.Unlock()
			return nil, err
		}
	}
	f, err := ts.joinFlight(ctx)
	if err != nil {
		return nil, err
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if f.err != nil {
		// A passing failure while the current token still works: use it.
		if ts.ended == nil && ts.usable(ts.now()) {
			return ts.oauth2Token(), nil
		}
		return nil, f.err
	}
	return ts.oauth2Token(), nil
}

// run performs one refresh (or login) and publishes its result.
// joinFlight joins the refresh under way, or starts one, and waits for it
// (or for ctx). Called with ts.mu held; it releases it.
func (ts *TokenSource) joinFlight(ctx context.Context) (*flight, error) {
	f := ts.flight
	if f == nil {
		if err := ctx.Err(); err != nil {
			// An interrupted caller starts no refresh (it would have to
			// be waited for, to store its tokens).
			ts.mu.Unlock()
			return nil, err
		}
		f = &flight{done: make(chan struct{})}
		ts.flight = f
		// The refresh is not bound to this caller's context: the callers
		// that join it may live longer.
		go ts.run(context.WithoutCancel(ctx), f)
	}
	ts.mu.Unlock()
	select {
	case <-f.done:
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (ts *TokenSource) run(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ts.mu.Lock()
	refresh, login := ts.tok.RefreshToken, ts.login
	// A flight for a token the service refused (its signing key retired,
	// say): stored tokens another process wrote may have been signed by the
	// same key, so they are refreshed too, not taken as they are (a
	// re-check: a --follow took a second login's tokens, was refused again,
	// and said to log in again while the stored login worked).
	forRefused := ts.tok.AccessToken != "" && ts.tok.AccessToken == ts.refused
	ts.mu.Unlock()

	var tok Token
	var err error
	if ts.shared != nil {
		stored, unlock, lerr := ts.shared(ctx)
		if lerr != nil {
			ts.finish(f, Token{}, fmt.Errorf("infracast: take the shared tokens: %w", lerr))
			return
		}
		// Released once OnToken has stored what this refresh obtained.
		defer unlock()
		if stored.RefreshToken != "" && stored.RefreshToken != refresh {
			// Another process refreshed (or logged in) since: with
			// rotation the source's refresh token is spent, and sending it
			// would revoke the session as stolen (outside check 12d).
			ts.mu.Lock()
			ts.login = nil
			ts.ended = nil
			ts.setToken(stored, false)
			due := forRefused || stored.AccessToken == "" || stored.AccessToken == ts.refused || !ts.now().Before(ts.refreshAt)
			if !due {
				ts.failedAt, ts.failedErr = time.Time{}, nil
				f.tok, f.err = ts.tok, nil
				ts.flight = nil
				ts.mu.Unlock()
				close(f.done)
				return
			}
			ts.mu.Unlock()
			refresh = stored.RefreshToken
		}
	}
	switch {
	case refresh != "":
		tok, err = ts.refresh(ctx, refresh)
		if errors.Is(err, ErrUnauthorized) {
			tok, err = ts.loginAgain(ctx, err)
		}
	case login != nil:
		tok, err = ts.doLogin(ctx, *login)
		if errors.Is(err, ErrUnauthorized) {
			// Wrong credentials do not become right by trying again (and
			// trying again would lock the account out).
			err = fmt.Errorf("%w: %w", ErrLoginRequired, err)
		}
	default:
		tok, err = ts.loginAgain(ctx, ErrLoginRequired)
	}

	ts.finish(f, tok, err)
}

// finish publishes the result of a refresh or login (tok, or err).
func (ts *TokenSource) finish(f *flight, tok Token, err error) {
	ts.mu.Lock()
	switch {
	case err == nil:
		ts.login = nil
		ts.setToken(tok, true)
		ts.failedAt, ts.failedErr = time.Time{}, nil
		if ts.onToken != nil {
			ts.onToken(ts.tok)
		}
	case errors.Is(err, ErrLoginRequired):
		ts.ended = err
		ts.tok = Token{}
	default:
		ts.failedAt, ts.failedErr = ts.now(), err
	}
	f.tok, f.err = ts.tok, err
	ts.flight = nil
	ts.mu.Unlock()
	close(f.done)
}

func (ts *TokenSource) refresh(ctx context.Context, refreshToken string) (Token, error) {
	start := ts.now()
	wait := 500 * time.Millisecond
	for {
		r, err := ts.c.Refresh(ctx, refreshToken)
		if err == nil {
			return Token{AccessToken: r.Token, ExpiresAt: r.ExpiresAt, RefreshToken: r.RefreshToken}, nil
		}
		// An answer lost on the way back (a dropped connection, a proxy's
		// 502 or 504) may hide a refresh the service made. With rotation on
		// that spent the refresh token: presented again within the service's
		// reuse interval (10 s by default) it gets the same successor, after
		// it the whole session is revoked as stolen. So such a refresh is
		// tried again at once, within refreshRetryWindow, not refreshPause
		// later.
		if !outcomeUnknown(ctx, err) || ts.now().Add(wait).Sub(start) > refreshRetryWindow {
			return Token{}, err
		}
		if serr := ts.c.sleep(ctx, wait); serr != nil {
			return Token{}, err
		}
		wait *= 2
	}
}

// refreshRetryWindow bounds the quick tries of a refresh whose answer was
// lost: inside the service's default reuse interval (10 s), with room for
// the requests themselves.
const refreshRetryWindow = 6 * time.Second

// outcomeUnknown reports whether a failed request may have been carried out:
// no answer came (the connection failed after the request may have been
// sent), or a proxy's or server's 5xx that does not say nothing was changed
// (the service's 503 with Retry-After does, and the client's own retries
// have had it).
func outcomeUnknown(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var redirect *RedirectError
	if errors.As(err, &redirect) {
		return false // answered, and not followed: nothing was refreshed
	}
	var apiErr *Error
	if !errors.As(err, &apiErr) {
		return !errors.Is(err, ErrLoginRequired)
	}
	switch apiErr.Status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	case http.StatusServiceUnavailable:
		return apiErr.RetryAfter == 0
	}
	return false
}

func (ts *TokenSource) doLogin(ctx context.Context, req LoginRequest) (Token, error) {
	// A login answered 429 with Retry-After (a locked account, the login
	// throttle): every login sent before then would be refused again, and
	// counted (outside check 12d: each call sent one). Answer the same
	// error, with what remains of the wait.
	ts.mu.Lock()
	now := ts.now()
	if ts.lockedErr != nil && now.Before(ts.lockedUntil) {
		e := *ts.lockedErr
		e.RetryAfter = ts.lockedUntil.Sub(now)
		ts.mu.Unlock()
		return Token{}, &e
	}
	ts.mu.Unlock()
	r, err := ts.c.Login(ctx, req)
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusTooManyRequests && apiErr.RetryAfter > 0 {
		ts.mu.Lock()
		e := *apiErr
		ts.lockedErr, ts.lockedUntil = &e, ts.now().Add(apiErr.RetryAfter)
		ts.mu.Unlock()
	}
	if err != nil {
		return Token{}, err
	}
	return Token{AccessToken: r.Token, ExpiresAt: r.ExpiresAt, RefreshToken: r.RefreshToken}, nil
}

// loginAgain logs in with WithRelogin's credentials after the session ended
// (cause), or answers ErrLoginRequired.
func (ts *TokenSource) loginAgain(ctx context.Context, cause error) (Token, error) {
	if ts.relogin == nil {
		if errors.Is(cause, ErrLoginRequired) {
			return Token{}, cause
		}
		return Token{}, fmt.Errorf("%w: %w", ErrLoginRequired, cause)
	}
	req, err := ts.relogin(ctx)
	if err != nil {
		return Token{}, fmt.Errorf("infracast: log in again: %w", err)
	}
	tok, err := ts.doLogin(ctx, req)
	if errors.Is(err, ErrUnauthorized) {
		err = fmt.Errorf("%w: %w", ErrLoginRequired, err)
	}
	return tok, err
}

// refreshRefused refreshes at once after the service refused (401) the
// access token access before it expired (its signing key dropped, its
// session revoked by an admin): one refresh however many callers ask, none
// when the source holds another token already. A refresh that is refused
// ends the session (ErrLoginRequired, unless WithRelogin); one that failed
// for a passing reason is not sent again for refreshPause, and its error is
// the answer.
func (ts *TokenSource) refreshRefused(ctx context.Context, access string) error {
	ts.mu.Lock()
	if ts.ended != nil {
		err := ts.ended
		ts.mu.Unlock()
		return err
	}
	if access == "" || ts.tok.AccessToken != access {
		ts.mu.Unlock()
		return nil // replaced since it was sent
	}
	if ts.refused == access && ts.failedErr != nil && ts.now().Sub(ts.failedAt) < refreshPause {
		err := ts.failedErr
		ts.mu.Unlock()
		return err
	}
	ts.refused = access
	f, err := ts.joinFlight(ctx)
	if err != nil {
		return err
	}
	return f.err
}

// usable reports whether the held access token may be sent (under mu): it
// has not expired, and the service has not refused it.
func (ts *TokenSource) usable(now time.Time) bool {
	return ts.tok.AccessToken != "" && ts.tok.AccessToken != ts.refused && now.Before(ts.tok.ExpiresAt)
}

// Current is the token held now, without refreshing (to store it).
func (ts *TokenSource) Current() Token {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.tok
}

// oauth2Token is the held token for oauth2 (under mu): Expiry is the
// refresh moment, the real expiry is in Extra("expires_at").
func (ts *TokenSource) oauth2Token() *oauth2.Token {
	t := &oauth2.Token{AccessToken: ts.tok.AccessToken, TokenType: "Bearer", Expiry: ts.refreshAt}
	return t.WithExtra(map[string]any{"expires_at": ts.tok.ExpiresAt})
}
