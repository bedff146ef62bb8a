package uaclient

import (
	"net/netip"
	"testing"

	"github.com/siplab/siplab/internal/torturetest"
)

// The phone's answer, as a UAS, to each RFC 4475 message: the invalid
// ones refused with a reason naming the bad part, the valid ones
// processed, the responses unanswered; a valid INVITE among them must not
// leave it in a call it cannot leave (they are from strangers, so
// auto-answer stays off).
func TestTortureMessages(t *testing.T) {
	var phones []*Phone
	torturetest.Check(t, func(t *testing.T) netip.AddrPort {
		ep := listen(t, "127.0.0.7")
		phones = append(phones, startPhone(t, Config{Name: "victim", Endpoint: ep}))
		return ep.Addr()
	}, torturetest.Phone)
	for _, p := range phones {
		for _, c := range p.Status().Calls {
			if c.State == StateConfirmed {
				t.Errorf("a torture message left a confirmed call: %+v", c)
			}
		}
	}
}
