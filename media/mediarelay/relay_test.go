package mediarelay

import (
	"net/netip"
	"testing"
)

// TestModes is the training page's experiment: two phones whose SDP is
// either right or private (a NATed phone writing its LAN address), through
// the relay in each latching mode. a1, b1, a2, b2 are sent in that order;
// then a third party ("intruder") sends to side 0.
func TestModes(t *testing.T) {
	type want struct {
		arrive   [4]bool // a1 at B, b1 at A, a2 at B, b2 at A
		intruder bool    // the intruder's packet reaches B
		drops    [2]Drops
	}
	all := [4]bool{true, true, true, true}
	cases := []struct {
		name    string
		mode    Latching
		private bool
		want    want
	}{
		{"learn private SDP: latching fixes NAT", Learn, true, want{
			// a1 goes to B's private SDP address: B has sent nothing yet.
			arrive: [4]bool{false, true, true, true},
			drops:  [2]Drops{{Total: 2, SendError: 1, WrongSource: 1}, {}},
		}},
		{"learn right SDP", Learn, false, want{
			arrive: all,
			drops:  [2]Drops{{Total: 1, WrongSource: 1}, {}},
		}},
		{"strict right SDP", Strict, false, want{
			arrive: all,
			drops:  [2]Drops{{Total: 1, WrongSource: 1}, {}},
		}},
		{"strict private SDP: every phone packet is from the wrong source", Strict, true, want{
			drops: [2]Drops{{Total: 3, WrongSource: 3}, {Total: 2, WrongSource: 2}},
		}},
		{"off right SDP: anyone may inject", Off, false, want{
			arrive:   all,
			intruder: true,
		}},
		{"off private SDP: no audio either way", Off, true, want{
			drops: [2]Drops{{Total: 3, SendError: 3}, {Total: 2, SendError: 2}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRelay(t, Config{Mode: newMode(tc.mode).get})
			a, b, x := newPhone(t, 0xa), newPhone(t, 0xb), newPhone(t, 0xee)
			sdpA, sdpB := a.addr, b.addr
			if tc.private {
				sdpA, sdpB = netip.AddrPortFrom(private, 16000), netip.AddrPortFrom(private, 17000)
			}
			r.SetRemote(0, sdpA)
			r.SetRemote(1, sdpB)

			var delivered [2]uint64 // packets out of side 0 (to A), side 1 (to B)
			step := func(n int, from *phone, side int, to *phone) {
				pkt := from.sendRTP(r.Local(side))
				if tc.want.arrive[n] {
					expect(t, to.rtp, pkt, r.Local(1-side))
					delivered[1-side]++
				} else {
					waitIn(t, r, side, false, uint64(n/2+1))
				}
			}
			step(0, a, 0, b)
			step(1, b, 1, a)
			step(2, a, 0, b)
			step(3, b, 1, a)
			pkt := x.sendRTP(r.Local(0))
			if tc.want.intruder {
				expect(t, b.rtp, pkt, r.Local(1))
				delivered[1]++
			} else {
				waitIn(t, r, 0, false, 3)
			}
			expectNothing(t, a.rtp)
			expectNothing(t, b.rtp)

			st := r.Stats()
			checkBalance(t, st)
			for i := range st {
				if st[i].PacketsIn != uint64(3-i) || st[i].BytesIn != uint64(172*(3-i)) {
					t.Errorf("side %d: in %d pkts %d bytes, want %d pkts", i, st[i].PacketsIn, st[i].BytesIn, 3-i)
				}
				if st[i].PacketsOut != delivered[i] || st[i].BytesOut != 172*delivered[i] {
					t.Errorf("side %d: out %d pkts %d bytes, want %d pkts", i, st[i].PacketsOut, st[i].BytesOut, delivered[i])
				}
				if st[i].Dropped != tc.want.drops[i] {
					t.Errorf("side %d: dropped %+v, want %+v", i, st[i].Dropped, tc.want.drops[i])
				}
				if st[i].FirstPacket.IsZero() || st[i].LastPacket.Before(st[i].FirstPacket) {
					t.Errorf("side %d: first/last packet %v %v", i, st[i].FirstPacket, st[i].LastPacket)
				}
			}
			// Where the relay sends each side's media now.
			wantTo := [2]netip.AddrPort{sdpA, sdpB}
			if tc.mode == Learn {
				wantTo = [2]netip.AddrPort{a.addr, b.addr}
				if st[0].Latched != a.addr || st[1].Latched != b.addr {
					t.Errorf("latched %v %v, want the phones' real sockets %v %v", st[0].Latched, st[1].Latched, a.addr, b.addr)
				}
			} else if st[0].Latched.IsValid() || st[1].Latched.IsValid() {
				t.Errorf("mode %s latched %v %v", tc.mode, st[0].Latched, st[1].Latched)
			}
			for i := range st {
				if st[i].SendingTo != wantTo[i] || st[i].SDPRemote != [2]netip.AddrPort{sdpA, sdpB}[i] {
					t.Errorf("side %d: sending to %v (sdp %v), want %v", i, st[i].SendingTo, st[i].SDPRemote, wantTo[i])
				}
			}
		})
	}
}
