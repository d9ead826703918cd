package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ihttp "github.com/infracast/auth/http"
	ic "github.com/infracast/auth/http/client"
)

// The admin CLI (cmd/infracast), built and run as a user runs it, against
// the real service: every subcommand, bad input (a clear message, a
// non-zero exit code, nothing changed), and a new key's secret printed
// exactly once.

type cliRun struct {
	stdout, stderr string
	code           int
}

// cliEnv is one user of the CLI: a config folder of their own and the
// service's URL.
type cliEnv struct {
	t    *testing.T
	bin  string
	home string // XDG_CONFIG_HOME
	in   *Instance
}

// setStored sets one field of the credentials file's entry for server.
func (c *cliEnv) setStored(server, field string, v any) {
	c.t.Helper()
	creds := c.credentials()
	creds["servers"].(map[string]any)[server].(map[string]any)[field] = v
	raw, err := json.Marshal(creds)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.home, "infracast", "credentials.json"), raw, 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// follow starts `audit --follow` with args, waits for its first line, and
// returns its exit (once it ends), its later lines and its stderr; it is
// killed at the end of the test if still running.
func (c *cliEnv) follow(in *Instance, args ...string) (<-chan error, <-chan string, *strings.Builder) {
	c.t.Helper()
	cmd, lines, stderr := c.start(in, append([]string{"audit", "--follow"}, args...)...)
	select {
	case <-lines: // following
	case <-time.After(15 * time.Second):
		c.t.Fatalf("follow: nothing within 15 s (stderr %s)", stderr.String())
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	c.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			if err := cmd.Process.Kill(); err != nil {
				c.t.Log(err)
			}
		}
	})
	return done, lines, stderr
}

// start runs the CLI with args against in in the background (a --follow),
// and returns it, its stdout's lines as they come, and its stderr.
func (c *cliEnv) start(in *Instance, args ...string) (*exec.Cmd, <-chan string, *strings.Builder) {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = binaryEnv("XDG_CONFIG_HOME="+c.home, "INFRACAST_URL="+in.URL)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return cmd, lines, stderr
}

func newCLI(t *testing.T, in *Instance) *cliEnv {
	t.Helper()
	bin, err := goBuild("../cmd/infracast")
	if err != nil {
		t.Fatal(err)
	}
	return &cliEnv{t: t, bin: bin, home: t.TempDir(), in: in}
}

