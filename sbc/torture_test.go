package sbc

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

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
		want map[string]int
	}{
		{"access", (*SBC).AccessAddr, map[string]int{
			"invalid/badaspec.dat":   400,
			"invalid/badbranch.dat":  400,
			"invalid/baddate.dat":    400,
			"invalid/baddn.dat":      400,
			"invalid/badinv01.dat":   400,
			"invalid/badvers.dat":    505,
			"invalid/bcast.dat":      torturetest.Silent, // a response
			"invalid/bext01.dat":     420,
			"invalid/bigcode.dat":    torturetest.Silent, // a response
			"invalid/clerr.dat":      400,
			"invalid/cparam01.dat":   404,
			"invalid/cparam02.dat":   404,
			"invalid/escruri.dat":    400,
			"invalid/insuf.dat":      400,
			"invalid/inv2543.dat":    403, // processed: not a domain the SBC serves
			"invalid/invut.dat":      415,
			"invalid/ltgtruri.dat":   400,
			"invalid/lwsruri.dat":    400,
			"invalid/lwsstart.dat":   400,
			"invalid/mcl01.dat":      400,
			"invalid/mismatch01.dat": 400,
			"invalid/mismatch02.dat": 400,
			"invalid/multi01.dat":    400,
			"invalid/ncl.dat":        400,
			"invalid/novelsc.dat":    416,
			"invalid/quotbal.dat":    400,
			"invalid/regaut01.dat":   404,
			"invalid/regbadct.dat":   400,
			"invalid/regescrt.dat":   400,
			"invalid/scalar02.dat":   400,
			"invalid/scalarlg.dat":   torturetest.Silent, // a response
			"invalid/sdp01.dat":      406,
			"invalid/trws.dat":       400,
			"invalid/unkscm.dat":     416,
			"invalid/unksm2.dat":     416,
			"invalid/zeromf.dat":     483,
			"valid/dblreq.dat":       404,
			"valid/esc01.dat":        403,
			"valid/esc02.dat":        501,
			"valid/escnull.dat":      404,
			"valid/intmeth.dat":      501,
			"valid/longreq.dat":      403,
			"valid/lwsdisp.dat":      403,
			"valid/mpart01.dat":      415,
			"valid/noreason.dat":     torturetest.Silent, // a response
			"valid/semiuri.dat":      403,
			"valid/transports.dat":   403,
			"valid/unreason.dat":     torturetest.Silent, // a response
			"valid/wsinv.dat":        481,                // processed: its To tag names no dialog of ours
		}},
		{"core", (*SBC).CoreAddr, map[string]int{
			"invalid/badaspec.dat":   400,
			"invalid/badbranch.dat":  400,
			"invalid/baddate.dat":    400,
			"invalid/baddn.dat":      400,
			"invalid/badinv01.dat":   400,
			"invalid/badvers.dat":    505,
			"invalid/bcast.dat":      torturetest.Silent, // a response
			"invalid/bext01.dat":     420,
			"invalid/bigcode.dat":    torturetest.Silent, // a response
			"invalid/clerr.dat":      400,
			"invalid/cparam01.dat":   403,
			"invalid/cparam02.dat":   403,
			"invalid/escruri.dat":    400,
			"invalid/insuf.dat":      400,
			"invalid/inv2543.dat":    404, // processed: UserB is no registered phone
			"invalid/invut.dat":      415,
			"invalid/ltgtruri.dat":   400,
			"invalid/lwsruri.dat":    400,
			"invalid/lwsstart.dat":   400,
			"invalid/mcl01.dat":      400,
			"invalid/mismatch01.dat": 400,
			"invalid/mismatch02.dat": 400,
			"invalid/multi01.dat":    400,
			"invalid/ncl.dat":        400,
			"invalid/novelsc.dat":    416,
			"invalid/quotbal.dat":    400,
			"invalid/regaut01.dat":   403,
			"invalid/regbadct.dat":   400,
			"invalid/regescrt.dat":   400,
			"invalid/scalar02.dat":   400,
			"invalid/scalarlg.dat":   torturetest.Silent, // a response
			"invalid/sdp01.dat":      406,
			"invalid/trws.dat":       400,
			"invalid/unkscm.dat":     416,
			"invalid/unksm2.dat":     416,
			"invalid/zeromf.dat":     483,
			"valid/dblreq.dat":       403,
			"valid/esc01.dat":        404,
			"valid/esc02.dat":        501,
			"valid/escnull.dat":      403,
			"valid/intmeth.dat":      501,
			"valid/longreq.dat":      404,
			"valid/lwsdisp.dat":      200,
			"valid/mpart01.dat":      415,
			"valid/noreason.dat":     torturetest.Silent, // a response
			"valid/semiuri.dat":      200,
			"valid/transports.dat":   200,
			"valid/unreason.dat":     torturetest.Silent, // a response
			"valid/wsinv.dat":        481,                // processed: its To tag names no dialog of ours
		}},
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
		m, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := m.(*sip.Request)
		if !ok || len(req.Body()) == 0 {
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
