package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mcpoauth/mcpoauth/internal/benchapp"
)

// fill issues exactly -n client_credentials access tokens on -c
// connections, each a new live token and grant in the server, then prints
// the server process's resident memory:
//
//	FILL tokens=N rss_kib=X
//
// Issue 17 measures the whole process's RSS with a million live tokens
// this way (loadgen fill -n 1000000 -pid PID).
func fill(args []string) error {
	fs := flag.NewFlagSet("fill", flag.ExitOnError)
	base := fs.String("base", "http://127.0.0.1:8080", "base `URL` of bench/server")
	n := fs.Int64("n", 1_000_000, "how many tokens to issue")
	conns := fs.Int("c", 8, "concurrent keep-alive connections")
	pid := fs.Int("pid", 0, "server process id whose VmRSS to report (0: none)")
	_ = fs.Parse(args)

	id, secret, err := registerAt(*base, benchapp.ConfidentialClientJSON)
	if err != nil {
		return err
	}
	auth := "Authorization: Basic " + basicCredentials(id, secret)

	// A worker stops at its first error, which fails the run.
	var (
		next     atomic.Int64
		firstErr atomic.Pointer[error]
		wg       sync.WaitGroup
	)
	for range *conns {
		c, err := newConn(*base)
		if err != nil {
			return err
		}
		wg.Go(func() {
			defer c.close()
			for next.Add(1) <= *n {
				r, err := c.do(http.MethodPost, "/token", []string{formType, auth}, benchapp.ClientCredentialsForm)
				if err == nil {
					err = expect(r, http.StatusOK)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	rss := int64(-1)
	if *pid > 0 {
		if rss, err = vmRSS(*pid); err != nil {
			return err
		}
	}
	fmt.Printf("FILL tokens=%d rss_kib=%d\n", *n, rss)
	return nil
}

// vmRSS reads the resident set size of process pid, in KiB.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib int64
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib)
			return kib, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
