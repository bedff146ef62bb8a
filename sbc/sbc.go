// Package sbc is the platform's session border controller: its public
// face on the internet, with the registrar, proxy and PBX behind it.
//
// It is a B2BUA with two realms. The access realm (phones, the carrier
// trunk) is the internet; the core realm is the platform. Nothing is
// proxied: every request and response is rebuilt on the other side with
// the SBC's own Via, Contact and Call-ID and only the headers that must
// pass end to end, so core addresses never leave the platform (topology
// hiding) and whatever an ALG mangled in a phone's headers is simply not
// used (normalisation).
//
// Far-end NAT traversal: signalling to a phone goes to where its packets
// came from, never to what its Via or Contact say; registrations from
// NATed phones get a short expiry and OPTIONS pings from the SBC hold their
// NAT pinholes open; media goes through a per-call relay (mediarelay) that
// latches onto where each phone's RTP really comes from.
//
// Security: every access-side request passes the guard (package guard): blocked
// sources are ignored, floods get 503, failed authentications count
// towards a temporary block, and only the trunk's IPs are routed as trunk
// calls.
package sbc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/guard"
	"github.com/siplab/siplab/sip/openrelay"
	"github.com/siplab/siplab/sip/sipcheck"
	"github.com/siplab/siplab/sip/sipdialog"
	"github.com/siplab/siplab/sip/sipnet"
)

// realm is which side of the border a socket, leg or registration is on.
type realm int

const (
	access realm = iota // internet: phones, the carrier
	core                // the platform: proxy, registrar, PBX
)

var realmNames = [2]string{"access", "core"}

func (r realm) String() string { return realmNames[r] }

// CorrelationHeader groups the SBC's two legs of a call in captures and
// ladders, as the PBX does. It is written on the core side only: it would
// tell the internet how the platform names its calls.
const CorrelationHeader = "X-Siplab-Call"

// allowed are the methods the SBC relays, sent in Allow.
const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, MESSAGE, NOTIFY, REFER"

// maxCalls bounds the calls kept for status; the oldest ended ones go first.
const maxCalls = 200

