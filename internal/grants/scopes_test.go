package grants

import (
	"slices"
	"testing"

	"github.com/mcpoauth/mcpoauth/metadata"
	"github.com/mcpoauth/mcpoauth/record"
)

// TestResolveScopes: the scopes of a new grant (RFC 6749 §3.3), with the
// MCP rules for offline_access (SEP-2207) and the failure when nothing can
// be defaulted.
func TestResolveScopes(t *testing.T) {
	withRefresh := []string{AuthorizationCode, RefreshToken}
	for _, tc := range []struct {
		name       string
		supported  []string
		grants     []string
		registered string
		requested  string
		implied    bool // files:write implies files:read
		want       []string
		wantCode   string
	}{
		{name: "RFC 6749 §3.3: an empty request gets ScopesSupported", supported: []string{"a", "b"}, grants: withRefresh, want: []string{"a", "b"}},
		{name: "RFC 6749 §3.3: an empty request gets the client's registered scope", supported: []string{"a", "b"}, grants: withRefresh, registered: "b", want: []string{"b"}},
		{name: "no default at all is invalid_scope", grants: withRefresh, wantCode: "invalid_scope"},
		{name: "unsupported scope is invalid_scope", supported: []string{"a"}, grants: withRefresh, requested: "a z", wantCode: "invalid_scope"},
		{name: "a scope outside the registered one is invalid_scope", supported: []string{"a", "b"}, grants: withRefresh, registered: "a", requested: "b", wantCode: "invalid_scope"},
		{name: "malformed scope is invalid_scope", supported: []string{"a"}, grants: withRefresh, requested: "a  a", wantCode: "invalid_scope"},
		{name: "SEP-2207: offline_access accepted although not in ScopesSupported", supported: []string{"a"}, grants: withRefresh, requested: "a offline_access", want: []string{"a", OfflineAccess}},
		{name: "SEP-2207: offline_access accepted although not registered", supported: []string{"a"}, grants: withRefresh, registered: "a", requested: "offline_access a", want: []string{OfflineAccess, "a"}},
		{name: "SEP-2207: offline_access refused without the refresh grant", supported: []string{"a"}, grants: []string{AuthorizationCode}, requested: "a offline_access", wantCode: "invalid_scope"},
		{name: "SEP-2207: offline_access is never a default", supported: []string{"a"}, grants: withRefresh, want: []string{"a"}},
		{name: "hierarchy: a scope implied by the registered one is within it", supported: []string{"files:read", "files:write"}, grants: withRefresh, registered: "files:write", requested: "files:read", implied: true, want: []string{"files:read"}},
		{name: "hierarchy: implication is one-way", supported: []string{"files:read", "files:write"}, grants: withRefresh, registered: "files:read", requested: "files:write", implied: true, wantCode: "invalid_scope"},
		{name: "hierarchy: without ImpliedScopes the registered scope is exact", supported: []string{"files:read", "files:write"}, grants: withRefresh, registered: "files:write", requested: "files:read", wantCode: "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Service{Policy: Policy{ScopesSupported: tc.supported, GrantTypes: tc.grants}}
			if tc.implied {
				s.ImpliedScopes = func(sc string) []string {
					if sc == "files:write" {
						return []string{"files:read"}
					}
					return nil
				}
			}
			got, oerr := s.ResolveScopes(&record.Client{Metadata: metadata.ClientMetadata{Scope: tc.registered}}, tc.requested)
			if tc.wantCode != "" {
				if oerr == nil || oerr.Code != tc.wantCode {
					t.Fatalf("got %v, %v; want %s", got, oerr, tc.wantCode)
				}
				return
			}
			if oerr != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, oerr, tc.want)
			}
		})
	}
}

// TestIssuesRefresh: a refresh token goes with a grant when the server
// enables the refresh grant and the client registered it or asked for
// offline_access (SEP-2207); never when the server does not enable it.
func TestIssuesRefresh(t *testing.T) {
	registered := &record.Client{Metadata: metadata.ClientMetadata{GrantTypes: []string{AuthorizationCode, RefreshToken}}}
	codeOnly := &record.Client{Metadata: metadata.ClientMetadata{GrantTypes: []string{AuthorizationCode}}}
	for _, tc := range []struct {
		name   string
		grants []string
		client *record.Client
		scopes []string
		want   bool
	}{
		{"registered for refresh, no offline_access", []string{AuthorizationCode, RefreshToken}, registered, []string{"a"}, true},
		{"SEP-2207: not registered, asked offline_access", []string{AuthorizationCode, RefreshToken}, codeOnly, []string{"a", OfflineAccess}, true},
		{"not registered, did not ask", []string{AuthorizationCode, RefreshToken}, codeOnly, []string{"a"}, false},
		{"refresh grant off on the server", []string{AuthorizationCode}, registered, []string{OfflineAccess}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Service{Policy: Policy{GrantTypes: tc.grants}}
			if got := s.issuesRefresh(tc.client, tc.scopes); got != tc.want {
				t.Fatalf("issuesRefresh = %v, want %v", got, tc.want)
			}
		})
	}
}
