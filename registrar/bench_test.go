package registrar

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/siplab/siplab/sip/sipauth"
)

func benchUsers(b *testing.B, n int) *sipauth.Users {
	list := make([]sipauth.User, n)
	for i := range list {
		list[i] = sipauth.User{Name: "u" + strconv.Itoa(i), Password: "pw" + strconv.Itoa(i)}
	}
	u, err := sipauth.NewUsers(list...)
	if err != nil {
		b.Fatal(err)
	}
	return u
}

// benchRegistrar is a registrar for 4096 users, journaling to disk when
// persist is set; it closes when b ends.
func benchRegistrar(b *testing.B, persist bool) *Registrar {
	b.Helper()
	cfg := Config{Domain: domain, Users: benchUsers(b, 4096), Logger: testLogger(b)}
	if persist {
		cfg.DataDir = b.TempDir()
	}
	r, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// BenchmarkRegisterAuthenticated measures one authenticated, journaled
// (fsync'd, group-committed) REGISTER refresh through Handle: parse, digest
// check, binding update, journal, 200 OK. Each goroutine is a phone that
// reuses its nonce with a rising nonce-count, as phones do between
// challenges; the client-side digest computation is inside the loop too.
func BenchmarkRegisterAuthenticated(b *testing.B) {
	for _, persist := range []bool{false, true} {
		b.Run(fmt.Sprintf("persist=%v", persist), func(b *testing.B) {
			r := benchRegistrar(b, persist)
			var next atomic.Int64
			// Many phones in flight at once, as the sipgo server runs each
			// request in its own goroutine: that is what group commit
			// feeds on.
			b.SetParallelism(128)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := int(next.Add(1))
				user, pass := "u"+strconv.Itoa(id), "pw"+strconv.Itoa(id)
				chal, _ := digest.ParseChallenge(r.auth.ChallengeValue(false))
				cseq := 0
				for pb.Next() {
					cseq++
					cred, _ := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:" + domain, Username: user, Password: pass, Count: cseq, Cnonce: "0a4f113b"})
					raw := "REGISTER sip:" + domain + " SIP/2.0\r\n" +
						"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-" + strconv.Itoa(cseq) + "\r\n" +
						"From: <sip:" + user + "@" + domain + ">;tag=t\r\n" +
						"To: <sip:" + user + "@" + domain + ">\r\n" +
						"Call-ID: bench-" + user + "\r\n" +
						"CSeq: " + strconv.Itoa(cseq) + " REGISTER\r\n" +
						"Max-Forwards: 70\r\n" +
						"Contact: <sip:" + user + "@192.0.2.10:5060>;expires=3600\r\n" +
						"Authorization: " + cred.String() + "\r\n" +
						"Content-Length: 0\r\n\r\n"
					m, err := sip.ParseMessage([]byte(raw))
					if err != nil {
						b.Error(err)
						return
					}
					req := m.(*sip.Request)
					req.SetSource("192.0.2.10:5060")
					req.SetTransport("UDP")
					if res := r.Handle(context.Background(), req); res.StatusCode != 200 {
						b.Errorf("%d %s", res.StatusCode, res.Reason)
						return
					}
				}
			})
			if st := r.Status(); st.JournalSyncs > 0 {
				b.ReportMetric(float64(st.JournalRecords)/float64(st.JournalSyncs), "records/fsync")
			}
		})
	}
}

// registerInParallel runs phone, once per goroutine with its own user
// (u1/pw1, u2/pw2, ...), parallelism times GOMAXPROCS goroutines; each
// pb.Next is one completed registration, reported as registrations/s.
func registerInParallel(b *testing.B, parallelism int, phone func(pb *testing.PB, user, pass string)) {
	var next atomic.Int64
	b.SetParallelism(parallelism)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		id := strconv.Itoa(int(next.Add(1)))
		phone(pb, "u"+id, "pw"+id)
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "registrations/s")
}