// SBC is a running session border controller.
type SBC struct {
	cfg      Config
	ep       [2]*sipnet.Endpoint
	guard    *guard.Guard
	log      *slog.Logger
	mediaIP  [2]netip.Addr
	settings settingsBox
	// initial is the startup settings: `set X default` and Reset.
	initial Settings

	mu       sync.Mutex
	regs     map[string]*registration // by token
	regKeys  map[string]string        // AOR + original Contact -> token
	calls    []*Call
	legs     map[sipdialog.Key]*leg
	nextID   int
	counters Counters
	trunk    trunkState
	closed   bool
	wss      atomic.Pointer[wssServer] // ws.go; nil without ServeWebSocket

	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// Counters are totals since start.
type Counters struct {
	AccessIn      uint64 `json:"access_requests"`
	CoreIn        uint64 `json:"core_requests"`
	Registers     uint64 `json:"registers"`
	Calls         uint64 `json:"calls"`
	Answered      uint64 `json:"answered"`
	Failed        uint64 `json:"failed"`
	Refused       uint64 `json:"refused"`
	Dropped       uint64 `json:"dropped_blocked"`
	RateLimited   uint64 `json:"rate_limited"`
	AuthFailures  uint64 `json:"auth_challenges_and_refusals"`
	PingsSent     uint64 `json:"pings_sent"`
	PingsAnswered uint64 `json:"pings_answered"`
}

// New makes an SBC on two bound endpoints: access (public) and core. It
// owns them from here on (closes them on error and on Close). Nothing is
// served until Start.
func New(cfg Config, accessEP, coreEP *sipnet.Endpoint) (*SBC, error) {
	closeAll := func() {
		if accessEP != nil {
			accessEP.Close()
		}
		if coreEP != nil {
			coreEP.Close()
		}
	}
	if accessEP == nil || coreEP == nil {
		closeAll()
		return nil, fmt.Errorf("%w: need an access and a core SIP endpoint", ErrConfig)
	}
	if err := cfg.validate(); err != nil {
		closeAll()
		return nil, err
	}
	for _, ep := range []*sipnet.Endpoint{accessEP, coreEP} {
		if _, err := ep.Client(sipnet.UDP); err != nil {
			closeAll()
			return nil, fmt.Errorf("%w: endpoint %s needs UDP: %w", ErrConfig, ep.Addr(), err)
		}
	}
	g, err := guard.New(*cfg.Guard)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("%w: guard: %w", ErrConfig, err)
	}
	s := &SBC{
		cfg:     cfg,
		ep:      [2]*sipnet.Endpoint{accessEP, coreEP},
		guard:   g,
		log:     cfg.Logger.With("component", "sbc"),
		mediaIP: [2]netip.Addr{cfg.MediaIP, cfg.CoreMediaIP},
		regs:    map[string]*registration{},
		regKeys: map[string]string{},
		legs:    map[sipdialog.Key]*leg{},
		done:    make(chan struct{}),
	}
	for r := range s.mediaIP {
		if !s.mediaIP[r].IsValid() {
			s.mediaIP[r] = s.ep[r].Addr().Addr()
		}
	}
	s.settings.Store(*cfg.Settings)
	s.initial = *cfg.Settings
	for _, r := range []realm{access, core} {
		srv := s.ep[r].Server
		h := func(req *sip.Request, tx sip.ServerTransaction) { s.handle(r, req, tx) }
		for _, m := range []sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.CANCEL, sip.REGISTER, sip.OPTIONS,
			sip.INFO, sip.UPDATE, sip.MESSAGE, sip.NOTIFY, sip.REFER, sip.SUBSCRIBE, sip.PRACK, sip.PUBLISH} {
			srv.OnRequest(m, h)
		}
		srv.OnNoRoute(h)
	}
	return s, nil
}

// Start serves both realms until ctx ends or Close, and starts the
// keep-alive pinger.
func (s *SBC) Start(ctx context.Context) error {
	for _, ep := range s.ep {
		if err := ep.Start(ctx); err != nil {
			return err
		}
	}
	// Not in wg: Close waits for wg, and its goroutine calls Close.
	b2bleg.CloseOnCancel(ctx, s.done, s.Close)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.pingLoop()
	}()
	s.log.Info("sbc running", "access", s.ep[access].Addr(), "core", s.ep[core].Addr(),
		"media", s.mediaIP[access], "core_media", s.mediaIP[core], "next_hop", s.cfg.NextHop,
		"trunk", s.cfg.Trunk, "trunk_inbound", s.cfg.TrunkInbound)
	return nil
}

// AccessAddr and CoreAddr are the bound SIP addresses (real ports for :0);
// AccessTLSAddr the access side's TLS listener (zero without one).
func (s *SBC) AccessAddr() netip.AddrPort    { return s.ep[access].Addr() }
func (s *SBC) AccessTLSAddr() netip.AddrPort { return s.ep[access].TLSAddr() }
func (s *SBC) CoreAddr() netip.AddrPort      { return s.ep[core].Addr() }

// Close stops media and both endpoints without signalling; Shutdown first
// hangs calls up politely.
func (s *SBC) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		calls := append([]*Call(nil), s.calls...)
		s.mu.Unlock()
		close(s.done)
		for _, c := range calls {
			c.releaseMedia()
		}
		s.closeWSS()
		for _, ep := range s.ep {
			ep.Close()
		}
		s.wg.Wait()
	})
	return nil
}

// Shutdown sends BYE on both legs of every answered call, waiting at most
// until ctx ends.
func (s *SBC) Shutdown(ctx context.Context) {
	s.mu.Lock()
	calls := append([]*Call(nil), s.calls...)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() { c.hangup(ctx, "sbc", "SBC shutting down") })
	}
	wg.Wait()
}

// Settings returns the live settings.
func (s *SBC) Settings() Settings { return s.settings.get() }

