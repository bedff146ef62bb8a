package b2bua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/location"
	"github.com/siplab/siplab/sdpneg"
	"github.com/siplab/siplab/sipdialog"
)

// CallState is where a call stands.
type CallState string

const (
	StateRouting   CallState = "routing"   // INVITE received, callee being looked up
	StateRinging   CallState = "ringing"   // callee leg sent, provisional relayed
	StateAnswered  CallState = "answered"  // both legs confirmed
	StateVoicemail CallState = "voicemail" // the PBX answered and records
	StateEnded     CallState = "ended"
)

// Leg states.
const (
	legCalling    = "calling"
	legEarly      = "early"
	legConfirmed  = "confirmed"
	legTerminated = "terminated"
)

// Call is one call through the PBX: the caller's leg (a) and the callee's
// leg (b), correlated by id. Fields are guarded by B2BUA.mu.
type Call struct {
	b   *B2BUA
	id  string
	log *slog.Logger

	dialled string
	ext     Extension
	caller  string // caller's user (From)
	target  Target // what is being rung now (after forwards)

	state    CallState
	legs     [2]*leg
	anchored bool
	// reanchoring: a media path change (re-INVITEs on both legs) is running.
	reanchoring bool
	// tempAnchor: direct media by setting, anchored for now because of a
	// hold or a transfer (ondemand.go); settleMedia goes direct again.
	tempAnchor bool
	relay      *relay
	rec        *recording
	// retired legs left the call (transferors); kept to match their BYE.
	retired []*leg

	started, answered, ended time.Time
	endedBy, endReason       string
	events                   []string

	cancelled  chan struct{} // the caller sent CANCEL
	cancelOnce sync.Once
	// rel100A: how the caller's INVITE named 100rel (RFC 3262), which
	// decides which 18x go reliably (prack.go); relA is the last reliable
	// one sent, rseqA its RSeq, relNextA one waiting for relA's PRACK;
	// finalA closes when the final response goes out (retransmissions stop).
	rel100A  rel100Mode
	rseqA    uint32
	relA     *reliable18x
	relNextA *queued18x
	finalA   chan struct{}
}

// leg is one dialog of a call.
type leg struct {
	c      *Call
	idx    int
	dlg    sipdialog.Dialog
	state  string
	origin sdpOrigin
	peer   string
	// remote is the phone's last SDP; localBody the last SDP we sent it.
	remote     *sdpneg.Remote
	remoteBody []byte
	localBody  []byte
	// A 2xx we sent on this leg waits for its ACK (RFC 3261 §13.3.1.4).
	ackCh  chan struct{}
	ackSeq uint32
	// Reliable provisionals acknowledged on this leg (we are UAC).
	prackedRSeq uint32
	prackReq    *sip.Request
	// UAC side (leg b).
	invite    *sip.Request
	ack       *sip.Request
	provSeen  bool
	cancelled bool
}

func (c *Call) other(l *leg) *leg { return c.legs[1-l.idx] }

// event records a step of the call for status (forwards, holds, ...).
func (c *Call) eventLocked(format string, args ...any) {
	e := time.Now().UTC().Format("15:04:05.000") + " " + fmt.Sprintf(format, args...)
	if len(c.events) < 50 {
		c.events = append(c.events, e)
	}
}

func (c *Call) event(format string, args ...any) {
	c.b.mu.Lock()
	c.eventLocked(format, args...)
	c.b.mu.Unlock()
	c.log.Info(fmt.Sprintf(format, args...))
}

func (c *Call) correlation() sip.Header { return sip.NewHeader(CorrelationHeader, c.id) }

// newCall registers a call for an incoming INVITE; b.mu held.
func (b *B2BUA) newCallLocked(dialled string, ext Extension, caller string) *Call {
	b.nextID++
	c := &Call{
		b:         b,
		id:        fmt.Sprintf("c%d-%s", b.nextID, sip.GenerateTagN(6)),
		dialled:   dialled,
		ext:       ext,
		caller:    caller,
		target:    ext.Target,
		state:     StateRouting,
		started:   time.Now(),
		cancelled: make(chan struct{}),
	}
	c.log = b.log.With("call", c.id)
	b.calls = append(b.calls, c)
	b.counters.Calls++
	for len(b.calls) > maxCalls {
		i := slices.IndexFunc(b.calls, func(c *Call) bool { return c.state == StateEnded })
		if i < 0 {
			break
		}
		b.calls = slices.Delete(b.calls, i, i+1)
	}
	return c
}

// addLeg files a leg under its dialog key; b.mu held.
func (b *B2BUA) addLegLocked(l *leg) {
	l.c.legs[l.idx] = l
	b.legs[l.dlg.Key()] = l
}

// --- the caller's INVITE ------------------------------------------------

