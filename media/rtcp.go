package media

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"

	"github.com/pion/rtcp"
)

// DefaultRTCPInterval is RFC 3550's minimum report interval (§6.2). It is
// not randomised: one phone per leg never causes report storms, and a fixed
// interval makes captures easier to read.
const DefaultRTCPInterval = 5 * time.Second

// minRTCPInterval lets tests and impatient demos report faster, but not
// fast enough to matter against the RTP stream.
const minRTCPInterval = 100 * time.Millisecond

// ntpEpochOffset is the seconds between 1900 (NTP) and 1970 (Unix).
const ntpEpochOffset = 2208988800

func ntpTime(t time.Time) uint64 {
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// ntpMiddle is the 32 bits of an NTP time that LSR and DLSR use
// (1/65536 s resolution).
func ntpMiddle(ntp uint64) uint32 { return uint32(ntp >> 16) }

// RTCPStats reports the RTCP side of a session: our reports and what the
// peer says it receives from us (the view from the other end of the call).
type RTCPStats struct {
	Local  string         `json:"local"`
	Remote netip.AddrPort `json:"remote"` // RTP remote port + 1
	Sent   uint64         `json:"sent"`
	// Received are well-formed compound packets; Invalid everything else.
	Received   uint64         `json:"received"`
	Invalid    uint64         `json:"invalid"`
	LastSource netip.AddrPort `json:"last_source,omitzero"`
	// Peer* come from the latest report block the peer wrote about our SSRC.
	PeerReports      uint64  `json:"peer_reports"`
	PeerFractionLost float64 `json:"peer_fraction_lost"` // of the peer's last interval, 0..1
	PeerLost         int64   `json:"peer_lost"`          // cumulative, as the peer counts it
	PeerHighestSeq   uint32  `json:"peer_highest_seq"`
	PeerJitterMs     float64 `json:"peer_jitter_ms"`
	// RTTMs is the round trip from the peer's LSR/DLSR (RFC 3550 §6.4.1);
	// RTTSamples says how many reports carried one (0 = RTT unknown).
	RTTMs      float64 `json:"rtt_ms"`
	RTTSamples uint64  `json:"rtt_samples"`
	// PeerSentPackets/Octets are from the peer's last sender report.
	PeerSentPackets uint32 `json:"peer_sent_packets"`
	PeerSentOctets  uint32 `json:"peer_sent_octets"`
	CNAME           string `json:"peer_cname,omitempty"`
}

type rtcpState struct {
	stats RTCPStats
	// For the interval fraction lost (RFC 3550 A.3).
	expectedPrior, receivedPrior uint64
	// Last SR from the peer: middle NTP bits and when it arrived.
	lastSR   uint32
	lastSRAt time.Time
	cname    string
}

// rtcpRemote is where reports go: the RTP remote with the port + 1
// (RFC 3550 §11; a=rtcp from RFC 3605 is not honoured).
func rtcpRemote(rtpRemote netip.AddrPort) netip.AddrPort {
	if !rtpRemote.IsValid() || rtpRemote.Port() == 65535 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(rtpRemote.Addr(), rtpRemote.Port()+1)
}

// buildReport makes our compound packet: SR if we have sent media, else RR,
// with a block about the stream we receive, and SDES CNAME (§6.1 requires it).
// Called with mu held.
func (s *Session) buildReport(now time.Time) ([]byte, error) {
	t, r, c := &s.tx, &s.rx, &s.rtcp
	var blocks []rtcp.ReceptionReport
	if r.haveSSRC {
		expected := r.priorExpected + r.seq.expected()
		received := r.priorReceived + r.seq.received
		expInt := expected - c.expectedPrior
		recInt := received - c.receivedPrior
		c.expectedPrior, c.receivedPrior = expected, received
		var fraction uint8
		if expInt > 0 && expInt > recInt {
			fraction = uint8((expInt - recInt) << 8 / expInt)
		}
		lost := int64(expected) - int64(received)
		// TotalLost is a signed 24-bit field.
		lost = max(min(lost, 0x7fffff), -0x800000)
		var dlsr uint32
		if !c.lastSRAt.IsZero() {
			dlsr = uint32(now.Sub(c.lastSRAt) * 65536 / time.Second)
		}
		blocks = append(blocks, rtcp.ReceptionReport{
			SSRC:               r.ssrc,
			FractionLost:       fraction,
			TotalLost:          uint32(lost) & 0xffffff,
			LastSequenceNumber: uint32(r.seq.extendedMax()),
			Jitter:             uint32(r.jitter),
			LastSenderReport:   c.lastSR,
			Delay:              dlsr,
		})
	}
	var report rtcp.Packet
	if t.packets > 0 {
		report = &rtcp.SenderReport{
			SSRC:        t.hdr.SSRC,
			NTPTime:     ntpTime(now),
			RTPTime:     t.ts,
			PacketCount: uint32(t.packets),
			OctetCount:  uint32(t.bytes),
			Reports:     blocks,
		}
	} else {
		report = &rtcp.ReceiverReport{SSRC: t.hdr.SSRC, Reports: blocks}
	}
	return rtcp.Marshal([]rtcp.Packet{report, rtcp.NewCNAMESourceDescription(t.hdr.SSRC, c.cname)})
}

// sendReport is called from the send loop every RTCP interval.
func (s *Session) sendReport(now time.Time) {
	s.mu.Lock()
	to := rtcpRemote(s.remote)
	// Reports continue on hold: RFC 3264 §5.1 keeps RTCP flowing even for
	// inactive streams, which is how a held call stays alive.
	if !to.IsValid() {
		s.mu.Unlock()
		return
	}
	b, err := s.buildReport(now)
	s.mu.Unlock()
	if err != nil {
		s.log.Error("rtcp marshal", "err", err)
		return
	}
	if _, err := s.cfg.RTCP.WriteTo(b, net.UDPAddrFromAddrPort(to)); err != nil {
		s.log.Debug("rtcp send", "to", to, "err", err)
		return
	}
	s.mu.Lock()
	s.rtcp.stats.Sent++
	s.mu.Unlock()
}

// handleRTCP takes in one datagram from the RTCP socket.
func (s *Session) handleRTCP(b []byte, from netip.AddrPort, now time.Time) {
	pkts, err := rtcp.Unmarshal(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.rtcp
	if err != nil || len(pkts) == 0 {
		c.stats.Invalid++
		return
	}
	c.stats.Received++
	c.stats.LastSource = from
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.SenderReport:
			c.lastSR, c.lastSRAt = ntpMiddle(p.NTPTime), now
			c.stats.PeerSentPackets, c.stats.PeerSentOctets = p.PacketCount, p.OctetCount
			s.peerBlocks(p.Reports, now)
		case *rtcp.ReceiverReport:
			s.peerBlocks(p.Reports, now)
		case *rtcp.SourceDescription:
			for _, ch := range p.Chunks {
				for _, it := range ch.Items {
					if it.Type == rtcp.SDESCNAME {
						c.stats.CNAME = it.Text
					}
				}
			}
		}
	}
}

