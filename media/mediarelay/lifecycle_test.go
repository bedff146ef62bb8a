package mediarelay

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Close releases all four ports (they can be bound again at once) and ends
// every goroutine the relay started.
func TestCloseReleasesPortsAndGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	var relays []*Relay
	for range 5 {
		r, err := New(loopback, loopback, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		relays = append(relays, r)
	}
	a := newPhone(t, 0xa)
	a.sendRTP(relays[0].Local(0)) // a reader in the middle of work when closed
	for _, r := range relays {
		for i := range 2 {
			if p := r.Local(i).Port(); p%2 != 0 || p < DefaultPortMin || p > DefaultPortMax {
				t.Fatalf("side %d RTP port %d: want even in %d-%d", i, p, DefaultPortMin, DefaultPortMax)
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		for i := range 2 {
			for _, ap := range []netip.AddrPort{r.Local(i), rtcpOf(r.Local(i))} {
				c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
				if err != nil {
					t.Fatalf("port %v not released: %v", ap, err)
				}
				c.Close()
			}
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A closed relay still answers Stats and ignores SetRemote.
	relays[0].SetRemote(0, a.addr)
	if st := relays[0].Stats(); st[0].PacketsIn > 1 {
		t.Fatalf("stats after close: %+v", st[0])
	}
}

// The port search stays inside the configured range and reports a full
// range as ErrNoPorts, not as some bind error.
func TestPortRange(t *testing.T) {
	// Find a free pair to build a one-pair range around.
	probe := newRelay(t, Config{})
	p := int(probe.Local(0).Port())
	if err := probe.Close(); err != nil {
		t.Fatal(err)
	}
	r := newRelay(t, Config{IP: [2]netip.Addr{loopback, netip.MustParseAddr("127.0.0.2")}, PortMin: p, PortMax: p + 1})
	for i, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		if got := r.Local(i); got != netip.MustParseAddrPort(ip+":"+strconv.Itoa(p)) {
			t.Fatalf("side %d local %v, want %s:%d", i, got, ip, p)
		}
	}
	// Both sides on one address need two pairs: the range holds one.
	// (Whether side 0 finds p-2 free or not, side 1 cannot find a pair.)
	r2, err := NewWithConfig(Config{IP: [2]netip.Addr{loopback, loopback}, PortMin: p - 2, PortMax: p + 1})
	if err == nil {
		r2.Close()
	}
	if !errors.Is(err, ErrNoPorts) {
		t.Fatalf("full range: %v, want ErrNoPorts", err)
	}
	_, err = NewWithConfig(Config{IP: [2]netip.Addr{loopback, loopback}, PortMin: p, PortMax: p + 1})
	if !errors.Is(err, ErrNoPorts) {
		t.Fatalf("taken range: %v, want ErrNoPorts", err)
	}
	if !strings.Contains(err.Error(), "side 0") {
		t.Fatalf("error %q does not say which side", err)
	}
}

func TestInvalidConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"no address", Config{}},
		{"wildcard address", Config{IP: [2]netip.Addr{netip.IPv4Unspecified(), loopback}}},
		{"min above max", Config{IP: [2]netip.Addr{loopback, loopback}, PortMin: 30000, PortMax: 20000}},
		{"max too high", Config{IP: [2]netip.Addr{loopback, loopback}, PortMin: 60000, PortMax: 70000}},
		{"no even/odd pair", Config{IP: [2]netip.Addr{loopback, loopback}, PortMin: 20001, PortMax: 20002}},
		{"negative relatch packets", Config{IP: [2]netip.Addr{loopback, loopback}, RelatchPackets: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewWithConfig(tc.cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				if r != nil {
					r.Close()
				}
				t.Fatalf("got %v, want ErrInvalidConfig", err)
			}
		})
	}
	// An address this host does not have fails at once, not after 128 tries.
	_, err := New(netip.MustParseAddr("192.0.2.254"), loopback, nil, nil)
	if err == nil || errors.Is(err, ErrNoPorts) {
		t.Fatalf("foreign address: %v, want a bind error", err)
	}
}

func TestParseLatching(t *testing.T) {
	cases := []struct {
		in   string
		want Latching
		ok   bool
	}{
		{"learn", Learn, true}, {"LEARN", Learn, true}, {" comedia ", Learn, true}, {"on", Learn, true},
		{"strict", Strict, true}, {"off", Off, true},
		{"", "", false}, {"latch", "", false}, {"0", "", false},
	}
	for _, tc := range cases {
		got, err := ParseLatching(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseLatching(%q) = %q, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrBadLatching) {
			t.Errorf("ParseLatching(%q) error %v is not ErrBadLatching", tc.in, err)
		}
	}
	// Whatever the mode function returns, the relay works in a real mode.
	for in, want := range map[Latching]Latching{"": Learn, "bogus": Learn, Off: Off, Strict: Strict, Learn: Learn} {
		if got := in.effective(); got != want {
			t.Errorf("%q.effective() = %q, want %q", in, got, want)
		}
	}
}

// The stats document uses the agreed snake_case keys.
func TestStatsJSON(t *testing.T) {
	r := newRelay(t, Config{})
	a, b := newPhone(t, 0xa), newPhone(t, 0xb)
	r.SetRemote(1, b.addr)
	expect(t, b.rtp, a.sendRTP(r.Local(0)), r.Local(1))
	js, err := json.Marshal(r.Stats())
	if err != nil {
		t.Fatal(err)
	}
	var doc []map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"local", "latched", "last_source", "sending_to", "packets_in", "bytes_in", "packets_out", "bytes_out", "dropped", "first_packet", "last_packet", "rtcp"} {
		if _, ok := doc[0][k]; !ok {
			t.Errorf("side 0 JSON lacks %q: %s", k, js)
		}
	}
	if _, ok := doc[1]["sdp_remote"]; !ok {
		t.Errorf("side 1 JSON lacks sdp_remote: %s", js)
	}
	if doc[0]["latched"] != a.addr.String() {
		t.Errorf("latched = %v, want %v", doc[0]["latched"], a.addr)
	}
}

// Out-of-range sides are ignored, never a panic.
func TestBadSide(t *testing.T) {
	r := newRelay(t, Config{})
	for _, side := range []int{-1, 2, 99} {
		if ap := r.Local(side); ap.IsValid() {
			t.Fatalf("Local(%d) = %v", side, ap)
		}
		r.SetRemote(side, netip.MustParseAddrPort("127.0.0.1:4000"))
	}
}

// Only the packet path calls the mode function (never under the relay's
// lock): the SBC may call Stats, SetRemote or Close while holding the lock
// its mode function takes.
func TestModeCalledOnlyPerPacket(t *testing.T) {
	var calls atomic.Int64
	r := newRelay(t, Config{Mode: func() Latching { calls.Add(1); return Off }})
	a, b := newPhone(t, 0xa), newPhone(t, 0xb)
	r.SetRemote(1, b.addr)
	r.Stats()
	if n := calls.Load(); n != 0 {
		t.Fatalf("mode called %d times without packets", n)
	}
	expect(t, b.rtp, a.sendRTP(r.Local(0)), r.Local(1))
	if n := calls.Load(); n != 1 {
		t.Fatalf("mode called %d times for one packet", n)
	}
	if st := r.Stats(); st[0].Latched.IsValid() || st[0].LastSource != a.addr {
		t.Fatalf("off mode latched: %+v", st[0])
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("Stats called mode: %d calls", n)
	}
}
