package http

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
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
	if strings.Contains(host, ":") { // an IPv6 literal
		a, err := netip.ParseAddr(host)
		if err != nil || a.Zone() != "" || !a.Is6() {
			return "", fmt.Errorf("host [%s] is no IPv6 address a browser takes (no zone)", host)
		}
		host = "[" + ipv6String(a) + "]"
	} else if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	} else {
		ascii, err := hostNames.ToASCII(host)
		if err != nil || ascii == "" || strings.Trim(ascii, "abcdefghijklmnopqrstuvwxyz0123456789.-_") != "" {
			// Letters, digits, dots, hyphens and underscores only: a "*"
			// would be a wildcard to the CORS middleware (re-check 17r4:
			// INFRACAST_CORS_ORIGINS=https://*.com allowed every .com).
			return "", fmt.Errorf("host %q is no host name", host)
		}
		if endsInNumber(ascii) {
			// 127.000.000.001, 0x7f.1: an IPv4 address a browser writes
			// otherwise (127.0.0.1), so its Origin would never match.
			return "", fmt.Errorf("host %q: write the IP address as browsers show it (like 127.0.0.1)", host)
		}
		host = ascii
	}
	if port != "" {
		// As browsers write it: a number from 1 to 65535, without
		// leading zeros (":0443" is the default port, left out).
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("port %q: want a number from 1 to 65535", port)
		}
		port = strconv.Itoa(n)
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// ipv6String writes a as the WHATWG URL standard has browsers write an
// IPv6 host: eight hexadecimal pieces in lower case, the first longest run
// of two or more zero pieces as "::", never a dotted IPv4 tail
// (::ffff:7f00:1, where netip writes ::ffff:127.0.0.1).
func ipv6String(a netip.Addr) string {
	b := a.As16()
	var pieces [8]uint16
	for i := range pieces {
		pieces[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	start, length := -1, 1
	for i := 0; i < 8; {
		if pieces[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && pieces[j] == 0 {
			j++
		}
		if j-i > length {
			start, length = i, j-i
		}
		i = j
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if i == start {
			sb.WriteString("::")
			i += length - 1
			continue
		}
		if sb.Len() > 0 && !strings.HasSuffix(sb.String(), ":") {
			sb.WriteByte(':')
		}
		sb.WriteString(strconv.FormatUint(uint64(pieces[i]), 16))
	}
	return sb.String()
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
