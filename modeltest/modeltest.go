package modeltest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth"
)

// Concurrency is the number of goroutines that race to redeem one
// credential in the atomicity subtests: of them exactly one must succeed.
const Concurrency = 50

// ConcurrencyRounds is how many times each atomicity subtest races
// Concurrency goroutines on a fresh credential: a defect that a lucky
// schedule hides once is unlikely to stay hidden every time.
const ConcurrencyRounds = 3

// RaceRounds is the number of rounds in which RevokeGrant races a save of
// one of the grant's tokens or codes.
const RaceRounds = 100

// Run runs the conformance tests of the Model contract as subtests of t,
// grouped by the method whose contract they check. newModel must return a
// fresh, empty model each time it is called: Run calls it once per subtest,
// with the subtest's t, so that subtests are independent; release the model
// there with t.Cleanup. Run never calls t.Parallel.
//
// Optional capabilities (ClientRegistrar, ClientUsageRecorder, DeviceStore,
// AssertionReplayStore, GrantStore, UpstreamTokenStore)
// are tested when the model implements them, and their subtests skipped,
// with a message saying so, when it does not.
func Run(t *testing.T, newModel func(t *testing.T) mcpoauth.Model) {
	t.Helper()
	for _, g := range groups() {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.clauses {
				t.Run(c.name, func(t *testing.T) {
					c.run(t, newKit(t, newModel))
				})
			}
		})
	}
}

// group is the subtests that check the contract of one method or concern.
type group struct {
	name    string
	clauses []clause
}

// clause is one subtest: one sentence of the contract.
type clause struct {
	name string
	run  func(t *testing.T, k *kit)
}

// groups lists every group of subtests, in the order they run.
func groups() []group {
	return append([]group{
		{"GetClient", getClientClauses},
		{"RegisterClient", registerClientClauses},
		{"UpdateClient", updateClientClauses},
		{"DeleteClient", deleteClientClauses},
		{"RecordClientUse", recordClientUseClauses},
		{"DeleteIdleClients", deleteIdleClientsClauses},
		{"SaveAuthorizationRequest", saveRequestClauses},
		{"GetAuthorizationRequest", getRequestClauses},
		{"ConsumeAuthorizationRequest", consumeRequestClauses},
		{"SaveAuthorizationCode", saveCodeClauses},
		{"GetAuthorizationCode", getCodeClauses},
		{"ConsumeAuthorizationCode", consumeCodeClauses()},
		{"SaveTokens", saveTokensClauses},
		{"GetToken", getTokenClauses},
		{"RotateRefreshToken", rotateClauses()},
		{"RevokeToken", revokeTokenClauses},
		{"RevokeGrant", revokeGrantClauses},
		{"Expiry", expiryClauses},
		{"Context", contextClauses},
		{"Digests", digestClauses},
		{"Records", recordClauses},
		{"UseAssertionID", useAssertionIDClauses},
	}, append(deviceGroups(), grantRecordGroups()...)...)
}

// kit is what a subtest works with: a fresh model and record factories.
type kit struct {
	m   mcpoauth.Model
	ctx context.Context
	// now is when the subtest started, with nanoseconds and no monotonic
	// reading; live records expire an hour or more after it, so that no
	// sweeper running on the real clock removes them mid-test.
	now time.Time
}

// capability returns the model as the optional capability T, an interface
// of package mcpoauth, or skips the test with a message that names T: the
// kit finds a capability by type assertion, as the server does.
func capability[T any](t *testing.T, k *kit) T {
	t.Helper()
	c, ok := k.m.(T)
	if !ok {
		t.Skipf("the Model does not implement %s", reflect.TypeFor[T]())
	}
	return c
}

// newKit asks newModel for a fresh model for the subtest t.
func newKit(t *testing.T, newModel func(t *testing.T) mcpoauth.Model) *kit {
	t.Helper()
	m := newModel(t)
	if nilValue(m) {
		t.Fatal("newModel returned nil")
	}
	return &kit{m: m, ctx: t.Context(), now: time.Now().Round(0)}
}

// Client IDs and grant IDs the subtests use. Another client is
// clientB; otherClients are the IDs that are not clientA, as a stranger
// might present them.
const (
	clientA = "client-a"
	clientB = "client-b"
)

// otherClients are client IDs that must not match a record of clientA: another
// client, no client, a case variant, and bytes no client ID has.
var otherClients = []string{clientB, "", "CLIENT-A", "client-a ", "\x00", "client-a\x00", "\xff\xfe"}

