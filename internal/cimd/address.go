package cimd

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// ErrForbiddenAddress is wrapped by the error of a fetch whose host resolved
// to an address that is not public: the connection is refused before it is
// made.
var ErrForbiddenAddress = errors.New("cimd: refusing to connect to a non-public address")

// nonPublic are the special-use ranges (RFC 6890; draft §8.6: MUST NOT
// fetch from them) no metadata document is fetched from, beyond what
// netip's predicates cover (loopback, RFC 1918 and RFC 4193 private,
// link-local, multicast, unspecified). Ranges that embed an IPv4 address
// (NAT64, 6to4, Teredo, IPv4-compatible) are refused whole: the embedded
// address could be an internal one.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network" (RFC 791)
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT shared space (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments (RFC 6890)
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1 (RFC 5737)
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast (RFC 7526)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking (RFC 2544)
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("::/96"),           // unspecified, loopback, IPv4-compatible
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 (RFC 6052)
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64 (RFC 8215)
	netip.MustParsePrefix("100::/64"),        // discard-only (RFC 6666)
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments, Teredo among them (RFC 6890)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation (RFC 3849)
	netip.MustParsePrefix("2002::/16"),       // 6to4 (RFC 3056)
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local (RFC 3879)
}

// IsPublicAddr reports whether a document may be fetched from a: a valid,
// zone-less unicast address outside every loopback, private, link-local,
// shared, reserved, documentation and translation range. An IPv4-mapped
// IPv6 address (::ffff:a.b.c.d) is judged by its IPv4 address.
func IsPublicAddr(a netip.Addr) bool {
	if !a.IsValid() || a.Zone() != "" {
		return false
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() || !a.IsGlobalUnicast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// controlDial is the net.Dialer Control hook of the fetcher: it runs after
// name resolution, on the very address about to be connected, so a name
// that resolves to a public address for a check and to an internal one for
// the connection (DNS rebinding) cannot get through.
func controlDial(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("%w: network %s", ErrForbiddenAddress, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !IsPublicAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
	}
	return nil
}