// Set changes one live setting.
func (s *SBC) Set(name, value string) (Settings, error) {
	if strings.EqualFold(strings.TrimSpace(value), "default") {
		v, err := s.initial.Get(name)
		if err != nil {
			return s.Settings(), err
		}
		value = v
	}
	next, err := s.settings.Update(func(st *Settings) error { return st.Set(name, value) })
	if err != nil {
		return next, err
	}
	s.log.Info("setting changed", "name", normName(name), "value", value)
	return next, nil
}

// ResetResult is what Reset undid.
type ResetResult struct {
	CallsEnded    int               `json:"calls_ended"`
	Registrations int               `json:"registrations_dropped"`
	Unblocked     []guard.Block     `json:"unblocked"`
	Restored      []string          `json:"settings_restored"`
	Settings      map[string]string `json:"settings"`
}

// Reset puts the SBC back to its startup state: calls hung up (BYE on
// both legs) and forgotten, cached registrations dropped, every guard
// block and failure count lifted, settings at their startup values.
func (s *SBC) Reset(ctx context.Context) ResetResult {
	var res ResetResult
	s.mu.Lock()
	calls := append([]*Call(nil), s.calls...)
	s.mu.Unlock()
	res.CallsEnded = b2bleg.HangupAll(ctx, &s.mu, calls, func(c *Call) bool { return c.state == StateEnded },
		func(ctx context.Context, c *Call) { c.hangup(ctx, "sbc", "lab reset") })
	s.mu.Lock()
	s.calls = nil
	s.legs = map[sipdialog.Key]*leg{}
	res.Registrations = len(s.regs)
	s.regs = map[string]*registration{}
	s.regKeys = map[string]string{}
	s.mu.Unlock()
	res.Unblocked = s.guard.Forget(time.Now())
	res.Restored = s.settings.Restore(s.initial, SettingNames(), Settings.Get)
	res.Settings = s.initial.All()
	s.log.Info("reset", "calls", res.CallsEnded, "registrations", res.Registrations, "unblocked", len(res.Unblocked), "restored", res.Restored)
	return res
}

// Unblock lifts a guard block on src.
func (s *SBC) Unblock(src netip.Addr) bool { return s.guard.Unblock(src.Unmap()) }

func (s *SBC) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *SBC) count(f func(*Counters)) {
	s.mu.Lock()
	f(&s.counters)
	s.mu.Unlock()
}

// --- the front door -----------------------------------------------------

// bodies the SBC passes on (it rewrites SDP and relays the rest as is).
var bodies = []string{"application/sdp", "text/plain", "application/dtmf-relay", "application/dtmf",
	"message/sipfrag", "application/simple-message-summary", "application/dialog-info+xml"}

