package labctl

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestLockIsExclusiveAndReleased(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lab.lock")
	first, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, path); !errors.Is(err, ErrLabLocked) {
		t.Fatalf("second Lock while held: got %v, want ErrLabLocked", err)
	}
	if err := first.Unlock(); err != nil {
		t.Fatal(err)
	}
	second, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	second.Unlock()
}