func (b *B2BUA) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if b.check(req, tx) {
		return
	}
	if sipdialog.ToTag(req) != "" {
		b.onReinvite(req, tx)
		return
	}
	if b.isClosed() {
		b.reply(tx, req, sip.StatusServiceUnavailable, "Service Unavailable", "PBX shutting down")
		return
	}
	cid := sipdialog.CallID(req)
	ext, offer, ref := b.admitInvite(req)
	if ref != nil {
		b.log.Info("INVITE refused", "call_id", cid, "code", ref.code, "detail", ref.text)
		b.reply(tx, req, ref.code, ref.reason, ref.text)
		return
	}
	dialled := req.Recipient.User
	ct := req.Contact()
	ftag := sipdialog.FromTag(req)
	b.mu.Lock()
	active := 0
	for _, c := range b.calls {
		if c.state != StateEnded {
			active++
		}
	}
	if active >= b.cfg.MaxCalls {
		b.mu.Unlock()
		b.reply(tx, req, sip.StatusServiceUnavailable, "Service Unavailable", fmt.Sprintf("all %d channels busy", b.cfg.MaxCalls),
			sip.NewHeader("Retry-After", "5"))
		return
	}
	for _, l := range b.legs {
		// Same Call-ID and From tag on a new transaction: the request
		// reached us twice by different paths (§8.2.2.2, merged request).
		if l.idx == legA && l.dlg.CallID == cid && l.dlg.RemoteTag == ftag && l.state != legTerminated {
			b.mu.Unlock()
			b.reply(tx, req, sip.StatusLoopDetected, "Loop Detected", "")
			return
		}
	}
	c := b.newCallLocked(dialled, ext, req.From().Address.User)
	c.log = c.log.With("call_id", cid)
	c.rel100A = rel100Of(req)
	c.finalA = make(chan struct{})
	localTag := sip.GenerateTagN(10)
	// The tag goes on the request so every response built from it carries
	// it, including the 487 sipgo writes on CANCEL.
	req.To().Params.Add("tag", localTag)
	a := &leg{c: c, idx: legA, state: legCalling, origin: newOrigin(), remote: offer, remoteBody: req.Body(),
		peer: req.From().Address.String(),
		dlg: sipdialog.Dialog{
			CallID: cid, LocalTag: localTag, RemoteTag: ftag,
			LocalURI: req.To().Address, RemoteURI: req.From().Address,
			RemoteSeq: req.CSeq().SeqNo, RemoteSeqSet: true,
			RemoteTarget: *ct.Address.Clone(), RouteSet: sipdialog.RouteSetAsUAS(req),
		}}
	b.addLegLocked(a)
	c.anchored = b.settings.get().MediaAnchor
	b.mu.Unlock()
	c.log.Info("call in", "from", a.peer, "dialled", dialled, "target", ext.Target.String(), "anchored", c.anchored, "source", req.Source())

	tx.OnCancel(func(*sip.Request) {
		c.cancelOnce.Do(func() { close(c.cancelled) })
	})
	b.send(tx, c.aResponse(req, sip.StatusTrying, "Trying", nil))
	b.wg.Add(1)
	defer b.wg.Done()
	c.route(req, tx, offer)
}

// refusal is a final failure response decided before any leg exists.
type refusal struct {
	code         int
	reason, text string
}

// admitInvite decides whether a new INVITE can become a call: a dial plan
// entry, a Contact, and an SDP offer the PBX can pass on. It sends nothing.
func (b *B2BUA) admitInvite(req *sip.Request) (Extension, *sdpneg.Remote, *refusal) {
	dialled := req.Recipient.User
	ext, ok := b.cfg.DialPlan.Lookup(dialled)
	if !ok {
		return ext, nil, &refusal{sip.StatusNotFound, "Not Found", "no extension " + dialled + " in the dial plan"}
	}
	if req.Contact() == nil {
		return ext, nil, &refusal{sip.StatusBadRequest, "Bad Request", "INVITE without Contact"}
	}
	if len(req.Body()) == 0 {
		// The PBX re-originates with the caller's offer; without one it
		// would have to invent codecs for both phones.
		return ext, nil, &refusal{sip.StatusNotAcceptableHere, "Not Acceptable Here", "offerless INVITE not supported: send SDP in the INVITE"}
	}
	if ext.Target.Kind == KindTrunk && !b.platformCaller(req) && !b.fromTrunk(req) {
		// routepolicy.go: a stranger must not reach the PSTN through us.
		return ext, nil, &refusal{sip.StatusForbidden, "Forbidden", "calls to a trunk are for the platform's users (From at " + b.cfg.Domain + ")"}
	}
	if ext.Target.Kind == KindTrunk && b.fromTrunk(req) {
		// A carrier must not be able to dial out again through us:
		// trunk to trunk would be a toll-fraud relay (and a loop).
		return ext, nil, &refusal{sip.StatusForbidden, "Forbidden", "calls from a trunk reach DIDs and extensions only"}
	}
	offer, err := sdpneg.Parse(req.Body())
	if err != nil {
		return ext, nil, &refusal{sip.StatusBadRequest, "Bad SDP", err.Error()}
	}
	if offer.Proto != "RTP/AVP" || offer.Port == 0 {
		return ext, nil, &refusal{sip.StatusNotAcceptableHere, "Not Acceptable Here", "audio must be RTP/AVP with a port"}
	}
	return ext, offer, nil
}

