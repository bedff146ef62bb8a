package registrar

import (
	"net/netip"
	"testing"

	"github.com/siplab/siplab/internal/torturetest"
)

// The registrar's answer to each RFC 4475 message over real sockets: the
// invalid ones refused with a reason naming the bad part, the valid ones
// processed (REGISTERs for a domain it does not serve: 404; other methods:
// 405), the responses unanswered; none creates a binding.
func TestTortureMessagesOverTheWire(t *testing.T) {
	var regs []*Registrar
	torturetest.Check(t, func(t *testing.T) netip.AddrPort {
		r := newRegistrar(t, baseConfig(t, newClock()))
		regs = append(regs, r)
		return serveRegistrar(t, r)
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
		"invalid/cparam01.dat":   404,
		"invalid/cparam02.dat":   404,
		"invalid/escruri.dat":    400,
		"invalid/insuf.dat":      400,
		"invalid/inv2543.dat":    405, // accepted: an INVITE at a registrar
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
		"valid/esc01.dat":        405,
		"valid/esc02.dat":        405,
		"valid/escnull.dat":      404,
		"valid/intmeth.dat":      405,
		"valid/longreq.dat":      405,
		"valid/lwsdisp.dat":      200,
		"valid/mpart01.dat":      415,
		"valid/noreason.dat":     torturetest.Silent, // a response
		"valid/semiuri.dat":      200,
		"valid/transports.dat":   200,
		"valid/unreason.dat":     torturetest.Silent, // a response
		"valid/wsinv.dat":        405,                // accepted: an INVITE at a registrar
	})
	for _, r := range regs {
		if n := len(r.Bindings()); n != 0 {
			t.Fatalf("torture messages created %d bindings", n)
		}
	}
}
