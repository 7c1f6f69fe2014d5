package modeltest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/together"

	"github.com/mcpoauth/mcpoauth"
)

// replayStore returns the model as an AssertionReplayStore, or skips the
// test.
var replayStore = capability[mcpoauth.AssertionReplayStore]

var useAssertionIDClauses = []clause{
	{"SecondUseIsAlreadyUsed", func(t *testing.T, k *kit) {
		s := replayStore(t, k)
		exp := k.now.Add(time.Hour)
		noError(t, s.UseAssertionID(k.ctx, clientA, "jti-1", exp), "first use")
		errorIs(t, s.UseAssertionID(k.ctx, clientA, "jti-1", exp), mcpoauth.ErrAlreadyUsed, "second use")
		errorIs(t, s.UseAssertionID(k.ctx, clientA, "jti-1", exp.Add(time.Hour)), mcpoauth.ErrAlreadyUsed, "a later exp does not make it new")
		noError(t, s.UseAssertionID(k.ctx, clientA, "jti-2", exp), "another jti")
	}},
	{"PerClient", func(t *testing.T, k *kit) {
		s := replayStore(t, k)
		exp := k.now.Add(time.Hour)
		noError(t, s.UseAssertionID(k.ctx, clientA, "shared-jti", exp), "client A")
		noError(t, s.UseAssertionID(k.ctx, clientB, "shared-jti", exp), "the same jti from client B is another id")
		// The pair is digested as a whole: a client_id and a jti that
		// concatenate alike are still two pairs.
		noError(t, s.UseAssertionID(k.ctx, "client-a\x00x", "y", exp), "shifted boundary")
		noError(t, s.UseAssertionID(k.ctx, "client-a", "x\x00y", exp), "shifted boundary, the other way")
	}},
	{"ExactlyOneConcurrentUse", func(t *testing.T, k *kit) {
		s := replayStore(t, k)
		for round := range ConcurrencyRounds {
			jti := fmt.Sprintf("race-%d", round)
			errs := together.Run(Concurrency, func(int) error {
				return s.UseAssertionID(k.ctx, clientA, jti, k.now.Add(time.Hour))
			})
			requireOneWinner(t, errs, mcpoauth.ErrAlreadyUsed)
		}
	}},
	{"CanceledContext", func(t *testing.T, k *kit) {
		s := replayStore(t, k)
		ctx, cancel := context.WithCancel(k.ctx)
		cancel()
		if err := s.UseAssertionID(ctx, clientA, "jti-c", k.now.Add(time.Hour)); err == nil {
			t.Fatal("UseAssertionID with a canceled context succeeded")
		}
		noError(t, s.UseAssertionID(k.ctx, clientA, "jti-c", k.now.Add(time.Hour)), "a canceled call recorded nothing")
	}},
}
