package sipdialog

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Retransmission is a response a UAS core must repeat until its peer
// acknowledges it: a 2xx to INVITE until the ACK (RFC 3261 §13.3.1.4) or a
// reliable provisional until its PRACK (RFC 3262 §3). Every UAS in the lab
// (phone, PBX, SBC) runs it through Retransmit, so they share one rule:
//   - resend only over an unreliable transport (UDP): over TCP/TLS the
//     transport delivers the first copy or fails (§17.2.1, §13.3.1.4);
//   - the interval starts at T1 and doubles, capped at T2;
//   - stop when the acknowledgement arrives;
//   - give up after 64*T1, and say so (TimedOut): for a 2xx the caller
//     then ends the dialog with a BYE (§13.3.1.4).
type Retransmission struct {
	// Resend sends the response again (the first copy is the caller's:
	// it must know whether that one left). An error is not fatal: the
	// next interval tries again.
	Resend func() error
	// Reliable is whether the response went over a reliable transport
	// (sip.IsReliable of the request's transport): then nothing is resent
	// and Retransmit only waits for the acknowledgement.
	Reliable bool
	// Acked closes when the ACK (PRACK) arrives.
	Acked <-chan struct{}
	// Stop, when it closes, ends the wait without an acknowledgement (a
	// final response replaced a reliable 18x, a CANCEL won); nil never.
	Stop <-chan struct{}
	// Halt is asked before every resend; true ends the wait (a BYE
	// crossed the 2xx: nothing is left to confirm). Nil never halts.
	Halt func() bool
	// T1 and T2 default to sip.T1 and sip.T2 (tests shorten them).
	T1, T2 time.Duration
}

// Result is how a retransmission ended.
type Result int

const (
	Acked    Result = iota // the acknowledgement arrived
	Stopped                // Stop closed
	Halted                 // Halt said so
	Closed                 // the context ended (the daemon shuts down)
	TimedOut               // 64*T1 without an acknowledgement
)

func (r Result) String() string {
	switch r {
	case Acked:
		return "acked"
	case Stopped:
		return "stopped"
	case Halted:
		return "halted"
	case Closed:
		return "closed"
	case TimedOut:
		return "timed out"
	}
	return "unknown"
}

// Retransmit repeats r's response until it is acknowledged, stopped,
// halted, ctx ends or 64*T1 pass; it blocks until then.
func Retransmit(ctx context.Context, r Retransmission) Result {
	t1, t2 := r.T1, r.T2
	if t1 <= 0 {
		t1 = sip.T1
	}
	if t2 <= 0 {
		t2 = sip.T2
	}
	deadline := time.NewTimer(64 * t1)
	defer deadline.Stop()
	interval := t1
	for {
		var resend <-chan time.Time
		var timer *time.Timer
		if !r.Reliable {
			timer = time.NewTimer(interval)
			resend = timer.C
		}
		select {
		case <-r.Acked:
			stopTimer(timer)
			return Acked
		case <-r.Stop:
			stopTimer(timer)
			return Stopped
		case <-ctx.Done():
			stopTimer(timer)
			return Closed
		case <-deadline.C:
			stopTimer(timer)
			return TimedOut
		case <-resend:
			if r.Halt != nil && r.Halt() {
				return Halted
			}
			_ = r.Resend()
			interval = min(2*interval, t2)
		}
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
