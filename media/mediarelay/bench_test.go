package mediarelay

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/live"
)

// BenchmarkRelay pushes RTP through a relay on loopback, phone A to phone
// B, with up to 32 packets in flight, and reports packets/s. The figure
// includes the kernel's two UDP hops; allocs/op is the relay's packet path
// (the phones' loop allocates nothing).
func BenchmarkRelay(b *testing.B) {
	r := newRelay(b, Config{})
	a, pb := newPhone(b, 0xa), newPhone(b, 0xb)
	r.SetRemote(0, a.addr)
	r.SetRemote(1, pb.addr)
	pkt := a.packet()
	to := r.Local(0)
	// Warm up: latch and let the readers reach steady state.
	a.send(a.rtp, to, pkt)
	expect(b, pb.rtp, pkt, r.Local(1))

	const window = 32
	credits := make(chan struct{}, window)
	done := make(chan int)
	go func() {
		buf := make([]byte, 2048)
		got := 0
		for {
			if got%256 == 0 {
				pb.rtp.SetReadDeadline(time.Now().Add(time.Second))
			}
			_, err := readUDP(pb.rtp, buf)
			if err != nil {
				done <- got
				return
			}
			got++
			<-credits
		}
	}()
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	lost := time.NewTimer(time.Hour)
	defer lost.Stop()
	start := time.Now()
	n := 0
	for b.Loop() {
		select {
		case credits <- struct{}{}:
		default:
			lost.Reset(50 * time.Millisecond)
			select {
			case credits <- struct{}{}:
			case <-lost.C: // a packet was lost on loopback: reuse its credit
			}
		}
		if _, err := a.rtp.WriteToUDPAddrPort(pkt, to); err != nil {
			b.Fatal(err)
		}
		n++
	}
	elapsed := time.Since(start)
	got := <-done
	b.ReportMetric(float64(got)/elapsed.Seconds(), "pkts/s")
	if got < n*9/10 {
		b.Fatalf("only %d of %d packets arrived", got, n)
	}
}

func readUDP(c *net.UDPConn, buf []byte) (int, error) {
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, err
	}
	return n, err
}

// BenchmarkRoute is the decision alone (validate, latch, count): it must
// not allocate.
func BenchmarkRoute(b *testing.B) { benchRoute(b, nil) }

// benchRoute routes one packet per iteration; with a mode function it is
// read first, as readLoop does for every packet (nil: Learn, no read).
func benchRoute(b *testing.B, mode func() Latching) {
	r := newRelay(b, Config{Mode: mode})
	a := newPhone(b, 0xa)
	r.SetRemote(1, netip.MustParseAddrPort("127.0.0.1:9"))
	pkt := a.packet()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m := Learn
		if mode != nil {
			m = r.cfg.Mode().effective()
		}
		r.mu.Lock()
		_, _, ok := r.routeLocked(0, kindRTP, pkt, a.addr, now, m)
		r.mu.Unlock()
		if !ok {
			b.Fatal("not routed")
		}
	}
}

// benchSettings stands for a daemon's live settings (the SBC's are four
// fields: latching, two durations, a bool).
type benchSettings struct {
	Latching          Latching
	NATExpires        time.Duration
	KeepaliveInterval time.Duration
	TopologyHiding    bool
}

// mutexSettings is how the SBC served its settings before: a copy taken
// under a mutex, for every packet.
type mutexSettings struct {
	mu sync.Mutex
	s  benchSettings
}

func (m *mutexSettings) get() benchSettings {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s
}

// BenchmarkPacketSettings is the per-packet cost of reading the latching
// mode the two ways, alone and with the routing decision it feeds:
// "mutex" is before (the SBC's settings behind a mutex), "atomic" after
// (an immutable struct behind an atomic pointer, internal/live).
// "parallel" reads from every core at once, as a call's four streams and
// the other calls' readers do.
func BenchmarkPacketSettings(b *testing.B) {
	cur := benchSettings{Latching: Learn, NATExpires: time.Minute, KeepaliveInterval: 15 * time.Second, TopologyHiding: true}
	var (
		mu  = &mutexSettings{s: cur}
		atm live.Value[benchSettings]
	)
	atm.Store(cur)
	reads := map[string]func() Latching{
		"mutex":  func() Latching { return mu.get().Latching },
		"atomic": func() Latching { return atm.Load().Latching },
	}
	for _, name := range []string{"mutex", "atomic"} {
		mode := reads[name]
		b.Run("read/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if mode() != Learn {
					b.Fatal("mode changed")
				}
			}
		})
		b.Run("parallel/"+name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if mode() != Learn {
						b.Error("mode changed")
						return
					}
				}
			})
		})
		b.Run("route/"+name, func(b *testing.B) { benchRoute(b, mode) })
	}
}
