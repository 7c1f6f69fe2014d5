package mcpoauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/dpop"
	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/handlers"
	"github.com/mcpoauth/mcpoauth/internal/jose"
	"github.com/mcpoauth/mcpoauth/internal/redirect"
	"github.com/mcpoauth/mcpoauth/internal/resource"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// Grant types for Config.GrantTypes.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	// GrantClientCredentials is the OAuth 2.1 §4.2 client credentials grant,
	// as the MCP extension io.modelcontextprotocol/oauth-client-credentials
	// uses it: confidential clients acting for themselves.
	GrantClientCredentials = "client_credentials"
	// GrantDeviceCode is the RFC 8628 device authorization grant, named by
	// its URN (§3.4). It needs DeviceAuthorizationURL and a Model that
	// implements DeviceStore.
	GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
)

// Defaults of the Config lifetimes.
const (
	DefaultAccessTokenLifetime       = time.Hour
	DefaultRefreshTokenLifetime      = 14 * 24 * time.Hour
	DefaultClientSecretLifetime      = 90 * 24 * time.Hour
	DefaultAuthorizationCodeLifetime = 5 * time.Minute
	// DefaultRefreshTokenReuseInterval is how long after its rotation a
	// refresh token may be presented again by its client, for a new pair
	// and without revoking anything. Ten seconds covers what it is for: two
	// tabs or processes refreshing with the same token at once (they race
	// by milliseconds) and a client retrying after a lost response; it
	// leaves a thief who replays a token later than that to revoke the
	// grant as before, and is shorter than the 30 to 60 seconds some
	// providers allow, since a forgiven replay is one that goes unnoticed.
	DefaultRefreshTokenReuseInterval = 10 * time.Second
	// DefaultGrantLifetime caps a grant however often its refresh token is
	// rotated, so that a grant cannot be kept alive forever.
	DefaultGrantLifetime = 90 * 24 * time.Hour
	// DefaultDeviceAuthorizationLifetime bounds a device flow from the
	// device's request to the user's decision and the device's last poll.
	DefaultDeviceAuthorizationLifetime = 15 * time.Minute
	// DefaultDevicePollInterval is RFC 8628 §3.2's default interval.
	DefaultDevicePollInterval = 5 * time.Second
	// maxDevicePollInterval caps what slow_down raises the interval to
	// (an interval that grew without bound would
	// stall the device), unless DevicePollInterval is
	// larger.
	maxDevicePollInterval = time.Minute
	// DefaultClientIdleLifetime is how long a dynamically registered client
	// may go without a token before it is deleted: long enough for a client
	// used once a season, short enough that clients registered once per
	// connection do not pile up.
	DefaultClientIdleLifetime = 90 * 24 * time.Hour
	// authorizationRequestLifetime bounds the consent step.
	authorizationRequestLifetime = 10 * time.Minute
)

// NoReuse, as RefreshTokenReuseInterval, takes every second presentation
// of a rotated refresh token for a replay.
const NoReuse time.Duration = -1

// NoExpiry, as ClientSecretLifetime, issues client secrets that never expire
// (client_secret_expires_at 0); as ClientIdleLifetime, keeps unused clients
// for ever.
const NoExpiry time.Duration = -1

