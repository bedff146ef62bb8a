package hops

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/siplab/siplab/trace/capture/capturetest"
	"github.com/siplab/siplab/trace/ladder"
)

func load(t *testing.T, fixture string) *ladder.Call {
	t.Helper()
	c, err := ladder.Find(ladder.Build(capturetest.Fixture(t, fixture), ladder.Lab()), "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The answered INVITE, from alice's LAN to bob's: NAT changes the source
// address on router-a, the proxy adds its Via and Record-Route.
func TestInviteAcrossBothNATs(t *testing.T) {
	c := load(t, "normal")
	tr, err := Of(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Label != "INVITE" || len(tr.Copies) < 4 {
		t.Fatalf("%s with %d copies, want the INVITE at 4+ points", tr.Label, len(tr.Copies))
	}
	first, last := tr.Copies[0], tr.Copies[len(tr.Copies)-1]
	if !first.Src.Addr().IsPrivate() || first.Src.Addr() != netip.MustParseAddr("192.168.1.50") {
		t.Errorf("first copy from %s, want alice's LAN", first.Src)
	}
	if last.Dst.Addr() != netip.MustParseAddr("192.168.2.50") {
		t.Errorf("last copy to %s, want bob's LAN", last.Dst)
	}
	nat := tr.Changes[0]
	if nat.Wire == "" || len(nat.Added)+len(nat.Removed) != 0 {
		t.Errorf("router-a should change addresses only: %+v", nat)
	}
	var viaAdded bool
	for _, ch := range tr.Changes {
		for _, l := range ch.Added {
			if strings.HasPrefix(l, "Via:") && strings.Contains(l, "203.0.113.10") {
				viaAdded = true
			}
		}
	}
	if !viaAdded {
		t.Errorf("no hop added the proxy's Via: %+v", tr.Changes)
	}
	var b strings.Builder
	Write(&b, tr)
	if !strings.Contains(b.String(), "What changed on the way:") || !strings.Contains(b.String(), "unchanged, byte for byte") {
		t.Errorf("text:\n%s", b.String())
	}
}

func TestOutOfRange(t *testing.T) {
	c := load(t, "normal")
	if _, err := Of(c, len(c.Messages)+1); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("err %v", err)
	}
	// A response follows too: the 200 OK from bob back to alice.
	for i, m := range c.Messages {
		if !m.Request && m.Status == 200 && m.Method == "INVITE" {
			tr, err := Of(c, i+1)
			if err != nil || len(tr.Copies) < 2 || tr.Label != "200 OK" {
				t.Fatalf("200 OK: %+v %v", tr, err)
			}
			break
		}
	}
}
