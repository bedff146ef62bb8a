package natrouter

import (
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Cone filtering (endpoint-independent or address-dependent) is not what
// conntrack does on its own: it only lets in packets matching a flow's exact
// reply tuple. The cone presets make it real:
//
//   - after masquerade, every outbound UDP packet records
//     mapped port → inside address . port in a dynamic map (and, for
//     address-dependent filtering, mapped port . remote address in a set),
//     with the pinhole as the entry timeout, refreshed by each packet;
//   - a new inbound UDP flow to the WAN address whose destination port is in
//     the map (and, if required, whose source address was contacted) is
//     DNATed to the inside owner;
//   - the forward chain accepts WAN→LAN flows the router DNATed.
//
// Limit: the map keeps the first owner of a port until the entry expires;
// Linux may give the same external port to two inside hosts talking to
// different destinations, and then inbound strangers reach the first one.

const (
	chainConeLearn = "cone_learn"
	chainConeDNAT  = "cone_dnat"
	setConeMap     = "cone_map"   // mapped port → inside addr . port
	setConePeers   = "cone_peers" // mapped port . remote addr

	// 32-bit register numbers (NFT_REG32_00 is 8). Keys go to 00/01, map
	// data to 04/05 so a lookup result does not overwrite its key.
	reg32_00 = 8
	reg32_01 = 9
	reg32_04 = 12
	reg32_05 = 13

	// IPS_DST_NAT: the flow was DNATed by us.
	ctStatusDstNAT = 1 << 5
)

func programCone(rs *ruleset, p params, addressDependent bool) {
	rs.addSet(&nftables.Set{
		Name:       setConeMap,
		IsMap:      true,
		HasTimeout: true,
		Dynamic:    true,
		Timeout:    p.pinhole,
		KeyType:    nftables.TypeInetService,
		DataType:   nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService),
	})
	if addressDependent {
		rs.addSet(&nftables.Set{
			Name:          setConePeers,
			HasTimeout:    true,
			Dynamic:       true,
			Concatenation: true,
			Timeout:       p.pinhole,
			KeyType:       nftables.MustConcatSetType(nftables.TypeInetService, nftables.TypeIPAddr),
		})
	}

	// Learn after masquerade: the packet then carries the mapped source
	// port.
	rs.addChainAfterMasquerade(chainConeLearn)
	learnMatch := append(oifname(p.wanIf), l4proto(unix.IPPROTO_UDP)...)
	learnMatch = append(learnMatch,
		// Only the LAN host's own direction: replies of DNATed inbound
		// flows also leave via the WAN, but their original source is the
		// remote, not an inside owner.
		&expr.Ct{Register: reg32_00, Key: expr.CtKeyDIRECTION},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg32_00, Data: []byte{0}},
	)
	rs.addRule(chainConeLearn, "cone: remember mapped port -> inside owner",
		learnMatch,
		transportPort(0, reg32_00), // udp sport (mapped)
		&expr.Ct{Register: reg32_04, Key: expr.CtKeySRC, Direction: 0},
		&expr.Ct{Register: reg32_05, Key: expr.CtKeyPROTOSRC, Direction: 0},
		&expr.Dynset{SrcRegKey: reg32_00, SrcRegData: reg32_04, SetName: setConeMap,
			Operation: uint32(unix.NFT_DYNSET_OP_UPDATE), Timeout: p.pinhole},
	)
	if addressDependent {
		rs.addRule(chainConeLearn, "cone: remember contacted remote address",
			learnMatch,
			transportPort(0, reg32_00),
			ipField(16, reg32_01), // ip daddr
			&expr.Dynset{SrcRegKey: reg32_00, SetName: setConePeers,
				Operation: uint32(unix.NFT_DYNSET_OP_UPDATE), Timeout: p.pinhole},
		)
	}

	rs.addChain(&nftables.Chain{
		Name:     chainConeDNAT,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPrerouting,
		Priority: nftables.ChainPriorityNATDest,
	})
	var parts []any
	parts = append(parts, iifname(p.wanIf), l4proto(unix.IPPROTO_UDP))
	comment := "cone: inbound from anyone to a mapped port goes to its owner (endpoint-independent filtering)"
	if addressDependent {
		comment = "cone: inbound from a contacted address to a mapped port goes to its owner (address-dependent filtering)"
		parts = append(parts,
			transportPort(2, reg32_00), // udp dport
			ipField(12, reg32_01),      // ip saddr
			&expr.Lookup{SourceRegister: reg32_00, SetName: setConePeers})
	}
	parts = append(parts,
		transportPort(2, reg32_00),
		&expr.Lookup{SourceRegister: reg32_00, SetName: setConeMap, DestRegister: reg32_04, IsDestRegSet: true},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg32_04, RegProtoMin: reg32_05},
	)
	rs.addRule(chainConeDNAT, comment, parts...)

	rs.addRule(chainForward, "cone: inbound flows the router DNATed to a mapping",
		dnatedInbound(p),
		// Same lifetime as outbound pinholes for the flows strangers open.
		ctStateIn(expr.CtStateBitNEW),
		&expr.Objref{Type: int(nftables.ObjTypeCtTimeout), Name: objPinhole},
	)
	rs.addRule(chainForward, "cone: accept DNATed inbound", dnatedInbound(p), accept())
}

// dnatedInbound matches WAN-to-LAN packets of flows the router DNATed (to
// a cone mapping): conntrack's DST_NAT status bit is set.
func dnatedInbound(p params) []expr.Any {
	return append(append(iifname(p.wanIf), oifname(p.lanIf)...),
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: nativeUint32(ctStatusDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	)
}

// transportPort loads the 2-byte port at offset (0 source, 2 destination)
// of the transport header.
func transportPort(offset uint32, reg uint32) expr.Any {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 2}
}

// ipField loads 4 bytes of the IPv4 header (12 saddr, 16 daddr).
func ipField(offset uint32, reg uint32) expr.Any {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}
}
