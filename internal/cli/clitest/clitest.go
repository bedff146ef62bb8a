// Package clitest runs a daemon's main loop inside a CLI test and waits
// for it to answer on its control socket.
package clitest

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// Serve runs run (a daemon's main loop) until the test ends; then run
// must return nil within 10s.
func Serve(t testing.TB, run func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
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

// Poll calls try every 20ms until it returns nil, and fails the test
// with try's last error after d. exited, when not nil, carries the
// daemon's exit code: a daemon that exits first fails the test at once,
// with its stderr.
func Poll(t testing.TB, d time.Duration, exited <-chan int, stderr *bytes.Buffer, try func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := try()
		if err == nil {
			return
		}
		select {
		case rc := <-exited:
			t.Fatalf("daemon exited %d: %s", rc, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon never answered on its socket: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
