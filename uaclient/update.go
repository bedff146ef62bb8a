package uaclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sdpneg"
)

// onUpdate answers UPDATE (RFC 3311) in an early or confirmed dialog: a
// target refresh, and with an SDP offer a new offer/answer exchange that
// needs no ACK.
func (p *Phone) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	c := p.checkedInDialog(req, tx)
	if c == nil {
		return
	}
	offer, ok := p.offerIn(req, tx)
	if !ok {
		return
	}
	s := p.currentSettings()
	p.mu.Lock()
	if c.state == StateTerminated {
		p.mu.Unlock()
		p.respondLog(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	if ct := req.Contact(); ct != nil {
		u := *ct.Address.Clone()
		c.dlg.RemoteTarget = u
	}
	var refuse int
	var why string
	if offer != nil {
		// RFC 3311 §5.2: 491 while an offer of ours is unanswered, 500
		// with Retry-After while we owe an answer ourselves.
		switch {
		case c.reinviting:
			refuse, why = sip.StatusRequestPending, "our own offer is pending"
		case c.direction == Incoming && c.state != StateConfirmed:
			refuse, why = sip.StatusInternalServerError, "the INVITE's offer is not answered yet"
		case c.direction == Outgoing && c.state != StateConfirmed && c.remote == nil:
			refuse, why = sip.StatusRequestPending, "our INVITE's offer is not answered yet"
		case c.ackCh != nil && !c.acked && c.offered:
			refuse, why = sip.StatusRequestPending, "our offer in the 2xx waits for its answer in the ACK"
		}
	}
	if refuse != 0 {
		p.mu.Unlock()
		hdrs := []sip.Header{p.warning(399, why)}
		if refuse == sip.StatusInternalServerError {
			hdrs = append(hdrs, sip.NewHeader("Retry-After", "1"))
		}
		p.respondLog(tx, req, refuse, reasonPhrase(refuse), hdrs...)
		return
	}
	if offer == nil {
		p.mu.Unlock()
		c.log.Info("UPDATE received (target refresh)", "source", req.Source())
		p.respondLog(tx, req, sip.StatusOK, "OK", p.contactHeader(s))
		return
	}
	prevLocal, prevDir := c.local, c.localDir
	desc := c.localDescriptionLocked(s, offer.Direction.Answer(c.wantedDirLocked(s)))
	p.mu.Unlock()
	body, codec, dtmf, err := sdpneg.Answer(offer, desc)
	if err != nil {
		p.mu.Lock()
		c.local, c.localDir = prevLocal, prevDir
		p.mu.Unlock()
		p.respondLog(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here", p.warning(305, err.Error()))
		return
	}
	p.mu.Lock()
	c.offer = offer
	c.setRemoteSDPLocked(offer, true)
	c.codec, c.dtmfPT = codec, dtmf
	p.notifyLocked()
	p.mu.Unlock()
	c.log.Info("UPDATE received", "sdp", offer.AddrPort(), "direction", offer.Direction, "source", req.Source())
	if err := respond(tx, req, sip.StatusOK, "OK", body, p.contactHeader(s)); err != nil {
		c.log.Warn("2xx to UPDATE not sent", "err", err)
	}
	c.startMedia()
}

// Update sends UPDATE with a fresh SDP offer on a confirmed call (RFC
// 3311): what our SDP says now (sdp_addr, hold) without a re-INVITE's
// three-way handshake. A failure response leaves the session as it was.
func (p *Phone) Update(ctx context.Context, ref string) error {
	c, err := p.findCall(ref, func(c *Call) bool { return c.state == StateConfirmed })
	if err != nil {
		return err
	}
	p.mu.Lock()
	req, desc, done, restore, err := c.offerLocked(sip.UPDATE)
	if err != nil {
		return err
	}
	defer done()
	c.log.Info("UPDATE sent", "sdp", desc.Addr, "rtp_port", desc.Port, "direction", desc.Direction)
	res, _, err := p.doAuth(ctx, req)
	if err != nil {
		restore()
		return err
	}
	if !res.IsSuccess() {
		restore()
		if res.StatusCode == sip.StatusCallTransactionDoesNotExists || res.StatusCode == sip.StatusRequestTimeout {
			c.terminate(0, "", "remote", fmt.Sprintf("UPDATE answered %d %s: dialog gone", res.StatusCode, res.Reason))
		}
		return &ResponseError{Code: res.StatusCode, Reason: res.Reason}
	}
	if ct := res.Contact(); ct != nil {
		u := *ct.Address.Clone()
		p.mu.Lock()
		c.dlg.RemoteTarget = u
		p.mu.Unlock()
	}
	if len(res.Body()) == 0 {
		restore()
		return fmt.Errorf("uaclient: %w", errors.New("2xx to UPDATE without SDP answer"))
	}
	if err := c.takeAnswer(res.Body()); err != nil {
		restore()
		return fmt.Errorf("uaclient: bad SDP answer to UPDATE: %w", err)
	}
	c.startMedia()
	p.notify()
	return nil
}
