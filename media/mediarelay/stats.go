package mediarelay

import (
	"net/netip"
	"time"
)

// SideStats is one side of the call: its RTP stream's figures at the top
// level, RTCP's under "rtcp". For every side and stream
//
//	packets_in = other side's packets_out + dropped.total
//
// because a datagram is counted once where it arrived and then either sent
// on (counted out of the other side's socket) or dropped for one reason.
type SideStats struct {
	StreamStats
	// Hold: the side's last SDP had address 0.0.0.0 or port 0, so nothing
	// is sent to it.
	Hold bool `json:"hold,omitempty"`
	// Holding: this side's phone holds its peer (SetHolding): nothing is
	// relayed from or to it.
	Holding bool `json:"holding,omitempty"`
	// Injecting: this side hears an injected source (music on hold)
	// instead of its peer.
	Injecting bool        `json:"injecting,omitempty"`
	RTCP      StreamStats `json:"rtcp"`
}

// StreamStats are one socket's figures (the RTP or the RTCP socket).
type StreamStats struct {
	// Local is this socket: what the SDP towards this side's peer carries.
	Local netip.AddrPort `json:"local"`
	// SDPRemote is what this side's SDP announced (RTCP: its port + 1).
	SDPRemote netip.AddrPort `json:"sdp_remote,omitzero"`
	// Latched is the source learn mode locked onto; LastSource is where the
	// last accepted packet came from, in any mode, so `off` still shows
	// where the phone really is.
	Latched    netip.AddrPort `json:"latched,omitzero"`
	LastSource netip.AddrPort `json:"last_source,omitzero"`
	// SendingTo is where this side's packets go under the current mode.
	SendingTo netip.AddrPort `json:"sending_to,omitzero"`
	Relatches uint64         `json:"relatches,omitempty"`
	// Injected counts the packets an injected source (Inject) sent to this
	// side's phone; they are not in PacketsOut, which counts relayed ones.
	Injected      uint64 `json:"injected,omitempty"`
	InjectedBytes uint64 `json:"injected_bytes,omitempty"`

	PacketsIn  uint64 `json:"packets_in"`
	BytesIn    uint64 `json:"bytes_in"`
	PacketsOut uint64 `json:"packets_out"`
	BytesOut   uint64 `json:"bytes_out"`
	Dropped    Drops  `json:"dropped"`

	FirstPacket time.Time `json:"first_packet,omitzero"`
	LastPacket  time.Time `json:"last_packet,omitzero"`
}

// Drops counts datagrams that arrived on a socket and were not relayed,
// by reason.
type Drops struct {
	Total uint64 `json:"total"`
	// Invalid: not RTP version 2 (RTP socket) or not RTCP (RTCP socket),
	// e.g. STUN, SIP, garbage; or too large. Never latched onto.
	Invalid uint64 `json:"invalid,omitempty"`
	// WrongSource: learn mode, not the latched source; strict mode, not
	// the SDP address.
	WrongSource uint64 `json:"wrong_source,omitempty"`
	// NoDestination: the other side has neither an SDP address nor a
	// latched source yet ("no destination yet").
	NoDestination uint64 `json:"no_destination,omitempty"`
	// Hold: the other side's SDP said 0.0.0.0 or port 0, either phone
	// holds the other (SetHolding), or the other side hears an injected
	// source.
	Hold uint64 `json:"hold,omitempty"`
	// OldPeer: the source of the phone this side faced before ReplacePeer
	// (a transferred phone that keeps sending), or the address an honest
	// peer's SDP just moved away from, for RelatchAfter (SetRemote).
	OldPeer uint64 `json:"old_peer,omitempty"`
	// Loop: the destination is one of this relay's own sockets (an SDP
	// pointing the relay at itself); relaying would spin forever.
	Loop uint64 `json:"loop,omitempty"`
	// SendError: the kernel refused the send (unreachable network, a
	// private address from a loopback socket, ...).
	SendError uint64 `json:"send_error,omitempty"`
}

// dropReason indexes Drops' counters in the packet path.
type dropReason uint8

const (
	dropInvalid dropReason = iota
	dropWrongSource
	dropNoDestination
	dropHold
	dropLoop
	dropSendError
	dropOldPeer
)

var dropNames = [...]string{"invalid", "wrong_source", "no_destination", "hold", "loop", "send_error", "old_peer"}

func (d *Drops) add(r dropReason) {
	d.Total++
	switch r {
	case dropInvalid:
		d.Invalid++
	case dropWrongSource:
		d.WrongSource++
	case dropNoDestination:
		d.NoDestination++
	case dropHold:
		d.Hold++
	case dropLoop:
		d.Loop++
	case dropSendError:
		d.SendError++
	case dropOldPeer:
		d.OldPeer++
	}
}
