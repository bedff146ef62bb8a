package mediarelay

import (
	"net/netip"
	"testing"
	"time"
)

// Garbage, STUN and wrong-version packets arriving first must not latch:
// the phone that sends real RTP afterwards gets the latch.
func TestGarbageDoesNotLatch(t *testing.T) {
	r := newRelay(t, Config{})
	a, b, x := newPhone(t, 0xa), newPhone(t, 0xb), newPhone(t, 0xee)
	r.SetRemote(0, netip.AddrPortFrom(private, 16000))
	r.SetRemote(1, b.addr)

	stun := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	v1 := x.packet()
	v1[0] = 0x40                                         // RTP version 1
	short := []byte{0x80, 0x00, 0x00, 0x01}              // version 2, but no full header
	badCSRC := append([]byte{0x8f}, make([]byte, 15)...) // claims 15 CSRCs it does not carry
	sip := []byte("OPTIONS sip:x SIP/2.0\r\n\r\n")
	for _, g := range [][]byte{stun, v1, short, badCSRC, sip, {}} {
		x.send(x.rtp, r.Local(0), g)
	}
	// RTP sent to the RTCP port is not RTCP either.
	x.send(x.rtcp, rtcpOf(r.Local(0)), x.packet())
	waitIn(t, r, 0, false, 6)
	waitIn(t, r, 0, true, 1)
	if st := r.Stats()[0]; st.Latched.IsValid() || st.RTCP.Latched.IsValid() || st.Dropped.Invalid != 6 || st.RTCP.Dropped.Invalid != 1 {
		t.Fatalf("after garbage: latched %v/%v, invalid %d/%d, want no latch and 6/1 invalid", st.Latched, st.RTCP.Latched, st.Dropped.Invalid, st.RTCP.Dropped.Invalid)
	}
	pkt := a.sendRTP(r.Local(0))
	expect(t, b.rtp, pkt, r.Local(1))
	pkt = b.sendRTP(r.Local(1))
	expect(t, a.rtp, pkt, r.Local(0))
	st := r.Stats()
	if st[0].Latched != a.addr {
		t.Fatalf("side 0 latched %v, want the phone %v", st[0].Latched, a.addr)
	}
	checkBalance(t, st)
}

// RTCP on port+1 is relayed with its own latch, learn and strict.
func TestRTCPRelayed(t *testing.T) {
	for _, mode := range []Latching{Learn, Strict} {
		t.Run(string(mode), func(t *testing.T) {
			r := newRelay(t, Config{Mode: newMode(mode).get})
			a, b, x := newPhone(t, 0xa), newPhone(t, 0xb), newPhone(t, 0xee)
			r.SetRemote(0, a.addr)
			r.SetRemote(1, b.addr)
			rep := a.sendRTCP(r.Local(0))
			expect(t, b.rtcp, rep, rtcpOf(r.Local(1)))
			rep = b.sendRTCP(r.Local(1))
			expect(t, a.rtcp, rep, rtcpOf(r.Local(0)))
			// A stranger's report does not get through.
			x.sendRTCP(r.Local(0))
			waitIn(t, r, 0, true, 2)
			expectNothing(t, b.rtcp)

			st := r.Stats()
			checkBalance(t, st)
			if st[0].RTCP.PacketsIn != 2 || st[1].RTCP.PacketsOut != 1 || st[0].RTCP.Dropped.WrongSource != 1 {
				t.Fatalf("rtcp side 0 %+v, side 1 out %d", st[0].RTCP, st[1].RTCP.PacketsOut)
			}
			if st[0].PacketsIn != 0 || st[1].PacketsIn != 0 {
				t.Fatalf("RTCP counted as RTP: %d %d", st[0].PacketsIn, st[1].PacketsIn)
			}
			if st[0].RTCP.SDPRemote != a.rtcA || st[0].RTCP.Local != rtcpOf(r.Local(0)) {
				t.Fatalf("rtcp sdp %v local %v, want %v %v", st[0].RTCP.SDPRemote, st[0].RTCP.Local, a.rtcA, rtcpOf(r.Local(0)))
			}
			if mode == Learn && (st[0].RTCP.Latched != a.rtcA || st[0].Latched.IsValid()) {
				t.Fatalf("rtcp latched %v, rtp latched %v: the latches must be separate", st[0].RTCP.Latched, st[0].Latched)
			}
		})
	}
}

