package media

import (
	"net/netip"
	"time"

	"github.com/pion/rtp"
)

// RFC 3550 Appendix A.1 limits for telling a reordered or duplicate packet
// from a sender that jumped its sequence number.
const (
	maxDropout  = 3000
	maxMisorder = 100
	seqMod      = 1 << 16
	// maxSources bounds per-source accounting so a flood of spoofed
	// sources cannot grow memory; the rest are only counted.
	maxSources = 32
	// maxSSRCs / maxPTs bound the "seen" lists the same way.
	maxSSRCs = 16
	maxPTs   = 16
)

// seqState is RFC 3550 A.1 sequence tracking for one SSRC.
type seqState struct {
	maxSeq   uint16
	cycles   uint64 // count of wraps, shifted: multiples of 65536
	baseSeq  uint64
	badSeq   uint64
	received uint64
}

func (q *seqState) reset(seq uint16) {
	q.baseSeq = uint64(seq)
	q.maxSeq = seq
	q.badSeq = seqMod + 1 // an impossible sequence number
	q.cycles = 0
	q.received = 0
}

// update accounts seq and reports whether the packet counts; a first
// packet after a huge jump does not, until the next one confirms the
// sender restarted (then the segment starts over).
func (q *seqState) update(seq uint16) (counted, restarted bool) {
	udelta := seq - q.maxSeq
	switch {
	case udelta < maxDropout:
		if seq < q.maxSeq {
			q.cycles += seqMod
		}
		q.maxSeq = seq
	case udelta <= seqMod-maxMisorder:
		if uint64(seq) != q.badSeq {
			q.badSeq = (uint64(seq) + 1) & (seqMod - 1)
			return false, false
		}
		q.reset(seq)
		restarted = true
	default:
		// duplicate or reordered: counted, max unchanged
	}
	q.received++
	return true, restarted
}

func (q *seqState) extendedMax() uint64 { return q.cycles + uint64(q.maxSeq) }

func (q *seqState) expected() uint64 { return q.extendedMax() - q.baseSeq + 1 }

type rxState struct {
	pkt rtp.Packet // reused to keep the receive path allocation-free

	packets, bytes, audio, dtmfPkts, otherPT, invalid, dropped uint64
	firstAt, lastAt                                            time.Time

	haveSSRC    bool
	ssrc        uint32
	ssrcs       []uint32
	ssrcChanges uint64
	lastPT      uint8
	pts         []uint8
	seq         seqState
	// Expected/received of earlier segments (older SSRCs, restarts).
	priorExpected, priorReceived uint64

	haveTransit bool
	lastTransit uint32
	jitter      float64

	sources        []SourceCount
	sourcesDropped uint64
	firstSrc       netip.AddrPort
	lastSrc        netip.AddrPort

	haveEnd   bool
	lastEndTS uint32
	digits    []byte

	tone    toneMeter
	samples [readBufSize]int16

	stray    uint64
	straySrc netip.AddrPort
}

