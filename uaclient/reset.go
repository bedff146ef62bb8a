package uaclient

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/siplab/siplab/sip/b2bleg"
)

// DefaultValue is the value that puts one setting back to what the phone
// started with (its flags and -set options): `set alice password default`.
const DefaultValue = "default"

// ResetResult is what Reset undid, for the trainer's report.
type ResetResult struct {
	CallsEnded         int `json:"calls_ended"`
	SubscriptionsEnded int `json:"subscriptions_ended"`
	// SettingsRestored names the settings whose value was not the
	// startup value.
	SettingsRestored []string `json:"settings_restored"`
	// BindingsRemoved is how many bindings of the phone's AOR the
	// registrar listed before the wildcard un-REGISTER (ours included).
	BindingsRemoved int       `json:"bindings_removed"`
	Registration    RegStatus `json:"registration"`
}

// setDefaultLocked copies one setting's startup value into s.
func (p *Phone) setDefaultLocked(def *setting, s *liveSettings) error {
	init := p.initial
	switch def.Name {
	case "password":
		s.Password = init.Password
		return nil
	case "codecs":
		s.Codecs = append(s.Codecs[:0:0], init.Codecs...)
		return nil
	case "turn_password":
		s.TURNPassword = init.TURNPassword
		return nil
	case "proxy":
		s.prevProxy, s.Proxy = s.Proxy, init.Proxy
		return nil
	}
	return def.set(s, def.get(&init))
}

// Reset puts the phone back where it started: every call ended, every
// subscription ended, the history (calls, messages, MWI) cleared, every
// setting at its startup value, and exactly one binding at the registrar:
// all of the AOR's bindings are removed (Contact: *, which also removes
// bindings a broken ALG rewrote) before one fresh REGISTER.
func (p *Phone) Reset(ctx context.Context) (ResetResult, error) {
	res := p.EndAll(ctx)
	return p.resetRest(ctx, res)
}

// EndAll ends every call (BYE, CANCEL or decline as its state needs) and
// every subscription, and says how many it ended: the first half of
// Reset, which the lab runs on every phone before its router forgets the
// mappings these BYEs need.
func (p *Phone) EndAll(ctx context.Context) ResetResult {
	var res ResetResult
	p.mu.Lock()
	calls := append([]*Call(nil), p.calls...)
	p.mu.Unlock()
	res.CallsEnded = b2bleg.HangupAll(ctx, &p.mu, calls, func(c *Call) bool { return c.state == StateTerminated },
		func(ctx context.Context, c *Call) {
			if err := c.end(ctx); err != nil {
				p.log.Info("reset: ending call", "call", c.id, "err", err)
			}
			// Whatever the far end did, the call is over here.
			c.terminate(0, "", "reset", "lab reset")
		})
	res.SubscriptionsEnded = p.endSubscriptions(ctx)
	return res
}

