package sbc

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/sip/sipdialog"
)

// webrtcEdge puts the WebRTC media gateway at the SBC's WebSocket edge:
// a browser's INVITE (DTLS-SRTP, ICE) has its SDP replaced by the
// gateway's plain RTP offer before the SBC's call logic sees it, and the
// SDP of the answer going back is replaced by the gateway's WebRTC answer.
// For the rest of the SBC the browser is then an ordinary phone whose RTP
// comes from the gateway's socket on the access media address, relayed as
// usual. Interim: once calls run on the shared B2B leg engine, the
// browser's leg should own its gateway call instead of this wrapper.
type webrtcEdge struct {
	gw *webrtcgw.Gateway

	mu    sync.Mutex
	calls map[string]*webrtcgw.Call // by the browser's Call-ID
}

// isWebRTCSDP says whether an SDP body is a WebRTC one (DTLS-SRTP).
func isWebRTCSDP(body []byte) bool {
	return strings.Contains(string(body), "UDP/TLS/RTP/SAVP")
}

// adaptWebRTC runs for every request arriving over WebSocket. It returns
// the transaction the SBC's handlers must answer on, and false when it
// answered the request itself.
func (s *SBC) adaptWebRTC(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort) (sip.ServerTransaction, bool) {
	w := s.wss.Load()
	cid := sipdialog.CallID(req)
	switch {
	case req.Method == sip.BYE:
		if w != nil && w.edge != nil {
			w.edge.end(cid)
		}
		return tx, true
	case req.Method != sip.INVITE || !isWebRTCSDP(req.Body()):
		return tx, true
	case w == nil || w.edge == nil:
		s.reply(access, tx, req, src, sip.StatusNotAcceptableHere, "Not Acceptable Here: WebRTC media gateway off")
		return nil, false
	case sipdialog.ToTag(req) != "":
		// A re-INVITE from the browser (hold, ICE restart) would need a
		// renegotiation of the gateway's PeerConnection: not offered yet.
		s.reply(access, tx, req, src, sip.StatusNotAcceptableHere, "Not Acceptable Here: WebRTC re-INVITE not supported")
		return nil, false
	}
	e := w.edge
	conn, err := media.ListenRTP(s.mediaIP[access], 0)
	if err != nil {
		s.log.Warn("webrtc: no RTP socket", "err", err)
		s.reply(access, tx, req, src, sip.StatusServiceUnavailable, "Service Unavailable")
		return nil, false
	}
	call, err := e.gw.NewCall(webrtcgw.CallConfig{Core: conn, CoreIP: s.mediaIP[access], Name: cid})
	if err != nil {
		s.log.Warn("webrtc: new call", "err", err)
		s.reply(access, tx, req, src, sip.StatusServiceUnavailable, "Service Unavailable")
		return nil, false
	}
	plain, err := call.OfferFromBrowser(string(req.Body()))
	if err != nil {
		call.Close()
		s.log.Info("webrtc: browser offer refused", "call_id", cid, "err", err)
		s.reply(access, tx, req, src, sip.StatusNotAcceptableHere, "Not Acceptable Here")
		return nil, false
	}
	e.mu.Lock()
	if old := e.calls[cid]; old != nil {
		old.Close() // a retransmission would have been absorbed by sipgo: this is a new call
	}
	e.calls[cid] = call
	e.mu.Unlock()
	req.SetBody(plain)
	s.log.Info("webrtc: browser call through the media gateway", "call_id", cid, "source", src, "core_rtp", call.Stats().CoreLocal)
	return &webrtcTx{ServerTransaction: tx, s: s, e: e, call: call, cid: cid, req: req}, true
}

