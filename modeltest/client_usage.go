package modeltest

import (
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/together"

	"github.com/mcpoauth/mcpoauth"
)

// usageRecorder returns the model as a ClientRegistrar and a
// ClientUsageRecorder, or skips the test.
func usageRecorder(t *testing.T, k *kit) (mcpoauth.ClientRegistrar, mcpoauth.ClientUsageRecorder) {
	t.Helper()
	r := registrar(t, k)
	return r, capability[mcpoauth.ClientUsageRecorder](t, k)
}

// dynamicClient returns a client as /register stores it: not
// pre-registered, last used at lastUsed.
func dynamicClient(id string, lastUsed time.Time) *mcpoauth.Client {
	c := publicClient(id)
	c.LastUsedAt = lastUsed
	return c
}

// idleSince is the cut-off the sweep clauses pass: 90 days before the
// subtest started, in whole seconds, so that a store that keeps
// microseconds stores a LastUsedAt of exactly idleSince as it is.
func (k *kit) idleSince() time.Time {
	return k.now.Add(-90 * 24 * time.Hour).Truncate(time.Second)
}

var recordClientUseClauses = []clause{
	{"SetsLastUsedAt", func(t *testing.T, k *kit) {
		r, u := usageRecorder(t, k)
		for _, tc := range []struct {
			name      string
			stored    time.Time
			at        time.Time
			wantAfter time.Time
		}{
			{"later use", k.now.Add(-48 * time.Hour), k.now, k.now},
			{"unknown until now", time.Time{}, k.now, k.now},
			{"earlier use changes nothing", k.now, k.now.Add(-time.Hour), k.now},
		} {
			c := dynamicClient(clientA, tc.stored)
			want := copyClient(c)
			want.LastUsedAt = tc.wantAfter
			noError(t, r.RegisterClient(k.ctx, c), tc.name)
			noError(t, u.RecordClientUse(k.ctx, clientA, tc.at), tc.name)
			got, err := k.m.GetClient(k.ctx, clientA)
			noError(t, err, tc.name)
			requireReadBack(t, want, got)
			noError(t, r.DeleteClient(k.ctx, clientA), tc.name)
		}
	}},
	{"MissingIsNotFound", func(t *testing.T, k *kit) {
		r, u := usageRecorder(t, k)
		a := dynamicClient(clientA, k.now.Add(-48*time.Hour))
		want := copyClient(a)
		noError(t, r.RegisterClient(k.ctx, a))
		for _, id := range otherClients {
			errorIs(t, u.RecordClientUse(k.ctx, id, k.now), mcpoauth.ErrNotFound, "client_id %q", id)
		}
		k.requireClient(t, want)
	}},
}

var deleteIdleClientsClauses = []clause{
	{"RemovesIdleDynamicClientsOnly", func(t *testing.T, k *kit) {
		r, u := usageRecorder(t, k)
		idleSince := k.idleSince()
		idle := dynamicClient(clientA, idleSince.Add(-time.Hour))
		noError(t, r.RegisterClient(k.ctx, idle))
		gone := k.liveGrant(t, clientA, newGrantID())
		goneRequest := k.saveRequest(t, k.request(clientA))

		// What stays: a client used since, one whose use is unknown, a
		// static one idle as long, and one used exactly at idleSince.
		var stays []mcpoauth.Client
		for _, c := range []*mcpoauth.Client{
			dynamicClient(clientB, k.now.Add(-time.Hour)),
			dynamicClient("client-unknown-use", time.Time{}),
			dynamicClient("client-at-the-limit", idleSince),
			func() *mcpoauth.Client {
				c := confidentialClient(k, "client-static")
				c.LastUsedAt = idleSince.Add(-time.Hour)
				return c
			}(),
		} {
			stays = append(stays, copyClient(c))
			noError(t, r.RegisterClient(k.ctx, c))
		}
		staysGrant := k.liveGrant(t, clientB, newGrantID())
		staysRequest := k.saveRequest(t, k.request(clientB))

		n, err := u.DeleteIdleClients(k.ctx, idleSince)
		noError(t, err)
		equal(t, 1, n, "clients deleted")
		k.requireNoClient(t, clientA)
		k.requireGrantGone(t, gone)
		k.requireNoRequest(t, goneRequest.ID)
		for _, want := range stays {
			k.requireClient(t, want)
		}
		k.requireGrantIntact(t, staysGrant)
		k.requireRequest(t, staysRequest)

		n, err = u.DeleteIdleClients(k.ctx, idleSince)
		noError(t, err)
		equal(t, 0, n, "clients deleted by a second sweep")
	}},
	{"RecentUseKeepsTheClient", func(t *testing.T, k *kit) {
		r, u := usageRecorder(t, k)
		idleSince := k.idleSince()
		noError(t, r.RegisterClient(k.ctx, dynamicClient(clientA, idleSince.Add(-time.Hour))))
		noError(t, u.RecordClientUse(k.ctx, clientA, k.now))
		n, err := u.DeleteIdleClients(k.ctx, idleSince)
		noError(t, err)
		equal(t, 0, n, "clients deleted")
		_, err = k.m.GetClient(k.ctx, clientA)
		noError(t, err)
	}},
	{"RacesRecordClientUse", func(t *testing.T, k *kit) {
		// A token issue records a use of a client the sweep is deleting:
		// either the use lands first and the client stays, or it answers
		// ErrNotFound and the client is gone; never a use recorded on a
		// client the sweep then deletes.
		r, u := usageRecorder(t, k)
		idleSince := k.idleSince()
		var kept, deleted int
		for range RaceRounds {
			noError(t, r.RegisterClient(k.ctx, dynamicClient(clientA, idleSince.Add(-time.Hour))))
			var n int
			errs := together.Run(2, func(i int) error {
				if i == 1 {
					var err error
					n, err = u.DeleteIdleClients(k.ctx, idleSince)
					return err
				}
				return u.RecordClientUse(k.ctx, clientA, k.now)
			})
			noError(t, errs[1], "DeleteIdleClients")
			_, err := k.m.GetClient(k.ctx, clientA)
			if errs[0] == nil {
				kept++
				noError(t, err, "the client whose use was recorded")
				equal(t, 0, n, "clients deleted")
				noError(t, r.DeleteClient(k.ctx, clientA))
			} else {
				deleted++
				errorIs(t, errs[0], mcpoauth.ErrNotFound)
				errorIs(t, err, mcpoauth.ErrNotFound)
				equal(t, 1, n, "clients deleted")
			}
		}
		t.Logf("%d uses before the sweep, %d after it", kept, deleted)
	}},
}
