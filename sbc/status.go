package sbc

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/siplab/siplab/media/mediarelay"
	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/guard"
)

// Status is everything `sbc status` shows; JSON for scripts, WriteText for
// people. Summary is the one line `siplab status` prints.
type Status struct {
	Summary   string           `json:"summary"`
	Access    string           `json:"access"`
	AccessTLS string           `json:"access_tls,omitempty"`
	AccessWSS string           `json:"access_wss,omitempty"`
	WebRTC    []webrtcgw.Stats `json:"webrtc,omitempty"` // ws.go
	// WebRTCICEPolicy is the browser phone's ICE transport policy (all,
	// relay), the page's default: with -wss only.
	WebRTCICEPolicy string            `json:"webrtc_ice_policy,omitempty"`
	Core            string            `json:"core"`
	MediaIP         string            `json:"media_ip"`
	CoreMediaIP     string            `json:"core_media_ip"`
	NextHop         string            `json:"next_hop"`
	Trunk           string            `json:"trunk,omitempty"`
	TrunkHealth     *TrunkStatus      `json:"trunk_health,omitempty"`
	TrunkInbound    string            `json:"trunk_inbound"`
	Settings        map[string]string `json:"settings"`
	Registrations   []RegStatus       `json:"registrations"`
	Calls           []CallStatus      `json:"calls"`
	Blocked         []guard.Block     `json:"blocked"`
	Counters        Counters          `json:"counters"`
}

// TrunkStatus is the carrier as the SBC's OPTIONS pings see it.
type TrunkStatus struct {
	Up         bool      `json:"up"`
	LastPing   time.Time `json:"last_ping,omitzero"`
	PingResult string    `json:"ping_result,omitempty"`
	PingsSent  uint64    `json:"pings_sent"`
	PingsOK    uint64    `json:"pings_answered"`
	DownSince  time.Time `json:"down_since,omitzero"`
}

// RegStatus is one cached registration.
type RegStatus struct {
	AOR     string `json:"aor"`
	Contact string `json:"contact"` // as the phone wrote it
	Token   string `json:"token"`
	// Latched is where the REGISTER came from on the wire: where calls
	// and pings go.
	Latched    string    `json:"latched"`
	Transport  string    `json:"transport"`
	NATed      bool      `json:"nated"`
	ExpiresIn  int       `json:"expires_in"`
	LastPing   time.Time `json:"last_ping,omitzero"`
	PingResult string    `json:"ping_result,omitempty"`
	PingsSent  uint64    `json:"pings_sent"`
	PingsOK    uint64    `json:"pings_answered"`
}