// end closes a browser call's gateway leg.
func (e *webrtcEdge) end(cid string) {
	e.mu.Lock()
	c := e.calls[cid]
	delete(e.calls, cid)
	e.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

func (e *webrtcEdge) closeAll() {
	e.mu.Lock()
	calls := e.calls
	e.calls = map[string]*webrtcgw.Call{}
	e.mu.Unlock()
	for _, c := range calls {
		c.Close()
	}
}

// webrtcTx turns the SBC's plain answers to a browser's INVITE into
// WebRTC answers. The first SDP answer (183 or 2xx) is converted once;
// later ones (the 2xx after a 183, retransmissions) carry the same
// browser answer.
type webrtcTx struct {
	sip.ServerTransaction
	s    *SBC
	e    *webrtcEdge
	call *webrtcgw.Call
	cid  string
	req  *sip.Request

	mu     sync.Mutex
	answer []byte
}

func (t *webrtcTx) Respond(res *sip.Response) error {
	if res.StatusCode >= 300 {
		t.e.end(t.cid)
		return t.ServerTransaction.Respond(res)
	}
	if len(res.Body()) == 0 || isWebRTCSDP(res.Body()) {
		return t.ServerTransaction.Respond(res)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.answer == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ans, err := t.call.AnswerFromCore(ctx, res.Body())
		cancel()
		if err != nil {
			// The core answered something the browser cannot take: the
			// browser gets 488 now, and the core's dialog is left to the
			// SBC's timers (no ACK comes for its 2xx).
			t.s.log.Warn("webrtc: core answer not usable", "call_id", t.cid, "err", err)
			t.e.end(t.cid)
			return t.ServerTransaction.Respond(sip.NewResponseFromRequest(t.req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
		}
		t.answer = []byte(ans)
	}
	res.SetBody(t.answer)
	return t.ServerTransaction.Respond(res)
}

// WebRTCCalls are the media gateway's live calls (empty without one).
func (s *SBC) WebRTCCalls() []webrtcgw.Stats {
	w := s.wss.Load()
	if w == nil || w.edge == nil {
		return nil
	}
	return w.edge.gw.Calls()
}

// endWebRTC releases a browser call's gateway leg when the SBC hangs up
// toward the browser (or could not send it the INVITE).
func (s *SBC) endWebRTC(req *sip.Request) {
	if w := s.wss.Load(); w != nil && w.edge != nil && isWS(strings.ToLower(req.Transport())) {
		w.edge.end(sipdialog.CallID(req))
	}
}

// offerToBrowser runs for every request the SBC sends on the access side.
// An initial INVITE to a WebSocket phone gets the gateway's WebRTC offer
// in place of the relay's plain one; the returned wrap then turns the
// browser's SDP answers back into plain ones. Everything else passes.
func (s *SBC) offerToBrowser(r realm, req *sip.Request) (wrap func(sip.ClientTransaction) sip.ClientTransaction, err error) {
	pass := func(tx sip.ClientTransaction) sip.ClientTransaction { return tx }
	w := s.wss.Load()
	if r != access || w == nil || w.edge == nil || req.Method != sip.INVITE || sipdialog.ToTag(req) != "" ||
		!isWS(strings.ToLower(req.Transport())) || len(req.Body()) == 0 || isWebRTCSDP(req.Body()) {
		return pass, nil
	}
	e := w.edge
	cid := sipdialog.CallID(req)
	conn, err := media.ListenRTP(s.mediaIP[access], 0)
	if err != nil {
		return nil, err
	}
	call, err := e.gw.NewCall(webrtcgw.CallConfig{Core: conn, CoreIP: s.mediaIP[access], Name: cid})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	offer, err := call.OfferFromCore(ctx, req.Body())
	cancel()
	if err != nil {
		call.Close()
		return nil, err
	}
	e.mu.Lock()
	e.calls[cid] = call
	e.mu.Unlock()
	req.SetBody([]byte(offer))
	s.log.Info("webrtc: call to a browser through the media gateway", "call_id", cid, "core_rtp", call.Stats().CoreLocal)
	return func(tx sip.ClientTransaction) sip.ClientTransaction { return newBrowserTx(tx, s, e, call, cid) }, nil
}

// browserTx relays a client transaction's responses with the browser's
// SDP answer turned into the gateway's plain one. Done closes only once
// every response has been passed on, so a 2xx is never lost to a
// select that sees the transaction end first.
type browserTx struct {
	sip.ClientTransaction
	out  chan *sip.Response
	done chan struct{}
}

func newBrowserTx(tx sip.ClientTransaction, s *SBC, e *webrtcEdge, call *webrtcgw.Call, cid string) *browserTx {
	b := &browserTx{ClientTransaction: tx, out: make(chan *sip.Response, 16), done: make(chan struct{})}
	var plain []byte
	convert := func(res *sip.Response) *sip.Response {
		if res.StatusCode >= 300 {
			e.end(cid)
			return res
		}
		if len(res.Body()) == 0 || !isWebRTCSDP(res.Body()) {
			return res
		}
		if plain == nil {
			p, err := call.AnswerFromBrowser(string(res.Body()))
			if err != nil {
				s.log.Warn("webrtc: browser answer not usable", "call_id", cid, "err", err)
				return res
			}
			plain = p
		}
		res.SetBody(plain)
		return res
	}
	forward := func(res *sip.Response) {
		select {
		case b.out <- convert(res):
		default:
			s.log.Warn("webrtc: response dropped: nobody reads the transaction", "call_id", cid, "code", res.StatusCode)
		}
	}
	go func() {
		defer close(b.done)
		for {
			select {
			case res := <-tx.Responses():
				forward(res)
			case <-tx.Done():
				for {
					select {
					case res := <-tx.Responses():
						forward(res)
					default:
						return
					}
				}
			}
		}
	}()
	return b
}

func (b *browserTx) Responses() <-chan *sip.Response { return b.out }
func (b *browserTx) Done() <-chan struct{}           { return b.done }
