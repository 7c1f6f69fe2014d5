// Command server is the load-test target: mcpoauth wired as bench/benchapp
// describes (rate limits off, consent auto-approved for one user), on a
// loopback address.
//
//	go build -o /tmp/bench-server ./bench/server
//	/tmp/bench-server -addr 127.0.0.1:8080
//
// It prints "listening http://HOST:PORT" once it accepts connections and
// stops on SIGINT or SIGTERM. bench/load.sh drives it.
package main

import (
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

	"github.com/mcpoauth/mcpoauth/bench/benchapp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address `HOST:PORT` (loopback)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to `FILE` (for go tool pprof)")
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
	if err := run(*addr); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench server:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	app, err := benchapp.New(base, nil)
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
