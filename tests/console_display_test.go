package tests

import (
	"net/http"
	"strings"
	"testing"
)

// consoleHeaders are the headers docs/console.md says every answer under
// /console carries.
var consoleHeaders = map[string]string{
	"Content-Security-Policy":      "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	"X-Frame-Options":              "DENY",
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Permissions-Policy":           "camera=(), microphone=(), geolocation=(), payment=()",
}

// TestConsoleHeadersOnEveryAnswer: not only the pages and assets but a 404
// of an unknown asset and the 405 of a POST, PUT or DELETE under /console
// carry the console's full set of security headers (outside check 12e: the
// 405 had only the API's default CSP).
func TestConsoleHeadersOnEveryAnswer(t *testing.T) {
	in := Start(t)
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/console", http.StatusOK},
		{"GET", "/console/app.js", http.StatusOK},
		{"HEAD", "/console/", http.StatusOK},
		{"GET", "/console/nothing.js", http.StatusNotFound},
		{"POST", "/console/", http.StatusMethodNotAllowed},
		{"POST", "/console", http.StatusMethodNotAllowed},
		{"PUT", "/console/app.js", http.StatusMethodNotAllowed},
		{"DELETE", "/console/users", http.StatusMethodNotAllowed},
	} {
		req, err := http.NewRequest(c.method, in.URL+c.path, strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, res.StatusCode, c.status)
		}
		for name, want := range consoleHeaders {
			if got := res.Header.Get(name); got != want {
				t.Errorf("%s %s (%d): %s %q, want %q", c.method, c.path, res.StatusCode, name, got, want)
			}
		}
		if c.status == http.StatusMethodNotAllowed && res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q, want \"GET, HEAD\"", c.method, c.path, res.Header.Get("Allow"))
		}
	}
}
