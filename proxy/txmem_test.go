package proxy

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest"
)

// BenchmarkHeldTransactionMemory reports the live heap each challenged
// INVITE leaves at the proxy (heap-B/req: heap in use after a GC, once
// every 407 has arrived and been ACKed, divided by the INVITEs sent), over
// real loopback sockets. A kept INVITE server transaction lives until
// Timer I after the ACK; a stateless 407 keeps none. Run with a fixed
// count, e.g. -benchtime 5000x.
func BenchmarkHeldTransactionMemory(b *testing.B) {
	b.Run("INVITE-407", func(b *testing.B) {
		_, px := startProxy(b, Config{Location: newMemLocation("alice", "bob"), Auth: newAuth(b), AuthInvites: true})
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		local := conn.LocalAddr().String()
		dst := net.UDPAddrFromAddrPort(px)
		invite := func(id string) string {
			return "INVITE sip:bob@" + testDomain + " SIP/2.0\r\n" +
				"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-mem" + id + ";rport\r\n" +
				"From: <sip:alice@" + testDomain + ">;tag=t" + id + "\r\n" +
				"To: <sip:bob@" + testDomain + ">\r\n" +
				"Call-ID: mem-" + id + "\r\n" +
				"CSeq: 1 INVITE\r\n" +
				"Max-Forwards: 70\r\n" +
				"Contact: <sip:alice@" + local + ">\r\n" +
				"Content-Length: 0\r\n\r\n"
		}
		var mu sync.Mutex
		answered := map[string]bool{}
		go func() {
			buf := make([]byte, 65535)
			for {
				n, _, err := conn.ReadFromUDP(buf)
				if err != nil {
					return
				}
				m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
				res, ok := m.(*sip.Response)
				if err != nil || !ok || res.StatusCode != 407 {
					continue
				}
				id := strings.TrimPrefix(res.CallID().Value(), "mem-")
				tag, _ := res.To().Params.Get("tag")
				// The ACK for the 407, as a phone sends it (same branch).
				ack := "ACK sip:bob@" + testDomain + " SIP/2.0\r\n" +
					"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-mem" + id + ";rport\r\n" +
					"From: <sip:alice@" + testDomain + ">;tag=t" + id + "\r\n" +
					"To: <sip:bob@" + testDomain + ">;tag=" + tag + "\r\n" +
					"Call-ID: mem-" + id + "\r\n" +
					"CSeq: 1 ACK\r\n" +
					"Max-Forwards: 70\r\n" +
					"Content-Length: 0\r\n\r\n"
				conn.WriteToUDP([]byte(ack), dst)
				mu.Lock()
				answered[id] = true
				mu.Unlock()
			}
		}()
		send := func(i int) {
			if _, err := conn.WriteToUDP([]byte(invite(strconv.Itoa(i))), dst); err != nil {
				b.Fatal(err)
			}
		}
		count := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(answered)
		}
		siptest.HeapPerRequest(b, send, count, 100*time.Millisecond) // the last ACKs arrive
	})
}
