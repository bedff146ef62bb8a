package b2bua

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/media/mediarelay"
)

// The PBX's relay on its own, with real sockets on loopback: the phones
// are RTP/RTCP socket pairs (.90 up, this package's raw test sockets).
var relayIP = netip.MustParseAddr("127.0.9.30")

type rawPhone struct {
	t         *testing.T
	rtp, rtcp *net.UDPConn
	addr      netip.AddrPort
	seq       uint16
}

func newRawPhone(t *testing.T, ip string) *rawPhone {
	t.Helper()
	a, b, err := media.ListenRTPPair(netip.MustParseAddr(ip), 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPhone{t: t, rtp: a.(*net.UDPConn), rtcp: b.(*net.UDPConn)}
	p.addr = p.rtp.LocalAddr().(*net.UDPAddr).AddrPort()
	t.Cleanup(func() { p.rtp.Close(); p.rtcp.Close() })
	return p
}

func (p *rawPhone) sendRTP(to netip.AddrPort) []byte {
	p.t.Helper()
	p.seq++
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: p.seq, SSRC: 0x5eed}, Payload: bytes.Repeat([]byte{0xff}, 160)}).Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.rtp.WriteToUDPAddrPort(b, to); err != nil {
		p.t.Fatal(err)
	}
	return b
}

// read returns the next datagram on c and its source, or nil after wait.
func read(c *net.UDPConn, wait time.Duration) ([]byte, netip.AddrPort) {
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(wait))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) || err != nil {
		return nil, netip.AddrPort{}
	}
	return buf[:n], from
}

// newTestRelay is a relay reading a PBX's live settings, as newCallRelay
// makes it, on a PBX that is only its settings.
func newTestRelay(t *testing.T) (*B2BUA, *relay) {
	t.Helper()
	b := &B2BUA{log: testLogger(t)}
	b.settings.Store(DefaultSettings())
	r, err := newRelay(relayIP, b.latching, func() bool { return b.settings.get().MOH }, DefaultMOHHz, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	return b, r
}

// `latch` both ways, live: alice's SDP names a private address she does
// not send from. With latch on the relay answers to where her RTP comes
// from; turned off mid-call it sends to the SDP address (audio into the
// void: alice hears nothing, a send error is counted); on again, she
// hears bob at once.
func TestRelayLatchSettingBothWays(t *testing.T) {
	b, r := newTestRelay(t)
	alice, bob := newRawPhone(t, "127.0.9.90"), newRawPhone(t, "127.0.9.91")
	private := netip.MustParseAddrPort("192.168.77.7:16000")
	r.setRemote(legA, private)
	r.setRemote(legB, bob.addr)

	pkt := alice.sendRTP(r.addr(legA)) // latches alice's real source
	if got, from := read(bob.rtp, 2*time.Second); !bytes.Equal(got, pkt) || from != r.addr(legB) {
		t.Fatalf("bob got %d bytes from %v, want alice's packet from the relay %v", len(got), from, r.addr(legB))
	}
	pkt = bob.sendRTP(r.addr(legB))
	if got, _ := read(alice.rtp, 2*time.Second); !bytes.Equal(got, pkt) {
		t.Fatal("latch on: alice does not hear bob")
	}
	if st := r.stats()[legA]; st.Latched != alice.addr || st.SendingTo != alice.addr {
		t.Fatalf("latch on: latched %v sending to %v, want alice %v", st.Latched, st.SendingTo, alice.addr)
	}

	if err := b.Set(SettingLatch, "off"); err != nil {
		t.Fatal(err)
	}
	alice.sendRTP(r.addr(legA)) // off accepts anyone; still relayed to bob
	if got, _ := read(bob.rtp, 2*time.Second); got == nil {
		t.Fatal("latch off: bob no longer hears alice")
	}
	bob.sendRTP(r.addr(legB))
	if got, _ := read(alice.rtp, 200*time.Millisecond); got != nil {
		t.Fatal("latch off: alice still hears bob; want it sent to her private SDP address")
	}
	if st := r.stats(); st[legA].SendingTo != private || st[legB].Dropped.SendError != 1 {
		t.Fatalf("latch off: sending to %v, bob's send errors %d; want %v and 1", st[legA].SendingTo, st[legB].Dropped.SendError, private)
	}

	if err := b.Set(SettingLatch, "on"); err != nil {
		t.Fatal(err)
	}
	pkt = bob.sendRTP(r.addr(legB))
	if got, _ := read(alice.rtp, 2*time.Second); !bytes.Equal(got, pkt) {
		t.Fatal("latch on again: alice does not hear bob")
	}
}

// The PBX relays RTCP on the RTP port + 1 (it used to drop it), from the
// relay's own RTCP socket, and validates it: RTP sent to the RTCP port is
// not relayed.
func TestRelayRTCP(t *testing.T) {
	_, r := newTestRelay(t)
	alice, bob := newRawPhone(t, "127.0.9.92"), newRawPhone(t, "127.0.9.93")
	r.setRemote(legA, alice.addr)
	r.setRemote(legB, bob.addr)
	plus1 := func(ap netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(ap.Addr(), ap.Port()+1) }
	rr, err := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 0x5eed}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.rtcp.WriteToUDPAddrPort(rr, plus1(r.addr(legA))); err != nil {
		t.Fatal(err)
	}
	if got, from := read(bob.rtcp, 2*time.Second); !bytes.Equal(got, rr) || from != plus1(r.addr(legB)) {
		t.Fatalf("bob's RTCP socket got %d bytes from %v, want alice's report from %v", len(got), from, plus1(r.addr(legB)))
	}
	if _, err := bob.rtcp.WriteToUDPAddrPort(rr, plus1(r.addr(legB))); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(alice.rtcp, 2*time.Second); !bytes.Equal(got, rr) {
		t.Fatal("alice got no RTCP from bob")
	}
	// RTP on the RTCP port is garbage there.
	rtpPkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: []byte{1, 2, 3}}).Marshal()
	if _, err := alice.rtcp.WriteToUDPAddrPort(rtpPkt, plus1(r.addr(legA))); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(bob.rtcp, 200*time.Millisecond); got != nil {
		t.Fatal("RTP sent to the RTCP port was relayed")
	}
	st := r.stats()
	if st[legA].RTCP.PacketsIn != 2 || st[legA].RTCP.Dropped.Invalid != 1 || st[legB].RTCP.PacketsOut != 1 || st[legA].RTCP.Latched != plus1(alice.addr) {
		t.Fatalf("rtcp stats: a %+v b %+v", st[legA].RTCP, st[legB].RTCP)
	}
}