// Config configures an OAuthServer. Only Issuer is always required;
// AuthorizationURL is required while the authorization_code grant is on
// (it is by default). Every other field has a documented default. New
// checks every field and returns an error that wraps ErrInvalidConfig and
// names the field.
//
// A pending authorization request (between /authorize and the user's
// decision on the consent page) lives 10 minutes; this is not configurable.
type Config struct {
	// Model stores clients, pending authorization requests, codes, tokens
	// and device authorizations. Default: a new MemoryModel, closed by
	// OAuthServer.Close. A Model you pass is yours to close.
	Model Model
	// Issuer is the authorization server's identifier (RFC 8414 §2): an
	// https URL without query or fragment, with a lowercase scheme and host
	// (http is accepted for localhost, 127.0.0.1 and [::1]). A trailing
	// slash is removed: the one canonical string appears in metadata, in iss
	// and in protected resource metadata.
	Issuer string
	// BaseURL is where the endpoints live, when not under the issuer (the
	// TypeScript original's baseUrl), e.g. "https://example.com/oauth"; the same rules as
	// Issuer apply. Default: Issuer.
	BaseURL string
	// AuthorizationURL is the application's consent page; /authorize sends
	// the browser there with a request_id query parameter. An absolute
	// http(s) URL on the host of the endpoints (BaseURL's, else the
	// issuer's: the browser-binding cookie is per host), or a path on the
	// issuer's origin; no fragment. Required with the authorization_code
	// grant.
	AuthorizationURL string
	// ResourceServerURL is the MCP server's canonical URL (RFC 8707
	// resource, RFC 9728 resource), written in canonical form (New names
	// that form if it is not). Tokens are bound to it; its protected
	// resource metadata is served by Router. Default: none; then any
	// absolute resource is accepted and no protected resource metadata is
	// served. IntrospectionClients requires it.
	ResourceServerURL string
	// ResourceName is the human-readable name in protected resource metadata.
	ResourceName string
	// ServiceDocumentationURL is advertised in both metadata documents.
	ServiceDocumentationURL string
	// ScopesSupported lists the scopes clients may request; a request
	// without scope gets all of them (or the client's registered scope).
	// Empty means any syntactically valid scope is accepted, so that any
	// scope a client invents is granted (New logs a warning), and a request
	// without scope from a client that registered none is invalid_scope.
	// offline_access need not be listed: while the refresh grant is on, the
	// server metadata lists it and requests may carry it (MCP SEP-2207). A
	// refresh token is issued to a client registered for the refresh grant,
	// whether or not it asks for offline_access, and to any client that
	// asks for it.
	ScopesSupported []string
	// ImpliedScopes, if set, is the scope hierarchy: the scopes one scope
	// implies (files:write → files:read), followed transitively. A scope
	// implied by one a client holds counts as held, at grant time and at
	// check time (MCP 2026-07-28 asks servers to account for hierarchies):
	//   - a client registered with scope files:write may request
	//     files:read, and a refresh of a files:write grant may narrow it to
	//     files:read (OAuth 2.1 §4.3.1: the scope may only narrow);
	//   - RequireBearerAuth lets a token with files:write pass a files:read
	//     requirement.
	// Tokens carry the scopes granted, not the ones they imply: a resource
	// server that checks them without this server (introspection, JWT)
	// needs the same hook, bearer.Options.ImpliedScopes. Every scope
	// involved must still be in ScopesSupported to be requested. It must be
	// safe for concurrent use.
	ImpliedScopes func(scope string) []string
	// OperationScopes, if set, makes RequireBearerAuth require scopes per
	// MCP operation, on top of its required scopes: method is the JSON-RPC
	// method, name the tool or prompt of tools/call and prompts/get or the
	// URI of resources/read. bearer.ScopeRequirements.Scopes is a
	// declarative one; see bearer.Options.OperationScopes for how the
	// operation is read (the JSON-RPC body decides; Mcp-Method and Mcp-Name
	// headers must match it) and for the 403 insufficient_scope challenge
	// naming every scope the operation needs (MCP SEP-2350). The scopes it
	// returns should be in ScopesSupported, or no token can hold them.
	OperationScopes func(method, name string) []string
	// AccessTokenLifetime defaults to DefaultAccessTokenLifetime. This and
	// every other lifetime or interval of Config must be at least one
	// second (NoExpiry as ClientSecretLifetime aside).
	AccessTokenLifetime time.Duration
	// RefreshTokenLifetime defaults to DefaultRefreshTokenLifetime; each
	// rotation starts a new one, never past GrantLifetime.
	RefreshTokenLifetime time.Duration
	// RefreshTokenReuseInterval is how long after a refresh token's
	// rotation its client may present it again and get a new pair, nothing
	// revoked (as Okta's grace period and Auth0's reuse interval do): two
	// tabs refreshing at once must not sign the user out. After it, a
	// rotated token presented again revokes its whole grant (RFC 9700
	// §4.14.2). Defaults to DefaultRefreshTokenReuseInterval; NoReuse turns
	// it off.
	RefreshTokenReuseInterval time.Duration
	// GrantLifetime is an absolute cap on a grant's life, counted from the
	// user's consent; defaults to DefaultGrantLifetime.
	GrantLifetime time.Duration
	// ClientSecretLifetime applies to the secrets /register issues; defaults
	// to DefaultClientSecretLifetime; NoExpiry issues secrets that never
	// expire. A static client's secret (RegisterClient) expires at its
	// client_secret_expires_at (absent or 0: never).
	ClientSecretLifetime time.Duration
	// AuthorizationCodeLifetime defaults to DefaultAuthorizationCodeLifetime
	// (OAuth 2.1 §4.1.2 recommends at most 10 minutes).
	AuthorizationCodeLifetime time.Duration
	// StrictResource requires the RFC 8707 resource parameter on
	// authorization and device authorization requests. Default false: a
	// missing resource means ResourceServerURL, since some MCP clients
	// (Claude Code 2.1) send none; the token, refresh and client
	// credentials requests may always omit it.
	StrictResource bool
	// ModifyAuthorizationRedirectURL may add display hints to the consent
	// page URL; it must keep request_id.
	ModifyAuthorizationRedirectURL func(u *url.URL, client *Client, req *AuthorizationRequest)
	// ErrorHandler sees every error the endpoints answer with, tagged with
	// the step that failed ("token:authorization_code", "register", ...). A
	// storage failure arrives as a server_error wrapping the Model's error.
	// It never receives a token, code, verifier or secret.
	ErrorHandler func(ctx context.Context, step string, err error)
	// DisableDynamicClientRegistration turns RFC 7591 /register off. It is
	// on by default, and needs a Model that implements ClientRegistrar.
	DisableDynamicClientRegistration bool
	// ClientIdleLifetime is how long a client registered at /register may
	// go without being issued a token (by any grant) before the server
	// deletes it, with everything issued to it; the server looks every
	// hour (OAuthServer.SweepIdleClients). Pre-registered clients
	// (RegisterClient) are never deleted. It needs a Model that implements
	// ClientUsageRecorder. Use is recorded to the day, and an idle client
	// must hold no live token: the value must exceed AccessTokenLifetime
	// and RefreshTokenLifetime by at least a day. Default:
	// DefaultClientIdleLifetime, or that bound if it is longer; NoExpiry
	// keeps every client.
	ClientIdleLifetime time.Duration
	// RegistrationPolicy decides who may register what at /register. It is
	// called with each registration after the metadata was validated and
	// its defaults applied; it may refuse the registration by returning an
	// error (an *OAuthError is answered as it is; any other error is 400
	// invalid_client_metadata), or narrow it by changing reg.Metadata (drop
	// a grant type, a redirect URI, a scope), which is then validated again.
	// It is the place for an allow-list of redirect hosts, an initial access
	// token (RFC 7591 §3) or a per-network rule. A registration that asks for
	// client_credentials is refused unless the policy sets
	// reg.AllowClientCredentials: such a client gets tokens with no user and
	// no consent, so machine clients are pre-registered (RegisterClient).
	// Default: nil, every valid registration but client_credentials is
	// accepted.
	RegistrationPolicy func(reg *Registration) error
	// ErrorPage renders the errors a person sees in the browser: those of
	// /authorize (every error of a client that is not pre-registered, and
	// the errors found before its redirect URI was verified for any client),
	// of AuthenticateHandler and of the device approve and deny handlers.
	// It must write the status err.Status. Machine endpoints answer JSON
	// whatever it does. Default: DefaultErrorPage.
	ErrorPage func(w http.ResponseWriter, r *http.Request, err *OAuthError)
	// OnApproval, if set, runs when a signed-in user approves a client, on
	// the consent page (AuthenticateHandler, ApproveRemembered) or the
	// device page, with the grant about to be made, before any code or
	// token of it is issued. It returns who the user is at the upstream
	// identity provider, stored with the grant when the Model is a
	// GrantStore and told to tools by RequireBearerAuth
	// (bearer.AuthInfo.Identity); nil for nobody in particular. An error
	// fails the approval with server_error. upstream.SignIn.OnApproval is
	// one: it also hands the user's upstream tokens to the grant.
	OnApproval func(r *http.Request, g *Grant) (*Identity, error)
	// GrantTypes are the enabled grants: GrantAuthorizationCode,
	// GrantRefreshToken, GrantClientCredentials, GrantDeviceCode,
	// GrantJWTBearer. Default:
	// authorization_code and refresh_token. A list you set replaces the
	// default, so name GrantAuthorizationCode and GrantRefreshToken in it
	// too if you still want them.
	GrantTypes []string
	// TrustedIdentityProviders are the enterprise identity providers whose
	// identity assertions (ID-JAG) the jwt-bearer grant accepts, for MCP
	// enterprise-managed authorization; see IdentityProvider. Required
	// with GrantJWTBearer, refused without it. Default: none.
	TrustedIdentityProviders []IdentityProvider
	// AllowInsecureRedirectURIs accepts non-loopback http redirect URIs at
	// registration. Development only.
	AllowInsecureRedirectURIs bool
	// DeviceAuthorizationURL is the application's device verification page
	// (RFC 8628 §3.2 verification_uri), where the user enters the code a
	// device shows and approves or denies; see PendingDeviceAuthorization.
	// An absolute http(s) URL on the host of the endpoints, or a path on
	// the issuer's origin; no fragment. Required with GrantDeviceCode.
	DeviceAuthorizationURL string
	// DeviceAuthorizationLifetime is how long a device code and its user
	// code are valid (RFC 8628 §3.2 expires_in); defaults to
	// DefaultDeviceAuthorizationLifetime.
	DeviceAuthorizationLifetime time.Duration
	// DevicePollInterval is the least time a device waits between polls, a
	// whole number of seconds shorter than DeviceAuthorizationLifetime;
	// defaults to DefaultDevicePollInterval (RFC 8628 §3.2 interval). A
	// device that polls faster gets slow_down, and its interval grows by
	// five seconds, up to one minute (or up to DevicePollInterval, if it is
	// larger).
	DevicePollInterval time.Duration
	// DPoP turns on RFC 9449 sender-constrained tokens; off by default.
	DPoP DPoPConfig
	// RateLimits configures per-client-IP rate limits.
	RateLimits RateLimits
	// ClientIDMetadataDocuments lets clients use the https URL of a client
	// ID metadata document as their client_id instead of registering
	// (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25). Off
	// by default; see CIMDConfig.
	ClientIDMetadataDocuments CIMDConfig
	// IntrospectionClients are the client IDs of resource servers that may
	// introspect access tokens issued to other clients (RFC 7662 §2.1: the
	// caller must be authorized). Each must be a confidential client; it
	// sees every active access token bound to ResourceServerURL, which is
	// then required, and never another client's refresh token. Any other
	// confidential client may introspect only its own tokens. Default:
	// none.
	IntrospectionClients []string
	// AccessTokenFormat is what access tokens look like: AccessTokenOpaque
	// (the default, "") or AccessTokenJWT, RFC 9068 JWTs signed with
	// SigningKeys that resource servers apart from this one verify offline
	// (bearer.JWTVerifier). Either way the server stores each token's
	// digest, so its own RequireBearerAuth, revocation and replay detection
	// work alike. JWT needs ResourceServerURL (the aud claim).
	AccessTokenFormat AccessTokenFormat
	// SigningKeys sign JWT access tokens; required with AccessTokenJWT and
	// refused otherwise. The first key signs; every key is published at
	// the jwks_uri of the metadata. To rotate, put the new key first and
	// keep the old one after it; remove the old key only once
	// AccessTokenLifetime has passed since it last signed, or the tokens it
	// signed stop verifying, here and at every resource server.
	SigningKeys []SigningKey
	// Logger receives structured logs; never a credential. Server errors
	// are logged at Error level, refused requests at Debug. Default:
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// OnEvent, if set, receives the server's audit events (package audit:
	// approvals and denials, tokens issued and refreshed, replays, revocations,
	// client registrations and deletions, failed client authentication,
	// rate limits, metadata document failures), each with its client,
	// user, grant id, client IP and outcome, never a credential. It is
	// called synchronously, on the goroutine of the request that caused
	// the event (the request's context is ctx), after the event happened:
	// it must not block (hand the event to a buffered channel or a
	// non-blocking logger) and must be safe for concurrent use. Default:
	// nil, no events.
	OnEvent func(ctx context.Context, e audit.Event)
	// MeterProvider, if set, receives the server's OpenTelemetry metrics
	// (names under mcpoauth.; docs/production.md lists them). Default:
	// nil, no metrics and no cost. The global provider is not used unless
	// you pass it (otel.GetMeterProvider()): metrics on the bearer path of
	// every protected request are a choice, made here.
	MeterProvider metric.MeterProvider
	// TracerProvider, if set, receives a span per endpoint request
	// (mcpoauth.token, ...) with a child span per Model call, and, on the
	// bearer path, a child span of the application's request span. Default:
	// nil, no spans; as with MeterProvider, the global provider is used
	// only if you pass it (otel.GetTracerProvider()).
	TracerProvider trace.TracerProvider
}

