package http

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestSSOFailuresLogNoEchoedSecret: an IdP (or a proxy before it) that
// echoes the request in its answer must not get the client secret or the
// user's access token at the IdP into the log — through the token
// endpoint's error code (free text) or the userinfo endpoint's body, which
// go-oidc puts in its error (outside check 19f).
func TestSSOFailuresLogNoEchoedSecret(t *testing.T) {
	const secret, accessToken = "CANARYsecret-xyz", "CANARYaccess-token-abc"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/token":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": string(body) + " " + r.Header.Get("Authorization")})
		case "/token-registered":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": string(body)})
		case "/userinfo":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "echo auth="+r.Header.Get("Authorization"))
		}
	}))
	defer echo.Close()
	ctx := context.Background()

	for _, path := range []string{"/token", "/token-registered"} {
		conf := oauth2.Config{ClientID: "c", ClientSecret: secret, Endpoint: oauth2.Endpoint{TokenURL: echo.URL + path, AuthStyle: oauth2.AuthStyleInParams}}
		_, err := conf.Exchange(ctx, "c0de")
		if err == nil || !strings.Contains(err.Error(), secret) {
			t.Fatalf("%s: the echo did not carry the secret back: %v", path, err)
		}
		answer, logged := exchangeError(err)
		if answer != errSSOFailed || logged == nil {
			t.Fatalf("%s: answered %v, logged %v; want the login failed (an OAuth refusal, 4xx)", path, answer, logged)
		}
		if strings.Contains(logged.Error(), "CANARY") {
			t.Fatalf("%s: the log carries the secret: %v", path, logged)
		}
		t.Logf("%s: logged %q", path, logged)
	}
	if _, logged := exchangeError(&oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, ErrorCode: "invalid_client"}); !strings.Contains(logged.Error(), "400 invalid_client") {
		t.Fatalf("a registered code is logged as it is: %v", logged)
	}

	prov := (&oidc.ProviderConfig{IssuerURL: echo.URL, UserInfoURL: echo.URL + "/userinfo"}).NewProvider(ctx)
	_, err := prov.UserInfo(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken, TokenType: "Bearer"}))
	if err == nil || !strings.Contains(err.Error(), accessToken) {
		t.Fatalf("go-oidc's error no longer carries the body; this test's premise changed: %v", err)
	}
	logged := userinfoError(err)
	if strings.Contains(logged.Error(), "CANARY") || !strings.Contains(logged.Error(), "answered 500 ") {
		t.Fatalf("userinfo logged %q: want the status without the body", logged)
	}
	for _, kept := range []error{errorString("oidc: failed to decode userinfo: unexpected end of JSON input"),
		&url.Error{Op: "Get", URL: "https://idp.example/userinfo", Err: errorString("dial tcp: connection refused")}} {
		if got := userinfoError(kept); got != kept {
			t.Fatalf("go-oidc's own error %q became %q", kept, got)
		}
	}
}

// TestUserinfoStatusLinesLogNoEcho: a status line without a reason phrase
// ("HTTP/1.1 401": go-oidc's error is then "401: <body>"), an unregistered
// code, or a reason phrase that itself echoes the token — the log keeps the
// code alone (re-check 19r2).
func TestUserinfoStatusLinesLogNoEcho(t *testing.T) {
	const accessToken = "CANARYaccess-token-abc"
	for _, statusLine := range []string{"HTTP/1.1 401", "HTTP/1.1 520", "HTTP/1.1 401 Bearer " + accessToken, "HTTP/1.1 500 Internal Server Error"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err != nil {
				return
			}
			body := "echo " + req.Header.Get("Authorization")
			fmt.Fprintf(c, "%s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", statusLine, len(body), body)
		}()
		ctx := context.Background()
		base := "http://" + ln.Addr().String()
		prov := (&oidc.ProviderConfig{IssuerURL: base, UserInfoURL: base + "/userinfo"}).NewProvider(ctx)
		_, err = prov.UserInfo(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken, TokenType: "Bearer"}))
		ln.Close()
		if err == nil || !strings.Contains(err.Error(), accessToken) {
			t.Fatalf("%q: go-oidc's error no longer carries the body; this test's premise changed: %v", statusLine, err)
		}
		logged := userinfoError(err).Error()
		if want := "answered " + statusLine[len("HTTP/1.1 "):][:3] + " "; strings.Contains(logged, "CANARY") || !strings.Contains(logged, want) {
			t.Errorf("%q: logged %q; want the code alone (%q)", statusLine, logged, want)
		}
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
