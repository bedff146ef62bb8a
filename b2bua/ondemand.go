package b2bua

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/media/mediarelay"
	"github.com/siplab/siplab/sip/sdpneg"
)

// Anchoring on demand. With direct media the PBX is out of the RTP path,
// yet music on hold and a transfer need it in: a real PBX re-anchors the
// call for them — it answers the hold itself and re-INVITEs the other
// phone onto its relay; before a transfer it re-INVITEs the transferee —
// and, when the call is settled again (resumed, transferred), moves it
// back to direct media if that is still what media_anchor says.

// errBusyMedia is a media path change already running on the call.
var errBusyMedia = errors.New("b2bua: another media path change is running")

// isHold reports an offer that puts the other party on hold (RFC 3264
// §8.4: sendonly or inactive, or the RFC 2543 c=0.0.0.0).
func isHold(offer *sdpneg.Remote) bool {
	return offer != nil && (offer.Direction == sdpneg.SendOnly || offer.Direction == sdpneg.Inactive || offer.Addr.IsUnspecified())
}

// newCallRelay binds a relay that reads the PBX's live settings.
func (c *Call) newCallRelay() (*relay, error) {
	b := c.b
	return newRelay(b.mediaIP, b.latching, func() bool { return b.settings.get().MOH }, b.cfg.MOHHz, c.log)
}

// latching is the `latch` setting in mediarelay's terms, read for every
// packet: on is learn (send to where the phone's media comes from, accept
// only that source), off is off (trust the SDP, accept anyone).
func (b *B2BUA) latching() mediarelay.Latching {
	if b.settings.get().Latch {
		return mediarelay.Learn
	}
	return mediarelay.Off
}

// beginMediaChange claims the call's media path for one change.
func (c *Call) beginMediaChange() bool {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	if c.reanchoring || c.relay != nil {
		return false
	}
	c.reanchoring = true
	return true
}

func (c *Call) endMediaChange() {
	c.b.mu.Lock()
	c.reanchoring = false
	c.b.mu.Unlock()
}

// holdWithMusic handles a hold re-INVITE from l on a direct-media call:
// the PBX answers it itself from a new relay (l now sends to the relay,
// which drops its RTP while it holds), then re-INVITEs the other phone
// onto the relay, which plays it music on hold. The call stays anchored
// until it is resumed (settleMedia).
func (c *Call) holdWithMusic(l *leg, req *sip.Request, tx sip.ServerTransaction, offer *sdpneg.Remote) {
	b := c.b
	if !c.beginMediaChange() {
		b.reply(tx, req, sip.StatusRequestPending, "Request Pending", errBusyMedia.Error(), sip.NewHeader("Retry-After", "1"))
		return
	}
	defer c.endMediaChange()
	r, err := c.newCallRelay()
	if err != nil {
		b.reply(tx, req, sip.StatusServiceUnavailable, "Service Unavailable", err.Error())
		return
	}
	b.mu.Lock()
	o := c.other(l)
	oRemote, oBody := o.remote, o.remoteBody
	b.mu.Unlock()
	if oRemote == nil || len(oBody) == 0 {
		r.close()
		b.reply(tx, req, sip.StatusRequestPending, "Request Pending", "other leg has no media description yet")
		return
	}
	// Until the other phone is re-INVITEd, music goes where its SDP says.
	r.setRemote(o.idx, oRemote.AddrPort())
	if codec, ok := audioCodec(oRemote); ok {
		r.setCodec(o.idx, codec.PayloadType, codec.Same(sdpneg.PCMA), true)
		r.setCodec(l.idx, codec.PayloadType, codec.Same(sdpneg.PCMA), true)
	}
	b.mu.Lock()
	c.relay, c.anchored, c.tempAnchor = r, true, true
	// What l was told so far is o's description (passed through): our
	// answer keeps its codecs and points at the relay.
	l.localBody = oBody
	b.mu.Unlock()
	c.event("hold with direct media: anchoring the call for music on hold")
	body, err := c.answerLocally(l, offer, req.Body())
	if err != nil {
		c.dropTempRelay(r)
		b.reply(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here", err.Error())
		return
	}
	res := c.inResponse(req, sip.StatusOK, "OK", body)
	res.AppendHeader(b.contact())
	if !c.sendAndAwaitAck(l, tx, req, res, nil) {
		return
	}
	// Now the held phone: offered l's media at the relay, sendrecv, so it
	// keeps sending (dropped while held) and plays what the relay sends.
	if err := c.pullOntoRelay(o, r); err != nil {
		c.event("held party not moved to the relay (%v): music goes to its SDP address", err)
		return
	}
	c.event("held party %s re-INVITEd onto the relay: music on hold", o.peer)
}

// pullOntoRelay re-INVITEs leg t with the other leg's description pointed
// at t's side of relay r, and follows t's answer.
func (c *Call) pullOntoRelay(t *leg, r *relay) error {
	b := c.b
	sendrecv := sdpneg.SendRecv
	b.mu.Lock()
	src := c.other(t).remoteBody
	offer, err := rewriteSDP(src, &t.origin, rewrite{addr: r.addr(t.idx).Addr(), port: int(r.addr(t.idx).Port()), dir: &sendrecv})
	b.mu.Unlock()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 64*sip.T1)
	defer cancel()
	res, err := c.reinviteLeg(ctx, t, offer)
	if err != nil {
		return err
	}
	ans, err := sdpneg.Parse(res.Body())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	r.setRemote(t.idx, ans.AddrPort())
	if codec, ok := audioCodec(ans); ok {
		r.setCodec(t.idx, codec.PayloadType, codec.Same(sdpneg.PCMA), true)
	}
	b.mu.Lock()
	t.remote, t.remoteBody, t.localBody = ans, res.Body(), offer
	b.mu.Unlock()
	return nil
}

