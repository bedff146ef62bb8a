package media

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Stats is a snapshot of a session, for status output as text or JSON.
type Stats struct {
	// Local is the receive socket; SendFrom the socket RTP leaves from
	// (equal when Symmetric).
	Local     string         `json:"local"`
	SendFrom  string         `json:"send_from"`
	Symmetric bool           `json:"symmetric"`
	Remote    netip.AddrPort `json:"remote"`
	// Latched says Remote was taken from received RTP (Config.Latch).
	Latched bool   `json:"latched,omitempty"`
	Codec   string `json:"codec"`
	// PayloadType is the audio type sent and expected; DTMFPayloadType 0 = none.
	PayloadType     uint8         `json:"pt"`
	DTMFPayloadType uint8         `json:"dtmf_pt,omitempty"`
	Sending         bool          `json:"sending"`
	Receiving       bool          `json:"receiving"`
	Sent            SentStats     `json:"sent"`
	Received        ReceivedStats `json:"received"`
	// RTCP is nil when the session has no RTCP socket.
	RTCP *RTCPStats `json:"rtcp,omitempty"`
}

// SentStats counts what the session sent.
type SentStats struct {
	// Packets counts every RTP packet sent, audio and DTMF.
	Packets uint64 `json:"packets"`
	// Bytes are RTP payload octets, as in an RTCP sender report.
	Bytes       uint64  `json:"bytes"`
	DTMFPackets uint64  `json:"dtmf_packets"`
	DTMF        string  `json:"dtmf,omitempty"` // digits whose end packets went out
	SSRC        uint32  `json:"ssrc"`
	ToneHz      float64 `json:"tone_hz"`
	Beeps       int     `json:"beeps,omitempty"`
	Errors      uint64  `json:"errors"`
	LastError   string  `json:"last_error,omitempty"`
}

// SourceCount is how many valid RTP packets came from one address.
type SourceCount struct {
	Addr    netip.AddrPort `json:"addr"`
	Packets uint64         `json:"packets"`
}

// ReceivedStats are RFC 3550 receive statistics plus where packets came from.
type ReceivedStats struct {
	// Packets are valid RTP packets of any payload type; Bytes their payload octets.
	Packets      uint64 `json:"packets"`
	Bytes        uint64 `json:"bytes"`
	AudioPackets uint64 `json:"audio_packets"`
	DTMFPackets  uint64 `json:"dtmf_packets"`
	// OtherPTPackets had a payload type that is neither the audio nor the
	// DTMF one (e.g. PCMA arriving when PCMU was negotiated).
	OtherPTPackets uint64 `json:"other_pt_packets"`
	// Invalid datagrams were not RTP (too short, wrong version, bad
	// padding, RTCP on the RTP port) or DTMF payloads under 4 bytes.
	Invalid uint64 `json:"invalid"`
	// DroppedRecvDisabled arrived while receiving was off (hold).
	DroppedRecvDisabled uint64 `json:"dropped_recv_disabled,omitempty"`

	// Expected is extended highest sequence - base + 1 summed over every
	// SSRC seen; Lost = Expected - received, never negative (duplicates
	// can push it below zero, RFC 3550 A.3).
	Expected     uint64  `json:"expected"`
	Lost         uint64  `json:"lost"`
	LossFraction float64 `json:"loss_fraction"`
	LossPercent  float64 `json:"loss_percent"`
	// Jitter is the RFC 3550 interarrival jitter of audio packets, in
	// timestamp units and in milliseconds.
	JitterTS float64 `json:"jitter_ts"`
	JitterMs float64 `json:"jitter_ms"`

	FirstPacket time.Time `json:"first_packet,omitzero"` // zero if none yet
	LastPacket  time.Time `json:"last_packet,omitzero"`
	// FirstSource and LastSource are where media actually came from, which
	// need not be what the peer's SDP said (NAT, relays, latching).
	FirstSource    netip.AddrPort `json:"first_source,omitzero"`
	LastSource     netip.AddrPort `json:"last_source,omitzero"`
	Sources        []SourceCount  `json:"sources,omitempty"`
	SourcesDropped uint64         `json:"sources_dropped,omitempty"`

	SSRC         uint32   `json:"ssrc"`
	SSRCs        []uint32 `json:"ssrcs,omitempty"`
	SSRCChanges  uint64   `json:"ssrc_changes,omitempty"`
	PayloadType  uint8    `json:"pt"` // of the last valid packet
	PayloadTypes []uint8  `json:"pts,omitempty"`

	DTMF string `json:"dtmf,omitempty"` // digits received, once per event
	// ToneHz is the dominant frequency of the received audio (0 if none
	// yet) and LevelDBFS the level of the last audio packet: together they
	// show whose test tone is arriving.
	ToneHz    float64 `json:"tone_hz"`
	LevelDBFS float64 `json:"level_dbfs"`

	// StrayPackets reached the send-only socket of an asymmetric session
	// (a peer that latched onto our source port) and were dropped.
	StrayPackets uint64         `json:"stray_packets,omitempty"`
	StraySource  netip.AddrPort `json:"stray_source,omitzero"`
}

