package sbc

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/media/mediarelay"
	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/sipdialog"
)

// CallState is where a call stands.
type CallState string

const (
	StateRinging  CallState = "ringing"
	StateAnswered CallState = "answered"
	StateEnded    CallState = "ended"
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

	times b2bleg.Times

	cancelled  chan struct{} // the caller sent CANCEL
	cancelOnce sync.Once
}

// leg is one dialog of a call: the shared B2B leg (its RFC 3261 §12
// state, ACK, CANCEL, BYE) plus the realm it faces. The SBC is the UAS on
// the caller's leg and the UAC on the callee's, with nothing shared
// between them but the media relay and the correlation id — that is what
// hides each side from the other.
type leg struct {
	*b2bleg.Leg
	c     *Call
	idx   int
	realm realm
	// dest is where requests to an access-side peer go: where its packets
	// come from (updated by every request it sends), never its Contact.
	// Core legs are routed by their route set and Contact.
	dest      netip.AddrPort
	transport string
	// busy: an offer (re-INVITE, UPDATE) through this leg is pending.
	busy bool
}

// newLeg is leg idx of c facing realm r, with dialog d; SBC.mu guards it.
// m is the leg's own media (a browser's gateway call, webrtc.go), or nil.
func (c *Call) newLeg(idx int, r realm, d sipdialog.Dialog, m b2bleg.Media) *leg {
	l := &leg{c: c, idx: idx, realm: r}
	l.Leg = b2bleg.New(b2bleg.Config{Lock: &c.s.mu, Out: l, Name: strconv.Itoa(idx), Log: c.log, Done: c.s.done, Media: m}, d)
	return l
}

// Prepare, Write and Do are how a leg's requests leave (b2bleg.Signalling):
// from the leg's realm, the correlation header on the core side only, an
// access peer at its latched address.
func (l *leg) Prepare(req *sip.Request) {
	if l.realm == core {
		req.AppendHeader(sip.NewHeader(CorrelationHeader, l.c.corr))
	}
	l.c.s.direct(l, req)
}

func (l *leg) Write(req *sip.Request) error {
	cl, err := l.c.s.client(l.realm, req.Transport())
	if err != nil {
		return err
	}
	return cl.WriteRequest(req)
}

