package uaclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipdialog"
)

// Call places a call to target ("bob", "bob@host:port" or a SIP URI)
// through the proxy. It returns once the INVITE is sent; follow the call
// with (*Call).Wait or Status. A call that failed to start is returned
// terminated along with the error, so its status can still be read.
func (p *Phone) Call(ctx context.Context, target string) (*Call, error) {
	return p.CallAs(ctx, target, "")
}

// call places a call to a parsed URI; extra headers go into the INVITE
// (Referred-By and Replaces for a transfer).
func (p *Phone) call(ctx context.Context, to sip.Uri, extra ...sip.Header) (*Call, error) {
	return p.callAs(ctx, to, "", extra...)
}

// callAs is call with fromUser ("" = ours) as the From user part.
func (p *Phone) callAs(ctx context.Context, to sip.Uri, fromUser string, extra ...sip.Header) (*Call, error) {
	if p.isClosed() {
		return nil, ErrClosed
	}
	callID := newCallID(p.local)
	p.mu.Lock()
	c := p.newCall(Outgoing, callID, to.String())
	c.state = StateCalling
	p.mu.Unlock()

	if err := c.bindRTP(); err != nil {
		c.terminate(0, "", "local", err.Error())
		return c, err
	}
	s := p.currentSettings()
	p.mu.Lock()
	desc := c.localDescriptionLocked(s, sdpneg.SendRecv)
	p.mu.Unlock()
	body, err := sdpneg.Build(desc)
	if err != nil {
		c.terminate(0, "", "local", err.Error())
		return c, fmt.Errorf("uaclient: build offer: %w", err)
	}

	req := p.newRequest(sip.INVITE, to, to, callID, 1, s)
	if fromUser != "" {
		req.From().Address.User = fromUser
	}
	req.AppendHeader(p.contactHeader(s))
	req.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	req.AppendHeader(sip.NewHeader("Supported", p.supported()))
	if s.Rel100 == Rel100Require {
		req.AppendHeader(sip.NewHeader("Require", "100rel"))
	}
	for _, h := range extra {
		req.AppendHeader(h)
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	if err := p.toProxy(req); err != nil {
		c.terminate(0, "", "local", err.Error())
		return c, err
	}
	from := req.From()
	fromTag, _ := from.Params.Get("tag")
	p.mu.Lock()
	c.dlg = sipdialog.Dialog{CallID: callID, LocalTag: fromTag, LocalURI: from.Address, RemoteURI: to, LocalSeq: 1}
	c.invite = req
	p.mu.Unlock()

	tx, err := p.transact(ctx, req)
	if err != nil {
		c.terminate(0, "", "local", err.Error())
		return c, err
	}
	c.log.Info("INVITE sent", "to", to.String(), "proxy", p.proxy(), "sdp", desc.Addr, "rtp_port", desc.Port)
	go c.runInvite(tx, req)
	return c, nil
}

func (c *Call) status() CallStatus {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return c.statusLocked()
}

// runInvite follows one INVITE client transaction (and its successors after
// a 407/401) until a final response.
func (c *Call) runInvite(tx sip.ClientTransaction, req *sip.Request) {
	p := c.p
	var auth authSession
	for {
		var res *sip.Response
		select {
		case res = <-tx.Responses():
		case <-tx.Done():
			if c.isTerminated() {
				return
			}
			reason := "Request Timeout (no final response)"
			if err := tx.Err(); err != nil && !errors.Is(err, sip.ErrTransactionTerminated) {
				reason = fmt.Sprintf("Request Timeout (%v)", err)
			}
			c.terminate(sip.StatusRequestTimeout, reason, "local", "no final response to INVITE")
			return
		case <-p.done:
			return
		}
		switch {
		case res.StatusCode < 200:
			c.onProvisional(res)
		case res.StatusCode < 300:
			c.onInvite2xx(tx, req, res)
			return
		case res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired:
			// sipgo's transaction already sent the ACK for this non-2xx.
			next := p.reissue(req)
			if err := auth.answer(p, next, res); err != nil {
				c.log.Warn("INVITE challenge not answered", "err", err)
				c.terminate(res.StatusCode, res.Reason, "remote", err.Error())
				return
			}
			p.mu.Lock()
			cancelled := c.cancelReq
			if !cancelled {
				c.invite = next
				c.dlg.LocalSeq = next.CSeq().SeqNo
				c.provSeen = false
				c.rseqSet = false
			}
			p.mu.Unlock()
			if cancelled {
				c.terminate(sip.StatusRequestTerminated, "Request Terminated", "local", "cancelled before the challenge was answered")
				return
			}
			ntx, err := p.transact(context.Background(), next)
			if err != nil {
				c.terminate(0, "", "local", err.Error())
				return
			}
			tx, req = ntx, next
		default:
			c.log.Info("INVITE failed", "code", res.StatusCode, "reason", res.Reason)
			by, why := "remote", fmt.Sprintf("%d %s from remote", res.StatusCode, res.Reason)
			p.mu.Lock()
			if c.canceled && res.StatusCode == sip.StatusRequestTerminated {
				by, why = "local", "CANCEL sent, 487 received"
			}
			p.mu.Unlock()
			c.terminate(res.StatusCode, res.Reason, by, why)
			return
		}
	}
}

func (c *Call) onProvisional(res *sip.Response) {
	p := c.p
	p.mu.Lock()
	var prackRSeq uint32
	if res.StatusCode > 100 && hasOptionTag(res, "Require", "100rel") {
		rseq, ok, err := c.reliableProvisionalLocked(res)
		if err != nil || !ok {
			p.mu.Unlock()
			if err != nil {
				c.log.Warn("reliable provisional ignored", "code", res.StatusCode, "err", err)
			}
			// A retransmission (already PRACKed) or out of order.
			return
		}
		prackRSeq = rseq
		c.prack = append(c.prack, fmt.Sprintf("%d RSeq %d received reliably", res.StatusCode, rseq))
	}
	invite := c.invite
	c.provSeen = true
	sendCancel := c.cancelReq && !c.canceled
	if res.StatusCode > 100 {
		// An early dialog: learn the peer's tag, target and route set now
		// so a CANCEL race or early BYE can be matched.
		if tag, ok := res.To().Params.Get("tag"); ok && c.dlg.RemoteTag == "" {
			c.dlg.RemoteTag = tag
		}
		remoteFromResponse(&c.dlg, res)
	}
	state := c.state
	switch {
	case res.StatusCode == 100:
	case len(res.Body()) > 0:
		state = StateEarly
	case state == StateCalling || state == StateRinging:
		state = StateRinging
	}
	p.mu.Unlock()
	if len(res.Body()) > 0 && res.StatusCode > 100 {
		// Early media: an SDP in an unreliable 18x is the answer to come
		// (RFC 3261 §13.2.1); play it now, the 2xx may update it.
		c.takeAnswer(res.Body())
	}
	p.mu.Lock()
	if state != c.state {
		c.setStateLocked(state, res.StatusCode, res.Reason)
	} else if res.StatusCode > 100 {
		c.code, c.reason = res.StatusCode, res.Reason
		p.notifyLocked()
	}
	p.mu.Unlock()
	if prackRSeq != 0 {
		go c.sendPrack(invite, res.StatusCode, prackRSeq)
	}
	if sendCancel {
		c.sendCancel()
	}
	c.startMedia()
}

// takeAnswer reads an SDP answer to our offer.
func (c *Call) takeAnswer(body []byte) error {
	p := c.p
	r, err := sdpneg.Parse(body)
	if err != nil {
		return err
	}
	p.mu.Lock()
	offer := c.local
	p.mu.Unlock()
	// Negotiated wants our offer as a Remote: rebuild and parse it so the
	// comparison runs on exactly the bytes we sent.
	ob, err := sdpneg.Build(offer)
	if err != nil {
		return err
	}
	or, err := sdpneg.Parse(ob)
	if err != nil {
		return err
	}
	codec, dtmf, err := sdpneg.Negotiated(or, r)
	if err != nil {
		return err
	}
	p.mu.Lock()
	c.setRemoteSDPLocked(r, false)
	c.codec, c.dtmfPT = codec, dtmf
	p.mu.Unlock()
	return nil
}

func (c *Call) onInvite2xx(tx sip.ClientTransaction, req *sip.Request, res *sip.Response) {
	p := c.p
	p.noteInvite("answer_received", res, res.Source())
	p.mu.Lock()
	if tag, ok := res.To().Params.Get("tag"); ok {
		c.dlg.RemoteTag = tag
	}
	remoteFromResponse(&c.dlg, res)
	late := c.cancelReq || c.state == StateTerminated
	p.mu.Unlock()

	ack := c.buildAck(req)
	p.mu.Lock()
	c.ack = ack
	p.mu.Unlock()
	// A retransmitted 2xx means our ACK was lost (or never reached the
	// Contact we were given): ACK it again, as RFC 3261 §13.2.2.4 asks.
	// Listen before the first ACK leaves: a retransmission answering it
	// could otherwise arrive while nobody listens, and be dropped.
	tx.OnRetransmission(func(r *sip.Response) {
		if r.IsSuccess() {
			c.log.Info("2xx retransmission, ACK again")
			c.sendAck()
		}
	})
	c.sendAck()

	var answerErr error
	if len(res.Body()) > 0 {
		answerErr = c.takeAnswer(res.Body())
	} else {
		p.mu.Lock()
		if c.remote == nil {
			answerErr = errors.New("2xx without SDP answer")
		}
		p.mu.Unlock()
	}
	if late {
		// The 2xx crossed our CANCEL: the call exists now and must be ended.
		c.log.Info("2xx after CANCEL, sending BYE")
		p.mu.Lock()
		c.setStateLocked(StateConfirmed, res.StatusCode, res.Reason)
		p.mu.Unlock()
		c.bye(context.Background())
		return
	}
	if answerErr != nil {
		c.log.Warn("bad SDP answer, hanging up", "err", answerErr)
		p.mu.Lock()
		c.setStateLocked(StateConfirmed, res.StatusCode, res.Reason)
		c.mediaErr = answerErr.Error()
		p.mu.Unlock()
		c.bye(context.Background())
		return
	}
	// Media first: whoever sees "confirmed" (a script sending DTMF right
	// away) must find the RTP session running.
	c.startMedia()
	p.mu.Lock()
	c.setStateLocked(StateConfirmed, res.StatusCode, res.Reason)
	p.mu.Unlock()
}

// buildAck writes the ACK for a 2xx: a new transaction-less request in the
// dialog, same CSeq number as the INVITE, sent along the route set to the
// Contact of the 2xx, carrying the INVITE's credentials (§13.2.2.4).
func (c *Call) buildAck(invite *sip.Request) *sip.Request {
	p := c.p
	ack := p.inDialogRequest(c, sip.ACK, invite.CSeq().SeqNo)
	for _, name := range []string{"Authorization", "Proxy-Authorization"} {
		for _, h := range invite.GetHeaders(name) {
			ack.AppendHeader(sip.NewHeader(name, h.Value()))
		}
	}
	return ack
}

func (c *Call) sendAck() {
	p := c.p
	p.mu.Lock()
	ack, drop := c.ack, p.settings.DropACK
	p.mu.Unlock()
	if ack == nil {
		return
	}
	if drop {
		c.log.Info("ACK withheld (ack=drop): the callee will retransmit its 2xx, then hang up")
		return
	}
	cl, err := p.clientFor(ack)
	if err != nil {
		c.log.Warn("ACK not sent", "err", err)
		return
	}
	ack = ack.Clone()
	p.bindSource(ack)
	if err := cl.WriteRequest(ack); err != nil {
		c.log.Warn("ACK not sent", "err", err)
	}
}

// cancel asks to stop our INVITE. CANCEL may only go after a provisional
// response (§9.1); before that it is remembered and sent when one arrives.
func (c *Call) cancel(ctx context.Context) error {
	p := c.p
	p.mu.Lock()
	if c.state == StateTerminated || c.state == StateConfirmed {
		st := c.state
		p.mu.Unlock()
		return fmt.Errorf("%w: call %s is %s", ErrCallState, c.id, st)
	}
	if c.cancelReq {
		p.mu.Unlock()
		return nil
	}
	c.cancelReq = true
	now := c.provSeen
	p.mu.Unlock()
	if now {
		c.sendCancel()
	}
	// Wait for the 487 (or a crossing 2xx) so the command reports the end.
	ctx, cancel := context.WithTimeout(ctx, 32*time.Second)
	defer cancel()
	return p.wait(ctx, func() bool { return c.state == StateTerminated || c.state == StateConfirmed })
}

func (c *Call) sendCancel() {
	p := c.p
	p.mu.Lock()
	if c.canceled || c.invite == nil {
		p.mu.Unlock()
		return
	}
	c.canceled = true
	inv := c.invite
	p.mu.Unlock()

	cr := sipdialog.Cancel(inv) // §9.1: matched to the INVITE transaction
	cr.AppendHeader(sip.NewHeader("User-Agent", p.cfg.UserAgent))
	go func() {
		ctx, cancel := p.lifetime()
		defer cancel()
		res, err := p.do(ctx, cr)
		if err != nil {
			c.log.Warn("CANCEL failed", "err", err)
			return
		}
		c.log.Info("CANCEL answered", "code", res.StatusCode, "reason", res.Reason)
	}()
}

// bye ends a confirmed call. The call is over for us whatever the answer:
// a BYE that gets no response (the Contact lie) still stops our media, and
// status records that the far end never confirmed.
func (c *Call) bye(ctx context.Context) error {
	p := c.p
	req := p.inDialogRequest(c, sip.BYE, 0)
	c.closeMedia()
	res, _, err := p.doAuth(ctx, req)
	if err != nil {
		c.terminate(0, "", "local", "BYE sent, no answer: "+err.Error())
		return err
	}
	c.terminate(0, "", "local", fmt.Sprintf("BYE sent, %d %s", res.StatusCode, res.Reason))
	if !res.IsSuccess() {
		return &ResponseError{Code: res.StatusCode, Reason: res.Reason}
	}
	return nil
}
