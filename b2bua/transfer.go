package b2bua

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipdialog"
)

// onRefer handles a REFER inside a call (RFC 3515): a blind transfer. The
// PBX is the transferee on the referrer's leg: it answers 202, reports
// progress in NOTIFYs carrying message/sipfrag, calls the target itself
// and connects it with the other party, who keeps its dialog and media
// (the relay's port does not change) and never notices.
func (b *B2BUA) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	if b.check(req, tx) {
		return
	}
	if sipdialog.ToTag(req) == "" {
		b.reply(tx, req, sip.StatusForbidden, "Forbidden", "REFER outside a call is not supported: transfer a call you are in")
		return
	}
	l := b.inDialog(req, tx)
	if l == nil {
		return
	}
	c := l.c
	b.mu.Lock()
	current, o, anchored := c.legs[l.idx] == l, c.other(l), c.relay != nil
	b.mu.Unlock()
	if !current || o == nil || l.Load() != b2bleg.Confirmed || o.Load() != b2bleg.Confirmed {
		b.reply(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", "no answered call to transfer")
		return
	}
	rt := req.GetHeader("Refer-To")
	if rt == nil || len(req.GetHeaders("Refer-To")) != 1 {
		b.reply(tx, req, sip.StatusBadRequest, "Bad Request", "REFER needs exactly one Refer-To")
		return
	}
	target, err := parseReferTo(rt.Value())
	if err != nil {
		b.reply(tx, req, sip.StatusBadRequest, "Bad Request", "Refer-To: "+err.Error())
		return
	}
	if target.Headers != nil && target.Headers.Has("Replaces") {
		b.referReplaces(req, tx, l, target)
		return
	}
	ext, ok := b.cfg.DialPlan.Lookup(target.User)
	if !ok || ext.Target.Kind != KindUser {
		b.reply(tx, req, sip.StatusNotFound, "Not Found", "no user extension "+target.User)
		return
	}
	b.send(tx, c.inResponse(req, sip.StatusAccepted, "Accepted", nil))
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if !anchored {
			// Direct media: the transferee must be on the PBX's relay
			// before the target can take the referrer's place there.
			if err := c.anchorForTransfer(o); err != nil {
				c.event("transfer to %s failed: %v", ext.Target.User, err)
				c.notifyRefer(l, sip.StatusNotAcceptableHere, "Not Acceptable Here", true)
				return
			}
		}
		c.blindTransfer(l, ext.Target.User)
		// Anchored only for the transfer (done or failed): back to direct.
		c.settleMedia()
	}()
}

// parseReferTo reads the URI of a Refer-To value ("<sip:102@pbx>", or a
// bare URI).
func parseReferTo(v string) (sip.Uri, error) {
	var u sip.Uri
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return u, fmt.Errorf("unbalanced <")
		}
		v = v[i+1 : i+j]
	} else if k := strings.IndexByte(v, ';'); k >= 0 {
		v = v[:k] // a bare URI's parameters belong to the header
	}
	if err := sip.ParseUri(v, &u); err != nil {
		return u, err
	}
	if u.User == "" {
		return u, fmt.Errorf("%q names no user", v)
	}
	return u, nil
}

