package guard

import (
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func newGuard(t testing.TB, edit func(*Config)) *Guard {
	t.Helper()
	cfg := Default()
	if edit != nil {
		edit(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestBlockedUnblock(t *testing.T) {
	g := newGuard(t, nil)
	a, b := netip.MustParseAddr(attacker), netip.MustParseAddr("198.18.0.67")
	g.Admit(a, "OPTIONS", "sipvicious", t0)
	for range 3 {
		g.Admit(a, "REGISTER", "", t0.Add(time.Second))
	}
	for range 10 {
		g.ObserveResponse(b, "REGISTER", 401, t0.Add(-time.Minute))
	}
	got := g.Blocked(t0.Add(2 * time.Second))
	want := []Block{
		{Source: b, Reason: "failed_auth: 10 in 1m0s", Until: t0.Add(4 * time.Minute), Hits: 0},
		{Source: a, Reason: "scanner: sipvicious", Until: t0.Add(5 * time.Minute), Hits: 3},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Blocked = %+v\nwant      %+v", got, want)
	}
	js, _ := json.Marshal(got[1])
	for _, k := range []string{`"source":"198.18.0.66"`, `"reason":"scanner: sipvicious"`, `"until":"2026-11-25T21:05:00Z"`, `"hits":3`} {
		if !strings.Contains(string(js), k) {
			t.Errorf("block JSON %s lacks %s", js, k)
		}
	}
	if got := g.Blocked(t0.Add(4 * time.Minute)); len(got) != 1 || got[0].Source != a {
		t.Fatalf("after b's block ended: %+v", got)
	}

	if !g.Unblock(a) {
		t.Fatal("Unblock of a blocked source = false")
	}
	if g.Unblock(a) {
		t.Fatal("second Unblock = true")
	}
	if g.Unblock(netip.MustParseAddr("192.0.2.99")) {
		t.Fatal("Unblock of an unknown source = true")
	}
	if v := g.Admit(a, "REGISTER", "Linphone", t0.Add(3*time.Second)); !v.Allow {
		t.Fatalf("after Unblock: %+v", v)
	}
	st := g.Stats()
	if st.Blocks != 2 || st.ScannersSeen != 1 || st.BlockedDrops != 3 || st.FailedAuths != 10 || st.Admitted != 1 || st.Sources != 2 {
		t.Fatalf("stats %+v", st)
	}
	js, _ = json.Marshal(st)
	for _, k := range []string{"admitted", "trunk_admitted", "rate_limited", "blocked_drops", "scanners_seen", "failed_auths", "blocks", "sources", "evictions"} {
		if !strings.Contains(string(js), `"`+k+`"`) {
			t.Errorf("stats JSON %s lacks %s", js, k)
		}
	}
}

// A spray of sources cannot grow the table past MaxSources, an active
// block survives the spray, and idle sources are evicted as new ones come.
func TestEvictionBound(t *testing.T) {
	g := newGuard(t, func(c *Config) { c.MaxSources = 64 })
	blocked := netip.MustParseAddr(attacker)
	g.Admit(blocked, "OPTIONS", "friendly-scanner", t0)
	const spray = 100000
	for i := range spray {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		g.Admit(src, "INVITE", "", t0.Add(time.Duration(i)*time.Microsecond))
		if i%1000 == 0 {
			if n := g.Stats().Sources; n > 64 {
				t.Fatalf("after %d sources: %d tracked, cap 64", i, n)
			}
		}
	}
	st := g.Stats()
	if st.Sources > 64 || st.Evictions < spray+1-64 {
		t.Fatalf("after the spray: %+v", st)
	}
	if v := g.Admit(blocked, "REGISTER", "", t0.Add(time.Second)); v.Allow {
		t.Fatal("the spray evicted an active block")
	}

	// Idle eviction: 1000 sources, then after IdleAfter 2000 new ones (each
	// insertion sweeps up to two idle sources of its shard).
	g = newGuard(t, func(c *Config) { c.IdleAfter = time.Minute })
	for i := range 1000 {
		g.Admit(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), "REGISTER", "", t0)
	}
	later := t0.Add(time.Minute + time.Second)
	for i := range 2000 {
		g.Admit(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), "REGISTER", "", later)
	}
	if st := g.Stats(); st.Sources != 2000 || st.Evictions != 1000 {
		t.Fatalf("idle sources not swept: %+v", st)
	}
}

func TestInvalidConfig(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
	}{
		{"negative register rate", func(c *Config) { c.RegisterRate = -1 }},
		{"NaN invite rate", func(c *Config) { c.InviteRate = math.NaN() }},
		{"infinite rate", func(c *Config) { c.RegisterRate = math.Inf(1) }},
		{"burst 0", func(c *Config) { c.Burst = 0 }},
		{"negative failed auth limit", func(c *Config) { c.FailedAuthLimit = -1 }},
		{"no window", func(c *Config) { c.FailedAuthWindow = 0 }},
		{"no block time", func(c *Config) { c.BlockFor = 0 }},
		{"empty scanner pattern matches everyone", func(c *Config) { c.ScannerUserAgents = append(c.ScannerUserAgents, "") }},
		{"blank scanner pattern", func(c *Config) { c.ScannerUserAgents = []string{"  "} }},
		{"huge scanner pattern", func(c *Config) { c.ScannerUserAgents = []string{strings.Repeat("x", 200)} }},
		{"invalid trunk", func(c *Config) { c.Trunks = []netip.Prefix{{}} }},
		{"trunk of the whole internet", func(c *Config) { c.Trunks = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} }},
		{"IPv4-mapped whole internet", func(c *Config) { c.Trunks = []netip.Prefix{netip.MustParsePrefix("::ffff:0.0.0.0/96")} }},
		{"trunk mixing v6 and v4", func(c *Config) { c.Trunks = []netip.Prefix{netip.MustParsePrefix("::ffff:0.0.0.0/80")} }},
		{"tiny source table", func(c *Config) { c.MaxSources = 5 }},
		{"negative idle", func(c *Config) { c.IdleAfter = -time.Second }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			tc.edit(&cfg)
			if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate: %v", err)
			}
			if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New: %v", err)
			}
			g := newGuard(t, nil)
			if err := g.SetConfig(cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("SetConfig: %v", err)
			}
			if got := g.Config(); got.Burst != 10 || len(got.ScannerUserAgents) != len(Default().ScannerUserAgents) {
				t.Fatalf("a refused SetConfig changed the policy: %+v", got)
			}
		})
	}
	// Valid edge cases.
	for name, edit := range map[string]func(*Config){
		"default": func(*Config) {},
		"all limits off": func(c *Config) {
			c.RegisterRate, c.InviteRate, c.OtherRate, c.FailedAuthLimit, c.FloodLimit = 0, 0, -1, 0, -1
		},
		"mapped trunk /120": func(c *Config) { c.Trunks = []netip.Prefix{netip.MustParsePrefix("::ffff:198.51.100.0/120")} },
		"IPv6 trunk":        func(c *Config) { c.Trunks = []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")} },
		"no scanner list":   func(c *Config) { c.ScannerUserAgents = nil },
		"agreed fields only": func(c *Config) {
			*c = Config{RegisterRate: 1, InviteRate: 1, Burst: 1, FailedAuthWindow: time.Second, BlockFor: time.Second}
		},
	} {
		cfg := Default()
		edit(&cfg)
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The mapped /120 trunk trusts the IPv4 /24 it spells.
func TestMappedTrunk(t *testing.T) {
	g := newGuard(t, func(c *Config) { c.Trunks = []netip.Prefix{netip.MustParsePrefix("::ffff:198.51.100.0/120")} })
	if !g.IsTrunk(netip.MustParseAddr(carrier)) || !g.IsTrunk(netip.MustParseAddr("::ffff:"+carrier)) || g.IsTrunk(netip.MustParseAddr(phone)) {
		t.Fatal("mapped trunk prefix not applied to IPv4 sources")
	}
}

// SetConfig applies at once to known sources.
func TestSetConfigLive(t *testing.T) {
	g := newGuard(t, nil)
	src := netip.MustParseAddr(phone)
	g.Admit(src, "REGISTER", "", t0)
	cfg := Default()
	cfg.Burst, cfg.RegisterRate = 1, 1
	if err := g.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if v := g.Admit(src, "REGISTER", "", t0); !v.Allow {
		t.Fatalf("first request under burst 1: %+v", v) // 9 tokens, clamped to 1
	}
	if v := g.Admit(src, "REGISTER", "", t0); v.Allow || v.RetryAfter != time.Second {
		t.Fatalf("second request under burst 1: %+v", v)
	}
	cfg.Trunks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	if err := g.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if v := g.Admit(src, "REGISTER", "", t0); !v.Allow || v.Reason != "trunk" {
		t.Fatalf("after making it a trunk: %+v", v)
	}
	cfg.ScannerUserAgents = []string{"Linphone"}
	cfg.Trunks = nil
	g.SetConfig(cfg)
	if v := g.Admit(src, "INVITE", "Linphone/5.2", t0); v.Allow {
		t.Fatalf("new scanner pattern not applied: %+v", v)
	}
}

// Many goroutines on shared and distinct sources: the race detector and
// the counters must agree.
func TestConcurrent(t *testing.T) {
	g := newGuard(t, func(c *Config) { c.RegisterRate = 0; c.MaxSources = 1024 })
	var wg sync.WaitGroup
	const workers, each = 8, 2000
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				src := netip.AddrFrom4([4]byte{10, byte(w), byte(i >> 8), byte(i % 64)})
				now := t0.Add(time.Duration(i) * time.Millisecond)
				g.Admit(src, "REGISTER", "", now)
				if i%100 == 0 {
					g.ObserveResponse(src, "REGISTER", 401, now)
					g.Blocked(now)
					g.Stats()
					g.Unblock(src)
				}
			}
		})
	}
	wg.Wait()
	if st := g.Stats(); st.Admitted != workers*each || st.Sources > 1024 {
		t.Fatalf("stats %+v", st)
	}
}

