package b2bua

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/internal/live"
	"github.com/siplab/siplab/sip/b2bleg"
)

// Status is the PBX as `b2bua status` shows it.
type Status struct {
	Listen   string          `json:"listen"`
	MediaIP  string          `json:"media_ip"`
	Domain   string          `json:"domain"`
	Proxy    string          `json:"proxy,omitempty"`
	Settings Settings        `json:"settings"`
	Counters Counters        `json:"counters"`
	Calls    []CallStatus    `json:"calls"`
	Mailbox  []MailboxStatus `json:"mailboxes,omitempty"`
	// BLF are the busy-lamp subscriptions (dialog event package).
	BLF []SubscriptionStatus `json:"blf,omitempty"`
	// MWI are the message-summary subscriptions (mailbox watchers).
	MWI []SubscriptionStatus `json:"mwi,omitempty"`
	// Summary is one line for people (`siplab status`).
	Summary string `json:"summary"`
}

// CallStatus is one call with both legs.
type CallStatus struct {
	// ID is the X-Siplab-Call value both legs carry.
	ID      string    `json:"id"`
	State   CallState `json:"state"`
	Dialled string    `json:"dialled"`
	Caller  string    `json:"caller"`
	Target  string    `json:"target"`
	Media   string    `json:"media"` // anchored | direct
	// TempAnchor: direct media by setting, anchored for now for a hold
	// (music) or a transfer; it goes direct again when they end.
	TempAnchor bool `json:"temp_anchor,omitempty"`
	b2bleg.Times
	// Legs are the caller's (a) and the callee's (b) dialogs.
	Legs      []LegStatus      `json:"legs"`
	Recording *RecordingStatus `json:"recording,omitempty"`
	Events    []string         `json:"events,omitempty"`
}

// LegStatus is one dialog of a call and its media as the relay sees it.
type LegStatus struct {
	Leg          string     `json:"leg"`
	Peer         string     `json:"peer"`
	CallID       string     `json:"call_id"`
	LocalTag     string     `json:"local_tag"`
	RemoteTag    string     `json:"remote_tag,omitempty"`
	State        string     `json:"state"`
	RemoteTarget string     `json:"remote_target,omitempty"`
	RouteSet     []string   `json:"route_set,omitempty"`
	RemoteSDP    string     `json:"remote_sdp,omitempty"`
	Direction    string     `json:"direction,omitempty"`
	RTP          *SideStats `json:"rtp,omitempty"`
}

// MailboxStatus is one user's voicemail.
type MailboxStatus struct {
	User       string    `json:"user"`
	Messages   []Message `json:"messages"`
	LastNotify string    `json:"last_notify,omitempty"`
}

// Status snapshots the PBX.
func (b *B2BUA) Status() Status {
	st := Status{
		Listen:   b.ep.Addr().String(),
		MediaIP:  b.mediaIP.String(),
		Domain:   b.cfg.Domain,
		Proxy:    b.cfg.Proxy,
		Settings: b.settings.get(),
		Calls:    []CallStatus{},
	}
	b.mu.Lock()
	calls := slices.Clone(b.calls)
	st.Counters = b.counters
	for user, mb := range b.mailboxes {
		st.Mailbox = append(st.Mailbox, MailboxStatus{User: user, Messages: slices.Clone(mb.messages), LastNotify: mb.lastNotify})
	}
	for _, s := range b.subs {
		ss := SubscriptionStatus{Watcher: s.watcher, User: s.user, Lamp: s.lamp, Version: s.version,
			Expires: s.expires, LastNotify: s.last}
		if s.event == eventMessageSummary {
			st.MWI = append(st.MWI, ss)
			continue
		}
		st.BLF = append(st.BLF, ss)
	}
	b.mu.Unlock()
	sort.Slice(st.BLF, func(i, j int) bool { return st.BLF[i].User+st.BLF[i].Watcher < st.BLF[j].User+st.BLF[j].Watcher })
	sort.Slice(st.MWI, func(i, j int) bool { return st.MWI[i].User+st.MWI[i].Watcher < st.MWI[j].User+st.MWI[j].Watcher })
	sort.Slice(st.Mailbox, func(i, j int) bool { return st.Mailbox[i].User < st.Mailbox[j].User })
	for _, c := range calls {
		st.Calls = append(st.Calls, c.status())
	}
	st.Summary = summarise(st)
	return st
}

func (c *Call) status() CallStatus {
	b := c.b
	b.mu.Lock()
	cs := CallStatus{
		ID: c.id, State: c.state, Dialled: c.dialled, Caller: c.caller, Target: c.target.String(),
		Media: mediaMode(c.anchored), TempAnchor: c.tempAnchor, Times: c.times,
		Events: slices.Clone(c.events),
	}
	r, rec := c.relay, c.rec
	for _, l := range c.legs {
		if l == nil {
			continue
		}
		ls := LegStatus{Leg: legNames[l.idx], Peer: l.peer, CallID: l.Dlg.CallID, LocalTag: l.Dlg.LocalTag,
			RemoteTag: l.Dlg.RemoteTag, State: l.State.String()}
		if l.Dlg.RemoteTarget.Host != "" {
			ls.RemoteTarget = l.Dlg.RemoteTarget.String()
		}
		for _, u := range l.Dlg.RouteSet {
			ls.RouteSet = append(ls.RouteSet, u.String())
		}
		if l.remote != nil {
			ls.RemoteSDP = l.remote.AddrPort().String()
			ls.Direction = l.remote.Direction.String()
		}
		cs.Legs = append(cs.Legs, ls)
	}
	b.mu.Unlock()
	if r != nil {
		sides := r.stats()
		for i := range cs.Legs {
			idx := 0
			if cs.Legs[i].Leg == "b" {
				idx = 1
			}
			s := sides[idx]
			cs.Legs[i].RTP = &s
		}
	}
	if rec != nil {
		rs := rec.status()
		cs.Recording = &rs
	}
	return cs
}

