// Package uaclient is the lab's softphone: it registers, places and answers
// calls, sends G.711 test tones and RFC 4733 DTMF, and reports what it heard.
// It also does the extension methods a PBX user meets: hold/resume and
// UPDATE (hold.go, update.go), REFER transfer with Replaces (refer.go),
// SUBSCRIBE/NOTIFY for BLF and MWI (subscribe.go), MESSAGE (message.go),
// INFO DTMF (info.go) and 100rel/PRACK (prack.go).
//
// Every address a phone writes into a message (Via, Contact, SDP) is a live
// setting, because the NAT bugs the lab teaches are exactly those written
// addresses being wrong. See SettingNames and the README.
//
// Signalling uses sipgo's transaction layer only. Dialog state (tags, CSeq,
// route set, remote target) is kept here: sipgo's dialog helpers pick
// behaviours for us (they overwrite in-dialog CSeq, send BYE to the source
// of a TCP UAC, write their own Via) and the lab needs each of those to be
// visible and correct.
package uaclient

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
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/sipnet"
)

// Methods this phone answers; sent in Allow.
var allowedMethods = "INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, MESSAGE, INFO, REFER, NOTIFY"

// Phone is one softphone.
type Phone struct {
	cfg   Config
	ep    *sipnet.Endpoint
	log   *slog.Logger
	local netip.AddrPort // bound SIP address

	mu       sync.Mutex
	settings liveSettings
	// initial is the settings the phone started with: what `set X
	// default` and Reset restore.
	initial liveSettings
	// lastInvite is the last INVITE and 2xx sent and received, for status.
	lastInvite LastInvite
	reg        registration
	calls      []*Call
	nextID     int
	messages   []MessageRecord
	subs       []*subscription
	nextSubID  int
	mwi        *MWIStatus
	rtpUsed    map[int]bool
	changed    chan struct{} // closed and replaced on every state change
	closed     bool
	ka         keepaliveStatus

	kaKick  chan struct{}
	regKick chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup

	startOnce sync.Once
	closeOnce sync.Once
}

