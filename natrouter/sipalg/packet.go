package sipalg

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrNotUDP4 is returned by Packet for anything but an unfragmented IPv4
// UDP datagram with consistent lengths.
var ErrNotUDP4 = errors.New("sipalg: not a well-formed IPv4/UDP datagram")

// Verdict is what to do with a packet.
type Verdict int

// Verdicts.
const (
	// Accept sends the packet on unchanged.
	Accept Verdict = iota
	// Modify sends PacketResult.Packet instead.
	Modify
	// Drop discards the packet.
	Drop
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Modify:
		return "modify"
	case Drop:
		return "drop"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// PacketResult is the ALG's decision for one IPv4 packet.
type PacketResult struct {
	Verdict Verdict
	// Packet is the rewritten IPv4 packet when Verdict is Modify.
	Packet []byte
	Result
}

// Packet runs the ALG on a whole IPv4 packet as the kernel hands it to an
// NFQUEUE: it rewrites the UDP payload with Mangle and rebuilds the packet
// with a correct IPv4 total length and header checksum and a correct UDP
// length and checksum. Errors leave the decision to the caller (the router
// accepts the packet unchanged: an ALG that cannot parse lets traffic by).
func Packet(pkt []byte, p Params, mtu int, set Set) (PacketResult, error) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return PacketResult{}, fmt.Errorf("%w: not IPv4", ErrNotUDP4)
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	if ihl < 20 || total < ihl+8 || total > len(pkt) {
		return PacketResult{}, fmt.Errorf("%w: IHL %d, total length %d, %d bytes", ErrNotUDP4, ihl, total, len(pkt))
	}
	if pkt[9] != 17 {
		return PacketResult{}, fmt.Errorf("%w: protocol %d", ErrNotUDP4, pkt[9])
	}
	if frag := binary.BigEndian.Uint16(pkt[6:8]); frag&0x3fff != 0 {
		// Conntrack reassembles before the queue; a fragment here means
		// something else is going on: leave it alone.
		return PacketResult{}, fmt.Errorf("%w: a fragment", ErrNotUDP4)
	}
	udp := pkt[ihl:total]
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < 8 || ulen > len(udp) {
		return PacketResult{}, fmt.Errorf("%w: UDP length %d in %d bytes", ErrNotUDP4, ulen, len(udp))
	}
	p.MappedPort = binary.BigEndian.Uint16(udp[0:2])
	res := Mangle(udp[8:ulen], p, PacketInfo{IPLen: total, MTU: mtu}, set)
	switch {
	case res.Drop != "":
		return PacketResult{Verdict: Drop, Result: res}, nil
	case !res.Changed:
		return PacketResult{Verdict: Accept, Result: res}, nil
	}
	newTotal := ihl + 8 + len(res.Msg)
	if newTotal > 0xffff {
		return PacketResult{}, fmt.Errorf("%w: rewritten datagram of %d bytes does not fit IPv4", ErrNotUDP4, newTotal)
	}
	out := make([]byte, newTotal)
	copy(out, pkt[:ihl+8])
	copy(out[ihl+8:], res.Msg)
	binary.BigEndian.PutUint16(out[2:4], uint16(newTotal))
	out[10], out[11] = 0, 0
	binary.BigEndian.PutUint16(out[10:12], IPv4HeaderChecksum(out[:ihl]))
	u := out[ihl:]
	binary.BigEndian.PutUint16(u[4:6], uint16(len(u)))
	u[6], u[7] = 0, 0
	binary.BigEndian.PutUint16(u[6:8], UDPChecksum(out[12:16], out[16:20], u))
	return PacketResult{Verdict: Modify, Packet: out, Result: res}, nil
}

// IPv4HeaderChecksum is the RFC 791 header checksum of hdr, whose checksum
// field must be zero (or the result is 0 for a valid header).
func IPv4HeaderChecksum(hdr []byte) uint16 {
	return ^fold(sum(0, hdr))
}

// UDPChecksum is the RFC 768 checksum of a UDP datagram (checksum field
// zero) with the IPv4 pseudo-header. Zero is sent as 0xffff: zero means "no
// checksum".
func UDPChecksum(src, dst, udp []byte) uint16 {
	s := sum(0, src)
	s = sum(s, dst)
	s += 17 + uint32(len(udp))
	c := ^fold(sum(s, udp))
	if c == 0 {
		c = 0xffff
	}
	return c
}

func sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
