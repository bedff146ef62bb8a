package guard

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzAdmit: any method, User-Agent, status and clock jitter from a few
// sources. Nothing panics, a refusal always has a reason, a retry time is
// never negative, and the table stays under its cap.
func FuzzAdmit(f *testing.F) {
	f.Add("REGISTER", "Linphone", 401, uint8(0), int16(10))
	f.Add("INVITE", "friendly-scanner", 200, uint8(1), int16(-5))
	f.Add("register", "\x00\xff", 407, uint8(255), int16(0))
	f.Add("", "", 0, uint8(7), int16(1000))
	g := newGuard(f, func(c *Config) { c.MaxSources = 16 })
	now := t0
	f.Fuzz(func(t *testing.T, method, ua string, status int, src uint8, step int16) {
		now = now.Add(time.Duration(step) * time.Millisecond) // may go backwards
		a := netip.AddrFrom4([4]byte{10, 0, 0, src % 40})
		g.ObserveResponse(a, method, status, now)
		v := g.Admit(a, method, ua, now)
		if !v.Allow && v.Reason == "" {
			t.Fatalf("refused without a reason: %+v", v)
		}
		if v.RetryAfter < 0 {
			t.Fatalf("negative retry: %+v", v)
		}
		if n := g.Stats().Sources; n > 16 {
			t.Fatalf("%d sources tracked, cap 16", n)
		}
		g.Blocked(now)
	})
}