// Defaults of CIMDConfig.
const (
	DefaultCIMDCacheSize    = 1000
	DefaultCIMDMinCacheTTL  = time.Minute
	DefaultCIMDMaxCacheTTL  = 24 * time.Hour
	DefaultCIMDCacheTTL     = 5 * time.Minute
	DefaultCIMDFetchTimeout = 5 * time.Second
)

// CIMDConfig configures client ID metadata documents
// (draft-ietf-oauth-client-id-metadata-document; section numbers are those
// of its revision 02). When Enabled, a client_id that begins with https://
// is not looked up in the Model: it must be a URL with a path and without
// query, fragment, userinfo, dot segments or an IP address host (draft §3),
// and the server fetches the JSON document it names. The document must
// name the URL as its client_id (§4), must not carry client_secret members
// or a shared-secret authentication method (§4.1), must have client_name
// and redirect_uris, and is validated like a dynamic registration; its
// client is public (token_endpoint_auth_method none), or authenticates with
// private_key_jwt and nothing else when the document names that method
// with a jwks_uri or jwks (the Model must be an AssertionReplayStore); its
// grant_types default to authorization_code, and its redirect URIs match
// exactly (the port of a loopback URI aside: RFC 8252 §7.3, which RFC 9700
// §2.1 keeps and the draft's §4.2 restates).
//
// Fetches are guarded against server-side request forgery (§8.6): https
// only, to public IP addresses only (checked on the connected address, so
// DNS rebinding does not help), no redirects, no cookies, no proxy, at most
// 5 KB (§8.7), within FetchTimeout. Documents are cached, at most CacheSize
// of them, for their Cache-Control max-age clamped to [MinCacheTTL,
// MaxCacheTTL]; no-store and no-cache responses, errors and invalid
// documents are not cached (§5.2), and concurrent lookups of one URL share
// one fetch. PendingAuthorization reports the client_id's host
// (ClientIDHost) for the consent page to show (§8.5).
type CIMDConfig struct {
	// Enabled turns client ID metadata documents on: a client_id beginning
	// with https:// is the URL of a client metadata document, and
	// client_id_metadata_document_supported is advertised in the server
	// metadata. Such client IDs cannot be registered with RegisterClient.
	Enabled bool
	// AllowClientID, if set, decides which client_id URLs may be used (a
	// domain allowlist or denylist, draft §8.9): it is called on every
	// resolution, before any fetch, with the validated URL; an error
	// refuses the client (invalid_client, the error goes to ErrorHandler).
	// Default: nil, any public https URL.
	AllowClientID func(u *url.URL) error
	// CacheSize bounds the number of cached documents; defaults to
	// DefaultCIMDCacheSize.
	CacheSize int
	// MinCacheTTL and MaxCacheTTL clamp a document's Cache-Control
	// max-age; they default to DefaultCIMDMinCacheTTL and
	// DefaultCIMDMaxCacheTTL.
	MinCacheTTL, MaxCacheTTL time.Duration
	// CacheTTL applies to a response whose Cache-Control names no max-age;
	// defaults to DefaultCIMDCacheTTL, within the bounds above.
	CacheTTL time.Duration
	// FetchTimeout bounds a whole fetch; defaults to
	// DefaultCIMDFetchTimeout.
	FetchTimeout time.Duration
}

