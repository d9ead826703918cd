package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/http/service"
)

// Exact error bodies of the contract.
const (
	bodyUnauthorized = `{"error":{"code":"UNAUTHORIZED","message":"Invalid or expired token"}}`
	bodyForbidden    = `{"error":{"code":"FORBIDDEN","message":"Insufficient permissions"}}`
	bodyNoUpstream   = `{"error":{"code":"NOT_FOUND","message":"No upstream is configured for tenant resources"}}`
)

// request is one HTTP request with full control over headers and body.
type request struct {
	Method, Path, Token string
	ContentType         string // sent when not empty
	Header              map[string]string
	Body                []byte
}

// send performs r against base. Unlike Instance.Do it never touches testing.T,
// so it is safe to call from any goroutine.
func send(base string, r request) (Response, error) {
	for attempt := 1; ; attempt++ {
		res, err := sendWith(client, base, r)
		// A body over the limit is answered 413 and the connection closed
		// before the body is read, so the kernel may reset it under the
		// client — before the client has read the 413 that was sent (a
		// fresh-clone CI run: "connection reset by peer" in
		// TestEdgeHeadersAndNoCORS). Such a request is sent again, a few
		// times; no other request is.
		if err == nil || len(r.Body) <= 64<<10 || attempt == 5 || !errors.Is(err, syscall.ECONNRESET) {
			return res, err
		}
	}
}

// sendWith is send without its retry, through c.
func sendWith(c *http.Client, base string, r request) (Response, error) {
	var rd io.Reader
	if r.Body != nil {
		rd = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequest(r.Method, base+r.Path, rd)
	if err != nil {
		return Response{}, err
	}
	if r.ContentType != "" {
		req.Header.Set("Content-Type", r.ContentType)
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return Response{}, err
	}
	out := Response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	_ = json.Unmarshal(raw, &out.JSON)
	return out, nil
}

// jsonBody encodes v for send.
func jsonBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// doReq is send for the test goroutine: a transport error fails the test.
func doReq(t testing.TB, in *Instance, r request) Response {
	t.Helper()
	res, err := send(in.URL, r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	return res
}

// verify asks the forward-auth endpoint whether token may do method on uri.
func verify(t testing.TB, in *Instance, token, method, uri string) Response {
	t.Helper()
	return doReq(t, in, request{Method: "GET", Path: "/api/v1/auth/verify", Token: token,
		Header: map[string]string{"X-Forwarded-Method": method, "X-Forwarded-Uri": uri}})
}

// expectStatus fails unless r has the status.
func expectStatus(t testing.TB, what string, r Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, status, r.Raw)
	}
}

// expectBody fails unless r has the status and exactly the body.
func expectBody(t testing.TB, what string, r Response, status int, body string) {
	t.Helper()
	if r.Status != status || string(r.Raw) != body {
		t.Fatalf("%s: got %d %s\nwant %d %s", what, r.Status, r.Raw, status, body)
	}
}

// expectError fails unless r is a contract-shaped error with the status and
// code, whose message contains every one of parts.
func expectError(t testing.TB, what string, r Response, status int, code string, parts ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, status, r.Raw)
	}
	var body struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.Raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Error == nil || body.Error.Code == nil || body.Error.Message == nil {
		t.Fatalf("%s: body is not {\"error\":{\"code\",\"message\"}}: %s (%v)", what, r.Raw, err)
	}
	if *body.Error.Code != code {
		t.Fatalf("%s: code %q, want %q; body %s", what, *body.Error.Code, code, r.Raw)
	}
	if *body.Error.Message == "" {
		t.Fatalf("%s: empty message", what)
	}
	for _, p := range parts {
		if !strings.Contains(*body.Error.Message, p) {
			t.Fatalf("%s: message %q does not mention %q", what, *body.Error.Message, p)
		}
	}
}

// keys returns the sorted keys of a JSON object.
func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ctxFor is a context bounded for test-side store calls.
func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// head returns the stream head sequence.
func head(t testing.TB, in *Instance) uint64 {
	t.Helper()
	h, err := in.Svc.Store.Head(ctxFor(t))
	if err != nil {
		t.Fatalf("stream head: %v", err)
	}
	return h
}