// newDigest returns a random key. It is deliberately not the digest of
// anything: a Model must treat a digest as 32 opaque bytes.
func newDigest() mcpoauth.Digest {
	var d mcpoauth.Digest
	_, _ = rand.Read(d[:])
	return d
}

// newGrantID returns a grant ID unique to the call.
func newGrantID() string {
	d := newDigest()
	return "grant-" + d.String()[:16]
}

// token returns a fully populated token of kind, clientID and grantID that
// expires in an hour.
func (k *kit) token(kind mcpoauth.TokenKind, clientID, grantID string) *mcpoauth.Token {
	return &mcpoauth.Token{
		Digest:         newDigest(),
		Kind:           kind,
		ClientID:       clientID,
		UserID:         "user-1",
		GrantID:        grantID,
		Scopes:         []string{"mcp:tools", "read"},
		Resource:       "https://mcp.example.com/mcp",
		IssuedAt:       k.now,
		ExpiresAt:      k.now.Add(time.Hour),
		GrantExpiresAt: k.now.Add(30 * 24 * time.Hour),
		// Bound to a DPoP key of its own (RFC 9449 §6), so that every
		// path that stores or returns a token shows that the binding
		// round-trips and stays with its token.
		JKT: newJKT(),
	}
}

// newJKT returns an RFC 7638 thumbprint (43 base64url characters) unique to
// the call.
func newJKT() string {
	d := newDigest()
	return base64.RawURLEncoding.EncodeToString(d[:])
}

// tokens returns an access and a refresh token of clientID and grantID, as
// a grant issues them.
func (k *kit) tokens(clientID, grantID string) []*mcpoauth.Token {
	return []*mcpoauth.Token{k.token(mcpoauth.AccessToken, clientID, grantID), k.token(mcpoauth.RefreshToken, clientID, grantID)}
}

// code returns a fully populated authorization code of clientID and
// grantID that expires in an hour.
func (k *kit) code(clientID, grantID string) *mcpoauth.AuthorizationCode {
	return &mcpoauth.AuthorizationCode{
		Digest:              newDigest(),
		ClientID:            clientID,
		UserID:              "user-1",
		GrantID:             grantID,
		RedirectURI:         "http://127.0.0.1:53682/callback?tenant=a",
		RedirectURIProvided: true,
		Scopes:              []string{"mcp:tools", "read"},
		Resource:            "https://mcp.example.com/mcp",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		ExpiresAt:           k.now.Add(time.Hour),
		GrantExpiresAt:      k.now.Add(30 * 24 * time.Hour),
	}
}

// request returns a fully populated pending authorization request of
// clientID that expires in an hour.
func (k *kit) request(clientID string) *mcpoauth.AuthorizationRequest {
	return &mcpoauth.AuthorizationRequest{
		ID:                  newDigest(),
		BrowserDigest:       newDigest(),
		ClientID:            clientID,
		RedirectURI:         "https://client.example.com/cb",
		RedirectURIProvided: true,
		Scopes:              []string{"mcp:tools"},
		Resource:            "https://mcp.example.com/mcp",
		State:               "xyz-\u00e9t\u00e9-\U0001F600",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		ExpiresAt:           k.now.Add(time.Hour),
		PromptConsent:       true,
	}
}

// The save helpers store records that must be accepted and return a copy
// taken before the save, to compare what is read back with: a saved record
// belongs to the model.

func (k *kit) saveTokens(t *testing.T, tokens ...*mcpoauth.Token) []mcpoauth.Token {
	t.Helper()
	want := copyTokens(tokens)
	noError(t, k.m.SaveTokens(k.ctx, tokens...))
	return want
}

func (k *kit) saveCode(t *testing.T, c *mcpoauth.AuthorizationCode) mcpoauth.AuthorizationCode {
	t.Helper()
	want := copyCode(c)
	noError(t, k.m.SaveAuthorizationCode(k.ctx, c))
	return want
}

func (k *kit) saveRequest(t *testing.T, r *mcpoauth.AuthorizationRequest) mcpoauth.AuthorizationRequest {
	t.Helper()
	want := *r
	want.Scopes = slices.Clone(r.Scopes)
	noError(t, k.m.SaveAuthorizationRequest(k.ctx, r))
	return want
}

func copyTokens(tokens []*mcpoauth.Token) []mcpoauth.Token {
	out := make([]mcpoauth.Token, len(tokens))
	for i, tok := range tokens {
		if tok != nil {
			out[i] = *tok
			out[i].Scopes = slices.Clone(tok.Scopes)
		}
	}
	return out
}

