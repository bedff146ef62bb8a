package capture

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/ip4defrag"
	"github.com/gopacket/gopacket/layers"
)

// Kind says what a decoded Packet carries.
type Kind uint8

const (
	KindSIP Kind = iota + 1
	KindRTP
	KindRTCP
)

func (k Kind) String() string {
	switch k {
	case KindSIP:
		return "sip"
	case KindRTP:
		return "rtp"
	case KindRTCP:
		return "rtcp"
	case KindSTUN:
		return "stun"
	case KindChannelData:
		return "channeldata"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Packet is one SIP message (reassembled when it came over TCP or in IP
// fragments), one RTP/RTCP packet, or one STUN message or TURN ChannelData
// frame, as seen at one capture point.
type Packet struct {
	Time      time.Time
	Iface     string // capture point, "router-a/wan"
	Kind      Kind
	Transport string // "udp" or "tcp"
	Src, Dst  netip.AddrPort
	// Payload is the whole SIP message, or the RTP/RTCP/STUN/ChannelData
	// UDP payload.
	Payload []byte
	// RTP is set for KindRTP and KindRTCP (first RTCP packet of a compound).
	RTP *RTPHeader
	// STUN is set for KindSTUN and KindChannelData (stun.go).
	STUN *STUNMessage
}

// RTPHeader summarises an RTP packet, or for RTCP the first packet's type and
// sender SSRC.
type RTPHeader struct {
	PayloadType uint8 // RTP payload type, or RTCP packet type (200 SR, 201 RR, ...)
	Marker      bool
	Seq         uint16
	Timestamp   uint32
	SSRC        uint32
	PayloadLen  int // RTP payload bytes after header, CSRCs, extension, padding
}

// Decoder turns captured frames into Packets. It keeps TCP stream and IP
// fragment state per capture point, so feed it one capture's frames in
// order. Not safe for concurrent use.
type Decoder struct {
	flows  map[flowKey]*tcpStream
	defrag map[string]*ip4defrag.IPv4Defragmenter
	last   time.Time // for expiring idle TCP state
}

type flowKey struct {
	iface    string
	src, dst netip.AddrPort
}

// Bounds on TCP reassembly state: SIP messages are small; a stream that
// needs more is not SIP or has lost a segment, and is resynchronised.
const (
	maxStreamBuf   = 256 << 10
	maxFlows       = 4096
	flowIdleExpiry = 5 * time.Minute
)

// NewDecoder returns an empty Decoder.
func NewDecoder() *Decoder {
	return &Decoder{flows: map[flowKey]*tcpStream{}, defrag: map[string]*ip4defrag.IPv4Defragmenter{}}
}

// Decode parses one Ethernet frame seen at iface and returns the SIP messages
// it completes and its RTP/RTCP or STUN/ChannelData summary, if any. Anything else, and anything
// malformed, yields nothing: captures hold whatever the wire carried.
func (d *Decoder) Decode(iface string, ts time.Time, frame []byte) []Packet {
	d.expire(ts)
	var eth layers.Ethernet
	if err := eth.DecodeFromBytes(frame, gopacket.NilDecodeFeedback); err != nil {
		return nil
	}
	switch eth.EthernetType {
	case layers.EthernetTypeIPv4:
		var ip layers.IPv4
		if err := ip.DecodeFromBytes(eth.Payload, gopacket.NilDecodeFeedback); err != nil {
			return nil
		}
		if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
			df := d.defrag[iface]
			if df == nil {
				df = ip4defrag.NewIPv4Defragmenter()
				d.defrag[iface] = df
			}
			whole, err := df.DefragIPv4WithTimestamp(&ip, ts)
			if err != nil || whole == nil {
				return nil
			}
			ip = *whole
			// The defragmenter leaves the reassembled payload in Payload.
		}
		src, _ := netip.AddrFromSlice(ip.SrcIP.To4())
		dst, _ := netip.AddrFromSlice(ip.DstIP.To4())
		return d.transport(iface, ts, ip.Protocol, src, dst, ip.Payload)
	case layers.EthernetTypeIPv6:
		var ip layers.IPv6
		if err := ip.DecodeFromBytes(eth.Payload, gopacket.NilDecodeFeedback); err != nil {
			return nil
		}
		src, _ := netip.AddrFromSlice(ip.SrcIP)
		dst, _ := netip.AddrFromSlice(ip.DstIP)
		return d.transport(iface, ts, ip.NextHeader, src, dst, ip.Payload)
	}
	return nil
}

func (d *Decoder) transport(iface string, ts time.Time, proto layers.IPProtocol, src, dst netip.Addr, payload []byte) []Packet {
	switch proto {
	case layers.IPProtocolUDP:
		var udp layers.UDP
		if err := udp.DecodeFromBytes(payload, gopacket.NilDecodeFeedback); err != nil {
			return nil
		}
		p := Packet{
			Time: ts, Iface: iface, Transport: "udp",
			Src: netip.AddrPortFrom(src, uint16(udp.SrcPort)),
			Dst: netip.AddrPortFrom(dst, uint16(udp.DstPort)),
		}
		body := udp.Payload
		switch {
		case looksLikeSIP(body):
			p.Kind, p.Payload = KindSIP, clone(body)
		case len(body) > 0 && body[0] < 0x40:
			s, ok := parseSTUN(body)
			if !ok {
				return nil
			}
			p.Kind, p.Payload, p.STUN = KindSTUN, clone(body), s
		case len(body) > 0 && body[0] < 0x80:
			s, ok := parseChannelData(body)
			if !ok {
				return nil
			}
			p.Kind, p.Payload, p.STUN = KindChannelData, clone(body), s
		default:
			h, kind, ok := parseRTP(body)
			if !ok {
				return nil
			}
			p.Kind, p.Payload, p.RTP = kind, clone(body), h
		}
		return []Packet{p}
	case layers.IPProtocolTCP:
		var tcp layers.TCP
		if err := tcp.DecodeFromBytes(payload, gopacket.NilDecodeFeedback); err != nil {
			return nil
		}
		key := flowKey{iface, netip.AddrPortFrom(src, uint16(tcp.SrcPort)), netip.AddrPortFrom(dst, uint16(tcp.DstPort))}
		return d.tcp(key, ts, &tcp)
	}
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// sipMethods are the request methods a capture may carry (RFC 3261 and
// extensions); a start line with another token is not taken for SIP.
var sipMethods = []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK",
	"SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE"}

// looksLikeSIP reports whether b starts with a SIP start line.
func looksLikeSIP(b []byte) bool {
	line := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		line = b[:i]
	}
	line = bytes.TrimRight(line, "\r")
	if bytes.HasPrefix(line, []byte("SIP/2.0 ")) {
		return len(line) >= 11 && isDigits(line[8:11])
	}
	if !bytes.HasSuffix(line, []byte(" SIP/2.0")) {
		return false
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return false
	}
	m := string(line[:sp])
	for _, k := range sipMethods {
		if m == k {
			return true
		}
	}
	return false
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// parseRTP recognises RTP (RFC 3550 §5.1) and RTCP (§6.4) by their headers.
// Without the SDP that negotiated the ports this is a heuristic: version 2,
// a consistent length, and a payload type outside the range RTCP uses.
func parseRTP(b []byte) (*RTPHeader, Kind, bool) {
	if len(b) < 8 || b[0]>>6 != 2 {
		return nil, 0, false
	}
	pt := b[1]
	if pt >= 200 && pt <= 207 { // RTCP SR, RR, SDES, BYE, APP, RTPFB, PSFB, XR
		words := int(binary.BigEndian.Uint16(b[2:4]))
		if (words+1)*4 > len(b) {
			return nil, 0, false
		}
		return &RTPHeader{PayloadType: pt, SSRC: binary.BigEndian.Uint32(b[4:8])}, KindRTCP, true
	}
	if len(b) < 12 {
		return nil, 0, false
	}
	h := &RTPHeader{
		PayloadType: pt & 0x7f,
		Marker:      pt&0x80 != 0,
		Seq:         binary.BigEndian.Uint16(b[2:4]),
		Timestamp:   binary.BigEndian.Uint32(b[4:8]),
		SSRC:        binary.BigEndian.Uint32(b[8:12]),
	}
	// 72-76 with the marker bit set would be RTCP 200-204: excluded above;
	// without it they are reserved (RFC 3551) and not RTP either.
	if h.PayloadType >= 72 && h.PayloadType <= 76 {
		return nil, 0, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if off > len(b) {
		return nil, 0, false
	}
	if b[0]&0x10 != 0 { // header extension
		if off+4 > len(b) {
			return nil, 0, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:off+4]))
		if off > len(b) {
			return nil, 0, false
		}
	}
	end := len(b)
	if b[0]&0x20 != 0 { // padding: last byte counts it
		pad := int(b[len(b)-1])
		if pad == 0 || off+pad > end {
			return nil, 0, false
		}
		end -= pad
	}
	h.PayloadLen = end - off
	return h, KindRTP, true
}

// tcpStream reassembles one direction of a TCP connection into SIP
// messages (RFC 3261 §18.3: framing by Content-Length).
type tcpStream struct {
	next    uint32 // next expected sequence number
	synced  bool
	buf     []byte
	pending map[uint32][]byte // segments that arrived ahead of a gap
	seen    time.Time
}

func (d *Decoder) tcp(key flowKey, ts time.Time, t *layers.TCP) []Packet {
	s := d.flows[key]
	if t.RST {
		delete(d.flows, key)
		return nil
	}
	if s == nil {
		if len(d.flows) >= maxFlows {
			return nil
		}
		s = &tcpStream{}
		d.flows[key] = s
	}
	s.seen = ts
	seq := t.Seq
	if t.SYN {
		s.next, s.synced, s.buf, s.pending = seq+1, true, nil, nil
		return nil
	}
	data := t.Payload
	var out []Packet
	if len(data) > 0 {
		if !s.synced {
			// Joined mid-stream (capture started late): start at a segment
			// that begins a SIP message.
			if !looksLikeSIP(bytes.TrimLeft(data, "\r\n")) {
				return nil
			}
			s.next, s.synced = seq, true
		}
		s.add(seq, data)
		out = s.messages(key, ts)
	}
	if t.FIN {
		delete(d.flows, key)
	}
	return out
}

func (s *tcpStream) add(seq uint32, data []byte) {
	diff := int32(seq - s.next)
	switch {
	case diff < 0: // retransmission, maybe with new bytes at the end
		if int(-diff) >= len(data) {
			return
		}
		data = data[-diff:]
	case diff > 0: // a gap: hold the segment until it is filled
		if s.pending == nil {
			s.pending = map[uint32][]byte{}
		}
		if len(s.pending) < 64 {
			s.pending[seq] = clone(data)
			return
		}
		// Too much is missing: resynchronise on this segment.
		s.buf, s.pending = nil, nil
		s.next = seq
	}
	s.buf = append(s.buf, data...)
	s.next += uint32(len(data))
	for len(s.pending) > 0 {
		progressed := false
		for pseq, pdata := range s.pending {
			d := int32(pseq - s.next)
			if d > 0 {
				continue
			}
			delete(s.pending, pseq)
			if int(-d) < len(pdata) {
				s.buf = append(s.buf, pdata[-d:]...)
				s.next += uint32(len(pdata) + int(d))
			}
			progressed = true
		}
		if !progressed {
			break
		}
	}
	if len(s.buf) > maxStreamBuf {
		s.buf, s.synced, s.pending = nil, false, nil
	}
}

// messages cuts complete SIP messages off the front of the buffer.
func (s *tcpStream) messages(key flowKey, ts time.Time) []Packet {
	var out []Packet
	for {
		// CRLF keep-alives (RFC 5626 §3.5.1) sit between messages.
		i := 0
		for i < len(s.buf) && (s.buf[i] == '\r' || s.buf[i] == '\n') {
			i++
		}
		s.buf = s.buf[i:]
		if len(s.buf) == 0 {
			s.buf = nil
			return out
		}
		end := bytes.Index(s.buf, []byte("\r\n\r\n"))
		if end < 0 {
			return out
		}
		hdr := s.buf[:end+4]
		if !looksLikeSIP(hdr) {
			// Not SIP (or we lost the frame boundary): drop and wait for a
			// segment that starts a message.
			s.buf, s.synced, s.pending = nil, false, nil
			return out
		}
		n, ok := contentLength(hdr)
		if !ok {
			s.buf, s.synced, s.pending = nil, false, nil
			return out
		}
		total := len(hdr) + n
		if len(s.buf) < total {
			return out
		}
		out = append(out, Packet{
			Time: ts, Iface: key.iface, Kind: KindSIP, Transport: "tcp",
			Src: key.src, Dst: key.dst, Payload: clone(s.buf[:total]),
		})
		s.buf = s.buf[total:]
	}
}

// contentLength finds Content-Length (or its compact form "l") in a header
// block. Over TCP it is mandatory (RFC 3261 §18.3).
func contentLength(hdr []byte) (int, bool) {
	for _, line := range bytes.Split(hdr, []byte("\r\n")) {
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		if bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("l")) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(val)))
			if err != nil || n < 0 || n > maxStreamBuf {
				return 0, false
			}
			return n, true
		}
	}
	return 0, false
}

func (d *Decoder) expire(now time.Time) {
	if now.Sub(d.last) < time.Minute {
		return
	}
	d.last = now
	for k, s := range d.flows {
		if now.Sub(s.seen) > flowIdleExpiry {
			delete(d.flows, k)
		}
	}
	for _, df := range d.defrag {
		df.DiscardOlderThan(now.Add(-30 * time.Second))
	}
}
