package sipnet

import (
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// backlog keeps the daemon's CPU backlog where the overload gate sees it
// (Config.MaxRunnable). sipgo starts a goroutine for every message it
// parses, so a daemon past its capacity does not fall behind in the
// socket's queue, where the kernel's arrival stamps measure the delay and
// the gate refuses new requests cheaply: it falls behind in runnable
// goroutines, unbounded and unseen, each holding a parsed message. The
// readers therefore stop reading while more goroutines are runnable than
// the bound: the excess waits in the socket's bounded buffer, its delay
// grows, and the gate refuses it there unparsed.
//
// Runnable, not all goroutines: a branch waiting 32 s for Timer B or a
// transaction waiting for its ACK is waiting, not work to do, and counting
// those kept a bound on the goroutine count refusing calls long after an
// overload (bench/README.md).
type backlog struct {
	bound  uint64
	paused atomic.Uint64 // how often a reader waited (Endpoint.BacklogPauses)
}

const (
	runnableMetric = "/sched/goroutines/runnable:goroutines"
	// backlogPause is how long a reader sleeps before looking again: at
	// tens of thousands of datagrams per second a few dozen queue meanwhile,
	// well inside the socket's buffer.
	backlogPause = 200 * time.Microsecond
)

// newBacklog is nil (no bound) for bound 0 or when the runtime does not
// report runnable goroutines (before Go 1.26).
func newBacklog(bound int) *backlog {
	if bound <= 0 {
		return nil
	}
	s := []metrics.Sample{{Name: runnableMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return nil
	}
	return &backlog{bound: uint64(bound)}
}

// backlogReader is one reader's view of the backlog: its own sample, so
// readers share nothing but the runtime's lock.
type backlogReader struct {
	*backlog
	sample [1]metrics.Sample
}

// runnable is the number of runnable goroutines now. Reading it costs
// ~0.1 µs (the scheduler's lock and a walk over the Ps), against tens of
// µs to read and parse a datagram, so it is read before every datagram:
// a sample reused for even a millisecond let a burst of queued datagrams
// through as ten times the bound in goroutines.
func (r *backlogReader) runnable() uint64 {
	r.sample[0].Name = runnableMetric
	metrics.Read(r.sample[:])
	return r.sample[0].Value.Uint64()
}

// wait returns once no more goroutines are runnable than the bound. The
// reader calling it is running, not runnable, so it does not count itself.
func (r *backlogReader) wait() {
	if r.runnable() <= r.bound {
		return
	}
	r.paused.Add(1)
	for {
		time.Sleep(backlogPause)
		if r.runnable() <= r.bound {
			return
		}
	}
}
