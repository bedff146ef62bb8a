package natroutercli

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/siplab/siplab/natrouter"
)

// A change that flushed mappings lists each one, with the host's name
// when known: the phones that are unreachable until they send again.
func TestWriteSetResultNamesDroppedMappings(t *testing.T) {
	res := natrouter.SetResult{Flushed: 4, Dropped: []natrouter.Mapping{
		{Proto: "udp", Inside: netip.MustParseAddrPort("192.168.2.50:5060"), Outside: netip.MustParseAddrPort("203.0.113.3:5060"), Remote: netip.MustParseAddrPort("203.0.113.10:5060"), Translated: true},
		{Proto: "udp", Inside: netip.MustParseAddrPort("192.168.2.51:5060"), Outside: netip.MustParseAddrPort("203.0.113.3:1024"), Remote: netip.MustParseAddrPort("203.0.113.10:5060"), Translated: true},
	}}
	res.Status.Preset.Name = "port-restricted"
	res.Status.PinholeSeconds = 30
	res.Status.ALG = "off"
	var b strings.Builder
	WriteSetResult(&b, res, map[string]string{"192.168.2.51": "carol", "192.168.2.50": "bob"})
	out := b.String()
	t.Log("\n" + out)
	for _, want := range []string{"pinhole 30s", "flushed 4", "dropped 2 NAT mapping(s)", "192.168.2.51:5060 (carol)", "-> 203.0.113.3:1024", "192.168.2.50:5060 (bob)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	WriteSetResult(&b, natrouter.SetResult{Status: res.Status}, nil)
	if strings.Contains(b.String(), "dropped") {
		t.Errorf("nothing dropped, yet:\n%s", b.String())
	}
}
