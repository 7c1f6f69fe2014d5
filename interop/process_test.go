package interop

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/interop/output"
	"github.com/stretchr/testify/require"
)

// process is a server the tests run as its own process (the example server,
// oidc-provider): it announces on stdout that it is ready, and stops on
// SIGTERM.
type process struct {
	// name says which server it is in the test's messages.
	name string
	cmd  *exec.Cmd
	// lines are its stdout lines; those the reader is not waiting for are
	// dropped.
	lines chan string
	// exited is closed when the process has ended; waitErr is then how.
	exited  chan struct{}
	waitErr error
}

// startProcess starts cmd, whose stdout it reads; cmd.Stdout must be unset.
func startProcess(name string, cmd *exec.Cmd) (*process, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.WaitDelay = stopTimeout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{name: name, cmd: cmd, lines: make(chan string, 16), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// waitReady returns the submatches of the first stdout line ready matches.
// It fails if the process exits first, or stops it if no such line comes
// within startTimeout; logs are its stderr, for the error.
func (p *process) waitReady(t *testing.T, ready *regexp.Regexp, logs fmt.Stringer) ([]string, error) {
	timeout := time.NewTimer(startTimeout)
	defer timeout.Stop()
	for {
		select {
		case line := <-p.lines:
			if m := ready.FindStringSubmatch(line); m != nil {
				return m, nil
			}
		case <-p.exited:
			return nil, fmt.Errorf("%s exited (%v) before it was ready:\n%s", p.name, p.waitErr, logs)
		case <-timeout.C:
			p.stop(t)
			return nil, fmt.Errorf("%s was not ready within %s:\n%s", p.name, startTimeout, logs)
		}
	}
}

// stop sends SIGTERM and waits for the process to exit, killing it (and
// failing t) after stopTimeout. It may be called again once the process
// has exited.
func (p *process) stop(t *testing.T) {
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		t.Errorf("%s did not stop within %s of SIGTERM; killed", p.name, stopTimeout)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	if d := time.Since(start); d > time.Second {
		t.Logf("%s took %s to stop", p.name, d.Round(time.Millisecond))
	}
}

// command is a client under test run as its own process (the example
// client, client.mjs): its stdout kept, its stderr followed line by line.
// It is killed when the test ends if it still runs, and its output is
// logged if the test failed.
type command struct {
	name   string
	stdout *output.Buffer
	stderr *output.Lines
	// done has Wait's error; who takes it puts it back.
	done chan error
}

// startCommand starts cmd, whose Stdout and Stderr must be unset, as the
// command name ("client.mjs").
func startCommand(t *testing.T, name string, cmd *exec.Cmd) *command {
	t.Helper()
	c := &command{name: name, stdout: &output.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout = c.stdout
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	cmd.WaitDelay = 5 * time.Second
	require.NoError(t, cmd.Start())
	c.stderr = output.Follow(stderr)
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case err := <-c.done:
			c.done <- err
		default:
			_ = cmd.Process.Kill() // a failed test left it waiting
		}
		<-c.done
		if t.Failed() {
			t.Logf("%s stderr:\n%s\nstdout:\n%s", name, c.stderr, c.stdout)
		}
	})
	return c
}

// exited waits, while ctx lasts, for the command to exit successfully.
func (c *command) exited(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		require.NoError(t, err, "%s: %s", c.name, c.stdout)
	case <-ctx.Done():
		t.Fatalf("%s did not finish: %v", c.name, ctx.Err())
	}
}
