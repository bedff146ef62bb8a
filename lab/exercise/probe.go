package exercise

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/siplab/siplab/natrouter"
	"github.com/siplab/siplab/sbc"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/uaclient"
)

// Probe is what a check reads the lab through. Since is when the exercise
// started: calls older than that are not the intern's answer.
type Probe struct {
	Lab   Lab
	Since time.Time
	// Answer is what the intern answered (check -answer), for exercises
	// whose task is to read a value off the lab.
	Answer string
}

// Phones are the lab's phones, in the order an unexpected ring is looked for.
var Phones = []string{"alice", "bob", "carol"}

func (p *Probe) statusJSON(ctx context.Context, node string, v any) error {
	out, err := p.Lab.Exec(ctx, node, "status", "-json")
	if err != nil {
		return fmt.Errorf("%s status: %w", node, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("%s status: %w", node, err)
	}
	return nil
}

// Phone reads a phone's status.
func (p *Probe) Phone(ctx context.Context, name string) (uaclient.Status, error) {
	var st uaclient.Status
	return st, p.statusJSON(ctx, name, &st)
}

// Router reads a site router's status.
func (p *Probe) Router(ctx context.Context, name string) (natrouter.Status, error) {
	var st natrouter.Status
	return st, p.statusJSON(ctx, name, &st)
}

// SBC reads the SBC's status.
func (p *Probe) SBC(ctx context.Context) (sbc.Status, error) {
	var st sbc.Status
	return st, p.statusJSON(ctx, "sbc", &st)
}

// Bindings reads the registrar's bindings of user.
func (p *Probe) Bindings(ctx context.Context, user string) ([]location.Binding, error) {
	var doc struct {
		Registrations []location.Binding `json:"registrations"`
	}
	if err := p.statusJSON(ctx, "registrar", &doc); err != nil {
		return nil, err
	}
	var out []location.Binding
	for _, b := range doc.Registrations {
		if strings.HasPrefix(b.AOR, "sip:"+user+"@") {
			out = append(out, b)
		}
	}
	return out, nil
}

// CallsSince are the phone's calls started after the exercise began.
func (p *Probe) CallsSince(ctx context.Context, phone string) ([]uaclient.CallStatus, error) {
	st, err := p.Phone(ctx, phone)
	if err != nil {
		return nil, err
	}
	var out []uaclient.CallStatus
	for _, c := range st.Calls {
		if !c.Started.Before(p.Since) {
			out = append(out, c)
		}
	}
	return out, nil
}

// Leg is one phone's side of a probe call.
type Leg struct {
	Phone string
	// Tone is the phone's own test tone; Call its side of the call (nil
	// if it never saw the call).
	Tone float64
	Call *uaclient.CallStatus
}

// CallResult is what a probe call found.
type CallResult struct {
	// Target is who was called; Callee the phone that saw the call
	// (another one when the wrong phone rang).
	Target         string
	Caller, Callee Leg
	// Answered is who actually took the call: Callee.Phone, or another
	// phone when the call went to the wrong one.
	Answered  string
	Connected bool
	// Ended is set when the probe was told to hang up from the callee's
	// side and the caller's call ended with it.
	Ended bool
}

// CallOpts tune a probe call.
type CallOpts struct {
	// Connect is how long to wait for the 200 OK (default 8 s).
	Connect time.Duration
	// Listen is how long to wait for both tones (default 4 s).
	Listen time.Duration
	// CalleeHangsUp ends the call from the callee's side and waits to see
	// whether the caller's call ends with it (a BYE that reaches its dialog).
	CalleeHangsUp bool
}

// tonesMatch allows for the tone detector's bin width.
func tonesMatch(got, want float64) bool { return want > 0 && math.Abs(got-want) < 30 }

// Hears says whether the leg hears the other one's tone.
func (l Leg) Hears(other Leg) bool {
	return l.Call != nil && tonesMatch(l.Call.ToneHz, other.Tone)
}

// HearsLine is the evidence sentence: who heard what, from where.
func (l Leg) HearsLine(other Leg) string {
	if l.Call == nil {
		return fmt.Sprintf("%s never saw the call", l.Phone)
	}
	m := l.Call.Media
	if m == nil || m.Received.Packets == 0 {
		return fmt.Sprintf("%s heard nothing: 0 RTP packets received (%s's SDP said send to %s)", l.Phone, l.Phone, sdpAddr(l.Call.LocalSDP))
	}
	if l.Hears(other) {
		return fmt.Sprintf("%s heard %s's %.0f Hz tone from %s (%d RTP packets)", l.Phone, other.Phone, other.Tone, m.Received.LastSource, m.Received.Packets)
	}
	return fmt.Sprintf("%s received %d RTP packets from %s but heard %.0f Hz, not %s's %.0f Hz tone", l.Phone, m.Received.Packets, m.Received.LastSource, l.Call.ToneHz, other.Phone, other.Tone)
}

func sdpAddr(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// Call places a probe call from → to, waits for it to connect and for
// media both ways, reads both sides and hangs up. It never fails: what
// went wrong is in the result.
func (p *Probe) Call(ctx context.Context, from, to string, o CallOpts) (CallResult, error) {
	if o.Connect == 0 {
		o.Connect = 8 * time.Second
	}
	if o.Listen == 0 {
		o.Listen = 4 * time.Second
	}
	res := CallResult{Target: to, Caller: Leg{Phone: from}, Callee: Leg{Phone: to}}
	tones := map[string]float64{}
	for _, ph := range Phones {
		st, err := p.Phone(ctx, ph)
		if err != nil {
			return res, err
		}
		tones[ph] = st.ToneHz
	}
	res.Caller.Tone, res.Callee.Tone = tones[from], tones[to]
	t0 := time.Now().Add(-time.Second) // container clocks are the host's; allow rounding
	out, err := p.Lab.Exec(ctx, from, "call", to, "-json")
	if err != nil {
		return res, fmt.Errorf("%s call %s: %w", from, to, err)
	}
	var placed uaclient.CallStatus
	if err := json.Unmarshal(out, &placed); err != nil {
		return res, fmt.Errorf("%s call %s: %w", from, to, err)
	}
	_, werr := p.Lab.Exec(ctx, from, "wait", "call-state", "confirmed", placed.ID, "-timeout", o.Connect.String())
	res.Connected = werr == nil
	deadline := time.Now().Add(o.Listen)
	for {
		if err := p.readLegs(ctx, &res, placed.ID, t0, tones); err != nil {
			return res, err
		}
		done := !res.Connected || (res.Caller.Hears(res.Callee) && res.Callee.Hears(res.Caller))
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if res.Connected && o.CalleeHangsUp && res.Answered != "" {
		if _, err := p.Lab.Exec(ctx, res.Answered, "hangup"); err == nil {
			_, werr := p.Lab.Exec(ctx, from, "wait", "call-state", "terminated", placed.ID, "-timeout", "4s")
			res.Ended = werr == nil
		}
	}
	p.endCall(ctx, from, placed.ID)
	if res.Answered != "" && res.Answered != to {
		// The wrong phone's side may outlive the caller's BYE (it went to
		// the address the proxy believes is the callee's): end it, or its
		// RTP keeps arriving at the caller's port during the next call.
		_, _ = p.Lab.Exec(ctx, res.Answered, "hangup", "-timeout", "3s")
	}
	return res, nil
}

// readLegs fills the caller's call and whichever phone's incoming call
// started with the probe.
func (p *Probe) readLegs(ctx context.Context, res *CallResult, id string, t0 time.Time, tones map[string]float64) error {
	st, err := p.Phone(ctx, res.Caller.Phone)
	if err != nil {
		return err
	}
	for i := range st.Calls {
		if st.Calls[i].ID == id {
			c := st.Calls[i]
			res.Caller.Call = &c
		}
	}
	res.Callee = Leg{Phone: res.Target, Tone: tones[res.Target]}
	res.Answered = ""
	// The callee first, then anyone else who rang instead.
	order := []string{res.Target}
	for _, ph := range Phones {
		if ph != res.Target && ph != res.Caller.Phone {
			order = append(order, ph)
		}
	}
	for _, ph := range order {
		st, err := p.Phone(ctx, ph)
		if err != nil {
			return err
		}
		for i := len(st.Calls) - 1; i >= 0; i-- {
			c := st.Calls[i]
			if c.Direction != uaclient.Incoming || c.Started.Before(t0) {
				continue
			}
			if ph == res.Target {
				res.Callee.Call = &c
			}
			if c.State == uaclient.StateConfirmed || !c.Answered.IsZero() {
				res.Answered = ph
			}
			break
		}
		if res.Answered != "" {
			break
		}
	}
	if res.Answered != "" && res.Answered != res.Target {
		// Read what the wrong phone hears, for the evidence.
		st, _ := p.Phone(ctx, res.Answered)
		for i := len(st.Calls) - 1; i >= 0; i-- {
			if st.Calls[i].Direction == "incoming" {
				c := st.Calls[i]
				res.Callee = Leg{Phone: res.Answered, Tone: tones[res.Answered], Call: &c}
				break
			}
		}
	}
	return nil
}

// endCall ends the probe call whatever state it is in.
func (p *Probe) endCall(ctx context.Context, phone, id string) {
	st, err := p.Phone(ctx, phone)
	if err != nil {
		return
	}
	for _, c := range st.Calls {
		if c.ID != id {
			continue
		}
		switch c.State {
		case uaclient.StateConfirmed:
			_, _ = p.Lab.Exec(ctx, phone, "hangup", id, "-timeout", "3s")
		case uaclient.StateCalling, uaclient.StateRinging, uaclient.StateEarly:
			// A CANCEL waits for a provisional response (RFC 3261 §9.1):
			// with none, the INVITE times out by itself (Timer B).
			_, _ = p.Lab.Exec(ctx, phone, "cancel", id, "-timeout", "3s")
		}
	}
	// Let the BYE/CANCEL transactions finish before the next step.
	_, _ = p.Lab.Exec(ctx, phone, "wait", "call-state", "terminated", id, "-timeout", "3s")
}

// TwoWayAudio is the common check: a probe call from → to connects, the
// right phone answers and each side hears the other's tone.
func (p *Probe) TwoWayAudio(ctx context.Context, r *Result, from, to string, o CallOpts) CallResult {
	res, err := p.Call(ctx, from, to, o)
	if err != nil {
		r.require(false, "probe call %s → %s: %v", from, to, err)
		return res
	}
	describeCall(r, res)
	if !res.Connected {
		return res
	}
	r.require(res.Caller.Hears(res.Callee), "%s", res.Caller.HearsLine(res.Callee))
	r.require(res.Callee.Hears(res.Caller), "%s", res.Callee.HearsLine(res.Caller))
	return res
}

// describeCall records how the probe call went.
func describeCall(r *Result, res CallResult) {
	from, to := res.Caller.Phone, res.Target
	if res.Answered != "" && res.Answered != to {
		r.require(false, "%s's probe call to %s was answered by %s — the wrong phone rang", from, to, res.Answered)
		return
	}
	c := res.Caller.Call
	if !res.Connected {
		switch {
		case c == nil:
			r.require(false, "%s's probe call to %s vanished", from, to)
		case c.State == uaclient.StateTerminated:
			r.require(false, "%s's probe call to %s failed: %d %s (%s)", from, to, c.Code, c.Reason, c.EndReason)
		default:
			r.require(false, "%s's probe call to %s got no answer in time (still %s; callee saw it: %v)", from, to, c.State, res.Callee.Call != nil)
		}
		return
	}
	r.require(true, "%s's probe call to %s connected (Call-ID %s)", from, to, c.CallID)
}
