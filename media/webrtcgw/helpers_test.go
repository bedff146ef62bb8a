package webrtcgw

import (
	"context"
	"errors"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/siplab/siplab/media"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// testBrowser is a WebRTC peer standing in for the browser: a pion
// PeerConnection whose microphone and speaker are a media.Session on a
// loopback socket, so the same tone generator and meter as the lab's
// phones tell what it sends and hears.
type testBrowser struct {
	pc      *webrtc.PeerConnection
	track   *webrtc.TrackLocalStaticRTP
	bridge  net.PacketConn // between the session and the PeerConnection
	session *media.Session
}

func newTestBrowser(t *testing.T, ctx context.Context, codec string, hz float64) *testBrowser {
	t.Helper()
	mime, pt := webrtc.MimeTypePCMU, webrtc.PayloadType(0)
	if codec == media.PCMA {
		mime, pt = webrtc.MimeTypePCMA, 8
	}
	m := &webrtc.MediaEngine{}
	capab := webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 8000, Channels: 1}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: capab, PayloadType: pt}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: mimeTelephoneEvent, ClockRate: 8000, SDPFmtpLine: "0-16"}, PayloadType: 126}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(capab, "mic", "test-browser")
	if err != nil {
		t.Fatal(err)
	}
	bridge := listen(t)
	t.Cleanup(func() { bridge.Close() })
	conn := listen(t)
	s, err := media.New(media.Config{RTP: conn, Remote: addrOf(bridge), Codec: codec, ToneHz: hz})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	go s.Run(ctx)
	b := &testBrowser{pc: pc, track: track, bridge: bridge, session: s}
	// microphone: the session's RTP into the PeerConnection
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := bridge.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = track.Write(buf[:n])
		}
	}()
	// speaker: the PeerConnection's RTP to the session
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			_, _ = bridge.WriteTo(buf[:n], conn.LocalAddr())
		}
	})
	return b
}

// offer makes the browser's offer with every candidate in it.
func (b *testBrowser) offer(t *testing.T) string {
	t.Helper()
	if _, err := b.pc.AddTransceiverFromTrack(b.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	o, err := b.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-done
	return b.pc.LocalDescription().SDP
}

// answer answers the gateway's offer.
func (b *testBrowser) answer(t *testing.T, offer string) string {
	t.Helper()
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pc.AddTrack(b.track); err != nil {
		t.Fatal(err)
	}
	a, err := b.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(a); err != nil {
		t.Fatal(err)
	}
	<-done
	return b.pc.LocalDescription().SDP
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := s.Stats()
		if st.Received.AudioPackets > 50 && math.Abs(st.Received.ToneHz-hz) <= hz*0.02 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not hear %v Hz: %s", who, hz, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