// New binds the SIP sockets and prepares the phone. Nothing is sent or read
// until Start.
func New(cfg Config) (*Phone, error) {
	if err := cfg.validate(); err != nil {
		if cfg.Endpoint != nil {
			cfg.Endpoint.Close()
		}
		return nil, err
	}
	p := &Phone{
		cfg:      cfg,
		settings: defaultSettings(),
		rtpUsed:  map[int]bool{},
		changed:  make(chan struct{}),
		kaKick:   make(chan struct{}, 1),
		regKick:  make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	p.log = cfg.Logger.With("phone", cfg.Name)
	p.settings.Password, p.settings.Codecs = cfg.Password, cfg.Codecs
	p.settings.Proxy = cfg.Proxy
	for _, name := range sortedKeys(cfg.Settings) {
		if _, err := p.settings.set(name, cfg.Settings[name]); err != nil {
			if cfg.Endpoint != nil {
				cfg.Endpoint.Close()
			}
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	p.initial = p.settings
	ep := cfg.Endpoint
	if ep == nil {
		var err error
		ep, err = sipnet.Listen(sipnet.Config{Listen: cfg.Listen, UserAgent: cfg.UserAgent, Logger: p.log})
		if err != nil {
			return nil, fmt.Errorf("uaclient: %w", err)
		}
	}
	if _, err := ep.Client(cfg.Transport); err != nil {
		ep.Close()
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	p.ep = ep
	p.local = ep.Addr()
	if cfg.Transport == sipnet.TLS && ep.TLSAddr().IsValid() {
		// Via and Contact name the TLS listener: that is where a peer
		// opens a connection to reach us.
		p.local = ep.TLSAddr()
	}
	p.reg.callID = newCallID(p.local)
	p.reg.state = RegUnregistered
	p.installHandlers()
	return p, nil
}

// Addr is the bound SIP address.
func (p *Phone) Addr() netip.AddrPort { return p.local }

// Name is the configured phone name.
func (p *Phone) Name() string { return p.cfg.Name }

// ToneHz is the frequency this phone sends.
func (p *Phone) ToneHz() float64 { return p.cfg.ToneHz }

// Start serves SIP and starts the background loops (registration refresh,
// keep-alive). With AutoRegister the first REGISTER is sent in the
// background; its outcome shows in Status. The phone runs until ctx ends or
// Close.
func (p *Phone) Start(ctx context.Context) error {
	var err error
	p.startOnce.Do(func() {
		if err = p.ep.Start(ctx); err != nil {
			return
		}
		p.wg.Add(2)
		go p.registrationLoop()
		go p.keepaliveLoop()
		b2bleg.CloseOnCancel(ctx, p.done, p.Close)
		if p.cfg.AutoRegister {
			p.mu.Lock()
			p.reg.wanted = true
			p.mu.Unlock()
			p.kickRegistration()
		}
	})
	return err
}

// Run starts the phone and blocks until ctx ends; then it hangs up calls,
// unregisters (best effort, a few seconds) and closes.
func (p *Phone) Run(ctx context.Context) error {
	if err := p.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-p.done:
		return nil
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	p.Shutdown(sctx)
	return p.Close()
}

// Shutdown ends every call (BYE, CANCEL or 480 as the state requires) and
// removes the registration, waiting at most until ctx ends.
func (p *Phone) Shutdown(ctx context.Context) {
	p.mu.Lock()
	calls := append([]*Call(nil), p.calls...)
	registered := p.reg.state == RegRegistered
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.end(ctx)
		}()
	}
	wg.Wait()
	// Live subscriptions are ended too (SUBSCRIBE Expires: 0), so a
	// notifier does not keep sending to a phone that is gone.
	p.mu.Lock()
	live := p.liveSubscriptionsLocked()
	p.mu.Unlock()
	for _, id := range live {
		if _, err := p.Unsubscribe(ctx, id); err != nil {
			p.log.Info("unsubscribe at shutdown failed", "id", id, "err", err)
		}
	}
	if registered {
		if err := p.Unregister(ctx); err != nil {
			p.log.Warn("unregister at shutdown failed", "err", err)
		}
	}
}

// Close stops media and the SIP endpoint without sending anything.
func (p *Phone) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		calls := append([]*Call(nil), p.calls...)
		p.notifyLocked()
		p.mu.Unlock()
		close(p.done)
		for _, c := range calls {
			c.closeMedia()
		}
		p.ep.Close()
		p.wg.Wait()
	})
	return nil
}

// Set changes a live setting; the next message sent uses it.
func (p *Phone) Set(name, value string) error {
	p.mu.Lock()
	var def *setting
	var err error
	if strings.EqualFold(strings.TrimSpace(value), DefaultValue) {
		// The startup value, whatever the setting's own syntax.
		if def, err = lookupSetting(name); err == nil {
			next := p.settings
			if err = p.setDefaultLocked(def, &next); err == nil {
				p.settings = next
			}
		}
	} else {
		def, err = p.settings.set(name, value)
	}
	if err == nil {
		p.notifyLocked()
	}
	p.mu.Unlock()
	if err != nil {
		return err
	}
	p.log.Info("setting changed", "name", def.Name, "value", value)
	if def.apply != nil {
		def.apply(p)
	}
	return nil
}

// Get returns the current value of one setting.
func (p *Phone) Get(name string) (string, error) {
	def, err := lookupSetting(name)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return def.get(&p.settings), nil
}

// Settings lists every setting with its value and help.
func (p *Phone) Settings() []SettingInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.settings.list()
}

func (p *Phone) currentSettings() liveSettings {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.settings
}

// notifyLocked wakes every waiter; p.mu must be held.
func (p *Phone) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Phone) notify() {
	p.mu.Lock()
	p.notifyLocked()
	p.mu.Unlock()
}

