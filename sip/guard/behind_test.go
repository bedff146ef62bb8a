package guard

import (
	"net/netip"
	"testing"
)

func TestBehind(t *testing.T) {
	carrierNet := netip.MustParsePrefix("198.51.100.0/24")
	proxyNet := netip.MustParsePrefix("10.0.0.2/32")
	g, err := Behind(nil, []netip.Prefix{carrierNet}, []netip.Prefix{proxyNet})
	if err != nil {
		t.Fatal(err)
	}
	if g.FailedAuthLimit != AuthOnly().FailedAuthLimit || len(g.Trunks) != 2 || g.Trunks[0] != carrierNet || g.Trunks[1] != proxyNet {
		t.Fatalf("nil policy: got %+v, want AuthOnly trusting both prefixes", g)
	}
	mine := AuthOnly()
	mine.Trunks = make([]netip.Prefix, 1, 4) // room to append into: Behind must not
	mine.Trunks[0] = carrierNet
	g, err = Behind(&mine, []netip.Prefix{proxyNet})
	if err != nil {
		t.Fatal(err)
	}
	if g == &mine || len(mine.Trunks) != 1 || len(g.Trunks) != 2 || mine.Trunks[:2][1] == proxyNet {
		t.Fatalf("caller's Config edited: %+v", mine)
	}
	bad := AuthOnly()
	if _, err := Behind(&bad, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}); err == nil {
		t.Fatal("a trunk of the whole internet passed")
	}
}