// RateLimit allows Requests per Window to each client IP, as a token
// bucket: a client may burst Requests requests, then goes on at the
// average rate. Both must be positive.
type RateLimit struct {
	// Requests is the burst, and the number of requests per Window on
	// average.
	Requests int
	// Window is the time in which a drained budget refills completely.
	Window time.Duration
}

// RateLimits configures the per-endpoint limits, keyed by client IP. A zero
// RateLimit takes its endpoint's default. Each limit is a
// token bucket of Requests that refills over Window, per client IP; an
// exhausted bucket answers 429 with Retry-After.
type RateLimits struct {
	// Disabled turns every limit off (benchmarks, or a limiter in front).
	Disabled bool
	// Authorize defaults to 100 per 15 minutes.
	Authorize RateLimit
	// Authenticate (the consent decision) defaults to 100 per 15 minutes.
	Authenticate RateLimit
	// Token defaults to 50 per 15 minutes.
	Token RateLimit
	// Register defaults to 20 per hour.
	Register RateLimit
	// Revoke defaults to 50 per 15 minutes.
	Revoke RateLimit
	// Device (the RFC 8628 device authorization endpoint) defaults to 50
	// per 15 minutes.
	Device RateLimit
	// DeviceVerification is shared by PendingDeviceAuthorization and the
	// approve and deny handlers, so that user codes cannot be guessed
	// (RFC 8628 §5.1); defaults to 20 per 15 minutes.
	DeviceVerification RateLimit
	// Introspect (RFC 7662 token introspection, which resource servers
	// call for every token they have not cached) defaults to 600 per
	// minute.
	Introspect RateLimit
	// TrustedProxies are the networks of the reverse proxies whose
	// X-Forwarded-For is believed; from any other peer the header is
	// ignored, so it cannot be used to dodge a limit. Default: none,
	// X-Forwarded-For is always ignored.
	TrustedProxies []netip.Prefix
	// Store, if set, keeps the limits' buckets where every replica sees
	// them (redislimit.New on Redis), so that replicas enforce each budget
	// once, not once each. Default: nil, each process counts for itself.
	Store RateLimitStore
	// FailClosed chooses what happens while Store fails (Redis down):
	// false (the default) counts in each process meanwhile, so the limit
	// degrades to one per replica and no request fails for it; true
	// refuses rate-limited requests with 503 and Retry-After: 1, never a
	// 500. Either way each failure is logged at Warn.
	FailClosed bool
}