// wait blocks until cond (called with p.mu held) is true.
func (p *Phone) wait(ctx context.Context, cond func() bool) error {
	for {
		p.mu.Lock()
		ok := cond()
		ch := p.changed
		closed := p.closed
		p.mu.Unlock()
		if ok {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// --- message building -------------------------------------------------

func (p *Phone) sipTransport() string { return strings.ToUpper(p.cfg.Transport) }

// newVia writes the top Via from the live settings: the sent-by is
// via_addr (the lie) and ;rport is there only when the setting says so.
func (p *Phone) newVia(s liveSettings, transport string) *sip.ViaHeader {
	sentBy := resolveAddr(s.ViaAddr, s.ViaIP, p.local)
	v := &sip.ViaHeader{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       strings.ToUpper(transport),
		Host:            sentBy.Addr().String(),
		Port:            int(sentBy.Port()),
		Params:          sip.NewParams(),
	}
	v.Params.Add("branch", sip.GenerateBranchN(16))
	if s.Rport {
		v.Params.Add("rport", "")
	}
	return v
}

// contactURI is where this phone says it can be reached: contact_addr.
func (p *Phone) contactURI(s liveSettings) sip.Uri {
	a := resolveAddr(s.ContactAddr, s.ContactIP, p.local)
	u := sip.Uri{Scheme: "sip", User: p.cfg.User, Host: a.Addr().String(), Port: int(a.Port())}
	if p.cfg.Transport != sipnet.UDP {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", p.cfg.Transport)
	}
	return u
}

func (p *Phone) contactHeader(s liveSettings) *sip.ContactHeader {
	return &sip.ContactHeader{Address: p.contactURI(s)}
}

// aor is this phone's address-of-record, sip:user@domain.
func (p *Phone) aor() sip.Uri {
	host, port := splitDomain(p.cfg.Domain)
	return sip.Uri{Scheme: "sip", User: p.cfg.User, Host: host, Port: port}
}

func splitDomain(d string) (string, int) {
	if h, ps, err := net.SplitHostPort(d); err == nil {
		if n, err := strconv.Atoi(ps); err == nil {
			return h, n
		}
	}
	return d, 0
}

// parseTarget turns "bob", "bob@host[:port]" or a full sip: URI into a URI.
func (p *Phone) parseTarget(t string) (sip.Uri, error) {
	t = strings.TrimSpace(t)
	var u sip.Uri
	if t == "" {
		return u, fmt.Errorf("%w: empty", ErrBadTarget)
	}
	if strings.ContainsAny(t, " \t\r\n<>\"") {
		return u, fmt.Errorf("%w: %q contains spaces or brackets", ErrBadTarget, t)
	}
	lower := strings.ToLower(t)
	if !strings.HasPrefix(lower, "sip:") && !strings.HasPrefix(lower, "sips:") {
		if !strings.Contains(t, "@") {
			t = t + "@" + p.cfg.Domain
		}
		t = "sip:" + t
	}
	if err := sip.ParseUri(t, &u); err != nil {
		return u, fmt.Errorf("%w: %q: %w", ErrBadTarget, t, err)
	}
	if u.Host == "" {
		return u, fmt.Errorf("%w: %q has no host", ErrBadTarget, t)
	}
	if u.Scheme == "sips" || u.IsEncrypted() {
		return u, fmt.Errorf("%w: %q: sips needs TLS, not supported yet", ErrBadTarget, t)
	}
	return u, nil
}

// newRequest builds an out-of-dialog request carrying every mandatory
// header (RFC 3261 §8.1.1), so sipgo adds nothing of its own.
func (p *Phone) newRequest(method sip.RequestMethod, ruri, to sip.Uri, callID string, cseq uint32, s liveSettings) *sip.Request {
	req := sip.NewRequest(method, ruri)
	req.AppendHeader(p.newVia(s, p.cfg.Transport))
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	from := &sip.FromHeader{Address: p.aor(), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	req.AppendHeader(sip.NewHeader("User-Agent", p.cfg.UserAgent))
	req.SetTransport(p.sipTransport())
	return req
}

// toProxy sends an out-of-dialog request to the configured proxy whatever
// its Request-URI says: that is what "outbound proxy" means on a phone.
func (p *Phone) toProxy(req *sip.Request) error {
	if p.proxy() == "" {
		return ErrNoProxy
	}
	req.SetDestination(p.proxy())
	return nil
}

// reissue copies a request for a retry (after a challenge): same Call-ID,
// tags and body, a new branch and the next CSeq (RFC 3261 §22.2).
func (p *Phone) reissue(req *sip.Request) *sip.Request {
	n := req.Clone()
	n.RemoveHeader("Via")
	n.PrependHeader(p.newVia(p.currentSettings(), req.Transport()))
	if cs := n.CSeq(); cs != nil {
		cs.SeqNo++
	}
	n.SetDestination(req.Destination())
	n.SetTransport(req.Transport())
	return n
}

func (p *Phone) clientFor(req *sip.Request) (*sipgo.Client, error) {
	return p.ep.Client(strings.ToLower(req.Transport()))
}

// transact sends a request in a new client transaction.
func (p *Phone) transact(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	c, err := p.clientFor(req)
	if err != nil {
		return nil, err
	}
	if p.isClosed() {
		return nil, ErrClosed
	}
	p.bindSource(req)
	if !p.currentSettings().TCPSwitch {
		ctx = sipnet.StayOnUDP(ctx)
	}
	tx, err := c.TransactionRequest(ctx, req, sipgo.ClientRequestBuild)
	if err == nil && req.Method == sip.INVITE {
		p.noteInvite("invite_sent", req, req.Destination())
	}
	if err != nil {
		return nil, fmt.Errorf("uaclient: send %s: %w", req.Method, err)
	}
	return tx, nil
}

// bindSource makes TCP connections leave from the phone's own IP (UDP
// always uses the listening socket). Without it the kernel picks the source
// address, which on a multi-homed host or on 127.0.0.x is not the one the
// phone advertises.
func (p *Phone) bindSource(req *sip.Request) {
	if !sip.IsReliable(req.Transport()) {
		return
	}
	req.Laddr = sip.Addr{IP: net.IP(p.local.Addr().AsSlice()), Hostname: p.local.Addr().String()}
}

// do sends a non-INVITE request and waits for its final response.
func (p *Phone) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	tx, err := p.transact(ctx, req)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	res, err := sipnet.FinalResponse(ctx, tx, p.done)
	switch {
	case errors.Is(err, sipnet.ErrStopped):
		return nil, ErrClosed
	case errors.Is(err, sipnet.ErrNoFinalResponse):
		return nil, fmt.Errorf("%w: %s %s: %w", ErrTimeout, req.Method, req.Recipient.String(), err)
	}
	return res, err
}

// doAuth is do with digest challenges answered (401 and 407).
func (p *Phone) doAuth(ctx context.Context, req *sip.Request) (*sip.Response, *sip.Request, error) {
	var a authSession
	for {
		res, err := p.do(ctx, req)
		if err != nil {
			return nil, req, err
		}
		if res.StatusCode != sip.StatusUnauthorized && res.StatusCode != sip.StatusProxyAuthRequired {
			return res, req, nil
		}
		next := p.reissue(req)
		if err := a.answer(p, next, res); err != nil {
			return res, req, err
		}
		req = next
	}
}

func (p *Phone) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func newCallID(local netip.AddrPort) string {
	return sip.GenerateTagN(20) + "@" + local.Addr().String()
}

// supported is the Supported header value: the extensions this phone does.
func (p *Phone) supported() string {
	return strings.Join(p.supportedTags(), ", ")
}

func (p *Phone) supportedTags() []string {
	if p.currentSettings().Rel100 == Rel100Off {
		return []string{"replaces"}
	}
	return []string{"100rel", "replaces"}
}

// respond sends a response built from req with extra headers.
func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, body []byte, hdrs ...sip.Header) error {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	return tx.Respond(res)
}
