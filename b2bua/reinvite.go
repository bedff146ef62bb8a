package b2bua

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipdialog"
)

// inDialog finds the leg of an in-dialog request and applies the CSeq
// rule; nil means a response was sent.
func (b *B2BUA) inDialog(req *sip.Request, tx sip.ServerTransaction) *leg {
	l := b.lookupLeg(req)
	if l == nil {
		b.reply(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", "")
		return nil
	}
	b.mu.Lock()
	ok := l.Dlg.AcceptSeq(req.CSeq().SeqNo)
	st := l.State
	b.mu.Unlock()
	if !ok {
		b.reply(tx, req, sip.StatusInternalServerError, "Server Internal Error", "CSeq lower than a previous request")
		return nil
	}
	if st == b2bleg.Terminated {
		b.reply(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", "dialog already ended")
		return nil
	}
	return l
}

// onReinvite handles a mid-call INVITE from either phone: hold, resume, a
// new address. With media anchored the PBX answers it itself (the other
// phone keeps talking to the relay and needs no re-INVITE); with direct
// media it is passed to the other leg.
func (b *B2BUA) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	l := b.inDialog(req, tx)
	if l == nil {
		return
	}
	c := l.c
	b.mu.Lock()
	st, pending := l.State, l.AwaitingAckLocked()
	b.mu.Unlock()
	if st != b2bleg.Confirmed {
		b.reply(tx, req, sip.StatusRequestPending, "Request Pending", "call not answered yet")
		return
	}
	if pending != nil {
		// Our 2xx may still be waiting for its ACK, which sipgo hands to
		// another goroutine: give it a moment before refusing (§14.2).
		select {
		case <-pending:
		case <-time.After(sip.T1):
			b.reply(tx, req, sip.StatusInternalServerError, "Server Internal Error", "previous INVITE not acknowledged", sip.NewHeader("Retry-After", "1"))
			return
		}
	}
	var offer *sdpneg.Remote
	if len(req.Body()) > 0 {
		var err error
		if offer, err = sdpneg.Parse(req.Body()); err != nil {
			b.reply(tx, req, sip.StatusBadRequest, "Bad SDP", err.Error())
			return
		}
	}
	if ct := req.Contact(); ct != nil {
		b.mu.Lock()
		l.Dlg.RemoteTarget = *ct.Address.Clone() // §12.2.2 target refresh
		b.mu.Unlock()
	}
	b.send(tx, c.inResponse(req, sip.StatusTrying, "Trying", nil))
	b.mu.Lock()
	anchored := c.relay != nil
	b.mu.Unlock()
	if !anchored {
		if isHold(offer) && b.settings.get().MOH {
			// Music on hold needs the PBX in the media path.
			c.holdWithMusic(l, req, tx, offer)
			return
		}
		c.forwardReinvite(l, req, tx)
		return
	}
	body, err := c.answerLocally(l, offer, req.Body())
	if err != nil {
		b.reply(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here", err.Error())
		return
	}
	res := c.inResponse(req, sip.StatusOK, "OK", body)
	res.AppendHeader(b.contact())
	if c.sendAndAwaitAck(l, tx, req, res, nil) && offer != nil && !isHold(offer) {
		// A resume: an anchoring done only for the hold ends now.
		c.settleMedia()
	}
}

// inResponse is a response on an in-dialog request, correlated.
func (c *Call) inResponse(req *sip.Request, code int, reason string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	res.AppendHeader(c.correlation())
	if len(body) > 0 {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	return res
}

// answerLocally answers a phone's re-offer on an anchored call: the relay
// follows its new address and its hold state, the answer keeps the PBX's
// address and mirrors the direction (RFC 3264 §6.1: sendonly → recvonly).
// A nil offer (offerless re-INVITE) gets our current description.
func (c *Call) answerLocally(l *leg, offer *sdpneg.Remote, offerBody []byte) ([]byte, error) {
	b := c.b
	b.mu.Lock()
	r, last := c.relay, l.localBody
	b.mu.Unlock()
	dir := sdpneg.SendRecv
	if offer != nil {
		r.setRemote(l.idx, offer.AddrPort())
		holding := offer.Direction != sdpneg.SendRecv || offer.Addr.IsUnspecified()
		r.setHolding(l.idx, holding)
		dir = offer.Direction.Answer(sdpneg.SendRecv)
		if offer.Addr.IsUnspecified() {
			dir = sdpneg.Inactive
		}
		what := "resume"
		if holding {
			what = "hold (" + offer.Direction.String() + ")"
		}
		c.event("%s from leg %s", what, legNames[l.idx])
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if offer != nil {
		l.remote, l.remoteBody = offer, offerBody
	}
	body, err := rewriteSDP(last, &l.origin, rewrite{addr: r.addr(l.idx).Addr(), port: int(r.addr(l.idx).Port()), dir: &dir})
	if err != nil {
		return nil, err
	}
	l.localBody = body
	return body, nil
}

// forwardReinvite passes a re-INVITE to the other leg (direct media) and
// its answer back.
func (c *Call) forwardReinvite(l *leg, req *sip.Request, tx sip.ServerTransaction) {
	b := c.b
	o := c.other(l)
	if o == nil || o.Load() != b2bleg.Confirmed {
		b.reply(tx, req, sip.StatusRequestPending, "Request Pending", "other leg not confirmed")
		return
	}
	out := c.reinviteRequest(o, req.Body())
	ctx, cancel := b.lifetime(32 * time.Second)
	defer cancel()
	otx, err := b.transact(ctx, out)
	if err != nil {
		b.reply(tx, req, sip.StatusServiceUnavailable, "Service Unavailable", err.Error())
		return
	}
	defer otx.Terminate()
	for {
		select {
		case res := <-otx.Responses():
			if res.StatusCode < 200 {
				continue
			}
			if res.StatusCode >= 300 {
				b.send(tx, c.inResponse(req, res.StatusCode, res.Reason, nil))
				return
			}
			o.Ack(otx, res)
			if len(res.Body()) > 0 {
				if r, err := sdpneg.Parse(res.Body()); err == nil {
					b.mu.Lock()
					o.remote, o.remoteBody = r, res.Body()
					b.mu.Unlock()
				}
			}
			if offer, err := sdpneg.Parse(req.Body()); err == nil {
				b.mu.Lock()
				l.remote, l.remoteBody = offer, req.Body()
				b.mu.Unlock()
				c.event("re-INVITE from leg %s (%s) passed through", legNames[l.idx], offer.Direction)
			}
			r := c.inResponse(req, sip.StatusOK, "OK", res.Body())
			r.AppendHeader(b.contact())
			c.sendAndAwaitAck(l, tx, req, r, nil)
			return
		case <-otx.Done():
			b.reply(tx, req, sip.StatusRequestTimeout, "Request Timeout", "other leg did not answer the re-INVITE")
			return
		case <-ctx.Done():
			return
		}
	}
}

// onInDialog passes INFO (DTMF), UPDATE and MESSAGE to the other leg and
// its answer back; an out-of-dialog MESSAGE is routed by the dial plan.
func (b *B2BUA) onInDialog(req *sip.Request, tx sip.ServerTransaction) {
	if b.check(req, tx) {
		return
	}
	if sipdialog.ToTag(req) == "" {
		if req.Method == sip.MESSAGE {
			b.pagerMessage(req, tx)
			return
		}
		b.reply(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", "")
		return
	}
	l := b.inDialog(req, tx)
	if l == nil {
		return
	}
	c := l.c
	b.mu.Lock()
	anchored := c.relay != nil
	b.mu.Unlock()
	if req.Method == sip.UPDATE && len(req.Body()) > 0 && anchored {
		offer, err := sdpneg.Parse(req.Body())
		if err != nil {
			b.reply(tx, req, sip.StatusBadRequest, "Bad SDP", err.Error())
			return
		}
		body, err := c.answerLocally(l, offer, req.Body())
		if err != nil {
			b.reply(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here", err.Error())
			return
		}
		b.send(tx, c.inResponse(req, sip.StatusOK, "OK", body))
		return
	}
	o := c.other(l)
	if o == nil || o.Load() == b2bleg.Terminated {
		b.reply(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", "other leg is gone")
		return
	}
	b.mu.Lock()
	out := request(&o.Dlg, req.Method, 0)
	b.mu.Unlock()
	out.AppendHeader(c.correlation())
	for _, name := range []string{"Content-Type", "Event", "Info-Package"} {
		if h := req.GetHeader(name); h != nil {
			out.AppendHeader(sip.NewHeader(name, h.Value()))
		}
	}
	res, ok := b.relay(req, tx, out)
	if !ok {
		return
	}
	c.event("%s from leg %s relayed: %d", req.Method, legNames[l.idx], res.StatusCode)
	back := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, res.Body())
	back.AppendHeader(c.correlation())
	if ct := res.GetHeader("Content-Type"); ct != nil && len(res.Body()) > 0 {
		back.AppendHeader(sip.NewHeader("Content-Type", ct.Value()))
	}
	b.send(tx, back)
}

// relay sends out, the request req is relayed as, with req's body and
// returns the final response; false when none came (req got 408).
func (b *B2BUA) relay(req *sip.Request, tx sip.ServerTransaction, out *sip.Request) (*sip.Response, bool) {
	out.SetBody(req.Body())
	ctx, cancel := b.lifetime(32 * time.Second)
	defer cancel()
	res, err := b.do(ctx, out)
	if err != nil {
		b.reply(tx, req, sip.StatusRequestTimeout, "Request Timeout", err.Error())
		return nil, false
	}
	return res, true
}

// pagerMessage delivers an out-of-dialog MESSAGE to the user an extension
// names (RFC 3428 pager mode), through the proxy like a call.
func (b *B2BUA) pagerMessage(req *sip.Request, tx sip.ServerTransaction) {
	ext, ok := b.cfg.DialPlan.Lookup(req.Recipient.User)
	if !ok || ext.Target.Kind != KindUser {
		b.reply(tx, req, sip.StatusNotFound, "Not Found", "no user extension "+req.Recipient.User)
		return
	}
	out, err := b.outOfDialog(sip.MESSAGE, ext.Target.User, req.From().Address.User)
	if err != nil {
		b.reply(tx, req, sip.StatusTemporarilyUnavailable, "Temporarily Unavailable", err.Error())
		return
	}
	if h := req.GetHeader("Content-Type"); h != nil {
		out.AppendHeader(sip.NewHeader("Content-Type", h.Value()))
	}
	res, ok := b.relay(req, tx, out)
	if !ok {
		return
	}
	b.log.Info("MESSAGE relayed", "to", ext.Target.User, "code", res.StatusCode, "call_id", sipdialog.CallID(req))
	b.send(tx, sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, nil))
}

// outOfDialog builds a request to user (through the proxy, else to the
// newest binding's source) from fromUser at the PBX.
func (b *B2BUA) outOfDialog(method sip.RequestMethod, user, fromUser string) (*sip.Request, error) {
	ruri := sip.Uri{Scheme: "sip", User: user, Host: b.cfg.Domain}
	dest := b.cfg.Proxy
	if dest == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		bs, err := b.cfg.Location.Lookup(ctx, "sip:"+user+"@"+b.cfg.Domain)
		cancel()
		if err != nil {
			return nil, err
		}
		if len(bs) == 0 {
			return nil, ErrNotRegistered
		}
		bd := bs[len(bs)-1]
		for _, x := range bs {
			if x.Updated.After(bd.Updated) {
				bd = x
			}
		}
		if err := sip.ParseUri(trimAngle(bd.ContactURI), &ruri); err != nil {
			return nil, err
		}
		ruri.UriParams, ruri.Headers = nil, nil
		dest = sipdialog.HostPort(ruri)
		if bd.Source.IsValid() {
			dest = bd.Source.String()
		}
	}
	pbx := b.ep.Addr()
	req := sip.NewRequest(method, ruri)
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: fromUser, Host: pbx.Addr().String(), Port: int(pbx.Port())}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: b.cfg.Domain}, Params: sip.NewParams()})
	cid := sip.CallIDHeader(b.newCallID())
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: method})
	req.AppendHeader(sip.NewHeader("User-Agent", b.cfg.UserAgent))
	req.SetDestination(dest)
	req.SetTransport("UDP")
	return req, nil
}