// CallStatus is one call with both legs and the relay's figures.
type CallStatus struct {
	ID          string    `json:"id"`
	Correlation string    `json:"correlation"`
	Kind        string    `json:"kind"`
	State       CallState `json:"state"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	b2bleg.Times
	Legs [2]LegStatus `json:"legs"`
	// Media is the relay: side i faces leg i.
	Media [2]mediarelay.SideStats `json:"media"`
}

// LegStatus is one dialog of a call.
type LegStatus struct {
	Realm  string `json:"realm"`
	CallID string `json:"call_id"`
	State  string `json:"state"`
	Peer   string `json:"peer"`
	// SignalTo is where requests on this leg go (access legs: the
	// latched source).
	SignalTo string `json:"signal_to,omitempty"`
}

// Status snapshots the SBC.
func (s *SBC) Status() Status {
	now := time.Now()
	st := Status{
		Access: s.ep[access].Addr().String(), Core: s.ep[core].Addr().String(),
		MediaIP: s.mediaIP[access].String(), CoreMediaIP: s.mediaIP[core].String(),
		NextHop: s.cfg.NextHop.String(), TrunkInbound: s.cfg.TrunkInbound.String(),
		Settings: s.settings.get().All(),
		Blocked:  s.guard.Blocked(now),
	}
	if s.cfg.Trunk.IsValid() {
		st.Trunk = s.cfg.Trunk.String()
	}
	if a := s.ep[access].TLSAddr(); a.IsValid() {
		st.AccessTLS = a.String()
	}
	s.webStatus(&st) // ws.go
	type relayed struct {
		i int
		r *mediarelay.Relay
	}
	var relays []relayed
	s.mu.Lock()
	st.Counters = s.counters
	if s.cfg.Trunk.IsValid() {
		t := s.trunk
		st.TrunkHealth = &TrunkStatus{Up: t.up, LastPing: t.lastPing, PingResult: t.result,
			PingsSent: t.sent, PingsOK: t.ok, DownSince: t.downSince}
	}
	for _, reg := range s.regs {
		if !reg.live(now) {
			continue
		}
		st.Registrations = append(st.Registrations, RegStatus{
			AOR: reg.aor, Contact: reg.contact.Address.String(), Token: reg.token,
			Latched: reg.source.String(), Transport: reg.transport, NATed: reg.nated,
			ExpiresIn: max(0, int(reg.expires.Sub(now)/time.Second)),
			LastPing:  reg.lastPing, PingResult: reg.pingResult, PingsSent: reg.pingsSent, PingsOK: reg.pingsOK,
		})
	}
	for _, c := range s.calls {
		cs := CallStatus{ID: c.id, Correlation: c.corr, Kind: c.kind, State: c.state, From: c.from, To: c.to,
			Times: c.times}
		for i, l := range c.legs {
			ls := LegStatus{Realm: l.realm.String(), CallID: l.Dlg.CallID, State: l.State.String(), Peer: l.Dlg.RemoteURI.String()}
			if l.dest.IsValid() {
				ls.SignalTo = l.dest.String()
			}
			cs.Legs[i] = ls
		}
		st.Calls = append(st.Calls, cs)
		relays = append(relays, relayed{len(st.Calls) - 1, c.relay})
	}
	s.mu.Unlock()
	for _, r := range relays {
		if r.r != nil {
			st.Calls[r.i].Media = r.r.Stats()
		}
	}
	slices.SortFunc(st.Registrations, func(a, b RegStatus) int { return strings.Compare(a.AOR+a.Token, b.AOR+b.Token) })
	active := 0
	for _, c := range st.Calls {
		if c.State != StateEnded {
			active++
		}
	}
	st.Summary = fmt.Sprintf("sbc %s (core %s): %d registration(s), %d active call(s), %d total, %d blocked source(s); latching %s",
		st.Access, st.Core, len(st.Registrations), active, st.Counters.Calls, len(st.Blocked), st.Settings[SettingLatching])
	return st
}

// Call returns one call's status by id or either leg's Call-ID; the
// newest wins (a retry after 407 reuses the phone's Call-ID).
func (s *SBC) Call(ref string) (CallStatus, bool) {
	calls := s.Status().Calls
	for i := len(calls) - 1; i >= 0; i-- {
		if c := calls[i]; c.ID == ref || c.Legs[0].CallID == ref || c.Legs[1].CallID == ref {
			return c, true
		}
	}
	return CallStatus{}, false
}

// WriteText prints a status for people.
func WriteText(w io.Writer, st Status) {
	fmt.Fprintln(w, st.Summary)
	if st.AccessTLS != "" {
		fmt.Fprintf(w, "  tls %s\n", st.AccessTLS)
	}
	writeWebText(w, st) // ws.go
	fmt.Fprintf(w, "  next hop %s, trunk %s -> %s, media %s / core %s\n", st.NextHop, orNone(st.Trunk), st.TrunkInbound, st.MediaIP, st.CoreMediaIP)
	if t := st.TrunkHealth; t != nil {
		state := "down"
		if t.Up {
			state = "up"
		}
		fmt.Fprintf(w, "  trunk %s %s (last ping %s, %d/%d answered)\n", st.Trunk, state, orNone(t.PingResult), t.PingsOK, t.PingsSent)
	}
	names := SettingNames()
	var kv []string
	for _, n := range names {
		kv = append(kv, n+"="+st.Settings[n])
	}
	fmt.Fprintf(w, "  settings: %s\n", strings.Join(kv, " "))
	fmt.Fprintf(w, "  counters: access %d, core %d requests, %d REGISTER, %d calls (%d answered, %d failed), %d refused, %d dropped (blocked), %d rate-limited, %d auth challenges/refusals, pings %d/%d answered\n",
		st.Counters.AccessIn, st.Counters.CoreIn, st.Counters.Registers, st.Counters.Calls, st.Counters.Answered, st.Counters.Failed,
		st.Counters.Refused, st.Counters.Dropped, st.Counters.RateLimited, st.Counters.AuthFailures, st.Counters.PingsAnswered, st.Counters.PingsSent)
	for _, r := range st.Registrations {
		nat := "direct"
		if r.NATed {
			nat = "NATed"
		}
		ping := ""
		if r.PingsSent > 0 {
			ping = fmt.Sprintf(", last ping %s (%d/%d answered)", r.PingResult, r.PingsOK, r.PingsSent)
		}
		fmt.Fprintf(w, "  reg %s contact %s latched %s/%s %s, expires in %ds, token %s%s\n",
			r.AOR, r.Contact, r.Latched, r.Transport, nat, r.ExpiresIn, r.Token, ping)
	}
	for _, c := range st.Calls {
		fmt.Fprintf(w, "  call %s [%s] %s %s: %s -> %s", c.ID, c.Correlation, c.Kind, c.State, c.From, c.To)
		if c.EndReason != "" {
			fmt.Fprintf(w, " (%s: %s)", c.EndedBy, c.EndReason)
		}
		fmt.Fprintln(w)
		for i, l := range c.Legs {
			m := c.Media[i]
			sig := ""
			if l.SignalTo != "" {
				sig = " signal to " + l.SignalTo
			}
			fmt.Fprintf(w, "    leg %d %-6s %-10s call-id %s peer %s%s\n", i, l.Realm, l.State, l.CallID, l.Peer, sig)
			fmt.Fprintf(w, "      rtp %s <-> sdp %s latched %s: from peer %d pkts, to peer %d pkts, dropped %d\n",
				m.Local, addrOr(m.SDPRemote), addrOr(m.Latched), m.PacketsIn, m.PacketsOut, m.Dropped.Total)
		}
	}
	for _, b := range st.Blocked {
		fmt.Fprintf(w, "  blocked %+v\n", b)
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func addrOr(a netip.AddrPort) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}
