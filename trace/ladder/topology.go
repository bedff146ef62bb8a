package ladder

import (
	"net/netip"
	"slices"
	"strings"
)

// Topology is the lab's network as the ladder and the doctor need it:
// which networks exist, which node owns which address on which network,
// each node's role, and which capture point sits on which network. Every
// decision about "who sent this packet on this wire" is made from it, never
// from a packet's direction alone: a router's LAN copy of an INVITE goes
// router → phone even though its source address is the proxy's.
//
// Lab returns the lab's own plan (docker-compose.yml); tests and other labs
// build their own with the same fields.
type Topology struct {
	Nets  []Net
	Nodes []Node
	// Points maps a capture point ("router-a/lan", "proxy/core") to the
	// network it records. A point missing here is guessed from its name
	// (Point).
	Points map[string]string
}

// Net is one Layer-2 segment: a site LAN, the simulated internet, the core.
type Net struct {
	Name   string
	Prefix netip.Prefix
	// Public is true for the internet: a private address seen there has
	// leaked out of its site.
	Public bool
}

// Role is what a node does in the lab.
type Role string

const (
	RolePhone     Role = "phone"
	RoleRouter    Role = "router"
	RoleSBC       Role = "sbc"
	RoleProxy     Role = "proxy"
	RoleRegistrar Role = "registrar"
	RolePBX       Role = "pbx"
	RoleCarrier   Role = "carrier"
	RoleSTUN      Role = "stun"
	RoleAttacker  Role = "attacker"
)

// B2BUA reports whether a node of this role ends a dialog and starts
// another for the same call (the PBX, the SBC): legs are joined there.
func (r Role) B2BUA() bool { return r == RolePBX || r == RoleSBC }

// Platform reports whether the role is part of the hosted platform.
func (r Role) Platform() bool {
	switch r {
	case RoleSBC, RoleProxy, RoleRegistrar, RolePBX:
		return true
	}
	return false
}

// Names is the lab plan as Build takes it.
//
// Deprecated: the name of the old address-to-host table; it is the
// Topology now (Lab()).
type Names = *Topology

// Node is one host or router of the lab.
type Node struct {
	Name string
	Role Role
	// Addrs maps each of the node's addresses to the network it is on.
	Addrs map[netip.Addr]string
}

// AddrOn is the node's address on a network (zero when it has none).
func (n Node) AddrOn(net string) netip.Addr {
	for a, nn := range n.Addrs {
		if nn == net {
			return a
		}
	}
	return netip.Addr{}
}

// Lab is the lab's address plan (docker-compose.yml, lab-nets/README.md).
func Lab() *Topology {
	t := &Topology{Points: map[string]string{}}
	net := func(name, prefix string, public bool) {
		t.Nets = append(t.Nets, Net{Name: name, Prefix: netip.MustParsePrefix(prefix), Public: public})
	}
	net("site-a", "192.168.1.0/24", false)
	net("site-b", "192.168.2.0/24", false)
	net("browser", "192.168.9.0/24", false) // router-w's LAN: the host's browser (192.168.9.1)
	net("internet", "203.0.113.0/24", true)
	net("core", "10.0.0.0/24", false)
	node := func(name string, role Role, addrs ...string) {
		n := Node{Name: name, Role: role, Addrs: map[netip.Addr]string{}}
		for i := 0; i < len(addrs); i += 2 {
			n.Addrs[netip.MustParseAddr(addrs[i+1])] = addrs[i]
		}
		t.Nodes = append(t.Nodes, n)
	}
	node("alice", RolePhone, "site-a", "192.168.1.50")
	node("bob", RolePhone, "site-b", "192.168.2.50")
	node("carol", RolePhone, "site-b", "192.168.2.51")
	node("browser", RolePhone, "browser", "192.168.9.10") // lab/browsersite's headless browser phone (dave)
	node("router-a", RoleRouter, "site-a", "192.168.1.1", "internet", "203.0.113.2")
	node("router-b", RoleRouter, "site-b", "192.168.2.1", "internet", "203.0.113.3")
	node("router-w", RoleRouter, "browser", "192.168.9.254", "internet", "203.0.113.9")
	node("sbc", RoleSBC, "internet", "203.0.113.5", "core", "10.0.0.5")
	node("proxy", RoleProxy, "internet", "203.0.113.10", "core", "10.0.0.10")
	node("registrar", RoleRegistrar, "core", "10.0.0.20")
	node("pbx", RolePBX, "internet", "203.0.113.30", "core", "10.0.0.30")
	node("carrier", RoleCarrier, "internet", "203.0.113.40")
	node("stun", RoleSTUN, "internet", "203.0.113.20")
	node("attacker", RoleAttacker, "internet", "203.0.113.66")
	// Capture points: routers record both sides, the platform hosts
	// internet and core, the phones their LAN (docs/capture.md).
	for _, p := range []struct{ point, net string }{
		{"router-a/lan", "site-a"}, {"router-a/wan", "internet"},
		{"router-b/lan", "site-b"}, {"router-b/wan", "internet"},
		{"router-w/lan", "browser"}, {"router-w/wan", "internet"},
		{"alice/lan", "site-a"}, {"bob/lan", "site-b"}, {"carol/lan", "site-b"},
		{"sbc/internet", "internet"}, {"sbc/core", "core"},
		{"proxy/internet", "internet"}, {"proxy/core", "core"},
		{"pbx/internet", "internet"}, {"pbx/core", "core"},
	} {
		t.Points[p.point] = p.net
	}
	return t
}