func summarise(st Status) string {
	active, held := 0, 0
	for _, c := range st.Calls {
		if c.State == StateEnded {
			continue
		}
		active++
		for _, l := range c.Legs {
			if l.RTP != nil && l.RTP.Holding {
				held++
			}
		}
	}
	msgs := 0
	for _, m := range st.Mailbox {
		msgs += len(m.Messages)
	}
	return fmt.Sprintf("pbx %s: %d active call(s) (%d on hold), %d total, %d answered, %d forwarded, %d voicemail message(s); media %s",
		st.Listen, active, held, st.Counters.Calls, st.Counters.Answered, st.Counters.Forwarded, msgs,
		map[bool]string{true: "anchored", false: "direct"}[st.Settings.MediaAnchor])
}

// SetRequest is the body of POST /set.
type SetRequest = ctl.SetRequest

// Handler serves the control API (package ctl, on a unix socket):
//
//	GET  /status    Status
//	GET  /settings  Settings
//	POST /set       {"name":..., "value":...} → Settings ("default" = the startup value)
//	POST /reset     → ResetResult (calls, subscriptions, voicemail, settings)
func (b *B2BUA) Handler() http.Handler {
	mux := ctl.NewMux(b.Status, b.Settings, b.Reset)
	mux.HandleFunc("POST /set", ctl.SetHandler(func(name, value string) (Settings, error) {
		if err := b.Set(name, value); err != nil {
			return Settings{}, err
		}
		return b.Settings(), nil
	}, nil))
	return mux
}

// WriteText prints a status for people.
func WriteText(w io.Writer, st Status) {
	fmt.Fprintln(w, st.Summary)
	fmt.Fprintf(w, "settings: media_anchor=%s latch=%s moh=%s no_answer=%s\n",
		live.OnOffWord(st.Settings.MediaAnchor), live.OnOffWord(st.Settings.Latch), live.OnOffWord(st.Settings.MOH), st.Settings.NoAnswer)
	for _, c := range st.Calls {
		fmt.Fprintf(w, "call %s %s: %s dialled %s -> %s, media %s", c.ID, c.State, c.Caller, c.Dialled, c.Target, c.Media)
		if c.TempAnchor {
			fmt.Fprint(w, " (for hold/transfer; direct again after)")
		}
		if c.EndReason != "" {
			fmt.Fprintf(w, " (ended by %s: %s)", c.EndedBy, c.EndReason)
		}
		fmt.Fprintln(w)
		for _, l := range c.Legs {
			fmt.Fprintf(w, "  leg %s %-10s %s call-id %s sdp %s %s\n", l.Leg, l.State, l.Peer, l.CallID, orDash(l.RemoteSDP), l.Direction)
			if s := l.RTP; s != nil {
				fmt.Fprintf(w, "    rtp %s <-> %v: from phone %d pkts, to phone %d pkts, moh %d, dropped %d (hold %d), latched %v holding=%v\n",
					s.Local, s.SendingTo, s.PacketsIn, s.PacketsOut, s.Injected, s.Dropped.Total, s.Dropped.Hold, orDash(addrOrEmpty(s.Latched)), s.Holding)
				fmt.Fprintf(w, "    rtcp %s <-> %v: from phone %d pkts, to phone %d pkts, dropped %d\n",
					s.RTCP.Local, s.RTCP.SendingTo, s.RTCP.PacketsIn, s.RTCP.PacketsOut, s.RTCP.Dropped.Total)
			}
		}
		if c.Recording != nil {
			fmt.Fprintf(w, "  recording %s: %d pkts, %.1f s\n", c.Recording.File, c.Recording.Packets, c.Recording.Seconds)
		}
		for _, e := range c.Events {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	for _, s := range st.BLF {
		fmt.Fprintf(w, "blf %s watches %s: lamp %s (version %d), last NOTIFY %s\n", s.Watcher, s.User, s.Lamp, s.Version, orDash(s.LastNotify))
	}
	for _, s := range st.MWI {
		fmt.Fprintf(w, "mwi %s watches mailbox %s, last NOTIFY %s\n", s.Watcher, s.User, orDash(s.LastNotify))
	}
	for _, m := range st.Mailbox {
		fmt.Fprintf(w, "mailbox %s: %d message(s), last NOTIFY %s\n", m.User, len(m.Messages), orDash(m.LastNotify))
	}
}

func addrOrEmpty(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return ""
	}
	return ap.String()
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
