package uaclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/siplab/siplab/ctl"
)

// Control API: JSON over the phone's unix socket (package ctl). The CLI
// subcommands and the lab's host CLI both use Control below; the paths are
// the verbs.

// CallRequest names a call ("" = the one that fits) and verb arguments.
type CallRequest struct {
	Call   string `json:"call,omitempty"`
	Target string `json:"target,omitempty"`
	Code   int    `json:"code,omitempty"`
	Digits string `json:"digits,omitempty"`
	// Text is a MESSAGE body.
	Text string `json:"text,omitempty"`
	// With names the consultation call of an attended transfer: the
	// REFER's Refer-To carries Replaces for it.
	With string `json:"with,omitempty"`
	// Event is a SUBSCRIBE event package: dialog or message-summary.
	Event string `json:"event,omitempty"`
}

// SetRequest changes one setting.
type SetRequest struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// WaitRequest waits for a condition: "registered", "unregistered",
// "registration-failed" or "call-state" (with State and optionally Call).
type WaitRequest struct {
	Condition string `json:"condition"`
	State     string `json:"state,omitempty"`
	Call      string `json:"call,omitempty"`
	// Timeout like "30s"; empty = 30s.
	Timeout string `json:"timeout,omitempty"`
}

// WaitResult is what a wait ended with.
type WaitResult struct {
	Registration *RegStatus  `json:"registration,omitempty"`
	Call         *CallStatus `json:"call,omitempty"`
}

