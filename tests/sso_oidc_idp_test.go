package tests

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// testOIDC is a real OpenID Provider (github.com/zitadel/oidc/v3/pkg/op) on a
// loopback port, with a minimal in-memory op.Storage. Its login step
// approves the fixed test user at once. Knobs make it misbehave on purpose.
type testOIDC struct {
	Issuer string
	store  *opStore
	srv    *http.Server
}

// testOIDCUser is who the test IdP signs in.
type testOIDCUser struct {
	Subject, Email, Username string
	EmailVerified            bool
	Groups                   []string
	TenantID                 string // Azure's "tid"
	// AMR is the ID token's amr (RFC 8176): how the IdP authenticated the
	// user; nil: ["pwd"].
	AMR []string
	// GroupsOverage: no groups claim, but a source for it in _claim_names
	// (Azure AD, for a user in more groups than a token holds).
	GroupsOverage bool
	// ExtraClaims are added to the ID token's (and the userinfo answer's)
	// claims as they are: custom claims, or a registered one's name in
	// another letter case ("Email_Verified", "Sub").
	ExtraClaims map[string]any
}

// testOPOptions shape the test IdP like the real ones.
type testOPOptions struct {
	// Path is the issuer's path: "" (the root: Okta, Google), "/dex",
	// "/oauth2/default" (an Okta authorization server), "/<tenant>/v2.0"
	// (Azure AD).
	Path string
	// TrailingSlash: the issuer ends in "/" (Auth0, the zitadel/oidc
	// example OP).
	TrailingSlash bool
	// Aliases serve the discovery document at other paths as well,
	// announcing the issuer given ("" = the real one), as Azure AD does at
	// …/<domain>/v2.0 (the real issuer, with the directory ID) and at
	// …/organizations/v2.0 (…/{tenantid}/v2.0).
	Aliases map[string]string
	// UserinfoOnly: the ID token carries the subject (and Azure's tid) only;
	// e-mail, names and groups are in the userinfo answer alone.
	UserinfoOnly bool
}

// startTestOIDC starts an IdP whose issuer is http://127.0.0.1:<port><pathPrefix>.
func startTestOIDC(t *testing.T, pathPrefix string, user testOIDCUser) *testOIDC {
	t.Helper()
	return startTestOP(t, testOPOptions{Path: pathPrefix}, user)
}

// startTestOP starts an IdP whose issuer is
// http://127.0.0.1:<port><opts.Path>[/].
func startTestOP(t *testing.T, opts testOPOptions, user testOIDCUser) *testOIDC {
	t.Helper()
	pathPrefix := opts.Path
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String() + pathPrefix // the issuer without trailing slash
	issuer := base
	if opts.TrailingSlash {
		issuer += "/"
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	st := &opStore{
		key: key, keyID: "k1", user: user, issuer: issuer, clients: map[string]*opClient{},
		requests: map[string]*opAuthRequest{}, codes: map[string]string{}, idTokenLifetime: 5 * time.Minute,
		tokens: map[string]testOIDCUser{}, userinfoOnly: opts.UserinfoOnly,
	}
	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	provider, err := op.NewProvider(&op.Config{CryptoKey: cryptoKey, CodeMethodS256: true, AuthMethodPost: true},
		st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	// The login step: approve the pending request for the test user, then
	// let the provider issue the code.
	mux.HandleFunc(pathPrefix+"/test-login", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if err := st.approve(id); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, base+"/authorize/callback?id="+id, http.StatusFound)
	})
	var h http.Handler = provider
	if pathPrefix != "" {
		h = http.StripPrefix(pathPrefix, provider)
	}
	mux.Handle(pathPrefix+"/", h)
	for alias, announce := range opts.Aliases {
		announce := strings.ReplaceAll(announce, "{base}", "http://"+ln.Addr().String())
		mux.HandleFunc(alias+"/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
			// The provider's own document, with the issuer announced here.
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/.well-known/openid-configuration"
			rec := httptest.NewRecorder()
			provider.ServeHTTP(rec, r2)
			var doc map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if announce != "" {
				doc["issuer"] = announce
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(doc)
		})
	}
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status, ok := st.failing(r.URL.Path); ok {
			if status > 0 {
				http.Error(w, "unavailable", status)
				return
			}
			// No answer at all: the connection drops.
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: front, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &testOIDC{Issuer: issuer, store: st, srv: srv}
}

// AddClient registers a confidential web client.
func (p *testOIDC) AddClient(id, secret string, redirectURIs ...string) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.clients[id] = &opClient{id: id, secret: secret, redirectURIs: redirectURIs, loginURL: strings.TrimSuffix(p.Issuer, "/") + "/test-login?id="}
}