// handlePacket is the whole receive path for one datagram on the RTP socket.
func (s *Session) handlePacket(b []byte, from netip.AddrPort, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.rx
	// Version 2 is the only RTP; checking it first also rejects STUN and
	// most garbage before parsing.
	if len(b) < 12 || b[0]>>6 != 2 {
		r.invalid++
		return
	}
	// Payload types 72-76 with the marker bit are RTCP sent to the RTP port
	// (rtcp-mux, RFC 5761), which this session does not speak.
	if pt := b[1] & 0x7f; pt >= 72 && pt <= 76 {
		r.invalid++
		return
	}
	p := &r.pkt
	if err := p.Unmarshal(b); err != nil {
		r.invalid++
		return
	}
	r.packets++
	r.bytes += uint64(len(p.Payload))
	if r.firstAt.IsZero() {
		r.firstAt = now
		r.firstSrc = from
	}
	r.lastAt, r.lastSrc = now, from
	r.countSource(from)
	if s.cfg.Latch && !s.latched && from.IsValid() {
		s.latched = true
		if from != s.remote {
			s.log.Info("rtp latched", "sdp_remote", s.remote, "source", from)
			s.remote = from
		}
	}
	r.lastPT = p.PayloadType
	r.pts = addSeen(r.pts, p.PayloadType, maxPTs)

	if !s.recv {
		r.dropped++
		return
	}
	r.trackSeq(p)

	switch {
	case p.PayloadType == s.cfg.PayloadType:
		r.audio++
		r.trackJitter(p.Timestamp, now.Sub(s.epoch))
		n := min(len(p.Payload), len(r.samples))
		for i, c := range p.Payload[:n] {
			r.samples[i] = s.decode(c)
		}
		r.tone.add(r.samples[:n])
	case s.cfg.DTMFPayloadType != 0 && p.PayloadType == s.cfg.DTMFPayloadType:
		r.dtmfPkts++
		if len(p.Payload) < 4 {
			r.invalid++
			return
		}
		// Every event repeats its end packet; the shared timestamp says
		// which event it belongs to (RFC 4733 §2.5.2.1).
		if p.Payload[1]&0x80 != 0 && (!r.haveEnd || p.Timestamp != r.lastEndTS) {
			r.haveEnd, r.lastEndTS = true, p.Timestamp
			r.digits = appendCapped(r.digits, digitForEvent(p.Payload[0]))
			s.log.Info("dtmf received", "digit", string(digitForEvent(p.Payload[0])), "from", from)
		}
	default:
		r.otherPT++
	}
}

func (r *rxState) trackSeq(p *rtp.Packet) {
	if !r.haveSSRC || p.SSRC != r.ssrc {
		if r.haveSSRC {
			r.ssrcChanges++
			r.foldSegment()
		}
		r.haveSSRC, r.ssrc = true, p.SSRC
		r.ssrcs = addSeen(r.ssrcs, p.SSRC, maxSSRCs)
		r.seq.reset(p.SequenceNumber)
		r.haveTransit = false
		r.seq.received = 1
		return
	}
	before := r.seq
	if _, restarted := r.seq.update(p.SequenceNumber); restarted {
		r.priorExpected += before.expected()
		r.priorReceived += before.received
	}
}

// foldSegment moves the current segment's counts into the totals before
// tracking starts over for a new SSRC.
func (r *rxState) foldSegment() {
	r.priorExpected += r.seq.expected()
	r.priorReceived += r.seq.received
}

// trackJitter is RFC 3550 §6.4.1 / A.8 in timestamp units. Unsigned
// arithmetic makes both the arrival clock and RTP timestamp wrap harmlessly.
func (r *rxState) trackJitter(ts uint32, sinceEpoch time.Duration) {
	arrival := uint32(sinceEpoch.Nanoseconds() / (int64(time.Second) / clockRate))
	transit := arrival - ts
	if r.haveTransit {
		d := float64(int32(transit - r.lastTransit))
		if d < 0 {
			d = -d
		}
		r.jitter += (d - r.jitter) / 16
	}
	r.haveTransit, r.lastTransit = true, transit
}

func (r *rxState) countSource(from netip.AddrPort) {
	for i := range r.sources {
		if r.sources[i].Addr == from {
			r.sources[i].Packets++
			return
		}
	}
	if len(r.sources) >= maxSources {
		r.sourcesDropped++
		return
	}
	r.sources = append(r.sources, SourceCount{Addr: from, Packets: 1})
}

func addSeen[T comparable](list []T, v T, limit int) []T {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	if len(list) >= limit {
		return list
	}
	return append(list, v)
}

// handleStray counts a datagram that reached the send-only socket of an
// asymmetric session: a peer that latched onto our send port.
func (s *Session) handleStray(from netip.AddrPort, _ time.Time) {
	s.mu.Lock()
	s.rx.stray++
	s.rx.straySrc = from
	s.mu.Unlock()
}