// Handler serves the control API for p.
func (p *Phone) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		ctl.WriteJSON(w, http.StatusOK, p.Status())
	})
	mux.HandleFunc("GET /settings", func(w http.ResponseWriter, r *http.Request) {
		ctl.WriteJSON(w, http.StatusOK, p.Settings())
	})
	mux.HandleFunc("POST /set", func(w http.ResponseWriter, r *http.Request) {
		var in SetRequest
		if !decode(w, r, &in) {
			return
		}
		if err := p.Set(in.Name, in.Value); err != nil {
			writeErr(w, err)
			return
		}
		ctl.WriteJSON(w, http.StatusOK, p.Settings())
	})
	mux.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		err := p.Register(r.Context())
		p.mu.Lock()
		st := p.regStatus()
		p.mu.Unlock()
		if err != nil {
			writeErr(w, err)
			return
		}
		ctl.WriteJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /unregister", func(w http.ResponseWriter, r *http.Request) {
		if err := p.Unregister(r.Context()); err != nil {
			writeErr(w, err)
			return
		}
		p.mu.Lock()
		st := p.regStatus()
		p.mu.Unlock()
		ctl.WriteJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) {
		var in ResetRequest
		if r.ContentLength != 0 && !decode(w, r, &in) {
			return
		}
		if in.CallsOnly {
			ctl.WriteJSON(w, http.StatusOK, p.EndAll(r.Context()))
			return
		}
		res, err := p.Reset(r.Context())
		if err != nil {
			writeErr(w, err)
			return
		}
		ctl.WriteJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST /call", func(w http.ResponseWriter, r *http.Request) {
		var in CallRequest
		if !decode(w, r, &in) {
			return
		}
		c, err := p.Call(r.Context(), in.Target)
		if err != nil {
			writeErr(w, err)
			return
		}
		ctl.WriteJSON(w, http.StatusOK, c.Status())
	})
	// Verbs on an existing call answer with its status once the verb took
	// effect (answered, rejected, ended), so the CLI can print the outcome.
	callVerb := func(path string, run func(ctx context.Context, in CallRequest) (string, error), until ...CallState) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			var in CallRequest
			if !decode(w, r, &in) {
				return
			}
			ref, err := run(r.Context(), in)
			if err != nil {
				writeErr(w, err)
				return
			}
			if len(until) > 0 {
				ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
				defer cancel()
				p.WaitCall(ctx, ref, until...)
			}
			st, err := p.CallStatus(ref)
			if err != nil {
				writeErr(w, err)
				return
			}
			ctl.WriteJSON(w, http.StatusOK, st)
		})
	}
	// resolve pins "" to a concrete call before acting, so the reply
	// describes the call the verb acted on.
	resolve := func(ref string, fits func(*Call) bool) (string, error) {
		c, err := p.findCall(ref, fits)
		if err != nil {
			return "", err
		}
		return c.id, nil
	}
	ringingIn := func(c *Call) bool {
		return c.direction == Incoming && (c.state == StateRinging || c.state == StateEarly)
	}
	live := func(c *Call) bool { return c.state != StateTerminated }
	callVerb("/answer", func(ctx context.Context, in CallRequest) (string, error) {
		ref, err := resolve(in.Call, ringingIn)
		if err != nil {
			return "", p.nothingRinging(err, in.Call, "answer")
		}
		return ref, p.Answer(ref)
	}, StateConfirmed, StateTerminated)
	callVerb("/reject", func(ctx context.Context, in CallRequest) (string, error) {
		ref, err := resolve(in.Call, ringingIn)
		if err != nil {
			return "", p.nothingRinging(err, in.Call, "reject")
		}
		return ref, p.Reject(ref, in.Code)
	}, StateTerminated)
	callVerb("/cancel", func(ctx context.Context, in CallRequest) (string, error) {
		ref, err := resolve(in.Call, func(c *Call) bool { return c.direction == Outgoing && live(c) && c.state != StateConfirmed })
		if err != nil {
			return "", err
		}
		return ref, p.Cancel(ctx, ref)
	}, StateTerminated)
	callVerb("/hangup", func(ctx context.Context, in CallRequest) (string, error) {
		ref, err := resolve(in.Call, live)
		if err != nil {
			return "", err
		}
		return ref, p.Hangup(ctx, ref)
	}, StateTerminated)
	callVerb("/dtmf", func(ctx context.Context, in CallRequest) (string, error) {
		ref, err := resolve(in.Call, func(c *Call) bool { return c.state == StateConfirmed })
		if err != nil {
			return "", err
		}
		return ref, p.SendDTMF(ctx, ref, in.Digits)
	})
	confirmed := func(c *Call) bool { return c.state == StateConfirmed }
	callVerb("/hold", func(ctx context.Context, in CallRequest) (string, error) {
		ref, err := resolve(in.Call, confirmed)
		if err != nil {
			return "", err
		}
		return ref, p.Hold(ctx, ref)
	})
	callVerb("/resume", func(ctx context.Context, in CallRequest) (string, error) {
		ref, err := resolve(in.Call, confirmed)
		if err != nil {
			return "", err
		}
		return ref, p.Resume(ctx, ref)
	})
	// transfer answers once the transfer is over (final NOTIFY, or the
	// call ended) or after 30 s with where it stands.
	callVerb("/update", func(ctx context.Context, in CallRequest) (string, error) {
		ref, err := resolve(in.Call, confirmed)
		if err != nil {
			return "", err
		}
		return ref, p.Update(ctx, ref)
	})
	mux.HandleFunc("POST /transfer", func(w http.ResponseWriter, r *http.Request) {
		var in CallRequest
		if !decode(w, r, &in) {
			return
		}
		c, err := p.transfer(r.Context(), in.Call, in.Target, in.With)
		if err != nil {
			writeErr(w, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		p.wait(ctx, func() bool {
			return c.state == StateTerminated || c.transfer == nil || c.transfer.final()
		})
		ctl.WriteJSON(w, http.StatusOK, c.Status())
	})
	mux.HandleFunc("POST /subscribe", func(w http.ResponseWriter, r *http.Request) {
		var in CallRequest
		if !decode(w, r, &in) {
			return
		}
		st, err := p.Subscribe(r.Context(), in.Target, in.Event)
		if err != nil && st.ID == "" {
			writeErr(w, err)
			return
		}
		// A refused SUBSCRIBE is an answer: report it, not an error.
		ctl.WriteJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /unsubscribe", func(w http.ResponseWriter, r *http.Request) {
		var in CallRequest
		if !decode(w, r, &in) {
			return
		}
		st, err := p.Unsubscribe(r.Context(), in.Call)
		if err != nil {
			writeErr(w, err)
			return
		}
		ctl.WriteJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /message", func(w http.ResponseWriter, r *http.Request) {
		var in CallRequest
		if !decode(w, r, &in) {
			return
		}
		rec, err := p.SendMessage(r.Context(), in.Target, in.Text)
		if err != nil {
			writeErr(w, err)
			return
		}
		ctl.WriteJSON(w, http.StatusOK, rec)
	})
	mux.HandleFunc("POST /options", func(w http.ResponseWriter, r *http.Request) {
		var in CallRequest
		if !decode(w, r, &in) {
			return
		}
		res, err := p.Options(r.Context(), in.Target)
		if err != nil && res.Code == 0 {
			writeErr(w, err)
			return
		}
		// A failure response is still an answer: report it, not an error.
		ctl.WriteJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST /wait", func(w http.ResponseWriter, r *http.Request) {
		var in WaitRequest
		if !decode(w, r, &in) {
			return
		}
		res, err := p.waitFor(r.Context(), in)
		if err != nil {
			writeErr(w, err)
			return
		}
		ctl.WriteJSON(w, http.StatusOK, res)
	})
	return mux
}

// nothingRinging explains an answer or reject with no ringing call: what
// the phone has, and how to make it ring long enough to act on.
func (p *Phone) nothingRinging(err error, ref, verb string) error {
	if ref != "" || !errors.Is(err, ErrNoSuchCall) {
		return err
	}
	p.mu.Lock()
	var have []string
	for _, c := range p.calls {
		if c.state != StateTerminated {
			have = append(have, fmt.Sprintf("call %s %s %s", c.id, c.direction, c.state))
		}
	}
	auto := p.settings.AutoAnswer
	p.mu.Unlock()
	now := "no call"
	if len(have) > 0 {
		now = strings.Join(have, ", ")
	}
	hint := fmt.Sprintf("call %s from another phone first (e.g. `siplab call alice %s`), then %s it while it rings", p.cfg.Name, p.cfg.User, verb)
	if auto > 0 {
		hint += fmt.Sprintf("; it answers by itself after %s (auto_answer), so `siplab set %s auto_answer 0` first", auto, p.cfg.Name)
	}
	return fmt.Errorf("%w: nothing to %s: no incoming call is ringing on %s (%s); %s", ErrNoSuchCall, verb, p.cfg.Name, now, hint)
}

func (p *Phone) waitFor(ctx context.Context, in WaitRequest) (WaitResult, error) {
	timeout := 30 * time.Second
	if in.Timeout != "" {
		d, err := parseDuration(in.Timeout)
		if err != nil {
			return WaitResult{}, err
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var res WaitResult
	regWait := func(s RegState) (WaitResult, error) {
		st, err := p.WaitRegistration(ctx, s)
		res.Registration = &st
		return res, timeoutErr(err, fmt.Sprintf("registration %s", s))
	}
	switch strings.ToLower(in.Condition) {
	case "registered":
		return regWait(RegRegistered)
	case "unregistered":
		return regWait(RegUnregistered)
	case "registration-failed":
		return regWait(RegFailed)
	case "call-state", "call":
		st, err := p.WaitCall(ctx, in.Call, CallState(strings.ToLower(in.State)))
		res.Call = &st
		return res, timeoutErr(err, fmt.Sprintf("call state %s", in.State))
	}
	return res, fmt.Errorf("%w: wait condition %q (want registered, unregistered, registration-failed or call-state)", ErrBadValue, in.Condition)
}

func timeoutErr(err error, what string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s not reached in time", ErrTimeout, what)
	}
	return err
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := ctl.Decode(r, v); err != nil {
		ctl.WriteError(w, http.StatusBadRequest, err)
		return false
	}
	return true
}

// writeErr maps the package's errors to HTTP statuses: 4xx for what the
// caller got wrong, 502 for SIP failures the far end reported, 504 for
// silence.
func writeErr(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNoSuchCall):
		status = http.StatusNotFound
	case errors.Is(err, ErrCallState), errors.Is(err, ErrNoDTMF), errors.Is(err, ErrNoMedia), errors.Is(err, ErrNoProxy):
		status = http.StatusConflict
	case errors.Is(err, ErrBadValue), errors.Is(err, ErrUnknownSetting), errors.Is(err, ErrBadTarget), errors.Is(err, ErrBadDigits):
		status = http.StatusBadRequest
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
	case errors.Is(err, ErrWrongCredentials), errors.Is(err, ErrForbidden), errors.Is(err, ErrNoCredentials), errors.Is(err, ErrRejected):
		status = http.StatusBadGateway
	case errors.Is(err, ErrClosed):
		status = http.StatusServiceUnavailable
	}
	ctl.WriteError(w, status, err)
}

