package capture

import (
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"strconv"

	"github.com/pion/stun/v3"
)

// STUN and TURN on the wire: the browser's candidate gathering (Binding to
// the lab's STUN server, Allocate/Refresh/CreatePermission/ChannelBind to
// its TURN side), the ICE connectivity checks between the browser and the
// SBC's WebRTC gateway, and the TURN ChannelData frames that carry relayed
// media. They share the UDP ports of the media, so they are told from RTP
// by their first bytes: STUN starts with two zero bits and carries the
// magic cookie (RFC 8489 §5), ChannelData starts with 0x40-0x7F (RFC 8656
// §12), RTP with version 2 (0x80-0xBF).
const (
	// KindSTUN is a STUN message (request, response or indication).
	KindSTUN Kind = KindRTCP + 1 + iota
	// KindChannelData is a TURN ChannelData frame: relayed media, counted
	// like RTP, never drawn one by one.
	KindChannelData
)

// STUNMessage summarises a STUN message (or, for KindChannelData, a
// ChannelData frame's header: Channel and DataLen only).
type STUNMessage struct {
	// Method and Class are the message type's parts (RFC 8489 §5):
	// Method 0x001 Binding, 0x003 Allocate, 0x004 Refresh, 0x006 Send,
	// 0x007 Data, 0x008 CreatePermission, 0x009 ChannelBind; Class
	// "request", "indication", "success", "error".
	Method uint16
	Class  string
	// Transaction is the 96-bit transaction ID in hex: a request and its
	// responses share it, and it survives NAT (the router rewrites
	// addresses, never the STUN message).
	Transaction string
	// Username is USERNAME: for an ICE check "<receiver ufrag>:<sender
	// ufrag>" (RFC 8445 §7.2.2), for TURN the long-term credential's user.
	Username string
	// Mapped is XOR-MAPPED-ADDRESS of a Binding success: the address the
	// request came from as its receiver saw it (the srflx candidate).
	Mapped netip.AddrPort
	// Peer is XOR-PEER-ADDRESS (CreatePermission, ChannelBind, Send, Data),
	// Relayed is XOR-RELAYED-ADDRESS of an Allocate success.
	Peer, Relayed netip.AddrPort
	// ICE attributes of a connectivity check (RFC 8445 §7.1.1).
	Priority     uint32
	UseCandidate bool
	Controlling  bool // ICE-CONTROLLING present
	Controlled   bool // ICE-CONTROLLED present
	// ErrorCode and ErrorReason are ERROR-CODE of an error response
	// (401 Unauthorized, 438 Stale Nonce, 487 Role Conflict).
	ErrorCode   int
	ErrorReason string
	// Lifetime is TURN LIFETIME in seconds (Allocate, Refresh; a Refresh
	// with 0 releases the allocation); -1 when absent.
	Lifetime int
	// Channel is CHANNEL-NUMBER of a ChannelBind, or the channel of a
	// ChannelData frame; DataLen is a ChannelData frame's payload length.
	Channel uint16
	DataLen int
}

// magicCookie is the fixed value in every STUN header since RFC 5389.
const magicCookie = 0x2112A442

// STUN message classes as Class names them.
const (
	STUNRequest    = "request"
	STUNIndication = "indication"
	STUNSuccess    = "success"
	STUNError      = "error"
)

// MethodName is the method's name ("Binding", "CreatePermission"), or
// "method 0x00a" for one the lab does not use.
func (s *STUNMessage) MethodName() string {
	switch stun.Method(s.Method) {
	case stun.MethodBinding:
		return "Binding"
	case stun.MethodAllocate:
		return "Allocate"
	case stun.MethodRefresh:
		return "Refresh"
	case stun.MethodSend:
		return "Send"
	case stun.MethodData:
		return "Data"
	case stun.MethodCreatePermission:
		return "CreatePermission"
	case stun.MethodChannelBind:
		return "ChannelBind"
	}
	return "method 0x" + strconv.FormatUint(uint64(s.Method), 16)
}