// fromTrunk reports a request whose source is one of the dial plan's
// trunks (a carrier's call delivered by the SBC straight to the PBX).
func (b *B2BUA) fromTrunk(req *sip.Request) bool {
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return false
	}
	for _, p := range b.cfg.DialPlan.Prefixes() {
		if p.Trunk.Addr() == src.Addr().Unmap() {
			return true
		}
	}
	for _, e := range b.cfg.DialPlan.Extensions() {
		if e.Target.Kind == KindTrunk && e.Target.Trunk.Addr() == src.Addr().Unmap() {
			return true
		}
	}
	return false
}

// aResponse builds a response on the caller's leg: our tag, our Contact and
// the correlation header.
func (c *Call) aResponse(req *sip.Request, code int, reason string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	res.AppendHeader(c.correlation())
	if code > 100 && code < 300 {
		res.AppendHeader(c.b.contact())
	}
	if code >= 200 && code < 300 {
		res.AppendHeader(sip.NewHeader("Allow", allowed))
	}
	if len(body) > 0 {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	return res
}

// outcome is how one attempt to reach a target ended.
type outcome int

const (
	outAnswered outcome = iota
	outCancelled
	outBusy
	outNoAnswer
	outUnavailable
	outFailed
)

type attempt struct {
	out    outcome
	code   int
	reason string
	why    string
}

// route rings the extension's target, follows busy / no-answer forwards
// once, and sends the caller the final response.
func (c *Call) route(req *sip.Request, tx sip.ServerTransaction, offer *sdpneg.Remote) {
	b := c.b
	target := c.ext.Target
	forwarded := false
	for {
		b.mu.Lock()
		c.target = target
		b.mu.Unlock()
		if target.Kind == KindVoicemail {
			box := target.User
			if box == "" {
				box = c.caller
			}
			c.voicemail(req, tx, offer, box)
			return
		}
		timeout := c.ext.Timeout
		if timeout == 0 {
			timeout = b.settings.get().NoAnswer
		}
		at := c.ring(req, tx, target, timeout)
		switch at.out {
		case outAnswered:
			return
		case outCancelled:
			c.finalSent()
			c.end("caller", "CANCEL from caller")
			return
		}
		var next *Target
		switch at.out {
		case outBusy:
			next = c.ext.Busy
		case outNoAnswer, outUnavailable:
			next = c.ext.NoAnswer
		}
		if next != nil && !forwarded {
			forwarded = true
			b.mu.Lock()
			b.counters.Forwarded++
			b.mu.Unlock()
			c.event("forward: %s (%s) -> %s", target.String(), at.why, next.String())
			target = *next
			continue
		}
		code, reason := at.code, at.reason
		if code == 0 {
			code, reason = sip.StatusTemporarilyUnavailable, "Temporarily Unavailable"
		}
		c.finalSent()
		b.send(tx, c.aResponse(req, code, reason, nil))
		b.mu.Lock()
		b.counters.Failed++
		b.mu.Unlock()
		c.end("callee", fmt.Sprintf("%d %s (%s)", code, reason, at.why))
		return
	}
}

// ring originates the callee leg to a user or a trunk and relays its
// progress to the caller until it is answered, fails, rings out or the
// caller cancels.
func (c *Call) ring(reqA *sip.Request, txA sip.ServerTransaction, t Target, timeout time.Duration) attempt {
	b := c.b
	ruri, to, dest, at := c.resolveTarget(t)
	if at != nil {
		return *at
	}
	bodyB, err := c.offerForB(reqA.Body())
	if err != nil {
		c.log.Warn("cannot build callee offer", "err", err)
		return attempt{out: outFailed, code: sip.StatusInternalServerError, reason: "Server Internal Error", why: err.Error()}
	}
	l, req := c.newUACLeg(legB, to, c.callerID(t), ruri, dest, reqA.From().DisplayName, bodyB)

	b.mu.Lock()
	if old := c.legs[legB]; old != nil {
		delete(b.legs, old.dlg.Key())
	}
	b.addLegLocked(l)
	if c.state == StateRouting {
		c.state = StateRinging
	}
	b.mu.Unlock()
	b.blfChanged()
	c.log.Info("callee leg out", "to", ruri.String(), "via", dest, "b_call_id", l.dlg.CallID)

	ctx, cancel := b.lifetime(5 * time.Minute)
	defer cancel()
	tx, err := b.transact(ctx, req)
	if err != nil {
		c.setLegState(l, legTerminated)
		return attempt{out: outUnavailable, code: sip.StatusServiceUnavailable, reason: "Service Unavailable", why: err.Error()}
	}
	defer tx.Terminate()
	noAnswer := time.NewTimer(timeout)
	defer noAnswer.Stop()
	var giveUp <-chan time.Time // after CANCEL: how long to wait for the 487
	var why outcome = -1
	cancelB := func(reason outcome) {
		if why >= 0 {
			return
		}
		why = reason
		giveUp = time.After(32 * time.Second)
		c.sendCancel(l)
	}
	for {
		select {
		case res := <-tx.Responses():
			switch {
			case res.StatusCode == 100:
			case res.StatusCode < 200:
				c.onEarly(l, reqA, txA, res)
				if rseq, ok := requires100rel(res); ok {
					c.prack(l, res, rseq)
				}
			case res.StatusCode < 300:
				if why >= 0 {
					// The 2xx crossed our CANCEL: the call exists, end it.
					c.ackB(l, tx, res)
					go c.byeLeg(context.Background(), l, "answered after CANCEL")
					return attempt{out: why, why: "answered after CANCEL"}
				}
				return c.onAnswer(l, reqA, txA, tx, res)
			default:
				c.setLegState(l, legTerminated)
				if why >= 0 {
					return attempt{out: why, why: "rang " + timeout.String() + " without answer"}
				}
				return failure(res)
			}
		case <-tx.Done():
			c.setLegState(l, legTerminated)
			if why >= 0 {
				return attempt{out: why, why: "no answer"}
			}
			return attempt{out: outUnavailable, code: sip.StatusRequestTimeout, reason: "Request Timeout", why: "callee never answered the INVITE"}
		case <-noAnswer.C:
			c.log.Info("no answer, cancelling callee leg", "after", timeout)
			cancelB(outNoAnswer)
		case <-c.cancelled:
			cancelB(outCancelled)
		case <-giveUp:
			c.setLegState(l, legTerminated)
			return attempt{out: why, why: "no response to CANCEL"}
		case <-b.done:
			return attempt{out: outCancelled, why: "PBX closed"}
		}
	}
}

// finalSent stops retransmitting reliable provisionals to the caller.
func (c *Call) finalSent() {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	select {
	case <-c.finalA:
	default:
		close(c.finalA)
	}
}

// failure maps a callee's final failure to an outcome.
func failure(res *sip.Response) attempt {
	at := attempt{out: outFailed, code: res.StatusCode, reason: res.Reason, why: fmt.Sprintf("callee answered %d %s", res.StatusCode, res.Reason)}
	switch res.StatusCode {
	case sip.StatusBusyHere, sip.StatusGlobalBusyEverywhere:
		at.out = outBusy
	case sip.StatusTemporarilyUnavailable, sip.StatusRequestTimeout:
		at.out = outUnavailable
	}
	return at
}

// offerForB is the caller's offer as the callee gets it: pointed at the
// relay when anchoring (created on first use), passed through otherwise.
func (c *Call) offerForB(offerA []byte) ([]byte, error) {
	b := c.b
	if !c.anchored {
		return offerA, nil
	}
	b.mu.Lock()
	r := c.relay
	b.mu.Unlock()
	if r == nil {
		var err error
		r, err = c.newCallRelay()
		if err != nil {
			return nil, err
		}
		offer, _ := sdpneg.Parse(offerA) // validated by onInvite
		r.setRemote(legA, offer.AddrPort())
		b.mu.Lock()
		c.relay = r
		b.mu.Unlock()
	}
	b.mu.Lock()
	bl := c.legs[legB]
	b.mu.Unlock()
	o := newOrigin()
	if bl != nil {
		o = bl.origin
	}
	return rewriteSDP(offerA, &o, rewrite{addr: r.addr(legB).Addr(), port: int(r.addr(legB).Port())})
}

// bodyForA turns an SDP from the callee into what the caller gets.
func (c *Call) bodyForA(body []byte) ([]byte, *sdpneg.Remote, error) {
	r, err := sdpneg.Parse(body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	b := c.b
	b.mu.Lock()
	a, rl := c.legs[legA], c.relay
	b.mu.Unlock()
	if rl == nil {
		return body, r, nil
	}
	rl.setRemote(legB, r.AddrPort())
	if codec, ok := audioCodec(r); ok || len(r.AudioCodecs()) > 0 {
		alaw := codec.Same(sdpneg.PCMA)
		rl.setCodec(legA, codec.PayloadType, alaw, ok)
		rl.setCodec(legB, codec.PayloadType, alaw, ok)
	}
	b.mu.Lock()
	out, err := rewriteSDP(body, &a.origin, rewrite{addr: rl.addr(legA).Addr(), port: int(rl.addr(legA).Port())})
	b.mu.Unlock()
	return out, r, err
}

// onEarly relays a callee provisional to the caller (180, or 183 with SDP).
func (c *Call) onEarly(l *leg, reqA *sip.Request, txA sip.ServerTransaction, res *sip.Response) {
	b := c.b
	b.mu.Lock()
	l.provSeen = true
	if tag, ok := res.To().Params.Get("tag"); ok && l.dlg.RemoteTag == "" {
		l.dlg.RemoteTag = tag
	}
	if ct := res.Contact(); ct != nil {
		l.dlg.RemoteTarget = *ct.Address.Clone()
	}
	l.dlg.RouteSet = sipdialog.RouteSetAsUAC(res)
	if l.state == legCalling {
		l.state = legEarly
	}
	wantCancel := l.cancelled
	b.mu.Unlock()
	b.blfChanged()
	if wantCancel {
		c.sendCancel(l)
	}
	var body []byte
	if len(res.Body()) > 0 {
		var err error
		var r *sdpneg.Remote
		if body, r, err = c.bodyForA(res.Body()); err != nil {
			c.log.Warn("early SDP from callee unusable, relaying 180 without it", "err", err)
			body = nil
		} else {
			b.mu.Lock()
			l.remote, l.remoteBody = r, res.Body()
			b.mu.Unlock()
		}
	}
	code, reason := res.StatusCode, res.Reason
	if body == nil && code == 183 {
		code, reason = sip.StatusRinging, "Ringing"
	}
	if c.rel100A.reliable(body) {
		c.sendReliable(txA, reqA, c.aResponse(reqA, code, reason, body), len(body) > 0)
		return
	}
	b.send(txA, c.aResponse(reqA, code, reason, body))
}

// onAnswer finishes the call set-up: ACK the callee, answer the caller,
// wait for the caller's ACK.
func (c *Call) onAnswer(l *leg, reqA *sip.Request, txA sip.ServerTransaction, txB sip.ClientTransaction, res *sip.Response) attempt {
	b := c.b
	c.ackB(l, txB, res)
	if len(res.Body()) == 0 {
		go c.byeLeg(context.Background(), l, "2xx without SDP answer")
		return attempt{out: outFailed, code: sip.StatusBadGateway, reason: "Bad Gateway", why: "callee answered without SDP"}
	}
	bodyA, r, err := c.bodyForA(res.Body())
	if err != nil {
		go c.byeLeg(context.Background(), l, "unusable SDP answer")
		return attempt{out: outFailed, code: sip.StatusBadGateway, reason: "Bad Gateway", why: "callee's SDP answer: " + err.Error()}
	}
	b.mu.Lock()
	l.remote, l.remoteBody = r, res.Body()
	a := c.legs[legA]
	a.localBody = bodyA
	b.mu.Unlock()
	select {
	case <-c.cancelled:
		// The caller gave up while the callee answered; sipgo already
		// sent the caller 487.
		go c.byeLeg(context.Background(), l, "caller cancelled")
		return attempt{out: outCancelled, why: "caller cancelled"}
	default:
	}
	if err := c.awaitEarlyAnswerPrack(); err != nil {
		// RFC 3262 §3: no 2xx before the PRACK of a reliable 18x that
		// carried SDP; without it the UAS rejects the INVITE with a 5xx.
		go c.byeLeg(context.Background(), l, "caller never PRACKed")
		return attempt{out: outFailed, code: sip.StatusInternalServerError, reason: "Server Internal Error", why: err.Error()}
	}
	res2 := c.aResponse(reqA, sip.StatusOK, "OK", bodyA)
	c.finalSent()
	b.mu.Lock()
	c.state = StateAnswered
	c.answered = time.Now()
	a.state = legConfirmed
	b.counters.Answered++
	b.mu.Unlock()
	b.blfChanged()
	c.log.Info("answered", "callee", l.peer, "media", mediaMode(c.anchored))
	if !c.sendAndAwaitAck(a, txA, reqA, res2, c.cancelled) {
		select {
		case <-c.cancelled:
			// The caller's CANCEL crossed the callee's answer: sipgo sent
			// the caller 487 and our 2xx never left, so the callee's leg,
			// already up, must end.
			c.byeLeg(context.Background(), l, "caller cancelled as the callee answered")
			return attempt{out: outCancelled, why: "CANCEL crossed the answer"}
		default:
		}
		c.hangupAll(context.Background(), "no ACK from caller")
	}
	return attempt{out: outAnswered}
}

func mediaMode(anchored bool) string {
	if anchored {
		return "anchored"
	}
	return "direct"
}

// ackB confirms the callee's 2xx: a new transaction-less request in the
// dialog, along its route set (RFC 3261 §13.2.2.4), resent whenever the
// 2xx is retransmitted (our ACK was lost).
func (c *Call) ackB(l *leg, tx sip.ClientTransaction, res *sip.Response) {
	b := c.b
	b.mu.Lock()
	if tag, ok := res.To().Params.Get("tag"); ok {
		l.dlg.RemoteTag = tag
	}
	if ct := res.Contact(); ct != nil {
		l.dlg.RemoteTarget = *ct.Address.Clone()
	}
	l.dlg.RouteSet = sipdialog.RouteSetAsUAC(res)
	l.state = legConfirmed
	ack := request(&l.dlg, sip.ACK, res.CSeq().SeqNo)
	ack.AppendHeader(c.correlation())
	l.ack = ack
	b.mu.Unlock()
	b.blfChanged()
	c.writeAck(l)
	tx.OnRetransmission(func(r *sip.Response) {
		if r.IsSuccess() {
			c.writeAck(l)
		}
	})
}

func (c *Call) writeAck(l *leg) {
	b := c.b
	b.mu.Lock()
	ack := l.ack
	b.mu.Unlock()
	if ack == nil {
		return
	}
	if err := b.client.WriteRequest(ack.Clone()); err != nil {
		c.log.Warn("ACK not sent", "err", err)
	}
}

// sendAndAwaitAck sends a 2xx on a leg where we are UAS and retransmits it
// over UDP (T1 doubling to T2) until the ACK arrives or 64*T1 passes.
//
// cancelled, when it closes, means the INVITE transaction was cancelled
// before our 2xx could be sent (sipgo answered 487 instead): false.
func (c *Call) sendAndAwaitAck(l *leg, tx sip.ServerTransaction, req *sip.Request, res *sip.Response, cancelled <-chan struct{}) bool {
	b := c.b
	ch := make(chan struct{})
	b.mu.Lock()
	l.ackCh, l.ackSeq = ch, req.CSeq().SeqNo
	b.mu.Unlock()
	if err := tx.Respond(res); err != nil {
		c.log.Warn("2xx not sent", "err", err)
		return false
	}
	interval := sip.T1
	deadline := time.NewTimer(64 * sip.T1)
	defer deadline.Stop()
	for {
		select {
		case <-ch:
			return true
		case <-time.After(interval):
			if c.legState(l) == legTerminated {
				return true // a BYE crossed our 2xx
			}
			_ = tx.Respond(res)
			interval = min(2*interval, sip.T2)
		case <-deadline.C:
			c.log.Warn("no ACK for our 2xx", "leg", legNames[l.idx])
			return false
		case <-cancelled:
			return false
		case <-b.done:
			return true
		}
	}
}

func (c *Call) legState(l *leg) string {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	return l.state
}

func (c *Call) setLegState(l *leg, s string) {
	c.b.mu.Lock()
	l.state = s
	c.b.mu.Unlock()
	c.b.blfChanged()
}

// sendCancel cancels the callee INVITE; before a provisional it is only
// remembered (RFC 3261 §9.1) and sent when one arrives.
func (c *Call) sendCancel(l *leg) {
	b := c.b
	b.mu.Lock()
	l.cancelled = true
	if !l.provSeen || l.invite == nil {
		b.mu.Unlock()
		return
	}
	inv := l.invite
	l.invite = nil // once
	b.mu.Unlock()
	cr := sipdialog.Cancel(inv)
	cr.AppendHeader(c.correlation())
	go func() {
		ctx, cancel := b.lifetime(32 * time.Second)
		defer cancel()
		res, err := b.do(ctx, cr)
		if err != nil {
			c.log.Warn("CANCEL failed", "err", err)
			return
		}
		c.log.Info("CANCEL answered", "code", res.StatusCode)
	}()
}

// --- in-dialog requests -------------------------------------------------

func (b *B2BUA) onAck(req *sip.Request, tx sip.ServerTransaction) {
	l := b.lookupLeg(req)
	if l == nil {
		return
	}
	b.mu.Lock()
	if l.ackCh != nil && req.CSeq().SeqNo == l.ackSeq {
		close(l.ackCh)
		l.ackCh = nil
	}
	b.mu.Unlock()
}

func (b *B2BUA) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if b.check(req, tx) {
		return
	}
	l := b.lookupLeg(req)
	if l == nil {
		b.reply(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", "")
		return
	}
	c := l.c
	b.mu.Lock()
	ok := l.dlg.AcceptSeq(req.CSeq().SeqNo)
	b.mu.Unlock()
	if !ok {
		b.reply(tx, req, sip.StatusInternalServerError, "Server Internal Error", "CSeq lower than a previous request")
		return
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	res.AppendHeader(c.correlation())
	b.send(tx, res)
	c.log.Info("BYE received", "leg", legNames[l.idx], "source", req.Source())
	b.mu.Lock()
	detached := c.legs[l.idx] != l
	b.mu.Unlock()
	if detached {
		// A transferor leaving after its transfer, or a transfer target
		// hanging up before it was connected: the call goes on without it.
		c.setLegState(l, legTerminated)
		c.event("leg %s (%s) left with BYE", legNames[l.idx], l.peer)
		return
	}
	c.setLegState(l, legTerminated)
	who := "caller"
	if l.idx == legB {
		who = "callee"
	}
	// Propagate: the other leg ends with BYE, or with CANCEL while it rings.
	if o := c.other(l); o != nil {
		switch c.legState(o) {
		case legConfirmed:
			c.byeLeg(context.Background(), o, "BYE from "+who)
		case legCalling, legEarly:
			c.sendCancel(o)
		}
	}
	c.end(who, "BYE from "+who)
}

// byeLeg ends one confirmed leg with a BYE.
// It waits for the answer at most as long as a transaction may take
// (Timer F), less if ctx says so.
func (c *Call) byeLeg(ctx context.Context, l *leg, why string) {
	b := c.b
	b.mu.Lock()
	if l.state == legTerminated {
		b.mu.Unlock()
		return
	}
	l.state = legTerminated
	req := request(&l.dlg, sip.BYE, 0)
	b.mu.Unlock()
	// The lamp goes off when the PBX hangs up, not when the phone confirms.
	b.blfChanged()
	req.AppendHeader(c.correlation())
	req.AppendHeader(sip.NewHeader("Reason", fmt.Sprintf("SIP;text=%q", why)))
	ctx, cancel := context.WithTimeout(ctx, 64*sip.T1)
	defer cancel()
	res, err := b.do(ctx, req)
	if err != nil {
		c.log.Warn("BYE got no answer", "leg", legNames[l.idx], "err", err)
		return
	}
	c.log.Info("BYE answered", "leg", legNames[l.idx], "code", res.StatusCode)
}

// hangupAll ends whatever legs are up (shutdown, no ACK, max voicemail).
func (c *Call) hangupAll(ctx context.Context, why string) {
	var wg sync.WaitGroup
	for _, l := range c.legs {
		if l == nil {
			continue
		}
		switch c.legState(l) {
		case legConfirmed:
			wg.Go(func() { c.byeLeg(ctx, l, why) })
		case legCalling, legEarly:
			if l.idx == legB {
				c.sendCancel(l)
			}
		}
	}
	wg.Wait()
	c.end("pbx", why)
}

// end marks the call over and releases its media.
func (c *Call) end(by, why string) {
	b := c.b
	c.finalSent()
	b.mu.Lock()
	if c.state == StateEnded {
		b.mu.Unlock()
		return
	}
	c.state = StateEnded
	c.ended = time.Now()
	c.endedBy, c.endReason = by, why
	for _, l := range c.legs {
		if l != nil {
			l.state = legTerminated
		}
	}
	b.mu.Unlock()
	b.blfChanged()
	c.log.Info("call ended", "by", by, "why", why)
	c.releaseMedia()
}

// releaseMedia stops the relay and finishes a recording; the legs stay
// filed for a while so late retransmissions still match a dialog.
func (c *Call) releaseMedia() {
	b := c.b
	b.mu.Lock()
	r, rec := c.relay, c.rec
	b.mu.Unlock()
	if r != nil {
		r.close()
	}
	if rec != nil {
		rec.finish()
	}
	time.AfterFunc(32*time.Second, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, l := range append(c.legs[:], c.retired...) {
			if l != nil && l.c == c {
				delete(b.legs, l.dlg.Key())
			}
		}
	})
}

// userURI is a user's address of record at the PBX's domain.
func (b *B2BUA) userURI(user string) sip.Uri {
	return sip.Uri{Scheme: "sip", User: user, Host: b.cfg.Domain}
}

// resolveTarget is where a callee leg goes: a user through resolve, a
// trunk straight to its address with Request-URI and To
// sip:<number>@<trunk ip> (the SBC reads the number from the user part).
// The PBX sends trunk legs itself, not through the platform proxy: the
// proxy serves the phones' domain and relays no foreign one.
func (c *Call) resolveTarget(t Target) (ruri, to sip.Uri, dest string, at *attempt) {
	if t.Kind != KindTrunk {
		ruri, dest, at = c.resolve(t.User)
		return ruri, c.b.userURI(t.User), dest, at
	}
	u := sip.Uri{Scheme: "sip", User: t.Number, Host: t.Trunk.Addr().String()}
	if t.Trunk.Port() != 5060 {
		u.Port = int(t.Trunk.Port())
	}
	return u, u, t.Trunk.String(), nil
}

// callerID is the From user of a callee leg: on a trunk the caller's DID
// when it has one (a carrier wants an E.164 number), else its name.
func (c *Call) callerID(t Target) string {
	if t.Kind == KindTrunk {
		if did := c.b.cfg.DialPlan.DIDOf(c.caller); did != "" {
			return did
		}
	}
	return c.caller
}

// resolve finds where a leg to user goes: through the platform proxy (it
// knows the NAT way to the phone and record-routes), else straight to
// where the newest REGISTER came from. A non-nil attempt is why not.
func (c *Call) resolve(user string) (sip.Uri, string, *attempt) {
	b := c.b
	lctx, lcancel := context.WithTimeout(context.Background(), 3*time.Second)
	aor := "sip:" + user + "@" + b.cfg.Domain
	bindings, err := b.cfg.Location.Lookup(lctx, aor)
	lcancel()
	switch {
	case errors.Is(err, location.ErrUnknownUser):
		return sip.Uri{}, "", &attempt{out: outFailed, code: sip.StatusNotFound, reason: "Not Found", why: user + " is not a user"}
	case err != nil:
		c.log.Error("location lookup failed", "aor", aor, "err", err)
		return sip.Uri{}, "", &attempt{out: outFailed, code: sip.StatusServiceUnavailable, reason: "Service Unavailable", why: "location service unavailable"}
	}
	now := time.Now()
	bindings = slices.DeleteFunc(slices.Clone(bindings), func(bd location.Binding) bool {
		return !bd.Expires.IsZero() && bd.Remaining(now) == 0
	})
	if len(bindings) == 0 {
		return sip.Uri{}, "", &attempt{out: outUnavailable, code: sip.StatusTemporarilyUnavailable, reason: "Temporarily Unavailable", why: user + " not registered"}
	}
	slices.SortStableFunc(bindings, func(x, y location.Binding) int { return y.Updated.Compare(x.Updated) })
	ruri := sip.Uri{Scheme: "sip", User: user, Host: b.cfg.Domain}
	dest := b.cfg.Proxy
	if dest == "" {
		bd := bindings[0]
		if err := sip.ParseUri(trimAngle(bd.ContactURI), &ruri); err != nil {
			return sip.Uri{}, "", &attempt{out: outUnavailable, code: sip.StatusTemporarilyUnavailable, reason: "Temporarily Unavailable", why: "unusable contact " + bd.ContactURI}
		}
		ruri.UriParams, ruri.Headers = nil, nil
		dest = sipdialog.HostPort(ruri)
		if bd.Source.IsValid() {
			dest = netip.AddrPortFrom(bd.Source.Addr().Unmap(), bd.Source.Port()).String()
		}
	}
	return ruri, dest, nil
}

// newUACLeg builds a leg the PBX originates in slot idx and its INVITE;
// to is the callee's address of record (To, and the leg's peer).
func (c *Call) newUACLeg(idx int, to sip.Uri, fromUser string, ruri sip.Uri, dest, display string, body []byte) (*leg, *sip.Request) {
	b := c.b
	pbx := b.ep.Addr()
	l := &leg{c: c, idx: idx, state: legCalling, origin: newOrigin(), peer: to.String(),
		dlg: sipdialog.Dialog{
			CallID:   b.newCallID(),
			LocalTag: sip.GenerateTagN(10),
			// The callee sees the caller's name at the PBX: a B2BUA speaks
			// for itself on its own leg.
			LocalURI:  sip.Uri{Scheme: "sip", User: fromUser, Host: pbx.Addr().String(), Port: int(pbx.Port())},
			RemoteURI: to,
			LocalSeq:  1,
		}}
	req := sip.NewRequest(sip.INVITE, ruri)
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	from := &sip.FromHeader{DisplayName: display, Address: l.dlg.LocalURI, Params: sip.NewParams()}
	from.Params.Add("tag", l.dlg.LocalTag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: l.dlg.RemoteURI, Params: sip.NewParams()})
	cidh := sip.CallIDHeader(l.dlg.CallID)
	req.AppendHeader(&cidh)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	req.AppendHeader(b.contact())
	req.AppendHeader(sip.NewHeader("Allow", allowed))
	req.AppendHeader(sip.NewHeader("Supported", "100rel"))
	req.AppendHeader(c.correlation())
	req.AppendHeader(sip.NewHeader("User-Agent", b.cfg.UserAgent))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	req.SetDestination(dest)
	req.SetTransport("UDP")
	l.invite = req
	return l, req
}