// DPoPConfig configures RFC 9449 DPoP. With Enabled, a token request that
// carries a valid proof gets tokens bound to the proof's key (token_type
// DPoP; an access token records the key's thumbprint, a JWT access token
// carries it as cnf.jkt, and so does introspection; a public client's
// refresh token is bound too); a request without one still gets bearer
// tokens, unless Required is set or the client registered
// dpop_bound_access_tokens. RequireBearerAuth then accepts the DPoP scheme,
// and admits a bound token only with a proof of its key: presented as
// Bearer it is 401. The server metadata lists dpop_signing_alg_values_supported.
type DPoPConfig struct {
	// Enabled accepts DPoP proofs.
	Enabled bool
	// Required refuses token requests without a proof, and makes
	// RequireBearerAuth refuse tokens that are not bound (protected
	// resource metadata: dpop_bound_access_tokens_required). It implies
	// Enabled.
	Required bool
	// SigningAlgs are the algorithms a proof may be signed with; default
	// dpop.DefaultAlgorithms (ES256, RS256, PS256, EdDSA).
	SigningAlgs []string
	// NonceKey (at least 32 bytes) makes the server nonces of RFC 9449 §8
	// and §9: set the same key on every replica, so that a nonce one
	// issued is accepted by all. Default: random per process.
	NonceKey []byte
	// DisableNonces accepts proofs without a server nonce. Nonces are
	// required by default: they bound a proof's lifetime by the server's
	// clock, across replicas whose replay caches (of proof ids, in memory)
	// are each their own.
	DisableNonces bool
	// ProofMaxAge bounds the age of a proof's iat; default
	// dpop.DefaultMaxAge.
	ProofMaxAge time.Duration
}

// Registration is a dynamic client registration (RFC 7591 §3.1) on its way
// to RegistrationPolicy.
type Registration struct {
	// Request is the registration request: its headers (an initial access
	// token, RFC 7591 §3), its remote address. The body was read already.
	Request *http.Request
	// Metadata is the validated client metadata, RFC 7591 defaults applied.
	// The policy may narrow it; what it leaves is validated again.
	Metadata metadata.ClientMetadata
	// AllowClientCredentials lets this registration have the
	// client_credentials grant (off by default; see RegistrationPolicy).
	AllowClientCredentials bool
}

