package http

import (
	"reflect"
	"testing"

	"github.com/infracast/auth/domain"
)

func TestSSOReturnToRule(t *testing.T) {
	allow := []string{"https://app.example.com", "http://127.0.0.1:3000/"}
	for raw, want := range map[string]bool{
		"/app":                              true,
		"/app?x=1#y":                        true,
		"https://app.example.com/after":     true,
		"http://127.0.0.1:3000/x":           true,
		"":                                  false,
		"//evil":                            false,
		`/\evil`:                            false,
		"/\t/evil":                          false,
		"https://evil":                      false,
		"http://127.0.0.1@evil":             false,
		"https://app.example.com@evil":      false,
		"https://app.example.com.evil.com/": false,
		"http://app.example.com/":           false,
		"javascript:alert(1)":               false,
		"evil.com":                          false,
		"https:evil.com":                    false,
		"http://127.0.0.1:3001/":            false,
	} {
		if _, got := CheckReturnTo(raw, allow); got != want {
			t.Errorf("CheckReturnTo(%q) = %v, want %v", raw, got, want)
		}
	}
}

func TestSSOAzureIssuerAllowlist(t *testing.T) {
	p := domain.SSOProvider{Type: domain.SSOAzure, TenantID: "organizations",
		Issuer: "https://login.microsoftonline.com/organizations/v2.0", AllowedTenants: []string{"t-1"}}
	if err := checkAzureIssuer(p, "https://login.microsoftonline.com/t-1/v2.0", "t-1"); err != nil {
		t.Fatalf("allowed tenant refused: %v", err)
	}
	for _, tc := range [][2]string{
		{"https://login.microsoftonline.com/t-2/v2.0", "t-2"}, // not on the allowlist
		{"https://login.microsoftonline.com/t-2/v2.0", "t-1"}, // issuer of another tenant
		{"https://evil.example.com/t-1/v2.0", "t-1"},          // another issuer
		{"https://login.microsoftonline.com/t-1/v2.0", ""},    // no tid
	} {
		if err := checkAzureIssuer(p, tc[0], tc[1]); err == nil {
			t.Errorf("accepted iss %q tid %q", tc[0], tc[1])
		}
	}
}

// TestParentDomains: the Domain values a tossed cookie may have been set
// with, for the host the browser holds the session's cookies for.
func TestParentDomains(t *testing.T) {
	for host, want := range map[string][]string{
		"auth.corp.example.com":      {"auth.corp.example.com", "corp.example.com", "example.com"},
		"auth.corp.test:8443":        {"auth.corp.test", "corp.test"},
		"Auth.Corp.Test.":            {"auth.corp.test", "corp.test"},
		"127.0.0.1":                  nil,
		"127.0.0.1:8080":             nil,
		"[::1]:8080":                 nil,
		"localhost":                  nil,
		"":                           nil,
		"a.b.c.d.e.f.g.h.i.j.k.test": {"a.b.c.d.e.f.g.h.i.j.k.test", "b.c.d.e.f.g.h.i.j.k.test", "c.d.e.f.g.h.i.j.k.test", "d.e.f.g.h.i.j.k.test", "e.f.g.h.i.j.k.test", "f.g.h.i.j.k.test", "g.h.i.j.k.test", "h.i.j.k.test"},
	} {
		if got := parentDomains(host); !reflect.DeepEqual(got, want) {
			t.Errorf("parentDomains(%q) = %q, want %q", host, got, want)
		}
	}
}
