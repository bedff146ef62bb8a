package webrtcgw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/sip/sdpneg"
)

const mimeTelephoneEvent = "audio/telephone-event"

// coreDTMFPT is the telephone-event number the gateway offers toward the
// core and the browser when it makes the offer.
const coreDTMFPT = 101

// negotiation is where a call's offer/answer stands.
type negotiation int

const (
	idle             negotiation = iota
	browserOffered               // the browser called: core offer sent, core answer awaited
	coreOffered                  // the core called the browser: browser offer sent, its answer awaited
	active                       // both sides negotiated
	browserReoffered             // the browser re-offered (hold, resume): core re-offer sent, its answer awaited
)

// Call is one browser call: a PeerConnection toward the browser and a
// plain RTP socket toward the core, with the packets relayed between them.
type Call struct {
	g         *Gateway
	log       *slog.Logger
	name      string
	core      net.PacketConn
	coreIP    netip.Addr
	coreLocal netip.AddrPort
	sessionID uint64
	created   time.Time

	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	// neg serialises the negotiation steps, which call into pion; mu
	// guards the fields and is never held across a pion call (pion's
	// callbacks take it).
	neg        sync.Mutex
	mu         sync.Mutex
	state      negotiation
	pc         *webrtc.PeerConnection
	track      *webrtc.TrackLocalStaticRTP
	gathered   <-chan struct{}
	codec      sdpneg.Codec // static PCMU (0) or PCMA (8), same number on both sides
	browserTE  uint8        // telephone-event number on the browser side, 0 = none
	coreTE     uint8        // and on the core side
	coreRemote netip.AddrPort
	coreOffer  *sdpneg.Remote // the core's offer (calls to the browser)
	ourOffer   *sdpneg.Remote // our offer to the core (calls from the browser, re-offers)
	// coreVersion is the o= version of the gateway's core-side SDP, one
	// up on every new description (RFC 3264 §8).
	coreVersion uint64
	// coreDir and browserDir are what each side last said of its own
	// stream (sendonly = it holds the other); the relay sends a side
	// nothing while its direction says it does not receive.
	coreDir    sdpneg.Direction
	browserDir sdpneg.Direction
	// reoffer is the browser's re-offer, applied to the PeerConnection
	// only once the core accepted it (renegotiate.go).
	reoffer        string
	reofferDir     sdpneg.Direction
	renegotiations int
	// answerIn and answerOut are the last answer converted (leg.go), for
	// the same answer arriving again.
	answerIn, answerOut []byte
	iceState            string
	pcState             string
	toCore              flow
	toBrowser           flow
	out                 continuity // toward the browser; coreReadLoop's own
	sources             []media.SourceCount
}

func newCall(g *Gateway, cc CallConfig, local netip.AddrPort) *Call {
	return &Call{
		g: g, log: g.log.With("call", cc.Name), name: cc.Name,
		core: cc.Core, coreIP: cc.CoreIP, coreLocal: local,
		sessionID: sdpneg.NewSessionID(), coreVersion: 1, created: time.Now(),
		done: make(chan struct{}), iceState: "new", pcState: "new",
	}
}

// Name is the call's label.
func (c *Call) Name() string { return c.name }

// Done is closed when the call is closed.
func (c *Call) Done() <-chan struct{} { return c.done }

// Close tears the PeerConnection down and closes the core socket.
func (c *Call) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.mu.Lock()
		pc := c.pc
		c.mu.Unlock()
		if pc != nil {
			_ = pc.Close()
		}
		_ = c.core.Close()
		c.wg.Wait()
		c.g.forget(c)
	})
	return nil
}

func (c *Call) getState() negotiation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// g711 picks the first PCMU or PCMA of offered, in the offerer's order.
func g711(offered []sdpneg.Codec) (sdpneg.Codec, bool) {
	for _, o := range offered {
		if o.Same(sdpneg.PCMU) {
			return sdpneg.PCMU, true
		}
		if o.Same(sdpneg.PCMA) {
			return sdpneg.PCMA, true
		}
	}
	return sdpneg.Codec{}, false
}

