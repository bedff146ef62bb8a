package sbc

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/torturetest"
)

// Each face of the SBC answers each RFC 4475 message over real sockets:
// the invalid ones refused with a reason naming the bad part, the valid
// ones processed, the responses unanswered; none of them registers
// anything or becomes an answered call.
func TestTortureMessagesBothSides(t *testing.T) {
	for _, side := range []struct {
		name string
		addr func(*SBC) netip.AddrPort
		want torturetest.Daemon
	}{
		{"access", (*SBC).AccessAddr, torturetest.SBCAccess},
		{"core", (*SBC).CoreAddr, torturetest.SBCCore},
	} {
		t.Run(side.name, func(t *testing.T) {
			var labs []*lab
			torturetest.Check(t, func(t *testing.T) netip.AddrPort {
				l := newLab(t, labOpts{})
				labs = append(labs, l)
				return side.addr(l.sbc)
			}, side.want)
			for _, l := range labs {
				st := l.sbc.Status()
				if len(st.Registrations) != 0 {
					t.Errorf("torture messages registered %+v", st.Registrations)
				}
				for _, c := range st.Calls {
					if c.State == StateAnswered || !c.Answered.IsZero() {
						t.Errorf("torture message became an answered call %+v", c)
					}
				}
			}
		})
	}
}

// FuzzSBCRequest: whatever arrives on either face, the SBC never panics
// and keeps answering; the SDP rewrite either refuses an SDP or yields one
// that points at the relay only.
func FuzzSBCRequest(f *testing.F) {
	for _, m := range torturetest.Load(f) {
		f.Add(m.Raw)
	}
	sdp := "v=0\r\no=x 1 1 IN IP4 192.168.77.7\r\ns=-\r\nc=IN IP4 192.168.77.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP4 192.168.77.7\r\n"
	for _, method := range []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE", "MESSAGE", "REGISTER", "NOTIFY"} {
		for _, to := range []string{"", ";tag=x"} {
			f.Add([]byte(fmt.Sprintf("%s sip:bob@%s;sbc=zz SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.77.7:5060;branch=z9hG4bKf%s\r\n"+
				"Max-Forwards: 70\r\nFrom: <sip:alice@siplab.test>;tag=a\r\nTo: <sip:bob@siplab.test>%s\r\nCall-ID: fz\r\n"+
				"CSeq: 1 %s\r\nContact: <sip:alice@192.168.77.7>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
				method, sbcAccess, method, to, method, len(sdp), sdp)))
		}
	}
	l := newLab(f, labOpts{})
	var lives []*net.UDPConn
	for _, a := range []netip.AddrPort{l.sbc.AccessAddr(), l.sbc.CoreAddr()} {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(a))
		if err != nil {
			f.Fatal(err)
		}
		lives = append(lives, c)
	}
	f.Cleanup(func() {
		time.Sleep(50 * time.Millisecond)
		for i, a := range []netip.AddrPort{l.sbc.AccessAddr(), l.sbc.CoreAddr()} {
			lives[i].Close()
			if err := torturetest.Alive(a); err != nil {
				f.Errorf("SBC %s stopped answering: %v", a, err)
			}
		}
	})
	relay := netip.MustParseAddrPort(sbcAccess + ":20000")
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range lives {
			c.Write(data)
		}
		req := torturetest.Request(data)
		if req == nil || len(req.Body()) == 0 {
			return
		}
		out, info, err := rewriteSDP(req.Body(), relay, false)
		if err != nil {
			return
		}
		again, info2, err := rewriteSDP(out, relay, false)
		if err != nil {
			t.Fatalf("rewritten SDP refused: %v\n%s", err, out)
		}
		if info2.Addr.Addr() != relay.Addr() || (info.Addr.Port() != 0 && info2.Addr.Port() != relay.Port()) {
			t.Fatalf("rewrite left %v, want %v\n%s", info2.Addr, relay, out)
		}
		if string(again) != string(out) {
			t.Fatalf("rewrite not idempotent:\n%s\n---\n%s", out, again)
		}
	})
}