// Label names the message as a ladder arrow does: "Binding request",
// "Binding success", "Allocate 401 Unauthorized", "Send indication",
// "ChannelData 0x4000".
func (s *STUNMessage) Label() string {
	switch s.Class {
	case "":
		return "ChannelData 0x" + strconv.FormatUint(uint64(s.Channel), 16)
	case STUNError:
		l := s.MethodName() + " " + strconv.Itoa(s.ErrorCode)
		if s.ErrorReason != "" {
			l += " " + s.ErrorReason
		}
		return l
	}
	return s.MethodName() + " " + s.Class
}

// parseSTUN recognises a STUN message filling a whole UDP payload (RFC
// 8489 §5: two zero bits, a length that is a multiple of 4 and matches,
// the magic cookie) and decodes it with pion/stun; anything that does not
// decode is not STUN.
func parseSTUN(b []byte) (*STUNMessage, bool) {
	if len(b) < 20 || b[0]&0xc0 != 0 || binary.BigEndian.Uint32(b[4:8]) != magicCookie {
		return nil, false
	}
	if n := int(binary.BigEndian.Uint16(b[2:4])); n%4 != 0 || 20+n != len(b) {
		return nil, false
	}
	m := &stun.Message{Raw: clone(b)}
	if err := m.Decode(); err != nil {
		return nil, false
	}
	s := &STUNMessage{Method: uint16(m.Type.Method), Transaction: hex.EncodeToString(m.TransactionID[:]), Lifetime: -1}
	switch m.Type.Class {
	case stun.ClassRequest:
		s.Class = STUNRequest
	case stun.ClassIndication:
		s.Class = STUNIndication
	case stun.ClassSuccessResponse:
		s.Class = STUNSuccess
	default:
		s.Class = STUNError
	}
	var user stun.Username
	if user.GetFrom(m) == nil {
		s.Username = string(user)
	}
	s.Mapped = xorAddr(m, stun.AttrXORMappedAddress)
	s.Peer = xorAddr(m, stun.AttrXORPeerAddress)
	s.Relayed = xorAddr(m, stun.AttrXORRelayedAddress)
	if v, err := m.Get(stun.AttrPriority); err == nil && len(v) == 4 {
		s.Priority = binary.BigEndian.Uint32(v)
	}
	s.UseCandidate = m.Contains(stun.AttrUseCandidate)
	s.Controlling = m.Contains(stun.AttrICEControlling)
	s.Controlled = m.Contains(stun.AttrICEControlled)
	var ec stun.ErrorCodeAttribute
	if ec.GetFrom(m) == nil {
		s.ErrorCode, s.ErrorReason = int(ec.Code), string(ec.Reason)
	}
	if v, err := m.Get(stun.AttrLifetime); err == nil && len(v) == 4 {
		s.Lifetime = int(binary.BigEndian.Uint32(v))
	}
	if v, err := m.Get(stun.AttrChannelNumber); err == nil && len(v) == 4 {
		s.Channel = binary.BigEndian.Uint16(v)
	}
	return s, true
}

// xorAddr reads an XOR-…-ADDRESS attribute (zero when absent or bad).
func xorAddr(m *stun.Message, t stun.AttrType) netip.AddrPort {
	var a stun.XORMappedAddress
	if a.GetFromAs(m, t) != nil {
		return netip.AddrPort{}
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.AddrPort{}
	}
	if v4 := net.IP(a.IP).To4(); v4 != nil && len(a.IP) == net.IPv4len {
		ip = netip.AddrFrom4([4]byte(v4))
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port))
}

// parseChannelData recognises a TURN ChannelData frame (RFC 8656 §12.4):
// a channel number 0x4000-0x7FFF, a length, the data, padded to 4 bytes
// over UDP at most (a sender may leave the padding out).
func parseChannelData(b []byte) (*STUNMessage, bool) {
	if len(b) < 4 || b[0] < 0x40 || b[0] > 0x7f {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if pad := len(b) - 4 - n; pad < 0 || pad > 3 {
		return nil, false
	}
	return &STUNMessage{Channel: binary.BigEndian.Uint16(b[0:2]), DataLen: n, Lifetime: -1}, true
}
