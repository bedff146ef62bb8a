package b2bua

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/sdpneg"
)

// Re-anchoring a call that is up: turning media_anchor off moves its RTP
// to go phone to phone, on again back through a new relay — with a
// re-INVITE to each phone, the way a PBX changes media paths mid-call.

var errNotReanchorable = errors.New("b2bua: call cannot change media path now")

// errGlare is a 491 to our re-INVITE: the phone has one of its own in
// progress (RFC 3261 §14.1), e.g. its resume's ACK crossed our offer.
var errGlare = errors.New("b2bua: re-INVITE glare")

// reanchorCalls applies a media_anchor change to every answered call.
func (b *B2BUA) reanchorCalls(anchor bool) {
	b.mu.Lock()
	var calls []*Call
	for _, c := range b.calls {
		// A call anchored only for a hold or transfer settles itself
		// (settleMedia): moving it now would cut the music or the transfer.
		if c.state == StateAnswered && c.anchored != anchor && !c.tempAnchor {
			calls = append(calls, c)
		}
	}
	b.mu.Unlock()
	for _, c := range calls {
		b.wg.Go(func() {
			if err := c.setAnchoring(anchor); err != nil {
				c.log.Warn("media path not changed", "anchor", anchor, "err", err)
				c.event("media path not changed to %s: %v", mediaMode(anchor), err)
			}
		})
	}
}

// setAnchoring re-INVITEs the caller with the callee's media (direct) or
// the relay's (anchored), then the callee with the caller's answer.
func (c *Call) setAnchoring(anchor bool) error {
	b := c.b
	b.mu.Lock()
	a, bl := c.legs[legA], c.legs[legB]
	ok := c.state == StateAnswered && !c.reanchoring && c.anchored != anchor && a != nil && bl != nil &&
		a.State == b2bleg.Confirmed && bl.State == b2bleg.Confirmed && len(a.remoteBody) > 0 && len(bl.remoteBody) > 0 && c.rec == nil
	if !ok {
		b.mu.Unlock()
		return errNotReanchorable
	}
	c.reanchoring = true
	bBody := bl.remoteBody
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		c.reanchoring = false
		b.mu.Unlock()
	}()

	var r *relay
	rwA, rwB := rewrite{}, rewrite{}
	if anchor {
		var err error
		r, err = c.newCallRelay()
		if err != nil {
			return err
		}
		rwA = rewrite{addr: r.addr(legA).Addr(), port: int(r.addr(legA).Port())}
		rwB = rewrite{addr: r.addr(legB).Addr(), port: int(r.addr(legB).Port())}
	}
	fail := func(err error) error {
		if r != nil {
			r.close()
		}
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 64*sip.T1)
	defer cancel()

	b.mu.Lock()
	offerA, err := rewriteSDP(bBody, &a.origin, rwA)
	b.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	ansA, err := c.reinviteLeg(ctx, a, offerA)
	if err != nil {
		return fail(fmt.Errorf("caller re-INVITE: %w", err))
	}
	b.mu.Lock()
	offerB, err := rewriteSDP(ansA.Body(), &bl.origin, rwB)
	b.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	ansB, err := c.reinviteLeg(ctx, bl, offerB)
	if err != nil {
		return fail(fmt.Errorf("callee re-INVITE: %w", err))
	}
	ra, errA := sdpneg.Parse(ansA.Body())
	rb, errB := sdpneg.Parse(ansB.Body())
	if err := errors.Join(errA, errB); err != nil {
		return fail(err)
	}
	if r != nil {
		r.setRemote(legA, ra.AddrPort())
		r.setRemote(legB, rb.AddrPort())
		if codec, ok := audioCodec(rb); ok {
			r.setCodec(legA, codec.PayloadType, codec.Same(sdpneg.PCMA), true)
			r.setCodec(legB, codec.PayloadType, codec.Same(sdpneg.PCMA), true)
		}
	}
	b.mu.Lock()
	old := c.relay
	c.relay, c.anchored = r, anchor
	a.remote, a.remoteBody, a.localBody = ra, ansA.Body(), offerA
	bl.remote, bl.remoteBody, bl.localBody = rb, ansB.Body(), offerB
	b.mu.Unlock()
	if old != nil {
		old.close()
	}
	c.event("media path changed to %s by re-INVITE on both legs", mediaMode(anchor))
	return nil
}

// reinviteRequest is a re-INVITE in l's dialog, with offer as its SDP
// body when there is one.
func (c *Call) reinviteRequest(l *leg, offer []byte) *sip.Request {
	b := c.b
	b.mu.Lock()
	req := request(&l.Dlg, sip.INVITE, 0)
	b.mu.Unlock()
	req.AppendHeader(b.contact())
	req.AppendHeader(c.correlation())
	if len(offer) > 0 {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(offer)
	}
	return req
}

// reinviteLeg sends a PBX-initiated re-INVITE with an offer on leg l and
// returns its 2xx (already ACKed).
func (c *Call) reinviteLeg(ctx context.Context, l *leg, offer []byte) (*sip.Response, error) {
	b := c.b
	req := c.reinviteRequest(l, offer)
	tx, err := b.transact(ctx, req)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.StatusCode < 200 {
				continue
			}
			if res.StatusCode == sip.StatusRequestPending {
				return nil, fmt.Errorf("%w: %d %s", errGlare, res.StatusCode, res.Reason)
			}
			if res.StatusCode >= 300 {
				return nil, fmt.Errorf("%d %s", res.StatusCode, res.Reason)
			}
			l.Ack(tx, res)
			if len(res.Body()) == 0 {
				return nil, fmt.Errorf("2xx to our re-INVITE without SDP answer")
			}
			return res, nil
		case <-tx.Done():
			return nil, fmt.Errorf("no final response to re-INVITE")
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(64 * sip.T1):
			return nil, fmt.Errorf("no final response to re-INVITE")
		}
	}
}
