package uaclient

import (
	"context"
	"fmt"
	"slices"
	"sort"
)

// Status is everything the phone can tell about itself.
type Status struct {
	Name         string            `json:"name"`
	User         string            `json:"user"`
	Transport    string            `json:"transport"`
	Local        string            `json:"local"`
	Proxy        string            `json:"proxy,omitempty"`
	ToneHz       float64           `json:"tone_hz"`
	Codecs       []string          `json:"codecs"`
	DTMF         bool              `json:"dtmf"`
	Registration RegStatus         `json:"registration"`
	Keepalive    KeepaliveStatus   `json:"keepalive"`
	Settings     map[string]string `json:"settings"`
	Calls        []CallStatus      `json:"calls"`
	// Messages are the MESSAGEs sent and received (newest last).
	Messages []MessageRecord `json:"messages,omitempty"`
	// Subscriptions are our SUBSCRIBE dialogs: BLF lamps, message waiting.
	Subscriptions []SubscriptionStatus `json:"subscriptions,omitempty"`
	// MWI is the last message-waiting indication, subscribed or not.
	MWI *MWIStatus `json:"mwi,omitempty"`
	// LastInvite is the last INVITE and its 2xx as this phone sent and
	// received them: Via, From, To, Call-ID, CSeq, Contact and the SDP
	// c=/m=/rtpmap/direction lines (training-page modules 02 and 06).
	LastInvite LastInvite `json:"last_invite"`
	// Summary is one line for people (`siplab status`).
	Summary string `json:"summary"`
}

// Status snapshots the phone.
func (p *Phone) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Status{
		Name:         p.cfg.Name,
		User:         p.cfg.User,
		Transport:    p.cfg.Transport,
		Local:        p.local.String(),
		Proxy:        p.settings.Proxy,
		ToneHz:       p.cfg.ToneHz,
		DTMF:         !p.cfg.NoDTMF,
		Registration: p.regStatus(),
		Keepalive: KeepaliveStatus{
			Mode:       p.settings.Keepalive,
			Interval:   p.settings.KeepaliveInterval.String(),
			Sent:       p.ka.sent,
			Last:       p.ka.last,
			LastResult: p.ka.lastResult,
		},
		Settings:   map[string]string{},
		Calls:      []CallStatus{},
		LastInvite: p.lastInvite,
	}
	for _, c := range p.settings.Codecs {
		st.Codecs = append(st.Codecs, c.String())
	}
	for _, s := range p.settings.list() {
		st.Settings[s.Name] = s.Value
	}
	for _, c := range p.calls {
		st.Calls = append(st.Calls, c.statusLocked())
	}
	st.Messages = append(st.Messages, p.messages...)
	for _, s := range p.subs {
		st.Subscriptions = append(st.Subscriptions, s.statusLocked())
	}
	if p.mwi != nil {
		m := *p.mwi
		st.MWI = &m
	}
	st.Summary = summarise(st)
	return st
}

// summarise says the registration and the newest call in one line.
func summarise(st Status) string {
	line := string(st.Registration.State)
	if st.Registration.State == RegRegistered {
		line += fmt.Sprintf(" (%ds left)", st.Registration.ExpiresIn)
	} else if st.Registration.Error != "" {
		line += ": " + st.Registration.Error
	}
	if n := len(st.Calls); n > 0 {
		c := st.Calls[n-1]
		line += fmt.Sprintf("; call %s %s %s: %s", c.ID, c.Direction, c.Peer, c.State)
		if c.Code != 0 {
			line += fmt.Sprintf(" %d", c.Code)
		}
		switch c.Hold {
		case "local":
			line += " on hold"
		case "remote":
			line += " held by remote"
		case "both":
			line += " on hold both ways"
		}
		if c.Media != nil {
			line += fmt.Sprintf(", rtp rx %d tx %d", c.Media.Received.Packets, c.Media.Sent.Packets)
		}
	}
	return line
}

// CallStatus reports one call ("" = the newest).
func (p *Phone) CallStatus(ref string) (CallStatus, error) {
	c, err := p.findCall(ref, nil)
	if err != nil {
		return CallStatus{}, err
	}
	return c.status(), nil
}

// WaitCall blocks until the call ref ("" = the newest call, which may not
// exist yet) is in one of states, and returns its status. Waiting for
// "confirmed" on a call that ends first fails at once instead of hanging.
func (p *Phone) WaitCall(ctx context.Context, ref string, states ...CallState) (CallStatus, error) {
	if len(states) == 0 {
		return CallStatus{}, fmt.Errorf("%w: no state to wait for", ErrBadValue)
	}
	for _, s := range states {
		if !validState(s) {
			return CallStatus{}, fmt.Errorf("%w: call state %q (want calling, ringing, early, confirmed or terminated)", ErrBadValue, s)
		}
	}
	var found *Call
	var ended bool
	err := p.wait(ctx, func() bool {
		found, ended = nil, false
		for i := len(p.calls) - 1; i >= 0; i-- {
			c := p.calls[i]
			if ref == "" || c.id == ref || c.callID == ref {
				found = c
				break
			}
		}
		if found == nil {
			return false
		}
		if slices.Contains(states, found.state) {
			return true
		}
		ended = found.state == StateTerminated
		return ended
	})
	if err != nil {
		if found != nil {
			return found.status(), fmt.Errorf("uaclient: waiting for call %s: %w", found.id, err)
		}
		return CallStatus{}, fmt.Errorf("uaclient: waiting for a call: %w", err)
	}
	st := found.status()
	if ended && !slices.Contains(states, StateTerminated) {
		return st, fmt.Errorf("%w: call %s terminated (%d %s, %s) before reaching %v", ErrCallState, st.ID, st.Code, st.Reason, st.EndReason, states)
	}
	return st, nil
}

func validState(s CallState) bool {
	switch s {
	case StateCalling, StateRinging, StateEarly, StateConfirmed, StateTerminated:
		return true
	}
	return false
}

// WaitRegistration blocks until the registration is in state.
func (p *Phone) WaitRegistration(ctx context.Context, state RegState) (RegStatus, error) {
	switch state {
	case RegUnregistered, RegRegistering, RegRegistered, RegFailed:
	default:
		return RegStatus{}, fmt.Errorf("%w: registration state %q", ErrBadValue, state)
	}
	var st RegStatus
	err := p.wait(ctx, func() bool {
		st = p.regStatus()
		return p.reg.state == state
	})
	return st, err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
