package natrouter

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Names inside the router's table. Tests and the status view refer to them.
const (
	chainForward     = "forward"
	chainInput       = "input"
	chainPostrouting = "postrouting"

	// objPinhole is the ct timeout object applied to new LAN→WAN UDP flows.
	objPinhole = "udp_pinhole"
	// objUnsolicited counts WAN→LAN packets that matched no mapping.
	objUnsolicited = "unsolicited_inbound"
)

// params is everything the rules depend on; buildRuleset is a pure function
// of it so the rule logic is testable without root.
type params struct {
	table   string
	lanIf   string
	wanIf   string
	lan     netip.Prefix // masked LAN subnet
	pinhole time.Duration
	preset  Preset
	alg     ALGMode
}

type ruleSpec struct {
	chain   string
	comment string
	exprs   []expr.Any
}

// ruleset is a complete description of the router's table, built in memory
// and then installed in one batch.
type ruleset struct {
	table   *nftables.Table
	objects []*nftables.NamedObj
	// sets are dynamic sets/maps holding NAT state (flushed with the
	// mappings); installed before the rules that name them.
	sets   []*nftables.Set
	chains []*nftables.Chain
	rules  []ruleSpec
}

func (rs *ruleset) addSet(s *nftables.Set) {
	s.Table = rs.table
	rs.sets = append(rs.sets, s)
}

func (rs *ruleset) addChain(c *nftables.Chain) {
	c.Table = rs.table
	rs.chains = append(rs.chains, c)
}

