package http

import (
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// TrustedProxies is a list of address ranges whose X-Forwarded-For is believed.
type TrustedProxies []netip.Prefix

func (tp TrustedProxies) contains(a netip.Addr) bool {
	for _, p := range tp {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address of the client: the TCP peer, unless the peer is a
// trusted proxy, in which case the right-most X-Forwarded-For entry that is
// not itself a trusted proxy. A client can prepend anything to the header, so
// only entries added by trusted proxies (the right end) are believed.
func (s *Server) clientAddr(c *fiber.Ctx) netip.Addr {
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	peer = peer.Unmap()
	if len(s.cfg.TrustedProxies) == 0 || !s.cfg.TrustedProxies.contains(peer) {
		return peer
	}
	return rightmostUntrusted(peer, c.Request().Header.PeekAll(fiber.HeaderXForwardedFor), s.cfg.TrustedProxies)
}

// rightmostUntrusted walks X-Forwarded-For from the right (the nearest hop)
// and returns the first address that is not a trusted proxy. An entry is an
// address, also with a port or in brackets as some proxies write it
// ("203.0.113.7:51234", "[2001:db8::7]:443", "[2001:db8::7]": an Azure
// application gateway writes the port; each of those made the proxy itself
// the client, outside check 16t). A malformed entry stops the walk: what
// lies left of it cannot be trusted, so the last trusted hop is the answer.
func rightmostUntrusted(peer netip.Addr, headers [][]byte, trusted TrustedProxies) netip.Addr {
	client := peer
	for h := len(headers) - 1; h >= 0; h-- {
		parts := strings.Split(string(headers[h]), ",")
		for i := len(parts) - 1; i >= 0; i-- {
			a, ok := forwardedAddr(strings.TrimSpace(parts[i]))
			if !ok {
				return client
			}
			client = a.Unmap()
			if !trusted.contains(client) {
				return client
			}
		}
	}
	return client
}

// forwardedAddr reads one X-Forwarded-For entry: an address, an address and
// port, or an IPv6 address in brackets (with or without a port); a zone
// (fe80::1%eth0) is dropped, as the login throttle and allowlists see it.
func forwardedAddr(e string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(e)
	if err != nil {
		if ap, perr := netip.ParseAddrPort(e); perr == nil {
			a, err = ap.Addr(), nil
		} else if len(e) > 2 && e[0] == '[' && e[len(e)-1] == ']' {
			a, err = netip.ParseAddr(e[1 : len(e)-1])
			if err == nil && !a.Is6() {
				return netip.Addr{}, false
			}
		}
	}
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone(""), true
}
