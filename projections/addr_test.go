package projections

import (
	"fmt"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:2::1":        "2001:db8:2::/64",
		"2001:db8:2::ffff:1":   "2001:db8:2::/64",
		"2001:db8:2:0:ffff::1": "2001:db8:2::/64",
		"2001:db8:2:1::1":      "2001:db8:2:1::/64",
		"fe80::1%eth0":         "fe80::/64",
		"fe80::2%2":            "fe80::/64",
		"::1":                  "::/64",
		"::":                   "::/64",
		// IPv6 forms that carry an IPv4 address count as it:
		"64:ff9b::192.0.2.33":                  "192.0.2.33", // NAT64/SIIT, RFC 6052
		"64:ff9b::c000:222":                    "192.0.2.34",
		"::198.51.100.7":                       "198.51.100.7", // IPv4-compatible
		"2002:c000:221::1":                     "192.0.2.33",   // 6to4: bits 16-47
		"2002:c000:221:ffff::5":                "192.0.2.33",
		"2001:0:4136:e378:8000:63bf:3fff:fdd2": "192.0.2.45", // Teredo, RFC 4380's example
		"2001:0:4136:e379::3fff:fdd2":          "192.0.2.45",
		// … and only those:
		"64:ff9b:1::c000:221":      "64:ff9b:1::/64",
		"64:ff9b::1:c000:221":      "64:ff9b::/64",
		"::1:0:0:1":                "::/64",
		"2001:db8::c000:221":       "2001:db8::/64",
		"2003:c000:221::1":         "2003:c000:221::/64",
		"2001:1::3fff:fdd2":        "2001:1::/64",
		"not an address":           "not an address",
		"2001:db8:2:3:4:5:6:7/128": "2001:db8:2:3:4:5:6:7/128", // not an address either: as written
	} {
		if got := domain.AddressKey(in); got != want {
			t.Errorf("AddressKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAddressFailuresCountAnIPv6SixtyFourAsOne: a host spraying passwords
// from a new address of its /64 for every guess (or from one address with
// different zones) is counted as one client; IPv4 addresses stay apart. Before,
// twelve addresses of one /64 made twelve counts of one (an outside check).
// IPv6 addresses that carry an IPv4 address count as that address: before,
// every IPv4 client of a NAT64 gateway (or of a Teredo server) shared one
// count, spraying from ::198.51.100.x counted against ::1, and a 6to4 host
// had a count for each /64 of its /48 (outside check 12r2).
func TestAddressFailuresCountAnIPv6SixtyFourAsOne(t *testing.T) {
	m := NewModel()
	at := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	fail := func(seq uint64, ip string) {
		m.Apply(seq, events.Envelope{AggregateID: "login-x", Request: events.RequestInfo{IP: ip}},
			domain.UserLoginFailed{Reason: "invalid_credentials", At: at})
	}
	for i := 1; i <= 12; i++ {
		fail(uint64(i), fmt.Sprintf("2001:db8:2::%x", i))
	}
	fail(13, "fe80::1%1")
	fail(14, "fe80::1%2")
	fail(15, "192.0.2.1")
	fail(16, "::ffff:192.0.2.1")
	fail(17, "192.0.2.2")
	seq := uint64(17)
	for i := 1; i <= 5; i++ {
		seq++
		fail(seq, fmt.Sprintf("64:ff9b::198.51.100.%d", i)) // five IPv4 clients through NAT64
		seq++
		fail(seq, fmt.Sprintf("::198.51.100.%d", i)) // and IPv4-compatible
		seq++
		fail(seq, fmt.Sprintf("2002:cb00:7107:%x::1", i)) // one 6to4 host (203.0.113.7), five /64s
		seq++
		fail(seq, fmt.Sprintf("2001:0:4136:e378::%x:%x", ^uint16(0xcb00), ^uint16(0x7100+i))) // Teredo clients 203.0.113.i
	}
	for addr, want := range map[string]int{
		"2001:db8:2::99": 12, "2001:db8:2:1::1": 0, "fe80::1": 2, "fe80::1%3": 2,
		"192.0.2.1": 2, "::ffff:192.0.2.1": 2, "192.0.2.2": 1, "192.0.2.3": 0,
		"64:ff9b::198.51.100.1": 2, "198.51.100.3": 2, "64:ff9b::198.51.100.6": 0, "::1": 0,
		"2002:cb00:7107:99::1": 5, "203.0.113.7": 5, "203.0.113.1": 1, "2001:0:4136:e378::34ff:8efa": 1,
		"2001:0:4136:e378::34ff:8ef9": 0,
	} {
		if n, _ := m.AddressFailures(addr); n != want {
			t.Errorf("failures from %s: %d, want %d", addr, n, want)
		}
	}
}

// TestRestoreFoldsOldAddressCountsIntoTheirSixtyFour: a snapshot written by a
// version that counted IPv6 addresses one by one restores as one count per
// /64 (or per IPv4 address that an IPv6 one carries) — the sum, at the
// latest time, which is what a replay of the same failures counts — so an
// upgrade does not reset a spraying host's count, and replicas restored from
// a snapshot agree with replicas that replayed. Before, the fold took the
// highest count (outside check 12r2).
func TestRestoreFoldsOldAddressCountsIntoTheirSixtyFour(t *testing.T) {
	old := NewModel()
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	old.addrFailures["2001:db8:2::1"] = addrFailures{count: 4, last: t0.Add(time.Minute)}
	old.addrFailures["2001:db8:2::2"] = addrFailures{count: 7, last: t0}
	old.addrFailures["192.0.2.1"] = addrFailures{count: 3, last: t0}
	old.addrFailures["64:ff9b::192.0.2.1"] = addrFailures{count: 2, last: t0.Add(2 * time.Minute)}
	old.addrFailures["192.0.2.2"] = addrFailures{count: 5, last: t0}
	data, _, err := old.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m := NewModel()
	if _, err := m.Restore(data); err != nil {
		t.Fatal(err)
	}
	if n, last := m.AddressFailures("2001:db8:2::abc"); n != 11 || !last.Equal(t0.Add(time.Minute)) {
		t.Errorf("the /64 after restore: %d at %v, want 11 at %v", n, last, t0.Add(time.Minute))
	}
	if n, last := m.AddressFailures("192.0.2.1"); n != 5 || !last.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("an IPv4 address (also seen through NAT64) after restore: %d at %v, want 5 at %v", n, last, t0.Add(2*time.Minute))
	}
	if n, _ := m.AddressFailures("192.0.2.2"); n != 5 {
		t.Errorf("an IPv4 address after restore: %d, want 5", n)
	}
}

// TestPruneForgetsQuietAddresses: the failed-login count of an address quiet
// for AddressWindow is forgotten by Prune (it would start afresh anyway, its
// lockout over); a recent one stays.
func TestPruneForgetsQuietAddresses(t *testing.T) {
	m := NewModel()
	at := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	fail := func(seq uint64, ip string, when time.Time) {
		m.Apply(seq, events.Envelope{AggregateID: "login-x", Request: events.RequestInfo{IP: ip}},
			domain.UserLoginFailed{Reason: "invalid_credentials", At: when})
	}
	fail(1, "192.0.2.1", at)
	fail(2, "192.0.2.2", at.Add(10*time.Minute))
	if n := m.Prune(at.Add(m.AddressWindow)); n != 1 {
		t.Fatalf("pruned %d entries, want the quiet address's 1", n)
	}
	if n, _ := m.AddressFailures("192.0.2.2"); n != 1 {
		t.Fatalf("the recent address's count: %d, want 1", n)
	}
	if len(m.addrFailures) != 1 {
		t.Fatalf("%d addresses kept, want 1", len(m.addrFailures))
	}
}
