package sbc

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/mediarelay"
	"github.com/siplab/siplab/sipdialog"
)

// CallState is where a call stands.
type CallState string

const (
	StateRinging  CallState = "ringing"
	StateAnswered CallState = "answered"
	StateEnded    CallState = "ended"
)

// Leg states.
const (
	legCalling    = "calling"
	legEarly      = "early"
	legConfirmed  = "confirmed"
	legTerminated = "terminated"
)

// Call kinds: which way across the border.
const (
	KindPhoneOut = "phone->core" // a phone calls through the platform
	KindPhoneIn  = "core->phone" // the platform calls a phone registered here
	KindTrunkIn  = "trunk->core" // the carrier delivers a call
	KindTrunkOut = "core->trunk" // the platform calls out to the PSTN
)

// Call is one call through the SBC: leg 0 towards the caller (the SBC is
// its UAS), leg 1 towards the callee (the SBC is its UAC), and one media
// relay whose side i faces leg i. Fields are guarded by SBC.mu.
type Call struct {
	s    *SBC
	id   string
	corr string // X-Siplab-Call on the core side
	kind string
	log  *slog.Logger

	from, to string
	state    CallState
	legs     [2]*leg
	relay    *mediarelay.Relay

	started, answered, ended time.Time
	endedBy, endReason       string

	cancelled  chan struct{} // the caller sent CANCEL
	cancelOnce sync.Once
}

// leg is one dialog of a call.
type leg struct {
	c     *Call
	idx   int
	realm realm
	// dlg is the leg's RFC 3261 §12 state: the SBC is the UAS on the
	// caller's leg and the UAC on the callee's, with nothing shared between
	// them but the media relay and the correlation id — that is what hides
	// each side from the other.
	dlg   sipdialog.Dialog
	state string
	// dest is where requests to an access-side peer go: where its packets
	// come from (updated by every request it sends), never its Contact.
	// Core legs are routed by their route set and Contact.
	dest      netip.AddrPort
	transport string
	// UAC side: the INVITE (for CANCEL), whether a provisional came (a
	// CANCEL must wait for one, RFC 3261 §9.1), the ACK for the last 2xx.
	invite    *sip.Request
	provSeen  bool
	cancelled bool
	ack       *sip.Request
	// UAS side: a 2xx we sent waits for its ACK.
	ackCh  chan struct{}
	ackSeq uint32
	// busy: an offer (re-INVITE, UPDATE) through this leg is pending.
	busy bool
}

func (c *Call) other(l *leg) *leg { return c.legs[1-l.idx] }

// route is where a new call's second leg goes.
type route struct {
	realm     realm
	ruri      sip.Uri
	dest      netip.AddrPort
	transport string
	kind      string
}

