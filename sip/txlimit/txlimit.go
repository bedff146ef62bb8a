// Package txlimit bounds the server transactions a daemon holds at once.
//
// sipgo keeps every answered UDP transaction for its retransmission timer
// (Timer J for non-INVITE, 64*T1 = 32 s; Timer I/L for INVITE), with the
// request and response inside: ~8 KB per REGISTER, ~20 KB per call. Memory
// therefore grows with the request rate. A Limiter caps how many are held;
// beyond the cap a daemon answers 503 with Retry-After (RFC 3261 §21.5.4)
// and frees the transaction at once, so an overload costs a response, not
// memory.
package txlimit

import (
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
)

// Default is the cap the daemons start with: at ~4-8 KB of live heap per
// held transaction (bench/README.md) it bounds their transaction memory to
// roughly 80-160 MB, and at 32 s per transaction it still sustains 625 new
// held transactions per second (a registration holds one, its 200: the
// challenge holds none) — far more than a classroom lab produces (the
// soak's 25 registrations and 10 calls a second hold ~800 at the registrar
// and ~1,100 at the proxy).
const Default = 20000

// Limiter counts held transactions. The zero value is unusable; use New.
type Limiter struct {
	max     atomic.Int64
	held    atomic.Int64
	refused atomic.Uint64
}

// New returns a limiter of max transactions; max <= 0 means no limit.
func New(max int) *Limiter {
	l := &Limiter{}
	l.SetMax(max)
	return l
}

// SetMax changes the cap live; transactions already held stay.
func (l *Limiter) SetMax(max int) { l.max.Store(int64(max)) }

// Max is the cap in force (0: none).
func (l *Limiter) Max() int {
	if m := l.max.Load(); m > 0 {
		return int(m)
	}
	return 0
}

// Acquire counts tx as held until it terminates. It reports false when the
// cap is reached: the caller answers 503 and terminates tx. A nil tx (a
// request sipgo handles without a transaction, an ACK) is always allowed.
func (l *Limiter) Acquire(tx sip.ServerTransaction) bool {
	if tx == nil {
		return true
	}
	n := l.held.Add(1)
	if m := l.max.Load(); m > 0 && n > m {
		l.held.Add(-1)
		l.refused.Add(1)
		return false
	}
	if !tx.OnTerminate(func(string, error) { l.held.Add(-1) }) {
		l.held.Add(-1) // already over
	}
	return true
}

// Take counts one request served without a sipgo transaction (sipnet's
// direct path) as held until Release. It reports false when the cap is
// reached: the caller answers 503 and does not Release.
func (l *Limiter) Take() bool {
	n := l.held.Add(1)
	if m := l.max.Load(); m > 0 && n > m {
		l.held.Add(-1)
		l.refused.Add(1)
		return false
	}
	return true
}

// Release ends what Take counted.
func (l *Limiter) Release() { l.held.Add(-1) }

// Held is how many transactions are held now.
func (l *Limiter) Held() int { return int(l.held.Load()) }

// Refused is how many requests were refused for the cap so far.
func (l *Limiter) Refused() uint64 { return l.refused.Load() }
