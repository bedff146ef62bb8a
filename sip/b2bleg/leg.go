// Package b2bleg is the leg machinery of every back-to-back user agent in
// the lab (the PBX, the SBC and its WebRTC gateway legs): one Leg per
// dialog a B2BUA holds, with its RFC 3261 §12 state, the ACK it owes for a
// 2xx it received (§13.2.2.4), the ACK it waits for after a 2xx it sent
// (§13.3.1.4, through sipdialog.Retransmit), the CANCEL of an INVITE it
// sent (§9.1) and the BYE that ends it.
//
// A Leg knows nothing of calls, realms or extensions: how its requests
// leave (which client, which destination, which extra headers) is its
// owner's Signalling, and its fields are guarded by the owner's lock, so
// one lock covers a whole call as before. Around the legs, what every
// B2BUA's calls share: the call list kept bounded (Remember), a call's
// Times in its status, request Lifetimes, HangupAll on a reset.
package b2bleg

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipdialog"
)

// State is where a leg's dialog stands.
type State int

const (
	Calling    State = iota // INVITE sent or received, nothing answered
	Early                   // a provisional with a To tag: early dialog
	Confirmed               // 2xx sent or received
	Terminated              // BYE, CANCEL or failure: no more requests
)

// stateNames are the states as status pages and logs show them.
var stateNames = [...]string{Calling: "calling", Early: "early", Confirmed: "confirmed", Terminated: "terminated"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Up says whether the leg still has a dialog to end: confirmed, or ringing.
func (s State) Up() bool { return s != Terminated }

// Signalling is how a leg's requests leave; the owner implements it (the
// PBX has one client, the SBC one per realm and transport).
type Signalling interface {
	// Prepare completes a request built from the leg's dialog before it
	// leaves: the owner's headers (a correlation id), destination and
	// transport. It is called without the owner's lock.
	Prepare(req *sip.Request)
	// Write sends a request outside any transaction (an ACK for a 2xx).
	Write(req *sip.Request) error
	// Do sends a non-INVITE request in a client transaction and returns
	// its final response.
	Do(ctx context.Context, req *sip.Request) (*sip.Response, error)
}

// Config is what a leg needs from its owner.
type Config struct {
	// Lock guards the leg's fields; the owner holds it to read them.
	Lock sync.Locker
	Out  Signalling
	// Name is the leg in logs ("a", "b", "0", "1").
	Name string
	Log  *slog.Logger
	// Changed, when set, is called (without Lock) after the leg's state
	// changed through one of its methods (the PBX's busy lamps).
	Changed func()
	// Done closes when the owner shuts down: waits end.
	Done <-chan struct{}
	// Media, when set, translates the SDP crossing this leg (media.go):
	// a gateway leg. The owner closes it when the call ends.
	Media Media
}

// Leg is one dialog of a back-to-back call. Dlg and State may be read and
// written by the owner under Config.Lock; the rest is the leg's.
type Leg struct {
	cfg   Config
	Dlg   sipdialog.Dialog
	State State

	// UAC side: the INVITE we sent (for CANCEL), whether a provisional
	// came (a CANCEL waits for one, RFC 3261 §9.1), whether the owner
	// wants it cancelled, and the ACK for its last 2xx.
	invite    *sip.Request
	provSeen  bool
	cancelled bool
	ack       *sip.Request
	// UAS side: a 2xx we sent waits for the ACK with this CSeq.
	ackCh  chan struct{}
	ackSeq uint32
}

// New is a leg in state Calling with dialog d.
func New(cfg Config, d sipdialog.Dialog) *Leg {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Leg{cfg: cfg, Dlg: d, State: Calling}
}

// Name is the leg's name in logs.
func (l *Leg) Name() string { return l.cfg.Name }

func (l *Leg) changed() {
	if l.cfg.Changed != nil {
		l.cfg.Changed()
	}
}

// Load is the leg's state, read under the lock.
func (l *Leg) Load() State {
	l.cfg.Lock.Lock()
	defer l.cfg.Lock.Unlock()
	return l.State
}

// Set sets the leg's state.
func (l *Leg) Set(s State) {
	l.cfg.Lock.Lock()
	l.State = s
	l.cfg.Lock.Unlock()
	l.changed()
}

// --- the leg we originate (UAC) -----------------------------------------

// Sent records the INVITE that opened the leg, for its CANCEL; lock held.
func (l *Leg) SentLocked(invite *sip.Request) { l.invite = invite }

// EarlyLocked takes an early dialog from a provisional response: the
// peer's tag, target and route set (§12.1.2). It reports whether the
// owner asked for a CANCEL before any provisional came: then it must call
// Cancel now. Lock held.
func (l *Leg) EarlyLocked(res *sip.Response) (cancel bool) {
	l.provSeen = true
	if tag := sipdialog.ToTag(res); tag != "" && l.Dlg.RemoteTag == "" {
		l.Dlg.RemoteTag = tag
	}
	if ct := res.Contact(); ct != nil {
		l.Dlg.RemoteTarget = *ct.Address.Clone()
	}
	l.Dlg.RouteSet = sipdialog.RouteSetAsUAC(res)
	if l.State == Calling {
		l.State = Early
	}
	return l.cancelled
}

// Early is EarlyLocked under the lock, then the CANCEL it asks for. A 100
// makes no dialog (it is hop by hop) and is ignored.
func (l *Leg) Early(res *sip.Response) {
	if res.StatusCode <= 100 {
		return
	}
	l.cfg.Lock.Lock()
	cancel := l.EarlyLocked(res)
	l.cfg.Lock.Unlock()
	l.changed()
	if cancel {
		l.Cancel()
	}
}

// Ack confirms a 2xx to an INVITE we sent on this leg: a request of its
// own, along the route set (RFC 3261 §13.2.2.4), sent again whenever the
// 2xx is retransmitted (our ACK was lost). The 2xx to the INVITE that
// made the dialog fixes its route set; a re-INVITE's 2xx does not.
func (l *Leg) Ack(tx sip.ClientTransaction, res *sip.Response) {
	l.cfg.Lock.Lock()
	if tag := sipdialog.ToTag(res); tag != "" {
		l.Dlg.RemoteTag = tag
	}
	if ct := res.Contact(); ct != nil {
		l.Dlg.RemoteTarget = *ct.Address.Clone()
	}
	if l.State != Confirmed {
		l.Dlg.RouteSet = sipdialog.RouteSetAsUAC(res)
	}
	l.State = Confirmed
	ack := l.Dlg.Request(sip.ACK, res.CSeq().SeqNo)
	l.cfg.Lock.Unlock()
	l.changed()
	l.cfg.Out.Prepare(ack)
	l.cfg.Lock.Lock()
	l.ack = ack
	l.cfg.Lock.Unlock()
	l.writeAck()
	tx.OnRetransmission(func(r *sip.Response) {
		if r.IsSuccess() {
			l.writeAck()
		}
	})
}

func (l *Leg) writeAck() {
	l.cfg.Lock.Lock()
	ack := l.ack
	l.cfg.Lock.Unlock()
	if ack == nil {
		return
	}
	if err := l.cfg.Out.Write(ack.Clone()); err != nil {
		l.cfg.Log.Warn("ACK not sent", "leg", l.cfg.Name, "err", err)
	}
}

// Cancel cancels the INVITE we sent on this leg, once; before any
// provisional it is only remembered (RFC 3261 §9.1) and sent when
// EarlyLocked sees one. A leg that sent no INVITE has nothing to cancel.
func (l *Leg) Cancel() {
	l.cfg.Lock.Lock()
	l.cancelled = true
	if !l.provSeen || l.invite == nil {
		l.cfg.Lock.Unlock()
		return
	}
	inv := l.invite
	l.invite = nil // once
	l.cfg.Lock.Unlock()
	cr := sipdialog.Cancel(inv)
	l.cfg.Out.Prepare(cr)
	// CANCEL goes where the INVITE went (§9.1), whatever Prepare thinks.
	cr.SetDestination(inv.Destination())
	cr.SetTransport(inv.Transport())
	go l.do(context.Background(), cr, 32*time.Second)
}

// --- the leg we answer (UAS) --------------------------------------------

// AnswerResult is how a 2xx we sent ended.
type AnswerResult = sipdialog.Result

// SendAndAwaitAck sends a 2xx to the INVITE with CSeq seq on this leg
// (send is the first copy and every retransmission) and waits for its ACK
// through sipdialog.Retransmit: resent only over an unreliable transport,
// given up after 64*T1. stop (may be nil) ends the wait early (the INVITE
// was cancelled). A leg terminated meanwhile (a BYE crossed the 2xx) ends
// it as Halted; the owner shutting down as Closed. An error: the first
// copy did not leave.
func (l *Leg) SendAndAwaitAck(seq uint32, reliable bool, send func() error, stop <-chan struct{}) (sipdialog.Result, error) {
	ch := make(chan struct{})
	l.cfg.Lock.Lock()
	l.ackCh, l.ackSeq = ch, seq
	l.cfg.Lock.Unlock()
	if err := send(); err != nil {
		return sipdialog.TimedOut, fmt.Errorf("b2bleg: 2xx on leg %s: %w", l.cfg.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if l.cfg.Done != nil {
		go func() {
			select {
			case <-l.cfg.Done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	res := sipdialog.Retransmit(ctx, sipdialog.Retransmission{
		Resend: send, Reliable: reliable, Acked: ch, Stop: stop,
		Halt: func() bool { return l.Load() == Terminated },
	})
	if res == sipdialog.TimedOut {
		l.cfg.Log.Warn("no ACK for our 2xx", "leg", l.cfg.Name)
	}
	return res, nil
}

// AckedLocked matches an ACK (its CSeq) to the 2xx we wait on; lock held.
func (l *Leg) AckedLocked(seq uint32) bool {
	if l.ackCh == nil || seq != l.ackSeq {
		return false
	}
	close(l.ackCh)
	l.ackCh = nil
	return true
}

// Acked is AckedLocked under the lock.
func (l *Leg) Acked(seq uint32) bool {
	l.cfg.Lock.Lock()
	defer l.cfg.Lock.Unlock()
	return l.AckedLocked(seq)
}

// AwaitingAckLocked is the wait for the ACK of our last 2xx, nil when
// none is pending (§14.2: no new INVITE before it); lock held.
func (l *Leg) AwaitingAckLocked() <-chan struct{} {
	if l.ackCh == nil {
		return nil
	}
	return l.ackCh
}

// --- ending -------------------------------------------------------------

// Bye ends a confirmed leg with a BYE carrying why as its Reason (RFC
// 3326), waiting for the answer at most Timer F (less if ctx says so). A
// leg not confirmed only becomes Terminated: it has no dialog to end.
func (l *Leg) Bye(ctx context.Context, why string) {
	l.cfg.Lock.Lock()
	if l.State != Confirmed {
		l.State = Terminated
		l.cfg.Lock.Unlock()
		l.changed()
		return
	}
	l.State = Terminated
	req := l.Dlg.Request(sip.BYE, 0)
	l.cfg.Lock.Unlock()
	// Terminated now, not when the peer confirms: the lamp goes off when
	// we hang up.
	l.changed()
	l.cfg.Out.Prepare(req)
	req.AppendHeader(sip.NewHeader("Reason", fmt.Sprintf("SIP;cause=200;text=%q", why)))
	l.do(ctx, req, 64*sip.T1)
}

// do sends a request of ours on the leg, waits at most d for its final
// response and logs how it went: nobody waits for more.
func (l *Leg) do(ctx context.Context, req *sip.Request, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	res, err := l.cfg.Out.Do(ctx, req)
	if err != nil {
		l.cfg.Log.Warn(string(req.Method)+" got no answer", "leg", l.cfg.Name, "err", err)
		return
	}
	l.cfg.Log.Info(string(req.Method)+" answered", "leg", l.cfg.Name, "code", res.StatusCode)
}

// Drop ends the leg by what its state allows: BYE when confirmed, CANCEL
// while an INVITE we sent rings, nothing otherwise.
func (l *Leg) Drop(ctx context.Context, why string) {
	switch l.Load() {
	case Confirmed:
		l.Bye(ctx, why)
	case Calling, Early:
		l.Cancel()
	}
}

// Hangup drops every leg (nil ones are skipped) at once and waits for the
// BYEs' answers.
func Hangup(ctx context.Context, why string, legs ...*Leg) {
	var wg sync.WaitGroup
	for _, l := range legs {
		if l != nil {
			wg.Go(func() { l.Drop(ctx, why) })
		}
	}
	wg.Wait()
}

// TerminateLocked marks legs over when their call ends; lock held.
func TerminateLocked(legs ...*Leg) {
	for _, l := range legs {
		if l != nil {
			l.State = Terminated
		}
	}
}
