// Package hep encodes and decodes HEPv3 (Homer Encapsulation Protocol, also
// called EEP) packets and sends them to a collector over UDP, so a HOMER
// (or heplify-server, or sngrep -L) can be pointed at the lab.
//
// A HEP3 packet is the ASCII magic "HEP3", a 16-bit total length, then
// chunks: vendor ID (16 bit), chunk type (16 bit), chunk length (16 bit,
// header included), value. All integers are big-endian. Vendor 0 is the
// generic chunk set used here; chunks of other vendors are skipped on decode.
package hep

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

var (
	// ErrBadMagic means the bytes do not start with "HEP3".
	ErrBadMagic = errors.New("hep: not a HEP3 packet")
	// ErrTruncated means a length field points past the end of the data.
	ErrTruncated = errors.New("hep: truncated packet")
	// ErrBadChunk means a chunk has an impossible length or value.
	ErrBadChunk = errors.New("hep: bad chunk")
	// ErrTooLarge means the packet would not fit HEP's 16-bit lengths.
	ErrTooLarge = errors.New("hep: packet too large")
	// ErrBadPacket means a Packet cannot be encoded (missing addresses...).
	ErrBadPacket = errors.New("hep: bad packet")
	// ErrBadConfig marks an unusable Config.
	ErrBadConfig = errors.New("hep: bad config")
	// ErrClosed is returned by Send after Close.
	ErrClosed = errors.New("hep: client closed")
)

// Generic (vendor 0) chunk types.
const (
	ChunkIPFamily      = 0x0001 // uint8: 2 IPv4, 10 IPv6
	ChunkIPProto       = 0x0002 // uint8: 17 UDP, 6 TCP
	ChunkSrcIPv4       = 0x0003
	ChunkDstIPv4       = 0x0004
	ChunkSrcIPv6       = 0x0005
	ChunkDstIPv6       = 0x0006
	ChunkSrcPort       = 0x0007 // uint16
	ChunkDstPort       = 0x0008 // uint16
	ChunkTimeSec       = 0x0009 // uint32 seconds since the epoch
	ChunkTimeUsec      = 0x000a // uint32 microseconds within the second
	ChunkProtoType     = 0x000b // uint8: what the payload is
	ChunkCaptureID     = 0x000c // uint32 capture agent ID
	ChunkAuthKey       = 0x000e // string
	ChunkPayload       = 0x000f // the captured payload
	ChunkCorrelationID = 0x0011 // string: ties RTCP/logs to a call (Call-ID)
)

// Payload types (chunk 0x000b).
const (
	TypeSIP  = 0x01
	TypeRTP  = 0x04
	TypeRTCP = 0x05
	TypeLog  = 0x64
)

// Address families (chunk 0x0001), as in the BSD socket API.
const (
	familyIPv4 = 2
	familyIPv6 = 10
)

const (
	headerLen      = 6 // "HEP3" + total length
	chunkHeaderLen = 6 // vendor + type + length
	// MaxLen is the largest HEP3 packet (16-bit total length).
	MaxLen = 0xffff
)

// Packet is one captured message with the metadata HEP carries.
type Packet struct {
	Src, Dst      netip.AddrPort // both IPv4 or both IPv6
	IPProto       uint8          // 17 UDP, 6 TCP
	Time          time.Time      // microsecond precision on the wire
	Type          uint8          // TypeSIP, TypeRTCP, ...
	CaptureID     uint32
	AuthKey       string
	CorrelationID string
	Payload       []byte
}

// Encode appends the HEP3 encoding of p to dst.
func Encode(dst []byte, p Packet) ([]byte, error) {
	src, dstAddr := p.Src.Addr().Unmap(), p.Dst.Addr().Unmap()
	if !src.IsValid() || !dstAddr.IsValid() {
		return dst, fmt.Errorf("%w: source and destination addresses are required", ErrBadPacket)
	}
	if src.Is4() != dstAddr.Is4() {
		return dst, fmt.Errorf("%w: %s and %s are of different families", ErrBadPacket, src, dstAddr)
	}
	if len(p.Payload) == 0 {
		return dst, fmt.Errorf("%w: empty payload", ErrBadPacket)
	}
	start := len(dst)
	dst = append(dst, 'H', 'E', 'P', '3', 0, 0)
	u8 := func(t uint16, v uint8) { dst = appendChunk(dst, t, []byte{v}) }
	u16 := func(t uint16, v uint16) { dst = appendChunk(dst, t, binary.BigEndian.AppendUint16(nil, v)) }
	u32 := func(t uint16, v uint32) { dst = appendChunk(dst, t, binary.BigEndian.AppendUint32(nil, v)) }
	if src.Is4() {
		u8(ChunkIPFamily, familyIPv4)
		s, d := src.As4(), dstAddr.As4()
		dst = appendChunk(dst, ChunkSrcIPv4, s[:])
		dst = appendChunk(dst, ChunkDstIPv4, d[:])
	} else {
		u8(ChunkIPFamily, familyIPv6)
		s, d := src.As16(), dstAddr.As16()
		dst = appendChunk(dst, ChunkSrcIPv6, s[:])
		dst = appendChunk(dst, ChunkDstIPv6, d[:])
	}
	u8(ChunkIPProto, p.IPProto)
	u16(ChunkSrcPort, p.Src.Port())
	u16(ChunkDstPort, p.Dst.Port())
	ts := p.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	u32(ChunkTimeSec, uint32(ts.Unix()))
	u32(ChunkTimeUsec, uint32(ts.Nanosecond()/1000))
	u8(ChunkProtoType, p.Type)
	u32(ChunkCaptureID, p.CaptureID)
	if p.AuthKey != "" {
		dst = appendChunk(dst, ChunkAuthKey, []byte(p.AuthKey))
	}
	if p.CorrelationID != "" {
		dst = appendChunk(dst, ChunkCorrelationID, []byte(p.CorrelationID))
	}
	if len(p.Payload) > MaxLen-chunkHeaderLen {
		return dst[:start], fmt.Errorf("%w: payload of %d bytes", ErrTooLarge, len(p.Payload))
	}
	dst = appendChunk(dst, ChunkPayload, p.Payload)
	total := len(dst) - start
	if total > MaxLen {
		return dst[:start], fmt.Errorf("%w: %d bytes", ErrTooLarge, total)
	}
	binary.BigEndian.PutUint16(dst[start+4:], uint16(total))
	return dst, nil
}

