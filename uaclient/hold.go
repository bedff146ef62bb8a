package uaclient

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipnet"
)

// Hold modes: the direction a hold re-INVITE offers.
const (
	HoldSendOnly = "sendonly"
	HoldInactive = "inactive"
)

// wantedDirLocked is the direction this phone wants to write: sendrecv,
// or when the hold command is in force sendonly (RFC 3264 §8.4: we keep
// sending, music on hold; here our test tone) or inactive (hold_mode).
func (c *Call) wantedDirLocked(s liveSettings) sdpneg.Direction {
	if !c.localHold {
		return sdpneg.SendRecv
	}
	if s.HoldMode == HoldInactive {
		return sdpneg.Inactive
	}
	return sdpneg.SendOnly
}

// mediaDirectionLocked is what the RTP session does: send only when our
// SDP says we send and the peer's says it receives (to a usable address);
// take in received audio only when our SDP says we receive.
func (c *Call) mediaDirectionLocked(dst netip.AddrPort) (send, recv bool) {
	send = c.localDir.CanSend() && dst.IsValid()
	if c.remote != nil {
		send = send && c.remote.Direction.CanRecv()
	}
	return send, c.localDir.CanRecv()
}

// holdLocked says who holds whom. The peer holds us when its SDP refuses
// to receive (sendonly, inactive, c=0.0.0.0) and that was its own choice:
// in an offer, or in an answer to an offer of ours that let it receive.
func (c *Call) holdLocked() string {
	p := c.p
	remote := c.remote != nil && c.remote.OnHold() &&
		(c.remoteOffered || c.wantedDirLocked(p.settings).CanSend())
	switch {
	case c.localHold && remote:
		return "both"
	case c.localHold:
		return "local"
	case remote:
		return "remote"
	}
	return ""
}

// Hold puts a confirmed call on hold with a re-INVITE whose SDP says
// a=sendonly (hold_mode inactive: a=inactive); the peer answers recvonly
// (or inactive) and stops sending. Our RTP session stops taking in audio.
func (p *Phone) Hold(ctx context.Context, ref string) error {
	return p.setHold(ctx, ref, true)
}

// Resume takes a held call off hold: a re-INVITE with a=sendrecv.
func (p *Phone) Resume(ctx context.Context, ref string) error {
	return p.setHold(ctx, ref, false)
}

func (p *Phone) setHold(ctx context.Context, ref string, hold bool) error {
	confirmed := func(c *Call) bool { return c.state == StateConfirmed }
	c, err := p.findCall(ref, confirmed)
	if err != nil {
		return err
	}
	p.mu.Lock()
	st, prev := c.state, c.localHold
	p.mu.Unlock()
	if st != StateConfirmed {
		return fmt.Errorf("%w: call %s is %s; hold and resume need a confirmed call", ErrCallState, c.id, st)
	}
	if prev == hold {
		if hold {
			return fmt.Errorf("%w: call %s is already on hold", ErrCallState, c.id)
		}
		return fmt.Errorf("%w: call %s is not on hold", ErrCallState, c.id)
	}
	p.mu.Lock()
	c.localHold = hold
	p.mu.Unlock()
	if err := c.reinvite(ctx); err != nil {
		p.mu.Lock()
		c.localHold = prev
		p.notifyLocked()
		p.mu.Unlock()
		return err
	}
	c.log.Info("hold changed", "hold", hold)
	return nil
}

// reinvite sends a re-INVITE carrying our current description (RFC 3261
// §14.1) and applies the answer. A failure response leaves the session as
// it was; 481 or 408 mean the dialog is gone and end the call (§12.2.1.2).
func (c *Call) reinvite(ctx context.Context) error {
	p := c.p
	p.mu.Lock()
	if ackCh := c.ackCh; ackCh != nil && !c.acked {
		// We answered an INVITE and its ACK is not in yet: the INVITE
		// transaction is still in progress (§14.1). Wait for the ACK (its
		// 2xx is retransmitted for 64*T1 at most).
		p.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, 64*sip.T1)
		select {
		case <-ackCh:
		case <-wctx.Done():
		case <-p.done:
		}
		cancel()
		p.mu.Lock()
	}
	req, desc, done, restore, err := c.offerLocked(sip.INVITE)
	if err != nil {
		return err
	}
	defer done()
	req.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	req.AppendHeader(sip.NewHeader("Supported", p.supported()))
	c.log.Info("re-INVITE sent", "direction", desc.Direction, "sdp", desc.Addr, "rtp_port", desc.Port)

	var auth authSession
	for {
		tx, err := p.transact(ctx, req)
		if err != nil {
			restore()
			return err
		}
		res, err := c.waitInviteFinal(ctx, tx)
		if err != nil {
			tx.Terminate()
			restore()
			return err
		}
		switch {
		case res.IsSuccess():
			return c.onReinvite2xx(tx, req, res)
		case res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired:
			next := p.reissue(req)
			if err := auth.answer(p, next, res); err != nil {
				restore()
				return err
			}
			p.mu.Lock()
			c.dlg.LocalSeq = max(c.dlg.LocalSeq, next.CSeq().SeqNo)
			p.mu.Unlock()
			req = next
			continue
		case res.StatusCode == sip.StatusCallTransactionDoesNotExists || res.StatusCode == sip.StatusRequestTimeout:
			restore()
			c.terminate(0, "", "remote", fmt.Sprintf("re-INVITE answered %d %s: dialog gone", res.StatusCode, res.Reason))
			return &ResponseError{Code: res.StatusCode, Reason: res.Reason}
		default:
			// 491 (glare), 488, ...: the session stays as it was.
			restore()
			c.log.Info("re-INVITE refused", "code", res.StatusCode, "reason", res.Reason)
			return &ResponseError{Code: res.StatusCode, Reason: res.Reason}
		}
	}
}

