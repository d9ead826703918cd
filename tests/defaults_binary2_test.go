package tests

// More of the defaults as shipped, on the built binary with nothing set but
// what a first start needs (startShipped): the lockout's length, the
// argon2id cost the stored hashes have, the HTTP edge (CORS, security
// headers, header limit, JWKS, the access token's claims and key), the first
// start in a working directory without INFRACAST_DATA_DIR, and the MFA token's
// lifetime and the recovery codes. An outside check (15d) verified each by
// hand; the in-process harness starts from service.Defaults(), which skips
// the binary's own flag and environment parsing.

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/infracast/auth/events"
	authhttp "github.com/infracast/auth/http"
	"github.com/infracast/auth/http/service"
)

// TestShippedLockoutLength: the shipped lockout (INFRACAST_LOGIN_LOCKOUT,
// 15m) is what a locked account and a locked address are told to wait —
// Retry-After within a few seconds of 900 — and an account's lockout counts
// from its last failure, not its first: an account whose first failure came
// before another's lockout, and whose fifth came seconds after, is locked
// for seconds longer.
func TestShippedLockoutLength(t *testing.T) {
	_, in, _ := startShipped(t)
	admin := in.Login(AdminUser, shippedAdminPassword).String("token")
	in.CreateUser(admin, "early", "early-password-for-defaults", map[string]string{"prod": "viewer"})
	in.CreateUser(admin, "clock", "clock-password-for-defaults", map[string]string{"prod": "viewer"})

	failures := 0
	fail := func(user string) {
		t.Helper()
		failures++
		if r := login(in, user, "wrong-guess-"+strconv.Itoa(failures)); r.Status != 401 {
			t.Fatalf("wrong password %d (%s): %d %s (want 401)", failures, user, r.Status, r.Raw)
		}
	}
	retryAfter := func(what string, r Response) int {
		t.Helper()
		if r.Status != 429 || r.ErrorCode() != "RATE_LIMITED" {
			t.Fatalf("%s: %d %s (want 429 RATE_LIMITED)", what, r.Status, r.Raw)
		}
		ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil {
			t.Fatalf("%s: Retry-After %q: %v", what, r.Header.Get("Retry-After"), err)
		}
		return ra
	}
	const lockout, slack = 15 * 60, 10 // the shipped lockout, and the seconds this test may take to ask
	near := func(what string, ra int) {
		t.Helper()
		if ra > lockout || ra < lockout-slack {
			t.Fatalf("%s: Retry-After %d s, want within %d s of %d (INFRACAST_LOGIN_LOCKOUT's 15m)", what, ra, slack, lockout)
		}
	}

	fail("early") // the first of early's failures, before clock's
	for range 5 {
		fail("clock")
	}
	clockLeft := retryAfter("clock, locked", login(in, "clock", "clock-password-for-defaults"))
	near("the account locked at once", clockLeft)
	// The service's clock moves on: clock's lockout, counted from its
	// last failure, has seconds less to run.
	Eventually(t, 30*time.Second, func() error {
		clockLeft = retryAfter("clock, locked", login(in, "clock", "clock-password-for-defaults"))
		if clockLeft > lockout-5 {
			return Errorf("clock's lockout still has %d s", clockLeft)
		}
		return nil
	})
	for range 4 {
		fail("early")
	}
	earlyLeft := retryAfter("early, locked", login(in, "early", "early-password-for-defaults"))
	near("the account locked by its fifth failure", earlyLeft)
	if earlyLeft < clockLeft+3 {
		t.Fatalf("early's lockout: %d s left, clock's %d s: early's fifth failure came seconds after clock's lockout, so its lockout must end seconds later (it counts from the last failure)", earlyLeft, clockLeft)
	}

	// The address: 50 failures (INFRACAST_LOGIN_MAX_FAILURES_PER_ADDRESS)
	// lock it for the same 15 minutes from the last.
	for failures < 50 {
		fail("sprayed-" + strconv.Itoa(failures))
	}
	near("the address locked by its 50th failure", retryAfter("the admin from the locked address", login(in, AdminUser, shippedAdminPassword)))
}

