package ratelimit

import (
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that sent r, for use as a rate
// limit key. It is the IP of r.RemoteAddr, unless that peer lies in one of
// the trusted proxy prefixes: then X-Forwarded-For (all its field lines, in
// order, as one comma-separated list; RFC 9110 §5.3) is walked from the
// right, skipping addresses that are themselves trusted proxies, and the
// first untrusted address is the client. Entries to the left of it were
// written by the client and are ignored, so neither a direct client nor one
// behind a trusted proxy can choose its key by sending X-Forwarded-For
// (chi's RealIP made that mistake, GHSA-3fxj-6jh8-hvhx).
//
// A malformed entry (not an IP address, optionally with a port) stops the
// walk, and the last address read (a trusted proxy's) is returned. Entries
// may be "IP", "IP:port", "[IPv6]" or "[IPv6]:port". IPv4-mapped IPv6
// addresses are unmapped and zones dropped, so one client has one form.
// An invalid netip.Addr is returned when RemoteAddr holds no IP (for
// example a Unix socket).
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer, ok := parseHostIP(r.RemoteAddr)
	if !ok {
		return netip.Addr{}
	}
	if !isTrusted(peer, trusted) {
		return peer
	}
	last := peer
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for {
			entry := v
			j := strings.LastIndexByte(v, ',')
			if j >= 0 {
				entry, v = v[j+1:], v[:j]
			}
			a, ok := parseHostIP(strings.TrimSpace(entry))
			if !ok {
				return last
			}
			if !isTrusted(a, trusted) {
				return a
			}
			last = a
			if j < 0 {
				break
			}
		}
	}
	return last
}

// parseHostIP parses "IP", "IP:port", "[IPv6]" or "[IPv6]:port" and returns
// the address unmapped and without zone.
func parseHostIP(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalize(ap.Addr()), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return normalize(a), true
}

// normalize unmaps an IPv4-mapped IPv6 address and drops any zone.
func normalize(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// isTrusted reports whether a lies in one of the trusted prefixes. A
// prefix written in IPv4-mapped IPv6 form (::ffff:10.0.0.0/104) is matched
// as the IPv4 prefix it denotes, since addresses are unmapped.
func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if pa := p.Addr(); pa.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(pa.Unmap(), p.Bits()-96)
		}
		if p.Contains(a) {
			return true
		}
	}
	return false
}