func mimeOf(c sdpneg.Codec) string {
	if c.Same(sdpneg.PCMA) {
		return webrtc.MimeTypePCMA
	}
	return webrtc.MimeTypePCMU
}

// newPeer makes the PeerConnection and the track the core's audio goes out on.
func (c *Call) newPeer(codec sdpneg.Codec, te uint8) error {
	params := webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mimeOf(codec), ClockRate: 8000, Channels: 1},
		PayloadType:        webrtc.PayloadType(codec.PayloadType),
	}
	api, err := c.g.api(params, te)
	if err != nil {
		return err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: c.g.iceServers()})
	if err != nil {
		return fmt.Errorf("webrtcgw: new peer connection: %w", err)
	}
	track, err := webrtc.NewTrackLocalStaticRTP(params.RTPCodecCapability, "audio", "siplab-"+c.name)
	if err != nil {
		_ = pc.Close()
		return fmt.Errorf("webrtcgw: local track: %w", err)
	}
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		c.mu.Lock()
		c.iceState = s.String()
		c.mu.Unlock()
		c.log.Info("ICE state", "state", s.String())
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		c.mu.Lock()
		c.pcState = s.String()
		c.mu.Unlock()
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.browserReadLoop(tr)
		}()
	})
	c.mu.Lock()
	c.pc, c.track, c.codec = pc, track, codec
	c.toCore.meter, _ = media.NewToneMeter(codec.Name)
	c.toBrowser.meter, _ = media.NewToneMeter(codec.Name)
	c.mu.Unlock()
	return nil
}

// drainRTCP reads a sender's RTCP so pion's buffers do not fill.
func (c *Call) drainRTCP(s *webrtc.RTPSender) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := s.Read(buf); err != nil {
				return
			}
		}
	}()
}

func (c *Call) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// OfferFromBrowser takes the browser's offer (an INVITE from the browser)
// and returns the plain RTP/AVP offer toward the core: the first of PCMU
// and PCMA in the browser's order, telephone-event if the browser offered
// it. The browser's answer follows from AnswerFromCore.
func (c *Call) OfferFromBrowser(offer string) ([]byte, error) {
	r, err := parseBrowserOffer(offer, "browser offer")
	if err != nil {
		return nil, err
	}
	codec, ok := g711(r.AudioCodecs())
	if !ok {
		return nil, fmt.Errorf("%w: the browser offered %v", ErrNoCommonCodec, r.Codecs)
	}
	c.neg.Lock()
	defer c.neg.Unlock()
	if st := c.getState(); st != idle || c.closed() {
		return nil, fmt.Errorf("%w: browser offer in state %d", ErrState, st)
	}
	if err := c.newPeer(codec, r.DTMFPayloadType); err != nil {
		return nil, err
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return nil, fmt.Errorf("%w: browser offer: %w", ErrBadSDP, err)
	}
	sender, err := c.pc.AddTrack(c.track)
	if err != nil {
		return nil, fmt.Errorf("webrtcgw: add track: %w", err)
	}
	c.drainRTCP(sender)
	ans, err := c.pc.CreateAnswer(nil)
	if err != nil {
		return nil, fmt.Errorf("%w: answer the browser: %w", ErrBadSDP, err)
	}
	c.gathered = webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(ans); err != nil {
		return nil, fmt.Errorf("webrtcgw: set local answer: %w", err)
	}
	body, ours, err := c.buildCoreOffer(c.coreDescription(codec, r.DTMFPayloadType != 0))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.browserTE = r.DTMFPayloadType
	c.browserDir = r.Direction
	c.ourOffer = ours
	c.state = browserOffered
	c.mu.Unlock()
	return body, nil
}

// parseBrowserOffer reads a browser's offer (what names it in errors):
// it must be DTLS-SRTP.
func parseBrowserOffer(offer, what string) (*sdpneg.Remote, error) {
	r, err := sdpneg.Parse([]byte(offer))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadSDP, what, err)
	}
	if !strings.Contains(r.Proto, "TLS") {
		return nil, fmt.Errorf("%w: %s has %s, want UDP/TLS/RTP/SAVPF (DTLS-SRTP)", ErrBadSDP, what, r.Proto)
	}
	return r, nil
}