// peerBlocks records what the peer says about our stream (mu held).
func (s *Session) peerBlocks(blocks []rtcp.ReceptionReport, now time.Time) {
	c := &s.rtcp.stats
	for _, rb := range blocks {
		if rb.SSRC != s.tx.hdr.SSRC {
			continue
		}
		c.PeerReports++
		c.PeerFractionLost = float64(rb.FractionLost) / 256
		// Sign-extend the 24-bit cumulative loss.
		c.PeerLost = int64(int32(rb.TotalLost<<8) >> 8)
		c.PeerHighestSeq = rb.LastSequenceNumber
		c.PeerJitterMs = math.Round(float64(rb.Jitter)/clockRate*1000*100) / 100
		if rb.LastSenderReport != 0 {
			rtt := int64(ntpMiddle(ntpTime(now))) - int64(rb.LastSenderReport) - int64(rb.Delay)
			if rtt >= 0 {
				c.RTTMs = math.Round(float64(rtt)*1000/65536*100) / 100
				c.RTTSamples++
			}
		}
	}
}

func (s *Session) rtcpReadLoop(stop interface{ Load() bool }) {
	buf := make([]byte, readBufSize)
	for {
		n, a, err := s.cfg.RTCP.ReadFrom(buf)
		if err != nil {
			if stop.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("rtcp read", "err", err)
			continue
		}
		var from netip.AddrPort
		if ua, ok := a.(*net.UDPAddr); ok {
			from = ua.AddrPort()
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		}
		s.handleRTCP(buf[:n], from, time.Now())
	}
}

// ListenRTPPair binds an RTP socket on an even port and the RTCP socket on
// the next port (RFC 3550 §11). port 0 searches for a free pair; a fixed
// port must be even.
func ListenRTPPair(ip netip.Addr, port int) (rtpConn, rtcpConn net.PacketConn, err error) {
	if port%2 != 0 || port < 0 || port > 65534 {
		return nil, nil, fmt.Errorf("%w: RTP port %d must be even", ErrInvalidConfig, port)
	}
	for range evenPortTries {
		rtpConn, err = ListenRTP(ip, port)
		if err != nil {
			return nil, nil, err
		}
		p := rtpConn.LocalAddr().(*net.UDPAddr).Port
		rtcpConn, err = ListenRTP(ip, p+1)
		if err == nil {
			return rtpConn, rtcpConn, nil
		}
		rtpConn.Close()
		if port != 0 {
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("%w: no free RTP/RTCP pair on %v", ErrNoEvenPort, ip)
}