// refusal is a final failure response decided before any leg exists.
type refusal struct {
	code   int
	reason string
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{3,14}$`)

// routeInvite decides a new INVITE's other side:
//   - from the trunk's IPs (the guard's ACL): to the core's trunk inbound
//     (the PBX maps the DID);
//   - from any other access source: to the next hop (the proxy), which
//     authenticates it like any phone's call;
//   - on the core, for a token the SBC handed out: to that phone, at the
//     address its REGISTER came from;
//   - on the core, for a +E.164 user without a token: out to the trunk.
func (s *SBC) routeInvite(r realm, req *sip.Request, src netip.AddrPort) (route, *refusal) {
	if r == access {
		if s.guard.IsTrunk(src.Addr()) {
			return route{realm: core, kind: KindTrunkIn, dest: s.cfg.TrunkInbound, transport: "udp",
				ruri: sip.Uri{Scheme: "sip", User: req.Recipient.User, Host: s.cfg.TrunkInbound.Addr().String(), Port: int(s.cfg.TrunkInbound.Port())}}, nil
		}
		ruri := *req.Recipient.Clone()
		ruri.Headers = nil
		return route{realm: core, kind: KindPhoneOut, dest: s.cfg.NextHop, transport: "udp", ruri: ruri}, nil
	}
	if tok, ok := req.Recipient.UriParams.Get(tokenParam); ok {
		reg := s.lookupReg(tok)
		if reg == nil {
			return route{}, &refusal{sip.StatusTemporarilyUnavailable, "Temporarily Unavailable"}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		ruri := *reg.contact.Address.Clone()
		ruri.Headers = nil
		return route{realm: access, kind: KindPhoneIn, dest: reg.source, transport: reg.transport, ruri: ruri}, nil
	}
	if e164.MatchString(req.Recipient.User) && s.cfg.Trunk.IsValid() {
		return route{realm: access, kind: KindTrunkOut, dest: s.cfg.Trunk, transport: "udp",
			ruri: sip.Uri{Scheme: "sip", User: req.Recipient.User, Host: s.cfg.Trunk.Addr().String(), Port: int(s.cfg.Trunk.Port())}}, nil
	}
	return route{}, &refusal{sip.StatusNotFound, "Not Found"}
}

// onInvite starts a call: leg 0 for the caller, a relay, leg 1 out.
func (s *SBC) onInvite(r realm, req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort) {
	rt, ref := s.routeInvite(r, req, src)
	if ref != nil {
		s.log.Info("INVITE refused", "realm", r, "ruri", req.Recipient.String(), "code", ref.code, "source", src)
		s.reply(r, tx, req, src, ref.code, ref.reason)
		return
	}
	if req.Contact() == nil {
		s.reply(r, tx, req, src, sip.StatusBadRequest, "Bad Request: no Contact")
		return
	}
	ct := req.GetHeader("Content-Type")
	if len(req.Body()) == 0 || ct == nil || !isSDP(ct.Value()) {
		// Every leg gets the relay's address in an offer; without one the
		// SBC would have to invent media for the caller.
		s.reply(r, tx, req, src, sip.StatusNotAcceptableHere, "Not Acceptable Here: offerless INVITE not supported")
		return
	}
	mode := func() mediarelay.Latching { return s.settings.get().Latching }
	relay, err := mediarelay.NewWithConfig(mediarelay.Config{
		IP:   [2]netip.Addr{s.mediaIP[r], s.mediaIP[rt.realm]},
		Mode: mode, PortMin: s.cfg.RelayPortMin, PortMax: s.cfg.RelayPortMax,
		Log: s.log.With("call_id", sipdialog.CallID(req)),
	})
	if err != nil {
		s.log.Error("media relay unavailable", "err", err)
		s.reply(r, tx, req, src, sip.StatusServiceUnavailable, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
		return
	}
	bodyB, offer, err := rewriteSDP(req.Body(), relay.Local(1), rt.realm == access && !s.hiding())
	if err != nil {
		relay.Close()
		s.reply(r, tx, req, src, sip.StatusNotAcceptableHere, "Not Acceptable Here: "+err.Error())
		return
	}
	relay.SetRemote(0, offer.Addr)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		relay.Close()
		s.reply(r, tx, req, src, sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	// Under mu with closed false: Close (which sets closed under mu before
	// waiting) cannot be in wg.Wait yet.
	s.wg.Add(1)
	defer s.wg.Done()
	s.nextID++
	c := &Call{s: s, id: fmt.Sprintf("s%d-%s", s.nextID, sip.GenerateTagN(6)), kind: rt.kind,
		from: req.From().Address.String(), to: req.To().Address.String(),
		state: StateRinging, relay: relay, started: time.Now(), cancelled: make(chan struct{})}
	c.corr = c.id
	if h := req.GetHeader(CorrelationHeader); r == core && h != nil && h.Value() != "" {
		// A PBX leg already has a name: keep it, so one ladder groups the
		// PBX's two legs and the SBC's two.
		c.corr = h.Value()
	}
	c.log = s.log.With("call", c.id, "call_id", sipdialog.CallID(req))
	localTag := sip.GenerateTagN(10)
	// On the request, so every response built from it — also the 487
	// sipgo writes on CANCEL — carries our tag.
	req.To().Params.Add("tag", localTag)
	a := &leg{c: c, idx: 0, realm: r, state: legCalling, transport: strings.ToLower(req.Transport()),
		dlg: sipdialog.Dialog{CallID: sipdialog.CallID(req), LocalTag: localTag, RemoteTag: sipdialog.FromTag(req),
			LocalURI: req.To().Address, RemoteURI: req.From().Address,
			RemoteSeq: req.CSeq().SeqNo, RemoteSeqSet: true,
			RemoteTarget: *req.Contact().Address.Clone(), RouteSet: sipdialog.RouteSetAsUAS(req)}}
	if r == access {
		a.dest = src
	}
	b := &leg{c: c, idx: 1, realm: rt.realm, state: legCalling, transport: rt.transport, dest: rt.dest,
		dlg: sipdialog.Dialog{CallID: s.newCallID(rt.realm), LocalTag: sip.GenerateTagN(10),
			LocalURI: s.borderURI(req.From().Address, rt.realm), RemoteURI: s.borderURI(req.To().Address, rt.realm),
			LocalSeq: 1, RemoteTarget: rt.ruri}}
	c.legs = [2]*leg{a, b}
	s.legs[a.dlg.Key()] = a
	s.legs[b.dlg.Key()] = b
	s.calls = append(s.calls, c)
	s.counters.Calls++
	for len(s.calls) > maxCalls {
		i := slices.IndexFunc(s.calls, func(c *Call) bool { return c.state == StateEnded })
		if i < 0 {
			break
		}
		s.calls = slices.Delete(s.calls, i, i+1)
	}
	s.mu.Unlock()

	reqB := c.inviteB(req, b, bodyB)
	c.log.Info("call in", "kind", rt.kind, "realm", r, "source", src, "to", rt.ruri.String(), "via", rt.dest, "b_call_id", b.dlg.CallID)
	tx.OnCancel(func(cancel *sip.Request) {
		c.cancelOnce.Do(func() { close(c.cancelled) })
		if r == access && sipgoMisroutes(req, src) {
			// sipgo answers the CANCEL (200) and the INVITE (487) itself,
			// to the Via port: behind a port-changing NAT without rport
			// those are lost. Send both again to where the phone is.
			s.writeUDP(r, sip.NewResponseFromRequest(cancel, sip.StatusOK, "OK", nil), src)
			s.writeUDP(r, c.response(a, req, sip.StatusRequestTerminated, "Request Terminated", nil, nil), src)
		}
	})
	s.respond(r, tx, c.response(a, req, sip.StatusTrying, "Trying", nil, nil), src)
	c.ring(req, tx, reqB, src)
}

// inviteB builds the callee leg's INVITE: fresh dialog, the SBC's Contact
// on that realm, only the end-to-end headers of the caller's INVITE.
func (c *Call) inviteB(reqA *sip.Request, b *leg, body []byte) *sip.Request {
	s := c.s
	req := sip.NewRequest(sip.INVITE, *b.dlg.RemoteTarget.Clone())
	req.AppendHeader(maxForwards(reqA))
	from := &sip.FromHeader{DisplayName: reqA.From().DisplayName, Address: b.dlg.LocalURI, Params: sip.NewParams()}
	from.Params.Add("tag", b.dlg.LocalTag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{DisplayName: reqA.To().DisplayName, Address: b.dlg.RemoteURI, Params: sip.NewParams()})
	cid := sip.CallIDHeader(b.dlg.CallID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	req.AppendHeader(s.contact(b.realm, b.transport))
	copyHeaders(req, reqA, passRequest)
	if !hasHeader(req, "Allow") {
		req.AppendHeader(sip.NewHeader("Allow", allowed))
	}
	if ua := s.userAgentTowards(b.realm, reqA, "User-Agent"); ua != nil {
		req.AppendHeader(ua)
	}
	if b.realm == core {
		req.AppendHeader(sip.NewHeader(CorrelationHeader, c.corr))
	}
	setBody(req, body, "application/sdp")
	s.direct(b, req)
	s.mu.Lock()
	b.invite = req
	s.mu.Unlock()
	return req
}

// direct sets where a request on leg l goes: an access peer where its
// packets come from (the latched signalling address), a core peer by the
// dialog's route set (already set by Dialog.Request) or the route.
func (s *SBC) direct(l *leg, req *sip.Request) {
	s.mu.Lock()
	dest, transport := l.dest, l.transport
	s.mu.Unlock()
	if dest.IsValid() {
		req.SetDestination(dest.String())
	}
	t := strings.ToUpper(transport)
	if t == "" {
		t = "UDP"
	}
	req.SetTransport(t)
}

// response builds a response on leg a (the caller's, where the SBC is
// UAS) to req: our Contact on that realm for dialog-creating answers, the
// end-to-end headers of the far side's response, the correlation header on
// the core side only.
func (c *Call) response(a *leg, req *sip.Request, code int, reason string, body []byte, far *sip.Response) *sip.Response {
	s := c.s
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if a.realm == access {
		// Whatever Record-Route a phone wrote is its own business; the
		// SBC is its only hop and does not loose-route to it.
		res.RemoveHeader("Record-Route")
	}
	if far != nil {
		copyHeaders(res, far, passResponse)
	}
	if code > 100 && code < 300 && req.Method != sip.BYE && req.Method != sip.CANCEL {
		res.AppendHeader(s.contact(a.realm, a.transport))
	}
	if code >= 200 && code < 300 && req.IsInvite() && !hasHeader(res, "Allow") {
		res.AppendHeader(sip.NewHeader("Allow", allowed))
	}
	if a.realm == core {
		res.AppendHeader(sip.NewHeader(CorrelationHeader, c.corr))
	} else {
		s.serverHeaders(res, far)
	}
	ct := "application/sdp"
	if far != nil {
		if h := far.GetHeader("Content-Type"); h != nil {
			ct = h.Value()
		}
	}
	setBody(res, body, ct)
	return res
}

// ring sends the callee leg and relays its progress to the caller until
// it is answered, fails, or the caller cancels.
func (c *Call) ring(reqA *sip.Request, txA sip.ServerTransaction, reqB *sip.Request, src netip.AddrPort) {
	s := c.s
	a, b := c.legs[0], c.legs[1]
	ctx, cancel := s.lifetime(5 * time.Minute)
	defer cancel()
	txB, err := s.transact(ctx, b.realm, reqB)
	if err != nil {
		c.log.Warn("callee leg not sent", "err", err)
		c.setLegState(b, legTerminated)
		s.respond(a.realm, txA, c.response(a, reqA, sip.StatusServiceUnavailable, "Service Unavailable", nil, nil), src)
		c.end("sbc", "callee leg could not be sent")
		return
	}
	defer txB.Terminate()
	var giveUp <-chan time.Time
	cancelled := false
	for {
		select {
		case res := <-txB.Responses():
			switch {
			case res.StatusCode == 100:
			case res.StatusCode < 200:
				c.early(reqA, txA, res, src)
			case res.StatusCode < 300:
				c.ackB(b, txB, res)
				if cancelled {
					// The answer crossed the caller's CANCEL: the callee's
					// leg exists now and must end.
					go c.byeLeg(context.Background(), b, "caller cancelled")
					c.end("caller", "CANCEL crossed the answer")
					return
				}
				c.answer(reqA, txA, res, src)
				return
			default:
				c.setLegState(b, legTerminated)
				if !cancelled {
					s.respond(a.realm, txA, c.response(a, reqA, res.StatusCode, res.Reason, nil, res), src)
					s.count(func(ct *Counters) { ct.Failed++ })
					c.end("callee", fmt.Sprintf("%d %s", res.StatusCode, res.Reason))
				} else {
					c.end("caller", "CANCEL")
				}
				return
			}
		case <-txB.Done():
			c.setLegState(b, legTerminated)
			if !cancelled {
				s.respond(a.realm, txA, c.response(a, reqA, sip.StatusRequestTimeout, "Request Timeout", nil, nil), src)
				s.count(func(ct *Counters) { ct.Failed++ })
			}
			c.end("callee", "no final response")
			return
		case <-c.cancelled:
			if !cancelled {
				cancelled = true
				giveUp = time.After(32 * time.Second)
				c.log.Info("caller cancelled")
				c.sendCancel(b)
			}
		case <-giveUp:
			c.setLegState(b, legTerminated)
			c.end("caller", "CANCEL (callee never confirmed)")
			return
		case <-s.done:
			return
		}
	}
}

// early relays a provisional response (180, 183 with SDP) to the caller.
func (c *Call) early(reqA *sip.Request, txA sip.ServerTransaction, res *sip.Response, src netip.AddrPort) {
	s := c.s
	a, b := c.legs[0], c.legs[1]
	s.mu.Lock()
	b.provSeen = true
	if tag := sipdialog.ToTag(res); tag != "" && b.dlg.RemoteTag == "" {
		b.dlg.RemoteTag = tag
	}
	if ct := res.Contact(); ct != nil {
		b.dlg.RemoteTarget = *ct.Address.Clone()
	}
	b.dlg.RouteSet = sipdialog.RouteSetAsUAC(res)
	if b.state == legCalling {
		b.state = legEarly
	}
	if a.state == legCalling {
		a.state = legEarly
	}
	wantCancel := b.cancelled
	s.mu.Unlock()
	if wantCancel {
		c.sendCancel(b)
	}
	body := c.relayBody(res, b, a)
	if body == nil && len(res.Body()) > 0 {
		c.log.Warn("early media SDP unusable, relaying the provisional without it")
	}
	s.respond(a.realm, txA, c.response(a, reqA, res.StatusCode, res.Reason, body, res), src)
}

// relayBody rewrites an SDP arriving on leg from for leg to: the sender's
// address goes to the relay (SetRemote), the copy points at the relay's
// socket facing to. Non-SDP bodies pass as they are; nil when there is
// none or the SDP is unusable.
func (c *Call) relayBody(m interface {
	Body() []byte
	GetHeader(string) sip.Header
}, from, to *leg) []byte {
	body := m.Body()
	if len(body) == 0 {
		return nil
	}
	if ct := m.GetHeader("Content-Type"); ct != nil && !isSDP(ct.Value()) {
		if to.realm == access {
			return c.s.scrub(body)
		}
		return body
	}
	out, info, err := rewriteSDP(body, c.relay.Local(to.idx), to.realm == access && !c.s.hiding())
	if err != nil {
		c.log.Warn("SDP not relayed", "err", err)
		return nil
	}
	c.relay.SetRemote(from.idx, info.Addr)
	return out
}

// answer finishes the set-up: the callee's 2xx (already ACKed) becomes
// the caller's 2xx, retransmitted until the caller's ACK.
func (c *Call) answer(reqA *sip.Request, txA sip.ServerTransaction, res *sip.Response, src netip.AddrPort) {
	s := c.s
	a, b := c.legs[0], c.legs[1]
	body := c.relayBody(res, b, a)
	if body == nil {
		go c.byeLeg(context.Background(), b, "2xx without a usable SDP answer")
		s.respond(a.realm, txA, c.response(a, reqA, sip.StatusBadGateway, "Bad Gateway", nil, nil), src)
		c.end("callee", "answer without usable SDP")
		return
	}
	select {
	case <-c.cancelled:
		go c.byeLeg(context.Background(), b, "caller cancelled")
		c.end("caller", "CANCEL crossed the answer")
		return
	default:
	}
	s.mu.Lock()
	c.state, c.answered = StateAnswered, time.Now()
	a.state = legConfirmed
	s.counters.Answered++
	s.mu.Unlock()
	c.log.Info("answered")
	ok := c.sendAndAwaitAck(a, txA, c.response(a, reqA, res.StatusCode, res.Reason, body, res), reqA.CSeq().SeqNo, src)
	if !ok {
		select {
		case <-c.cancelled:
			// sipgo answered the CANCEL with 487 before our 2xx.
			c.byeLeg(context.Background(), b, "caller cancelled as the callee answered")
			c.end("caller", "CANCEL crossed the answer")
		default:
			c.hangup(context.Background(), "sbc", "no ACK from the caller")
		}
	}
}

// ackB confirms a 2xx on a leg where the SBC is UAC (RFC 3261 §13.2.2.4),
// and again whenever the 2xx is retransmitted (our ACK was lost).
func (c *Call) ackB(l *leg, tx sip.ClientTransaction, res *sip.Response) {
	s := c.s
	s.mu.Lock()
	if tag := sipdialog.ToTag(res); tag != "" {
		l.dlg.RemoteTag = tag
	}
	if ct := res.Contact(); ct != nil {
		l.dlg.RemoteTarget = *ct.Address.Clone()
	}
	if res.CSeq().MethodName == sip.INVITE && l.state != legConfirmed {
		l.dlg.RouteSet = sipdialog.RouteSetAsUAC(res)
	}
	l.state = legConfirmed
	ack := l.dlg.Request(sip.ACK, res.CSeq().SeqNo)
	s.mu.Unlock()
	if l.realm == core {
		ack.AppendHeader(sip.NewHeader(CorrelationHeader, c.corr))
	}
	s.direct(l, ack)
	s.mu.Lock()
	l.ack = ack
	s.mu.Unlock()
	c.writeAck(l)
	tx.OnRetransmission(func(r *sip.Response) {
		if r.IsSuccess() {
			c.writeAck(l)
		}
	})
}

func (c *Call) writeAck(l *leg) {
	s := c.s
	s.mu.Lock()
	ack := l.ack
	s.mu.Unlock()
	if ack == nil {
		return
	}
	cl, err := s.client(l.realm, ack.Transport())
	if err == nil {
		err = cl.WriteRequest(ack.Clone())
	}
	if err != nil {
		c.log.Warn("ACK not sent", "err", err)
	}
}

// sendAndAwaitAck sends a 2xx to an INVITE on a leg where the SBC is UAS
// and retransmits it (T1 doubling to T2) until the ACK or 64*T1 (RFC 3261
// §13.3.1.4). False when no ACK came, or the INVITE was cancelled first.
func (c *Call) sendAndAwaitAck(l *leg, tx sip.ServerTransaction, res *sip.Response, seq uint32, src netip.AddrPort) bool {
	s := c.s
	ch := make(chan struct{})
	s.mu.Lock()
	l.ackCh, l.ackSeq = ch, seq
	s.mu.Unlock()
	s.respond(l.realm, tx, res, src)
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
			if l.realm == access && strings.EqualFold(res.Transport(), "udp") {
				res.SetDestination(src.String())
			}
			_ = tx.Respond(res)
			interval = min(2*interval, sip.T2)
		case <-deadline.C:
			c.log.Warn("no ACK for our 2xx", "leg", l.idx)
			return false
		case <-c.cancelled:
			if c.legState(l) != legConfirmed {
				return false
			}
		case <-s.done:
			return true
		}
	}
}

func (c *Call) legState(l *leg) string {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return l.state
}

func (c *Call) setLegState(l *leg, st string) {
	c.s.mu.Lock()
	l.state = st
	c.s.mu.Unlock()
}

// sendCancel cancels the callee's INVITE; before any provisional it is
// only remembered (RFC 3261 §9.1) and sent when one arrives.
func (c *Call) sendCancel(l *leg) {
	s := c.s
	s.mu.Lock()
	l.cancelled = true
	if !l.provSeen || l.invite == nil {
		s.mu.Unlock()
		return
	}
	inv := l.invite
	l.invite = nil // once
	s.mu.Unlock()
	cr := sipdialog.Cancel(inv)
	if l.realm == core {
		cr.AppendHeader(sip.NewHeader(CorrelationHeader, c.corr))
	}
	go func() {
		ctx, cancel := s.lifetime(32 * time.Second)
		defer cancel()
		res, err := s.do(ctx, l.realm, cr)
		if err != nil {
			c.log.Warn("CANCEL failed", "err", err)
			return
		}
		c.log.Info("CANCEL answered", "code", res.StatusCode)
	}()
}

// byeLeg ends one leg with a BYE, waiting at most Timer F for the answer.
func (c *Call) byeLeg(ctx context.Context, l *leg, why string) {
	s := c.s
	s.mu.Lock()
	if l.state != legConfirmed {
		l.state = legTerminated
		s.mu.Unlock()
		return
	}
	l.state = legTerminated
	req := l.dlg.Request(sip.BYE, 0)
	s.mu.Unlock()
	if l.realm == core {
		req.AppendHeader(sip.NewHeader(CorrelationHeader, c.corr))
	}
	req.AppendHeader(sip.NewHeader("Reason", fmt.Sprintf("SIP;cause=200;text=%q", why)))
	s.direct(l, req)
	ctx, cancel := context.WithTimeout(ctx, 64*sip.T1)
	defer cancel()
	res, err := s.do(ctx, l.realm, req)
	if err != nil {
		c.log.Warn("BYE got no answer", "leg", l.idx, "err", err)
		return
	}
	c.log.Info("BYE answered", "leg", l.idx, "code", res.StatusCode)
}

// hangup ends whatever legs are up.
func (c *Call) hangup(ctx context.Context, by, why string) {
	var wg sync.WaitGroup
	for _, l := range c.legs {
		switch c.legState(l) {
		case legConfirmed:
			wg.Go(func() { c.byeLeg(ctx, l, why) })
		case legCalling, legEarly:
			if l.idx == 1 {
				c.sendCancel(l)
			}
		}
	}
	wg.Wait()
	c.end(by, why)
}

// end marks the call over and releases its relay.
func (c *Call) end(by, why string) {
	s := c.s
	s.mu.Lock()
	if c.state == StateEnded {
		s.mu.Unlock()
		return
	}
	c.state, c.ended = StateEnded, time.Now()
	c.endedBy, c.endReason = by, why
	for _, l := range c.legs {
		l.state = legTerminated
	}
	s.mu.Unlock()
	c.log.Info("call ended", "by", by, "why", why)
	c.releaseMedia()
}

// releaseMedia closes the relay (its final statistics stay readable); the
// legs stay filed for a while so late retransmissions still match.
func (c *Call) releaseMedia() {
	s := c.s
	if c.relay != nil {
		c.relay.Close()
	}
	time.AfterFunc(32*time.Second, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, l := range c.legs {
			if s.legs[l.dlg.Key()] == l {
				delete(s.legs, l.dlg.Key())
			}
		}
	})
}

func hasHeader(m interface{ GetHeader(string) sip.Header }, name string) bool {
	return m.GetHeader(name) != nil
}

// setBody sets a message's body and its Content-Type (or removes both);
// sipgo computes Content-Length, so it is always right (normalisation).
func setBody(m interface {
	SetBody([]byte)
	RemoveHeader(string) bool
	AppendHeader(sip.Header)
}, body []byte, contentType string) {
	for m.RemoveHeader("Content-Type") {
	}
	if len(body) > 0 {
		m.AppendHeader(sip.NewHeader("Content-Type", contentType))
	}
	m.SetBody(body)
}