// AnswerFromCore takes the core's answer to OfferFromBrowser's offer and
// returns the browser's answer, once ICE candidates are gathered.
func (c *Call) AnswerFromCore(ctx context.Context, answer []byte) (string, error) {
	r, err := sdpneg.Parse(answer)
	if err != nil {
		return "", fmt.Errorf("%w: core answer: %w", ErrBadSDP, err)
	}
	c.neg.Lock()
	defer c.neg.Unlock()
	c.mu.Lock()
	if c.state != browserOffered && c.state != browserReoffered {
		c.mu.Unlock()
		return "", fmt.Errorf("%w: core answer in state %d", ErrState, c.state)
	}
	codec, te, err := sdpneg.Negotiated(c.ourOffer, r)
	if err != nil {
		c.mu.Unlock()
		return "", fmt.Errorf("%w: core answer: %w", ErrNoCommonCodec, err)
	}
	if !codec.Same(c.codec) {
		c.mu.Unlock()
		return "", fmt.Errorf("%w: core answered %v to an offer of %v", ErrNoCommonCodec, codec, c.codec)
	}
	c.coreTE = te
	c.coreRemote, c.coreDir = remoteOf(r), r.Direction
	if c.state == browserReoffered {
		c.mu.Unlock()
		return c.applyReoffer(ctx)
	}
	c.state = active
	gathered := c.gathered
	c.mu.Unlock()
	return c.localSDP(ctx, gathered)
}

// OfferFromCore takes a plain RTP offer from the core (a call to the
// browser) and returns the WebRTC offer for the browser, once candidates
// are gathered. The core's answer follows from AnswerFromBrowser.
func (c *Call) OfferFromCore(ctx context.Context, offer []byte) (string, error) {
	r, err := sdpneg.Parse(offer)
	if err != nil {
		return "", fmt.Errorf("%w: core offer: %w", ErrBadSDP, err)
	}
	if r.Proto != "RTP/AVP" {
		return "", fmt.Errorf("%w: core offer has %s, want RTP/AVP", ErrBadSDP, r.Proto)
	}
	codec, ok := g711(r.AudioCodecs())
	if !ok {
		return "", fmt.Errorf("%w: the core offered %v", ErrNoCommonCodec, r.Codecs)
	}
	c.neg.Lock()
	defer c.neg.Unlock()
	if st := c.getState(); st != idle || c.closed() {
		return "", fmt.Errorf("%w: core offer in state %d", ErrState, st)
	}
	te := uint8(0)
	if r.DTMFPayloadType != 0 {
		te = coreDTMFPT
	}
	if err := c.newPeer(codec, te); err != nil {
		return "", err
	}
	tr, err := c.pc.AddTransceiverFromTrack(c.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	if err != nil {
		return "", fmt.Errorf("webrtcgw: add transceiver: %w", err)
	}
	c.drainRTCP(tr.Sender())
	o, err := c.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("webrtcgw: offer to the browser: %w", err)
	}
	c.gathered = webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(o); err != nil {
		return "", fmt.Errorf("webrtcgw: set local offer: %w", err)
	}
	c.mu.Lock()
	c.coreOffer = r
	c.coreTE = r.DTMFPayloadType
	c.coreRemote, c.coreDir = remoteOf(r), r.Direction
	c.state = coreOffered
	gathered := c.gathered
	c.mu.Unlock()
	return c.localSDP(ctx, gathered)
}

