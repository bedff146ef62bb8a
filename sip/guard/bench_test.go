package guard

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkAdmit: one phone registering (the common case), a spray of new
// sources (the attack: insert + evict at the cap), and parallel callers.
func BenchmarkAdmit(b *testing.B) {
	b.Run("one source", func(b *testing.B) {
		g := newGuard(b, nil)
		src := netip.MustParseAddr(phone)
		now := t0
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Second) // never rate-limited
			g.Admit(src, "REGISTER", "Linphone/5.2.0 (belle-sip/5.2.0)", now)
		}
	})
	b.Run("spray at the cap", func(b *testing.B) {
		g := newGuard(b, func(c *Config) { c.MaxSources = 4096 })
		now := t0
		i := uint32(0)
		b.ReportAllocs()
		for b.Loop() {
			i++
			now = now.Add(time.Microsecond)
			g.Admit(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), "INVITE", "", now)
		}
		if g.Stats().Sources > 4096 {
			b.Fatal("over the cap")
		}
	})
	b.Run("flood from a blocked source", func(b *testing.B) {
		g := newGuard(b, nil)
		src := netip.MustParseAddr(attacker)
		g.Admit(src, "OPTIONS", "friendly-scanner", t0)
		b.ReportAllocs()
		for b.Loop() {
			if g.Admit(src, "REGISTER", "friendly-scanner", t0).Allow {
				b.Fatal("blocked source admitted")
			}
		}
	})
	b.Run("rate-limited flood", func(b *testing.B) {
		g := newGuard(b, func(c *Config) { c.FloodLimit = -1 })
		src := netip.MustParseAddr(attacker)
		b.ReportAllocs()
		for b.Loop() {
			g.Admit(src, "INVITE", "", t0)
		}
	})
	b.Run("parallel 256 sources", func(b *testing.B) {
		g := newGuard(b, func(c *Config) { c.InviteRate = 0 })
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				g.Admit(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), "INVITE", "", t0)
			}
		})
	})
}
