package modeltest

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/together"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/metadata"
)

var getClientClauses = []clause{
	{"UnknownIsNotFound", func(t *testing.T, k *kit) {
		// Any string can arrive as a client_id: a lookup of one no client
		// has is ErrNotFound, never a storage error.
		k.requireNoClient(t, append(otherClients, "unknown", strings.Repeat("x", 4096))...)
	}},
}

var registerClientClauses = []clause{
	{"RoundTrip", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		for _, c := range []*mcpoauth.Client{confidentialClient(k, clientA), publicClient(clientB)} {
			want := copyClient(c)
			noError(t, r.RegisterClient(k.ctx, c))
			got, err := k.m.GetClient(k.ctx, want.ID)
			noError(t, err)
			requireReadBack(t, want, got)
			equal(t, want.IsPublic(), got.IsPublic())
		}
	}},
	{"DuplicateIDIsConflict", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		orig := confidentialClient(k, clientA)
		want := copyClient(orig)
		noError(t, r.RegisterClient(k.ctx, orig))

		// A second registration under the same ID must not replace the
		// first: that would hand the client to whoever registered last.
		err := r.RegisterClient(k.ctx, publicClient(clientA))
		errorIs(t, err, mcpoauth.ErrConflict)
		k.requireClient(t, want)
	}},
	{"IDIsMatchedExactly", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		noError(t, r.RegisterClient(k.ctx, publicClient(clientA)))
		k.requireNoClient(t, otherClients...)
	}},
	{"EmptyIDIsRefused", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		// An empty client_id names no client (no record belongs to no
		// client): the registration is refused with an error that is no
		// sentinel, and nothing is stored. A Model may answer a lookup
		// of "" without looking, so a sweep of idle clients, which
		// would count a stored one, checks too.
		requireClientIDRefused(t, k, r, "")
	}},
	{"UnstorableIDIsRefused", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		// An ID that is not valid UTF-8, or holds a NUL byte, fits no
		// database text column, and every lookup answers ErrNotFound for
		// it: every Model refuses to register it, as an empty one.
		for _, id := range []string{"client\x00a", "client\xffa"} {
			requireClientIDRefused(t, k, r, id)
		}
	}},
}

var updateClientClauses = []clause{
	{"MissingIsNotFound", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		b := publicClient(clientB)
		want := copyClient(b)
		noError(t, r.RegisterClient(k.ctx, b))
		// An update is not an upsert: the server registers with
		// RegisterClient, and must learn that a client it read is gone.
		for _, id := range append([]string{clientA}, otherClients...) {
			if id == clientB {
				continue
			}
			errorIs(t, r.UpdateClient(k.ctx, confidentialClient(k, id)), mcpoauth.ErrNotFound, "client_id %q", id)
		}
		_, err := k.m.GetClient(k.ctx, clientA)
		errorIs(t, err, mcpoauth.ErrNotFound, "UpdateClient created a client")
		k.requireClient(t, want)
	}},
	{"ReplacesMetadataAndDigest", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		other := confidentialClient(k, clientB)
		otherWant := copyClient(other)
		noError(t, r.RegisterClient(k.ctx, other))
		noError(t, r.RegisterClient(k.ctx, confidentialClient(k, clientA)))

		// Every field changes, the secret digest included; then the
		// client turns public (no digest), then confidential again.
		changed := confidentialClient(k, clientA)
		changed.SecretExpiresAt = k.now.Add(time.Hour)
		changed.IssuedAt = k.now.Add(-time.Hour)
		changed.Metadata.ClientName = "Renamed"
		changed.Metadata.RedirectURIs = []string{"https://client.example.com/other"}
		changed.Metadata.GrantTypes = []string{"client_credentials"}
		changed.Metadata.ResponseTypes = nil
		changed.Metadata.Scope = "read"
		public := publicClient(clientA)
		for _, c := range []*mcpoauth.Client{changed, public, confidentialClient(k, clientA)} {
			want := copyClient(c)
			noError(t, r.UpdateClient(k.ctx, c))
			got, err := k.m.GetClient(k.ctx, clientA)
			noError(t, err)
			requireReadBack(t, want, got)
			equal(t, want.IsPublic(), got.IsPublic())
		}
		k.requireClient(t, otherWant)
	}},
	{"ConcurrentServerUpsertsAllSucceed", func(t *testing.T, k *kit) {
		registrar(t, k)
		srv := k.server(t)
		const id = "static-client"
		info := func(i int) metadata.ClientInformation {
			return metadata.ClientInformation{
				ClientID:     id,
				ClientSecret: fmt.Sprintf("secret-%03d-%s", i, strings.Repeat("x", 32)),
				ClientMetadata: metadata.ClientMetadata{
					ClientName:   fmt.Sprintf("Static %d", i),
					RedirectURIs: []string{"https://client.example.com/cb"},
				},
			}
		}
		// First N replicas register a new client at once, then N more
		// register or update it at once: each call reads the client and
		// registers or updates it, and every one must succeed whatever
		// the others did in between.
		var issuedAt int64
		for round, update := range []func(i int) bool{
			func(int) bool { return false },
			func(i int) bool { return i%2 == 1 },
		} {
			outs := make([]*metadata.ClientInformation, Concurrency)
			errs := together.Run(Concurrency, func(i int) error {
				var err error
				if update(i) {
					outs[i], err = srv.UpdateClient(k.ctx, info(i))
				} else {
					outs[i], err = srv.RegisterClient(k.ctx, info(i))
				}
				return err
			})
			for i, err := range errs {
				noError(t, err, "round %d, call %d", round, i)
			}
			// The client is what one of the calls said, all of it: not
			// one call's name with another's secret.
			got, err := k.m.GetClient(k.ctx, id)
			noError(t, err)
			var n int
			_, err = fmt.Sscanf(got.Metadata.ClientName, "Static %d", &n)
			noError(t, err, "client_name %q", got.Metadata.ClientName)
			equal(t, mcpoauth.Digest(sha256.Sum256([]byte(info(n).ClientSecret))), got.SecretDigest,
				"the stored secret is not the one of the call whose metadata is stored")
			if round == 0 {
				issuedAt = got.IssuedAt.Unix()
			}
			for _, out := range outs {
				equal(t, issuedAt, out.ClientIDIssuedAt, "client_id_issued_at changed on an update")
			}
		}
	}},
}

