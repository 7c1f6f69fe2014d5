package cimd

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIsPublicAddr: draft §8.6: loopback, RFC 1918,
// link-local (cloud metadata), CGNAT, multicast, unspecified, ULA and every
// IPv4-embedding IPv6 form of them are refused; public unicast passes.
func TestIsPublicAddr(t *testing.T) {
	for addr, public := range map[string]bool{
		"93.184.216.34":          true,
		"8.8.8.8":                true,
		"2606:4700:4700::1111":   true,
		"2a00:1450:4001:80b::1":  true,
		"127.0.0.1":              false,
		"127.255.255.254":        false,
		"10.0.0.1":               false,
		"172.16.0.1":             false,
		"172.31.255.255":         false,
		"192.168.1.1":            false,
		"169.254.169.254":        false, // cloud metadata
		"100.64.0.1":             false, // CGNAT
		"100.127.255.254":        false,
		"224.0.0.1":              false, // multicast
		"239.255.255.250":        false,
		"255.255.255.255":        false, // broadcast
		"0.0.0.0":                false, // unspecified
		"0.1.2.3":                false, // this network
		"192.0.0.8":              false,
		"192.0.2.1":              false, // TEST-NET-1
		"198.18.0.1":             false, // benchmarking
		"198.51.100.1":           false,
		"203.0.113.1":            false,
		"240.0.0.1":              false,
		"::":                     false,
		"::1":                    false,
		"fc00::1":                false, // ULA
		"fd12:3456:789a::1":      false,
		"fe80::1":                false, // link-local
		"fec0::1":                false, // site-local
		"ff02::1":                false, // multicast
		"::ffff:127.0.0.1":       false, // IPv4-mapped loopback
		"::ffff:10.0.0.1":        false,
		"::ffff:169.254.169.254": false,
		"::127.0.0.1":            false, // IPv4-compatible
		"64:ff9b::7f00:1":        false, // NAT64 of 127.0.0.1
		"64:ff9b:1::a00:1":       false,
		"2002:7f00:1::1":         false, // 6to4 of 127.0.0.1
		"2001::1":                false, // Teredo
		"2001:db8::1":            false, // documentation
		"100::1":                 false, // discard
		"fe80::1%eth0":           false, // zoned
	} {
		t.Run(addr, func(t *testing.T) {
			a, err := netip.ParseAddr(addr)
			require.NoError(t, err)
			require.Equal(t, public, IsPublicAddr(a))
			network := "tcp4"
			if a.Is6() {
				network = "tcp6"
			}
			err = controlDial(network, netip.AddrPortFrom(a, 443).String(), nil)
			if public {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrForbiddenAddress)
			}
		})
	}
	require.False(t, IsPublicAddr(netip.Addr{}))
}

// TestControlDialRefusesOtherNetworks: only TCP is dialled, and an address
// that does not parse is refused.
func TestControlDialRefusesOtherNetworks(t *testing.T) {
	require.ErrorIs(t, controlDial("udp4", "93.184.216.34:443", nil), ErrForbiddenAddress)
	require.ErrorIs(t, controlDial("unix", "/tmp/sock", nil), ErrForbiddenAddress)
	require.ErrorIs(t, controlDial("tcp4", "example.com:443", nil), ErrForbiddenAddress)
	require.NoError(t, controlDial("tcp4", "93.184.216.34:443", nil))
}