func (l *leg) Do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	return l.c.s.do(ctx, l.realm, req)
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
	mediaA, bodyA, ref := s.browserOffer(r, req) // webrtc.go
	if ref != nil {
		s.reply(r, tx, req, src, ref.code, ref.reason)
		return
	}
	var mediaB b2bleg.Media
	// Until the legs own them, the gateway calls end here on failure.
	release := func() {
		for _, m := range []b2bleg.Media{mediaA, mediaB} {
			if m != nil {
				m.Close()
			}
		}
	}
	mode := func() mediarelay.Latching { return s.settings.get().Latching }
	relay, err := mediarelay.NewWithConfig(mediarelay.Config{
		IP:   [2]netip.Addr{s.mediaIP[r], s.mediaIP[rt.realm]},
		Mode: mode, PortMin: s.cfg.RelayPortMin, PortMax: s.cfg.RelayPortMax,
		Log: s.log.With("call_id", sipdialog.CallID(req)),
	})
	if err != nil {
		release()
		s.log.Error("media relay unavailable", "err", err)
		s.reply(r, tx, req, src, sip.StatusServiceUnavailable, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
		return
	}
	bodyB, offer, err := rewriteSDP(bodyA, relay.Local(1), rt.realm == access && !s.hiding())
	if err != nil {
		release()
		relay.Close()
		s.reply(r, tx, req, src, sip.StatusNotAcceptableHere, "Not Acceptable Here: "+err.Error())
		return
	}
	relay.SetRemote(0, offer.Addr)
	callIDB := s.newCallID(rt.realm)
	if mediaB, bodyB, err = s.offerToBrowser(rt, callIDB, bodyB); err != nil { // webrtc.go
		release()
		relay.Close()
		s.log.Warn("webrtc: no offer for the browser", "err", err)
		s.reply(r, tx, req, src, sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		release()
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
		state: StateRinging, relay: relay, times: b2bleg.Times{Started: time.Now()}, cancelled: make(chan struct{})}
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
	a := c.newLeg(0, r, sipdialog.Dialog{CallID: sipdialog.CallID(req), LocalTag: localTag, RemoteTag: sipdialog.FromTag(req),
		LocalURI: req.To().Address, RemoteURI: req.From().Address,
		RemoteSeq: req.CSeq().SeqNo, RemoteSeqSet: true,
		RemoteTarget: *req.Contact().Address.Clone(), RouteSet: sipdialog.RouteSetAsUAS(req)}, mediaA)
	a.transport = strings.ToLower(req.Transport())
	if r == access {
		a.dest = src
	}
	b := c.newLeg(1, rt.realm, sipdialog.Dialog{CallID: callIDB, LocalTag: sip.GenerateTagN(10),
		LocalURI: s.borderURI(req.From().Address, rt.realm), RemoteURI: s.borderURI(req.To().Address, rt.realm),
		LocalSeq: 1, RemoteTarget: rt.ruri}, mediaB)
	b.transport, b.dest = rt.transport, rt.dest
	c.legs = [2]*leg{a, b}
	s.legs[a.Dlg.Key()] = a
	s.legs[b.Dlg.Key()] = b
	s.calls = b2bleg.Remember(s.calls, c, maxCalls, func(c *Call) bool { return c.state == StateEnded })
	s.counters.Calls++
	s.mu.Unlock()

	reqB := c.inviteB(req, b, bodyB)
	c.log.Info("call in", "kind", rt.kind, "realm", r, "source", src, "to", rt.ruri.String(), "via", rt.dest, "b_call_id", b.Dlg.CallID)
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
	req := sip.NewRequest(sip.INVITE, *b.Dlg.RemoteTarget.Clone())
	req.AppendHeader(maxForwards(reqA))
	from := &sip.FromHeader{DisplayName: reqA.From().DisplayName, Address: b.Dlg.LocalURI, Params: sip.NewParams()}
	from.Params.Add("tag", b.Dlg.LocalTag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{DisplayName: reqA.To().DisplayName, Address: b.Dlg.RemoteURI, Params: sip.NewParams()})
	cid := sip.CallIDHeader(b.Dlg.CallID)
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
	b.SentLocked(req)
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
		b.Set(b2bleg.Terminated)
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
			case res.StatusCode < 200:
				c.early(reqA, txA, res, src)
			case res.StatusCode < 300:
				b.Ack(txB, res)
				if cancelled {
					// The answer crossed the caller's CANCEL: the callee's
					// leg exists now and must end.
					go b.Bye(context.Background(), "caller cancelled")
					c.end("caller", "CANCEL crossed the answer")
					return
				}
				c.answer(reqA, txA, res, src)
				return
			default:
				b.Set(b2bleg.Terminated)
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
			b.Set(b2bleg.Terminated)
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
				b.Cancel()
			}
		case <-giveUp:
			b.Set(b2bleg.Terminated)
			c.end("caller", "CANCEL (callee never confirmed)")
			return
		case <-s.done:
			return
		}
	}
}

// early relays a provisional response (180, 183 with SDP) to the caller;
// a 100 stops here (hop by hop: the SBC sent the caller its own).
func (c *Call) early(reqA *sip.Request, txA sip.ServerTransaction, res *sip.Response, src netip.AddrPort) {
	if res.StatusCode <= 100 {
		return
	}
	s := c.s
	a, b := c.legs[0], c.legs[1]
	s.mu.Lock()
	if a.State == b2bleg.Calling {
		a.State = b2bleg.Early
	}
	s.mu.Unlock()
	b.Early(res)
	body := c.relayBody(res, b, a)
	if body == nil && len(res.Body()) > 0 {
		c.log.Warn("early media SDP unusable, relaying the provisional without it")
	}
	s.respond(a.realm, txA, c.response(a, reqA, res.StatusCode, res.Reason, body, res), src)
}

