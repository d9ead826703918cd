package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Client calls the Infracast Auth API. It is safe for concurrent use; make
// one per service URL and credential, and keep it.
type Client struct {
	base      string // scheme://host[:port][/prefix], without a trailing slash
	hc        *http.Client
	cred      credential
	retry     Retry
	userAgent string
	sleep     func(ctx context.Context, d time.Duration) error
}

// Retry is how a Client retries a request the service refused for now:
// 429 RATE_LIMITED, and 503 UNAVAILABLE. It waits the Retry-After the service
// sent, or else backs off exponentially with jitter, and gives up after
// MaxAttempts tries or when the service asks for a longer wait than MaxWait
// (the error, with its RetryAfter, is then returned at once: a locked-out
// login is not worth blocking for 15 minutes). A 503 is retried for GET,
// HEAD, PUT and DELETE, and for a POST only when the service sent
// Retry-After (it does so when it has not started the request at all); a 503
// without it may follow a write whose outcome is unknown. A DELETE retried
// after the service's own such 503 (not a proxy's page) that then answers
// 404 returns no error when it expects no body: the earlier try deleted it
// (or someone did meanwhile).
type Retry struct {
	MaxAttempts int           // tries in all, the first included; default 4 (1: never retry)
	MaxWait     time.Duration // the longest single wait; default 30s
	BaseDelay   time.Duration // the first backoff without Retry-After, doubled each try; default 200ms
}

// DefaultRetry is the retry policy of a new Client.
var DefaultRetry = Retry{MaxAttempts: 4, MaxWait: 30 * time.Second, BaseDelay: 200 * time.Millisecond}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests through hc (timeouts, TLS, proxies). The
// default is a client with a 30 s timeout over its own keep-alive transport.
// A copy of hc is used, which follows no redirect when hc's CheckRedirect
// is nil (Go's default follows up to 10): see RedirectError.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		cp := *hc
		if cp.CheckRedirect == nil {
			cp.CheckRedirect = noRedirect
		}
		c.hc = &cp
	}
}

// WithAPIKey authenticates every request with an API key (ic_live_…).
func WithAPIKey(key string) Option {
	return func(c *Client) { c.cred = staticCredential("Bearer " + key) }
}

// WithAccessToken authenticates every request with a fixed access token (it
// is not refreshed: see WithTokenSource).
func WithAccessToken(token string) Option {
	return func(c *Client) { c.cred = staticCredential("Bearer " + token) }
}

// WithTokenSource authenticates every request with the token ts gives: a
// *TokenSource of this package (refreshed ahead of expiry, per request
// context), or any oauth2.TokenSource.
func WithTokenSource(ts oauth2.TokenSource) Option {
	return func(c *Client) { c.cred = tokenSourceCredential{ts} }
}

// WithRetry replaces DefaultRetry; zero fields keep their default.
func WithRetry(r Retry) Option {
	return func(c *Client) {
		if r.MaxAttempts > 0 {
			c.retry.MaxAttempts = r.MaxAttempts
		}
		if r.MaxWait > 0 {
			c.retry.MaxWait = r.MaxWait
		}
		if r.BaseDelay > 0 {
			c.retry.BaseDelay = r.BaseDelay
		}
	}
}

// WithUserAgent sets the User-Agent of every request (the service records it
// with the events a request causes, and in the session list).
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithSleep replaces the wait between two tries (default: a timer that the
// request's context cancels). Tests use it to see the waits, or to move a
// test clock instead of waiting.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *Client) { c.sleep = sleep }
}

// shownURL is raw for an error message: without its user information,
// query and fragment (a password or a token put there would be printed into
// a CI log otherwise), or nothing of it when it does not parse.
func shownURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case err != nil:
		return "(not a URL of the form scheme://host)"
	case u.Opaque != "" || u.Host == "":
		if strings.ContainsAny(raw, "@?#") { // "user:password@host" has no scheme
			return "(not a URL of the form scheme://host)"
		}
		return raw // a typo such as "localhost:8080": nothing secret can be in it
	}
	if u.User != nil {
		u.User = url.User("xxxxx")
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.String()
}

