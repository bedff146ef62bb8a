// Package climain is the end of every daemon's Main: run the command under
// a context that SIGINT or SIGTERM cancels (so a daemon shuts down cleanly
// when Docker stops it), then turn its error into the process's exit code.
// What differs between daemons — their name, which failures exit 2 — is in
// Rules.
package climain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Rules say how a failed run is reported.
type Rules struct {
	// Name prefixes the error printed on stderr: "b2bua: ...".
	Name string
	// Prefixed, when set, is a beginning of an error's text that already
	// names the daemon: such an error is printed as it is.
	Prefixed string
	// Code is the exit code of a failure; nil means 1.
	Code func(err error) int
}

// UsageExits2 is the common Code: 2 for an error wrapping usage (bad
// command line), 1 for any other failure.
func UsageExits2(usage error) func(error) int {
	return func(err error) int {
		if errors.Is(err, usage) {
			return 2
		}
		return 1
	}
}

// Always is a Code giving one exit code to every failure.
func Always(code int) func(error) int {
	return func(error) int { return code }
}

// Run calls run with a context cancelled on SIGINT or SIGTERM and, when it
// fails, prints the error and exits the process (see Exit).
func Run(r Rules, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if code := Exit(r, err, os.Stderr); code != 0 {
		os.Exit(code)
	}
}

// Exit is the exit code of a run that returned err: 0 for nil and for
// flag.ErrHelp (-h printed the flags), else the error is written to stderr
// under the daemon's name and r.Code decides.
func Exit(r Rules, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	msg := err.Error()
	if r.Prefixed == "" || !strings.HasPrefix(msg, r.Prefixed) {
		msg = r.Name + ": " + msg
	}
	fmt.Fprintln(stderr, msg)
	if r.Code == nil {
		return 1
	}
	return r.Code(err)
}

// ParseInterspersed parses fs over args where flags may also follow the
// positional arguments ("set latching off -ctl x", "call +1555 -from ..."):
// the standard flag package stops at the first positional one. It returns
// the positional arguments in order.
func ParseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return pos, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
