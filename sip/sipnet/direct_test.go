package sipnet_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipnet"
)

// read returns the next datagram on c, or "" after wait.
func read(t *testing.T, c *net.UDPConn, wait time.Duration) string {
	t.Helper()
	buf := make([]byte, 65535)
	c.SetReadDeadline(time.Now().Add(wait))
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// The direct path over real sockets: REGISTERs reach the handler without
// sipgo, parsed, with their source; a retransmission arriving while its
// request is served is absorbed; a kept answer is sent again, byte for
// byte, without serving the request again; an answer not kept is
// computed again; other methods still go to sipgo's handlers.
func TestDirectPath(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ep := start(t, "127.0.0.1:0")
	var served atomic.Int32
	// The "slow" request's answer is held until the test sends it, as the
	// registrar holds a 200 until its fsync.
	held := make(chan func(*sip.Response), 1)
	err := ep.Direct(sip.REGISTER, sipnet.DirectHandler{
		Serve: func(req *sip.Request) sipnet.DirectReply {
			n := served.Add(1)
			if !strings.HasPrefix(req.Source(), "127.0.0.1:") || req.Transport() != "UDP" {
				t.Errorf("source %q transport %q", req.Source(), req.Transport())
			}
			code := 200
			if req.CallID().Value() == "challenge" {
				code = 401
			}
			res := sip.NewResponseFromRequest(req, code, "Served", nil)
			res.AppendHeader(sip.NewHeader("X-Served", string(rune('0'+n))))
			rep := sipnet.DirectReply{Response: res}
			if req.CallID().Value() == "slow" {
				rep.Hold = func(send func(*sip.Response)) { held <- send }
			}
			return rep
		},
		Keep: func(res *sip.Response) bool { return res.StatusCode < 300 },
	})
	if err != nil {
		t.Fatal(err)
	}
	ep.Server.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "Via sipgo", nil))
	})
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c, send := directClient(t, ep)

	// Served slowly: the retransmission meanwhile is absorbed.
	slow := udpRequest("REGISTER", "slow", "", c)
	send(slow)
	release := <-held
	send(slow)
	waitFor(t, func() bool { return ep.DirectStats().Absorbed == 1 })
	if got := read(t, c, 100*time.Millisecond); got != "" {
		t.Fatalf("answered before the hold ended: %q", got)
	}
	if st := ep.DirectStats(); st.Serving != 1 {
		t.Fatalf("held answer not counted as served: %+v", st)
	}
	release(nil)
	first := read(t, c, 5*time.Second)
	if !strings.HasPrefix(first, "SIP/2.0 200 Served") || !strings.Contains(first, "rport=") {
		t.Fatalf("answer: %q", first)
	}
	// After the answer: the same bytes again, the handler not run again.
	send(slow)
	if again := read(t, c, 5*time.Second); again != first {
		t.Fatalf("retransmission answered %q, want the kept %q", again, first)
	}
	// A request stops counting as served just after its answer is sent.
	waitFor(t, func() bool { return ep.DirectStats().Serving == 0 })
	if st := ep.DirectStats(); served.Load() != 1 || st.Replayed != 1 || st.Kept != 1 {
		t.Fatalf("served %d times, stats %+v", served.Load(), st)
	}

	// Not kept: every retransmission is served.
	challenge := udpRequest("REGISTER", "challenge", "", c)
	send(challenge)
	a := read(t, c, 5*time.Second)
	send(challenge)
	b := read(t, c, 5*time.Second)
	if !strings.HasPrefix(a, "SIP/2.0 401") || !strings.HasPrefix(b, "SIP/2.0 401") || a == b {
		t.Fatalf("challenge and its retransmission: %q, %q", a, b)
	}
	if st := ep.DirectStats(); served.Load() != 3 || st.Kept != 1 {
		t.Fatalf("served %d times, stats %+v", served.Load(), st)
	}

	// Other methods: sipgo.
	send(udpRequest("OPTIONS", "opt", "", c))
	if got := read(t, c, 5*time.Second); !strings.HasPrefix(got, "SIP/2.0 200 Via sipgo") {
		t.Fatalf("OPTIONS: %q", got)
	}
	// What the receive check refuses is refused on the direct path too.
	send("REGISTER sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + c.LocalAddr().String() +
		";branch=z9hG4bK-bad;rport\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\n" +
		"Call-ID: bad\r\nCSeq: nope REGISTER\r\nContent-Length: 0\r\n\r\n")
	if got := read(t, c, 5*time.Second); !strings.HasPrefix(got, "SIP/2.0 400") {
		t.Fatalf("malformed REGISTER: %q", got)
	}
	if served.Load() != 3 {
		t.Fatalf("malformed REGISTER reached the handler")
	}
}