// Music on hold through the injection hook: alice holds, bob hears the
// PBX's 1333 Hz cadence in his leg's codec (PCMA here) from the relay,
// marker on the first packet, 20 ms apart; alice hears nothing; `moh off`
// silences it live; resume relays the phones again and ends the music.
func TestRelayMusicOnHoldHook(t *testing.T) {
	b, r := newTestRelay(t)
	alice, bob := newRawPhone(t, "127.0.9.94"), newRawPhone(t, "127.0.9.95")
	r.setRemote(legA, alice.addr)
	r.setRemote(legB, bob.addr)
	r.setCodec(legA, 8, true, true)
	r.setCodec(legB, 8, true, true)
	r.setHolding(legA, true)

	var pcm []int16
	start := time.Now()
	for i := range 20 {
		got, from := read(bob.rtp, time.Second)
		var p rtp.Packet
		if got == nil || p.Unmarshal(got) != nil || from != r.addr(legB) {
			t.Fatalf("packet %d: no music on hold from the relay (%d bytes from %v)", i, len(got), from)
		}
		if p.PayloadType != 8 || len(p.Payload) != 160 || p.Marker != (i == 0) {
			t.Fatalf("packet %d: pt %d, %d bytes, marker %v", i, p.PayloadType, len(p.Payload), p.Marker)
		}
		for _, c := range p.Payload {
			pcm = append(pcm, g711.DecodeAlawFrame(c))
		}
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("20 packets of music in %v: not paced at 20 ms", el)
	}
	// Zero crossings over 400 ms of tone: 2 per period.
	crossings := 0
	for i := 1; i < len(pcm); i++ {
		if (pcm[i-1] < 0) != (pcm[i] < 0) {
			crossings++
		}
	}
	if hz := float64(crossings) / 2 / (float64(len(pcm)) / 8000); hz < DefaultMOHHz-20 || hz > DefaultMOHHz+20 {
		t.Fatalf("music at %.0f Hz, want %d", hz, DefaultMOHHz)
	}
	bob.sendRTP(r.addr(legB))
	alice.sendRTP(r.addr(legA))
	if got, _ := read(alice.rtp, 200*time.Millisecond); got != nil {
		t.Fatal("the holder receives media")
	}

	if err := b.Set(SettingMOH, "off"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	drainUDP(bob.rtp)
	if got, _ := read(bob.rtp, 200*time.Millisecond); got != nil {
		t.Fatal("moh off: music still playing")
	}
	if err := b.Set(SettingMOH, "on"); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(bob.rtp, time.Second); got == nil {
		t.Fatal("moh on again: no music")
	}

	r.setHolding(legA, false)
	st := r.stats()
	if st[legB].Injected < 20 || st[legA].Dropped.Hold < 1 || st[legB].Dropped.Hold < 1 || st[legB].Injecting {
		t.Fatalf("after resume: injected %d, hold drops %d/%d, injecting %v", st[legB].Injected, st[legA].Dropped.Hold, st[legB].Dropped.Hold, st[legB].Injecting)
	}
	drainUDP(bob.rtp)
	pkt := alice.sendRTP(r.addr(legA))
	if got, _ := read(bob.rtp, time.Second); !bytes.Equal(got, pkt) {
		t.Fatal("after resume bob does not hear alice (or still hears music)")
	}
	pkt = bob.sendRTP(r.addr(legB))
	if got, _ := read(alice.rtp, time.Second); !bytes.Equal(got, pkt) {
		t.Fatal("after resume alice does not hear bob")
	}
}

func drainUDP(c *net.UDPConn) {
	for {
		if got, _ := read(c, 50*time.Millisecond); got == nil {
			return
		}
	}
}

var _ mediarelay.Source = (*mohSource)(nil)