// A phone whose NAT mapping changed (new source port) is followed once the
// old source has been silent for RelatchAfter and the new one keeps
// sending; while the old one talks, the new one is dropped.
func TestRelatchAfterSilence(t *testing.T) {
	r := newRelay(t, Config{RelatchAfter: 500 * time.Millisecond, RelatchPackets: 3})
	a, moved, b := newPhone(t, 0xa), newPhone(t, 0xa), newPhone(t, 0xb)
	r.SetRemote(0, netip.AddrPortFrom(private, 16000))
	r.SetRemote(1, b.addr)

	expect(t, b.rtp, a.sendRTP(r.Local(0)), r.Local(1))
	for range 4 { // however long it sends, the old source is alive: dropped
		moved.sendRTP(r.Local(0))
	}
	waitIn(t, r, 0, false, 5)
	expectNothing(t, b.rtp)
	expect(t, b.rtp, a.sendRTP(r.Local(0)), r.Local(1))

	time.Sleep(700 * time.Millisecond) // the old mapping goes quiet
	moved.sendRTP(r.Local(0))
	moved.sendRTP(r.Local(0))
	waitIn(t, r, 0, false, 8)
	expectNothing(t, b.rtp) // two packets are not "keeps sending"
	expect(t, b.rtp, moved.sendRTP(r.Local(0)), r.Local(1))
	// Now the old source is the stranger, and B's media follows the move.
	a.sendRTP(r.Local(0))
	waitIn(t, r, 0, false, 10)
	expectNothing(t, b.rtp)
	expect(t, moved.rtp, b.sendRTP(r.Local(1)), r.Local(0))

	st := r.Stats()
	checkBalance(t, st)
	if st[0].Latched != moved.addr || st[0].Relatches != 1 || st[0].Dropped.WrongSource != 7 {
		t.Fatalf("latched %v relatches %d wrong source %d; want %v, 1, 7", st[0].Latched, st[0].Relatches, st[0].Dropped.WrongSource, moved.addr)
	}
}

// Re-latching can be switched off: only a new SDP address re-arms it.
func TestRelatchDisabled(t *testing.T) {
	r := newRelay(t, Config{RelatchAfter: -1})
	a, moved, b := newPhone(t, 0xa), newPhone(t, 0xa), newPhone(t, 0xb)
	r.SetRemote(1, b.addr)
	expect(t, b.rtp, a.sendRTP(r.Local(0)), r.Local(1))
	for range 5 {
		moved.sendRTP(r.Local(0))
	}
	waitIn(t, r, 0, false, 6)
	if st := r.Stats()[0]; st.Latched != a.addr || st.Dropped.WrongSource != 5 {
		t.Fatalf("latched %v, wrong source %d", st.Latched, st.Dropped.WrongSource)
	}
	// A re-INVITE with a new address: the next source latches at once.
	r.SetRemote(0, moved.addr)
	expect(t, b.rtp, moved.sendRTP(r.Local(0)), r.Local(1))
	if st := r.Stats()[0]; st.Latched != moved.addr {
		t.Fatalf("after new SDP address latched %v, want %v", st.Latched, moved.addr)
	}
}

// Hold (c=0.0.0.0 or port 0) stops media towards the side; resuming to the
// same address keeps the latch.
func TestHoldAndResume(t *testing.T) {
	r := newRelay(t, Config{})
	a, b := newPhone(t, 0xa), newPhone(t, 0xb)
	sdpB := netip.AddrPortFrom(private, 17000)
	r.SetRemote(0, a.addr)
	r.SetRemote(1, sdpB)
	expect(t, a.rtp, b.sendRTP(r.Local(1)), r.Local(0)) // latches B
	expect(t, b.rtp, a.sendRTP(r.Local(0)), r.Local(1))

	for n, hold := range []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:17000"), netip.AddrPortFrom(private, 0), {}} {
		r.SetRemote(1, hold)
		a.sendRTP(r.Local(0))
		waitIn(t, r, 0, false, uint64(n+2))
		if st := r.Stats(); !st[1].Hold || st[1].SendingTo.IsValid() {
			t.Fatalf("hold %v: hold=%v sending to %v", hold, st[1].Hold, st[1].SendingTo)
		}
	}
	expectNothing(t, b.rtp)
	r.SetRemote(1, sdpB) // resume, same address: B stays latched
	expect(t, b.rtp, a.sendRTP(r.Local(0)), r.Local(1))
	st := r.Stats()
	checkBalance(t, st)
	if st[0].Dropped.Hold != 3 || st[1].Latched != b.addr || st[1].Hold {
		t.Fatalf("dropped for hold %d, side 1 latched %v hold %v", st[0].Dropped.Hold, st[1].Latched, st[1].Hold)
	}
}

// Until the other side has an SDP address or a latch, packets towards it
// are dropped as "no destination yet"; the first packet from that side
// gives it one.
func TestNoDestinationYet(t *testing.T) {
	r := newRelay(t, Config{})
	a, b := newPhone(t, 0xa), newPhone(t, 0xb)
	a.sendRTP(r.Local(0))
	waitIn(t, r, 0, false, 1)
	if st := r.Stats(); st[0].Dropped != (Drops{Total: 1, NoDestination: 1}) || st[1].SendingTo.IsValid() {
		t.Fatalf("side 0 dropped %+v, side 1 sending to %v", st[0].Dropped, st[1].SendingTo)
	}
	expect(t, a.rtp, b.sendRTP(r.Local(1)), r.Local(0))
	expect(t, b.rtp, a.sendRTP(r.Local(0)), r.Local(1))
}