// storedEvents reads every envelope of the stream, in order.
func storedEvents(t testing.TB, svc *service.Service) []events.Envelope {
	t.Helper()
	ctx := ctxFor(t)
	h, err := svc.Store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := svc.Store.JetStream().Stream(ctx, svc.Store.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]events.Envelope, 0, h)
	for seq := uint64(1); seq <= h; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("read event %d: %v", seq, err)
		}
		var env events.Envelope
		if err := json.Unmarshal(m.Data, &env); err != nil {
			t.Fatalf("event %d: %v", seq, err)
		}
		out = append(out, env)
	}
	return out
}

// countEvents counts envelopes of a type, for one aggregate ID ("" for any).
func countEvents(envs []events.Envelope, typ, aggregateID string) int {
	n := 0
	for _, e := range envs {
		if e.Type == typ && (aggregateID == "" || e.AggregateID == aggregateID) {
			n++
		}
	}
	return n
}

// sessionOf returns the session ID behind a refresh token.
func sessionOf(t testing.TB, in *Instance, refreshToken string) string {
	t.Helper()
	sid, ok := in.Svc.Model.SessionByRefreshHash(commands.HashToken(refreshToken))
	if !ok {
		t.Fatal("no session for refresh token")
	}
	return sid
}

// refresh posts /api/v1/auth/refresh.
func refresh(t testing.TB, in *Instance, refreshToken string) Response {
	t.Helper()
	return in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refreshToken})
}

// me gets /api/v1/auth/me.
func me(t testing.TB, in *Instance, token string) Response {
	t.Helper()
	return in.Do("GET", "/api/v1/auth/me", token, nil)
}

// forcePassword sets a user's password by appending a sealed
// user.password_changed event straight to the store, bypassing the API's
// password policy. Test fixture only: the seed's examples log in as
// admin/secret, and "secret" is shorter than the policy's 8 characters, so no
// API call can set it.
func forcePassword(t testing.TB, in *Instance, username, password string) {
	t.Helper()
	pw, err := commands.NewPasswords(CheapHash)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := pw.Hash(context.Background(), commands.Claimant{}, password)
	if err != nil {
		t.Fatal(err)
	}
	forcePasswordHash(t, in, username, hash)
}

// forcePasswordHash sets a user's password hash (an argon2id PHC string) as
// forcePassword does: to give an account a hash made another way, such as
// by an older build.
func forcePasswordHash(t testing.TB, in *Instance, username, hash string) {
	t.Helper()
	ctx := ctxFor(t)
	sealed, err := dataDirSealer(t, in.Config.DataDir).Seal("password_hash", hash)
	if err != nil {
		t.Fatal(err)
	}
	u, seq, ok := in.Svc.Model.UserByName(username)
	if !ok {
		t.Fatalf("no user %q", username)
	}
	data, err := events.Encode(commands.NewID("evt"), domain.AggregateUser, u.ID, u.Version+1, in.Clock.Now(),
		events.Meta{Actor: events.System}, domain.UserPasswordChanged{UserID: u.ID, PasswordHashSealed: sealed})
	if err != nil {
		t.Fatal(err)
	}
	last, err := in.Svc.Store.Append(ctx, events.Message{
		Subject: events.Subject(domain.AggregateUser, u.ID), ExpectSeq: seq, ID: commands.NewID("cmd"), Data: data,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Svc.Runner.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
}

// rawRequest sends one request over a fresh TCP connection, writing it whole
// (in the background) while reading the answer. A server that refuses a body by
// its Content-Length answers before reading it; a client that stops at the
// first write error (as net/http's does) may see a reset instead of that answer.
func rawRequest(t testing.TB, in *Instance, r request) Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n",
		r.Method, r.Path, strings.TrimPrefix(in.URL, "http://"), len(r.Body))
	if r.ContentType != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", r.ContentType)
	}
	if r.Token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", r.Token)
	}
	b.WriteString("\r\n")
	b.Write(r.Body)
	go func() { _, _ = conn.Write(b.Bytes()) }()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s (raw): %v", r.Method, r.Path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := Response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	_ = json.Unmarshal(raw, &out.JSON)
	return out
}

// missingTool skips a test that needs a program this machine lacks — except
// in CI (the CI environment variable is set, as .ci/run does), where a test
// that did not run must not pass: there it fails.
func missingTool(t *testing.T, tool string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed: CI must run this test (.ci/run installs it with apt-get)", tool)
	}
	t.Skipf("%s is not installed (.ci/run installs it)", tool)
}

// dataDirSealer is the sealer of the master key a data folder holds
// (master.key), as the service that wrote it has it.
func dataDirSealer(t testing.TB, dir string) *events.Sealer {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := service.DecodeKey(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := events.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return sealer
}