func (p *Phone) resetRest(ctx context.Context, res ResetResult) (ResetResult, error) {
	p.mu.Lock()
	old := p.settings
	for i := range settingsTable {
		def := &settingsTable[i]
		changed := def.get(&old) != def.get(&p.initial)
		switch def.Name {
		case "password":
			changed = old.Password != p.initial.Password
		case "turn_password":
			changed = old.TURNPassword != p.initial.TURNPassword
		}
		if changed {
			res.SettingsRestored = append(res.SettingsRestored, def.Name)
		}
	}
	oldProxy := old.Proxy
	p.settings = p.initial
	p.settings.Codecs = append(p.initial.Codecs[:0:0], p.initial.Codecs...)
	p.calls = nil
	p.messages = nil
	p.subs = nil
	p.mwi = nil
	p.lastInvite = LastInvite{}
	p.ka = keepaliveStatus{}
	p.reg.minExpires = 0
	res.BindingsRemoved = len(p.reg.bindings)
	p.reg.wanted = p.cfg.AutoRegister
	p.notifyLocked()
	p.mu.Unlock()
	p.kickKeepalive()

	// Bindings made through another server (the SBC) go first, through
	// it, so it drops its cached registration too.
	if oldProxy != "" && oldProxy != p.initial.Proxy {
		uctx, ucancel := context.WithTimeout(ctx, 3*time.Second)
		if _, _, err := p.sendRegisterAll(uctx, oldProxy); err != nil {
			p.log.Info("reset: un-REGISTER through the old server", "server", oldProxy, "err", err)
		}
		ucancel()
	}
	if p.initial.Proxy == "" || !p.cfg.AutoRegister {
		// A trunk (the carrier) or a phone started without registering:
		// nothing to bind, and a wildcard un-REGISTER would be refused.
		p.mu.Lock()
		res.Registration = p.regStatus()
		p.mu.Unlock()
		return res, nil
	}
	uctx, ucancel := context.WithTimeout(ctx, 4*time.Second)
	r, _, err := p.sendRegisterAll(uctx, "")
	ucancel()
	if err != nil {
		return res, fmt.Errorf("uaclient: reset: un-REGISTER *: %w", err)
	}
	if !r.IsSuccess() {
		return res, fmt.Errorf("uaclient: reset: un-REGISTER *: %d %s", r.StatusCode, r.Reason)
	}
	// A fresh phone's registrations are a new dialog: a new Call-ID, so a
	// capture read from the reset on (capture boundary) shows them whole.
	p.mu.Lock()
	p.reg.callID, p.reg.cseq = newCallID(p.local), 0
	p.mu.Unlock()
	err = p.Register(ctx)
	p.mu.Lock()
	res.Registration = p.regStatus()
	p.mu.Unlock()
	if err != nil {
		return res, fmt.Errorf("uaclient: reset: REGISTER: %w", err)
	}
	return res, nil
}

// liveSubscriptionsLocked lists the subscriptions to un-SUBSCRIBE:
// active or pending and not being stopped, in established dialogs only (a
// SUBSCRIBE still unanswered has nowhere to send the un-SUBSCRIBE yet);
// p.mu held.
func (p *Phone) liveSubscriptionsLocked() []string {
	var live []string
	for _, s := range p.subs {
		if !s.stop && s.dlg.RemoteTag != "" && (s.st.State == SubActive || s.st.State == SubPending) {
			live = append(live, s.st.ID)
		}
	}
	return live
}

// endSubscriptions un-SUBSCRIBEs every live subscription and stops the
// refresh of the others; it returns how many were live.
func (p *Phone) endSubscriptions(ctx context.Context) int {
	p.mu.Lock()
	live := p.liveSubscriptionsLocked()
	p.mu.Unlock()
	for _, id := range live {
		uctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := p.Unsubscribe(uctx, id); err != nil {
			p.log.Info("unsubscribe failed", "id", id, "err", err)
		}
		cancel()
	}
	p.mu.Lock()
	for _, s := range p.subs {
		s.stop = true
	}
	p.notifyLocked()
	p.mu.Unlock()
	return len(live)
}

// describeReset is one line for people.
func (r ResetResult) String() string {
	var b strings.Builder
	if r.Registration.State == "" && len(r.SettingsRestored) == 0 {
		// EndAll: calls and subscriptions only.
		fmt.Fprintf(&b, "%d call(s) ended, %d subscription(s) ended", r.CallsEnded, r.SubscriptionsEnded)
		return b.String()
	}
	fmt.Fprintf(&b, "%d call(s) ended, %d subscription(s) ended, %d binding(s) removed", r.CallsEnded, r.SubscriptionsEnded, r.BindingsRemoved)
	if len(r.SettingsRestored) > 0 {
		fmt.Fprintf(&b, ", restored %s", strings.Join(r.SettingsRestored, ","))
	} else {
		b.WriteString(", settings already at defaults")
	}
	fmt.Fprintf(&b, "; registration %s", r.Registration.State)
	return b.String()
}
