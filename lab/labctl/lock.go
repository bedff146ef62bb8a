package labctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// LockPath is the host-wide lab lock. Only one Compose project named
// "siplab" can exist on a Docker engine, so whoever brings a lab up (the e2e
// suite, a script recording fixtures) holds this lock for as long as the lab
// lives; the shell form is `flock /tmp/siplab-lab.lock <command>`.
const LockPath = "/tmp/siplab-lab.lock"

// ErrLabLocked means another process holds the lab lock past the deadline.
var ErrLabLocked = errors.New("labctl: another siplab lab holds the lock")

// LabLock is a held lab lock; Unlock releases it.
type LabLock struct{ f *os.File }

// Lock waits for the lab lock until ctx ends. flock is released by the kernel
// when the process dies, so a crashed holder never wedges the next run.
func Lock(ctx context.Context, path string) (*LabLock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("labctl: open lab lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &LabLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("labctl: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("%w (%s): %v", ErrLabLocked, path, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Unlock releases the lock.
func (l *LabLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