// notifyRefer reports transfer progress to the referrer (RFC 3515 §2.4.5).
func (c *Call) notifyRefer(l *leg, code int, reason string, final bool) {
	b := c.b
	b.mu.Lock()
	if l.State == b2bleg.Terminated {
		b.mu.Unlock()
		return
	}
	req := request(&l.Dlg, sip.NOTIFY, 0)
	b.mu.Unlock()
	state := "active;expires=60"
	if final {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.AppendHeader(c.correlation())
	req.AppendHeader(b.contact())
	req.SetBody(fmt.Appendf(nil, "SIP/2.0 %d %s\r\n", code, reason))
	ctx, cancel := b.lifetime(64 * sip.T1)
	defer cancel()
	res, err := b.do(ctx, req)
	if err != nil {
		c.log.Warn("transfer NOTIFY got no answer", "err", err)
		return
	}
	c.log.Info("transfer NOTIFY answered", "sipfrag", code, "code", res.StatusCode)
}

// blindTransfer calls user for the party on the other side of r and, once
// answered, puts the new leg in r's place.
func (c *Call) blindTransfer(r *leg, user string) {
	b := c.b
	b.mu.Lock()
	t, rl := c.other(r), c.relay
	tBody := t.remoteBody
	tUser := userOf(t.peer)
	b.mu.Unlock()
	c.event("blind transfer: leg %s (%s) refers %s to %s", legNames[r.idx], r.peer, t.peer, user)
	c.notifyRefer(r, 100, "Trying", false)
	fail := func(code int, reason, why string) {
		c.event("transfer to %s failed: %s", user, why)
		c.notifyRefer(r, code, reason, true)
	}
	ruri, dest, at := c.resolve(user)
	if at != nil {
		fail(at.code, at.reason, at.why)
		return
	}
	// The transferee's own description, pointed at the relay side the
	// referrer used: the new party takes the referrer's place in the relay.
	o := newOrigin()
	sendrecv := sdpneg.SendRecv
	body, err := rewriteSDP(tBody, &o, rewrite{addr: rl.addr(r.idx).Addr(), port: int(rl.addr(r.idx).Port()), dir: &sendrecv})
	if err != nil {
		fail(sip.StatusInternalServerError, "Server Internal Error", err.Error())
		return
	}
	n, req := c.newUACLeg(r.idx, b.userURI(user), tUser, ruri, dest, "", body)
	n.origin = o
	key := n.Dlg.Key()
	b.mu.Lock()
	b.legs[key] = n // matched for in-dialog requests, not yet part of the call
	b.mu.Unlock()
	ctx, cancel := b.lifetime(5 * time.Minute)
	defer cancel()
	tx, err := b.transact(ctx, req)
	if err != nil {
		fail(sip.StatusServiceUnavailable, "Service Unavailable", err.Error())
		return
	}
	defer tx.Terminate()
	noAnswer := time.NewTimer(b.settings.get().NoAnswer)
	defer noAnswer.Stop()
	for {
		select {
		case res := <-tx.Responses():
			switch {
			case res.StatusCode < 200:
				n.Early(res)
				if rseq, ok := requires100rel(res); ok {
					c.prack(n, res, rseq)
				}
				if res.StatusCode == sip.StatusRinging {
					c.notifyRefer(r, sip.StatusRinging, "Ringing", false)
				}
			case res.StatusCode < 300:
				n.Ack(tx, res)
				c.connectTransfer(r, n, res)
				return
			default:
				n.Set(b2bleg.Terminated)
				fail(res.StatusCode, res.Reason, fmt.Sprintf("%s answered %d", user, res.StatusCode))
				return
			}
		case <-tx.Done():
			n.Set(b2bleg.Terminated)
			fail(sip.StatusRequestTimeout, "Request Timeout", user+" never answered the INVITE")
			return
		case <-noAnswer.C:
			n.Cancel()
		case <-b.done:
			return
		}
	}
}

// connectTransfer swaps the answered target in for the referrer.
func (c *Call) connectTransfer(r, n *leg, res *sip.Response) {
	b := c.b
	ans, err := sdpneg.Parse(res.Body())
	if err != nil {
		go n.Bye(context.Background(), "unusable SDP answer")
		c.event("transfer target's SDP unusable: %v", err)
		c.notifyRefer(r, sip.StatusBadGateway, "Bad Gateway", true)
		return
	}
	b.mu.Lock()
	rl := c.relay
	if c.state == StateEnded || rl == nil {
		b.mu.Unlock()
		go n.Bye(context.Background(), "call ended during transfer")
		return
	}
	n.remote, n.remoteBody = ans, res.Body()
	c.legs[n.idx] = n
	c.target = Target{Kind: KindUser, User: userOf(n.peer)}
	b.mu.Unlock()
	b.blfChanged()
	rl.replacePhone(n.idx, ans.AddrPort())
	rl.setHolding(n.idx, false)
	if codec, ok := audioCodec(ans); ok {
		rl.setCodec(n.idx, codec.PayloadType, codec.Same(sdpneg.PCMA), true)
	}
	b.mu.Lock()
	c.retired = append(c.retired, r)
	b.mu.Unlock()
	c.event("transfer connected: %s now talks to %s", c.other(n).peer, n.peer)
	c.notifyRefer(r, sip.StatusOK, "OK", true)
	// The referrer normally hangs up now; if it lingers, the PBX ends its
	// leg, which no longer carries any media.
	time.AfterFunc(2*time.Second, func() {
		if r.Load() == b2bleg.Confirmed {
			r.Bye(context.Background(), "transferred")
		}
	})
}

func userOf(uri string) string {
	var u sip.Uri
	if err := sip.ParseUri(trimAngle(uri), &u); err != nil {
		return ""
	}
	return u.User
}

// referReplaces handles an attended transfer: the referrer talked to the
// target in another call through this PBX, and its Refer-To carries
// Replaces naming its own dialog of that call (RFC 3891). Both dialogs
// are the PBX's, so no new call is needed: the target's leg moves into
// this call (re-INVITEd onto this call's relay) in the referrer's place,
// and the referrer's two legs end.
func (b *B2BUA) referReplaces(req *sip.Request, tx sip.ServerTransaction, r *leg, target sip.Uri) {
	c := r.c
	raw, _ := target.Headers.Get("Replaces")
	rep, err := url.QueryUnescape(raw)
	if err != nil {
		b.reply(tx, req, sip.StatusBadRequest, "Bad Request", "Replaces is not escaped properly")
		return
	}
	cid, toTagV, fromTagV, ok := parseReplaces(rep)
	if !ok {
		b.reply(tx, req, sip.StatusBadRequest, "Bad Request", "Replaces needs call-id;to-tag=..;from-tag=..")
		return
	}
	b.mu.Lock()
	w := b.legs[sipdialog.Key{CallID: cid, LocalTag: toTagV}]
	var c2 *Call
	var n *leg
	if w != nil && w.Dlg.RemoteTag == fromTagV && w.State == b2bleg.Confirmed && w.c != c && w.c.legs[w.idx] == w {
		c2 = w.c
		n = c2.other(w)
	}
	okState := c2 != nil && n != nil && n.State == b2bleg.Confirmed && c2.relay != nil && c.relay != nil && len(c.other(r).remoteBody) > 0
	b.mu.Unlock()
	if !okState {
		b.reply(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist",
			"Replaces names no answered, anchored call of this PBX")
		return
	}
	b.send(tx, c.inResponse(req, sip.StatusAccepted, "Accepted", nil))
	b.wg.Go(func() { c.attendedTransfer(r, w, n) })
}

// parseReplaces reads "call-id;to-tag=x;from-tag=y" (RFC 3891 §6.1).
func parseReplaces(v string) (cid, to, from string, ok bool) {
	parts := strings.Split(v, ";")
	cid = strings.TrimSpace(parts[0])
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(k) {
		case "to-tag":
			to = val
		case "from-tag":
			from = val
		}
	}
	return cid, to, from, cid != "" && to != "" && from != ""
}

