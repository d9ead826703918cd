package http

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/idna"
)

// hostNames maps a host name as the WHATWG URL standard has browsers do
// (UTS #46, no transitional mapping, hyphens and underscores allowed): in
// lower case, an internationalised name in its ASCII (punycode) form.
var hostNames = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.StrictDomainName(false), idna.CheckHyphens(false))

// CanonicalOrigin is the origin raw names as browsers send it (the Origin
// header) and WebAuthn takes it: scheme and host in lower case, an
// internationalised host name in its ASCII form (xn--…), an IP address as
// browsers write it, no default port, no path. raw must be an http(s)
// origin: scheme and host, no credentials, query or fragment, at most a
// trailing slash. A public URL configured as https://bücher.example was
// compared as https://b%C3%BCcher.example with the Origin of a page opened
// at it (https://xn--bcher-kva.example), refusing every browser sign-in,
// and was no valid relying party ID (passkeys answered 500) (outside check
// 17e); http://LocalHost:8080 and https://auth.example.com:443 likewise
// (re-check 14r3).
func CanonicalOrigin(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil {
		return "", errors.New("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "https" && scheme != "http") || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return "", errors.New("not an http(s) origin: scheme and host only")
	}
	host, port := u.Hostname(), u.Port()
	if ip := net.ParseIP(host); ip != nil {
		if strings.Contains(host, ":") {
			host = "[" + ip.String() + "]"
		} else {
			host = ip.String()
		}
	} else {
		ascii, err := hostNames.ToASCII(host)
		if err != nil || ascii == "" {
			return "", fmt.Errorf("host %q is no host name", host)
		}
		if endsInNumber(ascii) {
			// 127.000.000.001, 0x7f.1: an IPv4 address a browser writes
			// otherwise (127.0.0.1), so its Origin would never match.
			return "", fmt.Errorf("host %q: write the IP address as browsers show it (like 127.0.0.1)", host)
		}
		host = ascii
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// endsInNumber reports whether a browser would read host as an IPv4
// address (the WHATWG URL standard's "ends in a number"): its last label
// (a trailing dot aside) all digits, or 0x and hexadecimal digits.
func endsInNumber(host string) bool {
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := labels[len(labels)-1]
	if last == "" {
		return false
	}
	if strings.Trim(last, "0123456789") == "" {
		return true
	}
	hex, ok := strings.CutPrefix(strings.ToLower(last), "0x")
	return ok && strings.Trim(hex, "0123456789abcdef") == ""
}
