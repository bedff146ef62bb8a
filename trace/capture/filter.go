package capture

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/net/bpf"
)

// kernelFilter is a classic BPF program for Ethernet frames: IPv4 UDP, TCP
// and ICMP, and all IPv6 (link-local IPv6 is dropped in Go, it needs address
// tests BPF makes long). It spares copying ARP and other chatter out of the
// kernel; keep() below is the authoritative filter.
func kernelFilter(snap int) ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0800, SkipTrue: 0, SkipFalse: 5}, // else -> 7
		/* 2 */ bpf.LoadAbsolute{Off: 23, Size: 1}, // IPv4 protocol
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 17, SkipTrue: 4}, // UDP -> 8
		/* 4 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipTrue: 3}, // TCP -> 8
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipTrue: 2}, // ICMP -> 8
		/* 6 */ bpf.RetConstant{Val: 0},
		/* 7 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x86dd, SkipTrue: 0, SkipFalse: 1}, // IPv6 -> 8 else 9
		/* 8 */ bpf.RetConstant{Val: uint32(snap)},
		/* 9 */ bpf.RetConstant{Val: 0},
	})
}

// matcher decides which frames are recorded.
type matcher struct {
	filter   Filter
	sipPorts map[uint16]bool
	rtp      PortRange
	ignore   map[netip.AddrPort]bool
}

func newMatcher(c Config) matcher {
	m := matcher{filter: c.Filter, sipPorts: map[uint16]bool{}, rtp: c.RTPPorts}
	for _, p := range c.SIPPorts {
		m.sipPorts[p] = true
	}
	if len(c.Ignore) > 0 {
		m.ignore = map[netip.AddrPort]bool{}
		for _, ap := range c.Ignore {
			m.ignore[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = true
		}
	}
	return m
}

const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// keep parses just enough of an Ethernet frame to apply the filter. It
// never reads past the slice: truncated frames are dropped.
func (m matcher) keep(frame []byte) bool {
	if len(frame) < 14 {
		return false
	}
	var proto byte
	var l4 []byte
	var src, dst netip.Addr
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case 0x0800:
		ip := frame[14:]
		if len(ip) < 20 || ip[0]>>4 != 4 {
			return false
		}
		ihl := int(ip[0]&0x0f) * 4
		if ihl < 20 || len(ip) < ihl {
			return false
		}
		proto = ip[9]
		src, dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		if frag := binary.BigEndian.Uint16(ip[6:8]); frag&0x3fff != 0 {
			// A fragment: only the first carries ports. Keep them all so a
			// big INVITE can be reassembled by the reader.
			return proto == protoUDP || proto == protoTCP
		}
		l4 = ip[ihl:]
	case 0x86dd:
		ip := frame[14:]
		if len(ip) < 40 || ip[0]>>4 != 6 {
			return false
		}
		src, dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		// Neighbour discovery, router solicitations and MLD: noise on
		// every bridge, nothing the lab is about.
		if src.IsLinkLocalUnicast() || dst.IsLinkLocalUnicast() || dst.IsMulticast() || src.IsUnspecified() {
			return false
		}
		proto = ip[6] // extension headers are not followed: UDP/TCP come first in the lab
		l4 = ip[40:]
	default:
		return false
	}
	switch proto {
	case protoICMP, protoICMPv6:
		return true
	case protoUDP, protoTCP:
	default:
		return false
	}
	if len(l4) < 4 {
		return m.filter == FilterAll
	}
	sp, dp := binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4])
	if m.ignore[netip.AddrPortFrom(src, sp)] || m.ignore[netip.AddrPortFrom(dst, dp)] {
		return false
	}
	if m.filter == FilterAll {
		return true
	}
	if m.sipPorts[sp] || m.sipPorts[dp] {
		return true
	}
	return proto == protoUDP && (m.rtp.Contains(sp) || m.rtp.Contains(dp))
}