// DefaultErrorPage is the default ErrorPage: a plain HTML page with the
// error's status, code and description, marked no-store and unframeable.
// A custom ErrorPage may call it for the errors it does not restyle.
func DefaultErrorPage(w http.ResponseWriter, r *http.Request, err *OAuthError) {
	handlers.DefaultErrorPage(w, r, err.internal())
}

// ErrInvalidConfig is wrapped by every error New returns for a bad Config.
var ErrInvalidConfig = errors.New("mcpoauth: invalid config")

func configError(field, reason string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, reason)
}

// supportedGrantTypes are the grant types this build can enable.
var supportedGrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode, GrantJWTBearer}

// settings is a validated Config with defaults applied.
type settings struct {
	Config
	issuer, baseURL, resource string
	authorizationURL          *url.URL
	deviceAuthorizationURL    *url.URL
	dcr                       bool
	ownsModel                 bool
	// signingKeys is SigningKeys ready to sign; nil for opaque tokens.
	signingKeys *jose.KeySet
	// idJAG verifies the jwt-bearer grant's assertions; nil when that
	// grant is off.
	idJAG *grants.IDJAGVerifier
	// dpop checks DPoP proofs; nil while DPoP is off.
	dpop *dpop.Verifier
}

// validate checks c and applies its defaults, one concern at a time; each
// step sees what the steps before it settled.
func (c Config) validate() (*settings, error) {
	s := &settings{Config: c}
	// The server keeps its own copies: changing the caller's slices later
	// must not change policy.
	s.ScopesSupported = slices.Clone(c.ScopesSupported)
	s.GrantTypes = slices.Clone(c.GrantTypes)
	s.RateLimits.TrustedProxies = slices.Clone(c.RateLimits.TrustedProxies)
	s.IntrospectionClients = slices.Clone(c.IntrospectionClients)
	s.TrustedIdentityProviders = slices.Clone(c.TrustedIdentityProviders)
	if s.Now == nil {
		s.Now = time.Now
	}
	for _, step := range []func() error{
		s.validateURLs,
		s.validateGrants,
		s.validateScopes,
		s.validateLifetimes,
		s.validateModel,
		s.validateIdentityProviders,
		s.validateRateLimits,
		s.validateIntrospection,
		s.validateAccessTokenFormat,
		s.ClientIDMetadataDocuments.validate,
		s.validateDPoP,
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	return s, nil
}

// validateURLs settles the issuer, the endpoints' base and the resource.
func (s *settings) validateURLs() error {
	var err error
	if s.issuer, err = canonicalIssuer("Issuer", s.Issuer); err != nil {
		return err
	}
	s.baseURL = s.issuer
	if s.BaseURL != "" {
		if s.baseURL, err = canonicalIssuer("BaseURL", s.BaseURL); err != nil {
			return err
		}
	}
	if s.ResourceServerURL != "" {
		if s.resource, err = resource.Canonical(s.ResourceServerURL); err != nil {
			return configError("ResourceServerURL", "must be an absolute http(s) URL without fragment")
		}
		if s.resource != s.ResourceServerURL {
			// RFC 9728 §3.3: clients compare the metadata's resource with the
			// URL they use byte for byte; one canonical string serves both.
			return configError("ResourceServerURL", fmt.Sprintf("must be written in canonical form %q", s.resource))
		}
	}
	return nil
}

// validateGrants checks the enabled grants and the pages they need.
func (s *settings) validateGrants() error {
	if s.GrantTypes == nil {
		s.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	if len(s.GrantTypes) == 0 {
		return configError("GrantTypes", "at least one grant type is required")
	}
	for _, g := range s.GrantTypes {
		if !contains(supportedGrantTypes, g) {
			return configError("GrantTypes", fmt.Sprintf("unsupported grant type %q", g))
		}
	}
	var err error
	if contains(s.GrantTypes, GrantAuthorizationCode) {
		if s.AuthorizationURL == "" {
			return configError("AuthorizationURL", "required with the authorization_code grant")
		}
		if s.authorizationURL, err = s.pageURL("AuthorizationURL", s.AuthorizationURL); err != nil {
			return err
		}
	}
	if contains(s.GrantTypes, GrantDeviceCode) {
		if s.DeviceAuthorizationURL == "" {
			return configError("DeviceAuthorizationURL", "required with the device_code grant")
		}
		if s.deviceAuthorizationURL, err = s.pageURL("DeviceAuthorizationURL", s.DeviceAuthorizationURL); err != nil {
			return err
		}
	}
	return nil
}

// validateScopes checks each scope is an RFC 6749 §3.3 scope-token.
func (s *settings) validateScopes() error {
	for _, sc := range s.ScopesSupported {
		if sc == "" || strings.ContainsAny(sc, " \"\\") || !isPrintableASCII(sc) {
			return configError("ScopesSupported", fmt.Sprintf("invalid scope token %q", sc))
		}
	}
	return nil
}

// validateLifetimes applies the default lifetimes and bounds them.
func (s *settings) validateLifetimes() error {
	for _, d := range []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{
		{"AccessTokenLifetime", &s.AccessTokenLifetime, DefaultAccessTokenLifetime},
		{"RefreshTokenLifetime", &s.RefreshTokenLifetime, DefaultRefreshTokenLifetime},
		{"GrantLifetime", &s.GrantLifetime, DefaultGrantLifetime},
		{"AuthorizationCodeLifetime", &s.AuthorizationCodeLifetime, DefaultAuthorizationCodeLifetime},
		{"ClientSecretLifetime", &s.ClientSecretLifetime, DefaultClientSecretLifetime},
		{"DeviceAuthorizationLifetime", &s.DeviceAuthorizationLifetime, DefaultDeviceAuthorizationLifetime},
		{"DevicePollInterval", &s.DevicePollInterval, DefaultDevicePollInterval},
		{"RefreshTokenReuseInterval", &s.RefreshTokenReuseInterval, DefaultRefreshTokenReuseInterval},
	} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v == NoExpiry && d.field == "ClientSecretLifetime":
		case *d.v == NoReuse && d.field == "RefreshTokenReuseInterval":
		case *d.v < time.Second:
			return configError(d.field, "must be at least one second")
		}
	}
	if err := s.validateClientIdleLifetime(); err != nil {
		return err
	}
	if s.DevicePollInterval%time.Second != 0 {
		// RFC 8628 §3.2 interval is a number of seconds.
		return configError("DevicePollInterval", "must be a whole number of seconds")
	}
	if s.DevicePollInterval >= s.DeviceAuthorizationLifetime {
		return configError("DevicePollInterval", "must be shorter than DeviceAuthorizationLifetime")
	}
	return nil
}

