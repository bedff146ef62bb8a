package ladder

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/siplab/siplab/trace/capture"
)

// Capture points are named "<node>/<side>" (docs/capture.md): routers
// record lan and wan, the proxy and the PBX internet and core, the phones
// lan, the SBC its own sides.

// PublicSide reports whether a capture point faces the internet by its
// name alone (a router's wan, a host's internet side); Topology.PublicPoint
// is the same question answered from the lab's plan.
func PublicSide(iface string) bool {
	_, side, _ := strings.Cut(iface, "/")
	return side == "wan" || side == "internet"
}

// PointNode is the capture point's node: "router-a/wan" → "router-a".
func PointNode(iface string) string {
	n, _, _ := strings.Cut(iface, "/")
	return n
}

// sameWire is how far apart two capture points may see one packet and
// still call it one: both sit on the same Docker bridge, so the copies are
// microseconds apart; a retransmission comes T1 (500 ms) later at the
// earliest, so it is never merged.
const sameWire = 50 * time.Millisecond

// rank orders the capture points that saw one packet: the copy a message
// is shown under. Routers first, because they see both sides of the NAT
// and the doctor's rules compare those sides; then the platform; the
// phones last (their view adds nothing when a router saw the packet too).
func rank(t *Topology, iface string) int {
	switch t.RoleOf(PointNode(iface)) {
	case RoleRouter:
		return 0
	case RoleSBC:
		return 1
	case RoleProxy:
		return 2
	case RolePBX:
		return 3
	case RoleCarrier:
		return 4
	}
	return 5
}

// dedupe merges the copies of one packet seen at several capture points on
// the same link (alice/lan and router-a/lan; router-a/wan and
// proxy/internet): same addresses, transport and bytes, within sameWire.
// The kept copy is the best-ranked point's; Seen lists every point. Copies
// at one point are never merged: there, identical bytes are a
// retransmission, which the doctor counts.
func dedupe(sip []capture.Packet, t *Topology) []Message {
	out := make([]Message, 0, len(sip))
	type wire struct {
		src, dst  netip.AddrPort
		transport string
	}
	recent := map[wire][]int{} // indexes into out
	for _, p := range sip {
		k := wire{p.Src, p.Dst, p.Transport}
		merged := false
		for _, i := range recent[k] {
			m := &out[i]
			if p.Time.Sub(m.Time) > sameWire || slices.Contains(m.Seen, p.Iface) || !bytes.Equal(m.Payload, p.Payload) {
				continue
			}
			m.Seen = append(m.Seen, p.Iface)
			if rank(t, p.Iface) < rank(t, m.Iface) {
				seen, from, to := m.Seen, m.From, m.To
				*m = newMessage(p)
				m.Seen, m.From, m.To = seen, from, to
			}
			merged = true
			break
		}
		if merged {
			continue
		}
		// Forget copies too old to match, so the scan stays short.
		keep := recent[k][:0]
		for _, i := range recent[k] {
			if p.Time.Sub(out[i].Time) <= sameWire {
				keep = append(keep, i)
			}
		}
		m := newMessage(p)
		m.Seen = []string{p.Iface}
		out = append(out, m)
		recent[k] = append(keep, len(out)-1)
	}
	return out
}

// Also lists the other capture points that saw this very packet.
func (m Message) Also() []string {
	var out []string
	for _, s := range m.Seen {
		if s != m.Iface {
			out = append(out, s)
		}
	}
	return out
}

// Where names the capture point a message is shown at, with the others
// that saw the same packet: "router-a/lan (+alice/lan)".
func (m Message) Where() string {
	if also := m.Also(); len(also) > 0 {
		return m.Iface + " (+" + strings.Join(also, ",") + ")"
	}
	return m.Iface
}

// dedupeStreams merges one RTP stream recorded at two capture points on
// the same link (same addresses and SSRC, starting within sameWire): the
// best-ranked point's figures are kept, as for messages.
func dedupeStreams(in []Stream, t *Topology) []Stream {
	var out []Stream
	for _, s := range in {
		merged := false
		for i := range out {
			o := &out[i]
			d := s.First.Sub(o.First)
			if o.Src != s.Src || o.Dst != s.Dst || o.SSRC != s.SSRC || d > sameWire || d < -sameWire || slices.Contains(o.Seen, s.Iface) {
				continue
			}
			seen := append(o.Seen, s.Iface)
			if rank(t, s.Iface) < rank(t, o.Iface) {
				*o = s
			}
			o.Seen = seen
			merged = true
			break
		}
		if !merged {
			out = append(out, s)
		}
	}
	return out
}

// points is every capture point that recorded the stream.
func (s Stream) points() []string {
	if len(s.Seen) == 0 {
		return []string{s.Iface}
	}
	return s.Seen
}

// Where names the capture point a stream is shown at, with the others
// that recorded it: "router-b/wan (+router-a/wan)".
func (s Stream) Where() string {
	var also []string
	for _, p := range s.points() {
		if p != s.Iface {
			also = append(also, p)
		}
	}
	if len(also) > 0 {
		return s.Iface + " (+" + strings.Join(also, ",") + ")"
	}
	return s.Iface
}