// directClient is a UA socket on loopback (with room for a burst of
// answers) and a function sending a datagram from it to ep.
func directClient(t *testing.T, ep *sipnet.Endpoint) (*net.UDPConn, func(string)) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadBuffer(1 << 20)
	return c, func(m string) {
		if _, err := c.WriteToUDP([]byte(m), net.UDPAddrFromAddrPort(ep.Addr())); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Without UDP there is no direct path.
func TestDirectNeedsUDP(t *testing.T) {
	ep, err := sipnet.Listen(sipnet.Config{Listen: "127.0.0.1:0", Transports: []string{sipnet.TCP}})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if err := ep.Direct(sip.REGISTER, sipnet.DirectHandler{Serve: func(*sip.Request) sipnet.DirectReply { return sipnet.DirectReply{} }}); err == nil {
		t.Fatal("direct path accepted without UDP")
	}
}

// Held answers released together, as the registrar releases a group
// commit's 200s after its fsync, all arrive (sent in batches); one
// released with another answer instead sends that one, and keeps it only
// if Keep says so.
func TestDirectHeldTogether(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ep := start(t, "127.0.0.1:0")
	const n = 300
	var mu sync.Mutex
	var sends []func(*sip.Response)
	var served atomic.Int32
	err := ep.Direct(sip.REGISTER, sipnet.DirectHandler{
		Serve: func(req *sip.Request) sipnet.DirectReply {
			served.Add(1)
			res := sip.NewResponseFromRequest(req, 200, "Held", nil)
			if req.CallID().Value() == "failed" {
				return sipnet.DirectReply{Response: res, Hold: func(send func(*sip.Response)) {
					send(sip.NewResponseFromRequest(req, 500, "Not Stored", nil))
				}}
			}
			return sipnet.DirectReply{Response: res, Hold: func(send func(*sip.Response)) {
				mu.Lock()
				sends = append(sends, send)
				mu.Unlock()
			}}
		},
		Keep: func(res *sip.Response) bool { return res.StatusCode < 300 },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c, send := directClient(t, ep)
	for i := range n {
		send(udpRequest("REGISTER", "held-"+strconv.Itoa(i), "", c))
		if i%50 == 49 {
			waitFor(t, func() bool { return served.Load() == int32(i+1) })
		}
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(sends) == n })
	if got := read(t, c, 50*time.Millisecond); got != "" {
		t.Fatalf("answered before the hold ended: %q", got)
	}
	if st := ep.DirectStats(); st.Serving != n {
		t.Fatalf("%d held, stats %+v", n, st)
	}
	for _, s := range sends {
		s(nil)
	}
	seen := map[string]bool{}
	for range n {
		got := read(t, c, 5*time.Second)
		if !strings.HasPrefix(got, "SIP/2.0 200 Held") {
			t.Fatalf("after %d answers: %q", len(seen), got)
		}
		i := strings.Index(got, "Call-ID: ")
		seen[got[i:i+strings.IndexByte(got[i:], '\r')]] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct answers of %d", len(seen), n)
	}
	waitFor(t, func() bool { return ep.DirectStats().Serving == 0 })

	// Released with a 500 instead: that is sent, and not kept, so the
	// retransmission is served again.
	failed := udpRequest("REGISTER", "failed", "", c)
	send(failed)
	if got := read(t, c, 5*time.Second); !strings.HasPrefix(got, "SIP/2.0 500 Not Stored") {
		t.Fatalf("released instead: %q", got)
	}
	before := served.Load()
	send(failed)
	if got := read(t, c, 5*time.Second); !strings.HasPrefix(got, "SIP/2.0 500 Not Stored") || served.Load() != before+1 {
		t.Fatalf("retransmission after a 500: %q, served %d times more", got, served.Load()-before)
	}
	if st := ep.DirectStats(); st.Kept != n {
		t.Fatalf("kept %d, want the %d 200s", st.Kept, n)
	}
}