// BenchmarkRegisterUDP is the whole exchange over loopback UDP with
// sipgo's client: REGISTER → 401 → REGISTER with credentials → 200, with
// the journal on. One op is one completed registration.
func BenchmarkRegisterUDP(b *testing.B) {
	addr := serveRegistrar(b, benchRegistrar(b, true))
	registerInParallel(b, 8, func(pb *testing.PB, user, pass string) {
		p := newPhone(b, addr, user, pass)
		for pb.Next() {
			res, _ := p.register("Contact: <sip:" + p.user + "@192.0.2.10:5060>")
			if res.StatusCode != 200 {
				b.Errorf("%d", res.StatusCode)
				return
			}
		}
	})
}

// BenchmarkRegisterRawUDP measures the server side over real loopback UDP:
// sipgo transport and transactions, sipcheck, digest, bindings, fsync'd
// journal. The phones are plain UDP sockets sending prebuilt text (no sipgo
// client), each reusing its nonce with a rising nonce-count, so one op is
// one authenticated REGISTER → 200 OK.
func BenchmarkRegisterRawUDP(b *testing.B) {
	for _, persist := range []bool{false, true} {
		b.Run(fmt.Sprintf("persist=%v", persist), func(b *testing.B) { benchRawUDP(b, persist) })
	}
}

func benchRawUDP(b *testing.B, persist bool) {
	r := benchRegistrar(b, persist)
	addr := net.UDPAddrFromAddrPort(serveRegistrar(b, r))
	// 128 phones in flight. A closed loop of N phones can never exceed
	// N / fsync-latency registrations per second (an open-loop load like
	// sipp -r has no such ceiling); many more overflow the loopback UDP
	// buffers and the benchmark measures retransmission timers instead.
	registerInParallel(b, 64, func(pb *testing.PB, user, pass string) {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		local := conn.LocalAddr().String()
		buf := make([]byte, 4096)
		cseq := 0
		exchange := func(auth string) (*sip.Response, error) {
			cseq++
			msg := "REGISTER sip:" + domain + " SIP/2.0\r\n" +
				"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-" + user + "-" + strconv.Itoa(cseq) + "\r\n" +
				"From: <sip:" + user + "@" + domain + ">;tag=t\r\n" +
				"To: <sip:" + user + "@" + domain + ">\r\n" +
				"Call-ID: raw-" + user + "\r\n" +
				"CSeq: " + strconv.Itoa(cseq) + " REGISTER\r\n" +
				"Max-Forwards: 70\r\n" +
				"Contact: <sip:" + user + "@" + local + ">\r\n" +
				auth +
				"Content-Length: 0\r\n\r\n"
			// UDP under load drops datagrams: retransmit like Timer A,
			// and skip late answers to earlier retransmissions.
			for try := 0; try < 10; try++ {
				if _, err := conn.WriteToUDP([]byte(msg), addr); err != nil {
					return nil, err
				}
				conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				for {
					n, err := conn.Read(buf)
					if err != nil {
						break // timeout: retransmit
					}
					m, err := sip.ParseMessage(buf[:n])
					if err != nil {
						return nil, err
					}
					if res, ok := m.(*sip.Response); ok && res.CSeq() != nil && int(res.CSeq().SeqNo) == cseq {
						return res, nil
					}
				}
			}
			return nil, fmt.Errorf("no answer to CSeq %d", cseq)
		}
		res, err := exchange("")
		if err != nil || res.StatusCode != 401 {
			b.Errorf("first REGISTER: %v %v", err, res)
			return
		}
		chal, _ := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
		nc := 0
		for pb.Next() {
			nc++
			cred, _ := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:" + domain, Username: user, Password: pass, Count: nc, Cnonce: "0a4f113b"})
			res, err := exchange("Authorization: " + cred.String() + "\r\n")
			if err != nil || res.StatusCode != 200 {
				b.Errorf("REGISTER: %v %v", err, res)
				return
			}
		}
	})
	if st := r.Status(); st.JournalSyncs > 0 {
		b.ReportMetric(float64(st.JournalRecords)/float64(st.JournalSyncs), "records/fsync")
	}
}
