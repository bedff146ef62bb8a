package carrier_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/sip/sipnet"
)

// request sends an initial request from s with the given Route lines and
// returns the final response.
func request(s *siptest.RawUDP, to netip.AddrPort, method, ruri string, routes ...string) *sip.Response {
	return s.Final(to, siptest.Stranger(method, ruri, siptest.Via(s.Addr), s.Addr, "", routes...))
}

// The carrier terminates calls and relays nothing: a stranger's request
// is refused by the source ACL, and even its trusted peer's initial
// request with a Route to somewhere else gets 403 naming it; the target
// hears nothing either way. A Route naming the carrier itself is fine.
func TestCarrierRefusesRelay(t *testing.T) {
	tr := newTrunk(t, sipnet.UDP, nil)
	car := tr.cep.Addr()
	victim := siptest.NewRawUDP(t, "127.0.40.75")
	route := "<sip:" + victim.Addr.String() + ";lr>"
	for _, method := range []string{"OPTIONS", "MESSAGE", "INVITE"} {
		t.Run("stranger "+method, func(t *testing.T) {
			s := siptest.NewRawUDP(t, strangerIP)
			if res := request(s, car, method, "sip:someone@example.net", route); res.StatusCode != 403 {
				t.Errorf("got %d %s, want 403", res.StatusCode, res.Reason)
			}
			victim.Silent(300 * time.Millisecond)
		})
		t.Run("trusted peer "+method, func(t *testing.T) {
			s := siptest.NewRawUDP(t, sbcIP)
			res := request(s, car, method, "sip:+15550100@"+car.String(), route)
			want := "Relaying Denied: Route to " + victim.Addr.String() + " not allowed"
			if res.StatusCode != 403 || res.Reason != want {
				t.Errorf("got %d %q, want 403 %q", res.StatusCode, res.Reason, want)
			}
			victim.Silent(300 * time.Millisecond)
		})
	}
	t.Run("own Route passes", func(t *testing.T) {
		s := siptest.NewRawUDP(t, sbcIP)
		if res := request(s, car, "OPTIONS", "sip:"+car.String(), "<sip:"+car.String()+";lr>"); res.StatusCode != 200 {
			t.Errorf("got %d %s, want 200", res.StatusCode, res.Reason)
		}
	})
}