// Node returns the node by name.
func (t *Topology) Node(name string) (Node, bool) {
	return firstWhere(t.nodes(), func(n Node) bool { return n.Name == name })
}

// Owner returns the node owning an address.
func (t *Topology) Owner(a netip.Addr) (Node, bool) {
	a = a.Unmap()
	return firstWhere(t.nodes(), func(n Node) bool { _, ok := n.Addrs[a]; return ok })
}

// Net returns a network by name.
func (t *Topology) Net(name string) (Net, bool) {
	return firstWhere(t.nets(), func(n Net) bool { return n.Name == name })
}

// NetOf returns the network whose prefix holds the address.
func (t *Topology) NetOf(a netip.Addr) (Net, bool) {
	a = a.Unmap()
	return firstWhere(t.nets(), func(n Net) bool { return n.Prefix.Contains(a) })
}

// nodes and nets are the topology's; a nil topology (no lab plan) has
// none.
func (t *Topology) nodes() []Node {
	if t == nil {
		return nil
	}
	return t.Nodes
}

func (t *Topology) nets() []Net {
	if t == nil {
		return nil
	}
	return t.Nets
}

// firstWhere is the first of xs that match accepts.
func firstWhere[T any](xs []T, match func(T) bool) (T, bool) {
	if i := slices.IndexFunc(xs, match); i >= 0 {
		return xs[i], true
	}
	var zero T
	return zero, false
}

// RoleOf is a node's role; a node the topology does not know is guessed
// from its name ("router-c" is a router) so a foreign capture folder still
// reads sensibly.
func (t *Topology) RoleOf(node string) Role {
	if n, ok := t.Node(node); ok {
		return n.Role
	}
	for _, r := range []Role{RoleRouter, RoleSBC, RoleProxy, RoleRegistrar, RolePBX, RoleCarrier} {
		if strings.HasPrefix(node, string(r)) {
			return r
		}
	}
	return ""
}

// Point describes a capture point: its node, its side ("lan", "wan",
// "internet", "core") and the network it records.
func (t *Topology) Point(iface string) (node, side, net string) {
	node, side, _ = strings.Cut(iface, "/")
	if t != nil {
		if n, ok := t.Points[iface]; ok {
			return node, side, n
		}
	}
	// Unknown point: the side's name says public or not; the node's own
	// address on a network of that kind names the network.
	public := side == "wan" || side == "internet"
	if n, ok := t.Node(node); ok {
		for _, nn := range n.Addrs {
			if netw, ok := t.Net(nn); ok && netw.Public == public {
				return node, side, nn
			}
		}
	}
	if public {
		return node, side, "internet"
	}
	return node, side, ""
}

