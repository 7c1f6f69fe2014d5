package handlers

import (
	"encoding/base64"
	"testing"

	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/metadata"
	"github.com/mcpoauth/mcpoauth/record"
)

// TestUsesRegisteredMethod: RFC 7591 §2 binds a confidential client to the
// token_endpoint_auth_method it registered; one that named none may use
// either secret method.
func TestUsesRegisteredMethod(t *testing.T) {
	client := func(method string, defaulted bool) *record.Client {
		return &record.Client{Metadata: metadata.ClientMetadata{TokenEndpointAuthMethod: method}, AuthMethodDefaulted: defaulted}
	}
	for _, tc := range []struct {
		name   string
		client *record.Client
		basic  bool
		want   bool
	}{
		{"RFC 7591 §2: client_secret_basic with HTTP Basic", client(grants.AuthMethodClientSecretBasic, false), true, true},
		{"RFC 7591 §2: client_secret_basic with the secret in the body", client(grants.AuthMethodClientSecretBasic, false), false, false},
		{"RFC 7591 §2: client_secret_post with the secret in the body", client(grants.AuthMethodClientSecretPost, false), false, true},
		{"RFC 7591 §2: client_secret_post with HTTP Basic", client(grants.AuthMethodClientSecretPost, false), true, false},
		{"no method registered: HTTP Basic", client(grants.AuthMethodClientSecretBasic, true), true, true},
		{"no method registered: body", client(grants.AuthMethodClientSecretBasic, true), false, true},
		{"private_key_jwt: never with a secret", client("private_key_jwt", false), true, false},
		{"private_key_jwt: never with a secret in the body", client("private_key_jwt", false), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := usesRegisteredMethod(tc.client, tc.basic); got != tc.want {
				t.Fatalf("usesRegisteredMethod = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestParseBasic: RFC 6749 §2.3.1: id and secret are form-urlencoded
// before base64; anything that does not decode is no credential.
func TestParseBasic(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, header, id, secret string
		ok                       bool
	}{
		{"RFC 6749 §2.3.1: form-urlencoded id and secret", "Basic " + b64("my%20client:s%2Bcr%3At"), "my client", "s+cr:t", true},
		{"scheme is case-insensitive", "basic " + b64("a:b"), "a", "b", true},
		{"empty secret", "Basic " + b64("a:"), "a", "", true},
		{"another scheme", "Bearer " + b64("a:b"), "", "", false},
		{"no colon", "Basic " + b64("ab"), "", "", false},
		{"not base64", "Basic !!!", "", "", false},
		{"bad escape", "Basic " + b64("%zz:b"), "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, secret, ok := parseBasic(tc.header)
			if ok != tc.ok || id != tc.id || secret != tc.secret {
				t.Fatalf("parseBasic(%q) = %q, %q, %v; want %q, %q, %v", tc.header, id, secret, ok, tc.id, tc.secret, tc.ok)
			}
		})
	}
}
