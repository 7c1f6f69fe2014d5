// Package modeltest is the conformance kit for implementations of
// mcpoauth.Model, as testing/fstest is for file systems: every Model, the
// embedded MemoryModel and the PostgreSQL one included, passes Run.
//
// # Running it against your Model
//
// Call Run from a test in your package with a function that returns a fresh,
// empty model. Run calls it once per subtest, with that subtest's *testing.T,
// so subtests never see each other's records; release the model with
// t.Cleanup:
//
//	func TestConformance(t *testing.T) {
//		modeltest.Run(t, func(t *testing.T) mcpoauth.Model {
//			m, err := mystore.New(mystore.Options{ /* an empty store */ })
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { m.Close() })
//			return m
//		})
//	}
//
// The kit is built on the standard library's testing alone: running it adds
// no assertion library to your build.
//
// Run the tests with -race: the concurrency subtests are meant to be run
// under the race detector. Subtests are named after the clause of the
// contract they check ("ConsumeAuthorizationCode/OtherClientIsNotFound"), so
// -run selects one, and a failure names the clause that was broken.
//
// RunBenchmarks measures token verification (GetToken) and issuance
// (SaveTokens of an access and a refresh token) the same way, so that
// figures of different Models compare:
//
//	func BenchmarkModel(b *testing.B) {
//		modeltest.RunBenchmarks(b, func(b *testing.B) mcpoauth.Model { ... })
//	}
//
// # What it checks
//
// Every clause of the Model contract (see mcpoauth.Model) and of each
// method's documentation: the sentinel errors, tested with errors.Is
// (ErrNotFound, ErrAlreadyUsed, ErrConflict); client scoping (another
// client's code or token is ErrNotFound and is left unchanged, even once
// used); used codes and rotated refresh tokens still returned, with Used set;
// all-or-nothing saves (a consume or rotation whose issued tokens collide
// leaves the credential unused and saves nothing); records a Model must not
// store (a nil record, a zero digest, a client with an empty ID) refused
// with an error that is no sentinel, and not stored; RevokeGrant (the grant's
// tokens and codes go, other grants stay, an empty grant ID matches nothing,
// later saves of the grant fail with ErrNotFound); cancelled and expired
// contexts (an error that wraps the context's error, and no change); and
// atomicity: 50 goroutines redeeming one authorization code, rotating one
// refresh token or consuming one pending request, of which exactly one
// succeeds (three rounds each, on fresh credentials), and RevokeGrant
// racing each save of a grant's tokens or codes for 100 rounds, after which
// no token or code of the grant is visible. A concurrency test can only
// make a race likely, not certain: run the kit with -race, and more than
// once (-count) when you change your Model's locking.
//
// Optional capabilities are checked when the Model has them (found by type
// assertion, as the server finds them): ClientRegistrar, whose clauses add
// an update that replaces the whole record and never creates one, a delete
// that removes the client with every token, code, pending request and
// device authorization of it (and nothing of another client's), a delete
// racing a save of the client's tokens for 100 rounds, and 50 concurrent
// registrations and updates of one static client through the server
// (OAuthServer.RegisterClient and UpdateClient), all of which must succeed;
// ClientUsageRecorder, whose clauses add a recorded use that never moves
// LastUsedAt back, a sweep that deletes idle dynamic clients with
// everything issued to them and keeps static, recently used and
// never-recorded ones, and a sweep racing a recorded use for 100 rounds;
// and DeviceStore (RFC 8628), whose clauses add 50 concurrent decisions of
// one pending device authorization, 50 concurrent polls, polls racing the
// decision (a poll never writes "pending" back over it), and 50 concurrent
// redemptions of one approved device code: in each, exactly one succeeds.
// GrantStore's clauses add grant records that round-trip with their
// upstream identity (claims as json.Unmarshal makes them), are immutable
// (a second save is ErrConflict), are refused with an empty ID (an error
// that is no sentinel), are listed per user across clients, and go with
// RevokeGrant (a later save is ErrNotFound, and a save or a recorded use
// racing it for 100 rounds leaves nothing), DeleteClient and
// DeleteIdleClients; 50 concurrent uses of one grant, all of which must
// succeed, the latest kept; and a grant revoked while 4 goroutines rotate
// its refresh token, after which nothing of it is visible.
// UpstreamTokenStore's add sealed bytes kept as they are, entries refused
// with an empty ID, a compare-and-set replacement (16 concurrent
// replacements at one version: exactly one succeeds), 50 concurrent
// consumptions of one entry (exactly one gets it), and entries that go
// with RevokeGrant and DeleteClient, and cannot be saved, nor bound by a
// replacement, for a revoked grant, even racing the revocation.
//
// # What a Model may normalise
//
// The kit compares every field of every record it reads back with the one it
// saved, with these allowances, which a store with its own types needs:
//
//   - Times may lose precision below a microsecond (PostgreSQL keeps
//     microseconds), truncated or rounded; the instant is compared with
//     time.Time.Equal, so the location does not matter. A zero time must
//     come back zero.
//   - A nil and an empty slice are the same: a Model may return either for
//     either. The order and repetitions of the elements must be kept.
//   - Client metadata is compared as JSON, the form the server receives and
//     sends it in: a Model may store it as JSON and re-encode it (the jwks
//     member is compared as a JSON value, not as bytes), and a member that
//     is null, "" or [] counts as absent.
//   - Records returned may be the stored pointers or copies.
//   - A grant's identity claims are compared as JSON values decode: a
//     number is a float64, a list a []any, an object a map[string]any.
//
// Strings must round-trip exactly. The state of an authorization request is
// copied from the client's request byte for byte, so it must round-trip any
// bytes (NUL and invalid UTF-8 included); and any string may be asked for as
// a client ID, so GetClient and the client-scoped methods answer ErrNotFound
// for an unknown one whatever its bytes, never a storage error.
//
// # Digests only
//
// The kit can only check what a Model returns, not what it writes to its
// storage. It checks that every record is stored and found under the Digest
// it is given, that all 32 bytes of a digest count, and that nothing needs a
// raw credential: the kit never has one, its digests are random bytes, not
// digests of anything. That a Model writes nothing else (no logging of
// records, no raw values) is for its author to make sure of.
package modeltest
