package domain

import "net/netip"

// AddressKey is what the address throttle counts failures by: an IPv4
// address (also when written IPv4-mapped), or the /64 an IPv6 address is in,
// without a zone. One host is normally given a whole IPv6 /64 and can take a
// new address from it for every guess, so its addresses count as one.
// IPv6 addresses that carry an IPv4 address count as that IPv4 address:
// NAT64/SIIT's 64:ff9b::/96 and IPv4-compatible ::/96 (other than :: and
// ::1) by their last 32 bits, 6to4's 2002::/16 by bits 16–47 (one IPv4 host
// holds a whole /48 there), Teredo's 2001::/32 by its client's address (the
// last 32 bits inverted). By /64 those would put every IPv4 client of a
// NAT64 gateway or Teredo server in one count, which one sender could
// exhaust for all of them, and give one 6to4 host 65,536 counts.
// Anything else (not an address) counts as written.
func AddressKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	if v4, ok := embeddedIPv4(a); ok {
		return v4.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}

var (
	nat64Prefix     = netip.MustParsePrefix("64:ff9b::/96")
	v4CompatPrefix  = netip.MustParsePrefix("::/96")
	sixToFourPrefix = netip.MustParsePrefix("2002::/16")
	teredoPrefix    = netip.MustParsePrefix("2001::/32")
	v6Unspecified   = netip.IPv6Unspecified()
	v6Loopback      = netip.IPv6Loopback()
)

// embeddedIPv4 returns the IPv4 address that IPv6 address a stands for, if
// it is of a form that carries one (see AddressKey).
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case nat64Prefix.Contains(a), v4CompatPrefix.Contains(a) && a != v6Unspecified && a != v6Loopback:
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFourPrefix.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	case teredoPrefix.Contains(a):
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), true
	}
	return netip.Addr{}, false
}
