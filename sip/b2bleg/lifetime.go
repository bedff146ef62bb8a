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