// handle is every request's way in: the guard (access side), validation,
// then the method's handler.
func (s *SBC) handle(r realm, req *sip.Request, tx sip.ServerTransaction) {
	src, err := sipnet.Source(req)
	if err != nil {
		s.log.Warn("request without a usable source dropped", "err", err)
		return
	}
	s.count(func(c *Counters) {
		if r == access {
			c.AccessIn++
		} else {
			c.CoreIn++
		}
	})
	if r == access && !s.admit(req, tx, src) {
		return
	}
	if s.isClosed() {
		if !req.IsAck() {
			s.reply(r, tx, req, src, sip.StatusServiceUnavailable, "Service Unavailable")
		}
		return
	}
	if req.IsAck() {
		s.onAck(r, req, src)
		return
	}
	if prob := sipcheck.Request(req, sipcheck.Options{Role: sipcheck.UAS, Bodies: bodies}); prob != nil {
		s.log.Info("request refused", "realm", r, "method", req.Method, "code", prob.Code, "detail", prob.Detail, "call_id", sipdialog.CallID(req), "source", src)
		s.count(func(c *Counters) { c.Refused++ })
		if res := sipcheck.Respond(req, prob); res != nil {
			s.respond(r, tx, res, src)
		}
		return
	}
	if where, ok := s.foreignRoute(req); ok {
		s.log.Info("request refused: relaying denied", "realm", r, "method", req.Method, "route", where,
			"call_id", sipdialog.CallID(req), "source", src)
		s.count(func(c *Counters) { c.Refused++ })
		s.reply(r, tx, req, src, sip.StatusForbidden, openrelay.RouteDenied(where))
		return
	}
	if sipdialog.ToTag(req) != "" && req.Method != sip.REGISTER {
		s.onInDialog(r, req, tx, src)
		return
	}
	switch req.Method {
	case sip.REGISTER:
		s.onRegister(r, req, tx, src)
	case sip.INVITE:
		s.onInvite(r, req, tx, src)
	case sip.CANCEL:
		// sipgo answers CANCELs that match an INVITE transaction itself;
		// this one matched nothing.
		s.reply(r, tx, req, src, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
	case sip.BYE, sip.PRACK:
		s.reply(r, tx, req, src, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
	case sip.OPTIONS, sip.MESSAGE, sip.NOTIFY:
		s.onOutOfDialog(r, req, tx, src)
	default:
		// SUBSCRIBE/REFER/PUBLISH outside a call would need dialog state
		// of their own through the border; not offered.
		s.reply(r, tx, req, src, sip.StatusNotImplemented, "Not Implemented", sip.NewHeader("Allow", allowed))
	}
}

// admit asks the guard. Blocked sources get nothing at all (a scanner
// learns nothing, and a flood costs us no responses); a source over its
// rate gets 503 with Retry-After, so a well-behaved phone backs off.
func (s *SBC) admit(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort) bool {
	ua := ""
	if h := req.GetHeader("User-Agent"); h != nil {
		ua = h.Value()
	}
	v := s.guard.Admit(src.Addr(), string(req.Method), ua, time.Now())
	if v.Allow {
		return true
	}
	if isBlockVerdict(v) || req.IsAck() {
		s.count(func(c *Counters) { c.Dropped++ })
		s.log.Debug("request from blocked source dropped", "source", src, "method", req.Method, "reason", v.Reason)
		return false
	}
	s.count(func(c *Counters) { c.RateLimited++ })
	s.log.Info("request rate-limited", "source", src, "method", req.Method, "reason", v.Reason)
	retry := max(1, int((v.RetryAfter+time.Second-1)/time.Second))
	s.reply(access, tx, req, src, sip.StatusServiceUnavailable, "Service Unavailable", sip.NewHeader("Retry-After", strconv.Itoa(retry)))
	return false
}

// isBlockVerdict tells a block (drop silently) from a rate limit (503).
func isBlockVerdict(v guard.Verdict) bool { return strings.HasPrefix(v.Reason, "blocked") }

// --- responses ----------------------------------------------------------

// respond sends res on tx. On the access side a response goes to where the
// request came from (ip and port on the wire), whatever its Via says: the
// far-end NAT traversal of signalling, with or without rport.
func (s *SBC) respond(r realm, tx sip.ServerTransaction, res *sip.Response, src netip.AddrPort) {
	if r == access && !strings.EqualFold(res.Transport(), "tcp") && !strings.EqualFold(res.Transport(), "tls") && !isWS(strings.ToLower(res.Transport())) {
		res.SetDestination(src.String())
	}
	if r == access && res.StatusCode >= 200 && res.CSeq() != nil {
		// Failures (401/403/407) count towards a block; a 2xx to REGISTER
		// or INVITE forgives the challenge that preceded it.
		s.guard.ObserveResponse(src.Addr(), string(res.CSeq().MethodName), res.StatusCode, time.Now())
		if res.StatusCode == 401 || res.StatusCode == 403 || res.StatusCode == 407 {
			s.count(func(c *Counters) { c.AuthFailures++ })
		}
	}
	if err := tx.Respond(res); err != nil {
		s.log.Warn("respond failed", "realm", r, "code", res.StatusCode, "err", err)
	}
}

// sipgoMisroutes says whether sipgo's own answers to req (the 200 to a
// CANCEL, the 487 of a cancelled INVITE) miss the phone: over UDP sipgo
// sends them to the source IP and the Via port (the source port only with
// an empty rport), and a NATed phone's Via port is its private one.
func sipgoMisroutes(req *sip.Request, src netip.AddrPort) bool {
	via := req.Via()
	if via == nil || !strings.EqualFold(req.Transport(), "udp") {
		return false
	}
	if v, ok := via.Params.Get("rport"); ok && v == "" {
		return false
	}
	port := via.Port
	if port == 0 {
		port = 5060
	}
	return uint16(port) != src.Port()
}

// writeUDP sends a response outside any transaction, straight from the
// realm's UDP socket to dest.
func (s *SBC) writeUDP(r realm, res *sip.Response, dest netip.AddrPort) {
	pc := s.ep[r].PacketConn()
	if pc == nil {
		return
	}
	if _, err := pc.WriteTo([]byte(res.String()), net.UDPAddrFromAddrPort(dest)); err != nil {
		s.log.Warn("response not sent", "realm", r, "code", res.StatusCode, "to", dest, "err", err)
	}
}

// reply answers req with code and extra headers.
func (s *SBC) reply(r realm, tx sip.ServerTransaction, req *sip.Request, src netip.AddrPort, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	s.respond(r, tx, res, src)
}

// --- requests -----------------------------------------------------------

// client is the realm's sipgo client for a transport.
func (s *SBC) client(r realm, transport string) (*sipgo.Client, error) {
	t := strings.ToLower(transport)
	if t == "" {
		t = sipnet.UDP
	}
	return s.ep[r].Client(t)
}

// transact sends req in a new client transaction from realm r; sipgo adds
// our Via.
func (s *SBC) transact(ctx context.Context, r realm, req *sip.Request) (sip.ClientTransaction, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	cl, err := s.client(r, req.Transport())
	if err != nil {
		return nil, err
	}
	tx, err := cl.TransactionRequest(ctx, req, sipgo.ClientRequestBuild)
	if err != nil {
		return nil, fmt.Errorf("sbc: send %s to %s: %w", req.Method, req.Destination(), err)
	}
	return tx, nil
}

// do sends a non-INVITE request and waits for its final response.
func (s *SBC) do(ctx context.Context, r realm, req *sip.Request) (*sip.Response, error) {
	tx, err := s.transact(ctx, r, req)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	res, err := sipnet.FinalResponse(ctx, tx, s.done)
	if errors.Is(err, sipnet.ErrStopped) {
		return nil, ErrClosed
	}
	return res, err
}

// lifetime is a context that ends after d or when the SBC closes.
func (s *SBC) lifetime(d time.Duration) (context.Context, context.CancelFunc) {
	return b2bleg.Lifetime(s.done, d)
}

// contact is the SBC's own Contact on a realm: in-dialog requests come
// back to this socket.
func (s *SBC) contact(r realm, transport string) *sip.ContactHeader {
	a := s.ep[r].Addr()
	t := strings.ToLower(transport)
	if t == sipnet.TLS && s.ep[r].TLSAddr().IsValid() {
		a = s.ep[r].TLSAddr()
	}
	if isWS(t) && r == access && s.AccessWSSAddr().IsValid() {
		a = s.AccessWSSAddr()
		t = "ws" // RFC 7118 §5.2: the URI parameter is "ws" for WS and WSS
	}
	u := sip.Uri{Scheme: "sip", User: "sbc", Host: a.Addr().String(), Port: int(a.Port())}
	if t == sipnet.TCP || t == sipnet.TLS || t == "ws" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", t)
	}
	return &sip.ContactHeader{Address: u}
}

// newCallID is a Call-ID for a dialog the SBC originates on realm r: it
// names only the SBC's own address on that side.
func (s *SBC) newCallID(r realm) string {
	return sip.GenerateTagN(20) + "@" + s.ep[r].Addr().Addr().String()
}