func copyCode(c *mcpoauth.AuthorizationCode) mcpoauth.AuthorizationCode {
	out := *c
	out.Scopes = slices.Clone(c.Scopes)
	return out
}

// requireFound asserts that get returns, under key, a record equal to want
// (requireReadBack); what names the call and the record in a failure
// message ("GetToken of a stored token").
func requireFound[K, R any](t *testing.T, ctx context.Context, what string, get func(context.Context, K) (*R, error), key K, want R) {
	t.Helper()
	got, err := get(ctx, key)
	noError(t, err, "%s, key %s", what, show(key))
	requireReadBack(t, want, got)
}

// requireNotFound asserts that get answers ErrNotFound, and no record, for
// each key; what names the call and the record in a failure message
// ("GetToken of a token").
func requireNotFound[K, R any](t *testing.T, ctx context.Context, what string, get func(context.Context, K) (*R, error), keys ...K) {
	t.Helper()
	for _, key := range keys {
		got, err := get(ctx, key)
		errorIs(t, err, mcpoauth.ErrNotFound, "%s that must not exist, key %s", what, show(key))
		isNil(t, got, "%s that must not exist, key %s", what, show(key))
	}
}

// requireToken asserts GetToken returns a token equal to want.
func (k *kit) requireToken(t *testing.T, want mcpoauth.Token) {
	t.Helper()
	requireFound(t, k.ctx, "GetToken of a stored token", k.m.GetToken, want.Digest, want)
}

// requireTokens asserts GetToken returns each token, unchanged.
func (k *kit) requireTokens(t *testing.T, want []mcpoauth.Token) {
	t.Helper()
	for _, w := range want {
		k.requireToken(t, w)
	}
}

// requireUsedToken asserts GetToken returns want rotated at k.now, when
// the kit rotates every token.
func (k *kit) requireUsedToken(t *testing.T, want mcpoauth.Token) {
	t.Helper()
	want.RotatedAt = k.now
	k.requireToken(t, want)
}

// requireNoToken asserts GetToken answers ErrNotFound for each digest.
func (k *kit) requireNoToken(t *testing.T, digests ...mcpoauth.Digest) {
	t.Helper()
	requireNotFound(t, k.ctx, "GetToken of a token", k.m.GetToken, digests...)
}

// requireCode asserts GetAuthorizationCode returns a code equal to want.
func (k *kit) requireCode(t *testing.T, want mcpoauth.AuthorizationCode) {
	t.Helper()
	requireFound(t, k.ctx, "GetAuthorizationCode of a stored code", k.m.GetAuthorizationCode, want.Digest, want)
}

// requireNoCode asserts GetAuthorizationCode answers ErrNotFound.
func (k *kit) requireNoCode(t *testing.T, digests ...mcpoauth.Digest) {
	t.Helper()
	requireNotFound(t, k.ctx, "GetAuthorizationCode of a code", k.m.GetAuthorizationCode, digests...)
}

// requireRequest asserts GetAuthorizationRequest returns a request equal to
// want.
func (k *kit) requireRequest(t *testing.T, want mcpoauth.AuthorizationRequest) {
	t.Helper()
	requireFound(t, k.ctx, "GetAuthorizationRequest of a pending request", k.m.GetAuthorizationRequest, want.ID, want)
}

// requireNoRequest asserts GetAuthorizationRequest answers ErrNotFound.
func (k *kit) requireNoRequest(t *testing.T, id mcpoauth.Digest) {
	t.Helper()
	requireNotFound(t, k.ctx, "GetAuthorizationRequest of a request", k.m.GetAuthorizationRequest, id)
}

// digests returns the digests of tokens.
func digests(tokens []*mcpoauth.Token) []mcpoauth.Digest {
	out := make([]mcpoauth.Digest, 0, len(tokens))
	for _, tok := range tokens {
		if tok != nil {
			out = append(out, tok.Digest)
		}
	}
	return out
}

// sameTime returns want if got is the same instant to the microsecond
// (truncated or rounded), and got otherwise, so that a struct comparison
// reports a real difference and ignores an allowed one.
func sameTime(want, got time.Time) time.Time {
	if got.Equal(want) || got.Equal(want.Truncate(time.Microsecond)) || got.Equal(want.Round(time.Microsecond)) {
		return want
	}
	return got
}