// relayBody rewrites an SDP arriving on leg from for leg to: the sender's
// address goes to the relay (SetRemote), the copy points at the relay's
// socket facing to. A gateway leg's media translates on the way: what its
// peer sent (offer in a request, answer in a response) before the
// rewrite, an answer going to its peer after it; an offer going to its
// peer is forward's (the gateway may answer it itself). Non-SDP bodies
// pass as they are; nil when there is none or the SDP is unusable.
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
	_, offer := m.(*sip.Request)
	if fm := from.Media(); fm != nil {
		var err error
		if offer {
			body, err = fm.OfferIn(body)
		} else {
			body, err = fm.AnswerIn(body)
		}
		if err != nil {
			c.log.Warn("SDP from the browser not usable", "leg", from.idx, "err", err)
			return nil
		}
	}
	out := c.rewriteBody(body, from, to)
	if tm := to.Media(); tm != nil && out != nil && !offer {
		ctx, cancel := c.s.gatewayCtx()
		defer cancel()
		ans, err := tm.AnswerOut(ctx, out)
		if err != nil {
			c.log.Warn("answer not usable for the browser", "leg", to.idx, "err", err)
			return nil
		}
		return ans
	}
	return out
}

// rewriteBody is relayBody's rewrite of a plain SDP body from leg from
// for leg to.
func (c *Call) rewriteBody(body []byte, from, to *leg) []byte {
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
		go b.Bye(context.Background(), "2xx without a usable SDP answer")
		s.respond(a.realm, txA, c.response(a, reqA, sip.StatusBadGateway, "Bad Gateway", nil, nil), src)
		c.end("callee", "answer without usable SDP")
		return
	}
	select {
	case <-c.cancelled:
		go b.Bye(context.Background(), "caller cancelled")
		c.end("caller", "CANCEL crossed the answer")
		return
	default:
	}
	s.mu.Lock()
	c.state, c.times.Answered = StateAnswered, time.Now()
	a.State = b2bleg.Confirmed
	s.counters.Answered++
	s.mu.Unlock()
	c.log.Info("answered")
	ok := c.sendAndAwaitAck(a, txA, c.response(a, reqA, res.StatusCode, res.Reason, body, res), reqA.CSeq().SeqNo, src)
	if !ok {
		select {
		case <-c.cancelled:
			// sipgo answered the CANCEL with 487 before our 2xx.
			b.Bye(context.Background(), "caller cancelled as the callee answered")
			c.end("caller", "CANCEL crossed the answer")
		default:
			c.hangup(context.Background(), "sbc", "no ACK from the caller")
		}
	}
}

// sendAndAwaitAck sends a 2xx to an INVITE on a leg where the SBC is UAS
// and waits for its ACK (b2bleg: resent over UDP only, to where the peer
// is, given up after 64*T1). False when no ACK came.
func (c *Call) sendAndAwaitAck(l *leg, tx sip.ServerTransaction, res *sip.Response, seq uint32, src netip.AddrPort) bool {
	first := true
	send := func() error {
		if first {
			// respond points a UDP answer on the access side at src;
			// every copy after it keeps that destination.
			first = false
			c.s.respond(l.realm, tx, res, src)
			return nil
		}
		return tx.Respond(res)
	}
	r, _ := l.SendAndAwaitAck(seq, sip.IsReliable(res.Transport()), send, nil)
	return r != sipdialog.TimedOut
}

// hangup ends whatever legs are up.
func (c *Call) hangup(ctx context.Context, by, why string) {
	b2bleg.Hangup(ctx, why, c.legs[0].Leg, c.legs[1].Leg)
	c.end(by, why)
}

// end marks the call over and releases its relay.
func (c *Call) end(by, why string) {
	s := c.s
	s.mu.Lock()
	first := b2bleg.EndLocked(&c.state, StateEnded, &c.times, by, why, c.legs[0].Leg, c.legs[1].Leg)
	s.mu.Unlock()
	if !first {
		return
	}
	c.log.Info("call ended", "by", by, "why", why)
	c.releaseMedia()
}

// releaseMedia closes the relay (its final statistics stay readable) and
// the legs' own media (a browser's gateway call); the legs stay filed for
// a while so late retransmissions still match.
func (c *Call) releaseMedia() {
	s := c.s
	if c.relay != nil {
		c.relay.Close()
	}
	for _, l := range c.legs {
		if m := l.Media(); m != nil {
			m.Close()
		}
	}
	time.AfterFunc(32*time.Second, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, l := range c.legs {
			if s.legs[l.Dlg.Key()] == l {
				delete(s.legs, l.Dlg.Key())
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
