package uaclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipcheck"
	"github.com/siplab/siplab/sip/sipdialog"
)

func (p *Phone) installHandlers() {
	srv := p.ep.Server
	// p.trusted is the source ACL of trunk mode (trunk.go); without
	// Config.Trusted it returns the handler as is.
	srv.OnInvite(p.trusted(p.onInvite))
	srv.OnAck(p.trusted(p.onAck))
	srv.OnBye(p.trusted(p.onBye))
	srv.OnCancel(p.trusted(p.onCancel))
	srv.OnOptions(p.trusted(p.onOptions))
	srv.OnMessage(p.trusted(p.onMessage))
	srv.OnInfo(p.trusted(p.onInfo))
	srv.OnRefer(p.trusted(p.onRefer))
	srv.OnNotify(p.trusted(p.onNotify))
	srv.OnPrack(p.trusted(p.onPrack))
	srv.OnUpdate(p.trusted(p.onUpdate))
	srv.OnNoRoute(p.trusted(p.onOther))
}

// check refuses requests a UAS must not process (RFC 3261 §8.2) the same
// way every siplab daemon does; true means a response was sent.
func (p *Phone) check(req *sip.Request, tx sip.ServerTransaction) bool {
	prob := sipcheck.Request(req, sipcheck.Options{Role: sipcheck.UAS, Supported: p.supportedTags(), Bodies: bodiesFor(req.Method)})
	if prob == nil {
		return false
	}
	p.log.Info("request refused", "method", req.Method, "code", prob.Code, "detail", prob.Detail)
	if res := sipcheck.Respond(req, prob); res != nil {
		if err := tx.Respond(res); err != nil {
			p.log.Warn("respond failed", "err", err)
		}
	}
	return true
}

// bodiesFor lists the Content-Types this phone reads in a request of
// method; anything else is refused with 415 and an Accept header.
func bodiesFor(m sip.RequestMethod) []string {
	switch m {
	case sip.MESSAGE:
		return []string{"text/plain"}
	case sip.INFO:
		return []string{"application/dtmf-relay", "application/dtmf"}
	case sip.NOTIFY:
		return []string{"message/sipfrag", "application/dialog-info+xml", "application/simple-message-summary"}
	}
	return nil // application/sdp
}

func hasToTag(req *sip.Request) bool {
	to := req.To()
	return to != nil && to.Params.Has("tag")
}

func (p *Phone) respondLog(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	if err := respond(tx, req, code, reason, nil, hdrs...); err != nil {
		p.log.Warn("respond failed", "code", code, "err", err)
	}
}

func (p *Phone) warning(code int, text string) sip.Header {
	text = strings.ReplaceAll(text, `"`, "'")
	return sip.NewHeader("Warning", fmt.Sprintf("%d %s \"%s\"", code, p.local.Addr(), text))
}