// Forget is the lab reset: every block and every half-counted failure
// goes, as in a guard just started.
func TestForget(t *testing.T) {
	g := newGuard(t, nil)
	a, b := netip.MustParseAddr(attacker), netip.MustParseAddr("198.18.0.67")
	g.Admit(a, "OPTIONS", "sipvicious", t0)
	for range 9 { // one short of a block
		g.ObserveResponse(b, "REGISTER", 401, t0)
	}
	lifted := g.Forget(t0.Add(time.Second))
	if len(lifted) != 1 || lifted[0].Source != a {
		t.Fatalf("Forget lifted %+v, want a's block", lifted)
	}
	if got := g.Blocked(t0.Add(time.Second)); len(got) != 0 {
		t.Fatalf("blocks after Forget: %+v", got)
	}
	if v := g.Admit(a, "REGISTER", "Linphone", t0.Add(2*time.Second)); !v.Allow {
		t.Fatalf("a after Forget: %+v", v)
	}
	// b's nine failures were forgotten too: one more does not block.
	g.ObserveResponse(b, "REGISTER", 401, t0.Add(2*time.Second))
	if got := g.Blocked(t0.Add(3 * time.Second)); len(got) != 0 {
		t.Fatalf("b blocked after one failure past Forget: %+v", got)
	}
}