// dropTempRelay undoes a temporary anchoring that never took effect.
func (c *Call) dropTempRelay(r *relay) {
	c.b.mu.Lock()
	if c.relay == r {
		c.relay, c.anchored, c.tempAnchor = nil, false, false
	}
	c.b.mu.Unlock()
	r.close()
}

// anchorForTransfer re-INVITEs the transferee t (the party that stays)
// onto a new relay before a blind transfer on a direct-media call: the
// transfer target is then connected in the referrer's place on the relay,
// the way it is on an anchored call. The referrer keeps its direct path
// to t until the transfer completes.
func (c *Call) anchorForTransfer(t *leg) error {
	b := c.b
	if !c.beginMediaChange() {
		return errBusyMedia
	}
	defer c.endMediaChange()
	r, err := c.newCallRelay()
	if err != nil {
		return err
	}
	b.mu.Lock()
	ref := c.other(t)
	refRemote := ref.remote
	b.mu.Unlock()
	if refRemote != nil {
		r.setRemote(ref.idx, refRemote.AddrPort())
	}
	if err := c.pullOntoRelay(t, r); err != nil {
		r.close()
		return fmt.Errorf("transferee re-INVITE: %w", err)
	}
	b.mu.Lock()
	c.relay, c.anchored, c.tempAnchor = r, true, true
	b.mu.Unlock()
	c.event("transfer with direct media: %s re-INVITEd onto the relay", t.peer)
	return nil
}

// settleMedia ends a temporary anchoring once nothing needs the relay
// (no one holds): the call goes back to direct media by re-INVITE on both
// legs, unless media_anchor was turned on meanwhile (then it stays).
func (c *Call) settleMedia() {
	b := c.b
	b.mu.Lock()
	temp, r, st := c.tempAnchor, c.relay, c.state
	b.mu.Unlock()
	if !temp || r == nil || st != StateAnswered {
		return
	}
	if b.settings.get().MediaAnchor {
		b.mu.Lock()
		c.tempAnchor = false
		b.mu.Unlock()
		return
	}
	for _, s := range r.stats() {
		if s.Holding {
			return
		}
	}
	err := c.setAnchoring(false)
	for try := 0; errors.Is(err, errGlare) && try < 3; try++ {
		// RFC 3261 §14.1: the PBX does not own the phone's Call-ID on the
		// caller leg, so it may retry after 0-2 s (2.1-4 s as the owner on
		// the callee leg; 2.1-4 s covers both).
		time.Sleep(2100*time.Millisecond + rand.N(1900*time.Millisecond))
		err = c.setAnchoring(false)
	}
	if err != nil {
		c.event("still anchored after hold/transfer: %v", err)
		return
	}
	b.mu.Lock()
	c.tempAnchor = false
	b.mu.Unlock()
}
