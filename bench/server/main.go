// Command server is the load-test target: mcpoauth wired as internal/benchapp
// describes (rate limits off, consent auto-approved for one user), on a
// loopback address.
//
//	go build -o /tmp/bench-server ./bench/server
//	/tmp/bench-server -addr 127.0.0.1:8080
//
// With -db URL it runs on the PostgreSQL model instead of the memory one,
// with the verification cache (postgres.Options.VerificationCache), after
// migrating the database; several servers given the same URL are replicas
// of one deployment (bench/load.sh REPLICAS=2).
//
// It prints "listening http://HOST:PORT" once it accepts connections and
// stops on SIGINT or SIGTERM. bench/load.sh drives it.
//
// It is a module of its own, so that the root module (whose
// internal/benchapp it shares with the in-process benchmarks of the
// integration module) never requires pgx.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/benchapp"
	"github.com/mcpoauth/mcpoauth/postgres"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address `HOST:PORT` (loopback)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to `FILE` (for go tool pprof)")
	db := flag.String("db", "", "run on the PostgreSQL model at `URL`, with the verification cache (default: the memory model)")
	noCache := flag.Bool("no-cache", false, "with -db, turn the verification cache off")
	issuer := flag.String("issuer", "", "the issuer `URL` (default: http:// and the listen address); replicas share one")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench server:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*addr, *issuer, *db, !*noCache); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench server:", err)
		os.Exit(1)
	}
}

func run(addr, issuer, db string, cache bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var model mcpoauth.Model
	if db != "" {
		pm, err := postgres.Open(ctx, db, postgres.Options{VerificationCache: cache})
		if err != nil {
			return err
		}
		defer pm.Close()
		if err := pm.Migrate(ctx); err != nil {
			return err
		}
		model = pm
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	app, err := benchapp.New(cmp.Or(issuer, base), model)
	if err != nil {
		return err
	}
	defer app.Close()
	hs := &http.Server{
		Handler:           app.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(os.Stderr, "bench server: ", 0),
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	fmt.Println("listening", base)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
