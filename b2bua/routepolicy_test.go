package b2bua

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/sip/sdpneg"
)

// stranger writes an initial request from fluffy@example.com, as the
// issue's probe did, with the given Route lines and an SDP offer on
// INVITE.
func stranger(u *rawUA, method, ruri string, routes ...string) string {
	sdp := ""
	if method == "INVITE" {
		sdp = u.sdp(sdpneg.SendRecv)
	}
	return siptest.Stranger(method, ruri, u.via(), u.addr, sdp, routes...)
}

// The PBX follows its dial plan, never a caller's Route: a stranger's
// initial request preloading a Route elsewhere gets 403 naming it and the
// target hears nothing; a stranger dialling a trunk number is refused
// before the trunk hears anything (toll fraud). A Route naming the PBX
// itself, and a platform user's trunk call (TestCallOutThroughTrunk),
// still work.
func TestPBXRefusesRelay(t *testing.T) {
	l, trunk := newTrunkLab(t, "carrier", "")
	pbx := l.pbx.LocalAddr()
	victim := newRawUA(t, "127.0.9.75", "victim")
	route := "<sip:" + victim.addr.String() + ";lr>"

	for _, tc := range []struct{ method, ruri string }{
		{"OPTIONS", "sip:someone@example.net"},
		{"MESSAGE", "sip:someone@example.net"},
		{"INVITE", "sip:someone@example.net"},
		{"INVITE", "sip:100@" + pbx.String()}, // a real extension
		{"SUBSCRIBE", "sip:100@" + pbx.String()},
		{"REFER", "sip:100@" + pbx.String()},
	} {
		t.Run(tc.method+" "+tc.ruri, func(t *testing.T) {
			u := newRawUA(t, "127.0.9.96", "fluffy")
			u.send(pbx, stranger(u, tc.method, tc.ruri, route))
			res := u.response(sip.RequestMethod(tc.method), 200, 5*time.Second)
			want := "Relaying Denied: Route to " + victim.addr.String() + " not allowed"
			if res.StatusCode != 403 || res.Reason != want {
				t.Errorf("got %d %q, want 403 %q", res.StatusCode, res.Reason, want)
			}
			if got := victim.quietFor(300 * time.Millisecond); len(got) > 0 {
				t.Errorf("relay target got %d messages, first %s", len(got), strings.SplitN(got[0].String(), "\r\n", 2)[0])
			}
		})
	}
	t.Run("stranger dials the trunk", func(t *testing.T) {
		u := newRawUA(t, "127.0.9.96", "fluffy")
		u.startMedia(callerTone)
		u.send(pbx, stranger(u, "INVITE", "sip:+15551234567@"+pbx.String()))
		res := u.response(sip.INVITE, 200, 5*time.Second)
		if res.StatusCode != 403 {
			t.Errorf("got %d %s, want 403", res.StatusCode, res.Reason)
		}
		if got := trunk.quietFor(300 * time.Millisecond); len(got) > 0 {
			t.Errorf("the trunk got %d messages, first %s", len(got), strings.SplitN(got[0].String(), "\r\n", 2)[0])
		}
	})
	t.Run("own Route passes", func(t *testing.T) {
		u := newRawUA(t, "127.0.9.96", "fluffy")
		u.send(pbx, stranger(u, "OPTIONS", "sip:"+pbx.String(), "<sip:"+pbx.String()+";lr>"))
		if res := u.response(sip.OPTIONS, 200, 5*time.Second); res.StatusCode != 200 {
			t.Errorf("got %d %s, want 200", res.StatusCode, res.Reason)
		}
	})
}
