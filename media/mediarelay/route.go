package mediarelay

import (
	"net"
	"net/netip"
	"time"
)

// routeLocked decides what happens to one datagram that arrived on side
// i's socket of kind k: it counts it, validates it, applies the latching
// mode to its source and returns the socket and address to send it from
// and to. r.mu is held. It never allocates: this runs 50 times a second
// per stream.
func (r *Relay) routeLocked(i int, k kind, pkt []byte, from netip.AddrPort, now time.Time, mode Latching) (*net.UDPConn, netip.AddrPort, bool) {
	in := &r.sides[i].s[k]
	in.st.PacketsIn++
	in.st.BytesIn += uint64(len(pkt))
	if in.st.FirstPacket.IsZero() {
		in.st.FirstPacket = now
	}
	in.st.LastPacket = now

	// Validate before anything can latch: a STUN binding request, a SIP
	// message or a scanner's garbage must not steal the stream.
	if !in.valid(k, pkt) {
		r.dropLocked(i, k, dropInvalid, from)
		return nil, netip.AddrPort{}, false
	}
	if in.old.IsValid() && from == in.old || from == in.draining && now.Before(in.drainUntil) {
		r.dropLocked(i, k, dropOldPeer, from)
		return nil, netip.AddrPort{}, false
	}
	if !r.acceptLocked(i, k, from, now, mode) {
		r.dropLocked(i, k, dropWrongSource, from)
		return nil, netip.AddrPort{}, false
	}
	in.st.LastSource = from

	o := 1 - i
	// Hold: the other side's SDP said so, or either phone holds the other
	// (its owner answered the hold), or the other side hears an injected
	// source instead of this one.
	if r.sides[o].hold || r.sides[o].holding || r.sides[i].holding || r.sides[o].inj != nil {
		r.dropLocked(i, k, dropHold, from)
		return nil, netip.AddrPort{}, false
	}
	dst := r.destLocked(o, k, mode)
	if !dst.IsValid() {
		r.dropLocked(i, k, dropNoDestination, from)
		return nil, netip.AddrPort{}, false
	}
	if r.isOwn(dst) {
		r.dropLocked(i, k, dropLoop, from)
		return nil, netip.AddrPort{}, false
	}
	out := &r.sides[o].s[k]
	// Counted as sent now, taken back by sendFailedLocked if the kernel
	// refuses it, so the counters need no second lock on the happy path.
	out.st.PacketsOut++
	out.st.BytesOut += uint64(len(pkt))
	return out.conn, dst, true
}

// acceptLocked applies the latching mode to a valid packet's source.
func (r *Relay) acceptLocked(i int, k kind, from netip.AddrPort, now time.Time, mode Latching) bool {
	sd := &r.sides[i]
	s := &sd.s[k]
	switch mode {
	case Off:
		return true
	case Strict:
		sdp := sd.sdpFor(k)
		return sdp.IsValid() && from == sdp
	}
	// Learn.
	switch {
	case !s.latched.IsValid():
		s.latched, s.latchedSeen = from, now
		s.cand, s.candN = netip.AddrPort{}, 0
		r.log.Info("media latched", "side", i, "stream", kindNames[k], "source", from, "sdp", sd.sdpFor(k))
		return true
	case from == s.latched:
		s.latchedSeen = now
		s.cand, s.candN = netip.AddrPort{}, 0
		return true
	}
	silent := now.Sub(s.latchedSeen)
	if r.cfg.RelatchAfter < 0 || silent < r.cfg.RelatchAfter {
		// The latched source is alive: whoever else sends is an intruder
		// (or the phone's old NAT mapping still draining) and gains nothing.
		s.cand, s.candN = netip.AddrPort{}, 0
		return false
	}
	if from != s.cand {
		s.cand, s.candN = from, 0
	}
	s.candN++
	if s.candN < r.cfg.RelatchPackets {
		return false
	}
	r.log.Info("media re-latched", "side", i, "stream", kindNames[k], "old", s.latched, "new", from, "silent", silent.Round(time.Millisecond))
	s.latched, s.latchedSeen = from, now
	s.cand, s.candN = netip.AddrPort{}, 0
	s.st.Relatches++
	return true
}

// destLocked is where side j's packets of kind k go now: the latched
// source in learn mode once one was seen, else the SDP address (which may
// be unset: no destination yet).
func (r *Relay) destLocked(j int, k kind, mode Latching) netip.AddrPort {
	sd := &r.sides[j]
	if mode == Learn && sd.s[k].latched.IsValid() {
		return sd.s[k].latched
	}
	return sd.sdpFor(k)
}

// sdpFor is the SDP address of the stream: RTP as announced, RTCP on the
// next port (RFC 3550 §11; a=rtcp is not supported).
func (sd *side) sdpFor(k kind) netip.AddrPort {
	if k == kindRTP || !sd.sdp.IsValid() {
		return sd.sdp
	}
	if sd.sdp.Port() == 65535 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(sd.sdp.Addr(), sd.sdp.Port()+1)
}

func (r *Relay) isOwn(ap netip.AddrPort) bool {
	for i := range r.sides {
		for k := range r.sides[i].s {
			if r.sides[i].s[k].local == ap {
				return true
			}
		}
	}
	return false
}

func (r *Relay) dropLocked(i int, k kind, why dropReason, from netip.AddrPort) {
	s := &r.sides[i].s[k]
	s.st.Dropped.add(why)
	// The first drop of each reason is worth a log line (it usually is the
	// lesson: "wrong_source" in strict mode behind NAT); the rest are counts.
	if s.logged&(1<<why) == 0 {
		s.logged |= 1 << why
		r.log.Info("media dropped", "side", i, "stream", kindNames[k], "reason", dropNames[why], "source", from)
	}
}

func (r *Relay) sendFailedLocked(i int, k kind, n int, from, dst netip.AddrPort, err error) {
	out := &r.sides[1-i].s[k]
	out.st.PacketsOut--
	out.st.BytesOut -= uint64(n)
	in := &r.sides[i].s[k]
	if in.logged&(1<<dropSendError) == 0 {
		// Logged here, with the destination and the kernel's reason, rather
		// than by dropLocked.
		in.logged |= 1 << dropSendError
		r.log.Info("media send failed", "side", 1-i, "stream", kindNames[k], "destination", dst, "err", err)
	}
	r.dropLocked(i, k, dropSendError, from)
}

// valid says whether pkt looks like what the socket carries.
func (s *stream) valid(k kind, pkt []byte) bool {
	if len(pkt) > maxDatagram {
		return false
	}
	if k == kindRTCP {
		return validRTCP(pkt)
	}
	// RTP version 2 with a complete fixed header, CSRC list and extension:
	// pion's header parser checks the lengths for us.
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return false
	}
	_, err := s.hdr.Unmarshal(pkt)
	return err == nil
}

// validRTCP is RFC 3550 appendix A.2's check: every packet of the
// compound is version 2 with an RTCP packet type (RFC 5761 §4: 192-223),
// and their lengths add up to the datagram.
func validRTCP(pkt []byte) bool {
	if len(pkt) < 8 {
		return false
	}
	for len(pkt) > 0 {
		if len(pkt) < 4 || pkt[0]>>6 != 2 || pkt[1] < 192 || pkt[1] > 223 {
			return false
		}
		n := (int(pkt[2])<<8 | int(pkt[3]) + 1) * 4
		if n > len(pkt) {
			return false
		}
		pkt = pkt[n:]
	}
	return true
}
