package uaclient

import (
	"context"
	"net/http"
	"time"

	"github.com/siplab/siplab/internal/ctl"
)

// callRoutes: placing a call and every verb on one.
func (p *Phone) callRoutes() []route {
	ringingIn := func(c *Call) bool {
		return c.direction == Incoming && (c.state == StateRinging || c.state == StateEarly)
	}
	live := func(c *Call) bool { return c.state != StateTerminated }
	confirmed := func(c *Call) bool { return c.state == StateConfirmed }
	routes := []route{
		{"POST /call", verb(func(ctx context.Context, in CallRequest) (CallStatus, error) {
			c, err := p.Call(ctx, in.Target)
			if err != nil {
				return CallStatus{}, err
			}
			return c.Status(), nil
		})},
		// transfer answers once the transfer is over (final NOTIFY, or the
		// call ended) or after 30 s with where it stands.
		{"POST /transfer", verb(func(ctx context.Context, in CallRequest) (CallStatus, error) {
			c, err := p.transfer(ctx, in.Call, in.Target, in.With)
			if err != nil {
				return CallStatus{}, err
			}
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			p.wait(ctx, func() bool {
				return c.state == StateTerminated || c.transfer == nil || c.transfer.final()
			})
			return c.Status(), nil
		})},
	}
	// Verbs on an existing call: which call "" means, what to do, and the
	// states to wait for before answering.
	verbs := []struct {
		path  string
		fits  func(*Call) bool
		act   func(ctx context.Context, ref string, in CallRequest) error
		until []CallState
	}{
		{"/answer", ringingIn, func(_ context.Context, ref string, _ CallRequest) error { return p.Answer(ref) },
			[]CallState{StateConfirmed, StateTerminated}},
		{"/reject", ringingIn, func(_ context.Context, ref string, in CallRequest) error { return p.Reject(ref, in.Code) },
			[]CallState{StateTerminated}},
		{"/cancel", func(c *Call) bool { return c.direction == Outgoing && live(c) && c.state != StateConfirmed },
			func(ctx context.Context, ref string, _ CallRequest) error { return p.Cancel(ctx, ref) }, []CallState{StateTerminated}},
		{"/hangup", live, func(ctx context.Context, ref string, _ CallRequest) error { return p.Hangup(ctx, ref) },
			[]CallState{StateTerminated}},
		{"/dtmf", confirmed, func(ctx context.Context, ref string, in CallRequest) error { return p.SendDTMF(ctx, ref, in.Digits) }, nil},
		{"/hold", confirmed, func(ctx context.Context, ref string, _ CallRequest) error { return p.Hold(ctx, ref) }, nil},
		{"/resume", confirmed, func(ctx context.Context, ref string, _ CallRequest) error { return p.Resume(ctx, ref) }, nil},
		{"/update", confirmed, func(ctx context.Context, ref string, _ CallRequest) error { return p.Update(ctx, ref) }, nil},
	}
	for _, v := range verbs {
		routes = append(routes, route{"POST " + v.path, p.callVerb(v.path[1:], v.fits, v.act, v.until)})
	}
	return routes
}

// callVerb acts on the call in.Call names, or, for "", the one call that
// fits (pinned first, so the reply describes the call acted on). It
// answers with the call's status once the verb took effect (answered,
// rejected, ended: the until states, 10 s at most), so the CLI can print
// the outcome.
func (p *Phone) callVerb(name string, fits func(*Call) bool, act func(ctx context.Context, ref string, in CallRequest) error, until []CallState) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in CallRequest
		if !decode(w, r, &in) {
			return
		}
		c, err := p.findCall(in.Call, fits)
		if err != nil {
			if name == "answer" || name == "reject" {
				err = p.nothingRinging(err, in.Call, name)
			}
			writeErr(w, err)
			return
		}
		if err := act(r.Context(), c.id, in); err != nil {
			writeErr(w, err)
			return
		}
		if len(until) > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			defer cancel()
			p.WaitCall(ctx, c.id, until...)
		}
		st, err := p.CallStatus(c.id)
		if err != nil {
			writeErr(w, err)
			return
		}
		ctl.WriteJSON(w, http.StatusOK, st)
	}
}
