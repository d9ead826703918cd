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
// and returns the first address that is not a trusted proxy. A malformed entry
// stops the walk: what lies left of it cannot be trusted, so the last trusted
// hop is the answer.
func rightmostUntrusted(peer netip.Addr, headers [][]byte, trusted TrustedProxies) netip.Addr {
	client := peer
	for h := len(headers) - 1; h >= 0; h-- {
		parts := strings.Split(string(headers[h]), ",")
		for i := len(parts) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[i]))
			if err != nil {
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