// Misbehave sets the knobs: a nonce other than the client's, an audience
// other than the client, an ID token lifetime (negative: already expired).
func (p *testOIDC) Misbehave(nonce string, audience []string, idTokenLifetime time.Duration) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.nonce, p.store.audience, p.store.idTokenLifetime = nonce, audience, idTokenLifetime
}

// AcceptCodesTwice makes the IdP break RFC 6749 4.1.2: a code (and its
// request) may be exchanged again, as some IdPs allow within a grace
// period. The service's own replay protection is then all there is.
func (p *testOIDC) AcceptCodesTwice(on bool) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.reuseCodes = on
}

// SetUserinfoSubject makes the userinfo endpoint answer about another
// subject than the ID token ("" = the same).
func (p *testOIDC) SetUserinfoSubject(sub string) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.userinfoSubject = sub
}

// UserinfoCalls is how many userinfo requests the IdP answered.
func (p *testOIDC) UserinfoCalls() int {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	return p.store.userinfoCalls
}

// Fail makes the IdP answer requests to paths ending in suffix ("/oauth/token",
// "/keys") with status, or (status 0) drop the connection unanswered; Fail
// with status -1 heals it.
func (p *testOIDC) Fail(suffix string, status int) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	if p.store.fail == nil {
		p.store.fail = map[string]int{}
	}
	if status < 0 {
		delete(p.store.fail, suffix)
		return
	}
	p.store.fail[suffix] = status
}

func (s *opStore) failing(path string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for suffix, status := range s.fail {
		if strings.HasSuffix(path, suffix) {
			return status, true
		}
	}
	return 0, false
}

// SetUser changes who signs in.
func (p *testOIDC) SetUser(u testOIDCUser) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.user = u
}

type opStore struct {
	mu              sync.Mutex
	key             *rsa.PrivateKey
	keyID           string
	issuer          string
	user            testOIDCUser
	clients         map[string]*opClient
	requests        map[string]*opAuthRequest
	codes           map[string]string // code -> request ID (one use)
	reuseCodes      bool              // AcceptCodesTwice
	nonce           string
	audience        []string
	idTokenLifetime time.Duration
	tokens          map[string]testOIDCUser // access token ID -> whom it was issued for (userinfo)
	userinfoOnly    bool
	userinfoSubject string
	userinfoCalls   int
	fail            map[string]int // path suffix -> status (0: drop the connection): Fail
}

var errNotFound = errors.New("not found")

func (s *opStore) approve(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.requests[id]
	if r == nil {
		return errNotFound
	}
	r.subject, r.done, r.authTime = s.user.Subject, true, time.Now()
	r.user = s.user
	return nil
}

func (s *opStore) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	r := &opAuthRequest{
		id: hex.EncodeToString(b), req: req,
		nonce: req.Nonce, audience: []string{req.ClientID},
	}
	if s.nonce != "" {
		r.nonce = s.nonce
	}
	if s.audience != nil {
		r.audience, r.wrongAudience = s.audience, true
	}
	if req.CodeChallenge != "" {
		r.challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	s.requests[r.id] = r
	return r, nil
}

func (s *opStore) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.requests[id]; r != nil {
		return r, nil
	}
	return nil, errNotFound
}

// AuthRequestByCode consumes the code: a code works once.
func (s *opStore) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.codes[code]
	if !ok {
		return nil, errNotFound
	}
	if !s.reuseCodes {
		delete(s.codes, code)
	}
	if r := s.requests[id]; r != nil {
		return r, nil
	}
	return nil, errNotFound
}

func (s *opStore) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *opStore) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.reuseCodes {
		delete(s.requests, id)
	}
	return nil
}

func (s *opStore) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.user
	if r, ok := req.(*opAuthRequest); ok && r.user.Subject != "" {
		u = r.user
	}
	s.tokens[id] = u
	return id, time.Now().Add(5 * time.Minute), nil
}

func (s *opStore) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("refresh tokens are not supported")
}

func (s *opStore) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *opStore) TerminateSession(context.Context, string, string) error { return nil }

func (s *opStore) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (s *opStore) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

type opSigningKey struct {
	key *rsa.PrivateKey
	id  string
}

func (k opSigningKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k opSigningKey) Key() any                                    { return k.key }
func (k opSigningKey) ID() string                                  { return k.id }

type opPublicKey struct{ opSigningKey }

func (k opPublicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k opPublicKey) Use() string                        { return "sig" }
func (k opPublicKey) Key() any                           { return &k.key.PublicKey }

func (s *opStore) SigningKey(context.Context) (op.SigningKey, error) {
	return opSigningKey{key: s.key, id: s.keyID}, nil
}

func (s *opStore) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *opStore) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{opPublicKey{opSigningKey{key: s.key, id: s.keyID}}}, nil
}

func (s *opStore) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[id]
	if c == nil {
		return nil, errNotFound
	}
	cp := *c
	cp.idTokenLifetime = s.idTokenLifetime
	return &cp, nil
}

