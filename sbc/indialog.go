package sbc

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/sipdialog"
	"github.com/siplab/siplab/sip/sipnet"
)

// lookupLeg finds the leg an in-dialog request on realm r belongs to.
func (s *SBC) lookupLeg(r realm, req *sip.Request) *leg {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.legs[sipdialog.KeyOf(req)]
	if l == nil || l.realm != r {
		return nil
	}
	if l.Dlg.RemoteTag != "" && l.Dlg.RemoteTag != sipdialog.FromTag(req) {
		return nil
	}
	return l
}

// onAck takes the caller's ACK for a 2xx the SBC sent (initial INVITE or
// re-INVITE). The other leg's 2xx was already ACKed by the SBC when it
// arrived, so nothing is forwarded. ACKs for non-2xx never get here: the
// server transaction absorbs them (hop by hop).
func (s *SBC) onAck(r realm, req *sip.Request, src netip.AddrPort) {
	l := s.lookupLeg(r, req)
	if l == nil || req.CSeq() == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.realm == access {
		l.dest = src
	}
	l.AckedLocked(req.CSeq().SeqNo)
}

// onInDialog handles a request inside a call: BYE ends both legs,
// everything else is carried to the other leg and its answer back.
func (s *SBC) onInDialog(r realm, req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort) {
	l := s.lookupLeg(r, req)
	if l == nil {
		s.reply(r, tx, req, src, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	c := l.c
	s.mu.Lock()
	ok := l.Dlg.AcceptSeq(req.CSeq().SeqNo)
	if ok && l.realm == access {
		// Signalling latches to wherever the peer's requests come from
		// now: a phone whose NAT mapping changed is followed.
		l.dest, l.transport = src, strings.ToLower(req.Transport())
	}
	state := l.State
	s.mu.Unlock()
	if !ok {
		s.reply(r, tx, req, src, sip.StatusInternalServerError, "Server Internal Error: CSeq out of order")
		return
	}
	if state == b2bleg.Terminated && req.Method != sip.BYE {
		s.reply(r, tx, req, src, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	switch req.Method {
	case sip.BYE:
		s.onBye(l, req, tx, src)
	case sip.PRACK:
		// The SBC never sends reliable provisionals (100rel is not offered).
		s.reply(r, tx, req, src, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
	case sip.INVITE, sip.UPDATE:
		if state != b2bleg.Confirmed && req.Method == sip.INVITE {
			s.reply(r, tx, req, src, sip.StatusRequestPending, "Request Pending")
			return
		}
		o := c.other(l)
		s.mu.Lock()
		glare := l.busy || o.busy
		if !glare {
			l.busy, o.busy = true, true
		}
		s.mu.Unlock()
		if glare {
			s.reply(r, tx, req, src, sip.StatusRequestPending, "Request Pending", sip.NewHeader("Retry-After", "1"))
			return
		}
		// The offer/answer exchange is over when the answer is known,
		// not when the ACK comes: the peer may send its next re-INVITE
		// right after its ACK, and must not get 491 for it.
		var once sync.Once
		release := func() {
			once.Do(func() {
				s.mu.Lock()
				l.busy, o.busy = false, false
				s.mu.Unlock()
			})
		}
		defer release()
		c.forward(l, req, tx, src, release)
	default:
		c.forward(l, req, tx, src, func() {})
	}
}

// onBye answers a BYE and ends the other leg with its own.
func (s *SBC) onBye(l *leg, req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort) {
	c := l.c
	s.respond(l.realm, tx, c.response(l, req, sip.StatusOK, "OK", nil, nil), src)
	who := "caller"
	if l.idx == 1 {
		who = "callee"
	}
	s.mu.Lock()
	was := l.State
	l.State = b2bleg.Terminated
	s.mu.Unlock()
	if was == b2bleg.Terminated {
		return
	}
	c.log.Info("BYE received", "from", who, "source", src)
	c.other(l).Drop(context.Background(), "BYE from "+who)
	c.end(who, "BYE from "+who)
}

// forward carries an in-dialog request from leg l to the other leg as a
// new request of that dialog and relays the final answer back. Offers
// and answers (re-INVITE, UPDATE) are pointed at the relay on the way.
//
// answered is called once the far side's final answer is in (before the
// SBC's own 2xx waits for its ACK).
func (c *Call) forward(l *leg, req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort, answered func()) {
	s := c.s
	o := c.other(l)
	s.mu.Lock()
	if o.State != b2bleg.Confirmed && o.State != b2bleg.Early {
		s.mu.Unlock()
		s.reply(l.realm, tx, req, src, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	out := o.Dlg.Request(req.Method, 0)
	s.mu.Unlock()
	for out.RemoveHeader("Max-Forwards") {
	}
	out.AppendHeader(maxForwards(req))
	copyHeaders(out, req, passRequest)
	if req.Method == sip.INVITE || req.Method == sip.UPDATE || req.Method == sip.REFER ||
		req.Method == sip.NOTIFY || req.Method == sip.SUBSCRIBE {
		out.AppendHeader(s.contact(o.realm, o.transport))
	}
	if ua := s.userAgentTowards(o.realm, req, "User-Agent"); ua != nil {
		out.AppendHeader(ua)
	}
	if o.realm == core {
		out.AppendHeader(sip.NewHeader(CorrelationHeader, c.corr))
	}
	body := c.relayBody(req, l, o)
	if len(req.Body()) > 0 && body == nil {
		s.reply(l.realm, tx, req, src, sip.StatusNotAcceptableHere, "Not Acceptable Here: unusable SDP")
		return
	}
	ct := "application/sdp"
	if h := req.GetHeader("Content-Type"); h != nil {
		ct = h.Value()
	}
	offer := isSDP(ct) && (req.Method == sip.INVITE || req.Method == sip.UPDATE)
	// A browser's re-offer waits at its gateway for the core's answer;
	// however the exchange ends without one, nothing of it may stay —
	// said before the browser hears the outcome and can offer again.
	refused := func() {}
	if lm := l.Media(); lm != nil && offer && body != nil {
		refused = lm.Refused
	}
	if om := o.Media(); om != nil && offer {
		ctx, cancel := s.gatewayCtx()
		toPeer, local, err := om.OfferOut(ctx, body)
		cancel()
		if err != nil {
			refused()
			c.log.Info("re-offer refused at the gateway", "method", req.Method, "err", err)
			s.reply(l.realm, tx, req, src, sip.StatusNotAcceptableHere, "Not Acceptable Here")
			return
		}
		if local {
			c.answerAtGateway(l, o, req, tx, src, toPeer, answered)
			return
		}
		body = toPeer
	}
	setBody(out, body, ct)
	s.direct(o, out)

	ctx, cancel := s.lifetime(64 * sip.T1)
	defer cancel()
	otx, err := s.transact(ctx, o.realm, out)
	if err != nil {
		refused()
		c.log.Warn("in-dialog request not sent", "method", req.Method, "err", err)
		s.reply(l.realm, tx, req, src, sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	defer otx.Terminate()
	res, err := sipnet.FinalResponse(ctx, otx, s.done)
	if errors.Is(err, sipnet.ErrStopped) {
		return
	}
	if err != nil {
		refused()
		s.reply(l.realm, tx, req, src, sip.StatusRequestTimeout, "Request Timeout")
		return
	}
	if res.IsSuccess() && req.Method == sip.INVITE {
		o.Ack(otx, res)
	} else if res.IsSuccess() && req.Method == sip.UPDATE {
		s.mu.Lock()
		if ctc := res.Contact(); ctc != nil {
			o.Dlg.RemoteTarget = *ctc.Address.Clone()
		}
		s.mu.Unlock()
	}
	var back []byte
	if res.IsSuccess() {
		back = c.relayBody(res, o, l)
	}
	if back == nil {
		refused()
	}
	answered()
	resp := c.response(l, req, res.StatusCode, res.Reason, back, res)
	if res.StatusCode == sip.StatusCallTransactionDoesNotExists || res.StatusCode == sip.StatusRequestTimeout {
		c.log.Info("other leg is gone", "method", req.Method, "code", res.StatusCode)
	}
	if res.IsSuccess() && req.Method == sip.INVITE {
		if !c.sendAndAwaitAck(l, tx, resp, req.CSeq().SeqNo, src) {
			c.hangup(context.Background(), "sbc", "no ACK for re-INVITE 2xx")
		}
		return
	}
	s.respond(l.realm, tx, resp, src)
}

// onOutOfDialog handles OPTIONS, MESSAGE and NOTIFY outside a call: for
// the SBC itself (OPTIONS: 200, its keep-alive answer), or relayed across
// the border as one transaction — to the next hop from the access side,
// to a registered phone (by token) from the core.
func (s *SBC) onOutOfDialog(r realm, req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort) {
	var dest netip.AddrPort
	var ruri sip.Uri
	transport := "udp"
	to := core
	tok, hasTok := req.Recipient.UriParams.Get(tokenParam)
	switch {
	case r == core && hasTok:
		reg := s.lookupReg(tok)
		if reg == nil {
			s.reply(r, tx, req, src, sip.StatusTemporarilyUnavailable, "Temporarily Unavailable")
			return
		}
		s.mu.Lock()
		ruri, dest, transport = *reg.contact.Address.Clone(), reg.source, reg.transport
		s.mu.Unlock()
		ruri.Headers = nil
		to = access
	case req.Recipient.User == "" || s.isOwnAddress(r, req.Recipient) || r == core:
		if req.Method == sip.OPTIONS {
			s.reply(r, tx, req, src, sip.StatusOK, "OK", sip.NewHeader("Allow", allowed),
				sip.NewHeader("Accept", "application/sdp"))
			return
		}
		s.reply(r, tx, req, src, sip.StatusNotFound, "Not Found")
		return
	default:
		ruri, dest = *req.Recipient.Clone(), s.cfg.NextHop
		ruri.Headers = nil
	}
	out := sip.NewRequest(req.Method, ruri)
	out.AppendHeader(maxForwards(req))
	from := &sip.FromHeader{DisplayName: req.From().DisplayName, Address: s.borderURI(req.From().Address, to), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	out.AppendHeader(from)
	out.AppendHeader(&sip.ToHeader{DisplayName: req.To().DisplayName, Address: s.borderURI(req.To().Address, to), Params: sip.NewParams()})
	cid := sip.CallIDHeader(s.newCallID(to))
	out.AppendHeader(&cid)
	out.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: req.Method})
	copyHeaders(out, req, passRequest)
	if ua := s.userAgentTowards(to, req, "User-Agent"); ua != nil {
		out.AppendHeader(ua)
	}
	ct := "text/plain"
	if h := req.GetHeader("Content-Type"); h != nil {
		ct = h.Value()
	}
	if isSDP(ct) && len(req.Body()) > 0 {
		// No relay outside a call: an SDP here would leak an address.
		s.reply(r, tx, req, src, sip.StatusNotAcceptableHere, "Not Acceptable Here")
		return
	}
	body := req.Body()
	if to == access {
		body = s.scrub(body)
	}
	setBody(out, body, ct)
	out.SetDestination(dest.String())
	out.SetTransport(strings.ToUpper(transport))
	ctx, cancel := s.lifetime(32 * time.Second)
	defer cancel()
	res, err := s.do(ctx, to, out)
	if err != nil {
		s.reply(r, tx, req, src, sip.StatusRequestTimeout, "Request Timeout")
		return
	}
	back := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, nil)
	copyHeaders(back, res, passResponse)
	if r == access {
		s.serverHeaders(back, res)
	}
	s.respond(r, tx, back, src)
}

// isOwnAddress says whether a URI names the SBC's socket on realm r.
func (s *SBC) isOwnAddress(r realm, u sip.Uri) bool {
	ip, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil {
		return false
	}
	a := s.ep[r].Addr()
	port := u.Port
	if port == 0 {
		port = 5060
	}
	return ip.Unmap() == a.Addr() && uint16(port) == a.Port()
}

// answerAtGateway answers a re-offer toward a gateway leg o that its
// media answered itself (the browser is not asked): the answer goes back
// on leg l through the relay like the peer's would.
func (c *Call) answerAtGateway(l, o *leg, req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort, answer []byte, answered func()) {
	s := c.s
	back := c.rewriteBody(answer, o, l)
	answered()
	if back == nil {
		s.reply(l.realm, tx, req, src, sip.StatusNotAcceptableHere, "Not Acceptable Here: unusable SDP")
		return
	}
	c.log.Info("re-offer answered at the browser's gateway", "method", req.Method, "leg", o.idx)
	resp := c.response(l, req, sip.StatusOK, "OK", back, nil)
	if req.Method == sip.INVITE {
		if !c.sendAndAwaitAck(l, tx, resp, req.CSeq().SeqNo, src) {
			c.hangup(context.Background(), "sbc", "no ACK for re-INVITE 2xx")
		}
		return
	}
	s.respond(l.realm, tx, resp, src)
}