// run runs the CLI with args, standard input stdin and extra environment
// (INFRACAST_URL is the instance's unless env sets it).
func (c *cliEnv) run(stdin string, env []string, args ...string) cliRun {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = binaryEnv(append([]string{"XDG_CONFIG_HOME=" + c.home, "INFRACAST_URL=" + c.in.URL}, env...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return cliRun{out.String(), errb.String(), code}
}

// ok runs args and fails the test unless the CLI exits 0.
func (c *cliEnv) ok(args ...string) cliRun {
	c.t.Helper()
	r := c.run("", nil, args...)
	if r.code != 0 {
		c.t.Fatalf("infracast %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// okJSON runs args with -o json and decodes the output into out.
func (c *cliEnv) okJSON(out any, args ...string) {
	c.t.Helper()
	r := c.ok(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(r.stdout), out); err != nil {
		c.t.Fatalf("infracast %s -o json: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
}

// fails runs args and requires exit code code and a message on stderr
// containing each of msgs.
func (c *cliEnv) fails(code int, stdin string, env []string, args []string, msgs ...string) {
	c.t.Helper()
	r := c.run(stdin, env, args...)
	if r.code != code {
		c.t.Fatalf("infracast %s: exit %d, want %d\n%s%s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "infracast: ") {
		c.t.Errorf("infracast %s: the message does not start with 'infracast: ': %q", strings.Join(args, " "), r.stderr)
	}
	// One line, one prefix (a usage error adds where to find the usage:
	// the help of the command the line named, "infracast users --help").
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) > 2 || (len(lines) == 2 && !(strings.HasPrefix(lines[1], "Run 'infracast") && strings.HasSuffix(lines[1], " --help' for usage."))) {
		c.t.Errorf("infracast %s: the error is not one line: %q", strings.Join(args, " "), r.stderr)
	}
	if strings.Count(lines[0], "infracast: ") != 1 {
		c.t.Errorf("infracast %s: the prefix is not there exactly once: %q", strings.Join(args, " "), r.stderr)
	}
	for _, m := range msgs {
		if !strings.Contains(r.stderr, m) {
			c.t.Errorf("infracast %s: message %q lacks %q", strings.Join(args, " "), r.stderr, m)
		}
	}
	if r.stdout != "" {
		c.t.Errorf("infracast %s failed but printed on stdout: %q", strings.Join(args, " "), r.stdout)
	}
}

func (c *cliEnv) login() {
	c.t.Helper()
	r := c.run("", []string{"INFRACAST_PASSWORD=" + AdminPassword}, "--url", c.in.URL, "login", "--username", AdminUser)
	if r.code != 0 || !strings.Contains(r.stdout, "Logged in to "+c.in.URL+" as admin") {
		c.t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func (c *cliEnv) credentials() map[string]any {
	c.t.Helper()
	p := filepath.Join(c.home, "infracast", "credentials.json")
	fi, err := os.Stat(p)
	if err != nil {
		c.t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		c.t.Fatalf("%s: mode %#o, want 0600", p, fi.Mode().Perm())
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		c.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		c.t.Fatal(err)
	}
	return m
}

func (c *cliEnv) stored() map[string]any {
	c.t.Helper()
	servers, _ := c.credentials()["servers"].(map[string]any)
	s, _ := servers[c.in.URL].(map[string]any)
	return s
}

type userJSON struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Active   bool   `json:"active"`
	Tenants  []struct {
		ID, Role string
	} `json:"tenants"`
}

func TestCLILoginAndCredentials(t *testing.T) {
	t.Parallel()
	in := Start(t)
	c := newCLI(t, in)

	// No URL, no login: not logged in (anywhere); login itself needs a URL.
	c.fails(exitUnauthorized, "", []string{"INFRACAST_URL="}, []string{"users", "list"}, "not logged in", "infracast --url URL login --username NAME")
	c.fails(exitUsage, "", []string{"INFRACAST_URL=", "INFRACAST_PASSWORD=" + AdminPassword}, []string{"login", "--username", "admin"}, "no service URL", "--url")
	c.fails(exitUnauthorized, "", nil, []string{"users", "list"}, "not logged in to "+in.URL, "infracast --url "+in.URL+" login")
	// Bad logins change nothing.
	c.fails(exitUsage, "", nil, []string{"login"}, `required flag(s) "username" not set`)
	c.fails(exitUnauthorized, "", []string{"INFRACAST_PASSWORD=wrong-password"}, []string{"login", "--username", "admin"}, "UNAUTHORIZED", "Invalid username or password")
	c.fails(exitUsage, "", nil, []string{"login", "--username", "admin"}, "password", "INFRACAST_PASSWORD")
	c.fails(exitUsage, "", nil, []string{"--url", "localhost:8080", "login", "--username", "admin"}, "base URL")
	if _, err := os.Stat(filepath.Join(c.home, "infracast", "credentials.json")); err == nil {
		t.Fatal("a failed login wrote the credentials file")
	}

	// The form, password from INFRACAST_PASSWORD (standard input is
	// not a terminal); then from standard input.
	c.login()
	first := c.stored()
	if first["refresh_token"] == "" || first["access_token"] == "" || first["username"] != "admin" || c.credentials()["current"] != in.URL {
		t.Fatalf("stored: %v", first)
	}
	if r := c.run(AdminPassword+"\n", nil, "--url", in.URL, "login", "--username", "admin", "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"username": "admin"`) {
		t.Fatalf("login, password on stdin: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if c.stored()["refresh_token"] == first["refresh_token"] {
		t.Fatal("a new login kept the old refresh token")
	}
	// The login it replaced is ended, not left live with nobody holding it
	// (outside check 20c).
	if r := in.Do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": first["refresh_token"]}); r.Status != 401 {
		t.Fatalf("the replaced login's refresh token: %d, want 401 (its session ended)", r.Status)
	}
	// The last login's URL is used without --url or INFRACAST_URL.
	if r := c.run("", []string{"INFRACAST_URL="}, "whoami"); r.code != 0 || !strings.Contains(r.stdout, "admin") {
		t.Fatalf("whoami with the stored URL: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// A credentials file others may read is refused.
	p := filepath.Join(c.home, "infracast", "credentials.json")
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	c.fails(exitFailure, "", nil, []string{"whoami"}, "readable by others", "chmod 600", "log in again")
	// As the message says, logging in again replaces it, mode 0600; and a
	// file that does not parse, which every command refuses saying "log in
	// again to replace it" (outside check 17d: login refused both).
	c.login()
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the credentials file after logging in again: %v %v", fi, err)
	}
	if err := os.WriteFile(p, []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.fails(exitFailure, "", nil, []string{"whoami"}, "log in again to replace it")
	c.login()
	if r := c.run("", nil, "whoami"); r.code != 0 || !strings.Contains(r.stdout, "admin") {
		t.Fatalf("whoami after logging in over a corrupt file: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// INFRACAST_TOKEN (an API key here) is used instead of the stored login.
	admin := in.AdminToken()
	key := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "cli-env", "tenants": []string{"prod"}, "permissions": []string{"nodes:read"}}).String("key")
	var me struct{ Type, Name string }
	if r := c.run("", []string{"INFRACAST_TOKEN=" + key}, "whoami", "-o", "json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &me) != nil || me.Type != "apikey" || me.Name != "cli-env" {
		t.Fatalf("whoami with INFRACAST_TOKEN: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// logout revokes the session and forgets it.
	refresh, _ := c.stored()["refresh_token"].(string)
	c.ok("logout")
	if c.stored() != nil {
		t.Fatal("logout left the tokens in the file")
	}
	if r := in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}); r.Status != 401 {
		t.Fatalf("the refresh token after logout: %d", r.Status)
	}
	c.fails(exitUnauthorized, "", nil, []string{"users", "list"}, "not logged in")
	c.fails(exitUnauthorized, "", nil, []string{"logout"}, "not logged in")

	// A locked account: 429 with a Retry-After longer than the CLI waits
	// (30 s), so it says when to try again, at once.
	in.CreateUser(admin, "locked", "locked-password-1", nil)
	for range 5 {
		in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "locked", "password": "wrong-password"})
	}
	c.fails(exitRateLimited, "", []string{"INFRACAST_PASSWORD=locked-password-1"}, []string{"login", "--username", "locked"}, "RATE_LIMITED", "retry after 15m0s")
}

// TestCLIRefreshesAndStoresRotatedTokens: a command whose stored access
// token is due refreshes it, and stores the new tokens (with rotation, the
// new refresh token: the old one is spent).
func TestCLIRefreshesAndStoresRotatedTokens(t *testing.T) {
	t.Parallel()
	in := Start(t, WithRotation())
	c := newCLI(t, in)
	c.login()
	before := c.stored()
	// Make the stored access token due (as if 56 minutes had passed).
	c.setStored(in.URL, "expires_at", time.Now().Add(4*time.Minute).UTC().Format(time.RFC3339))
	c.ok("whoami")
	after := c.stored()
	if after["access_token"] == before["access_token"] || after["refresh_token"] == before["refresh_token"] || after["refresh_token"] == "" {
		t.Fatalf("the renewed tokens were not stored: %v → %v", before["expires_at"], after["expires_at"])
	}
	c.ok("whoami") // and they work
	// The session revoked elsewhere: a clear message, exit 3.
	rt, _ := after["refresh_token"].(string)
	in.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": rt})
	c.setStored(in.URL, "access_token", "")
	c.fails(exitUnauthorized, "", nil, []string{"whoami"}, "session has ended", "infracast login")
}

// TestCLIParallelCommandsShareRotatedTokens: commands run side by side once
// the stored access token is due, with rotation and no reuse interval, each
// refresh once or take the tokens another one stored: none presents a spent
// refresh token (outside check 12d: they all refreshed with the refresh
// token read at their start, and the service ended the session as stolen).
func TestCLIParallelCommandsShareRotatedTokens(t *testing.T) {
	t.Parallel()
	in := Start(t, WithRotation(), WithReuseInterval(0))
	c := newCLI(t, in)
	c.login()
	before := c.stored()
	c.setStored(in.URL, "expires_at", time.Now().Add(4*time.Minute).UTC().Format(time.RFC3339))
	const n = 6
	results := make(chan string, n)
	for range n {
		go func() {
			cmd := exec.Command(c.bin, "whoami", "-o", "json")
			cmd.Env = binaryEnv("XDG_CONFIG_HOME="+c.home, "INFRACAST_URL="+in.URL)
			out, err := cmd.CombinedOutput()
			if err != nil {
				results <- fmt.Sprintf("%v: %s", err, out)
				return
			}
			results <- ""
		}()
	}
	for range n {
		if r := <-results; r != "" {
			t.Errorf("whoami alongside others: %s", r)
		}
	}
	after := c.stored()
	if after["refresh_token"] == before["refresh_token"] {
		t.Fatal("no command stored the renewed tokens")
	}
	c.ok("whoami") // the session lives on
	for _, e := range storedEnvelopes(t, in) {
		if e.Type == "session.refresh_reused" {
			t.Fatalf("a command presented a spent refresh token: %+v", e)
		}
	}
}

// TestCLIRefreshesAfterATokenIsRefused: the stored access token refused
// before it expires (its signing key retired in an emergency) is refreshed
// once and the command tried again, instead of failing until the token
// expires (outside check 12d: up to an hour of UNAUTHORIZED). A session
// revoked by an admin ends with a message that says to log in again.
func TestCLIRefreshesAfterATokenIsRefused(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := newClient(t, in, ic.WithAccessToken(in.AdminToken()))
	ed, err := admin.AddSigningKey(context.Background(), "EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, in)
	c.login() // signed by the EdDSA key
	before := c.stored()
	if _, err := admin.RetireSigningKeyFallingBackToHS256(context.Background(), ed.ID); err != nil {
		t.Fatal(err)
	}
	c.ok("whoami")
	if after := c.stored(); after["access_token"] == before["access_token"] {
		t.Fatal("the refused access token was not replaced")
	}
	// Every session of the admin revoked: the refresh is refused too.
	me := c.stored()
	rt, _ := me["refresh_token"].(string)
	if err := admin.Revoke(context.Background(), rt); err != nil {
		t.Fatal(err)
	}
	c.fails(exitUnauthorized, "", nil, []string{"whoami"}, "infracast login")
	// An INFRACAST_TOKEN that is refused says so.
	c.fails(exitUnauthorized, "", []string{"INFRACAST_TOKEN=not-a-token"}, []string{"whoami"}, "INFRACAST_TOKEN was refused")
}

// TestCLIFollowEndsWhenAnotherUserLogsIn: an 'audit --follow' started as
// admin, and 'infracast login --username carol' beside it (the same config
// folder): at its next refresh the follow ends, exit 3, saying why, and
// never refreshes carol's session (outside check 12r4: it took the stored
// tokens whatever their user, refreshed carol's session and went on as
// carol).
func TestCLIFollowEndsWhenAnotherUserLogsIn(t *testing.T) {
	t.Parallel()
	in := Start(t, WithRotation())
	admin := newClient(t, in, ic.WithAccessToken(in.AdminToken()))
	ed, err := admin.AddSigningKey(context.Background(), "EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	in.CreateUser(in.AdminToken(), "carol", "carol-password-1", nil)
	c := newCLI(t, in)
	c.login() // signed by the EdDSA key

	done, _, stderr := c.follow(in, "--limit", "1", "--interval", "50ms", "-o", "json")

	// carol logs in beside it; her stored access token is made due, so that
	// a command that took her tokens would refresh her session at once.
	if r := c.run("", []string{"INFRACAST_PASSWORD=carol-password-1"}, "login", "--username", "carol"); r.code != 0 {
		t.Fatalf("login as carol: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	c.setStored(in.URL, "expires_at", time.Now().Add(4*time.Minute).UTC().Format(time.RFC3339))
	carol := c.stored()
	// The follow's access token refused (its key retired): it refreshes now.
	if _, err := admin.RetireSigningKeyFallingBackToHS256(context.Background(), ed.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitUnauthorized || !strings.Contains(stderr.String(), "now carol's") {
			t.Fatalf("follow after carol's login: %v, want exit %d saying the login is carol's now (stderr %s)", err, exitUnauthorized, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the follow went on after carol's login and its token's refusal (stderr %s)", stderr.String())
	}
	if after := c.stored(); after["refresh_token"] != carol["refresh_token"] || after["username"] != "carol" {
		t.Fatalf("carol's stored login changed: %v → %v", carol, after)
	}
	for _, e := range storedEnvelopes(t, in) {
		if e.Type == "session.refreshed" {
			t.Fatalf("a session was refreshed: %+v", e)
		}
	}
	c.ok("whoami") // carol's session lives on
}

// TestCLIFollowSurvivesTheSameUsersSecondLogin: a --follow whose user logs
// in again beside it takes the new login's tokens; when the signing key of
// both is retired, it refreshes them rather than being refused again and
// saying to log in (a re-check: it exited 3 while the stored login worked).
func TestCLIFollowSurvivesTheSameUsersSecondLogin(t *testing.T) {
	t.Parallel()
	in := Start(t, WithRotation())
	adminToken := in.AdminToken() // HS256: outlives the EdDSA key below
	admin := newClient(t, in, ic.WithAccessToken(adminToken))
	ed, err := admin.AddSigningKey(context.Background(), "EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, in)
	c.login() // signed by the EdDSA key
	done, lines, stderr := c.follow(in, "--type", "user.created", "--limit", "1", "--interval", "50ms", "-o", "json")
	c.login() // the same user again, beside it: signed by the EdDSA key too
	if _, err := admin.RetireSigningKeyFallingBackToHS256(context.Background(), ed.ID); err != nil {
		t.Fatal(err)
	}
	in.CreateUser(adminToken, "after-retire", "correct-horse-battery-9", nil)
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the follow ended: %v (stderr %s)", <-done, stderr.String())
			}
			if strings.Contains(l, "after-retire") {
				c.ok("whoami")
				return
			}
		case err := <-done:
			t.Fatalf("the follow ended: %v (stderr %s)", err, stderr.String())
		case <-deadline:
			t.Fatalf("the follow did not show the user created after the key's retirement (stderr %s)", stderr.String())
		}
	}
}

// Exit codes, as cmd/infracast documents them.
const (
	exitFailure      = 1
	exitUsage        = 2
	exitUnauthorized = 3
	exitForbidden    = 4
	exitNotFound     = 5
	exitConflict     = 6
	exitRateLimited  = 7
)

func TestCLIUsers(t *testing.T) {
	t.Parallel()
	in := Start(t)
	c := newCLI(t, in)
	c.login()

	var page struct{ Users []userJSON }
	c.okJSON(&page, "users", "list")
	if len(page.Users) != 1 || page.Users[0].Username != "admin" {
		t.Fatalf("users list: %+v", page)
	}
	if r := c.ok("users", "list"); !strings.Contains(r.stdout, "USERNAME") || !strings.Contains(r.stdout, "admin") {
		t.Fatalf("users list (table): %s", r.stdout)
	}

	// create: the password from INFRACAST_NEW_PASSWORD, or standard input.
	pw := []string{"INFRACAST_NEW_PASSWORD=bob-password-1"}
	r := c.run("", pw, "users", "create", "--username", "bob", "--email", "bob@example.com", "--tenant", "prod=viewer", "-o", "json")
	var bob userJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &bob) != nil || bob.Username != "bob" || len(bob.Tenants) != 1 {
		t.Fatalf("users create: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := c.run("carol-password-1\n", nil, "users", "create", "--username", "carol", "--email", "carol@example.com"); r.code != 0 || !strings.Contains(r.stdout, "carol") {
		t.Fatalf("users create, password on stdin: %d %s %s", r.code, r.stdout, r.stderr)
	}
	in.Login("carol", "carol-password-1")
	// A username that begins as an ID does is a username (outside check
	// 17d: "users get user-bob" looked for the ID user-bob).
	if r := c.run("", []string{"INFRACAST_NEW_PASSWORD=user-bob-password-1"}, "users", "create", "--username", "user-bob", "--email", "ub@example.com"); r.code != 0 {
		t.Fatalf("users create user-bob: %d %s %s", r.code, r.stdout, r.stderr)
	}
	var ub userJSON
	c.okJSON(&ub, "users", "get", "user-bob")
	if ub.Username != "user-bob" {
		t.Fatalf("users get user-bob: %+v", ub)
	}
	c.okJSON(&ub, "users", "get", ub.ID)
	if ub.Username != "user-bob" {
		t.Fatalf("users get by its ID: %+v", ub)
	}
	c.okJSON(&ub, "users", "get", "USER-"+strings.ToLower(strings.TrimPrefix(ub.ID, "user-")))
	if ub.Username != "user-bob" {
		t.Fatalf("users get by its ID in another case: %+v", ub)
	}
	// No username has the shape of a user ID, so an ID never finds another
	// user by name (re-check 17r3: the name lookup after a 404 did).
	c.fails(exitUsage, "", []string{"INFRACAST_NEW_PASSWORD=id-like-password-1"}, []string{"users", "create", "--username", strings.ToLower(ub.ID), "--email", "il@example.com"},
		"VALIDATION_ERROR", "must not look like a user ID")
	c.fails(exitNotFound, "", nil, []string{"users", "get", "user-01M98HR4T2V7KQ5WZH40PKTC9D"}, "NOT_FOUND")
	// Bad input: a clear message, a non-zero exit, nothing changed.
	c.fails(exitUsage, "", pw, []string{"users", "create", "--username", "dave", "--email", "d@example.com", "--tenant", "prod=boss"}, "VALIDATION_ERROR", "role")
	c.fails(exitUsage, "", pw, []string{"users", "create", "--username", "dave", "--email", "d@example.com", "--tenant", "prod"}, "TENANT=ROLE")
	c.fails(exitUsage, "", pw, []string{"users", "create", "--username", "dave"}, `"email" not set`)
	c.fails(exitUsage, "", nil, []string{"users", "create", "--username", "dave", "--email", "d@example.com"}, "password")
	c.fails(exitConflict, "", pw, []string{"users", "create", "--username", "BOB", "--email", "b2@example.com"}, "CONFLICT", "already taken")
	c.okJSON(&page, "users", "list")
	if len(page.Users) != 4 {
		t.Fatalf("after bad input: %d users, want 4 (admin, bob, carol, user-bob)", len(page.Users))
	}

	// grant / remove-role, by username or ID.
	var u userJSON
	c.okJSON(&u, "users", "grant", "bob", "staging", "editor")
	if len(u.Tenants) != 2 {
		t.Fatalf("grant: %+v", u)
	}
	c.fails(exitUsage, "", nil, []string{"users", "grant", "bob", "staging", "boss"}, "VALIDATION_ERROR", "role: must be one of viewer, editor, admin")
	c.fails(exitUsage, "", nil, []string{"users", "grant", "bob", "staging"}, "accepts 3 arg(s)")
	c.fails(exitNotFound, "", nil, []string{"users", "grant", "nobody", "staging", "viewer"}, `no user named "nobody"`)
	c.fails(exitNotFound, "", nil, []string{"users", "get", "user-01J00000000000000000000000"}, "NOT_FOUND")
	c.okJSON(&u, "users", "get", bob.ID)
	if len(u.Tenants) != 2 || u.Tenants[1].ID != "staging" || u.Tenants[1].Role != "editor" {
		t.Fatalf("after a refused grant: %+v", u)
	}
	c.okJSON(&u, "users", "remove-role", bob.ID, "staging")
	if len(u.Tenants) != 1 {
		t.Fatalf("remove-role: %+v", u)
	}

	// sessions, revoke-sessions.
	in.Login("bob", "bob-password-1")
	in.Login("bob", "bob-password-1")
	var sessions struct{ Sessions []struct{ ID string } }
	c.okJSON(&sessions, "users", "sessions", "bob")
	if len(sessions.Sessions) != 2 {
		t.Fatalf("sessions: %+v", sessions)
	}
	if r := c.ok("users", "sessions", "bob"); !strings.Contains(r.stdout, sessions.Sessions[0].ID) {
		t.Fatalf("sessions (table): %s", r.stdout)
	}
	var revoked struct{ Revoked int }
	c.okJSON(&revoked, "users", "revoke-sessions", "bob", sessions.Sessions[0].ID)
	c.okJSON(&revoked, "users", "revoke-sessions", "bob")
	if revoked.Revoked != 1 {
		t.Fatalf("revoke-sessions: %+v", revoked)
	}

	// deactivate / activate.
	c.okJSON(&u, "users", "deactivate", "bob")
	if u.Active {
		t.Fatal("deactivate: still active")
	}
	if r := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "bob", "password": "bob-password-1"}); r.Status != 401 {
		t.Fatalf("bob's login after deactivation: %d", r.Status)
	}
	c.okJSON(&u, "users", "activate", "bob")
	if !u.Active {
		t.Fatal("activate: not active")
	}
	c.fails(exitConflict, "", nil, []string{"users", "activate", "bob"}, "CONFLICT")
	c.fails(exitUsage, "", nil, []string{"users", "deactivate", "admin"}, "yourself")

	// A user who may not: 403.
	c2 := newCLI(t, in)
	if r := c2.run("", []string{"INFRACAST_PASSWORD=carol-password-1"}, "login", "--username", "carol"); r.code != 0 {
		t.Fatalf("carol login: %s", r.stderr)
	}
	c2.fails(exitForbidden, "", nil, []string{"users", "grant", bob.ID, "prod", "admin"}, "FORBIDDEN", "Insufficient permissions")
	c2.fails(exitForbidden, "", nil, []string{"signing-keys", "list"}, "FORBIDDEN")
}

func TestCLIKeys(t *testing.T) {
	t.Parallel()
	in := Start(t)
	c := newCLI(t, in)
	c.login()

	// The form: the JSON carries the key, shown exactly once.
	r := c.ok("keys", "create", "--name", "ci", "--tenant", "prod", "--permission", "nodes:read", "-o", "json")
	var key struct {
		ID, Key string
		Tenants []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &key); err != nil || !strings.HasPrefix(key.Key, "ic_live_") || key.Tenants[0] != "prod" {
		t.Fatalf("keys create: %v %s", err, r.stdout)
	}
	if n := strings.Count(r.stdout+r.stderr, key.Key); n != 1 {
		t.Fatalf("the secret was printed %d times, want once", n)
	}
	if got := in.Do("GET", "/api/v1/tenants/prod/nodes", key.Key, nil); got.Status != 404 {
		t.Fatalf("the new key: %d", got.Status)
	}
	// Table form: printed once too, with the warning on stderr.
	r = c.ok("keys", "create", "--name", "deploy", "--tenant", "prod", "--permission", "nodes:read", "--permission", "nodes:write", "--expires", "30d", "--allowed-ip", "127.0.0.1")
	secret := ""
	for _, l := range strings.Split(r.stdout, "\n") {
		if v, ok := strings.CutPrefix(l, "key:"); ok {
			secret = strings.TrimSpace(v)
		}
	}
	if !strings.HasPrefix(secret, "ic_live_") || strings.Count(r.stdout+r.stderr, secret) != 1 || !strings.Contains(r.stderr, "shown this once") {
		t.Fatalf("keys create (table): %q %q", r.stdout, r.stderr)
	}

	// list and get never show a secret.
	var page struct {
		APIKeys []struct{ ID, Name, Key string } `json:"api_keys"`
	}
	c.okJSON(&page, "keys", "list")
	if len(page.APIKeys) != 2 {
		t.Fatalf("keys list: %+v", page)
	}
	for _, args := range [][]string{{"keys", "list"}, {"keys", "list", "-o", "json"}, {"keys", "get", key.ID}, {"keys", "get", key.ID, "-o", "json"}} {
		if r := c.ok(args...); strings.Contains(r.stdout, "ic_live_") || !strings.Contains(r.stdout, key.ID) {
			t.Fatalf("%v shows a secret or lacks the key: %s", args, r.stdout)
		}
	}

	// Bad input: nothing created.
	c.fails(exitUsage, "", nil, []string{"keys", "create", "--name", "x", "--permission", "bogus:perm"}, "VALIDATION_ERROR")
	c.fails(exitUsage, "", nil, []string{"keys", "create", "--name", "x", "--expires", "yesterday"}, "--expires", "RFC 3339")
	c.fails(exitUsage, "", nil, []string{"keys", "create", "--name", " "}, "--name")
	c.fails(exitUsage, "", nil, []string{"keys", "create", "--tenant", "prod"}, `"name" not set`)
	c.okJSON(&page, "keys", "list")
	if len(page.APIKeys) != 2 {
		t.Fatalf("after bad input: %d keys", len(page.APIKeys))
	}

	// rotate: a new secret, printed once; the old one stops.
	r = c.ok("keys", "rotate", key.ID, "-o", "json")
	var rotated struct{ Key string }
	if err := json.Unmarshal([]byte(r.stdout), &rotated); err != nil || rotated.Key == key.Key || strings.Count(r.stdout+r.stderr, rotated.Key) != 1 {
		t.Fatalf("keys rotate: %s", r.stdout)
	}
	if got := in.Do("GET", "/api/v1/tenants/prod/nodes", key.Key, nil); got.Status != 401 {
		t.Fatalf("the old secret after rotate: %d", got.Status)
	}
	// revoke.
	if r := c.ok("keys", "revoke", key.ID); !strings.Contains(r.stdout, key.ID+" revoked.") {
		t.Fatalf("keys revoke: %s", r.stdout)
	}
	if got := in.Do("GET", "/api/v1/tenants/prod/nodes", rotated.Key, nil); got.Status != 401 {
		t.Fatalf("the key after revoke: %d", got.Status)
	}
	c.fails(exitNotFound, "", nil, []string{"keys", "revoke", "key-01J00000000000000000000000"}, "NOT_FOUND")
	c.fails(exitUsage, "", nil, []string{"keys", "revoke"}, "accepts 1 arg(s)")

	// Logged in more than 10 minutes ago: a new secret needs a new login.
	in.Clock.Advance(ihttp.ReauthWindow + time.Second)
	c.fails(exitForbidden, "", nil, []string{"keys", "create", "--name", "late", "--tenant", "prod", "--permission", "nodes:read"},
		"REAUTHENTICATION_REQUIRED", "run 'infracast login' again")
	c.login()
	c.ok("keys", "create", "--name", "late", "--tenant", "prod", "--permission", "nodes:read")
}

func TestCLISSOAndSigningKeys(t *testing.T) {
	t.Parallel()
	in := Start(t)
	c := newCLI(t, in)
	c.login()
	// The IdPs' discovery documents: a closed loopback port (accepted with
	// a warning that it could not be asked).
	issuer := "http://" + freeAddr(t)
	secret := []string{"INFRACAST_CLIENT_SECRET=very-secret-client-secret"}

	r := c.run("", secret, "sso", "configure", "okta", "--domain", "acme.okta.com", "--client-id", "c1", "--issuer", issuer,
		"--role-mapping", "ops=prod:admin", "--link-by-email", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"type": "okta"`) || strings.Contains(r.stdout, "very-secret") || !strings.Contains(r.stderr, "warning: ") {
		t.Fatalf("sso configure okta: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := c.run("very-secret-client-secret\n", nil, "sso", "configure", "azure", "--tenant-id", "11111111-2222-3333-4444-555555555555", "--client-id", "c2", "--issuer", issuer); r.code != 0 {
		t.Fatalf("sso configure azure, secret on stdin: %d %s", r.code, r.stderr)
	}
	if r := c.run("", secret, "sso", "configure", "oidc", "--name", "corp", "--issuer", issuer, "--client-id", "c3"); r.code != 0 {
		t.Fatalf("sso configure oidc: %d %s", r.code, r.stderr)
	}
	// An edit of the same client at the same issuer: no secret (nothing in
	// INFRACAST_CLIENT_SECRET, nothing on standard input), the service keeps
	// the stored one; --trust-idp-mfa is sent (re-check 20r6: the CLI asked
	// for the secret on every save, and had no such flag).
	r = c.run("", nil, "sso", "configure", "oidc", "--name", "corp", "--issuer", issuer, "--client-id", "c3",
		"--role-mapping", "ops=prod:viewer", "--trust-idp-mfa", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"trust_idp_mfa": true`) || !strings.Contains(r.stdout, `"client_secret": "[redacted]"`) {
		t.Fatalf("sso configure oidc, an edit without the secret: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// A new provider, or another client, still needs it.
	c.fails(exitUsage, "", nil, []string{"sso", "configure", "oidc", "--name", "fresh", "--issuer", issuer, "--client-id", "c3"}, "client secret", "INFRACAST_CLIENT_SECRET")
	c.fails(exitUsage, "", nil, []string{"sso", "configure", "oidc", "--name", "corp", "--issuer", issuer, "--client-id", "c4"}, "client secret", "INFRACAST_CLIENT_SECRET")
	_, cert := selfSigned(t, "idp", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	certFile := filepath.Join(t.TempDir(), "idp.pem")
	if err := os.WriteFile(certFile, []byte(certPEM(cert)), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("sso", "configure", "saml", "--entity-id", "https://idp.example.com", "--sso-url", "https://idp.example.com/sso", "--certificate", certFile)

	var list struct {
		Providers []struct {
			Name, Type   string
			ClientSecret string `json:"client_secret"`
		}
	}
	c.okJSON(&list, "sso", "list")
	if len(list.Providers) != 4 {
		t.Fatalf("sso list: %+v", list)
	}
	for _, p := range list.Providers {
		if p.Type != "saml" && p.ClientSecret != "[redacted]" {
			t.Errorf("sso list: %s's secret %q", p.Name, p.ClientSecret)
		}
	}
	if r := c.ok("sso", "list"); strings.Contains(r.stdout, "very-secret") || !strings.Contains(r.stdout, "corp") {
		t.Fatalf("sso list (table): %s", r.stdout)
	}
	c.ok("sso", "get", "okta")

	// Bad input: refused, nothing changed.
	c.fails(exitUsage, "", secret, []string{"sso", "configure", "okta", "--domain", "https://acme.okta.com/x", "--client-id", "c9"}, "VALIDATION_ERROR", "domain")
	c.fails(exitUsage, "", secret, []string{"sso", "configure", "okta", "--domain", "acme.okta.com"}, `"client-id" not set`)
	c.fails(exitUsage, "", secret, []string{"sso", "configure", "okta", "--domain", "x.okta.com", "--client-id", "c", "--role-mapping", "ops"}, "GROUP=TENANT:ROLE")
	c.fails(exitUsage, "", nil, []string{"sso", "configure", "saml", "--entity-id", "e", "--sso-url", "https://x", "--certificate", "/nonexistent.pem"}, "--certificate")
	c.fails(exitUsage, "", nil, []string{"sso", "configure", "facebook"}, "unknown command")
	var okta struct {
		ClientID string `json:"client_id"`
	}
	c.okJSON(&okta, "sso", "get", "okta")
	if okta.ClientID != "c1" {
		t.Fatalf("okta after refused input: %+v", okta)
	}
	c.ok("sso", "delete", "okta")
	c.fails(exitNotFound, "", nil, []string{"sso", "delete", "okta"}, "NOT_FOUND")

	// signing-keys.
	var sks struct {
		SigningKeys []struct{ ID, Algorithm string } `json:"signing_keys"`
	}
	c.okJSON(&sks, "signing-keys", "list")
	if len(sks.SigningKeys) != 1 || sks.SigningKeys[0].Algorithm != "HS256" {
		t.Fatalf("signing-keys list: %+v", sks)
	}
	var sk struct {
		ID, Algorithm string
		Signing       bool
		Retired       bool
	}
	c.okJSON(&sk, "signing-keys", "add", "--algorithm", "EdDSA")
	if sk.Algorithm != "EdDSA" || !sk.Signing {
		t.Fatalf("signing-keys add: %+v", sk)
	}
	c.fails(exitUsage, "", nil, []string{"signing-keys", "add", "--algorithm", "RS256"}, "EdDSA or HS256")
	// An HS256 key would take over from the EdDSA key: refused, added or
	// activated (outside check 20r4), and activated with the escape.
	c.fails(exitConflict, "", nil, []string{"signing-keys", "add", "--algorithm", "HS256"}, "CONFLICT", "An EdDSA key signs")
	var hs struct{ ID string }
	c.okJSON(&hs, "signing-keys", "add", "--algorithm", "HS256", "--pending")
	c.fails(exitConflict, "", nil, []string{"signing-keys", "activate", hs.ID}, "CONFLICT", "fall_back_to_hs256")
	c.okJSON(&sks, "signing-keys", "list")
	if len(sks.SigningKeys) != 3 {
		t.Fatalf("after refused adds: %+v", sks)
	}
	// The CLI's own token was signed by the HS256 key: still valid.
	// The last EdDSA key that signs: refused unless tokens may go back to HS256.
	c.fails(exitConflict, "", nil, []string{"signing-keys", "retire", sk.ID}, "CONFLICT", "Add another EdDSA key first")
	c.okJSON(&sk, "signing-keys", "retire", sk.ID, "--fall-back-to-hs256")
	if !sk.Retired {
		t.Fatalf("signing-keys retire: %+v", sk)
	}
	c.fails(exitNotFound, "", nil, []string{"signing-keys", "retire", "sk-unknown"}, "NOT_FOUND")
	// An EdDSA key signs again: the HS256 key takes over only when asked to.
	// (The clock moves between the steps: a key signs from its addition's
	// or activation's time, and this instance's clock stands still.)
	c.okJSON(&sk, "signing-keys", "add", "--algorithm", "EdDSA")
	c.fails(exitConflict, "", nil, []string{"signing-keys", "activate", hs.ID}, "CONFLICT", "An EdDSA key signs")
	in.Clock.Advance(time.Second)
	c.okJSON(&sk, "signing-keys", "activate", hs.ID, "--fall-back-to-hs256")
	if sk.Algorithm != "HS256" || !sk.Signing {
		t.Fatalf("signing-keys activate --fall-back-to-hs256: %+v", sk)
	}
	in.Clock.Advance(time.Second)
	c.okJSON(&sk, "signing-keys", "add", "--algorithm", "EdDSA")
	c.fails(exitConflict, "", nil, []string{"signing-keys", "add", "--algorithm", "HS256"}, "CONFLICT", "An EdDSA key signs")
	in.Clock.Advance(time.Second)
	c.okJSON(&sk, "signing-keys", "add", "--algorithm", "HS256", "--fall-back-to-hs256")
	if sk.Algorithm != "HS256" || !sk.Signing {
		t.Fatalf("signing-keys add --fall-back-to-hs256: %+v", sk)
	}

	// completion, for each shell.
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		if r := c.ok("completion", sh); len(r.stdout) < 100 {
			t.Errorf("completion %s: %q", sh, r.stdout)
		}
	}
	c.fails(exitUsage, "", nil, []string{"-o", "yaml", "users", "list"}, "want table or json")
	c.fails(exitUsage, "", nil, []string{"users", "lst"}, "unknown command", "Run 'infracast users --help' for usage.")
	c.fails(exitUsage, "", nil, []string{"users", "list", "--bogus"}, "unknown flag", "Run 'infracast users list --help' for usage.")
	c.fails(exitUsage, "", nil, []string{"users", "get"}, "Run 'infracast users get --help' for usage.")
	c.fails(exitUsage, "", nil, []string{"--bogus"}, "unknown flag", "Run 'infracast --help' for usage.")
}

func TestCLIAuditAndAccess(t *testing.T) {
	t.Parallel()
	in := Start(t)
	c := newCLI(t, in)
	c.login()
	admin := in.AdminToken()
	bob := in.CreateUser(admin, "bob", "bob-password-1", map[string]string{"prod": "viewer"})
	in.Do("PUT", "/api/v1/users/"+bob+"/tenants/staging", admin, map[string]string{"role": "editor"})
	key := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "k", "tenants": []string{"prod"}, "permissions": []string{"nodes:read"}})

	var page struct {
		Events []struct {
			Sequence    uint64
			Type        string
			AggregateID string `json:"aggregate_id"`
		}
	}
	c.okJSON(&page, "audit", "--subject", bob)
	if len(page.Events) != 2 || page.Events[0].Type != "user.created" || page.Events[1].Type != "user.role_granted" {
		t.Fatalf("audit --subject: %+v", page)
	}
	if r := c.ok("audit", "--type", "user.", "--since", "1h"); !strings.Contains(r.stdout, "user.role_granted") || !strings.Contains(r.stdout, bob) {
		t.Fatalf("audit (table): %s", r.stdout)
	}
	c.okJSON(&page, "audit", "--order", "desc", "--limit", "1")
	if len(page.Events) != 1 || page.Events[0].Type != "apikey.created" {
		t.Fatalf("audit newest: %+v", page)
	}
	c.fails(exitUsage, "", nil, []string{"audit", "--since", "last tuesday"}, "--since", "RFC 3339")
	c.fails(exitUsage, "", nil, []string{"audit", "--order", "sideways"}, "asc or desc")
	c.fails(exitUsage, "", nil, []string{"audit", "--result", "maybe"}, "VALIDATION_ERROR")
	c.fails(exitUsage, "", nil, []string{"audit", "--follow", "--order", "desc"}, "--follow")

	// --follow: the last event, then new ones as they happen; interrupted,
	// it exits 0.
	cmd, lines, stderr := c.start(in, "audit", "--follow", "--type", "user.", "--limit", "1", "--interval", "50ms", "-o", "json")
	next := func(what string) map[string]any {
		select {
		case l, ok := <-lines:
			var e map[string]any
			if !ok || json.Unmarshal([]byte(l), &e) != nil {
				t.Fatalf("follow, %s: %q (stderr %s)", what, l, stderr.String())
			}
			return e
		case <-time.After(15 * time.Second):
			t.Fatalf("follow, %s: nothing within 15 s (stderr %s)", what, stderr.String())
		}
		return nil
	}
	if e := next("the last event"); e["type"] != "user.role_granted" {
		t.Fatalf("follow, the last event: %v", e)
	}
	carol := in.CreateUser(admin, "carol", "carol-password-1", nil)
	if e := next("a new event"); e["type"] != "user.created" || e["aggregate_id"] != carol {
		t.Fatalf("follow, the new event: %v", e)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("follow, interrupted: %v (stderr %s)", err, stderr.String())
	}

	// access: a tenant, a user, a key, a credential.
	var ta struct {
		Principals []struct{ Name string }
	}
	c.okJSON(&ta, "access", "tenant", "prod", "--permission", "nodes:read")
	if len(ta.Principals) != 3 { // admin, bob, the key
		t.Fatalf("access tenant: %+v", ta)
	}
	if r := c.ok("access", "tenant", "staging", "--permission", "nodes:write"); !strings.Contains(r.stdout, "bob") || !strings.Contains(r.stdout, "user.role_granted") {
		t.Fatalf("access tenant (table): %s", r.stdout)
	}
	var ua struct {
		Name    string
		Tenants []struct{ ID string }
	}
	c.okJSON(&ua, "access", "user", "bob")
	if ua.Name != "bob" || len(ua.Tenants) != 2 {
		t.Fatalf("access user: %+v", ua)
	}
	c.okJSON(&ua, "access", "user", bob, "--at", in.Clock.Now().Format(time.RFC3339Nano))
	c.ok("access", "key", key.String("id"))
	in.Do("DELETE", "/api/v1/api-keys/"+key.String("id"), admin, nil)
	var check struct {
		Kind   string
		Usable bool
		Reason string
	}
	r := c.run("", []string{"INFRACAST_CREDENTIAL=" + key.String("key")}, "access", "check", "-o", "json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &check) != nil || check.Kind != "api_key" || check.Usable || check.Reason != "revoked" {
		t.Fatalf("access check: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := c.run(admin+"\n", nil, "access", "check"); r.code != 0 || !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), "usable: yes") {
		t.Fatalf("access check, token on stdin: %d %s %s", r.code, r.stdout, r.stderr)
	}
	c.fails(exitUsage, "", nil, []string{"access", "tenant", "prod", "--at", "2999-01-01T00:00:00Z"}, "VALIDATION_ERROR")
	c.fails(exitUsage, "", nil, []string{"access", "tenant", "prod", "--permission", "nodes:fly"}, "VALIDATION_ERROR")
	c.fails(exitNotFound, "", nil, []string{"access", "user", "nobody"}, `no user named "nobody"`)
}

// TestCLILoginMFA: a user with a second factor logs in with the CLI: the
// code from --code or INFRACAST_MFA_CODE (a TOTP or a recovery code) goes
// to POST /api/v1/auth/token/mfa; without one and without a terminal, exit 4
// with a one-line message saying how to give it. Neither the MFA token nor
// the code is ever printed. (The terminal prompt: cli_pty_linux_test.go.)
func TestCLILoginMFA(t *testing.T) {
	t.Parallel()
	in := Start(t)
	c := newCLI(t, in)
	admin := in.AdminToken()
	in.CreateUser(admin, "bob", "bob-password-1", map[string]string{"prod": "viewer"})
	secret, recovery := enrollTOTP(t, in, in.Login("bob", "bob-password-1").String("token"))
	pw := []string{"INFRACAST_PASSWORD=bob-password-1"}
	login := []string{"--url", in.URL, "login", "--username", "bob"}
	noSecrets := func(what string, r cliRun, code string) {
		t.Helper()
		for _, w := range strings.Fields(r.stdout + r.stderr) {
			if len(w) > 40 || (code != "" && strings.Contains(w, code)) {
				t.Fatalf("%s printed a token or the code (%q): %s%s", what, w, r.stdout, r.stderr)
			}
		}
	}

	// No code, standard input not a terminal: exit 4, how to give it.
	c.fails(exitForbidden, "", pw, login, "MFA_REQUIRED", "--code", "INFRACAST_MFA_CODE")
	noSecrets("login without a code", c.run("", pw, login...), "")
	if _, err := os.Stat(filepath.Join(c.home, "infracast", "credentials.json")); err == nil {
		t.Fatal("a login without its second factor wrote the credentials file")
	}
	// A wrong code: refused (401), nothing stored.
	c.fails(exitUnauthorized, "", pw, append(login, "--code", "000000"), "UNAUTHORIZED")
	c.fails(exitUsage, "", pw, append(login, "--code", " "), "--code")

	// --code, a TOTP code of a step after the one that confirmed it.
	in.Clock.Advance(90 * time.Second)
	code := totpAt(t, secret, in.Clock.Now())
	r := c.run("", pw, append(login, "--code", code)...)
	if r.code != 0 || !strings.Contains(r.stdout, "Logged in to "+in.URL+" as bob") {
		t.Fatalf("login --code: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	noSecrets("login --code", r, code)
	if r := c.run("", nil, "whoami", "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"username": "bob"`) {
		t.Fatalf("whoami after an MFA login: %d %s %s", r.code, r.stdout, r.stderr)
	}
	first := c.stored()["refresh_token"]

	// INFRACAST_MFA_CODE, a recovery code (any spelling the service takes).
	r = c.run("", append(pw, "INFRACAST_MFA_CODE="+strings.ToLower(recovery[0])), append(login, "-o", "json")...)
	if r.code != 0 || !strings.Contains(r.stdout, `"username": "bob"`) {
		t.Fatalf("login with INFRACAST_MFA_CODE: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	noSecrets("login with INFRACAST_MFA_CODE", r, recovery[0])
	if c.stored()["refresh_token"] == first {
		t.Fatal("the login with a recovery code did not store its session")
	}
	// The recovery code is spent.
	c.fails(exitUnauthorized, "", append(pw, "INFRACAST_MFA_CODE="+recovery[0]), login, "UNAUTHORIZED")
}

// TestCLILoginEnrollmentRequired: a tenant policy that requires a second
// factor refuses the login of a user without one with 403
// MFA_ENROLLMENT_REQUIRED: exit 4, as every 403, with what the user can do
// (the service's message names an enrollment_token the CLI never shows).
func TestCLILoginEnrollmentRequired(t *testing.T) {
	t.Parallel()
	in := Start(t)
	c := newCLI(t, in)
	admin := in.AdminToken()
	in.CreateUser(admin, "carol", "carol-password-1", map[string]string{"acme": "viewer"})
	expectStatus(t, "acme requires MFA", in.Do("PUT", "/api/v1/admin/mfa/policy/acme", admin, map[string]bool{"required": true}), http.StatusOK)
	c.fails(exitForbidden, "", []string{"INFRACAST_PASSWORD=carol-password-1"}, []string{"login", "--username", "carol"},
		"MFA_ENROLLMENT_REQUIRED", in.URL+"/login", "then log in again")
	if r := c.run("", []string{"INFRACAST_PASSWORD=carol-password-1"}, "login", "--username", "carol"); strings.Contains(r.stderr, "enrollment_token") {
		t.Fatalf("the message names a token the CLI does not show: %q", r.stderr)
	}
}

// TestCLIErrorsHaveOnePrefix: errors of the Go client (a bad URL, the
// service unreachable) are printed with the "infracast: " prefix once.
func TestCLIErrorsHaveOnePrefix(t *testing.T) {
	t.Parallel()
	in := Start(t)
	c := newCLI(t, in)
	pw := []string{"INFRACAST_PASSWORD=" + AdminPassword}
	closed := "http://127.0.0.1:1" // nothing listens on port 1
	for _, f := range []struct {
		code int
		env  []string
		args []string
		msgs []string
	}{
		{exitUsage, pw, []string{"--url", "not-a-url", "login", "--username", "admin"}, []string{`infracast: base URL "not-a-url": want http(s)://`}},
		{exitFailure, pw, []string{"--url", closed, "login", "--username", "admin"}, []string{"infracast: POST /api/v1/auth/token:", "connection refused"}},
		{exitFailure, []string{"INFRACAST_TOKEN=x"}, []string{"--url", closed, "whoami"}, []string{"infracast: GET /api/v1/auth/me:", "connection refused"}},
	} {
		c.fails(f.code, "", f.env, f.args, f.msgs...) // fails checks the one prefix
	}
}

// TestCLITokenUsesTheServiceURLOrder: with INFRACAST_TOKEN the service URL
// is, as without it, --url, else INFRACAST_URL, else the last login's.
func TestCLITokenUsesTheServiceURLOrder(t *testing.T) {
	t.Parallel()
	in := Start(t)
	c := newCLI(t, in)
	admin := in.AdminToken()
	key := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "cli-url", "tenants": []string{"prod"}, "permissions": []string{"nodes:read"}}).String("key")
	tok := []string{"INFRACAST_TOKEN=" + key}
	noURL := []string{"INFRACAST_URL="}
	closed := "http://127.0.0.1:1"

	// Nothing stored, no URL: the key alone does not say where to go.
	c.fails(exitUsage, "", append(noURL, tok...), []string{"whoami"}, "no service URL", "--url")
	// The last login's URL.
	c.login()
	var me struct{ Type, Name string }
	if r := c.run("", append(noURL, tok...), "whoami", "-o", "json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &me) != nil || me.Type != "apikey" || me.Name != "cli-url" {
		t.Fatalf("INFRACAST_TOKEN with the last login's URL: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// --url, and INFRACAST_URL, before it.
	c.fails(exitFailure, "", append(noURL, tok...), []string{"--url", closed, "whoami"}, "connection refused")
	c.fails(exitFailure, "", append([]string{"INFRACAST_URL=" + closed}, tok...), []string{"whoami"}, "connection refused")
}

// TestCLIServiceURLChecked: a URL that is not http(s)://… is refused (exit
// 2) by every command as login refuses it, whichever way it came; without
// any URL nor a stored login a command is not logged in (exit 3) and says
// how to log in, and login needs a URL (exit 2).
func TestCLIServiceURLChecked(t *testing.T) {
	t.Parallel()
	in := Start(t)
	c := newCLI(t, in)
	noURL := []string{"INFRACAST_URL="}
	pw := []string{"INFRACAST_PASSWORD=" + AdminPassword}
	loginHint := "infracast --url URL login --username NAME"

	for _, bad := range []string{"not-a-url", "ftp://x", "localhost:8080"} {
		msg := fmt.Sprintf(`base URL %q: want http(s)://host[:port][/path]`, bad)
		c.fails(exitUsage, "", pw, []string{"--url", bad, "login", "--username", "admin"}, msg)
		for _, args := range [][]string{{"users", "list"}, {"whoami"}, {"logout"}, {"keys", "list"}, {"signing-keys", "list"}, {"audit"}} {
			c.fails(exitUsage, "", nil, append([]string{"--url", bad}, args...), msg)
			c.fails(exitUsage, "", []string{"INFRACAST_URL=" + bad}, args, msg)
			c.fails(exitUsage, "", []string{"INFRACAST_TOKEN=x"}, append([]string{"--url", bad}, args...), msg)
		}
	}

	// Nothing stored, no URL.
	c.fails(exitUnauthorized, "", noURL, []string{"whoami"}, "not logged in", loginHint)
	c.fails(exitUnauthorized, "", noURL, []string{"logout"}, "not logged in", loginHint)
	c.fails(exitUsage, "", append(noURL, pw...), []string{"login", "--username", "admin"}, "no service URL", "--url")
	// After a logout, the same.
	c.login()
	c.ok("whoami")
	c.ok("logout")
	c.fails(exitUnauthorized, "", noURL, []string{"whoami"}, "not logged in", loginHint)
}

// TestCLIListsPrintTheAPIShapes: -o json of every list prints what the API
// answers: the same top-level fields (the wrapper: {"users":[…]},
// {"signing_keys":[…]}, …) and the same fields in each entry.
func TestCLIListsPrintTheAPIShapes(t *testing.T) {
	t.Parallel()
	in := Start(t)
	c := newCLI(t, in)
	c.login()
	admin := in.AdminToken()
	adminID := in.Do("GET", "/api/v1/auth/me", admin, nil).String("id")
	in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "k", "tenants": []string{"prod"}, "permissions": []string{"nodes:read"}})
	issuer := "http://" + freeAddr(t)
	if r := c.run("", []string{"INFRACAST_CLIENT_SECRET=s3cret-s3cret"}, "sso", "configure", "oidc", "--name", "corp", "--issuer", issuer, "--client-id", "c"); r.code != 0 {
		t.Fatalf("sso configure: %d %s", r.code, r.stderr)
	}
	for _, l := range []struct {
		cli  []string
		path string
		list string
	}{
		{[]string{"users", "list"}, "/api/v1/users", "users"},
		{[]string{"users", "sessions", adminID}, "/api/v1/users/" + adminID + "/sessions", "sessions"},
		{[]string{"keys", "list"}, "/api/v1/api-keys", "api_keys"},
		{[]string{"sso", "list"}, "/api/v1/admin/sso", "providers"},
		{[]string{"signing-keys", "list"}, "/api/v1/admin/signing-keys", "signing_keys"},
		{[]string{"audit", "--limit", "3"}, "/api/v1/audit/events?limit=3", "events"},
	} {
		api := in.Do("GET", l.path, admin, nil)
		expectStatus(t, l.path, api, http.StatusOK)
		var cli map[string]any
		c.okJSON(&cli, l.cli...)
		if got, want := strings.Join(keys(cli), ","), strings.Join(keys(api.JSON), ","); got != want {
			t.Errorf("%v -o json: fields %s, the API's %s\n%s", l.cli, got, want, api.Raw)
			continue
		}
		cl, _ := cli[l.list].([]any)
		al, _ := api.JSON[l.list].([]any)
		if len(cl) == 0 || len(cl) != len(al) {
			t.Errorf("%v -o json: %d entries in %q, the API %d", l.cli, len(cl), l.list, len(al))
			continue
		}
		ce, _ := cl[0].(map[string]any)
		ae, _ := al[0].(map[string]any)
		if got, want := strings.Join(keys(ce), ","), strings.Join(keys(ae), ","); got != want {
			t.Errorf("%v -o json: an entry's fields %s, the API's %s", l.cli, got, want)
		}
	}
}
