package b2bleg

import (
	"context"
	"sync"
	"time"
)

// resetHangupBudget is how long a lab reset waits, in all, for the BYEs
// and CANCELs of the calls it hangs up: a far end that does not answer
// must not hold the reset up.
const resetHangupBudget = 3 * time.Second

// HangupAll hangs up every call of calls (a snapshot the caller took) that
// ended does not report over, all at once, within resetHangupBudget of
// ctx, and waits for them; it says how many it hung up. ended is called
// with mu, the owner's lock, held; hangup without it. The first step of a
// lab reset in the PBX, the SBC and the phone.
func HangupAll[C any](ctx context.Context, mu sync.Locker, calls []C, ended func(C) bool, hangup func(context.Context, C)) int {
	hctx, cancel := context.WithTimeout(ctx, resetHangupBudget)
	defer cancel()
	var wg sync.WaitGroup
	n := 0
	for _, c := range calls {
		mu.Lock()
		over := ended(c)
		mu.Unlock()
		if over {
			continue
		}
		n++
		wg.Go(func() { hangup(hctx, c) })
	}
	wg.Wait()
	return n
}
