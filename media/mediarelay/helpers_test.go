package mediarelay

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/siplab/siplab/media"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// private is an address no test machine answers from a loopback socket:
// Linux refuses to send from 127.0.0.1 to it (EINVAL), so nothing leaves
// the host and the relay counts a send_error.
var private = netip.MustParseAddr("192.168.77.7")

// modeVar is the live latching setting a test flips, as the SBC's `set` does.
type modeVar struct{ v atomic.Value }

func newMode(l Latching) *modeVar { m := &modeVar{}; m.v.Store(l); return m }
func (m *modeVar) set(l Latching) { m.v.Store(l) }
func (m *modeVar) get() Latching  { return m.v.Load().(Latching) }

// phone is a fake phone: a real RTP/RTCP socket pair on loopback sending
// real RTP (pion/rtp) and RTCP (pion/rtcp).
type phone struct {
	t          testing.TB
	rtp, rtcp  *net.UDPConn
	addr, rtcA netip.AddrPort
	ssrc       uint32
	seq        uint16
}

func newPhone(t testing.TB, ssrc uint32) *phone {
	t.Helper()
	a, b, err := media.ListenRTPPair(loopback, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{t: t, rtp: a.(*net.UDPConn), rtcp: b.(*net.UDPConn), ssrc: ssrc}
	p.addr = p.rtp.LocalAddr().(*net.UDPAddr).AddrPort()
	p.rtcA = p.rtcp.LocalAddr().(*net.UDPAddr).AddrPort()
	t.Cleanup(func() { p.rtp.Close(); p.rtcp.Close() })
	return p
}

// packet is the phone's next RTP packet: 160 bytes of PCMU like a 20 ms frame.
func (p *phone) packet() []byte {
	p.t.Helper()
	p.seq++
	payload := bytes.Repeat([]byte{byte(p.seq)}, 160)
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: p.seq, Timestamp: uint32(p.seq) * 160, SSRC: p.ssrc}, Payload: payload}).Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

// sendRTP sends the next RTP packet to the relay's RTP address to and
// returns it.
func (p *phone) sendRTP(to netip.AddrPort) []byte {
	p.t.Helper()
	b := p.packet()
	p.send(p.rtp, to, b)
	return b
}

// sendRTCP sends a receiver report to the relay's RTCP port (to's port + 1).
func (p *phone) sendRTCP(to netip.AddrPort) []byte {
	p.t.Helper()
	b, err := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: p.ssrc, Reports: []rtcp.ReceptionReport{{SSRC: 7, LastSequenceNumber: uint32(p.seq)}}}})
	if err != nil {
		p.t.Fatal(err)
	}
	p.send(p.rtcp, rtcpOf(to), b)
	return b
}

func (p *phone) send(c *net.UDPConn, to netip.AddrPort, b []byte) {
	p.t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
		p.t.Fatal(err)
	}
}

func rtcpOf(ap netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(ap.Addr(), ap.Port()+1) }

// expect reads one datagram on c and checks it is want and came from the
// relay's address from.
func expect(t testing.TB, c *net.UDPConn, want []byte, from netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, src, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("%v: expected a relayed packet: %v", c.LocalAddr(), err)
	}
	if !bytes.Equal(buf[:n], want) {
		t.Fatalf("%v: got %d bytes %x..., want the %d bytes sent", c.LocalAddr(), n, buf[:min(n, 16)], len(want))
	}
	if from.IsValid() && src != from {
		t.Fatalf("%v: packet came from %v, want it from the relay's %v (symmetric RTP)", c.LocalAddr(), src, from)
	}
}

// expectNothing checks no datagram waits on c (the relay already counted
// everything it was sent, so a short wait is enough).
func expectNothing(t testing.TB, c *net.UDPConn) {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	n, src, err := c.ReadFromUDPAddrPort(buf)
	if err == nil {
		t.Fatalf("%v: got %d bytes from %v, want nothing", c.LocalAddr(), n, src)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal(err)
	}
}

// waitIn waits until the relay has counted n datagrams in on side's RTP
// (or RTCP) socket: the counters are updated before a packet is sent on, so
// once they show it, its fate is decided.
func waitIn(t testing.TB, r *Relay, side int, rtcpStream bool, n uint64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		st := r.Stats()[side]
		got := st.PacketsIn
		if rtcpStream {
			got = st.RTCP.PacketsIn
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("side %d: %d packets in after 2 s, want %d", side, got, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func newRelay(t testing.TB, cfg Config) *Relay {
	t.Helper()
	if !cfg.IP[0].IsValid() {
		cfg.IP = [2]netip.Addr{loopback, loopback}
	}
	r, err := NewWithConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// checkBalance asserts the documented invariant: whatever arrived on a
// side was either relayed out of the other side or dropped for a reason.
func checkBalance(t testing.TB, st [2]SideStats) {
	t.Helper()
	for i := range st {
		o := 1 - i
		if in, out, d := st[i].PacketsIn, st[o].PacketsOut, st[i].Dropped.Total; in != out+d {
			t.Errorf("side %d rtp: in %d != other side's out %d + dropped %d", i, in, out, d)
		}
		if in, out, d := st[i].RTCP.PacketsIn, st[o].RTCP.PacketsOut, st[i].RTCP.Dropped.Total; in != out+d {
			t.Errorf("side %d rtcp: in %d != other side's out %d + dropped %d", i, in, out, d)
		}
	}
}
