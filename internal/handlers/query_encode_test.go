package handlers

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCodeResponse: the hand-built authorization response query is what
// url.Values.Encode made of the same parameters.
func TestCodeResponse(t *testing.T) {
	for _, state := range []string{"", "s", "a b&c=d/é?#%", "+"} {
		for _, iss := range []string{"https://as.example", "http://127.0.0.1:8080/x?y=1"} {
			v := url.Values{"code": {"c0de-_~"}, "iss": {iss}}
			if state != "" {
				v.Set("state", state)
			}
			require.Equal(t, v.Encode(), codeResponse("c0de-_~", iss, state))
		}
	}
}

// TestConsentQuery: request_id is set on the consent page URL's query as
// url.Values would set it, keeping (and replacing) the configured
// parameters.
func TestConsentQuery(t *testing.T) {
	for _, query := range []string{"", "a=1", "z=2&a=1", "request_id=old&b=%20", "x"} {
		q, _ := url.ParseQuery(query)
		q.Set(ParamRequestID, "id+/=")
		require.Equal(t, q.Encode(), consentQuery(query, "id+/="), query)
	}
}