// Stats returns a consistent snapshot.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, r := &s.tx, &s.rx
	st := Stats{
		Local:           s.cfg.RTP.LocalAddr().String(),
		SendFrom:        s.sendConn().LocalAddr().String(),
		Symmetric:       s.cfg.SendConn == nil,
		Remote:          s.remote,
		Latched:         s.latched && s.cfg.Latch,
		Codec:           s.cfg.Codec,
		PayloadType:     s.cfg.PayloadType,
		DTMFPayloadType: s.cfg.DTMFPayloadType,
		Sending:         s.send,
		Receiving:       s.recv,
		Sent: SentStats{
			Packets:     t.packets,
			Bytes:       t.bytes,
			DTMFPackets: t.dtmfPackets,
			DTMF:        string(t.dtmfSent),
			SSRC:        t.hdr.SSRC,
			ToneHz:      s.cfg.ToneHz,
			Beeps:       s.cfg.Beeps,
			Errors:      t.errors,
			LastError:   t.lastErr,
		},
		Received: ReceivedStats{
			Packets:             r.packets,
			Bytes:               r.bytes,
			AudioPackets:        r.audio,
			DTMFPackets:         r.dtmfPkts,
			OtherPTPackets:      r.otherPT,
			Invalid:             r.invalid,
			DroppedRecvDisabled: r.dropped,
			JitterTS:            math.Round(r.jitter*100) / 100,
			JitterMs:            math.Round(r.jitter/clockRate*1000*100) / 100,
			FirstPacket:         r.firstAt,
			LastPacket:          r.lastAt,
			FirstSource:         r.firstSrc,
			LastSource:          r.lastSrc,
			Sources:             slices.Clone(r.sources),
			SourcesDropped:      r.sourcesDropped,
			SSRC:                r.ssrc,
			SSRCs:               slices.Clone(r.ssrcs),
			SSRCChanges:         r.ssrcChanges,
			PayloadType:         r.lastPT,
			PayloadTypes:        slices.Clone(r.pts),
			DTMF:                string(r.digits),
			ToneHz:              r.tone.hz(),
			LevelDBFS:           r.tone.levelDBFS,
			StrayPackets:        r.stray,
			StraySource:         r.straySrc,
		},
	}
	if s.cfg.RTCP != nil {
		rs := s.rtcp.stats
		rs.Local = s.cfg.RTCP.LocalAddr().String()
		rs.Remote = rtcpRemote(s.remote)
		st.RTCP = &rs
	}
	if r.packets == 0 || r.audio == 0 {
		st.Received.LevelDBFS = -96
	}
	if r.haveSSRC {
		rs := &st.Received
		rs.Expected = r.priorExpected + r.seq.expected()
		received := r.priorReceived + r.seq.received
		if rs.Expected > received {
			rs.Lost = rs.Expected - received
		}
		if rs.Expected > 0 {
			rs.LossFraction = float64(rs.Lost) / float64(rs.Expected)
			rs.LossPercent = math.Round(rs.LossFraction*10000) / 100
		}
	}
	return st
}

// String is a compact multi-line form for a status command.
func (st Stats) String() string {
	var b strings.Builder
	rx, tx := st.Received, st.Sent
	fmt.Fprintf(&b, "rtp %s -> %s (send from %s, symmetric=%v, latched=%v) %s/%d send=%v recv=%v\n",
		st.Local, st.Remote, st.SendFrom, st.Symmetric, st.Latched, st.Codec, st.PayloadType, st.Sending, st.Receiving)
	fmt.Fprintf(&b, "  sent: %d pkts %d bytes, tone %.0f Hz, dtmf %q, errors %d %s\n",
		tx.Packets, tx.Bytes, tx.ToneHz, tx.DTMF, tx.Errors, tx.LastError)
	fmt.Fprintf(&b, "  recv: %d pkts (%d audio, %d dtmf, %d other pt, %d invalid), expected %d, lost %d (%.2f%%), jitter %.2f ms\n",
		rx.Packets, rx.AudioPackets, rx.DTMFPackets, rx.OtherPTPackets, rx.Invalid, rx.Expected, rx.Lost, rx.LossPercent, rx.JitterMs)
	fmt.Fprintf(&b, "  from: first %v last %v", rx.FirstSource, rx.LastSource)
	for _, src := range rx.Sources {
		fmt.Fprintf(&b, " [%v: %d]", src.Addr, src.Packets)
	}
	fmt.Fprintf(&b, "\n  heard: tone %.0f Hz at %.1f dBFS, ssrc %08x, pt %d, dtmf %q", rx.ToneHz, rx.LevelDBFS, rx.SSRC, rx.PayloadType, rx.DTMF)
	if c := st.RTCP; c != nil {
		fmt.Fprintf(&b, "\n  rtcp: %s -> %v sent %d recv %d invalid %d; peer says lost %d (%.1f%% last interval), jitter %.2f ms, rtt %.2f ms",
			c.Local, c.Remote, c.Sent, c.Received, c.Invalid, c.PeerLost, c.PeerFractionLost*100, c.PeerJitterMs, c.RTTMs)
	}
	if rx.StrayPackets > 0 {
		fmt.Fprintf(&b, "\n  stray: %d pkts on the send-only socket, last from %v", rx.StrayPackets, rx.StraySource)
	}
	return b.String()
}