func (p *Phone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if p.check(req, tx) {
		return
	}
	p.noteInvite("invite_received", req, req.Source())
	if hasToTag(req) {
		p.onReinvite(req, tx)
		return
	}
	if p.isClosed() {
		p.respondLog(tx, req, sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	if p.refuseCallee(req, tx) {
		return
	}
	from := req.From()
	fromTag, _ := from.Params.Get("tag")
	callID := req.CallID().Value()
	if c := p.callByCallID(callID); c != nil {
		// Same Call-ID and From tag on a new transaction: the request
		// reached us twice by different paths (§8.2.2.2, merged request).
		p.mu.Lock()
		merged := c.dlg.RemoteTag == fromTag && c.direction == Incoming
		p.mu.Unlock()
		if merged {
			p.respondLog(tx, req, sip.StatusLoopDetected, "Loop Detected")
			return
		}
	}
	ct := req.Contact()
	if ct == nil {
		p.respondLog(tx, req, sip.StatusBadRequest, "Missing Contact", p.warning(399, "INVITE without Contact"))
		return
	}
	// An INVITE with Replaces (attended transfer) takes over a call of
	// ours: it is answered at once, and the old call ended.
	var replaced *Call
	if h := req.GetHeader("Replaces"); h != nil {
		rc, code, why := p.matchReplaces(h.Value())
		if rc == nil {
			p.log.Info("INVITE with Replaces refused", "call_id", callID, "code", code, "why", why)
			p.respondLog(tx, req, code, reasonPhrase(code), p.warning(399, why))
			return
		}
		replaced = rc
	}
	offer, valid := p.offerIn(req, tx)
	if !valid {
		return
	}

	localTag := sip.GenerateTagN(10)
	// The To tag goes on the request itself so that every response built
	// from it carries the same tag, including the 487 that sipgo's
	// transaction writes on CANCEL.
	req.To().Params.Add("tag", localTag)
	target := *ct.Address.Clone()
	p.mu.Lock()
	c := p.newCall(Incoming, callID, from.Address.String())
	c.dlg = sipdialog.Dialog{
		CallID:       callID,
		LocalTag:     localTag,
		RemoteTag:    fromTag,
		LocalURI:     req.To().Address,
		RemoteURI:    from.Address,
		RemoteSeq:    req.CSeq().SeqNo,
		RemoteSeqSet: true,
		RemoteTarget: target,
		RouteSet:     sipdialog.RouteSetAsUAS(req),
	}
	c.state = StateCalling
	p.mu.Unlock()
	c.log.Info("INVITE received", "from", from.Address.String(), "source", req.Source())

	p.respondLog(tx, req, sip.StatusTrying, "Trying")
	if err := c.bindRTP(); err != nil {
		p.respondLog(tx, req, sip.StatusServiceUnavailable, "Service Unavailable", p.warning(399, err.Error()))
		c.terminate(sip.StatusServiceUnavailable, "Service Unavailable", "local", err.Error())
		return
	}
	if offer != nil {
		// Refuse an offer we cannot answer before ringing (RFC 3261
		// §13.3.1.1), with a Warning naming what was offered.
		p.mu.Lock()
		desc := c.localDescriptionLocked(p.settings, offer.Direction.Answer(sdpneg.SendRecv))
		p.mu.Unlock()
		if _, _, _, err := sdpneg.Answer(offer, desc); err != nil {
			code, text := 399, err.Error()
			if errors.Is(err, sdpneg.ErrNoCommonCodec) {
				code = 305
				text = fmt.Sprintf("Incompatible media format: offered %s, we accept %s", codecNames(offer.AudioCodecs()), codecNames(p.settings.Codecs))
			} else if errors.Is(err, sdpneg.ErrUnsupportedProto) {
				code = 302
				text = "Incompatible transport protocol: " + offer.Proto
			}
			p.respondLog(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here", p.warning(code, text))
			c.terminate(sip.StatusNotAcceptableHere, "Not Acceptable Here", "local", text)
			return
		}
		p.mu.Lock()
		c.offer = offer
		c.setRemoteSDPLocked(offer, true)
		p.mu.Unlock()
	}

	cancelled := make(chan struct{}, 1)
	tx.OnCancel(func(*sip.Request) {
		select {
		case cancelled <- struct{}{}:
		default:
		}
	})
	s := p.currentSettings()
	stopRel := make(chan struct{})
	stopReliable := sync.OnceFunc(func() { close(stopRel) })
	defer stopReliable()
	// Ringing before the 180 leaves: the caller may act on it (answer
	// by command races nothing then).
	p.mu.Lock()
	c.setStateLocked(StateRinging, sip.StatusRinging, "Ringing")
	p.mu.Unlock()
	var err error
	if p.wantReliable(req, s) {
		err = c.sendReliable180(tx, req, s, stopRel)
	} else {
		err = respond(tx, req, sip.StatusRinging, "Ringing", nil, p.contactHeader(s))
	}
	if err != nil {
		c.terminate(0, "", "local", "180 not sent: "+err.Error())
		return
	}

	var auto <-chan time.Time
	if replaced != nil {
		// RFC 3891 §3: the replacement is accepted without alerting.
		now := make(chan time.Time, 1)
		now <- time.Now()
		auto = now
	} else if s.AutoAnswer > 0 {
		t := time.NewTimer(s.AutoAnswer)
		defer t.Stop()
		auto = t.C
	}
	var d decision
	select {
	case d = <-c.decide:
	case <-auto:
		d = decision{code: 200, reason: "OK"}
		c.log.Info("auto-answer")
	case <-cancelled:
		// sipgo has answered the CANCEL with 200 and the INVITE with 487.
		c.terminate(sip.StatusRequestTerminated, "Request Terminated", "remote", "CANCEL received")
		return
	case <-tx.Done():
		c.terminate(sip.StatusRequestTerminated, "Request Terminated", "remote", "INVITE transaction ended")
		return
	case <-p.done:
		p.respondLog(tx, req, sip.StatusTemporarilyUnavailable, "Temporarily Unavailable")
		c.terminate(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable", "local", "phone closed")
		return
	}
	// A final response ends the reliable 180's retransmissions.
	stopReliable()
	if d.code != 200 {
		p.respondLog(tx, req, d.code, d.reason)
		c.terminate(d.code, d.reason, "local", "rejected here")
		return
	}
	if replaced == nil {
		p.answerInvite(c, req, tx, offer, false)
		return
	}
	p.answerInvite(c, req, tx, offer, false)
	p.mu.Lock()
	ok := c.state == StateConfirmed
	if ok {
		replaced.transfer = &TransferStatus{Role: RoleReplaced, Target: from.Address.String(), State: TransferSucceeded, NewCall: c.id}
	}
	p.mu.Unlock()
	if !ok {
		return
	}
	// The new dialog is up (2xx sent, ACKed or given up on): end the old one.
	c.log.Info("replacing call", "replaced", replaced.id)
	ctx, cancel := p.lifetime()
	defer cancel()
	if err := replaced.end(ctx); err != nil {
		replaced.log.Info("replaced call not ended", "err", err)
	}
}

func codecNames(cs []sdpneg.Codec) string {
	var names []string
	for _, c := range cs {
		names = append(names, c.String())
	}
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, " ")
}

// answerInvite sends the 2xx with our SDP and waits for the ACK,
// retransmitting the 2xx over UDP (the UAS core's job, RFC 3261 §13.3.1.4:
// T1 doubling to T2, for 64*T1). Media starts when the 2xx goes out: the
// answer is sent, so RFC 3264 §6 lets us send, and the caller's RTP must be
// counted even if our ACK never arrives (the ghost/one-way lessons).
func (p *Phone) answerInvite(c *Call, req *sip.Request, tx sip.ServerTransaction, offer *sdpneg.Remote, reinvite bool) {
	s := p.currentSettings()
	p.mu.Lock()
	// Our direction: what we want (on hold or not), narrowed by what the
	// offer allows (RFC 3264 §6.1: a sendonly offer is answered recvonly).
	dir := c.wantedDirLocked(s)
	if offer != nil {
		dir = offer.Direction.Answer(dir)
	}
	desc := c.localDescriptionLocked(s, dir)
	p.mu.Unlock()
	var body []byte
	var err error
	if offer != nil {
		var codec sdpneg.Codec
		var dtmf uint8
		body, codec, dtmf, err = sdpneg.Answer(offer, desc)
		if err != nil {
			p.respondLog(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here", p.warning(305, err.Error()))
			if !reinvite {
				c.terminate(sip.StatusNotAcceptableHere, "Not Acceptable Here", "local", err.Error())
			}
			return
		}
		p.mu.Lock()
		c.offer = offer
		c.setRemoteSDPLocked(offer, true)
		c.codec, c.dtmfPT = codec, dtmf
		c.offered = false
		p.mu.Unlock()
	} else {
		// Offerless INVITE: we offer in the 2xx, the answer comes in the ACK.
		body, err = sdpneg.Build(desc)
		if err != nil {
			p.respondLog(tx, req, sip.StatusInternalServerError, "Server Internal Error")
			return
		}
		p.mu.Lock()
		c.offered = true
		p.mu.Unlock()
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", body)
	res.AppendHeader(p.contactHeader(s))
	res.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	res.AppendHeader(sip.NewHeader("Supported", p.supported()))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))

	ackCh := make(chan struct{})
	p.mu.Lock()
	c.ackCh, c.ackSeq, c.acked = ackCh, req.CSeq().SeqNo, false
	if !reinvite {
		// Confirmed before the 2xx leaves: the caller may send its ACK
		// and a re-INVITE (hold) at once, and both must find the dialog.
		c.setStateLocked(StateConfirmed, sip.StatusOK, "OK")
	}
	p.mu.Unlock()
	p.noteInvite("answer_sent", res, req.Source())
	if err := tx.Respond(res); err != nil {
		c.log.Warn("2xx not sent", "err", err)
		if !reinvite {
			c.terminate(0, "", "local", "2xx not sent: "+err.Error())
		}
		return
	}
	c.startMedia()

	ctx, cancel := p.lifetime()
	defer cancel()
	r := sipdialog.Retransmit(ctx, sipdialog.Retransmission{
		Resend: func() error {
			c.log.Debug("2xx retransmission")
			return tx.Respond(res)
		},
		Reliable: sip.IsReliable(req.Transport()),
		Acked:    ackCh,
		// A BYE crossed our 2xx: nothing left to confirm.
		Halt: c.isTerminated,
	})
	if r != sipdialog.TimedOut || c.isTerminated() {
		return
	}
	// §13.3.1.4: no ACK for 64*T1 ends the dialog with a BYE.
	c.log.Warn("no ACK for our 2xx, sending BYE")
	ctx, cancel2 := context.WithTimeout(ctx, 32*time.Second)
	defer cancel2()
	p.mu.Lock()
	c.mediaErr = "no ACK received for our 200 OK"
	p.mu.Unlock()
	c.bye(ctx)
}

func (p *Phone) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	c := p.inDialog(req, tx)
	if c == nil {
		return
	}
	p.mu.Lock()
	st, ackCh, pending := c.state, c.ackCh, c.ackCh != nil && !c.acked
	glare := c.reinviting
	p.mu.Unlock()
	if st != StateConfirmed {
		p.respondLog(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	if glare {
		// §14.2: our own re-INVITE is pending; both sides retry later.
		p.respondLog(tx, req, sip.StatusRequestPending, "Request Pending")
		return
	}
	if pending {
		// sipgo hands each request to its own goroutine, so an ACK sent
		// just before this re-INVITE may still be on its way in.
		select {
		case <-ackCh:
			pending = false
		case <-time.After(sip.T1):
		case <-p.done:
		}
	}
	if pending {
		// §14.2: an INVITE while our previous 2xx waits for its ACK.
		p.respondLog(tx, req, sip.StatusInternalServerError, "Server Internal Error", sip.NewHeader("Retry-After", "1"))
		return
	}
	offer, ok := p.offerIn(req, tx)
	if !ok {
		return
	}
	if ct := req.Contact(); ct != nil {
		// A re-INVITE refreshes the remote target (§12.2.2).
		u := *ct.Address.Clone()
		p.mu.Lock()
		c.dlg.RemoteTarget = u
		p.mu.Unlock()
	}
	c.log.Info("re-INVITE received", "sdp", offer != nil)
	p.respondLog(tx, req, sip.StatusTrying, "Trying")
	p.answerInvite(c, req, tx, offer, true)
}

// acceptSeq applies §12.2.2 to the call's dialog under the phone's lock.
func (c *Call) acceptSeq(req *sip.Request) bool {
	seq := req.CSeq().SeqNo
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return c.dlg.AcceptSeq(seq)
}

func (p *Phone) onAck(req *sip.Request, tx sip.ServerTransaction) {
	c := p.matchDialog(req)
	if c == nil {
		p.log.Info("ACK for unknown dialog ignored", "call_id", req.CallID().Value())
		return
	}
	p.mu.Lock()
	if c.ackCh == nil || c.acked || req.CSeq().SeqNo != c.ackSeq {
		p.mu.Unlock()
		return
	}
	c.acked = true
	close(c.ackCh)
	offered := c.offered
	p.notifyLocked()
	p.mu.Unlock()
	c.log.Info("ACK received", "source", req.Source())
	if offered && len(req.Body()) > 0 {
		if err := c.takeAnswer(req.Body()); err != nil {
			c.log.Warn("bad SDP answer in ACK, hanging up", "err", err)
			c.setMediaErr(err)
			go c.bye(context.Background())
			return
		}
		c.startMedia()
	}
}

func (p *Phone) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := p.checkedInDialog(req, tx)
	if c == nil {
		return
	}
	p.respondLog(tx, req, sip.StatusOK, "OK")
	c.log.Info("BYE received", "source", req.Source())
	c.terminate(0, "", "remote", "BYE received")
}

// onCancel sees only CANCELs that matched no INVITE transaction: sipgo's
// transaction layer handles the others (200 to CANCEL, 487 to INVITE).
func (p *Phone) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	if p.check(req, tx) {
		return
	}
	p.respondLog(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
}

// offerIn is the SDP offer in req's body, nil when it has none; false
// when the body does not parse (answered 400 Bad SDP).
func (p *Phone) offerIn(req *sip.Request, tx sip.ServerTransaction) (*sdpneg.Remote, bool) {
	if len(req.Body()) == 0 {
		return nil, true
	}
	offer, err := sdpneg.Parse(req.Body())
	if err != nil {
		p.log.Info("bad SDP offer", "call_id", sipdialog.CallID(req), "method", req.Method, "err", err)
		p.respondLog(tx, req, sip.StatusBadRequest, "Bad SDP", p.warning(399, err.Error()))
		return nil, false
	}
	return offer, true
}

// noSuchDialog answers 481 to a request whose To tag names no call of
// ours (§12.2.2) and says so.
func (p *Phone) noSuchDialog(req *sip.Request, tx sip.ServerTransaction) bool {
	if hasToTag(req) && p.matchDialog(req) == nil {
		p.respondLog(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return true
	}
	return false
}

func (p *Phone) capabilityHeaders() []sip.Header {
	return []sip.Header{
		sip.NewHeader("Allow", allowedMethods),
		sip.NewHeader("Accept", "application/sdp"),
		sip.NewHeader("Supported", p.supported()),
	}
}

func (p *Phone) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if p.check(req, tx) {
		return
	}
	if p.noSuchDialog(req, tx) {
		return
	}
	hdrs := append(p.capabilityHeaders(), p.contactHeader(p.currentSettings()))
	p.respondLog(tx, req, sip.StatusOK, "OK", hdrs...)
}

func (p *Phone) onOther(req *sip.Request, tx sip.ServerTransaction) {
	if p.check(req, tx) {
		return
	}
	if p.noSuchDialog(req, tx) {
		return
	}
	p.respondLog(tx, req, sip.StatusMethodNotAllowed, "Method Not Allowed", sip.NewHeader("Allow", allowedMethods))
}

// checkedInDialog is inDialog for a request that has not been through
// check yet (sipcheck's refusals come first).
func (p *Phone) checkedInDialog(req *sip.Request, tx sip.ServerTransaction) *Call {
	if p.check(req, tx) {
		return nil
	}
	return p.inDialog(req, tx)
}

// inDialog admits an in-dialog request: it finds the dialog (481 when there
// is none) and checks the CSeq is not going backwards (500, RFC 3261
// §12.2.2). It returns nil when it has already answered.
func (p *Phone) inDialog(req *sip.Request, tx sip.ServerTransaction) *Call {
	c := p.matchDialog(req)
	if c == nil {
		p.respondLog(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return nil
	}
	if !c.acceptSeq(req) {
		p.respondLog(tx, req, sip.StatusInternalServerError, "Server Internal Error", p.warning(399, "CSeq lower than a previous request"))
		return nil
	}
	return c
}