// normSlice maps an empty slice to nil: a Model may return either.
func normSlice(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// recordNames name the records in failure messages.
var recordNames = map[reflect.Type]string{
	reflect.TypeFor[mcpoauth.Token]():                "token",
	reflect.TypeFor[mcpoauth.AuthorizationCode]():    "authorization code",
	reflect.TypeFor[mcpoauth.AuthorizationRequest](): "authorization request",
	reflect.TypeFor[mcpoauth.DeviceAuthorization]():  "device authorization",
	reflect.TypeFor[mcpoauth.Client]():               "client",
	reflect.TypeFor[mcpoauth.Grant]():                "grant",
	reflect.TypeFor[mcpoauth.UpstreamToken]():        "upstream token",
}

// requireReadBack asserts that got, a record read back from the model, is
// want, the record saved, but for what a store may change without changing
// the record: a time may come back truncated or rounded to the microsecond,
// an empty slice as nil, and client metadata as any value that marshals to
// the same JSON.
func requireReadBack[T any](t *testing.T, want T, got *T) {
	t.Helper()
	name := recordNames[reflect.TypeFor[T]()]
	notNil(t, got, "the %s read back", name)
	g := *got
	if w, ok := any(&want).(*mcpoauth.Client); ok {
		gc := any(&g).(*mcpoauth.Client)
		equal(t, metadataJSON(t, w.Metadata), metadataJSON(t, gc.Metadata), "the client metadata read back differs from the one registered")
		gc.Metadata = w.Metadata
	}
	allowStoreChanges(reflect.ValueOf(&want).Elem(), reflect.ValueOf(&g).Elem())
	equal(t, want, g, "the %s read back differs from the one saved", name)
}

// allowStoreChanges sets each time.Time field of got that is want's instant
// to the microsecond to want's, and each empty []string field of either to
// nil, in the struct and in the structs it embeds.
func allowStoreChanges(want, got reflect.Value) {
	for i := range want.NumField() {
		switch w, g := want.Field(i).Addr().Interface(), got.Field(i).Addr().Interface(); w := w.(type) {
		case *time.Time:
			g := g.(*time.Time)
			*g = sameTime(*w, *g)
		case *[]string:
			g := g.(*[]string)
			*w, *g = normSlice(*w), normSlice(*g)
		default:
			if want.Type().Field(i).Anonymous && want.Field(i).Kind() == reflect.Struct {
				allowStoreChanges(want.Field(i), got.Field(i))
			}
		}
	}
}

// metadataJSON returns client metadata as the JSON object the server sends,
// decoded, without the members that are null, "" or [] (absent, in RFC 7591
// terms): what a Model must keep of client metadata, whatever it stores
// it as.
func metadataJSON(t *testing.T, m any) map[string]any {
	t.Helper()
	b, err := json.Marshal(m)
	noError(t, err)
	var obj map[string]any
	noError(t, json.Unmarshal(b, &obj))
	for k, v := range obj {
		switch v := v.(type) {
		case nil:
			delete(obj, k)
		case string:
			if v == "" {
				delete(obj, k)
			}
		case []any:
			if len(v) == 0 {
				delete(obj, k)
			}
		}
	}
	return obj
}

// requireOneWinner asserts that exactly one error is nil and every other
// one is loser (errors.Is), and returns the index of the winner.
func requireOneWinner(t *testing.T, errs []error, loser error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner != -1 {
				t.Fatalf("two concurrent calls succeeded (calls %d and %d)", winner, i)
			}
			winner = i
			continue
		}
		errorIs(t, err, loser, "a losing concurrent call failed with the wrong error")
	}
	if winner == -1 {
		t.Fatal("no concurrent call succeeded")
	}
	return winner
}

// requireErrorIsOneOf asserts err is nil or one of targets (errors.Is).
func requireErrorIsOneOf(t *testing.T, err error, targets ...error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, target := range targets {
		if errors.Is(err, target) {
			return
		}
	}
	t.Fatalf("unexpected error: got %v, want nil or one of %v", err, targets)
}

// requireRefused asserts err is an error that wraps none of the sentinel
// errors: what a Model answers for a record it must not store (an empty
// key), a caller's mistake rather than an outcome the server acts on
// (ErrNotFound would read as a revoked grant, ErrConflict as a taken key).
func requireRefused(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	if err == nil {
		t.Fatalf("%sgot no error, want one", prefix(msgAndArgs))
	}
	for _, sentinel := range []error{mcpoauth.ErrNotFound, mcpoauth.ErrConflict, mcpoauth.ErrAlreadyUsed} {
		if errors.Is(err, sentinel) {
			t.Fatalf("%sgot %v, want an error that wraps none of the sentinel errors", prefix(msgAndArgs), err)
		}
	}
}
