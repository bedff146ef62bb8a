// Package clitest runs a daemon's main loop inside a CLI test and waits
// for it to answer on its control socket.
package clitest

import (
	"bytes"
	"context"
	"os"
	"sync"
	"syscall"
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

// StopBySIGTERM sends this process SIGTERM, as docker stop does, and
// waits for the daemon's exit code on done: it must be 0 within 20s.
func StopBySIGTERM(t testing.TB, done <-chan int, stderr *bytes.Buffer) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case rc := <-done:
		if rc != 0 {
			t.Fatalf("daemon exit %d: %s", rc, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not stop on SIGTERM")
	}
}