// waitInviteFinal waits for the final response of an INVITE client
// transaction (provisional responses are skipped).
func (c *Call) waitInviteFinal(ctx context.Context, tx sip.ClientTransaction) (*sip.Response, error) {
	res, err := sipnet.FinalResponse(ctx, tx, c.p.done)
	switch {
	case errors.Is(err, sipnet.ErrStopped):
		return nil, ErrClosed
	case errors.Is(err, sipnet.ErrNoFinalResponse):
		if err := tx.Err(); err != nil && !errors.Is(err, sip.ErrTransactionTerminated) {
			return nil, fmt.Errorf("%w: re-INVITE: %w", ErrTimeout, err)
		}
		return nil, fmt.Errorf("%w: re-INVITE", ErrTimeout)
	}
	return res, err
}

// onReinvite2xx ACKs the 2xx of our re-INVITE (again for every
// retransmission), refreshes the remote target and applies the answer.
func (c *Call) onReinvite2xx(tx sip.ClientTransaction, req *sip.Request, res *sip.Response) error {
	p := c.p
	if ct := res.Contact(); ct != nil {
		u := *ct.Address.Clone()
		p.mu.Lock()
		c.dlg.RemoteTarget = u
		p.mu.Unlock()
	}
	ack := c.buildAck(req)
	send := func() {
		cl, err := p.clientFor(ack)
		if err != nil {
			c.log.Warn("ACK not sent", "err", err)
			return
		}
		a := ack.Clone()
		p.bindSource(a)
		if err := cl.WriteRequest(a); err != nil {
			c.log.Warn("ACK not sent", "err", err)
		}
	}
	send()
	tx.OnRetransmission(func(r *sip.Response) {
		if r.IsSuccess() {
			send()
		}
	})
	if len(res.Body()) == 0 {
		err := errors.New("2xx to re-INVITE without SDP answer")
		c.setMediaErr(err)
		go c.bye(context.Background())
		return fmt.Errorf("uaclient: %w", err)
	}
	if err := c.takeAnswer(res.Body()); err != nil {
		// An answer we cannot use: the dialog cannot go on (§14.1 leaves
		// the UAC nothing else once the 2xx is ACKed).
		c.setMediaErr(err)
		go c.bye(context.Background())
		return fmt.Errorf("uaclient: bad SDP answer to re-INVITE: %w", err)
	}
	c.startMedia()
	p.notify()
	return nil
}

// offerLocked starts an offer/answer exchange of ours (startOfferLocked)
// and builds its request: method in the dialog with our Contact and the
// offer. p.mu must be held; it is released on return. On error nothing
// stays claimed.
func (c *Call) offerLocked(method sip.RequestMethod) (req *sip.Request, desc sdpneg.Description, done, restore func(), err error) {
	p := c.p
	s, desc, done, restore, err := c.startOfferLocked()
	if err != nil {
		return nil, desc, nil, nil, err
	}
	body, err := sdpneg.Build(desc)
	if err != nil {
		restore()
		done()
		return nil, desc, nil, nil, fmt.Errorf("uaclient: build %s offer: %w", method, err)
	}
	req = p.inDialogRequest(c, method, 0)
	req.AppendHeader(p.contactHeader(s))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	return req, desc, done, restore, nil
}

// startOfferLocked claims a confirmed call for one offer/answer exchange of
// ours (re-INVITE or UPDATE): only one may be in progress, and not while
// our own answer still waits for its ACK. p.mu must be held; it is released
// on return. done ends the claim; restore puts the previous local
// description back when the exchange fails.
func (c *Call) startOfferLocked() (s liveSettings, desc sdpneg.Description, done, restore func(), err error) {
	p := c.p
	switch {
	case c.state != StateConfirmed:
		st := c.state
		p.mu.Unlock()
		return s, desc, nil, nil, fmt.Errorf("%w: call %s is %s, not confirmed", ErrCallState, c.id, st)
	case c.reinviting || (c.ackCh != nil && !c.acked):
		p.mu.Unlock()
		return s, desc, nil, nil, fmt.Errorf("%w: call %s has an offer/answer exchange in progress", ErrCallState, c.id)
	}
	c.reinviting = true
	prevLocal, prevDir := c.local, c.localDir
	s = p.settings
	desc = c.localDescriptionLocked(s, c.wantedDirLocked(s))
	p.mu.Unlock()
	done = func() {
		p.mu.Lock()
		c.reinviting = false
		p.notifyLocked()
		p.mu.Unlock()
	}
	restore = func() {
		p.mu.Lock()
		c.local, c.localDir = prevLocal, prevDir
		p.mu.Unlock()
	}
	return s, desc, done, restore, nil
}
