package sipdialog_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/lab/labtls"
	"github.com/siplab/siplab/sip/sipdialog"
)

// link is a UAS socket and the peer's end of it, over a real transport.
type link struct {
	uas  io.Writer     // where the UAS writes its response
	peer *bufio.Reader // the peer reads copies here
	ack  io.Writer     // the peer writes its ACK here
	in   *bufio.Reader // the UAS reads the ACK here
	done func()
}

func udpLink(t *testing.T) link {
	lc := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	uas, peer := lc(), lc()
	uw := &udpWriter{c: uas, to: peer.LocalAddr().(*net.UDPAddr)}
	pw := &udpWriter{c: peer, to: uas.LocalAddr().(*net.UDPAddr)}
	return link{uas: uw, peer: bufio.NewReader(peer), ack: pw, in: bufio.NewReader(uas),
		done: func() { uas.Close(); peer.Close() }}
}

type udpWriter struct {
	c  *net.UDPConn
	to *net.UDPAddr
}

func (w *udpWriter) Write(b []byte) (int, error) { return w.c.WriteToUDP(b, w.to) }

func streamLink(t *testing.T, secure bool) link {
	var ln net.Listener
	var err error
	var ccfg *tls.Config
	if secure {
		dir := t.TempDir()
		srv, err := labtls.EnsureServerCert(dir, []netip.Addr{netip.MustParseAddr("127.0.0.1")})
		if err != nil {
			t.Fatal(err)
		}
		ln, err = tls.Listen("tcp", "127.0.0.1:0", srv)
		if err != nil {
			t.Fatal(err)
		}
		ccfg = &tls.Config{RootCAs: srv.RootCAs, ServerName: "127.0.0.1"}
	} else if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if tc, ok := c.(*tls.Conn); ok && err == nil {
			// tls.Dial waits for the server's half of the handshake.
			err = tc.Handshake()
		}
		if err == nil {
			acc <- c
		}
		close(acc)
	}()
	var peer net.Conn
	if secure {
		peer, err = tls.Dial("tcp", ln.Addr().String(), ccfg)
	} else {
		peer, err = net.Dial("tcp", ln.Addr().String())
	}
	if err != nil {
		t.Fatal(err)
	}
	uas := <-acc
	if uas == nil {
		t.Fatal("no connection accepted")
	}
	return link{uas: uas, peer: bufio.NewReader(peer), ack: peer, in: bufio.NewReader(uas),
		done: func() { uas.Close(); peer.Close(); ln.Close() }}
}

// TestRetransmit runs the one UAS retransmission rule over real sockets:
// the UAS writes a 2xx line, the peer counts copies and ACKs after ackAt
// of them (0: never).
func TestRetransmit(t *testing.T) {
	const t1, t2 = 10 * time.Millisecond, 40 * time.Millisecond
	cases := []struct {
		name      string
		transport string
		ackAt     int
		want      sipdialog.Result
		minCopies int
		maxCopies int
	}{
		{"udp resends until the ACK", "UDP", 4, sipdialog.Acked, 4, 5},
		{"udp gives up at 64*T1", "UDP", 0, sipdialog.TimedOut, 10, 20},
		{"tcp never resends", "TCP", 0, sipdialog.TimedOut, 1, 1},
		{"tls never resends", "TLS", 0, sipdialog.TimedOut, 1, 1},
		{"tcp still sees the ACK", "TCP", 1, sipdialog.Acked, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var l link
			switch tc.transport {
			case "UDP":
				l = udpLink(t)
			case "TCP":
				l = streamLink(t, false)
			case "TLS":
				l = streamLink(t, true)
			}
			defer l.done()
			acked := make(chan struct{})
			go func() { // the UAS's transport layer: an ACK line closes acked
				line, err := l.in.ReadString('\n')
				if err == nil && strings.HasPrefix(line, "ACK") {
					close(acked)
				}
			}()
			var copies atomic.Int32
			go func() { // the peer
				for {
					line, err := l.peer.ReadString('\n')
					if err != nil || !strings.HasPrefix(line, "SIP/2.0 200") {
						return
					}
					if int(copies.Add(1)) == tc.ackAt {
						_, _ = l.ack.Write([]byte("ACK\n"))
					}
				}
			}()
			send := func() error { _, err := l.uas.Write([]byte("SIP/2.0 200 OK\n")); return err }
			if err := send(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			got := sipdialog.Retransmit(context.Background(), sipdialog.Retransmission{
				Resend: send, Reliable: sip.IsReliable(tc.transport), Acked: acked, T1: t1, T2: t2,
			})
			if got != tc.want {
				t.Fatalf("result %v, want %v", got, tc.want)
			}
			if tc.want == sipdialog.TimedOut {
				if el := time.Since(start); el < 64*t1 {
					t.Errorf("gave up after %v, before 64*T1", el)
				}
			}
			time.Sleep(2 * t1) // copies in flight
			if n := int(copies.Load()); n < tc.minCopies || n > tc.maxCopies {
				t.Errorf("peer saw %d copies, want %d..%d", n, tc.minCopies, tc.maxCopies)
			}
		})
	}
}

// TestRetransmitEnds covers the ways out other than ACK and timeout.
func TestRetransmitEnds(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		r    sipdialog.Retransmission
		ctx  context.Context
		want sipdialog.Result
	}{
		{"stop", sipdialog.Retransmission{Stop: closed}, context.Background(), sipdialog.Stopped},
		{"closed", sipdialog.Retransmission{}, ctx, sipdialog.Closed},
		{"halt before a resend", sipdialog.Retransmission{Halt: func() bool { return true }}, context.Background(), sipdialog.Halted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.T1, tc.r.T2 = time.Millisecond, 4*time.Millisecond
			tc.r.Resend = func() error { t.Error("resent"); return nil }
			if got := sipdialog.Retransmit(tc.ctx, tc.r); got != tc.want {
				t.Fatalf("result %v, want %v", got, tc.want)
			}
		})
	}
}
