package uaclient

import (
	"testing"

	"github.com/siplab/siplab/internal/torturetest"
)

// The phone, as a UAS, must survive every RFC 4475 message and refuse the
// invalid ones; a valid INVITE among them must not leave it in a call it
// cannot leave (they are from strangers, so auto-answer stays off).
func TestTortureMessages(t *testing.T) {
	ep := listen(t, "127.0.0.7")
	p := startPhone(t, Config{Name: "victim", Endpoint: ep})
	results := torturetest.Run(t, ep.Addr())
	for name, want := range map[string]int{
		"invalid/zeromf.dat":  483,
		"invalid/unkscm.dat":  416,
		"invalid/bext01.dat":  420,
		"invalid/sdp01.dat":   406,
		"invalid/invut.dat":   415,
		"invalid/insuf.dat":   400,
		"invalid/escruri.dat": 400,
	} {
		if got := results[name].Code; got != want {
			t.Errorf("%s: got %d, want %d", name, got, want)
		}
	}
	for _, c := range p.Status().Calls {
		if c.State == StateConfirmed {
			t.Errorf("a torture message left a confirmed call: %+v", c)
		}
	}
}
