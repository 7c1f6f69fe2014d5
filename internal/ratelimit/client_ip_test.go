package ratelimit

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string // "" means invalid
	}{
		// Direct clients.
		{name: "peer IPv4", remote: "192.0.2.1:1234", want: "192.0.2.1"},
		{name: "peer IPv6", remote: "[2001:db8::1]:443", want: "2001:db8::1"},
		{name: "peer IPv4-mapped is unmapped", remote: "[::ffff:192.0.2.1]:80", want: "192.0.2.1"},
		{name: "peer zone dropped", remote: "[fe80::1%eth0]:80", want: "fe80::1"},
		{name: "peer without port", remote: "192.0.2.1", want: "192.0.2.1"},
		{name: "peer unparsable", remote: "@", want: ""},
		{name: "peer empty", remote: "", want: ""},
		{name: "spoofed XFF without trusted proxies", remote: "192.0.2.1:1", xff: []string{"203.0.113.9"}, want: "192.0.2.1"},
		{name: "spoofed XFF from untrusted peer", remote: "192.0.2.1:1", xff: []string{"10.0.0.5, 203.0.113.9"}, trusted: proxies, want: "192.0.2.1"},
		// Behind trusted proxies.
		{name: "trusted peer without XFF", remote: "10.0.0.1:1", trusted: proxies, want: "10.0.0.1"},
		{name: "trusted peer with client", remote: "10.0.0.1:1", xff: []string{"203.0.113.9"}, trusted: proxies, want: "203.0.113.9"},
		{name: "client-sent entries left of the real client are ignored", remote: "10.0.0.1:1", xff: []string{"1.1.1.1, 8.8.8.8, 203.0.113.9"}, trusted: proxies, want: "203.0.113.9"},
		{name: "chain of trusted proxies", remote: "10.0.0.1:1", xff: []string{"1.1.1.1, 203.0.113.9, 10.0.0.2, 10.0.0.3"}, trusted: proxies, want: "203.0.113.9"},
		{name: "IPv6 trusted proxy", remote: "[2001:db8:ffff::1]:1", xff: []string{"2001:db8::9"}, trusted: proxies, want: "2001:db8::9"},
		{name: "all entries trusted gives leftmost", remote: "10.0.0.1:1", xff: []string{"10.0.0.2, 10.0.0.3"}, trusted: proxies, want: "10.0.0.2"},
		{name: "multiple header lines form one list", remote: "10.0.0.1:1", xff: []string{"1.1.1.1", "203.0.113.9, 10.0.0.2"}, trusted: proxies, want: "203.0.113.9"},
		{name: "walk crosses header lines", remote: "10.0.0.1:1", xff: []string{"1.1.1.1, 203.0.113.9", "10.0.0.2", "10.0.0.3"}, trusted: proxies, want: "203.0.113.9"},
		{name: "white space around entries", remote: "10.0.0.1:1", xff: []string{"  203.0.113.9  ,10.0.0.2 "}, trusted: proxies, want: "203.0.113.9"},
		{name: "entry with port", remote: "10.0.0.1:1", xff: []string{"203.0.113.9:5555"}, trusted: proxies, want: "203.0.113.9"},
		{name: "bracketed IPv6 with port", remote: "10.0.0.1:1", xff: []string{"[2001:db8::9]:5555"}, trusted: proxies, want: "2001:db8::9"},
		{name: "bracketed IPv6", remote: "10.0.0.1:1", xff: []string{"[2001:db8::9]"}, trusted: proxies, want: "2001:db8::9"},
		{name: "IPv4-mapped entry is unmapped", remote: "10.0.0.1:1", xff: []string{"::ffff:203.0.113.9"}, trusted: proxies, want: "203.0.113.9"},
		{name: "mapped entry of a trusted proxy is skipped", remote: "10.0.0.1:1", xff: []string{"203.0.113.9, ::ffff:10.0.0.2"}, trusted: proxies, want: "203.0.113.9"},
		{name: "trusted prefix in mapped form", remote: "10.0.0.1:1", xff: []string{"203.0.113.9"}, trusted: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}, want: "203.0.113.9"},
		{name: "mapped peer matches IPv4 prefix", remote: "[::ffff:10.0.0.1]:1", xff: []string{"203.0.113.9"}, trusted: proxies, want: "203.0.113.9"},
		// Garbage.
		{name: "garbage only", remote: "10.0.0.1:1", xff: []string{"garbage"}, trusted: proxies, want: "10.0.0.1"},
		{name: "garbage at the right stops at the peer", remote: "10.0.0.1:1", xff: []string{"203.0.113.9, garbage"}, trusted: proxies, want: "10.0.0.1"},
		{name: "garbage after a trusted hop", remote: "10.0.0.1:1", xff: []string{"garbage, 10.0.0.2"}, trusted: proxies, want: "10.0.0.2"},
		{name: "empty entry", remote: "10.0.0.1:1", xff: []string{"203.0.113.9,, 10.0.0.2"}, trusted: proxies, want: "10.0.0.2"},
		{name: "empty header line", remote: "10.0.0.1:1", xff: []string{"203.0.113.9", ""}, trusted: proxies, want: "10.0.0.1"},
		{name: "unknown token", remote: "10.0.0.1:1", xff: []string{"unknown"}, trusted: proxies, want: "10.0.0.1"},
		{name: "hostname", remote: "10.0.0.1:1", xff: []string{"evil.example"}, trusted: proxies, want: "10.0.0.1"},
		{name: "CIDR is not an address", remote: "10.0.0.1:1", xff: []string{"203.0.113.0/24"}, trusted: proxies, want: "10.0.0.1"},
		{name: "empty brackets", remote: "10.0.0.1:1", xff: []string{"[]"}, trusted: proxies, want: "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got := ClientIP(r, tt.trusted)
			if tt.want == "" {
				require.False(t, got.IsValid(), got.String())
				return
			}
			require.Equal(t, netip.MustParseAddr(tt.want), got)
		})
	}
}