// appendChunk appends one vendor-0 chunk. Callers keep values below 64 KiB.
func appendChunk(dst []byte, typ uint16, val []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst = binary.BigEndian.AppendUint16(dst, typ)
	dst = binary.BigEndian.AppendUint16(dst, uint16(chunkHeaderLen+len(val)))
	return append(dst, val...)
}

// Decode parses one HEP3 packet. The payload is copied. Unknown chunks are
// skipped; a packet without addresses or payload is an error.
func Decode(b []byte) (Packet, error) {
	var p Packet
	if len(b) < headerLen || string(b[:4]) != "HEP3" {
		return p, ErrBadMagic
	}
	total := int(binary.BigEndian.Uint16(b[4:6]))
	if total < headerLen {
		return p, fmt.Errorf("%w: total length %d", ErrBadChunk, total)
	}
	if total > len(b) {
		return p, fmt.Errorf("%w: total length %d, have %d bytes", ErrTruncated, total, len(b))
	}
	b = b[headerLen:total]
	var (
		family         uint8
		src, dst       netip.Addr
		sport, dport   uint16
		sec, usec      uint32
		haveTime       bool
		havePayload    bool
		srcSet, dstSet bool
	)
	for len(b) > 0 {
		if len(b) < chunkHeaderLen {
			return p, fmt.Errorf("%w: %d stray bytes after the last chunk", ErrTruncated, len(b))
		}
		vendor := binary.BigEndian.Uint16(b[0:2])
		typ := binary.BigEndian.Uint16(b[2:4])
		n := int(binary.BigEndian.Uint16(b[4:6]))
		if n < chunkHeaderLen {
			return p, fmt.Errorf("%w: chunk %#04x length %d", ErrBadChunk, typ, n)
		}
		if n > len(b) {
			return p, fmt.Errorf("%w: chunk %#04x length %d, %d bytes left", ErrTruncated, typ, n, len(b))
		}
		val := b[chunkHeaderLen:n]
		b = b[n:]
		if vendor != 0 {
			continue
		}
		want := func(size int) error {
			if len(val) != size {
				return fmt.Errorf("%w: chunk %#04x has %d bytes, want %d", ErrBadChunk, typ, len(val), size)
			}
			return nil
		}
		// setAddr stores an address chunk's value as the source or the
		// destination, whichever typ names.
		setAddr := func(a netip.Addr) {
			if typ == ChunkSrcIPv4 || typ == ChunkSrcIPv6 {
				src, srcSet = a, true
			} else {
				dst, dstSet = a, true
			}
		}
		var err error
		switch typ {
		case ChunkIPFamily:
			if err = want(1); err == nil {
				family = val[0]
			}
		case ChunkIPProto:
			if err = want(1); err == nil {
				p.IPProto = val[0]
			}
		case ChunkSrcIPv4, ChunkDstIPv4:
			if err = want(4); err == nil {
				setAddr(netip.AddrFrom4([4]byte(val)))
			}
		case ChunkSrcIPv6, ChunkDstIPv6:
			if err = want(16); err == nil {
				setAddr(netip.AddrFrom16([16]byte(val)))
			}
		case ChunkSrcPort:
			if err = want(2); err == nil {
				sport = binary.BigEndian.Uint16(val)
			}
		case ChunkDstPort:
			if err = want(2); err == nil {
				dport = binary.BigEndian.Uint16(val)
			}
		case ChunkTimeSec:
			if err = want(4); err == nil {
				sec, haveTime = binary.BigEndian.Uint32(val), true
			}
		case ChunkTimeUsec:
			if err = want(4); err == nil {
				usec = binary.BigEndian.Uint32(val)
				if usec >= 1e6 {
					err = fmt.Errorf("%w: microseconds %d", ErrBadChunk, usec)
				}
			}
		case ChunkProtoType:
			if err = want(1); err == nil {
				p.Type = val[0]
			}
		case ChunkCaptureID:
			if err = want(4); err == nil {
				p.CaptureID = binary.BigEndian.Uint32(val)
			}
		case ChunkAuthKey:
			p.AuthKey = string(val)
		case ChunkCorrelationID:
			p.CorrelationID = string(val)
		case ChunkPayload:
			p.Payload, havePayload = append([]byte(nil), val...), true
		}
		if err != nil {
			return Packet{}, err
		}
	}
	if !srcSet || !dstSet {
		return Packet{}, fmt.Errorf("%w: missing source or destination address", ErrBadChunk)
	}
	if family != 0 && (family == familyIPv4) != src.Is4() {
		return Packet{}, fmt.Errorf("%w: family %d does not match address %s", ErrBadChunk, family, src)
	}
	if src.Is4() != dst.Is4() {
		return Packet{}, fmt.Errorf("%w: mixed address families", ErrBadChunk)
	}
	if !havePayload {
		return Packet{}, fmt.Errorf("%w: no payload chunk", ErrBadChunk)
	}
	p.Src, p.Dst = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	if haveTime {
		p.Time = time.Unix(int64(sec), int64(usec)*1000).UTC()
	}
	return p, nil
}
