// Package runtest runs a main loop (a daemon's, a server's, a media
// session's) for the length of a test: it starts in a goroutine, stops
// when the test ends (or earlier, on request), and must return nil
// within 10s of being told to stop. Output is where such a daemon logs
// meanwhile.
package runtest

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"
)

// Serve runs run (a daemon's main loop) until the test ends; then run
// must return nil within 10s.
func Serve(t testing.TB, run func(ctx context.Context) error) {
	t.Helper()
	Start(t, func(ctx context.Context, ready func(struct{})) error {
		ready(struct{}{})
		return run(ctx)
	})
}

// Start runs run (a daemon's main loop, which calls ready once it serves)
// and returns what it handed ready. stop ends the daemon, at the latest
// when the test ends; run must then return nil within 10s. A daemon that
// fails to start, or takes more than 10s, fails the test.
func Start[T any](t testing.TB, run func(ctx context.Context, ready func(T)) error) (v T, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan T, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(v T) { ready <- v }) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("daemon: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("daemon did not stop")
			}
		})
	}
	select {
	case v = <-ready:
		t.Cleanup(stop)
		return v, stop
	case err := <-done:
		cancel()
		t.Fatalf("daemon: %v", err)
	case <-time.After(10 * time.Second):
		t.Cleanup(stop)
		t.Fatal("daemon did not start")
	}
	return v, stop
}

// Output is t.Output until the test's cleanups run, then a sink: a
// daemon's handler goroutines (sipgo runs each in its own) may still log
// for a moment after the test ended, and writing to a finished test
// panics.
func Output(t testing.TB) io.Writer {
	w := &lateWriter{w: t.Output()}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

type lateWriter struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (l *lateWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return len(b), nil
	}
	return l.w.Write(b)
}