// Control is a typed client of a phone's control socket.
type Control struct {
	ctl.Client
}

// NewControl returns a client for the phone serving socket.
func NewControl(socket string) *Control {
	return &Control{Client: ctl.Client{Socket: socket}}
}

func (c *Control) Status(ctx context.Context) (Status, error) {
	var st Status
	return st, c.Get(ctx, "/status", &st)
}

func (c *Control) Settings(ctx context.Context) ([]SettingInfo, error) {
	var out []SettingInfo
	return out, c.Get(ctx, "/settings", &out)
}

func (c *Control) Set(ctx context.Context, name, value string) ([]SettingInfo, error) {
	var out []SettingInfo
	return out, c.Post(ctx, "/set", SetRequest{Name: name, Value: value}, &out)
}

func (c *Control) Register(ctx context.Context) (RegStatus, error) {
	var st RegStatus
	return st, c.Post(ctx, "/register", nil, &st)
}

func (c *Control) Unregister(ctx context.Context) (RegStatus, error) {
	var st RegStatus
	return st, c.Post(ctx, "/unregister", nil, &st)
}

// ResetRequest is the body of POST /reset (optional).
type ResetRequest struct {
	// CallsOnly ends calls and subscriptions and nothing else
	// (Phone.EndAll).
	CallsOnly bool `json:"calls_only,omitempty"`
}

