package b2bua

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/torturetest"
	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipcheck"
	"github.com/siplab/siplab/sip/sipdialog"
)

// The PBX's answer to each RFC 4475 message over real sockets: the
// invalid ones refused with a reason naming the bad part, the valid ones
// processed (their numbers are in no dial plan: 404), the responses
// unanswered; none of them becomes a call.
func TestTortureMessagesOverTheWire(t *testing.T) {
	var labs []*lab
	torturetest.Check(t, func(t *testing.T) netip.AddrPort {
		l := newLab(t, labOpts{})
		labs = append(labs, l)
		return l.pbx.LocalAddr()
	}, torturetest.PBX)
	for _, l := range labs {
		for _, c := range l.pbx.Status().Calls {
			t.Errorf("torture message became call %s (%s dialled %s)", c.ID, c.Caller, c.Dialled)
		}
	}
}

// FuzzRequest: whatever arrives, the PBX's request decisions never panic,
// refuse with a real status code, and the running PBX fed the same bytes
// keeps answering.
func FuzzRequest(f *testing.F) {
	for _, m := range torturetest.Load(f) {
		f.Add(m.Raw)
	}
	sdp, _ := sdpneg.Build(sdpneg.Description{Addr: netip.MustParseAddr("127.0.9.91"), Port: 4000,
		Codecs: []sdpneg.Codec{sdpneg.PCMU}, DTMFPayloadType: 101, SessionID: 1, SessionVersion: 1})
	for _, method := range []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE", "MESSAGE", "REFER"} {
		for _, to := range []string{"", ";tag=x"} {
			f.Add([]byte(fmt.Sprintf("%s sip:101@127.0.9.30 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.9.91:5060;branch=z9hG4bKf%s\r\n"+
				"Max-Forwards: 70\r\nFrom: <sip:dave@siplab.test>;tag=a\r\nTo: <sip:101@127.0.9.30>%s\r\nCall-ID: fz\r\n"+
				"CSeq: 1 %s\r\nContact: <sip:dave@127.0.9.91>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
				method, method, to, method, len(sdp), sdp)))
		}
	}
	l := newLab(f, labOpts{})
	live, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(l.pbx.LocalAddr()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		live.Close()
		time.Sleep(50 * time.Millisecond) // let the last inputs be handled
		if err := torturetest.Alive(l.pbx.LocalAddr()); err != nil {
			f.Errorf("PBX stopped answering: %v", err)
		}
	})
	dir := sdpneg.SendOnly
	f.Fuzz(func(t *testing.T, data []byte) {
		live.Write(data)
		if dp, err := ParseDialPlan(bytesReader(data)); err == nil {
			// Whatever parses is a usable plan: every number looks up.
			for _, e := range dp.Extensions() {
				if _, ok := dp.Lookup(e.Number); !ok {
					t.Fatalf("extension %s does not look up", e.Number)
				}
			}
		}
		req := torturetest.Request(data)
		if req == nil {
			return
		}
		if p := sipcheck.Request(req, sipcheck.Options{Role: sipcheck.UAS}); p != nil {
			return
		}
		if req.IsInvite() && sipdialog.ToTag(req) == "" {
			if _, _, ref := l.pbx.admitInvite(req); ref != nil && (ref.code < 300 || ref.code > 699) {
				t.Fatalf("refusal with status %d", ref.code)
			}
		}
		if len(req.Body()) > 0 {
			o := newOrigin()
			out, err := rewriteSDP(req.Body(), &o, rewrite{addr: netip.MustParseAddr(pbxIP), port: 40000, dir: &dir})
			if err == nil {
				r, err := sdpneg.Parse(out)
				if err != nil {
					t.Fatalf("rewritten SDP does not parse: %v\n%s", err, out)
				}
				if r.Port != 0 && (r.Addr.String() != pbxIP || r.Port != 40000 || r.Direction != dir) {
					t.Fatalf("rewrite left %v:%d %s", r.Addr, r.Port, r.Direction)
				}
			}
		}
	})
}

func bytesReader(b []byte) *strings.Reader { return strings.NewReader(string(b)) }
