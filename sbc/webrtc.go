package sbc

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/sip/b2bleg"
)

// A browser's leg is a gateway leg: its b2bleg.Media is the WebRTC media
// gateway's call (media/webrtcgw), so the browser's ICE and DTLS-SRTP end
// at the SBC's access side and the rest of the call — the relay, the core,
// the PBX — sees an ordinary phone whose plain RTP comes from the
// gateway's socket on the access media address. Every SDP crossing the leg
// goes through it (relayBody, forward): the browser's offers and answers
// become plain ones, the core's become the browser's, and the core's
// re-offers (the PBX's hold with music, resume, a transfer moving its
// media) are answered by the gateway without a re-INVITE to the browser.
// The leg's call ends the gateway's with it (releaseMedia).

var _ b2bleg.Media = (*webrtcgw.Call)(nil)

// gatewayTimeout bounds a gateway step that waits for ICE gathering.
const gatewayTimeout = 10 * time.Second

// isWebRTCSDP says whether an SDP body is a WebRTC one (DTLS-SRTP).
func isWebRTCSDP(body []byte) bool {
	return strings.Contains(string(body), "UDP/TLS/RTP/SAVP")
}

// gateway is the media gateway for WebSocket phones, nil without one.
func (s *SBC) gateway() *webrtcgw.Gateway {
	if w := s.wss.Load(); w != nil {
		return w.gw
	}
	return nil
}

// newGatewayCall is a browser leg's media: a gateway call with its plain
// RTP socket on the access media address, named by the browser's Call-ID.
func (s *SBC) newGatewayCall(name string) (*webrtcgw.Call, error) {
	gw := s.gateway()
	if gw == nil {
		return nil, errNoGateway
	}
	conn, err := media.ListenRTP(s.mediaIP[access], 0)
	if err != nil {
		return nil, err
	}
	return gw.NewCall(webrtcgw.CallConfig{Core: conn, CoreIP: s.mediaIP[access], Name: name})
}

var errNoGateway = errors.New("sbc: WebRTC media gateway off")

// browserOffer makes the caller's leg a gateway leg when a browser calls
// (a WebRTC offer over WebSocket): the offer the call goes on with is the
// gateway's plain one. A nil Media: not a browser, the body as it is.
func (s *SBC) browserOffer(r realm, req *sip.Request) (b2bleg.Media, []byte, *refusal) {
	if r != access || !isWS(strings.ToLower(req.Transport())) || !isWebRTCSDP(req.Body()) {
		return nil, req.Body(), nil
	}
	call, err := s.newGatewayCall(req.CallID().Value())
	if errors.Is(err, errNoGateway) {
		return nil, nil, &refusal{sip.StatusNotAcceptableHere, "Not Acceptable Here: WebRTC media gateway off"}
	}
	if err != nil {
		s.log.Warn("webrtc: no gateway call", "err", err)
		return nil, nil, &refusal{sip.StatusServiceUnavailable, "Service Unavailable"}
	}
	plain, err := call.OfferIn(req.Body())
	if err != nil {
		call.Close()
		s.log.Info("webrtc: browser offer refused", "call_id", req.CallID().Value(), "err", err)
		return nil, nil, &refusal{sip.StatusNotAcceptableHere, "Not Acceptable Here"}
	}
	s.log.Info("webrtc: browser call through the media gateway", "call_id", req.CallID().Value(), "core_rtp", call.CoreLocal())
	return call, plain, nil
}

// offerToBrowser makes the callee's leg a gateway leg when the call goes
// to a WebSocket phone: it gets the gateway's WebRTC offer for the
// relay's plain one. A nil Media: not a browser (or no gateway), the
// body as it is.
func (s *SBC) offerToBrowser(rt route, callID string, body []byte) (b2bleg.Media, []byte, error) {
	if rt.realm != access || !isWS(strings.ToLower(rt.transport)) || s.gateway() == nil || isWebRTCSDP(body) {
		return nil, body, nil
	}
	call, err := s.newGatewayCall(callID)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := s.gatewayCtx()
	defer cancel()
	offer, _, err := call.OfferOut(ctx, body)
	if err != nil {
		call.Close()
		return nil, nil, err
	}
	s.log.Info("webrtc: call to a browser through the media gateway", "call_id", callID, "core_rtp", call.CoreLocal())
	return call, offer, nil
}

// WebRTCCalls are the media gateway's live calls (empty without one).
func (s *SBC) WebRTCCalls() []webrtcgw.Stats {
	if gw := s.gateway(); gw != nil {
		return gw.Calls()
	}
	return nil
}

// gatewayCtx bounds a media step on a gateway leg (ICE gathering).
func (s *SBC) gatewayCtx() (context.Context, context.CancelFunc) { return s.lifetime(gatewayTimeout) }