// Reset puts the phone back to its startup state (Phone.Reset); with
// callsOnly it only ends calls and subscriptions (Phone.EndAll).
func (c *Control) Reset(ctx context.Context, callsOnly bool) (ResetResult, error) {
	var res ResetResult
	return res, c.Post(ctx, "/reset", ResetRequest{CallsOnly: callsOnly}, &res)
}

func (c *Control) Call(ctx context.Context, target string) (CallStatus, error) {
	var st CallStatus
	return st, c.Post(ctx, "/call", CallRequest{Target: target}, &st)
}

// Verb runs answer, reject, cancel, hangup, dtmf, hold, resume or update
// on a call.
func (c *Control) Verb(ctx context.Context, verb string, in CallRequest) (CallStatus, error) {
	var st CallStatus
	return st, c.Post(ctx, "/"+verb, in, &st)
}

// Transfer sends REFER on call (""=the newest confirmed) to target; with
// names the consultation call of an attended transfer.
func (c *Control) Transfer(ctx context.Context, call, target, with string) (CallStatus, error) {
	var st CallStatus
	return st, c.Post(ctx, "/transfer", CallRequest{Call: call, Target: target, With: with}, &st)
}

// Subscribe sends SUBSCRIBE for event (dialog, message-summary) to target.
func (c *Control) Subscribe(ctx context.Context, target, event string) (SubscriptionStatus, error) {
	var st SubscriptionStatus
	return st, c.Post(ctx, "/subscribe", CallRequest{Target: target, Event: event}, &st)
}

// Unsubscribe ends subscription id ("" = the newest live one).
func (c *Control) Unsubscribe(ctx context.Context, id string) (SubscriptionStatus, error) {
	var st SubscriptionStatus
	return st, c.Post(ctx, "/unsubscribe", CallRequest{Call: id}, &st)
}

// Message sends a MESSAGE; a failure answer is in the record's Code.
func (c *Control) Message(ctx context.Context, target, text string) (MessageRecord, error) {
	var rec MessageRecord
	return rec, c.Post(ctx, "/message", CallRequest{Target: target, Text: text}, &rec)
}

func (c *Control) Options(ctx context.Context, target string) (OptionsResult, error) {
	var res OptionsResult
	return res, c.Post(ctx, "/options", CallRequest{Target: target}, &res)
}

func (c *Control) Wait(ctx context.Context, in WaitRequest) (WaitResult, error) {
	var res WaitResult
	return res, c.Post(ctx, "/wait", in, &res)
}
