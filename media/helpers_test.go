package media

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/siplab/siplab/internal/runtest"
	"github.com/siplab/siplab/internal/siptest"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func listen(t testing.TB) net.PacketConn {
	t.Helper()
	c, err := ListenRTP(loopback, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func addrOf(c net.PacketConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// start runs a session until the test ends and checks Run returns cleanly.
func start(t *testing.T, cfg Config) *Session {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // after Run returned: cleanups run last first
	runtest.Serve(t, s.Run)
	// Run flips running before anything else; wait so SendDTMF sees it.
	waitFor(t, "session running", func() bool { return s.running.Load() })
	return s
}

// waitFor polls cond; the deadline only guards against a hang, it is not
// a speed requirement.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	siptest.WaitFor(t, 10*time.Second, what, cond)
}

// rawSender writes handcrafted RTP from its own socket.
type rawSender struct {
	t    testing.TB
	conn net.PacketConn
	to   net.Addr
}

func newRawSender(t testing.TB, to netip.AddrPort) *rawSender {
	c := listen(t)
	t.Cleanup(func() { c.Close() })
	return &rawSender{t: t, conn: c, to: net.UDPAddrFromAddrPort(to)}
}

func (r *rawSender) raw(b []byte) {
	r.t.Helper()
	if _, err := r.conn.WriteTo(b, r.to); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawSender) rtp(h rtp.Header, payload []byte) {
	r.t.Helper()
	h.Version = 2
	b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		r.t.Fatal(err)
	}
	r.raw(b)
}

// rawReceiver collects what a session sends, to check the wire format.
type rawReceiver struct {
	conn net.PacketConn
	pkts chan rawPacket
}

type rawPacket struct {
	p    rtp.Packet
	from netip.AddrPort
}

func newRawReceiver(t *testing.T) *rawReceiver {
	c := listen(t)
	r := &rawReceiver{conn: c, pkts: make(chan rawPacket, 4096)}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.(*net.UDPConn).ReadFromUDPAddrPort(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("raw read: %v", err)
				}
				close(r.pkts)
				return
			}
			var p rtp.Packet
			if err := p.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
				t.Errorf("session sent a non-RTP datagram: %v", err)
				continue
			}
			r.pkts <- rawPacket{p: p, from: from}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return r
}

func (r *rawReceiver) next(t *testing.T) rawPacket {
	t.Helper()
	select {
	case p, ok := <-r.pkts:
		if !ok {
			t.Fatal("raw receiver closed")
		}
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no packet from session")
	}
	return rawPacket{}
}