// AnswerFromBrowser takes the browser's answer to OfferFromCore's offer
// and returns the plain RTP answer toward the core.
func (c *Call) AnswerFromBrowser(answer string) ([]byte, error) {
	r, err := sdpneg.Parse([]byte(answer))
	if err != nil {
		return nil, fmt.Errorf("%w: browser answer: %w", ErrBadSDP, err)
	}
	c.neg.Lock()
	defer c.neg.Unlock()
	if st := c.getState(); st != coreOffered {
		return nil, fmt.Errorf("%w: browser answer in state %d", ErrState, st)
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return nil, fmt.Errorf("%w: browser answer: %w", ErrBadSDP, err)
	}
	if _, ok := g711(r.AudioCodecs()); !ok {
		return nil, fmt.Errorf("%w: the browser answered %v", ErrNoCommonCodec, r.Codecs)
	}
	body, _, te, err := sdpneg.Answer(c.coreOffer, c.coreDescription(c.codec, r.DTMFPayloadType != 0))
	if err != nil {
		return nil, fmt.Errorf("webrtcgw: core answer: %w", err)
	}
	c.mu.Lock()
	c.browserTE = r.DTMFPayloadType
	c.browserDir = r.Direction
	c.coreTE = te
	c.state = active
	c.mu.Unlock()
	return body, nil
}

// coreDescription is the gateway's plain RTP side in SDP, at the current
// o= version.
func (c *Call) coreDescription(codec sdpneg.Codec, dtmf bool) sdpneg.Description {
	c.mu.Lock()
	version := c.coreVersion
	c.mu.Unlock()
	d := sdpneg.Description{
		Addr: c.coreIP, Port: int(c.coreLocal.Port()), Codecs: []sdpneg.Codec{codec},
		SessionID: c.sessionID, SessionVersion: version, Username: "siplab-webrtcgw",
	}
	if dtmf {
		d.DTMFPayloadType = coreDTMFPT
	}
	return d
}

// buildCoreOffer is the gateway's offer toward the core, and as parsed: the
// core's answer is checked against it.
func (c *Call) buildCoreOffer(d sdpneg.Description) ([]byte, *sdpneg.Remote, error) {
	body, err := sdpneg.Build(d)
	if err != nil {
		return nil, nil, fmt.Errorf("webrtcgw: core offer: %w", err)
	}
	ours, err := sdpneg.Parse(body)
	if err != nil {
		return nil, nil, fmt.Errorf("webrtcgw: core offer: %w", err)
	}
	return body, ours, nil
}

// remoteOf is where the core wants RTP; nothing is sent on hold (0.0.0.0)
// or to a disabled stream.
func remoteOf(r *sdpneg.Remote) netip.AddrPort {
	if r.Port == 0 || r.Addr.IsUnspecified() || !r.Addr.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(r.Addr.Unmap(), uint16(r.Port))
}

// localSDP waits for gathering and returns the local description with
// every candidate in it (no trickle over SIP).
func (c *Call) localSDP(ctx context.Context, gathered <-chan struct{}) (string, error) {
	t := time.NewTimer(c.g.cfg.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		c.log.Warn("ICE gathering timed out: answering with the candidates so far", "after", c.g.cfg.GatherTimeout)
	case <-ctx.Done():
		return "", fmt.Errorf("webrtcgw: gathering: %w", ctx.Err())
	case <-c.done:
		return "", fmt.Errorf("%w: call closed while gathering", ErrState)
	}
	c.mu.Lock()
	pc := c.pc
	c.mu.Unlock()
	ld := pc.LocalDescription()
	if ld == nil {
		return "", fmt.Errorf("%w: no local description", ErrState)
	}
	return ld.SDP, nil
}

// browserReadLoop relays the browser's decrypted RTP to the core.
func (c *Call) browserReadLoop(tr *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		c.mu.Lock()
		dst := c.coreRemote
		if !c.coreDir.CanRecv() {
			dst = netip.AddrPort{} // the core holds the browser: nothing goes to it
		}
		pt, ok := c.mapPT(p.PayloadType, c.browserTE, c.coreTE)
		c.toCore.count(p, pt == c.codec.PayloadType && ok, ok && pt != c.codec.PayloadType, now)
		c.mu.Unlock()
		if !ok || !dst.IsValid() {
			c.mu.Lock()
			c.toCore.Dropped++
			c.mu.Unlock()
			continue
		}
		p.PayloadType = pt
		n, err := p.MarshalTo(buf)
		if err == nil {
			_, err = c.core.WriteTo(buf[:n], net.UDPAddrFromAddrPort(dst))
		}
		if err != nil {
			if c.closed() {
				return
			}
			c.mu.Lock()
			c.toCore.fail(err)
			c.mu.Unlock()
		}
	}
}