// TestShippedHTTPEdge: with nothing set, CORS is off — no Access-Control-*
// header on any answer to a request with an Origin, and a preflight is
// refused like any OPTIONS (405) — every answer carries the security
// headers docs/security.md names, the console its own as docs/console.md
// states them, request headers may take 16 KiB (431 in the contract's shape
// beyond), the JWKS may be cached 5 minutes, and an access token is an
// HS256 at+jwt of the generated jwt-signing.key, for infracast-api from
// infracast-auth.
func TestShippedHTTPEdge(t *testing.T) {
	_, in, data := startShipped(t)
	const origin = "https://app.example.com"
	noCORS := func(what string, h http.Header) {
		t.Helper()
		for name := range h {
			if strings.HasPrefix(strings.ToLower(name), "access-control-") {
				t.Errorf("%s with an Origin: %s: %s (CORS is off by default)", what, name, h.Get(name))
			}
		}
	}
	apiHeaders := func(what string, h http.Header) {
		t.Helper()
		for name, want := range map[string]string{
			"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
			"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
		} {
			if got := h.Values(name); len(got) != 1 || got[0] != want {
				t.Errorf("%s: %s %q, want %q", what, name, got, want)
			}
		}
		if !strings.HasPrefix(h.Get("X-Request-ID"), "req-") {
			t.Errorf("%s: X-Request-ID %q", what, h.Get("X-Request-ID"))
		}
	}

	loginBody := jsonBody(map[string]string{"username": AdminUser, "password": shippedAdminPassword})
	r := doReq(t, in, request{Method: "POST", Path: "/api/v1/auth/token", ContentType: "application/json", Body: loginBody,
		Header: map[string]string{"Origin": origin}})
	expectStatus(t, "login with an Origin", r, http.StatusOK)
	noCORS("the login", r.Header)
	apiHeaders("the login", r.Header)
	token := r.String("token")
	for _, path := range []string{"/health", "/api/v1/auth/me", "/no-such-path"} {
		r := doReq(t, in, request{Method: "GET", Path: path, Token: token, Header: map[string]string{"Origin": origin}})
		noCORS("GET "+path, r.Header)
		apiHeaders(fmt.Sprintf("GET %s (%d)", path, r.Status), r.Header)
	}
	preflight := doReq(t, in, request{Method: "OPTIONS", Path: "/api/v1/auth/token", Header: map[string]string{
		"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}})
	expectError(t, "a CORS preflight", preflight, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
	noCORS("the preflight", preflight.Header)
	apiHeaders("the preflight", preflight.Header)

	// The console: its own policy, exactly as docs/console.md states it.
	console := doReq(t, in, request{Method: "GET", Path: "/console", Header: map[string]string{"Origin": origin}})
	expectStatus(t, "the console", console, http.StatusOK)
	noCORS("the console", console.Header)
	for name, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
			"font-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
		"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Resource-Policy": "same-origin",
		"Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()", "Cache-Control": "no-store",
	} {
		if got := console.Header.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("the console: %s %q, want %q", name, got, want)
		}
	}

	// Request line and headers: 16 KiB in all, not a byte more.
	const headerLimit = 16 << 10
	if res := rawHeaders(t, in.URL, headerLimit); res.Status != http.StatusOK {
		t.Errorf("%d bytes of request line and headers: %d %s (want 200)", headerLimit, res.Status, res.Raw)
	}
	over := rawHeaders(t, in.URL, headerLimit+1)
	expectError(t, fmt.Sprintf("%d bytes of request line and headers", headerLimit+1), over, http.StatusRequestHeaderFieldsTooLarge, "VALIDATION_ERROR")
	apiHeaders("the 431", over.Header)

	jwks := doReq(t, in, request{Method: "GET", Path: "/.well-known/jwks.json"})
	if jwks.Status != http.StatusOK || string(jwks.Raw) != `{"keys":[]}` || jwks.Header.Get("Cache-Control") != "public, max-age=300" {
		t.Errorf("the JWKS: %d %s, Cache-Control %q (want 200 {\"keys\":[]}: the default HS256 key is never published; public, max-age=300)",
			jwks.Status, jwks.Raw, jwks.Header.Get("Cache-Control"))
	}

	// The access token: signed with the generated jwt-signing.key, named by
	// its key ID, for the default audience from the default issuer.
	raw, err := os.ReadFile(filepath.Join(data, "jwt-signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := service.DecodeKey(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", token)
	}
	var header struct{ Alg, Kid, Typ string }
	var claims struct {
		Iss string   `json:"iss"`
		Aud []string `json:"aud"`
	}
	for i, into := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
	}
	if header.Alg != "HS256" || header.Typ != "at+jwt" || header.Kid != authhttp.KeyID(key) {
		t.Errorf("token header %+v, want HS256, at+jwt and the kid %s of jwt-signing.key", header, authhttp.KeyID(key))
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if sig, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		t.Errorf("the token's signature is not HS256 with jwt-signing.key (%v)", err)
	}
	if claims.Iss != "infracast-auth" || len(claims.Aud) != 1 || claims.Aud[0] != "infracast-api" {
		t.Errorf("token iss %q aud %q, want infracast-auth and [infracast-api]", claims.Iss, claims.Aud)
	}
}

// rawHeaders sends GET /health whose request line and headers take exactly
// n bytes, and returns the answer.
func rawHeaders(t *testing.T, base string, n int) Response {
	t.Helper()
	head, tail := "GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: ", "\r\n\r\n"
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, head+strings.Repeat("a", n-len(head)-len(tail))+tail); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the answer to %d bytes of headers: %v", n, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Response{Status: res.StatusCode, Header: res.Header, Raw: body}
}

