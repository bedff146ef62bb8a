package registrar

import (
	"testing"

	"github.com/siplab/siplab/internal/torturetest"
)

// Over real sockets: every torture message is survived, the invalid ones
// refused, and none of them creates a binding.
func TestTortureMessagesOverTheWire(t *testing.T) {
	cfg := baseConfig(t, newClock())
	r := newRegistrar(t, cfg)
	addr := serveRegistrar(t, r)
	results := torturetest.Run(t, addr)
	for name, want := range map[string]int{
		"invalid/regescrt.dat": 400,
		"invalid/regbadct.dat": 400,
		"invalid/unksm2.dat":   416,
		"invalid/zeromf.dat":   483,
	} {
		if got := results[name].Code; got != want {
			t.Errorf("%s: got %d, want %d", name, got, want)
		}
	}
	if n := len(r.Bindings()); n != 0 {
		t.Fatalf("torture messages created %d bindings", n)
	}
}
