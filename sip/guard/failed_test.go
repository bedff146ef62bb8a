package guard

import (
	"errors"
	"io"
	"log/slog"
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

func TestAuthGuardSettings(t *testing.T) {
	a, err := NewAuthGuard(AuthOnly(), slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, value, want string }{
		{"auth_fail_limit", "20", "20"},
		{"AUTH_FAIL_WINDOW", "90", "1m30s"},
		{"auth_block_for", "15m", "15m0s"},
		{"auth_fail_limit", "0", "0"},
	}
	for _, tc := range tests {
		if err := a.Set(tc.name, tc.value); err != nil {
			t.Fatalf("set %s %s: %v", tc.name, tc.value, err)
		}
		if got, err := a.Get(tc.name); err != nil || got != tc.want {
			t.Fatalf("get %s: %q %v, want %q", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range [][2]string{{"auth_fail_limit", "-1"}, {"auth_fail_limit", "x"}, {"auth_block_for", "0"}, {"auth_fail_window", "-5"}, {"auth_block_for", "soon"}} {
		before := a.Settings()
		if err := a.Set(bad[0], bad[1]); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("set %s %s: %v, want ErrInvalidConfig", bad[0], bad[1], err)
		}
		if a.Settings() != before {
			t.Fatalf("a refused value changed the settings")
		}
	}
	if err := a.Set("burst", "3"); !errors.Is(err, ErrUnknownSetting) {
		t.Fatalf("unknown setting: %v", err)
	}
	if _, err := a.Get("burst"); !errors.Is(err, ErrUnknownSetting) {
		t.Fatalf("get unknown setting: %v", err)
	}
}
