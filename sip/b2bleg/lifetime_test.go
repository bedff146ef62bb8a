package b2bleg

import (
	"context"
	"testing"
	"time"
)

// The daemon started with ctx is closed when ctx ends.
func TestCloseOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan struct{})
	CloseOnCancel(ctx, make(chan struct{}), func() error { close(closed); return nil })
	select {
	case <-closed:
		t.Fatal("closed before ctx ended")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("not closed when ctx ended")
	}
}