// validateClientIdleLifetime applies ClientIdleLifetime's default and
// bounds it: a client last recorded used a day before its last token must
// not be deleted while that token lives.
func (s *settings) validateClientIdleLifetime() error {
	least := max(s.AccessTokenLifetime, s.RefreshTokenLifetime) + grants.ClientUseResolution
	switch {
	case s.ClientIdleLifetime == 0:
		s.ClientIdleLifetime = max(DefaultClientIdleLifetime, least)
	case s.ClientIdleLifetime == NoExpiry:
	case s.ClientIdleLifetime < least:
		return configError("ClientIdleLifetime", fmt.Sprintf("must be at least %s: a day longer than the longest token lifetime, so that no client is deleted while a token issued to it is live", least))
	}
	return nil
}

// validateModel settles the Model and checks it has the capabilities the
// enabled features need.
func (s *settings) validateModel() error {
	s.dcr = !s.DisableDynamicClientRegistration
	if s.Model == nil {
		s.Model = NewMemoryModel(MemoryModelOptions{})
		s.ownsModel = true
	}
	if _, ok := s.Model.(ClientRegistrar); s.dcr && !ok {
		return configError("DisableDynamicClientRegistration", "dynamic registration needs a Model that implements ClientRegistrar; "+missingMethods(s.Model, reflect.TypeFor[ClientRegistrar]()))
	}
	if _, ok := s.Model.(DeviceStore); contains(s.GrantTypes, GrantDeviceCode) && !ok {
		return configError("GrantTypes", "the device_code grant needs a Model that implements DeviceStore; "+missingMethods(s.Model, reflect.TypeFor[DeviceStore]()))
	}
	return nil
}

// validateRateLimits applies each endpoint's default limit and bounds them.
func (s *settings) validateRateLimits() error {
	for _, l := range []struct {
		field string
		v     *RateLimit
		def   RateLimit
	}{
		{"RateLimits.Authorize", &s.RateLimits.Authorize, RateLimit{Requests: 100, Window: 15 * time.Minute}},
		{"RateLimits.Authenticate", &s.RateLimits.Authenticate, RateLimit{Requests: 100, Window: 15 * time.Minute}},
		{"RateLimits.Token", &s.RateLimits.Token, RateLimit{Requests: 50, Window: 15 * time.Minute}},
		{"RateLimits.Register", &s.RateLimits.Register, RateLimit{Requests: 20, Window: time.Hour}},
		{"RateLimits.Revoke", &s.RateLimits.Revoke, RateLimit{Requests: 50, Window: 15 * time.Minute}},
		{"RateLimits.Device", &s.RateLimits.Device, RateLimit{Requests: 50, Window: 15 * time.Minute}},
		{"RateLimits.DeviceVerification", &s.RateLimits.DeviceVerification, RateLimit{Requests: 20, Window: 15 * time.Minute}},
		{"RateLimits.Introspect", &s.RateLimits.Introspect, RateLimit{Requests: 600, Window: time.Minute}},
	} {
		switch {
		case *l.v == RateLimit{}:
			*l.v = l.def
		case l.v.Requests <= 0 || l.v.Window <= 0:
			return configError(l.field, "Requests and Window must be positive")
		case l.v.Window < time.Duration(l.v.Requests)*time.Millisecond:
			return configError(l.field, "more than one request per millisecond is not a limit")
		}
	}
	return nil
}

