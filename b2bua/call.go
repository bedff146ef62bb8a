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

	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipdialog"
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

	times  b2bleg.Times
	events []string

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

// leg is one dialog of a call: the shared B2B leg (dialog, state, ACK,
// CANCEL, BYE) plus what the PBX keeps about it.
type leg struct {
	*b2bleg.Leg
	c      *Call
	idx    int
	origin sdpOrigin
	peer   string
	// remote is the phone's last SDP; localBody the last SDP we sent it.
	remote     *sdpneg.Remote
	remoteBody []byte
	localBody  []byte
	// Reliable provisionals acknowledged on this leg (we are UAC).
	prackedRSeq uint32
	prackReq    *sip.Request
}

// newLeg is a leg of c in slot idx with dialog d; the PBX's lock guards it.
func (c *Call) newLeg(idx int, d sipdialog.Dialog) *leg {
	l := &leg{c: c, idx: idx, origin: newOrigin()}
	l.Leg = b2bleg.New(b2bleg.Config{Lock: &c.b.mu, Out: l, Name: legNames[idx], Log: c.log,
		Changed: c.b.blfChanged, Done: c.b.done}, d)
	return l
}

// Prepare, Write and Do are how a leg's requests leave (b2bleg.Signalling):
// the PBX's one client, over UDP, with the call's correlation header.
func (l *leg) Prepare(req *sip.Request) {
	req.SetTransport("UDP")
	req.AppendHeader(l.c.correlation())
}

func (l *leg) Write(req *sip.Request) error { return l.c.b.client.WriteRequest(req) }

func (l *leg) Do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	return l.c.b.do(ctx, req)
}

func (c *Call) other(l *leg) *leg { return c.legs[1-l.idx] }

// endedLocked: the call is over; b.mu held.
func (c *Call) endedLocked() bool { return c.state == StateEnded }

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
		times:     b2bleg.Times{Started: time.Now()},
		cancelled: make(chan struct{}),
	}
	c.log = b.log.With("call", c.id)
	b.calls = b2bleg.Remember(b.calls, c, maxCalls, (*Call).endedLocked)
	b.counters.Calls++
	return c
}

// addLeg files a leg under its dialog key; b.mu held.
func (b *B2BUA) addLegLocked(l *leg) {
	l.c.legs[l.idx] = l
	b.legs[l.Dlg.Key()] = l
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
		if l.idx == legA && l.Dlg.CallID == cid && l.Dlg.RemoteTag == ftag && l.State != b2bleg.Terminated {
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
	a := c.newLeg(legA, sipdialog.Dialog{
		CallID: cid, LocalTag: localTag, RemoteTag: ftag,
		LocalURI: req.To().Address, RemoteURI: req.From().Address,
		RemoteSeq: req.CSeq().SeqNo, RemoteSeqSet: true,
		RemoteTarget: *ct.Address.Clone(), RouteSet: sipdialog.RouteSetAsUAS(req),
	})
	a.remote, a.remoteBody, a.peer = offer, req.Body(), req.From().Address.String()
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
		delete(b.legs, old.Dlg.Key())
	}
	b.addLegLocked(l)
	if c.state == StateRouting {
		c.state = StateRinging
	}
	b.mu.Unlock()
	b.blfChanged()
	c.log.Info("callee leg out", "to", ruri.String(), "via", dest, "b_call_id", l.Dlg.CallID)

	ctx, cancel := b.lifetime(5 * time.Minute)
	defer cancel()
	tx, err := b.transact(ctx, req)
	if err != nil {
		l.Set(b2bleg.Terminated)
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
		l.Cancel()
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
					l.Ack(tx, res)
					go l.Bye(context.Background(), "answered after CANCEL")
					return attempt{out: why, why: "answered after CANCEL"}
				}
				return c.onAnswer(l, reqA, txA, tx, res)
			default:
				l.Set(b2bleg.Terminated)
				if why >= 0 {
					return attempt{out: why, why: "rang " + timeout.String() + " without answer"}
				}
				return failure(res)
			}
		case <-tx.Done():
			l.Set(b2bleg.Terminated)
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
			l.Set(b2bleg.Terminated)
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
	l.Early(res)
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
	l.Ack(txB, res)
	if len(res.Body()) == 0 {
		go l.Bye(context.Background(), "2xx without SDP answer")
		return attempt{out: outFailed, code: sip.StatusBadGateway, reason: "Bad Gateway", why: "callee answered without SDP"}
	}
	bodyA, r, err := c.bodyForA(res.Body())
	if err != nil {
		go l.Bye(context.Background(), "unusable SDP answer")
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
		go l.Bye(context.Background(), "caller cancelled")
		return attempt{out: outCancelled, why: "caller cancelled"}
	default:
	}
	if err := c.awaitEarlyAnswerPrack(); err != nil {
		// RFC 3262 §3: no 2xx before the PRACK of a reliable 18x that
		// carried SDP; without it the UAS rejects the INVITE with a 5xx.
		go l.Bye(context.Background(), "caller never PRACKed")
		return attempt{out: outFailed, code: sip.StatusInternalServerError, reason: "Server Internal Error", why: err.Error()}
	}
	res2 := c.aResponse(reqA, sip.StatusOK, "OK", bodyA)
	c.finalSent()
	b.mu.Lock()
	c.state = StateAnswered
	c.times.Answered = time.Now()
	a.State = b2bleg.Confirmed
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
			l.Bye(context.Background(), "caller cancelled as the callee answered")
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

