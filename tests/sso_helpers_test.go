package tests

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/http/service"
)

// WithSSOReturnTo sets the return_to origin allowlist.
func WithSSOReturnTo(origins ...string) Option {
	return func(c *service.Config) { c.SSOReturnToAllowlist = origins }
}

// browser is an HTTP client with a cookie jar that follows redirects, except
// (when stopAt is set) to a URL whose path ends with stopAt.
type browser struct {
	t      *testing.T
	c      *http.Client
	stopAt string
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t}
	b.c = &http.Client{Jar: jar, Timeout: 30 * time.Second}
	b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 20 {
			return http.ErrUseLastResponse
		}
		if b.stopAt != "" && strings.HasSuffix(req.URL.Path, b.stopAt) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return b
}

// get fetches u and returns the final response (after redirects).
func (b *browser) get(u string) Response {
	b.t.Helper()
	return b.do(mustRequest(b.t, "GET", u, nil))
}

func (b *browser) do(req *http.Request) Response {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := Response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	_ = json.Unmarshal(raw, &out.JSON)
	return out
}

// cookie returns the named cookie the jar would send to u.
func (b *browser) cookie(u, name string) string {
	pu, _ := url.Parse(u)
	for _, c := range b.c.Jar.Cookies(pu) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func mustRequest(t *testing.T, method, u string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// location returns the Location header of a redirect.
func location(t *testing.T, r Response) string {
	t.Helper()
	if r.Status/100 != 3 {
		t.Fatalf("want a redirect, got %d %s", r.Status, r.Raw)
	}
	return r.Header.Get("Location")
}

func mustStatus(t *testing.T, r Response, status int, what string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.Status, status, r.Raw)
	}
}

func mustError(t *testing.T, r Response, status int, code, what string) {
	t.Helper()
	if r.Status != status || r.ErrorCode() != code {
		t.Fatalf("%s: got %d %s, want %d %s", what, r.Status, r.Raw, status, code)
	}
}

type serviceConfig = service.Config

type eventsRecord = events.Record

// selfSigned returns an RSA key and a self-signed certificate valid from
// notBefore to notAfter.
func selfSigned(t *testing.T, cn string, notBefore, notAfter time.Time) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func expiredCertPEM(t *testing.T) string {
	_, c := selfSigned(t, "expired", time.Now().AddDate(-2, 0, 0), time.Now().AddDate(-1, 0, 0))
	return certPEM(c)
}
