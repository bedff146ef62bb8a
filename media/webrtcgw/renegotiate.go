package webrtcgw

import (
	"context"
	"fmt"
	"regexp"
	"slices"

	"github.com/pion/webrtc/v4"

	"github.com/siplab/siplab/sip/sdpneg"
)

// Renegotiation once a call is up (a re-INVITE or UPDATE on either side).
//
// The two sides are renegotiated separately, as media gateways do: what
// the core re-offers (the PBX holding the browser with music, resuming,
// moving its media for a transfer) only changes where and whether the
// gateway sends plain RTP, and is answered here — the browser's
// PeerConnection, its ICE and DTLS stay as they are and the browser never
// sees a re-INVITE for it. What the browser re-offers (hold from the page,
// resume, an ICE restart) is carried to the core as a plain re-offer with
// the browser's direction; only when the core accepts it does the
// PeerConnection take the browser's new description, so a refusal leaves
// both sides as they were.

// ReofferFromCore answers a plain re-offer from the core (nil: an
// offerless re-INVITE, answered with the gateway's current description as
// its offer). The gateway follows the core's new address and direction
// and keeps its own codec and port; the answer mirrors the direction
// (RFC 3264 §6.1: sendonly is answered recvonly) and carries the
// browser's own hold, if it holds. The browser is not involved.
func (c *Call) ReofferFromCore(offer []byte) ([]byte, error) {
	c.neg.Lock()
	defer c.neg.Unlock()
	c.mu.Lock()
	st, codec, coreTE, browserDir := c.state, c.codec, c.coreTE, c.browserDir
	c.mu.Unlock()
	if st != active || c.closed() {
		return nil, fmt.Errorf("%w: core re-offer in state %d", ErrState, st)
	}
	if len(offer) == 0 {
		d := c.coreDescription(codec, coreTE != 0)
		d.Direction = browserDir
		return sdpneg.Build(d)
	}
	r, err := sdpneg.Parse(offer)
	if err != nil {
		return nil, fmt.Errorf("%w: core re-offer: %w", ErrBadSDP, err)
	}
	if r.Port != 0 && !slices.ContainsFunc(r.AudioCodecs(), codec.Same) {
		// Another codec would need a new PeerConnection with the browser.
		return nil, fmt.Errorf("%w: core re-offered %v, the browser's call is %v", ErrNoCommonCodec, r.Codecs, codec)
	}
	c.mu.Lock()
	c.coreVersion++
	c.mu.Unlock()
	local := c.coreDescription(codec, coreTE != 0)
	local.Direction = browserDir
	body, _, te, err := sdpneg.Answer(r, local)
	if err != nil {
		return nil, fmt.Errorf("%w: core re-offer: %w", ErrNoCommonCodec, err)
	}
	c.mu.Lock()
	c.coreRemote, c.coreDir = remoteOf(r), r.Direction
	c.renegotiations++
	if r.Port == 0 {
		c.coreDir = sdpneg.Inactive
	} else {
		c.coreTE = te
	}
	c.mu.Unlock()
	c.log.Info("core re-offer answered at the gateway", "core_rtp", remoteOf(r), "core_direction", r.Direction)
	return body, nil
}

// ReofferFromBrowser takes a re-offer from the browser and returns the
// plain re-offer toward the core: the same codec and port, the browser's
// direction (sendonly when the page holds). The browser's answer follows
// from AnswerFromCore, or the core refused it and Refused says so.
func (c *Call) ReofferFromBrowser(offer string) ([]byte, error) {
	r, err := parseBrowserOffer(offer, "browser re-offer")
	if err != nil {
		return nil, err
	}
	c.neg.Lock()
	defer c.neg.Unlock()
	c.mu.Lock()
	st, codec, browserTE := c.state, c.codec, c.browserTE
	c.mu.Unlock()
	if st != active || c.closed() {
		return nil, fmt.Errorf("%w: browser re-offer in state %d", ErrState, st)
	}
	if !slices.ContainsFunc(r.AudioCodecs(), codec.Same) {
		return nil, fmt.Errorf("%w: the browser re-offered %v, its call is %v", ErrNoCommonCodec, r.Codecs, codec)
	}
	c.mu.Lock()
	c.coreVersion++
	c.mu.Unlock()
	d := c.coreDescription(codec, browserTE != 0)
	d.Direction = r.Direction
	body, ours, err := c.buildCoreOffer(d)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.ourOffer, c.reoffer, c.reofferDir = ours, offer, r.Direction
	c.state = browserReoffered
	c.mu.Unlock()
	return body, nil
}

// Refused ends a browser re-offer the core did not accept: nothing
// changed on either side, the browser gets the core's refusal.
func (c *Call) Refused() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == browserReoffered {
		c.state, c.reoffer = active, ""
	}
}

// applyReoffer gives the PeerConnection the browser's re-offer the core
// has accepted and returns the browser's answer (new candidates too, after
// an ICE restart).
func (c *Call) applyReoffer(ctx context.Context) (string, error) {
	c.mu.Lock()
	offer, dir, pc := c.reoffer, c.reofferDir, c.pc
	c.mu.Unlock()
	fail := func(err error) (string, error) {
		c.mu.Lock()
		c.state, c.reoffer = active, ""
		c.mu.Unlock()
		return "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("%w: browser re-offer: %w", ErrBadSDP, err))
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("%w: answer the browser's re-offer: %w", ErrBadSDP, err))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return fail(fmt.Errorf("webrtcgw: set local answer: %w", err))
	}
	c.mu.Lock()
	c.browserDir, c.reoffer, c.state = dir, "", active
	c.renegotiations++
	c.mu.Unlock()
	c.log.Info("browser re-offer answered", "direction", dir)
	sdp, err := c.localSDP(ctx, gathered)
	if err != nil {
		return "", err
	}
	return withDirection(sdp, dir.Answer(sdpneg.SendRecv)), nil
}

// directionAttr is an SDP direction attribute line.
var directionAttr = regexp.MustCompile(`(?m)^a=(sendrecv|sendonly|recvonly|inactive)\r?$`)

// withDirection writes dir into the answer to a browser's re-offer. pion
// answers a sendonly offer sendrecv (it has no way to set a transceiver's
// direction from outside); RFC 3264 §6.1 wants recvonly, and the gateway
// keeps to it itself (nothing goes to a browser that holds).
func withDirection(sdp string, dir sdpneg.Direction) string {
	return directionAttr.ReplaceAllString(sdp, "a="+dir.String()+"\r")
}
