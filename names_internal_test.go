package mcpoauth

import (
	"testing"

	"github.com/mcpoauth/mcpoauth/internal/cimd"
	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/handlers"
)

// TestPublicNamesMatchTheInternalOnes: the root spells its constants out,
// so that go doc shows their values; they must stay those the endpoints
// use.
func TestPublicNamesMatchTheInternalOnes(t *testing.T) {
	for _, tc := range []struct{ public, internal any }{
		{GrantAuthorizationCode, grants.AuthorizationCode},
		{GrantRefreshToken, grants.RefreshToken},
		{GrantClientCredentials, grants.ClientCredentials},
		{GrantDeviceCode, grants.DeviceCode},
		{DefaultCIMDCacheSize, cimd.DefaultCacheSize},
		{DefaultCIMDMinCacheTTL, cimd.DefaultMinTTL},
		{DefaultCIMDMaxCacheTTL, cimd.DefaultMaxTTL},
		{DefaultCIMDCacheTTL, cimd.DefaultTTL},
		{DefaultCIMDFetchTimeout, cimd.DefaultTimeout},
		{FormRequestID, handlers.ParamRequestID},
		{FormCSRFToken, handlers.ParamCSRFToken},
		{FormDecision, handlers.ParamDecision},
		{DecisionApprove, handlers.DecisionApprove},
		{DecisionDeny, handlers.DecisionDeny},
		{FormUserCode, handlers.ParamUserCode},
		{DeviceResultParam, handlers.ParamDeviceResult},
		{DeviceResultApproved, handlers.DeviceResultApproved},
		{DeviceResultDenied, handlers.DeviceResultDenied},
	} {
		if tc.public != tc.internal {
			t.Errorf("public %v, internal %v", tc.public, tc.internal)
		}
	}
}
