package console

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

func app(t *testing.T, providers []Provider) *fiber.App {
	t.Helper()
	h, err := New(Options{Providers: func() []Provider { return providers }})
	if err != nil {
		t.Fatal(err)
	}
	a := fiber.New()
	a.Get(Prefix, h.Serve)
	a.Get(Prefix+"/*", h.Serve)
	return a
}

func get(t *testing.T, a *fiber.App, path string, header map[string]string) (int, map[string]string, []byte) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := a.Test(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]string{}
	for k := range res.Header {
		h[k] = res.Header.Get(k)
	}
	return res.StatusCode, h, b
}

// The page carries the providers as a data attribute, escaped: a provider
// name cannot break out of it into markup or script.
func TestIndexProvidersEscaped(t *testing.T) {
	a := app(t, []Provider{{Name: `x"><script>alert(1)</script>`, Label: "Corp & Co", URL: "/api/v1/auth/sso/corp/login?return_to=%2Fconsole"}})
	for _, path := range []string{"/console", "/console/", "/console/users/deep/link"} {
		status, h, body := get(t, a, path, nil)
		if status != 200 || !strings.HasPrefix(h["Content-Type"], "text/html") {
			t.Fatalf("%s: %d %v", path, status, h)
		}
		if bytes.Contains(body, []byte("<script>alert")) || !bytes.Contains(body, []byte(`data-sso="[{&#34;name&#34;:&#34;x\&#34;\u003e\u003cscript\u003e`)) {
			t.Fatalf("%s: providers not escaped into the attribute:\n%s", path, body)
		}
		if !bytes.Contains(body, []byte(`<script defer src="/console/app.js"></script>`)) {
			t.Fatalf("%s: no app script:\n%s", path, body)
		}
	}
}

// The page carries the service's refresh rules (rotation, the reuse
// interval in milliseconds) for the console to keep its retries within.
func TestIndexRefreshRules(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{RefreshRotation: true, RefreshReuseInterval: 5 * time.Second}, `data-refresh-rotation="true" data-refresh-reuse-ms="5000"`},
		{Options{}, `data-refresh-rotation="false" data-refresh-reuse-ms="0"`},
	} {
		h, err := New(tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		a := fiber.New()
		a.Get(Prefix, h.Serve)
		status, _, body := get(t, a, "/console", nil)
		if status != 200 || !bytes.Contains(body, []byte(tc.want)) {
			t.Fatalf("%+v: %d, want %s in:\n%s", tc.opts, status, tc.want, body)
		}
	}
}

// Assets: their type, an ETag (304 when it matches), gzip when accepted;
// an unknown file is 404, not the page.
func TestAssets(t *testing.T) {
	a := app(t, nil)
	status, h, plain := get(t, a, "/console/app.js", nil)
	if status != 200 || !strings.Contains(h["Content-Type"], "javascript") || h["Etag"] == "" || h["Content-Encoding"] != "" {
		t.Fatalf("app.js: %d %v", status, h)
	}
	status, h2, zipped := get(t, a, "/console/app.js", map[string]string{"Accept-Encoding": "gzip, br"})
	if status != 200 || h2["Content-Encoding"] != "gzip" || len(zipped) >= len(plain) {
		t.Fatalf("app.js gzip: %d %v, %d bytes of %d", status, h2, len(zipped), len(plain))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, plain) {
		t.Fatalf("gzip body differs (%v)", err)
	}
	if status, _, _ := get(t, a, "/console/app.js", map[string]string{"If-None-Match": h["Etag"]}); status != 304 {
		t.Fatalf("If-None-Match: %d, want 304", status)
	}
	// The gzip answer is another representation: its own strong ETag.
	if h2["Etag"] == h["Etag"] || h2["Etag"] == "" {
		t.Fatalf("plain and gzip answers share the ETag %q", h["Etag"])
	}
	// If-None-Match matches weakly, in a list, and "*" (RFC 9110 §13.1.2;
	// an outside check saw only the exact string answered 304).
	for _, inm := range []string{"W/" + h["Etag"], `"x", ` + h["Etag"], "*", ` "x" ,W/` + h["Etag"] + " "} {
		if status, _, _ := get(t, a, "/console/app.js", map[string]string{"If-None-Match": inm}); status != 304 {
			t.Errorf("If-None-Match %s: %d, want 304", inm, status)
		}
	}
	if status, _, _ := get(t, a, "/console/app.js", map[string]string{"If-None-Match": h2["Etag"]}); status != 200 {
		t.Errorf("If-None-Match of the gzip answer, asking for the plain one: %d, want 200", status)
	}
	if status, _, _ := get(t, a, "/console/app.js", map[string]string{"If-None-Match": h2["Etag"], "Accept-Encoding": "gzip"}); status != 304 {
		t.Errorf("If-None-Match of the gzip answer: %d, want 304", status)
	}
	for _, inm := range []string{`"x"`, `W/"x"`, h["Etag"][:len(h["Etag"])-1]} {
		if status, _, _ := get(t, a, "/console/app.js", map[string]string{"If-None-Match": inm}); status != 200 {
			t.Errorf("If-None-Match %s: %d, want 200", inm, status)
		}
	}
	if status, _, _ := get(t, a, "/console/app.css", nil); status != 200 {
		t.Fatalf("app.css: %d", status)
	}
	for _, p := range []string{"/console/nope.js", "/console/assets/x", "/console/index.html"} {
		if status, _, _ := get(t, a, p, nil); status != 404 {
			t.Fatalf("%s: %d, want 404", p, status)
		}
	}
}

// The whole console stays within its budget: 300 KiB gzip.
func TestSizeBudget(t *testing.T) {
	sizes, err := Sizes()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for name, s := range sizes {
		t.Logf("%s: %d bytes, %d gzip", name, s[0], s[1])
		total += s[1]
	}
	if _, ok := sizes["app.js"]; !ok || total > 300<<10 {
		t.Fatalf("assets %v: %d bytes gzip in all (budget 300 KiB)", sizes, total)
	}
}
