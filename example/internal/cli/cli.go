// Package cli is what the example's commands share: how main ends the
// process, and how the flags are read and their errors reported.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// UsageError is a command-line error the flag package has already reported,
// with the usage.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Main calls run with the command's arguments and standard streams and a
// context that ends on SIGINT or SIGTERM, then exits: 2 after a
// UsageError, 1 after another error, printed as "name: error".
func Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	var uerr UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &uerr):
		os.Exit(2) // the flag package printed the problem and the usage
	default:
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Parse parses args into the flags of fs, writing to stderr the usage
// (intro, then the flags) on -h or a problem. Positional arguments are a
// problem; so is the error check returns, called after parsing when not
// nil. -h returns flag.ErrHelp, a problem a UsageError.
func Parse(fs *flag.FlagSet, intro string, args []string, stderr io.Writer, check func() error) error {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), intro)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return UsageError{err}
	}
	var problem error
	if fs.NArg() > 0 {
		problem = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	} else if check != nil {
		problem = check()
	}
	if problem != nil {
		fmt.Fprintln(fs.Output(), problem)
		fs.Usage()
		return UsageError{problem}
	}
	return nil
}
