// Package clitest waits in a CLI test for a daemon (run by package
// runtest, or by its main in-process) to answer on its control socket,
// and stops an in-process main as docker stop does.
package clitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

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

// WaitStatus runs `status -json -ctl sock` through a daemon's in-process
// main (run) until the daemon answers, within 5s, and decodes the answer.
func WaitStatus[T any](t testing.TB, run func(ctx context.Context, args []string, out, stderr io.Writer) error, sock string) T {
	t.Helper()
	var out bytes.Buffer
	Poll(t, 5*time.Second, nil, nil, func() error {
		out.Reset()
		return run(context.Background(), []string{"status", "-json", "-ctl", sock}, &out, io.Discard)
	})
	var st T
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("status -json: %v: %s", err, out.String())
	}
	return st
}

// Refusal is a command line a CLI must refuse: the exit code it must end
// with and a part of what it must say on stderr. An alias of a plain
// struct, so that a table of them reads as the rows it is, unkeyed.
type Refusal = struct {
	Name    string
	Args    []string
	WantRC  int
	WantErr string
}

// Refuses runs each refusal through run (a CLI's Run) as a subtest and
// checks its exit code and stderr.
func Refuses(t *testing.T, run func(args []string, stdout, stderr io.Writer) int, refusals []Refusal) {
	t.Helper()
	for _, tt := range refusals {
		t.Run(tt.Name, func(t *testing.T) {
			var out, stderr bytes.Buffer
			if rc := run(tt.Args, &out, &stderr); rc != tt.WantRC {
				t.Errorf("exit %d, want %d (stderr %q)", rc, tt.WantRC, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.WantErr) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.WantErr)
			}
		})
	}
}
