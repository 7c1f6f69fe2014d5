package mcpoauth

import (
	"context"
	"fmt"
	"time"
	"weak"

	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
)

const (
	// idleClientSweepInterval is how often the server deletes idle
	// dynamically registered clients: the idle period is counted in days,
	// so an hour late is on time.
	idleClientSweepInterval = time.Hour
	// idleClientSweepTimeout bounds one background sweep, so that a hung
	// store does not hold the sweeper for ever.
	idleClientSweepTimeout = 10 * time.Minute
)

// clientSweeper is the server's background deletion of idle clients.
type clientSweeper struct {
	usage ClientUsageRecorder // nil: idle clients are kept
	stop  chan struct{}
	done  chan struct{}
}

// setUpClientSweep wires the recording of client use into the grants and
// starts the hourly sweep, when the Model can record use and
// ClientIdleLifetime is not NoExpiry.
//
// The server, not the Model, runs the sweep: it passes the idle period as
// an argument (DeleteIdleClients(ctx, idleSince)), so Config is the one
// place it is set, and a Model needs no option, clock or policy of its own
// for it. Several replicas on one database each sweep; the deletes are
// idempotent.
func (s *OAuthServer) setUpClientSweep() {
	s.clientSweep.done = make(chan struct{})
	u, ok := s.cfg.Model.(ClientUsageRecorder)
	if !ok || s.cfg.ClientIdleLifetime == NoExpiry {
		close(s.clientSweep.done)
		if s.cfg.dcr && s.cfg.ClientIdleLifetime != NoExpiry {
			s.cfg.Logger.Warn("mcpoauth: the Model does not implement ClientUsageRecorder: clients registered at /register are never deleted, however long unused")
		}
		return
	}
	s.clientSweep.usage = u
	s.clientSweep.stop = make(chan struct{})
	s.grants.Usage = u
	s.grants.UseNotRecorded = func(ctx context.Context, err error) {
		s.onError(ctx, "token:record client use", oautherr.ServerError(err))
	}
	go everyWhileAlive(weak.Make(s), idleClientSweepInterval, s.clientSweep.stop, s.clientSweep.done, (*OAuthServer).sweepIdleClientsOnce)
}

// sweepIdleClientsOnce is one pass of the background client sweep, bounded
// in time; its failure goes to ErrorHandler, as it has no caller.
func (s *OAuthServer) sweepIdleClientsOnce() {
	ctx, cancel := context.WithTimeout(context.Background(), idleClientSweepTimeout)
	defer cancel()
	if _, err := s.SweepIdleClients(ctx); err != nil {
		s.onError(ctx, "sweep idle clients", oautherr.ServerError(err))
	}
}

// stopClientSweeper stops the background sweep and waits for it to exit.
func (s *OAuthServer) stopClientSweeper() {
	s.closeOnce.Do(func() {
		if s.clientSweep.stop != nil {
			close(s.clientSweep.stop)
		}
	})
	<-s.clientSweep.done
}

// SweepIdleClients deletes now, with everything issued to them (as
// DeleteClient does), the clients registered at /register that were issued
// no token for ClientIdleLifetime, and returns how many it deleted.
// Pre-registered clients are kept. The server calls it every hour until
// Close; call it yourself to sweep at another moment. It does nothing when
// ClientIdleLifetime is NoExpiry or the Model does not implement
// ClientUsageRecorder.
func (s *OAuthServer) SweepIdleClients(ctx context.Context) (int, error) {
	if s.clientSweep.usage == nil {
		return 0, nil
	}
	n, err := s.clientSweep.usage.DeleteIdleClients(ctx, s.cfg.Now().Add(-s.cfg.ClientIdleLifetime))
	if n > 0 {
		s.telemetry.Emit(ctx, audit.Event{Type: audit.ClientsSwept, Count: n})
	}
	if err != nil {
		return n, fmt.Errorf("mcpoauth: sweep idle clients: %w", err)
	}
	return n, nil
}