// mapPT maps a received payload type to the other side's number: audio
// keeps its static number, telephone-event changes number, anything else
// (and telephone-event the far side did not accept) is not relayed.
func (c *Call) mapPT(pt, fromTE, toTE uint8) (uint8, bool) {
	switch {
	case pt == c.codec.PayloadType:
		return pt, true
	case fromTE != 0 && pt == fromTE && toTE != 0:
		return toTE, true
	}
	return 0, false
}

// coreReadLoop relays the core's RTP to the browser and records where it
// came from.
func (c *Call) coreReadLoop() {
	defer c.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := c.core.ReadFrom(buf)
		if err != nil {
			if c.closed() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil || p.Version != 2 {
			c.mu.Lock()
			c.toBrowser.Invalid++
			c.mu.Unlock()
			continue
		}
		src := netip.AddrPort{}
		if ua, ok := from.(*net.UDPAddr); ok {
			src = ua.AddrPort()
		}
		now := time.Now()
		c.mu.Lock()
		c.countSource(src)
		track := c.track
		audio := c.state != idle && p.PayloadType == c.codec.PayloadType
		dtmf := c.coreTE != 0 && p.PayloadType == c.coreTE
		c.toBrowser.count(&p, audio, dtmf, now)
		// telephone-event toward the browser is not relayed: the browser
		// has no use for it (it is a phone, not a PBX); nor is anything
		// while the browser holds the call (it said it does not receive).
		send := audio && c.browserDir.CanRecv()
		if !send {
			c.toBrowser.Dropped++
		}
		c.mu.Unlock()
		if !send || track == nil {
			continue
		}
		c.out.rewrite(&p)
		if err := track.WriteRTP(&p); err != nil && !errors.Is(err, net.ErrClosed) {
			c.mu.Lock()
			c.toBrowser.fail(err)
			c.mu.Unlock()
		}
	}
}

// maxSources bounds the per-source list like media does.
const maxSources = 8

func (c *Call) countSource(src netip.AddrPort) {
	for i := range c.sources {
		if c.sources[i].Addr == src {
			c.sources[i].Packets++
			return
		}
	}
	if len(c.sources) < maxSources {
		c.sources = append(c.sources, media.SourceCount{Addr: src, Packets: 1})
	}
}

// continuity makes the core's audio one stream toward the browser. The
// core's source changes under a call — the PBX's music on hold, a
// transfer target, the phone again — each with its own SSRC, sequence
// and timestamp; the track sends them all under the gateway's one SSRC,
// and a sequence number jumping back would be dropped by the browser's
// SRTP replay protection. So each new source continues the numbering
// where the last one stopped, with the marker bit of a new talkspurt.
type continuity struct {
	started      bool
	ssrc         uint32 // the current source
	seqOff       uint16
	tsOff        uint32
	lastSeq      uint16
	lastTS       uint32
	lastDuration uint32
}

func (k *continuity) rewrite(p *rtp.Packet) {
	if !k.started || p.SSRC != k.ssrc {
		next, ts := p.SequenceNumber, p.Timestamp
		if k.started {
			next, ts = k.lastSeq+1, k.lastTS+max(k.lastDuration, 160)
		}
		k.seqOff, k.tsOff = next-p.SequenceNumber, ts-p.Timestamp
		k.ssrc, k.started = p.SSRC, true
		p.Marker = true
	}
	p.SequenceNumber += k.seqOff
	p.Timestamp += k.tsOff
	if d := uint32(len(p.Payload)); d > 0 {
		k.lastDuration = d // G.711: one sample per byte
	}
	k.lastSeq, k.lastTS = p.SequenceNumber, p.Timestamp
}
