package doctor

import (
	"fmt"

	"github.com/siplab/siplab/trace/ladder"
	"github.com/siplab/siplab/trace/siptext"
)

// A request that reaches a router's internet side but never appears on its
// LAN side was dropped by the NAT: no mapping (the pinhole expired because
// nothing kept it open) or filtering refused the sender. The registration
// still looks fine on the registrar — it points at a mapping that is gone.
func init() {
	register(Rule{Name: "closed-pinhole", Title: "request dropped at the router: expired registration mapping / closed pinhole", Check: checkPinhole})
}

func checkPinhole(c *ladder.Call) []Finding {
	type key struct{ node, msg string }
	wan := map[key][]int{}
	lan := map[key][]int{}
	var order []key
	for i, m := range c.Messages {
		// Only a router has a pinhole: its wan and lan capture points see
		// a request arrive and leave. Any other node with an internet side
		// (the SBC, the proxy) is an end, not a NAT.
		if !m.Request || !c.Topo.IsRouter(m.Iface) {
			continue
		}
		k := key{node(m.Iface), copyKey(m)}
		if !public(c, m.Iface) {
			lan[k] = append(lan[k], i)
			continue
		}
		// Inbound only: addressed to the router itself (its public
		// address), not a request leaving the site through it.
		if !inbound(c, m) {
			continue
		}
		if wan[k] == nil {
			order = append(order, k)
		}
		wan[k] = append(wan[k], i)
	}
	var ev []Evidence
	for _, k := range order {
		w, l := wan[k], lan[k]
		// Each copy arriving on the WAN side should leave on the LAN side;
		// more arrivals than departures are packets the NAT dropped.
		if len(w) <= len(l) {
			continue
		}
		m := c.Messages[w[0]]
		ev = append(ev, Evidence{N: w[0] + 1, Iface: m.Iface, What: fmt.Sprintf("%s %s → %s arrived %d times on the internet side, left %d times on %s/lan", m.Label, m.Src, m.Dst, len(w), len(l), k.node)})
		// When a later copy did get through, say where it went: a mapping
		// re-used by another phone delivers the call to the wrong phone.
		if len(l) > 0 {
			lm := c.Messages[l[0]]
			if want, ok := siptext.HostAddr(siptext.URIHost(lm.StartLine())); ok && want != lm.Dst.Addr() {
				ev = append(ev, Evidence{N: l[0] + 1, Iface: lm.Iface, What: fmt.Sprintf("%s for %s delivered to %s: the public port now maps to another phone", lm.Label, want, lm.Dst.Addr())})
			}
		}
	}
	return withEvidence(Finding{Severity: Error,
		Summary:  "the router dropped requests for the phone: its NAT mapping (pinhole) had expired or filtering refused the sender — the registration points at a mapping that no longer exists",
		Fix:      "keep the pinhole open: phone keep-alives on (siplab set <phone> keepalive crlf) at an interval shorter than the router's pinhole, or re-register more often",
		Evidence: ev})
}

// inbound reports whether m, seen on a router's WAN side, was addressed to
// that router: some message of the call seen on the same interface was sent
// from m's destination address (the router's own public address).
func inbound(c *ladder.Call, m ladder.Message) bool {
	if n, ok := c.Topo.Owner(m.Dst.Addr()); ok {
		return n.Name == node(m.Iface)
	}
	for _, o := range c.Messages {
		if o.Iface == m.Iface && o.Src.Addr() == m.Dst.Addr() {
			return true
		}
	}
	// No outbound traffic from that address here at all: it is still the
	// router's if some LAN copy at this router was sent to it.
	for _, o := range c.Messages {
		if node(o.Iface) == node(m.Iface) && !public(c, o.Iface) && o.Dst.Addr() == m.Dst.Addr() {
			return true
		}
	}
	return false
}
