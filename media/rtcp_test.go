package media

import (
	"net"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

func listenPair(t *testing.T) (net.PacketConn, net.PacketConn) {
	t.Helper()
	a, b, err := ListenRTPPair(loopback, 0)
	if err != nil {
		t.Fatal(err)
	}
	if pa, pb := addrOf(a).Port(), addrOf(b).Port(); pa%2 != 0 || pb != pa+1 {
		t.Fatalf("pair %d/%d", pa, pb)
	}
	return a, b
}

func TestRTCPBetweenSessions(t *testing.T) {
	aRTP, aRTCP := listenPair(t)
	bRTP, bRTCP := listenPair(t)
	iv := 150 * time.Millisecond
	a := start(t, Config{RTP: aRTP, RTCP: aRTCP, RTCPInterval: iv, Remote: addrOf(bRTP)})
	b := start(t, Config{RTP: bRTP, RTCP: bRTCP, RTCPInterval: iv, Remote: addrOf(aRTP)})
	waitFor(t, "reports with RTT both ways", func() bool {
		return a.Stats().RTCP.RTTSamples >= 2 && b.Stats().RTCP.RTTSamples >= 2
	})
	for _, tc := range []struct {
		name     string
		s        *Session
		peerRTCP net.PacketConn
	}{
		{"a", a, bRTCP},
		{"b", b, aRTCP},
	} {
		st := tc.s.Stats()
		c := st.RTCP
		if c.LastSource != addrOf(tc.peerRTCP) || c.Remote != addrOf(tc.peerRTCP) {
			t.Errorf("%s: rtcp from %v to %v, peer rtcp is %v", tc.name, c.LastSource, c.Remote, addrOf(tc.peerRTCP))
		}
		if c.PeerLost != 0 || c.PeerFractionLost != 0 || c.Invalid != 0 || c.CNAME == "" {
			t.Errorf("%s: %+v", tc.name, *c)
		}
		if c.RTTMs < 0 || c.RTTMs > 100 {
			t.Errorf("%s: loopback rtt %v ms", tc.name, c.RTTMs)
		}
		if c.PeerSentPackets == 0 || uint64(c.PeerSentPackets) > st.Received.Packets+uint64(iv/Ptime)+2 {
			t.Errorf("%s: peer claims %d sent, we received %d", tc.name, c.PeerSentPackets, st.Received.Packets)
		}
	}
}

func TestRTCPReportsLossAndEchoesSR(t *testing.T) {
	sRTP, sRTCP := listenPair(t)
	peerRTP, peerRTCP := listenPair(t)
	s := start(t, Config{RTP: sRTP, RTCP: sRTCP, RTCPInterval: 100 * time.Millisecond, Remote: addrOf(peerRTP)})

	tx := &rawSender{t: t, conn: peerRTP, to: sRTP.LocalAddr()}
	for seq := uint16(1); seq <= 10; seq++ {
		if seq == 4 || seq == 5 {
			continue
		}
		tx.rtp(rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 0x1234}, make([]byte, 160))
	}
	waitFor(t, "rtp", func() bool { return s.Stats().Received.Packets == 8 })

	next := func() (rtcp.Packet, *rtcp.ReceptionReport) {
		t.Helper()
		buf := make([]byte, 1500)
		peerRTCP.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := peerRTCP.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			t.Fatalf("session sent bad RTCP: %v", err)
		}
		if len(pkts) != 2 {
			t.Fatalf("want report + SDES, got %v", pkts)
		}
		if _, ok := pkts[1].(*rtcp.SourceDescription); !ok {
			t.Fatalf("second packet %T, want SDES", pkts[1])
		}
		sr, ok := pkts[0].(*rtcp.SenderReport)
		if !ok {
			t.Fatalf("first packet %T, want SR (the session sends audio)", pkts[0])
		}
		if sr.SSRC != s.Stats().Sent.SSRC {
			t.Fatalf("SR ssrc %x", sr.SSRC)
		}
		if len(sr.Reports) != 1 {
			return sr, nil
		}
		return sr, &sr.Reports[0]
	}
	var sawFraction bool
	for {
		_, rb := next()
		if rb == nil {
			continue
		}
		if rb.SSRC != 0x1234 {
			t.Fatalf("block about %x", rb.SSRC)
		}
		sawFraction = sawFraction || rb.FractionLost > 0
		if rb.TotalLost == 2 && rb.LastSequenceNumber == 10 {
			break
		}
	}
	if !sawFraction {
		t.Error("no report carried a non-zero fraction lost")
	}

	// Our SR: the next block must echo its NTP middle bits as LSR.
	ntp := ntpTime(time.Now())
	b, err := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 0x1234, NTPTime: ntp, PacketCount: 8, OctetCount: 1280}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peerRTCP.WriteTo(b, sRTCP.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	for {
		_, rb := next()
		if rb != nil && rb.LastSenderReport == ntpMiddle(ntp) {
			if rb.Delay > 65536 { // more than a second from SR to report
				t.Errorf("DLSR %d", rb.Delay)
			}
			break
		}
	}
	// And garbage on the RTCP port is counted, not fatal.
	if _, err := peerRTCP.WriteTo([]byte("garbage"), sRTCP.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "invalid rtcp counted", func() bool { return s.Stats().RTCP.Invalid == 1 })
	if c := s.Stats().RTCP; c.PeerSentPackets != 8 || c.Received != 1 {
		t.Errorf("peer SR not recorded: %+v", *c)
	}
}
