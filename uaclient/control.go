package uaclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/internal/live"
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
type SetRequest = ctl.SetRequest

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

// route is one control path and its handler; each concern (settings,
// registration, calls, presence and messaging) has its table in its own
// file, control_*.go.
type route struct {
	pattern string
	handler http.HandlerFunc
}

// Handler serves the control API for p.
func (p *Phone) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, table := range [][]route{p.settingsRoutes(), p.registrationRoutes(), p.callRoutes(), p.messagingRoutes()} {
		for _, rt := range table {
			mux.HandleFunc(rt.pattern, rt.handler)
		}
	}
	return mux
}

// verb is the handler of a request that decodes an In, runs, and answers
// with the Out (or the error's status).
func verb[In, Out any](run func(ctx context.Context, in In) (Out, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in In
		if !decode(w, r, &in) {
			return
		}
		out, err := run(r.Context(), in)
		if err != nil {
			writeErr(w, err)
			return
		}
		ctl.WriteJSON(w, http.StatusOK, out)
	}
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
		d, err := live.Seconds(in.Timeout)
		if err != nil {
			return WaitResult{}, fmt.Errorf("%w: timeout %w", ErrBadValue, err)
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

// get asks the phone for path and decodes its answer as a T.
func get[T any](ctx context.Context, c *Control, path string) (T, error) {
	var out T
	err := c.Get(ctx, path, &out)
	return out, err
}

// post sends in to path and decodes the phone's answer as a T.
func post[T any](ctx context.Context, c *Control, path string, in any) (T, error) {
	var out T
	err := c.Post(ctx, path, in, &out)
	return out, err
}

func (c *Control) Status(ctx context.Context) (Status, error) {
	return get[Status](ctx, c, "/status")
}

func (c *Control) Settings(ctx context.Context) ([]SettingInfo, error) {
	return get[[]SettingInfo](ctx, c, "/settings")
}

func (c *Control) Set(ctx context.Context, name, value string) ([]SettingInfo, error) {
	return post[[]SettingInfo](ctx, c, "/set", SetRequest{Name: name, Value: value})
}

func (c *Control) Register(ctx context.Context) (RegStatus, error) {
	return post[RegStatus](ctx, c, "/register", nil)
}

func (c *Control) Unregister(ctx context.Context) (RegStatus, error) {
	return post[RegStatus](ctx, c, "/unregister", nil)
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
	return post[ResetResult](ctx, c, "/reset", ResetRequest{CallsOnly: callsOnly})
}

func (c *Control) Call(ctx context.Context, target string) (CallStatus, error) {
	return post[CallStatus](ctx, c, "/call", CallRequest{Target: target})
}

// Verb runs answer, reject, cancel, hangup, dtmf, hold, resume or update
// on a call.
func (c *Control) Verb(ctx context.Context, verb string, in CallRequest) (CallStatus, error) {
	return post[CallStatus](ctx, c, "/"+verb, in)
}

// Transfer sends REFER on call (""=the newest confirmed) to target; with
// names the consultation call of an attended transfer.
func (c *Control) Transfer(ctx context.Context, call, target, with string) (CallStatus, error) {
	return post[CallStatus](ctx, c, "/transfer", CallRequest{Call: call, Target: target, With: with})
}

// Subscribe sends SUBSCRIBE for event (dialog, message-summary) to target.
func (c *Control) Subscribe(ctx context.Context, target, event string) (SubscriptionStatus, error) {
	return post[SubscriptionStatus](ctx, c, "/subscribe", CallRequest{Target: target, Event: event})
}

// Unsubscribe ends subscription id ("" = the newest live one).
func (c *Control) Unsubscribe(ctx context.Context, id string) (SubscriptionStatus, error) {
	return post[SubscriptionStatus](ctx, c, "/unsubscribe", CallRequest{Call: id})
}

// Message sends a MESSAGE; a failure answer is in the record's Code.
func (c *Control) Message(ctx context.Context, target, text string) (MessageRecord, error) {
	return post[MessageRecord](ctx, c, "/message", CallRequest{Target: target, Text: text})
}

func (c *Control) Options(ctx context.Context, target string) (OptionsResult, error) {
	return post[OptionsResult](ctx, c, "/options", CallRequest{Target: target})
}

func (c *Control) Wait(ctx context.Context, in WaitRequest) (WaitResult, error) {
	return post[WaitResult](ctx, c, "/wait", in)
}
