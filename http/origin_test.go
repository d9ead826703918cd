package http

import "testing"

// TestCanonicalOrigin: origins as browsers send them (outside check 17e:
// an internationalised host was kept percent-encoded, and no browser's
// Origin matched it).
func TestCanonicalOrigin(t *testing.T) {
	for raw, want := range map[string]string{
		"https://auth.example.com":      "https://auth.example.com",
		"HTTPS://Auth.Example.COM:443/": "https://auth.example.com",
		"http://localhost:80":           "http://localhost",
		"http://LocalHost:8080/":        "http://localhost:8080",
		"https://bücher.example":        "https://xn--bcher-kva.example",
		"https://BÜCHER.example:8443":   "https://xn--bcher-kva.example:8443",
		"https://xn--bcher-kva.example": "https://xn--bcher-kva.example",
		"http://[0:0:0:0:0:0:0:1]:8080": "http://[::1]:8080",
		"http://127.0.0.1:8080":         "http://127.0.0.1:8080",
		"http://infracast_auth":         "http://infracast_auth",
		"https://-edge.example.com":     "https://-edge.example.com",
		// Ports and IPv6 as browsers write them (re-check 17r1).
		"https://auth.example.com:0443":   "https://auth.example.com",
		"http://127.0.0.1:018443":         "http://127.0.0.1:18443",
		"http://[::ffff:127.0.0.1]:18443": "http://[::ffff:7f00:1]:18443",
		"http://[2001:DB8:0:0:1:0:0:1]":   "http://[2001:db8::1:0:0:1]",
		"http://[0:0:1:0:0:0:0:0]":        "http://[0:0:1::]",
		"http://[1:0:0:2:0:0:0:3]":        "http://[1:0:0:2::3]",
		"http://[::]:8080":                "http://[::]:8080",
	} {
		got, err := CanonicalOrigin(raw)
		if err != nil || got != want {
			t.Errorf("CanonicalOrigin(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{
		"", "auth.example.com", "ftp://auth.example.com", "https://auth.example.com/path", "https://auth.example.com?a",
		"https://auth.example.com#f", "https://u:p@auth.example.com", "http://127.000.000.001:8080", "http://0x7f.1",
		"http://10.1", "https://xn--zz.example", "https://ex ample.com",
		"https://auth.example.com:99999", "https://auth.example.com:0", "http://[fe80::1%25eth0]:18443",
		"https://*.com", "https://*.example.com", "http://a*b.example", "https://app.example.com,https://b.example",
	} {
		if got, err := CanonicalOrigin(raw); err == nil {
			t.Errorf("CanonicalOrigin(%q) = %q, want an error", raw, got)
		}
	}
}

// TestReturnToAllowlistAsBrowsersWriteIt: an allowlisted origin written
// with an internationalised host, in upper case or with its default port
// allows the return_to a browser produces for it.
func TestReturnToAllowlistAsBrowsersWriteIt(t *testing.T) {
	allow := []string{"https://äpp.example", "https://Other.Example:443/"}
	for _, raw := range []string{"https://xn--pp-uia.example/after", "https://other.example/x", "https://OTHER.example:443/y"} {
		if _, ok := CheckReturnTo(raw, allow); !ok {
			t.Errorf("return_to %q refused with %q", raw, allow)
		}
	}
	for _, raw := range []string{"https://xn--pp-uia.example.evil/after", "http://xn--pp-uia.example/", "https://other.example:8443/"} {
		if _, ok := CheckReturnTo(raw, allow); ok {
			t.Errorf("return_to %q allowed with %q", raw, allow)
		}
	}
}
