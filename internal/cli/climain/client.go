package climain

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"

	"github.com/siplab/siplab/internal/ctl"
)

// ClientFlags parses a client verb's -ctl (default: the environment
// variable env, else def) and -json, which may come before or after its
// positional arguments ("set latching off -ctl x").
func ClientFlags(name, env, def string, args []string, out io.Writer) (sock string, asJSON bool, pos []string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&sock, "ctl", EnvOr(env, def), "the daemon's control socket")
	fs.BoolVar(&asJSON, "json", false, "JSON for scripts")
	pos, err = ParseInterspersed(fs, args)
	return sock, asJSON, pos, err
}

// WriteJSON writes v indented, for scripts.
func WriteJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Show sends one request to the control socket sock — method GET, or
// POST with in as the body — and prints the answer: as JSON, or as text.
func Show[T any](ctx context.Context, sock, method, path string, in any, asJSON bool, out io.Writer, text func(io.Writer, T)) error {
	var v T
	c := ctl.Client{Socket: sock}
	var err error
	if method == http.MethodGet {
		err = c.Get(ctx, path, &v)
	} else {
		err = c.Post(ctx, path, in, &v)
	}
	if err != nil {
		return err
	}
	if asJSON {
		return WriteJSON(out, v)
	}
	text(out, v)
	return nil
}

// Verb is a client subcommand of a daemon's binary ("b2bua status"): the
// image is FROM scratch with no shell, so the client lives in the daemon.
type Verb func(ctx context.Context, args []string, out io.Writer) error

// Dispatch runs the verb args[0] names, or else serve with all of args
// (the daemon's own flags).
func Dispatch(ctx context.Context, args []string, out io.Writer, verbs map[string]Verb, serve func(ctx context.Context, args []string) error) error {
	if len(args) > 0 {
		if v, ok := verbs[args[0]]; ok {
			return v(ctx, args[1:], out)
		}
	}
	return serve(ctx, args)
}