var recoveryCodeForm = regexp.MustCompile(`^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$`)

// TestShippedMFAAndPasswordHashes: with nothing set, an mfa_token lives 5
// minutes (its expires_at, and the expiry it carries), a confirmed TOTP
// comes with 10 distinct recovery codes of the documented form
// xxxx-xxxx-xxxx, one of which signs in; and every password hash the binary
// stored — the bootstrap admin's, a created user's — is argon2id with
// m=19456, t=2, p=1 (read from the events on the stopped binary's data
// folder, unsealed with its master.key).
func TestShippedMFAAndPasswordHashes(t *testing.T) {
	p, in, data := startShipped(t)
	admin := in.Login(AdminUser, shippedAdminPassword).String("token")
	const user, password = "guarded", "guarded-password-for-defaults"
	in.CreateUser(admin, user, password, map[string]string{"prod": "viewer"})
	own := in.Login(user, password).String("token")
	enrolled := in.Do("POST", "/api/v1/auth/mfa/totp", own, nil)
	expectStatus(t, "enrol TOTP", enrolled, http.StatusCreated)
	confirmed := in.Do("POST", "/api/v1/auth/mfa/totp/confirm", own,
		map[string]string{"code": totpAt(t, enrolled.String("secret"), time.Now())})
	expectStatus(t, "confirm TOTP", confirmed, http.StatusOK)
	list, _ := confirmed.JSON["recovery_codes"].([]any)
	codes := map[string]bool{}
	for _, c := range list {
		if s, _ := c.(string); recoveryCodeForm.MatchString(s) {
			codes[s] = true
		}
	}
	if len(list) != 10 || len(codes) != 10 {
		t.Fatalf("recovery codes %s: want 10 distinct, each xxxx-xxxx-xxxx", confirmed.Raw)
	}

	asked := time.Now()
	challenge := login(in, user, password)
	answered := time.Now()
	if challenge.Status != http.StatusForbidden || challenge.ErrorCode() != "MFA_REQUIRED" {
		t.Fatalf("login with TOTP: %d %s (want 403 MFA_REQUIRED)", challenge.Status, challenge.Raw)
	}
	exp, err := time.Parse(time.RFC3339, challenge.String("expires_at"))
	if err != nil {
		t.Fatalf("the mfa_token's expires_at %q: %v", challenge.String("expires_at"), err)
	}
	// Issued between asked and answered, its expiry in whole seconds.
	if exp.Before(asked.Add(5*time.Minute).Truncate(time.Second)) || exp.After(answered.Add(5*time.Minute)) {
		t.Errorf("the mfa_token expires at %s, asked at %s: want 5 minutes after", exp, asked.UTC())
	}
	mfaToken := challenge.String("mfa_token")
	body, _, _ := strings.Cut(mfaToken, ".")
	var carried struct {
		Expires int64 `json:"e"`
	}
	if payload, err := base64.RawURLEncoding.DecodeString(body); err != nil || json.Unmarshal(payload, &carried) != nil || carried.Expires != exp.Unix() {
		t.Errorf("the mfa_token carries the expiry %d (%s), want its expires_at %d", carried.Expires, payload, exp.Unix())
	}
	var one string
	for c := range codes {
		one = c
		break
	}
	expectTokens(t, "the second step with a recovery code", secondStep(in, mfaToken, one), user)
	p.stop(t)

	sealer := dataDirSealer(t, data)
	hashes := 0
	for _, env := range storedEventsIn(t, data) {
		var d struct {
			Sealed string `json:"password_hash_sealed"`
		}
		if err := json.Unmarshal(env.Data, &d); err != nil || d.Sealed == "" {
			continue
		}
		hash, err := sealer.Open("password_hash", d.Sealed)
		if err != nil {
			t.Fatalf("%s of %s: the sealed password hash does not open with master.key: %v", env.Type, env.AggregateID, err)
		}
		params, _, _, err := argon2id.DecodeHash(hash)
		if err != nil {
			t.Fatalf("%s of %s: %v", env.Type, env.AggregateID, err)
		}
		if params.Memory != 19456 || params.Iterations != 2 || params.Parallelism != 1 {
			t.Errorf("%s of %s: argon2id m=%d, t=%d, p=%d, want the shipped m=19456, t=2, p=1",
				env.Type, env.AggregateID, params.Memory, params.Iterations, params.Parallelism)
		}
		hashes++
	}
	if hashes < 2 {
		t.Fatalf("%d password hashes in the store, want the admin's and %s's", hashes, user)
	}
}