// An SDP pointing the relay at its own socket would make it relay to
// itself forever: dropped as a loop.
func TestLoopRefused(t *testing.T) {
	r := newRelay(t, Config{Mode: newMode(Off).get})
	a := newPhone(t, 0xa)
	r.SetRemote(1, r.Local(0))
	a.sendRTP(r.Local(0))
	waitIn(t, r, 0, false, 1)
	time.Sleep(50 * time.Millisecond)
	if st := r.Stats(); st[0].Dropped != (Drops{Total: 1, Loop: 1}) || st[0].PacketsIn != 1 {
		t.Fatalf("stats %+v", st[0])
	}
}

// The mode is read per packet: switching off -> learn mid-call fixes the
// audio without touching the call.
func TestModeSwitchLive(t *testing.T) {
	m := newMode(Off)
	r := newRelay(t, Config{Mode: m.get})
	a, b := newPhone(t, 0xa), newPhone(t, 0xb)
	r.SetRemote(0, netip.AddrPortFrom(private, 16000))
	r.SetRemote(1, netip.AddrPortFrom(private, 17000))
	a.sendRTP(r.Local(0))
	b.sendRTP(r.Local(1))
	waitIn(t, r, 0, false, 1)
	waitIn(t, r, 1, false, 1)
	expectNothing(t, a.rtp)
	expectNothing(t, b.rtp)
	if st := r.Stats(); st[0].LastSource != a.addr || st[0].SendingTo != netip.AddrPortFrom(private, 16000) {
		t.Fatalf("off: last source %v sending to %v", st[0].LastSource, st[0].SendingTo)
	}
	m.set(Learn)
	b.sendRTP(r.Local(1)) // latches B; A not latched yet: to its private SDP
	waitIn(t, r, 1, false, 2)
	expect(t, b.rtp, a.sendRTP(r.Local(0)), r.Local(1))
	expect(t, a.rtp, b.sendRTP(r.Local(1)), r.Local(0))
	if st := r.Stats(); st[0].SendingTo != a.addr || st[1].SendingTo != b.addr {
		t.Fatalf("learn: sending to %v %v", st[0].SendingTo, st[1].SendingTo)
	}
	checkBalance(t, r.Stats())
}

// A peer latched where its SDP said (not NATed) whose SDP moves elsewhere
// (a PBX re-INVITEs it onto its own relay): its packets still in flight
// from the old address are dropped for RelatchAfter, so the side follows
// the new SDP address instead of re-latching onto the one the media left.
// A NATed peer's re-offer keeps the old rule: its next packet latches.
func TestHonestPeerMovedAway(t *testing.T) {
	r := newRelay(t, Config{RelatchAfter: 500 * time.Millisecond})
	a, b, pbx := newPhone(t, 0xa), newPhone(t, 0xb), newPhone(t, 0xc)
	r.SetRemote(0, a.addr)
	r.SetRemote(1, b.addr)
	expect(t, b.rtp, a.sendRTP(r.Local(0)), r.Local(1))
	expect(t, a.rtp, b.sendRTP(r.Local(1)), r.Local(0))

	r.SetRemote(0, pbx.addr)
	a.sendRTP(r.Local(0)) // in flight from before the move
	waitIn(t, r, 0, false, 2)
	expectNothing(t, b.rtp)
	expect(t, pbx.rtp, b.sendRTP(r.Local(1)), r.Local(0))
	if st := r.Stats()[0]; st.Latched.IsValid() || st.Dropped.OldPeer != 1 {
		t.Fatalf("after the move: latched %v, old_peer %d; want no latch, 1", st.Latched, st.Dropped.OldPeer)
	}
	// Moving back ends the drain at once.
	r.SetRemote(0, a.addr)
	expect(t, b.rtp, a.sendRTP(r.Local(0)), r.Local(1))

	checkBalance(t, r.Stats())

	// NATed: latched a, its SDP a private address; a re-offer with
	// another private address is followed by a's next packet as before.
	n := newRelay(t, Config{RelatchAfter: 500 * time.Millisecond})
	n.SetRemote(0, netip.AddrPortFrom(private, 16000))
	n.SetRemote(1, b.addr)
	expect(t, b.rtp, a.sendRTP(n.Local(0)), n.Local(1))
	n.SetRemote(0, netip.AddrPortFrom(private, 16002))
	expect(t, b.rtp, a.sendRTP(n.Local(0)), n.Local(1))
	st := n.Stats()
	checkBalance(t, st)
	if st[0].Latched != a.addr || st[0].Dropped.OldPeer != 0 {
		t.Fatalf("NATed re-offer: latched %v, old_peer %d", st[0].Latched, st[0].Dropped.OldPeer)
	}
}