// sendAndAwaitAck sends a 2xx on a leg where we are UAS and waits for its
// ACK (b2bleg: resent over UDP only, given up after 64*T1). False when no
// ACK came, the 2xx did not leave, or cancelled (may be nil) closed first:
// the INVITE was cancelled before our 2xx could be sent (sipgo answered
// 487 instead). A BYE crossing the 2xx, or the PBX closing, is not a
// failure.
func (c *Call) sendAndAwaitAck(l *leg, tx sip.ServerTransaction, req *sip.Request, res *sip.Response, cancelled <-chan struct{}) bool {
	r, err := l.SendAndAwaitAck(req.CSeq().SeqNo, sip.IsReliable(req.Transport()),
		func() error { return tx.Respond(res) }, cancelled)
	if err != nil {
		c.log.Warn("2xx not sent", "err", err)
		return false
	}
	return r != sipdialog.TimedOut && r != sipdialog.Stopped
}

// --- in-dialog requests -------------------------------------------------

func (b *B2BUA) onAck(req *sip.Request, tx sip.ServerTransaction) {
	l := b.lookupLeg(req)
	if l == nil {
		return
	}
	l.Acked(req.CSeq().SeqNo)
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
	ok := l.Dlg.AcceptSeq(req.CSeq().SeqNo)
	b.mu.Unlock()
	if !ok {
		b.reply(tx, req, sip.StatusInternalServerError, "Server Internal Error", "CSeq lower than a previous request")
		return
	}
	b.send(tx, c.inResponse(req, sip.StatusOK, "OK", nil))
	c.log.Info("BYE received", "leg", legNames[l.idx], "source", req.Source())
	b.mu.Lock()
	detached := c.legs[l.idx] != l
	b.mu.Unlock()
	if detached {
		// A transferor leaving after its transfer, or a transfer target
		// hanging up before it was connected: the call goes on without it.
		l.Set(b2bleg.Terminated)
		c.event("leg %s (%s) left with BYE", legNames[l.idx], l.peer)
		return
	}
	l.Set(b2bleg.Terminated)
	who := "caller"
	if l.idx == legB {
		who = "callee"
	}
	// Propagate: the other leg ends with BYE, or with CANCEL while it rings.
	if o := c.other(l); o != nil {
		o.Drop(context.Background(), "BYE from "+who)
	}
	c.end(who, "BYE from "+who)
}

// hangupAll ends whatever legs are up (shutdown, no ACK, max voicemail).
func (c *Call) hangupAll(ctx context.Context, why string) {
	c.b.mu.Lock()
	legs := sharedLegs(c.legs[:])
	c.b.mu.Unlock()
	b2bleg.Hangup(ctx, why, legs...)
	c.end("pbx", why)
}

// sharedLegs are the B2B legs of those of legs that exist (a call has no
// callee leg while routing).
func sharedLegs(legs []*leg) []*b2bleg.Leg {
	var out []*b2bleg.Leg
	for _, l := range legs {
		if l != nil {
			out = append(out, l.Leg)
		}
	}
	return out
}

// end marks the call over and releases its media.
func (c *Call) end(by, why string) {
	b := c.b
	c.finalSent()
	b.mu.Lock()
	first := b2bleg.EndLocked(&c.state, StateEnded, &c.times, by, why, sharedLegs(c.legs[:])...)
	b.mu.Unlock()
	if !first {
		return
	}
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
				delete(b.legs, l.Dlg.Key())
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
	l := c.newLeg(idx, sipdialog.Dialog{
		CallID:   b.newCallID(),
		LocalTag: sip.GenerateTagN(10),
		// The callee sees the caller's name at the PBX: a B2BUA speaks
		// for itself on its own leg.
		LocalURI:  sip.Uri{Scheme: "sip", User: fromUser, Host: pbx.Addr().String(), Port: int(pbx.Port())},
		RemoteURI: to,
		LocalSeq:  1,
	})
	l.peer = to.String()
	req := sip.NewRequest(sip.INVITE, ruri)
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	from := &sip.FromHeader{DisplayName: display, Address: l.Dlg.LocalURI, Params: sip.NewParams()}
	from.Params.Add("tag", l.Dlg.LocalTag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: l.Dlg.RemoteURI, Params: sip.NewParams()})
	cidh := sip.CallIDHeader(l.Dlg.CallID)
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
	l.SentLocked(req) // l is not shared yet
	// What the callee was told: its hold is answered from it (answerLocally).
	l.localBody = body
	return l, req
}
