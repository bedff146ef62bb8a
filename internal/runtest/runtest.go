// Package runtest runs a main loop (a daemon's, a server's, a media
// session's) for the length of a test: it starts in a goroutine, stops
// when the test ends (or earlier, on request), and must return nil
// within 10s of being told to stop.
package runtest

import (
	"context"
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
