package b2bleg

import (
	"context"
	"time"
)

// Lifetime is a context for work a B2BUA starts on its own (a BYE, a
// re-INVITE, a NOTIFY): it ends after d, or as soon as done closes, so
// that closing the daemon cuts every such transaction short instead of
// leaving it to run out its timers.
func Lifetime(done <-chan struct{}, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// CloseOnCancel ties a daemon started with ctx to it: closeFn (its
// Close) runs when ctx ends, unless done, which Close closes, is closed
// first. The goroutine is in no WaitGroup: Close may wait for those.
func CloseOnCancel(ctx context.Context, done <-chan struct{}, closeFn func() error) {
	go func() {
		select {
		case <-ctx.Done():
			closeFn()
		case <-done:
		}
	}()
}