// New returns a client of the service at baseURL ("https://auth.example.com",
// with an optional path prefix). Without an authentication option it sends
// no credentials (login, refresh, revoke, health need none).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("infracast: base URL %q: want http(s)://host[:port][/path], without credentials, query or fragment", shownURL(baseURL))
	}
	c := &Client{
		base:      strings.TrimSuffix(u.String(), "/"),
		hc:        &http.Client{Timeout: 30 * time.Second, Transport: newTransport(16), CheckRedirect: noRedirect},
		retry:     DefaultRetry,
		userAgent: "infracast-go-client",
		sleep:     sleepCtx,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// SendsInTheClear reports whether the client speaks plain http to a host
// that is not this machine (localhost, 127.0.0.0/8, ::1): the password,
// refresh and access tokens it sends cross the network unencrypted. The
// package prints nothing (a library's output is its caller's): a program
// warns, as the CLI does. Only "localhost" itself is this machine by name:
// Go looks a name below it (api.localhost) up as any other, in the
// network's DNS too, which may answer with another machine (re-check 20r2).
func (c *Client) SendsInTheClear() bool {
	u, err := url.Parse(c.base)
	if err != nil || u.Scheme != "http" {
		return false
	}
	h := u.Hostname()
	if strings.EqualFold(h, "localhost") {
		return false
	}
	ip := net.ParseIP(h)
	return ip == nil || !ip.IsLoopback()
}

// With returns a copy of c with opts applied (another credential on the same
// service and connections, for example).
func (c *Client) With(opts ...Option) *Client {
	cp := *c
	for _, o := range opts {
		o(&cp)
	}
	return &cp
}

// BaseURL is the service's URL the client was made with.
func (c *Client) BaseURL() string { return c.base }

// newTransport is a keep-alive transport that keeps up to idle connections
// per host (the default transport keeps 2, which a busy middleware outgrows).
func newTransport(idle int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = max(100, idle)
	t.MaxIdleConnsPerHost = idle
	return t
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// credential gives the Authorization header of a request.
type credential interface {
	authorization(ctx context.Context) (string, error)
}

type staticCredential string

func (s staticCredential) authorization(context.Context) (string, error) { return string(s), nil }

type tokenSourceCredential struct{ ts oauth2.TokenSource }

func (t tokenSourceCredential) authorization(ctx context.Context) (string, error) {
	var tok *oauth2.Token
	var err error
	if cs, ok := t.ts.(interface {
		TokenContext(context.Context) (*oauth2.Token, error)
	}); ok {
		tok, err = cs.TokenContext(ctx)
	} else {
		tok, err = t.ts.Token()
	}
	if err != nil {
		return "", err
	}
	return "Bearer " + tok.AccessToken, nil
}

// Do sends one request to path (below the base URL, "/api/v1/…") with query
// and the JSON of in (when not nil), and decodes a JSON answer into out (when
// not nil). It authenticates, retries and maps errors as every typed call
// does: use it for what this package has no method for.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	_, err := c.do(ctx, method, path, query, in, out, nil)
	return err
}

// do is Do, with extra request headers, returning the answer's headers.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any, header http.Header) (http.Header, error) {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("infracast: encode request: %w", err)
		}
		body = b
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	refreshed := false
	mayHaveDeleted := false // a DELETE tried before may have been carried out
	for attempt := 1; ; attempt++ {
		var sent string
		if c.cred != nil && header.Get("Authorization") == "" {
			a, err := c.cred.authorization(ctx)
			if err != nil {
				// The token source's error (a refresh or login that failed)
				// is not retried here: the source retried it already
				// (outside check 12r4: an expired token and a refresh
				// answered 503 sent 16 refreshes in one call, ~15 s).
				return nil, err
			}
			sent = a
		}
		h, err := c.once(ctx, method, u, body, out, header, sent)
		var apiErr *Error
		if err == nil || !errors.As(err, &apiErr) {
			return h, err
		}
		// A DELETE retried after the service's 503 that its outcome is
		// unknown (in the contract's shape, without Retry-After: the event
		// store did not confirm it), which now finds nothing, was carried
		// out: by that earlier try (or by someone meanwhile). Either way
		// what the caller asked for is done (outside check 16e:
		// DeleteSSOProvider answered ErrNotFound for a provider it had
		// deleted). Not after a proxy's 503 (its page has no such shape:
		// nothing was done, and the 404 is the answer: outside check 16d),
		// nor for a call that expects a body, which a 404 does not give.
		if apiErr.Status == http.StatusNotFound && mayHaveDeleted && out == nil {
			return h, nil
		}
		if method == http.MethodDelete && apiErr.Status == http.StatusServiceUnavailable && apiErr.RetryAfter == 0 && apiErr.ours {
			mayHaveDeleted = true
		}
		// A 401 for an access token of this package's TokenSource that had
		// not expired (its signing key dropped, its session revoked by an
		// admin): one refresh at once, and one more try (outside check
		// 12d: until the token expired, up to an hour, every call failed).
		// Not for a call that carries a password or code of its own.
		if apiErr.Status == http.StatusUnauthorized && !refreshed && sent != "" && !ownCredentials(path) {
			if ts, ok := c.tokenSource(); ok {
				refreshed = true
				if rerr := ts.refreshRefused(ctx, strings.TrimPrefix(sent, "Bearer ")); rerr != nil {
					// The session ended, or the refresh failed for a passing
					// reason (503, 429, a proxy's 502): that is what to
					// report, not the 401 (outside check 12r4: it said to
					// log in again during an outage).
					return h, rerr
				}
				attempt--
				continue
			}
		}
		wait, retry := c.backoff(method, apiErr, attempt)
		if !retry {
			return h, err
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return h, fmt.Errorf("%w (gave up waiting %s to retry: %w)", err, wait, serr)
		}
	}
}

