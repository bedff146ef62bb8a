// Package webrtcgwtest is a WebRTC peer standing in for a browser in
// tests of the media gateway and of what uses it (the SBC): a pion
// PeerConnection whose microphone and speaker are a media.Session, so the
// same tone generator and meter as the lab's phones tell what it sends
// and hears. Tests only: it fails the test on every error.
package webrtcgwtest

import (
	"context"
	"math"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/sip/sdpneg"
)

// Browser is the stand-in. Session is its microphone (sending its tone)
// and speaker (metering what it hears).
type Browser struct {
	PC      *webrtc.PeerConnection
	Session *media.Session
	track   *webrtc.TrackLocalStaticRTP
	added   bool
}

// TelephoneEventPT is the browser's telephone-event number (Chromium's).
const TelephoneEventPT = 126

// New starts a browser on ip (its host candidates and its loopback media
// bridge; an interface address, which ICE gathers from) sending hz in
// codec (media.PCMU or media.PCMA) until ctx ends.
func New(t testing.TB, ctx context.Context, ip netip.Addr, codec string, hz float64) *Browser {
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
		MimeType: "audio/telephone-event", ClockRate: 8000, SDPFmtpLine: "0-16"}, PayloadType: TelephoneEventPT}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(ip.IsLoopback())
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(a net.IP) bool {
		got, ok := netip.AddrFromSlice(a)
		return ok && got.Unmap() == ip
	})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(capab, "mic", "test-browser")
	if err != nil {
		t.Fatal(err)
	}
	bridge := listen(t, ip)
	conn := listen(t, ip)
	s, err := media.New(media.Config{RTP: conn, Remote: addrOf(bridge), Codec: codec, ToneHz: hz})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	go s.Run(ctx)
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
	return &Browser{PC: pc, Session: s, track: track}
}

func listen(t testing.TB, ip netip.Addr) net.PacketConn {
	t.Helper()
	c, err := media.ListenRTP(ip, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c net.PacketConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// Offer makes the browser's first offer with every candidate in it.
func (b *Browser) Offer(t testing.TB) string {
	t.Helper()
	if _, err := b.PC.AddTransceiverFromTrack(b.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	b.added = true
	return b.local(t, func() (webrtc.SessionDescription, error) { return b.PC.CreateOffer(nil) })
}

// Reoffer is a re-INVITE's offer from the page: dir is the direction it
// asks for (sendonly: the page holds the call), restart an ICE restart
// (new credentials). Like a browser whose transceiver direction was set,
// the offer says dir; the microphone keeps sending while it may.
func (b *Browser) Reoffer(t testing.TB, dir sdpneg.Direction, restart bool) string {
	t.Helper()
	sdp := b.local(t, func() (webrtc.SessionDescription, error) {
		return b.PC.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	})
	// pion has no public transceiver direction: the page's choice is
	// written into the offer it sends, as RTCRtpTransceiver.direction
	// would have written it.
	return strings.ReplaceAll(sdp, "a=sendrecv", "a="+dir.String())
}

// Answer answers an offer (the gateway's, for a call to the browser).
func (b *Browser) Answer(t testing.TB, offer string) string {
	t.Helper()
	if err := b.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	if !b.added {
		if _, err := b.PC.AddTrack(b.track); err != nil {
			t.Fatal(err)
		}
		b.added = true
	}
	return b.local(t, func() (webrtc.SessionDescription, error) { return b.PC.CreateAnswer(nil) })
}

// Accept takes the answer to the browser's last offer.
func (b *Browser) Accept(t testing.TB, answer string) {
	t.Helper()
	if err := b.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("browser: answer not accepted: %v\n%s", err, answer)
	}
}

func (b *Browser) local(t testing.TB, make func() (webrtc.SessionDescription, error)) string {
	t.Helper()
	d, err := make()
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(b.PC)
	if err := b.PC.SetLocalDescription(d); err != nil {
		t.Fatal(err)
	}
	<-done
	return b.PC.LocalDescription().SDP
}

// Hears waits until s hears hz (within 2 %), or fails after 10 s.
func Hears(t testing.TB, who string, s *media.Session, hz float64) media.Stats {
	t.Helper()
	return HearsAfter(t, who, s, hz, 0)
}

// HearsAfter is Hears with at least 50 audio packets more than after
// (the count before the media changed): the meter's one-second estimate
// then describes the new audio, not what was heard before.
func HearsAfter(t testing.TB, who string, s *media.Session, hz float64, after uint64) media.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := s.Stats()
		if st.Received.AudioPackets > after+50 && Near(st.Received.ToneHz, hz) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not hear %v Hz: %s", who, hz, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Near says whether a measured tone is hz, within 2 %.
func Near(got, hz float64) bool { return math.Abs(got-hz) <= hz*0.02 }

// Silent checks that s receives at most a few packets for d (the far
// side stopped sending to it), and returns how many it got.
func Silent(t testing.TB, who string, s *media.Session, d time.Duration) uint64 {
	t.Helper()
	before := s.Stats().Received.Packets
	time.Sleep(d)
	got := s.Stats().Received.Packets - before
	if got > 2 {
		t.Fatalf("%s still received %d packets in %v", who, got, d)
	}
	return got
}

// Ufrag is an SDP's ICE username fragment: a new one is an ICE restart.
func Ufrag(sdp string) string {
	for line := range strings.Lines(sdp) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}