var deleteClientClauses = []clause{
	{"RemovesTheClientAndEverythingIssuedToIt", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		noError(t, r.RegisterClient(k.ctx, confidentialClient(k, clientA)))
		other := publicClient(clientB)
		otherWant := copyClient(other)
		noError(t, r.RegisterClient(k.ctx, other))

		gone := k.liveGrant(t, clientA, newGrantID())
		goneTokens := k.saveTokens(t, k.token(mcpoauth.AccessToken, clientA, newGrantID()))
		goneRequest := k.saveRequest(t, k.request(clientA))
		stays := k.liveGrant(t, clientB, newGrantID())
		staysRequest := k.saveRequest(t, k.request(clientB))
		ds, hasDevices := k.m.(mcpoauth.DeviceStore)
		var goneDevices, staysDevices []mcpoauth.DeviceAuthorization
		if hasDevices {
			goneDevices = []mcpoauth.DeviceAuthorization{
				k.saveDevice(t, ds, k.device(clientA)),
				k.approve(t, ds, k.saveDevice(t, ds, k.device(clientA)), "user-1"),
			}
			staysDevices = []mcpoauth.DeviceAuthorization{k.saveDevice(t, ds, k.device(clientB))}
		}

		noError(t, r.DeleteClient(k.ctx, clientA))
		k.requireNoClient(t, clientA)
		k.requireGrantGone(t, gone)
		k.requireNoToken(t, goneTokens[0].Digest)
		k.requireNoRequest(t, goneRequest.ID)
		for _, d := range goneDevices {
			k.requireNoDevice(t, ds, d)
		}
		// Nothing of another client goes.
		k.requireClient(t, otherWant)
		k.requireGrantIntact(t, stays)
		k.requireRequest(t, staysRequest)
		for _, d := range staysDevices {
			k.requireDevice(t, ds, d)
		}
	}},
	{"MissingIsNotFound", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		a := publicClient(clientA)
		want := copyClient(a)
		noError(t, r.RegisterClient(k.ctx, a))
		// Records of a client that is not registered (one of a client ID
		// metadata document) stay, as does every other client.
		unregistered := "https://app.example.com/client.json"
		g := k.liveGrant(t, unregistered, newGrantID())
		for _, id := range append(otherClients, unregistered) {
			errorIs(t, r.DeleteClient(k.ctx, id), mcpoauth.ErrNotFound, "client_id %q", id)
		}
		k.requireGrantIntact(t, g)
		k.requireClient(t, want)
		noError(t, r.DeleteClient(k.ctx, clientA))
		errorIs(t, r.DeleteClient(k.ctx, clientA), mcpoauth.ErrNotFound, "a second delete")
	}},
	{"RegisterAfterDeleteSucceeds", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		noError(t, r.RegisterClient(k.ctx, confidentialClient(k, clientA)))
		noError(t, r.DeleteClient(k.ctx, clientA))
		again := publicClient(clientA)
		want := copyClient(again)
		noError(t, r.RegisterClient(k.ctx, again))
		k.requireClient(t, want)
	}},
	{"RacesSaveTokens", func(t *testing.T, k *kit) {
		// A client-credentials grant saves a token of a client it
		// authenticated a moment ago, then looks the client up again.
		// Either the save landed before the delete, which removed the
		// token, or that look finds the client gone (and the server hands
		// nothing out); never a token saved unseen by the delete while the
		// client still looked registered.
		r := registrar(t, k)
		var before, after int
		for range RaceRounds {
			noError(t, r.RegisterClient(k.ctx, confidentialClient(k, clientA)))
			issued := k.token(mcpoauth.AccessToken, clientA, newGrantID())
			var seen error
			errs := together.Run(2, func(i int) error {
				if i == 1 {
					return r.DeleteClient(k.ctx, clientA)
				}
				if err := k.m.SaveTokens(k.ctx, issued); err != nil {
					return err
				}
				_, seen = k.m.GetClient(k.ctx, clientA)
				return nil
			})
			noError(t, errs[0], "SaveTokens")
			noError(t, errs[1], "DeleteClient")
			if seen == nil {
				before++
				k.requireNoToken(t, issued.Digest)
			} else {
				after++
				errorIs(t, seen, mcpoauth.ErrNotFound)
			}
		}
		t.Logf("%d saves before the delete, %d after it", before, after)
	}},
}

