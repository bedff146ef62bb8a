package registrar

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/sip/sipnet"
)

// BenchmarkHeldTransactionMemory reports the live heap each answered
// request leaves behind while sipgo may still hold its server transaction
// (Timer J, 32 s over UDP), over real loopback sockets: heap-B/req is the
// heap in use after a GC, once every answer has arrived, divided by the
// requests sent. REGISTER-401 is a challenge (stateless: freed at once);
// OPTIONS-200 a 2xx (kept for Timer J, as every REGISTER was before).
// Run with a fixed count, e.g. -benchtime 5000x: the figure is per
// request, the time is not the point.
func BenchmarkHeldTransactionMemory(b *testing.B) {
	for _, method := range []string{"REGISTER", "OPTIONS"} {
		name := map[string]string{"REGISTER": "REGISTER-401", "OPTIONS": "OPTIONS-200"}[method]
		b.Run(name, func(b *testing.B) {
			r, err := New(Config{Domain: domain, Users: benchUsers(b, 16), Logger: testLogger(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			ep, err := sipnet.Listen(sipnet.Config{Listen: "127.0.0.1:0", Logger: testLogger(b)})
			if err != nil {
				b.Fatal(err)
			}
			r.Attach(ep)
			ctx, cancel := context.WithCancel(context.Background())
			defer func() { cancel(); ep.Close() }()
			if err := ep.Start(ctx); err != nil {
				b.Fatal(err)
			}
			conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			local := conn.LocalAddr().String()
			dst := net.UDPAddrFromAddrPort(ep.Addr())
			var got atomic.Int64
			go func() {
				buf := make([]byte, 65535)
				for {
					if _, _, err := conn.ReadFromUDP(buf); err != nil {
						return
					}
					got.Add(1)
				}
			}()
			send := func(i int) {
				id := strconv.Itoa(i)
				raw := method + " sip:" + domain + " SIP/2.0\r\n" +
					"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-mem" + id + ";rport\r\n" +
					"From: <sip:u1@" + domain + ">;tag=t" + id + "\r\n" +
					"To: <sip:u1@" + domain + ">\r\n" +
					"Call-ID: mem-" + id + "\r\n" +
					"CSeq: 1 " + method + "\r\n" +
					"Max-Forwards: 70\r\n" +
					"Contact: <sip:u1@" + local + ">\r\n" +
					"User-Agent: siplab-bench\r\n" +
					"Content-Length: 0\r\n\r\n"
				if _, err := conn.WriteToUDP([]byte(raw), dst); err != nil {
					b.Fatal(err)
				}
			}
			siptest.HeapPerRequest(b, send, func() int { return int(got.Load()) }, 0)
		})
	}
}
