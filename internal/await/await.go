// Package await retries a lookup that fails only because something has
// not appeared yet: the interfaces of a container are plugged in by
// Docker after its process starts, so a daemon that looks for its LAN and
// WAN (the router, the capture points) asks again until they are there.
package await

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Every is how often Until asks again.
const Every = 200 * time.Millisecond

// Until calls find until it succeeds or fails with an error that is not
// notYet, for at most wait (or until ctx ends). When the time is up it
// returns find's last error, which says what is missing, with how long it
// waited.
func Until[T any](ctx context.Context, wait time.Duration, notYet error, find func() (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		v, err := find()
		if err == nil || !errors.Is(err, notYet) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%w (waited %s)", err, wait)
		case <-time.After(Every):
		}
	}
}
