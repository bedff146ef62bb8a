package carrier

import (
	"fmt"
	"strings"

	"github.com/siplab/siplab/uaclient"
)

// Status is everything the carrier can tell about itself.
type Status struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// SIP is the UDP/TCP address, TLS the TLS listener ("" without one).
	SIP         string                `json:"sip"`
	TLS         string                `json:"tls,omitempty"`
	Peer        PeerStatus            `json:"peer"`
	Trusted     []string              `json:"trusted"`
	Numbers     []string              `json:"numbers"`
	AnswerAfter string                `json:"answer_after"`
	DefaultFrom string                `json:"default_from"`
	ToneHz      float64               `json:"tone_hz"`
	Calls       []uaclient.CallStatus `json:"calls"`
	// Summary is one line for people (`siplab status`).
	Summary string `json:"summary"`
}

// Role is the carrier's role name in the lab.
const Role = "SIP trunk / carrier"

// Status snapshots the carrier: the trunk peer, and every call with its
// RTP statistics (packets each way, the tone heard).
func (c *Carrier) Status() Status {
	ps := c.phone.Status()
	c.mu.Lock()
	peer := c.peerStatusLocked()
	c.mu.Unlock()
	st := Status{
		Name:        c.cfg.Name,
		Role:        Role,
		SIP:         c.cfg.Endpoint.Addr().String(),
		Peer:        peer,
		Numbers:     append([]string(nil), c.ranges...),
		AnswerAfter: "by command",
		DefaultFrom: c.cfg.DefaultFrom,
		ToneHz:      ps.ToneHz,
		Calls:       ps.Calls,
	}
	if a := c.cfg.Endpoint.TLSAddr(); a.IsValid() {
		st.TLS = a.String()
	}
	for _, p := range c.cfg.Trusted {
		st.Trusted = append(st.Trusted, p.String())
	}
	if c.cfg.AnswerAfter > 0 {
		st.AnswerAfter = c.cfg.AnswerAfter.String()
	}
	active := 0
	for _, call := range st.Calls {
		if call.State != uaclient.StateTerminated {
			active++
		}
	}
	st.Summary = fmt.Sprintf("trunk to %s/%s %s", peer.Addr, peer.Transport, peer.State)
	if peer.State == PeerUp {
		st.Summary += fmt.Sprintf(" (rtt %d ms)", peer.RTTMs)
	}
	st.Summary += fmt.Sprintf(", numbers %s, %d active call(s)", strings.Join(st.Numbers, " "), active)
	return st
}