// storedEventsIn reads every event of the stopped binary's data folder.
func storedEventsIn(t *testing.T, data string) []events.Envelope {
	t.Helper()
	c, done := stoppedStoreConsumer(t, data)
	defer done()
	var all []events.Envelope
	for {
		msg, err := c.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("event %d of the store: %v", len(all)+1, err)
		}
		var env events.Envelope
		if err := json.Unmarshal(msg.Data(), &env); err != nil {
			t.Fatalf("event %d of the store: %v %s", len(all)+1, err, msg.Data())
		}
		all = append(all, env)
		meta, err := msg.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if meta.NumPending == 0 {
			return all
		}
	}
}

// startBinaryIn runs the binary in the working directory dir, its standard
// output apart from its standard error (which the proc's output holds).
func startBinaryIn(t *testing.T, dir string, env ...string) (*proc, func() string) {
	t.Helper()
	bin, err := goBuild("../cmd/infracast-auth")
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(bin), done: make(chan error, 1)}
	p.cmd.Env, p.cmd.Dir = binaryEnv(env...), dir
	var stdoutMu sync.Mutex
	var stdout bytes.Buffer
	p.cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.stderr.Write(b)
	})
	p.cmd.Stdout = writerFunc(func(b []byte) (int, error) {
		stdoutMu.Lock()
		defer stdoutMu.Unlock()
		return stdout.Write(b)
	})
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }() // Wait returns once both outputs are copied
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			if err := p.cmd.Process.Kill(); err != nil {
				t.Logf("kill: %v", err)
			}
			<-p.done
		}
	})
	return p, func() string {
		stdoutMu.Lock()
		defer stdoutMu.Unlock()
		return stdout.String()
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// passwordBlock is the first start's message with the generated password.
var passwordBlock = regexp.MustCompile(`(?s)\nInfracast Auth: created platform admin .*? with password:\n\n    (\S+)\n\n.*?/password\.\n\n`)

// TestShippedFirstStart: the binary with nothing set but the listen address,
// run in an empty working directory, creates ./data (0700) with master.key
// and jwt-signing.key (0600), prints the generated admin password once, on
// standard error, and it signs in; a second start prints no password. Its
// log is JSON lines at the info level.
func TestShippedFirstStart(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	base := "http://" + addr
	p, stdout := startBinaryIn(t, dir, "INFRACAST_LISTEN="+addr)
	waitReady(t, base, p)
	in := &Instance{URL: base, t: t}
	var m []string // printed before the start is ready, and read from the pipe after it maybe
	Eventually(t, 10*time.Second, func() error {
		if m = passwordBlock.FindStringSubmatch(p.output()); m == nil {
			return Errorf("no password printed on standard error:\n%s", p.output())
		}
		return nil
	})
	password := m[1]
	expectStatus(t, "the generated password's token", me(t, in, in.Login(AdminUser, password).String("token")), http.StatusOK)
	if n := strings.Count(p.output(), password); n != 1 {
		t.Errorf("the generated password is printed %d times on standard error, want once", n)
	}
	if strings.Contains(stdout(), password) {
		t.Errorf("the generated password is on standard output:\n%s", stdout())
	}

	want := map[string]os.FileMode{"data": 0o700 | os.ModeDir, "data/master.key": 0o600, "data/jwt-signing.key": 0o600}
	for name, mode := range want {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s in the working directory: %v", name, err)
		} else if got := fi.Mode() & (os.ModeDir | os.ModePerm); got != mode {
			t.Errorf("%s: mode %v, want %v", name, got, mode)
		}
	}
	p.stop(t)
	jsonLines(t, "the first start", strings.Replace(p.output(), m[0], "\n", 1))

	p2, stdout2 := startBinaryIn(t, dir, "INFRACAST_LISTEN="+addr)
	waitReady(t, base, p2)
	in.Login(AdminUser, password)
	if strings.Contains(p2.output(), "with password") || strings.Contains(p2.output(), password) || strings.Contains(stdout2(), password) {
		t.Errorf("the second start printed a password:\n%s", p2.output())
	}
	p2.stop(t)
	jsonLines(t, "the second start", p2.output())
}

// jsonLines checks that out is JSON log lines (slog's), at the info level:
// some INFO lines, none DEBUG.
func jsonLines(t *testing.T, what, out string) {
	t.Helper()
	levels := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		var rec struct {
			Time  time.Time `json:"time"`
			Level string    `json:"level"`
			Msg   string    `json:"msg"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Time.IsZero() || rec.Msg == "" {
			t.Errorf("%s: a log line that is not JSON with time, level and msg (%v): %s", what, err, line)
			continue
		}
		levels[rec.Level]++
	}
	if levels["INFO"] == 0 || levels["DEBUG"] != 0 {
		t.Errorf("%s: log lines by level %v, want the info level (INFO, none DEBUG)", what, levels)
	}
}
