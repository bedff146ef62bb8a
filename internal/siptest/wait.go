package siptest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test after d.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ctx is a context that ends after d or with the test.
func Ctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Logger is silent, unless the environment variable env is set: then it
// logs everything to stderr (B2BUA_TEST_LOG=1 go test ./b2bua).
func Logger(env string) *slog.Logger {
	if os.Getenv(env) != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Daemon is a SIP element a test runs: a phone, the PBX, the SBC.
type Daemon interface {
	Start(ctx context.Context) error
	// Shutdown ends its calls, within ctx.
	Shutdown(ctx context.Context)
	Close() error
}

// Run fails the test when d could not be made (err), else starts it on
// ctx; when the test ends, d hangs up (2s at most) and closes.
func Run[D Daemon](t testing.TB, ctx context.Context, d D, err error) D {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		defer c()
		d.Shutdown(sctx)
		d.Close()
	})
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}