func (rs *ruleset) chain(name string) *nftables.Chain {
	for _, c := range rs.chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// addChainAfterMasquerade adds a filter chain in postrouting just after
// masquerade (srcnat is 100): its packets carry their mapped source port.
func (rs *ruleset) addChainAfterMasquerade(name string) {
	prio := nftables.ChainPriority(*nftables.ChainPriorityNATSource + 10)
	rs.addChain(&nftables.Chain{
		Name:     name,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: &prio,
	})
}

// addRule appends a rule to a chain. parts are expr.Any or []expr.Any,
// concatenated in order, so matchers built by helpers compose with
// statements.
func (rs *ruleset) addRule(chain, comment string, parts ...any) {
	var exprs []expr.Any
	for _, p := range parts {
		switch v := p.(type) {
		case expr.Any:
			exprs = append(exprs, v)
		case []expr.Any:
			exprs = append(exprs, v...)
		default:
			panic(fmt.Sprintf("natrouter: addRule part of type %T", p))
		}
	}
	rs.rules = append(rs.rules, ruleSpec{chain: chain, comment: comment, exprs: exprs})
}

func buildRuleset(p params) *ruleset {
	rs := &ruleset{table: &nftables.Table{Name: p.table, Family: nftables.TableFamilyIPv4}}

	secs := uint32(p.pinhole / time.Second)
	rs.objects = append(rs.objects,
		&nftables.NamedObj{
			Table: rs.table,
			Name:  objPinhole,
			Type:  nftables.ObjTypeCtTimeout,
			Obj: &expr.CtTimeout{
				L3Proto: unix.NFPROTO_IPV4,
				L4Proto: unix.IPPROTO_UDP,
				// Both states get the pinhole: otherwise a flow with two-way
				// traffic would silently move to the replied/stream timeout
				// and the knob would only half work.
				Policy: expr.CtStatePolicyTimeout{
					expr.CtStateUDPUNREPLIED: secs,
					expr.CtStateUDPREPLIED:   secs,
				},
			},
		},
		&nftables.NamedObj{
			Table: rs.table,
			Name:  objUnsolicited,
			Type:  nftables.ObjTypeCounter,
			Obj:   &expr.Counter{},
		},
	)

	drop := nftables.ChainPolicyDrop
	rs.addChain(&nftables.Chain{
		Name:     chainForward,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookForward,
		Priority: nftables.ChainPriorityFilter,
		// Policy drop is what makes the pinhole matter: nothing reaches the
		// LAN unless conntrack knows it as a reply.
		Policy: &drop,
	})
	acceptPolicy := nftables.ChainPolicyAccept
	rs.addChain(&nftables.Chain{
		Name:     chainInput,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookInput,
		Priority: nftables.ChainPriorityFilter,
		Policy:   &acceptPolicy,
	})
	rs.addChain(&nftables.Chain{
		Name:     chainPostrouting,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource,
	})

	rs.addRule(chainForward, "replies and related flows through open mappings",
		ctStateIn(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept())
	rs.addRule(chainForward, "invalid packets",
		ctStateIn(expr.CtStateBitINVALID), &expr.Verdict{Kind: expr.VerdictDrop})
	// ct timeout only attaches to a flow before conntrack confirms it, so it
	// must sit in the path of the first packet: here, before the accept.
	rs.addRule(chainForward, "udp pinhole timeout on new outbound flows",
		outbound(p), l4proto(unix.IPPROTO_UDP), ctStateIn(expr.CtStateBitNEW),
		&expr.Objref{Type: int(nftables.ObjTypeCtTimeout), Name: objPinhole})
	rs.addRule(chainForward, "LAN to WAN",
		outbound(p), accept())

	p.preset.program(rs, p)
	p.alg.program(rs, p)

	// The router offers nothing on its WAN address. Dropping new flows in
	// input keeps conntrack from confirming them: a peer's early RTP to
	// the router's public port would otherwise hold that port, and the
	// phone's own outbound flow, mapped a moment later, would lose port
	// preservation (hole punching fails, the call has no audio).
	rs.addRule(chainInput, "WAN replies to the router itself",
		iifname(p.wanIf), ctStateIn(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept())
	rs.addRule(chainInput, "unsolicited WAN to the router",
		iifname(p.wanIf),
		&expr.Objref{Type: int(nftables.ObjTypeCounter), Name: objUnsolicited},
		&expr.Verdict{Kind: expr.VerdictDrop})

	// Last, so presets can let some inbound traffic in before it.
	rs.addRule(chainForward, "unsolicited WAN to LAN",
		iifname(p.wanIf), oifname(p.lanIf),
		&expr.Objref{Type: int(nftables.ObjTypeCounter), Name: objUnsolicited},
		&expr.Verdict{Kind: expr.VerdictDrop})
	return rs
}

var installMu sync.Mutex

// install replaces the router's table in one netlink batch. Adding, deleting
// and re-adding the table in the same transaction works whether or not it
// exists, and the kernel applies the whole batch or none of it.
func (rs *ruleset) install(c *nftables.Conn) error {
	// nftables v0.3.0 marshals ct timeout policies by writing into a
	// package-level defaults map: serialise installs across routers.
	installMu.Lock()
	defer installMu.Unlock()
	c.AddTable(rs.table)
	c.DelTable(rs.table)
	c.AddTable(rs.table)
	for _, o := range rs.objects {
		c.AddObj(o)
	}
	for _, set := range rs.sets {
		if err := c.AddSet(set, nil); err != nil {
			return fmt.Errorf("natrouter: set %s: %w", set.Name, err)
		}
	}
	for _, ch := range rs.chains {
		c.AddChain(ch)
	}
	for _, r := range rs.rules {
		ch := rs.chain(r.chain)
		if ch == nil {
			return fmt.Errorf("natrouter: rule %q refers to missing chain %q", r.comment, r.chain)
		}
		c.AddRule(&nftables.Rule{
			Table:    rs.table,
			Chain:    ch,
			Exprs:    r.exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment),
		})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("natrouter: install table %s: %w", rs.table.Name, err)
	}
	return nil
}

// snatMatch selects the packets the preset translates: from the LAN subnet,
// leaving through the WAN interface.
func snatMatch(p params) []expr.Any {
	return append(oifname(p.wanIf), saddrIn(p.lan)...)
}

// masquerade is the endpoint-independent mapping every preset but
// symmetric shares: plain masquerade keeps the inside source port when it
// is free and reuses the mapping for every destination.
func masquerade(rs *ruleset, p params) {
	rs.addRule(chainPostrouting, "snat: masquerade (endpoint-independent mapping)",
		snatMatch(p), &expr.Masq{})
}

// outbound matches LAN→WAN forwarded packets from the LAN subnet.
func outbound(p params) []expr.Any {
	out := iifname(p.lanIf)
	out = append(out, oifname(p.wanIf)...)
	return append(out, saddrIn(p.lan)...)
}

func accept() expr.Any { return &expr.Verdict{Kind: expr.VerdictAccept} }

func ifnameBytes(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func iifname(name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameBytes(name)},
	}
}

func oifname(name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameBytes(name)},
	}
}

func saddrIn(pfx netip.Prefix) []expr.Any {
	pfx = pfx.Masked()
	mask := make([]byte, 4)
	bits := pfx.Bits()
	for i := range mask {
		switch {
		case bits >= 8:
			mask[i] = 0xff
			bits -= 8
		case bits > 0:
			mask[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	addr := pfx.Addr().As4()
	return []expr.Any{
		// IPv4 source address: network header offset 12, 4 bytes.
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]},
	}
}

func l4proto(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

// ctStateIn matches when any of the given ct state bits is set.
func ctStateIn(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func nativeUint32(v uint32) []byte { return binaryutil.NativeEndian.PutUint32(v) }