func (s *opStore) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[id]
	if c == nil || c.secret != secret {
		return errors.New("invalid client")
	}
	return nil
}

func (s *opStore) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest puts the user's claims into the ID token (only
// the subject and tid when userinfoOnly).
func (s *opStore) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.user
	if r, ok := req.(*opAuthRequest); ok && r.user.Subject != "" {
		u = r.user
	}
	ui.Subject = u.Subject
	if u.TenantID != "" {
		ui.AppendClaims("tid", u.TenantID)
	}
	if !s.userinfoOnly {
		setProfileClaims(ui, u)
	}
	return nil
}

func setProfileClaims(ui *oidc.UserInfo, u testOIDCUser) {
	ui.Email, ui.EmailVerified = u.Email, oidc.Bool(u.EmailVerified)
	ui.PreferredUsername = u.Username
	if u.Groups != nil {
		ui.AppendClaims("groups", u.Groups)
	}
	for k, v := range u.ExtraClaims {
		ui.AppendClaims(k, v)
	}
	if u.GroupsOverage {
		ui.AppendClaims("_claim_names", map[string]string{"groups": "src1"})
		ui.AppendClaims("_claim_sources", map[string]any{"src1": map[string]string{
			"endpoint": "https://graph.microsoft.com/v1.0/users/" + u.Subject + "/getMemberObjects"}})
	}
}

// SetUserinfoFromToken answers the userinfo endpoint: every claim of the
// user the access token was issued for.
func (s *opStore) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userinfoCalls++
	u, ok := s.tokens[tokenID]
	if !ok {
		return errNotFound
	}
	ui.Subject = u.Subject
	if s.userinfoSubject != "" {
		ui.Subject = s.userinfoSubject
	}
	setProfileClaims(ui, u)
	return nil
}

func (s *opStore) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return nil
}

func (s *opStore) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *opStore) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound
}

func (s *opStore) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *opStore) Health(context.Context) error { return nil }

type opAuthRequest struct {
	id        string
	req       *oidc.AuthRequest
	nonce     string
	audience  []string
	challenge *oidc.CodeChallenge
	subject   string
	done      bool
	authTime  time.Time
	user      testOIDCUser
	// wrongAudience: the ID token is issued to audience[0] instead of the
	// client. The provider asks for the audience just before the client ID
	// when it builds the ID token (after checking the client), so from then
	// on the client ID is audience[0] too.
	wrongAudience bool
	swapped       bool
}

func (r *opAuthRequest) GetID() string  { return r.id }
func (r *opAuthRequest) GetACR() string { return "" }
func (r *opAuthRequest) GetAMR() []string {
	if r.user.AMR != nil {
		return r.user.AMR
	}
	return []string{"pwd"}
}
func (r *opAuthRequest) GetAudience() []string {
	if r.wrongAudience {
		r.swapped = true
	}
	return r.audience
}
func (r *opAuthRequest) GetAuthTime() time.Time { return r.authTime }
func (r *opAuthRequest) GetClientID() string {
	if r.swapped {
		return r.audience[0]
	}
	return r.req.ClientID
}
func (r *opAuthRequest) GetCodeChallenge() *oidc.CodeChallenge { return r.challenge }
func (r *opAuthRequest) GetNonce() string                      { return r.nonce }
func (r *opAuthRequest) GetRedirectURI() string                { return r.req.RedirectURI }
func (r *opAuthRequest) GetResponseType() oidc.ResponseType    { return r.req.ResponseType }
func (r *opAuthRequest) GetResponseMode() oidc.ResponseMode    { return r.req.ResponseMode }
func (r *opAuthRequest) GetScopes() []string                   { return r.req.Scopes }
func (r *opAuthRequest) GetState() string                      { return r.req.State }
func (r *opAuthRequest) GetSubject() string                    { return r.subject }
func (r *opAuthRequest) Done() bool                            { return r.done }

type opClient struct {
	id, secret      string
	redirectURIs    []string
	loginURL        string
	idTokenLifetime time.Duration
}

func (c *opClient) GetID() string                       { return c.id }
func (c *opClient) RedirectURIs() []string              { return c.redirectURIs }
func (c *opClient) PostLogoutRedirectURIs() []string    { return nil }
func (c *opClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *opClient) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *opClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode}
}
func (c *opClient) LoginURL(id string) string            { return c.loginURL + id }
func (c *opClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *opClient) IDTokenLifetime() time.Duration       { return c.idTokenLifetime }
func (c *opClient) DevMode() bool                        { return true }
func (c *opClient) IsScopeAllowed(string) bool           { return true }
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *opClient) ClockSkew() time.Duration             { return 0 }
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

var _ op.Storage = (*opStore)(nil)