// server returns an authorization server on the kit's model, for the
// clauses that check what the server does through the model.
func (k *kit) server(t *testing.T) *mcpoauth.OAuthServer {
	t.Helper()
	srv, err := mcpoauth.New(mcpoauth.Config{
		Model:            k.m,
		Issuer:           "https://as.example.com",
		AuthorizationURL: "https://as.example.com/consent",
		Logger:           slog.New(slog.DiscardHandler),
	})
	noError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// requireClient asserts GetClient returns a client equal to want.
func (k *kit) requireClient(t *testing.T, want mcpoauth.Client) {
	t.Helper()
	requireFound(t, k.ctx, "GetClient of a stored client", k.m.GetClient, want.ID, want)
}

// requireNoClient asserts GetClient answers ErrNotFound for each ID.
func (k *kit) requireNoClient(t *testing.T, ids ...string) {
	t.Helper()
	requireNotFound(t, k.ctx, "GetClient of a client", k.m.GetClient, ids...)
}

// registrar returns the model as a ClientRegistrar, or skips the test.
var registrar = capability[mcpoauth.ClientRegistrar]

// confidentialClient returns a client with a secret, every metadata field
// set, and the flags of a pre-registered client (publicClient has them
// unset, so both values of each must survive a round trip).
func confidentialClient(k *kit, id string) *mcpoauth.Client {
	return &mcpoauth.Client{
		ID:                  id,
		SecretDigest:        newDigest(),
		SecretExpiresAt:     k.now.Add(90 * 24 * time.Hour),
		IssuedAt:            k.now,
		LastUsedAt:          k.now.Add(-time.Minute),
		PreRegistered:       true,
		AuthMethodDefaulted: true,
		Metadata: metadata.ClientMetadata{
			RedirectURIs:            []string{"https://client.example.com/cb", "http://127.0.0.1/cb"},
			TokenEndpointAuthMethod: "client_secret_basic",
			GrantTypes:              []string{"authorization_code", "refresh_token", "client_credentials"},
			ResponseTypes:           []string{"code"},
			ClientName:              "Example \u00e9 <Client> & \"Co\"",
			ClientURI:               "https://client.example.com/",
			LogoURI:                 "https://client.example.com/logo.png",
			Scope:                   "mcp:tools read",
			Contacts:                []string{"ops@client.example.com", "dev@client.example.com"},
			TOSURI:                  "https://client.example.com/tos",
			PolicyURI:               "https://client.example.com/policy",
			JWKS:                    json.RawMessage(`{"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`),
			SoftwareID:              "4NRB1-0XZABZI9E6-5SM3R",
			SoftwareVersion:         "2.1",
			ApplicationType:         "web",
		},
	}
}

// publicClient returns a client without a secret (zero SecretDigest and
// SecretExpiresAt) and minimal metadata.
func publicClient(id string) *mcpoauth.Client {
	return &mcpoauth.Client{
		ID:       id,
		IssuedAt: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		Metadata: metadata.ClientMetadata{
			RedirectURIs:            []string{"http://localhost/callback"},
			TokenEndpointAuthMethod: "none",
			GrantTypes:              []string{"authorization_code"},
		},
	}
}

func copyClient(c *mcpoauth.Client) mcpoauth.Client {
	out := *c
	m := &out.Metadata
	m.RedirectURIs = append([]string(nil), m.RedirectURIs...)
	m.GrantTypes = append([]string(nil), m.GrantTypes...)
	m.ResponseTypes = append([]string(nil), m.ResponseTypes...)
	m.Contacts = append([]string(nil), m.Contacts...)
	m.JWKS = append(json.RawMessage(nil), m.JWKS...)
	return out
}

// requireClientIDRefused asserts that RegisterClient refuses a client with
// this ID with an error that is no sentinel, and stores nothing.
func requireClientIDRefused(t *testing.T, k *kit, r mcpoauth.ClientRegistrar, id string) {
	t.Helper()
	c := dynamicClient(id, k.idleSince().Add(-time.Hour))
	requireRefused(t, r.RegisterClient(k.ctx, c), "RegisterClient of a client with ID %q", id)
	k.requireNoClient(t, id)
	if u, ok := k.m.(mcpoauth.ClientUsageRecorder); ok {
		n, err := u.DeleteIdleClients(k.ctx, k.idleSince())
		noError(t, err)
		equal(t, 0, n, "idle clients deleted after the refused registration of %q", id)
	}
}
