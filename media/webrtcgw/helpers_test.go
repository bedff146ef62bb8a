package webrtcgw

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/media/webrtcgw/webrtcgwtest"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// newTestBrowser is the browser stand-in on loopback.
func newTestBrowser(t *testing.T, ctx context.Context, codec string, hz float64) *webrtcgwtest.Browser {
	return webrtcgwtest.New(t, ctx, loopback, codec, hz)
}

func listen(t *testing.T) net.PacketConn {
	t.Helper()
	c, err := media.ListenRTP(loopback, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func addrOf(c net.PacketConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// hears waits until s hears hz (within 2 %), or fails after 10 s.
func hears(t *testing.T, who string, s *media.Session, hz float64) media.Stats {
	t.Helper()
	return webrtcgwtest.Hears(t, who, s, hz)
}

func newGateway(t *testing.T, cfg Config) *Gateway {
	t.Helper()
	if cfg.IPs == nil {
		cfg.IPs = []netip.Addr{loopback}
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func newCallT(t *testing.T, g *Gateway) *Call {
	t.Helper()
	c, err := g.NewCall(CallConfig{Core: listen(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func isErr(err, target error) bool { return errors.Is(err, target) }

func sdpAnswer(s string) webrtc.SessionDescription {
	return webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: s}
}