// tokenSource is the client's *TokenSource, if it authenticates with one.
func (c *Client) tokenSource() (*TokenSource, bool) {
	tc, ok := c.cred.(tokenSourceCredential)
	if !ok {
		return nil, false
	}
	ts, ok := tc.ts.(*TokenSource)
	return ts, ok
}

// ownCredentials reports whether a request to path carries credentials of
// its own (a password, a refresh token, a code), whose 401 says nothing of
// the access token and must not be sent twice (a wrong password counts
// towards a lockout).
func ownCredentials(path string) bool {
	return strings.HasPrefix(path, "/api/v1/auth/token") || path == "/api/v1/auth/refresh" ||
		strings.HasPrefix(path, "/api/v1/auth/mfa") || strings.HasSuffix(path, "/password")
}

// ChangesNothing reports whether a request to path with method only reads:
// GET, HEAD, OPTIONS, and the credential check, a POST only so that the
// credential stays out of URLs and logs (outside check 17d: the CLI said of
// a lost answer to it that a change may have been made). A client may
// repeat such a request when the service was unavailable.
func ChangesNothing(method, path string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	case http.MethodPost:
		return strings.HasSuffix(path, "/api/v1/audit/credential-check") // under a base path too
	}
	return false
}

// backoff says whether to try again after apiErr, and after how long.
func (c *Client) backoff(method string, apiErr *Error, attempt int) (time.Duration, bool) {
	if attempt >= c.retry.MaxAttempts {
		return 0, false
	}
	switch apiErr.Status {
	case http.StatusTooManyRequests:
	case http.StatusServiceUnavailable:
		idempotent := ChangesNothing(method, apiErr.Path) || method == http.MethodPut || method == http.MethodDelete
		if !idempotent && apiErr.RetryAfter == 0 {
			return 0, false
		}
	default:
		return 0, false
	}
	if apiErr.RetryAfter > 0 {
		if apiErr.RetryAfter > c.retry.MaxWait {
			return 0, false
		}
		return apiErr.RetryAfter, true
	}
	d := c.retry.BaseDelay << min(attempt-1, 20)
	d = min(d, c.retry.MaxWait)
	// Full jitter over the upper half: clients that failed together do not
	// come back together.
	return d/2 + rand.N(d/2+1), true
}

// once sends one request, with the Authorization auth when not "" (the
// client's credential's; header may carry the caller's own instead).
func (c *Client) once(ctx context.Context, method, u string, body []byte, out any, header http.Header, auth string) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("infracast: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, &RequestError{Method: method, Path: req.URL.Path, Err: err}
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 && res.StatusCode < 400 && res.StatusCode != http.StatusNotModified {
		return res.Header, redirectError(req, res)
	}
	if res.StatusCode >= 300 {
		return res.Header, readError(res)
	}
	if out == nil || res.StatusCode == http.StatusNoContent {
		// Read to the end, so that the connection goes back to the pool.
		if _, err := io.Copy(io.Discard, res.Body); err != nil {
			return res.Header, &RequestError{Method: method, Path: req.URL.Path, Err: err}
		}
		return res.Header, nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return res.Header, &RequestError{Method: method, Path: req.URL.Path, Err: fmt.Errorf("decode the answer: %w", err)}
	}
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return res.Header, &RequestError{Method: method, Path: req.URL.Path, Err: err}
	}
	return res.Header, nil
}

// readError makes the *Error of a non-2xx answer.
func readError(res *http.Response) *Error {
	e := &Error{Status: res.StatusCode, RequestID: res.Header.Get("X-Request-ID"), RetryAfter: retryAfter(res.Header.Get("Retry-After"))}
	if res.Request != nil {
		e.Method, e.Path = res.Request.Method, res.Request.URL.Path
	}
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10)) // what could be read is all there is to show
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		MFAToken string   `json:"mfa_token"` // 403 MFA_REQUIRED
		Factors  []string `json:"factors"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.ours = body.Error.Code, body.Error.Message, true
		if e.Code == ErrMFARequired.Code {
			e.MFAToken, e.Factors = body.MFAToken, body.Factors
		}
		return e
	}
	e.Code, e.Message = codeForStatus(res.StatusCode), http.StatusText(res.StatusCode)
	return e
}

// maxRetryAfter caps a parsed Retry-After: a huge number of seconds, or a
// date centuries ahead, overflowed into a negative wait (outside check 12r4:
// the middleware relayed a negative Retry-After).
const maxRetryAfter = 24 * time.Hour

// retryAfter parses a Retry-After header: seconds, or an HTTP date; at most
// maxRetryAfter.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case s <= 0:
			return 0
		case s >= int64(maxRetryAfter/time.Second):
			return maxRetryAfter
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

// seg escapes one path segment (an ID, a tenant, a provider name).
func seg(s string) string { return url.PathEscape(s) }

// timeQuery adds at=… to q when t is set.
func timeQuery(q url.Values, key string, t time.Time) {
	if !t.IsZero() {
		q.Set(key, t.UTC().Format(time.RFC3339Nano))
	}
}