// IsRouter reports whether the capture point belongs to a router (it sees
// both sides of a NAT).
func (t *Topology) IsRouter(iface string) bool {
	node, _, _ := t.Point(iface)
	return t.RoleOf(node) == RoleRouter
}

// PublicPoint reports whether a capture point records the internet: a
// router's wan, a platform host's internet side. A private address seen
// there has left its site.
func (t *Topology) PublicPoint(iface string) bool {
	_, side, net := t.Point(iface)
	if n, ok := t.Net(net); ok {
		return n.Public
	}
	return side == "wan" || side == "internet"
}

// RouterFor returns the router that owns a public address, or the router
// of the site whose LAN holds a private one.
func (t *Topology) RouterFor(a netip.Addr) (Node, bool) {
	if n, ok := t.Owner(a); ok && n.Role == RoleRouter {
		return n, true
	}
	site, ok := t.NetOf(a)
	if !ok || site.Public {
		return Node{}, false
	}
	return t.gateway(site.Name)
}

// gateway is the router attached to a site network.
func (t *Topology) gateway(net string) (Node, bool) {
	for _, n := range t.Nodes {
		if n.Role != RoleRouter {
			continue
		}
		for _, nn := range n.Addrs {
			if nn == net {
				return n, true
			}
		}
	}
	return Node{}, false
}

// RouterOf returns the router in front of a phone (the gateway of its LAN).
func (t *Topology) RouterOf(phone string) (Node, bool) {
	n, ok := t.Node(phone)
	if !ok {
		return Node{}, false
	}
	for _, net := range n.Addrs {
		if g, ok := t.gateway(net); ok && g.Name != n.Name {
			return g, true
		}
	}
	return Node{}, false
}

// End is one end of a hop: a named node, or a bare address the topology
// does not know.
type End struct {
	Node string // "" for a bare address
	Addr netip.Addr
}

// Name is the node's name or the bare address.
func (e End) Name() string {
	if e.Node != "" {
		return e.Node
	}
	return e.Addr.String()
}

// Hop returns who sent a packet and who received it on the wire the
// capture point records: the node that owns an address on that network,
// or — for an address beyond it — the router that forwards it there. So a
// packet from the proxy captured on router-b/lan is router-b → bob, and a
// phone's packet to the proxy captured on alice/lan is alice → router-a.
func (t *Topology) Hop(iface string, src, dst netip.Addr) (from, to End) {
	_, _, net := t.Point(iface)
	return t.endOn(net, src), t.endOn(net, dst)
}

func (t *Topology) endOn(net string, a netip.Addr) End {
	a = a.Unmap()
	owner, ok := t.Owner(a)
	if ok {
		if net == "" {
			return End{Node: owner.Name, Addr: a}
		}
		// The owner is on this wire with some address: it is the one
		// sending or receiving here (a multi-homed node is one node).
		if addr := owner.AddrOn(net); addr.IsValid() {
			return End{Node: owner.Name, Addr: addr}
		}
	}
	if net == "" {
		return End{Addr: a}
	}
	wire, _ := t.Net(net)
	if wire.Prefix.Contains(a) {
		return End{Addr: a} // a host of this network nobody named
	}
	// Beyond this wire: the router on it forwards the packet. On a site
	// LAN that is the site's router whatever the address; on the internet
	// the router whose site holds a private address that leaked.
	if !wire.Public {
		if g, ok := t.gateway(net); ok {
			return End{Node: g.Name, Addr: g.AddrOn(net)}
		}
	} else if g, ok := t.RouterFor(a); ok {
		return End{Node: g.Name, Addr: g.AddrOn(net)}
	}
	if ok {
		return End{Node: owner.Name, Addr: a}
	}
	return End{Addr: a}
}

// pathRank orders platform nodes the way a call from a phone crosses them;
// used only to break ties when two legs start together.
func pathRank(r Role) int {
	switch r {
	case RolePhone:
		return 0
	case RoleRouter:
		return 1
	case RoleSBC:
		return 2
	case RoleProxy:
		return 3
	case RoleRegistrar:
		return 4
	case RolePBX:
		return 5
	case RoleCarrier:
		return 6
	}
	return 7
}
