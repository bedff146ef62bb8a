package guard

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The registrar's and proxy's path: Failed counts what they judged, Check
// refuses only blocked sources and keeps no state for the others.
func TestFailedAndCheck(t *testing.T) {
	cfg := AuthOnly()
	cfg.Trunks = []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32")}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	bad, other, trunk := netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("203.0.113.3"), netip.MustParseAddr("10.0.0.5")
	for i := 1; i < cfg.FailedAuthLimit; i++ {
		f := g.Failed(bad, t0.Add(time.Duration(i)*time.Second))
		if f.Fails != i || f.Blocked != nil || f.Limit != 10 {
			t.Fatalf("failure %d: %+v", i, f)
		}
		if v := g.Check(bad, t0.Add(time.Duration(i)*time.Second)); !v.Allow {
			t.Fatalf("refused before the limit: %+v", v)
		}
	}
	now := t0.Add(10 * time.Second)
	f := g.Failed(bad, now)
	if f.Blocked == nil || f.Blocked.Source != bad || !f.Blocked.Until.Equal(now.Add(5*time.Minute)) || !strings.HasPrefix(f.Blocked.Reason, "failed_auth: 10 in 1m0s") {
		t.Fatalf("10th failure: %+v", f)
	}
	if v := g.Check(bad, now.Add(time.Minute)); v.Allow || v.Reason != "blocked: failed_auth: 10 in 1m0s" || v.RetryAfter != 4*time.Minute {
		t.Fatalf("blocked source: %+v", v)
	}
	if v := g.Check(other, now); !v.Allow {
		t.Fatalf("another source refused: %+v", v)
	}
	for range 50 {
		g.Failed(trunk, now)
	}
	if v := g.Check(trunk, now); !v.Allow || v.Reason != "trunk" {
		t.Fatalf("trusted source: %+v", v)
	}
	if b := g.Blocked(now); len(b) != 1 || b[0].Hits != 1 {
		t.Fatalf("blocked list: %+v", b)
	}
	if v := g.Check(bad, now.Add(5*time.Minute)); !v.Allow {
		t.Fatalf("block did not expire: %+v", v)
	}
	// After the block the source starts over.
	if f := g.Failed(bad, now.Add(5*time.Minute+time.Second)); f.Fails != 1 || f.Blocked != nil {
		t.Fatalf("after the block: %+v", f)
	}
	// Check creates no state: only the sources that failed are tracked.
	for i := range 1000 {
		g.Check(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), now)
	}
	if st := g.Stats(); st.Sources != 1 {
		t.Fatalf("sources tracked: %d, want 1 (the failing one)", st.Sources)
	}
}

func TestFailedWindow(t *testing.T) {
	g, err := New(AuthOnly())
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddr("203.0.113.9")
	// 9 failures, then the window passes: the count starts over.
	for i := range 9 {
		g.Failed(src, t0.Add(time.Duration(i)*time.Second))
	}
	if f := g.Failed(src, t0.Add(61*time.Second)); f.Fails != 1 || f.Blocked != nil {
		t.Fatalf("after the window: %+v", f)
	}
	cfg := AuthOnly()
	cfg.FailedAuthLimit = 0
	if err := g.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if f := g.Failed(src, t0.Add(62*time.Second)); f.Blocked != nil {
			t.Fatalf("counting is off but blocked: %+v", f)
		}
	}
}