// validateDPoP builds the proof verifier of an enabled DPoPConfig.
func (s *settings) validateDPoP() error {
	d := &s.DPoP
	d.SigningAlgs = slices.Clone(d.SigningAlgs)
	if !d.Enabled && !d.Required {
		return nil
	}
	d.Enabled = true
	if d.ProofMaxAge < 0 {
		return configError("DPoP.ProofMaxAge", "must not be negative")
	}
	v, err := dpop.NewVerifier(dpop.Options{
		Algorithms:    d.SigningAlgs,
		MaxAge:        d.ProofMaxAge,
		DisableNonces: d.DisableNonces,
		NonceKey:      d.NonceKey,
		Now:           s.Now,
	})
	if err != nil {
		return configError("DPoP", strings.TrimPrefix(err.Error(), "dpop: "))
	}
	s.dpop = v
	return nil
}

// validateIntrospection checks the resource servers that may introspect.
func (s *settings) validateIntrospection() error {
	if len(s.IntrospectionClients) > 0 && s.resource == "" {
		return configError("IntrospectionClients", "needs ResourceServerURL: a resource server sees the access tokens bound to it")
	}
	for _, id := range s.IntrospectionClients {
		if id == "" {
			return configError("IntrospectionClients", "empty client ID")
		}
	}
	return nil
}

// validate applies the defaults of an enabled CIMDConfig and checks it.
func (c *CIMDConfig) validate() error {
	if !c.Enabled {
		return nil
	}
	for _, d := range []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{
		{"MinCacheTTL", &c.MinCacheTTL, DefaultCIMDMinCacheTTL},
		{"MaxCacheTTL", &c.MaxCacheTTL, DefaultCIMDMaxCacheTTL},
		{"CacheTTL", &c.CacheTTL, DefaultCIMDCacheTTL},
		{"FetchTimeout", &c.FetchTimeout, DefaultCIMDFetchTimeout},
	} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			return configError("ClientIDMetadataDocuments."+d.field, "must not be negative")
		}
	}
	switch {
	case c.CacheSize == 0:
		c.CacheSize = DefaultCIMDCacheSize
	case c.CacheSize < 0:
		return configError("ClientIDMetadataDocuments.CacheSize", "must not be negative")
	}
	if c.MinCacheTTL > c.MaxCacheTTL {
		return configError("ClientIDMetadataDocuments.MinCacheTTL", "must not exceed MaxCacheTTL")
	}
	return nil
}

// pageURL checks the URL of an application page the server sends users to
// (consent, device verification): an absolute http(s) URL on the host of
// the endpoints (BaseURL, or the issuer), or an absolute path resolved
// against the issuer's origin; never a fragment.
func (s *settings) pageURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Fragment != "" || strings.Contains(raw, "#") || !(u.IsAbs() && u.Host != "" && (u.Scheme == "https" || u.Scheme == "http") || !u.IsAbs() && strings.HasPrefix(u.Path, "/") && u.Host == "") {
		return nil, configError(field, "must be an absolute http(s) URL or an absolute path, without fragment")
	}
	if !u.IsAbs() {
		base, _ := url.Parse(s.issuer)
		u = base.ResolveReference(u)
	}
	// /authorize binds the request to the browser with a cookie of its own
	// host, which the page's decision must carry back: a page on another
	// host never sees it, and every decision would fail.
	if endpoints, _ := url.Parse(s.baseURL); !strings.EqualFold(u.Hostname(), endpoints.Hostname()) {
		return nil, configError(field, fmt.Sprintf("must be on the host of the endpoints (%s): the browser-binding cookie set by /authorize is per host", endpoints.Hostname()))
	}
	return u, nil
}

// missingMethods names the methods of iface that v's type lacks, for a
// configuration error that tells an implementer what to add.
func missingMethods(v any, iface reflect.Type) string {
	t := reflect.TypeOf(v)
	var missing []string
	for i := range iface.NumMethod() {
		if _, ok := t.MethodByName(iface.Method(i).Name); !ok {
			missing = append(missing, iface.Method(i).Name)
		}
	}
	if len(missing) == 0 {
		return "its methods " + iface.Name() + " needs have other signatures"
	}
	return "missing " + strings.Join(missing, ", ")
}

// canonicalIssuer checks an issuer-like URL (RFC 8414 §2: https, no query,
// no fragment; http only on loopback for development) and removes a trailing
// slash, so that one string identifies the server everywhere.
func canonicalIssuer(field, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil {
		return "", configError(field, "must be an absolute URL")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		return "", configError(field, "must not have a query or fragment")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && redirect.IsLoopbackHost(u.Hostname()):
	default:
		return "", configError(field, "must use https (http only for localhost, 127.0.0.1 or [::1])")
	}
	if strings.ToLower(u.Host) != u.Host || !strings.HasPrefix(raw, u.Scheme+"://") {
		// One canonical string: clients compare iss byte for byte (RFC 9207 §2.4).
		return "", configError(field, "scheme and host must be lowercase")
	}
	return strings.TrimSuffix(raw, "/"), nil
}

func contains(list []string, v string) bool { return slices.Contains(list, v) }

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
