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
	}, torturetest.Registrar)
	for _, r := range regs {
		if n := len(r.Bindings()); n != 0 {
			t.Fatalf("torture messages created %d bindings", n)
		}
	}
}