// attendedTransfer moves n (the target's leg of the consultation call,
// whose referrer leg is w) into r's place in r's call.
func (c *Call) attendedTransfer(r, w, n *leg) {
	b := c.b
	b.mu.Lock()
	c2, t, rl := w.c, c.other(r), c.relay
	tBody := t.remoteBody
	b.mu.Unlock()
	c.event("attended transfer: leg %s (%s) connects %s with %s from call %s", legNames[r.idx], r.peer, t.peer, n.peer, c2.id)
	c.notifyRefer(r, 100, "Trying", false)
	// The target learns the transferee's media, pointed at this call's
	// relay side the referrer used.
	b.mu.Lock()
	offer, err := rewriteSDP(tBody, &n.origin, rewrite{addr: rl.addr(r.idx).Addr(), port: int(rl.addr(r.idx).Port())})
	b.mu.Unlock()
	if err != nil {
		c.notifyRefer(r, sip.StatusInternalServerError, "Server Internal Error", true)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 64*sip.T1)
	defer cancel()
	res, err := c2.reinviteLeg(ctx, n, offer)
	if err != nil {
		c.event("attended transfer failed: target re-INVITE: %v", err)
		c.notifyRefer(r, sip.StatusBadGateway, "Bad Gateway", true)
		return
	}
	ans, err := sdpneg.Parse(res.Body())
	if err != nil {
		c.notifyRefer(r, sip.StatusBadGateway, "Bad Gateway", true)
		return
	}
	b.mu.Lock()
	c2.legs[n.idx] = nil
	n.c, n.idx = c, r.idx
	n.remote, n.remoteBody, n.localBody = ans, res.Body(), offer
	c.legs[r.idx] = n
	c.retired = append(c.retired, r)
	c.target = Target{Kind: KindUser, User: userOf(n.peer)}
	b.mu.Unlock()
	rl.replacePhone(r.idx, ans.AddrPort())
	rl.setHolding(r.idx, false)
	rl.setHolding(1-r.idx, false)
	if codec, ok := audioCodec(ans); ok {
		rl.setCodec(r.idx, codec.PayloadType, codec.Same(sdpneg.PCMA), true)
	}
	c.event("transfer connected: %s now talks to %s", t.peer, n.peer)
	c2.event("replaced: %s moved to call %s by attended transfer", n.peer, c.id)
	b.blfChanged()
	c.notifyRefer(r, sip.StatusOK, "OK", true)
	// The referrer's consultation leg is replaced: it ends now. Its first
	// leg normally hangs up itself; if not, the PBX ends it.
	w.Bye(context.Background(), "replaced by attended transfer")
	c2.end("pbx", "replaced by attended transfer")
	time.AfterFunc(2*time.Second, func() {
		if r.Load() == b2bleg.Confirmed {
			r.Bye(context.Background(), "transferred")
		}
	})
}
