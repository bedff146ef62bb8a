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
	}, map[string]int{
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
		"invalid/cparam01.dat":   405,
		"invalid/cparam02.dat":   405,
		"invalid/escruri.dat":    400,
		"invalid/insuf.dat":      400,
		"invalid/inv2543.dat":    180, // rings: a stranger's INVITE, auto-answer off
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
		"invalid/regaut01.dat":   405,
		"invalid/regbadct.dat":   400,
		"invalid/regescrt.dat":   400,
		"invalid/scalar02.dat":   400,
		"invalid/scalarlg.dat":   torturetest.Silent, // a response
		"invalid/sdp01.dat":      406,
		"invalid/trws.dat":       400,
		"invalid/unkscm.dat":     416,
		"invalid/unksm2.dat":     416,
		"invalid/zeromf.dat":     483,
		"valid/dblreq.dat":       405,
		"valid/esc01.dat":        180, // rings
		"valid/esc02.dat":        405,
		"valid/escnull.dat":      405,
		"valid/intmeth.dat":      405,
		"valid/longreq.dat":      180, // rings
		"valid/lwsdisp.dat":      200,
		"valid/mpart01.dat":      415,
		"valid/noreason.dat":     torturetest.Silent, // a response
		"valid/semiuri.dat":      200,
		"valid/transports.dat":   200,
		"valid/unreason.dat":     torturetest.Silent, // a response
		"valid/wsinv.dat":        481,                // processed: its To tag names no dialog of ours
	})
	for _, p := range phones {
		for _, c := range p.Status().Calls {
			if c.State == StateConfirmed {
				t.Errorf("a torture message left a confirmed call: %+v", c)
			}
		}
	}
}
