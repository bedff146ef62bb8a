package mediarelay

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// toneSource is a Source made of a fake phone's real RTP packets; on
// turns it silent (Next returns nil) the way music on hold does with
// `moh off`.
type toneSource struct {
	p    *phone
	on   atomic.Bool
	next atomic.Uint64
}

func (s *toneSource) Next() []byte {
	if !s.on.Load() {
		return nil
	}
	s.next.Add(1)
	return s.p.packet()
}

// The music-on-hold hook: while side 0 holds and side 1 is fed, side 1's
// phone hears the source, paced at 20 ms, from the relay's address; the
// two phones hear nothing of each other; after resume the phones are
// relayed again and the source is no longer asked.
func TestInjectFeedsHeldSide(t *testing.T) {
	r := newRelay(t, Config{})
	a, b := newPhone(t, 0xa), newPhone(t, 0xb)
	r.SetRemote(0, a.addr)
	r.SetRemote(1, b.addr)
	pkt := a.sendRTP(r.Local(0))
	expect(t, b.rtp, pkt, r.Local(1))

	src := &toneSource{p: newPhone(t, 0x70)}
	src.on.Store(true)
	r.SetHolding(0, true)
	r.Inject(1, src)
	// The music reaches b from the relay's side-1 socket.
	buf := make([]byte, 2048)
	start := time.Now()
	for range 10 {
		b.rtp.SetReadDeadline(time.Now().Add(time.Second))
		n, from, err := b.rtp.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no music on hold: %v", err)
		}
		if from != r.Local(1) || n < 12 || buf[8] != 0 || buf[11] != 0x70 {
			t.Fatalf("got %d bytes from %v (ssrc %x), want the source's packet from %v", n, from, buf[8:12], r.Local(1))
		}
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("10 injected packets in %v: not paced at 20 ms", el)
	}
	// Held both ways: a's RTP and RTCP do not reach b, b's do not reach a.
	a.sendRTP(r.Local(0))
	a.sendRTCP(r.Local(0))
	b.sendRTP(r.Local(1))
	waitIn(t, r, 0, false, 2)
	waitIn(t, r, 1, false, 1)
	expectNothing(t, a.rtp)
	st := r.Stats()
	if !st[0].Holding || !st[1].Injecting || st[1].Injected < 10 || st[0].Dropped.Hold != 1 || st[1].Dropped.Hold != 1 {
		t.Fatalf("while held: holding %v injecting %v injected %d, hold drops %d/%d; want true, true, >= 10, 1/1",
			st[0].Holding, st[1].Injecting, st[1].Injected, st[0].Dropped.Hold, st[1].Dropped.Hold)
	}
	if st[1].PacketsOut != 1 {
		t.Fatalf("side 1 packets_out %d, want 1: injected packets are counted apart", st[1].PacketsOut)
	}

	// A silent source sends nothing (moh off).
	src.on.Store(false)
	time.Sleep(60 * time.Millisecond)
	drain(b)
	injected := r.Stats()[1].Injected
	time.Sleep(100 * time.Millisecond)
	if got := r.Stats()[1].Injected; got != injected {
		t.Fatalf("silent source: injected %d -> %d", injected, got)
	}

	// Resume.
	r.Inject(1, nil)
	r.SetHolding(0, false)
	asked := src.next.Load()
	src.on.Store(true)
	pkt = a.sendRTP(r.Local(0))
	expect(t, b.rtp, pkt, r.Local(1))
	pkt = b.sendRTP(r.Local(1))
	expect(t, a.rtp, pkt, r.Local(0))
	time.Sleep(60 * time.Millisecond)
	if src.next.Load() != asked {
		t.Fatal("the source is still asked after Inject(nil)")
	}
	checkBalance(t, r.Stats())
}

// Nothing is injected into a side that holds itself or has no
// destination, and Close ends the injector.
func TestInjectNeedsADestination(t *testing.T) {
	r := newRelay(t, Config{})
	src := &toneSource{p: newPhone(t, 0x70)}
	src.on.Store(true)
	r.Inject(0, src) // side 0 has no SDP address and no latch
	time.Sleep(80 * time.Millisecond)
	if n := src.next.Load(); n != 0 {
		t.Fatalf("source asked %d times with no destination", n)
	}
	a := newPhone(t, 0xa)
	r.SetRemote(0, a.addr)
	r.SetHolding(0, true)
	time.Sleep(80 * time.Millisecond)
	if n := src.next.Load(); n != 0 {
		t.Fatalf("source asked %d times for a side that holds", n)
	}
	r.SetHolding(0, false)
	expectAny(t, a.rtp)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	n := src.next.Load()
	time.Sleep(60 * time.Millisecond)
	if src.next.Load() != n {
		t.Fatal("injector still running after Close")
	}
	r.Inject(0, src) // after Close: ignored, no goroutine left behind
}

// A transfer: side 0's phone a is replaced by c. a keeps sending and is
// dropped as old_peer — it neither reaches b nor takes the latch — while c
// is latched and relayed, RTP and RTCP alike.
func TestReplacePeerDropsOldPhone(t *testing.T) {
	r := newRelay(t, Config{})
	a, b, c := newPhone(t, 0xa), newPhone(t, 0xb), newPhone(t, 0xc)
	r.SetRemote(0, netip.AddrPortFrom(private, 16000)) // a is NATed: latched, not its SDP
	r.SetRemote(1, b.addr)
	pkt := a.sendRTP(r.Local(0))
	expect(t, b.rtp, pkt, r.Local(1))
	rep := a.sendRTCP(r.Local(0))
	expect(t, b.rtcp, rep, rtcpOf(r.Local(1)))

	r.ReplacePeer(0, c.addr)
	a.sendRTP(r.Local(0)) // first after the transfer: would latch if allowed
	a.sendRTCP(r.Local(0))
	waitIn(t, r, 0, false, 2)
	waitIn(t, r, 0, true, 2)
	expectNothing(t, b.rtp)
	pkt = c.sendRTP(r.Local(0))
	expect(t, b.rtp, pkt, r.Local(1))
	pkt = b.sendRTP(r.Local(1))
	expect(t, c.rtp, pkt, r.Local(0))
	rep = c.sendRTCP(r.Local(0))
	expect(t, b.rtcp, rep, rtcpOf(r.Local(1)))
	st := r.Stats()
	if st[0].Dropped.OldPeer != 1 || st[0].RTCP.Dropped.OldPeer != 1 || st[0].Latched != c.addr || st[0].SDPRemote != c.addr {
		t.Fatalf("after transfer: old_peer %d/%d latched %v sdp %v; want 1/1 and c %v",
			st[0].Dropped.OldPeer, st[0].RTCP.Dropped.OldPeer, st[0].Latched, st[0].SDPRemote, c.addr)
	}
	checkBalance(t, st)
}

func drain(p *phone) {
	buf := make([]byte, 2048)
	for {
		p.rtp.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		if _, _, err := p.rtp.ReadFromUDPAddrPort(buf); err != nil {
			return
		}
	}
}

func expectAny(t *testing.T, c interface {
	SetReadDeadline(time.Time) error
	ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error)
}) {
	t.Helper()
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(time.Second))
	if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
		t.Fatalf("expected an injected packet: %v", err)
	}
}
