package sipnet_test

import (
	"context"
	"net"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipnet"
)

// burstResult is what a burst of INVITEs at a handler slower than the
// burst came to.
type burstResult struct {
	handled, refused int
	peakRunnable     uint64
}

// burst sends n INVITEs at once to an endpoint whose INVITE handler burns
// cost of CPU each, and collects the answers: 200 from the handler, 503
// from the overload gate.
func burst(t *testing.T, cfg sipnet.Config, n int, cost time.Duration) burstResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ep, err := sipnet.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	var handled atomic.Int64
	ep.Server.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		for start := time.Now(); time.Since(start) < cost; {
		}
		handled.Add(1)
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	ep.Server.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // arrival stamps on (TestOverloadGate)

	// The runtime's own count of runnable goroutines, sampled while the
	// burst is served: what the bound is about.
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		s := []metrics.Sample{{Name: "/sched/goroutines/runnable:goroutines"}}
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
		}
	}()

	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadBuffer(8 << 20)
	for i := range n {
		if _, err := c.WriteToUDPAddrPort([]byte(udpRequest("INVITE", "burst-"+strconv.Itoa(i), "", c)), ep.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	var r burstResult
	answered := map[string]bool{}
	buf := make([]byte, 4096)
	for len(answered) < n {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := c.Read(buf)
		if err != nil {
			t.Logf("answers so far: %d of %d (%v)", len(answered), n, err)
			break
		}
		res, err := sip.ParseMessage(buf[:k])
		if err != nil {
			t.Fatal(err)
		}
		rs := res.(*sip.Response)
		if rs.StatusCode < 200 || answered[rs.CallID().Value()] {
			continue
		}
		answered[rs.CallID().Value()] = true
		switch rs.StatusCode {
		case 200:
			r.handled++
		case 503:
			r.refused++
		default:
			t.Errorf("unexpected answer %d", rs.StatusCode)
		}
	}
	close(stop)
	<-sampled
	r.peakRunnable = peak.Load()
	return r
}

// Past capacity, the backlog must wait in the socket's buffer, where the
// overload gate measures its delay and refuses the excess with 503, and
// not as runnable goroutines holding parsed messages, which nothing
// bounds. A burst of INVITEs, each costing the handler 2 ms of CPU, is
// many times what the endpoint can serve within the gate's delay: with
// MaxRunnable the runnable goroutines stay near the bound and most of
// the burst is refused; without it sipgo's reader turns the burst into
// goroutines as fast as it parses, the queue delay the gate sees stays
// short, and far more is admitted to wait its turn.
func TestBacklogBound(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("arrival timestamps (SO_TIMESTAMPNS) are Linux's")
	}
	const n, cost, bound = 1500, 2 * time.Millisecond, 8
	cfg := func(maxRunnable int) sipnet.Config {
		return sipnet.Config{Listen: "127.0.0.1:0", Transports: []string{sipnet.UDP},
			MaxQueueDelay: 100 * time.Millisecond, MaxRunnable: maxRunnable}
	}
	unbounded := burst(t, cfg(0), n, cost)
	bounded := burst(t, cfg(bound), n, cost)
	t.Logf("without a bound: %+v; with MaxRunnable %d: %+v", unbounded, bound, bounded)
	if bounded.handled+bounded.refused != n {
		t.Errorf("with the bound, %d of %d INVITEs answered", bounded.handled+bounded.refused, n)
	}
	if bounded.refused < n/2 {
		t.Errorf("with the bound the gate refused %d of %d, want most", bounded.refused, n)
	}
	if bounded.peakRunnable > 4*bound+32 {
		t.Errorf("with the bound, up to %d goroutines were runnable (bound %d)", bounded.peakRunnable, bound)
	}
	if unbounded.peakRunnable <= bounded.peakRunnable {
		t.Errorf("the burst did not pile up goroutines without the bound (%d runnable, %d with it): the test does not test the bound",
			unbounded.peakRunnable, bounded.peakRunnable)
	}
}
