// Package proxy is the lab's stateful SIP proxy (RFC 3261 §16): the single
// address phones are configured with. It forwards REGISTER to the registrar
// with a Path that records where the REGISTER really came from, routes
// everything else by Route headers or by the location service, forks to
// every binding of a user, record-routes, forwards CANCEL, runs Timer C,
// challenges its own users' INVITEs with 407, and carries the NAT toggles
// the lab turns on and off while calls are up (see Settings).
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/live"
	"github.com/siplab/siplab/sip/guard"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/sip/sipnet"
	"github.com/siplab/siplab/sip/txlimit"
)

// DefaultTimerC is RFC 3261's "greater than 3 minutes".
const DefaultTimerC = 3*time.Minute + 1*time.Second

// DefaultMaxQueueDelay is the proxy's overload gate (sipnet.Config.
// MaxQueueDelay): new requests are refused once datagrams keep waiting
// longer than this in the socket (for 200 ms: a scheduling hiccup of a
// busy host refuses nothing). A call crosses the queue several times
// before its caller and callee stop retransmitting (INVITE to 100, 2xx to
// ACK: two crossings each), so each must stay well under T1 (500 ms).
const DefaultMaxQueueDelay = 100 * time.Millisecond

// DefaultMaxRunnable bounds the proxy's CPU backlog (sipnet.Config.
// MaxRunnable): its UDP readers pause while more goroutines than this
// are runnable, so an overload queues in the socket, where the gate
// above refuses it, and not as goroutines holding parsed messages. 256
// is ~10 ms of work at the proxy's cost per message on one core; 64
// paused the readers at rates the proxy carries and did worse in the
// overload A/B (bench/README.md, branch ovl).
const DefaultMaxRunnable = 256

// DefaultMaxBranches bounds forking: a user with more bindings than this is
// tried on the most preferred ones only.
const DefaultMaxBranches = 8

// Config configures a Proxy. The zero value of every optional field is a
// working default.
type Config struct {
	// Domain is the SIP domain the proxy is responsible for
	// ("siplab.test"). Requests for it are routed by the location service.
	// The proxy's own IP addresses always count as aliases of the domain,
	// so phones configured with the proxy's IP as their domain work too.
	Domain string
	// Location answers where users are (the registrar in-process or
	// location.HTTPClient). Required.
	Location location.Service
	// Registrar is where REGISTERs are forwarded, "ip:port" over UDP.
	// Empty: REGISTER is answered 503.
	Registrar string
	// Auth, when set, is used to challenge the proxy's own users (From
	// domain = Domain) with 407.
	Auth *sipauth.Authenticator
	// AuthInvites challenges out-of-dialog INVITEs from our users.
	AuthInvites bool
	// AuthOther also challenges our users' other out-of-dialog requests
	// (MESSAGE, SUBSCRIBE, OPTIONS, REFER...). REGISTER, ACK, CANCEL and
	// in-dialog requests are never challenged by the proxy.
	AuthOther bool
	// Relay forwards out-of-dialog requests for other domains to their
	// Request-URI. Off (the default) they get 403: the lab proxy must not
	// be an open relay. In-dialog requests are always forwarded.
	Relay bool
	// Routes are static routes for other domains (see Route): the platform
	// services phones may reach without Relay. Domains are matched on the
	// Request-URI host; our own Domain cannot be routed here.
	Routes []Route
	// UserRoutes send requests for our own Domain whose Request-URI user
	// matches to a next hop before any location lookup (see UserRoute):
	// numbers to the PBX. First match wins.
	UserRoutes []UserRoute
	// TimerC bounds how long an INVITE branch may ring; default
	// DefaultTimerC. Tests shorten it.
	TimerC time.Duration
	// MaxBranches bounds parallel forking; default DefaultMaxBranches.
	MaxBranches int
	// Settings are the initial NAT toggles; nil means DefaultSettings().
	Settings *Settings
	// Guard is the failed-auth policy (guard.AuthOnly() when nil): a
	// source that answers FailedAuthLimit of the proxy's 407 challenges
	// with wrong passwords within FailedAuthWindow gets 403 for BlockFor,
	// whatever it sends. GuardTrusted are never blocked (an SBC or PBX
	// fronting many users, which guards them itself) and join its Trunks.
	Guard        *guard.Config
	GuardTrusted []netip.Prefix
	// MaxTransactions caps the server transactions held at once (memory
	// bound, see txlimit); beyond it new requests get 503. 0 means
	// txlimit.Default, negative no cap.
	MaxTransactions int
	// Now is the guard's clock (blocks, windows); default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) validate() (netip.AddrPort, error) {
	var reg netip.AddrPort
	if c.Location == nil {
		return reg, ErrNoLocation
	}
	if c.Registrar != "" {
		ap, err := netip.ParseAddrPort(c.Registrar)
		if err != nil {
			return reg, fmt.Errorf("%w: %q: %w", ErrBadRegistrar, c.Registrar, err)
		}
		reg = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	c.Domain = strings.ToLower(strings.TrimSpace(c.Domain))
	routes, err := validateRoutes(c.Routes, c.Domain)
	if err != nil {
		return reg, err
	}
	c.Routes = routes
	if c.UserRoutes, err = validateUserRoutes(c.UserRoutes); err != nil {
		return reg, err
	}
	if c.TimerC <= 0 {
		c.TimerC = DefaultTimerC
	}
	if c.MaxBranches <= 0 {
		c.MaxBranches = DefaultMaxBranches
	}
	if c.Settings == nil {
		s := DefaultSettings()
		c.Settings = &s
	}
	if c.Settings.ContactFixup == "" {
		s := *c.Settings // zero value means default; never edit the caller's
		s.ContactFixup = FixupAuto
		c.Settings = &s
	}
	if err := c.Settings.validate(); err != nil {
		return reg, err
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Guard == nil {
		g := guard.AuthOnly()
		c.Guard = &g
	}
	g := *c.Guard
	g.Trunks = append(append([]netip.Prefix(nil), g.Trunks...), c.GuardTrusted...)
	if err := g.Validate(); err != nil {
		return reg, fmt.Errorf("proxy: guard: %w", err)
	}
	c.Guard = &g
	switch {
	case c.MaxTransactions == 0:
		c.MaxTransactions = txlimit.Default
	case c.MaxTransactions < 0:
		c.MaxTransactions = 0
	}
	return reg, nil
}

// endpoint is one address the proxy listens on, with the clients whose
// requests leave from it.
type endpoint struct {
	ep   *sipnet.Endpoint
	addr netip.AddrPort
	udp  *sipgo.Client
	tcp  *sipgo.Client
}

func (e *endpoint) client(transport string) (*sipgo.Client, error) {
	switch transport {
	case sipnet.UDP:
		if e.udp != nil {
			return e.udp, nil
		}
	case sipnet.TCP:
		if e.tcp != nil {
			return e.tcp, nil
		}
	}
	return nil, fmt.Errorf("proxy: endpoint %s: %w: %q", e.addr, sipnet.ErrTransportDisabled, transport)
}

// Proxy is a running stateful proxy. It is safe for concurrent use.
type Proxy struct {
	cfg       Config
	registrar netip.AddrPort
	eps       []*endpoint
	log       *slog.Logger
	started   time.Time

	settings atomic.Pointer[Settings]
	setMu    sync.Mutex // serialises Update
	// initial is what the proxy started with: `set X default` and Reset
	// put it back.
	initial Settings

	stats counters
	nat   natLog // latest contact_fixup check per binding, for status
	guard *guard.AuthGuard
	txl   *txlimit.Limiter
	sl    *slTags
	// What finished transactions still owe (linger.go).
	answered *lingerMap[answered]
	accepted *lingerMap[accepted]

	closeOnce sync.Once
}

// New builds a proxy serving the given endpoints (bound by sipnet.Listen,
// not yet started). The proxy owns them from here: Close closes them. With
// several endpoints (a public and a core leg) a request leaves from the
// endpoint the kernel would route its destination through, and the proxy
// record-routes twice when it changes legs (RFC 5658).
func New(cfg Config, eps ...*sipnet.Endpoint) (*Proxy, error) {
	reg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if len(eps) == 0 {
		return nil, ErrNoEndpoint
	}
	log := slog.New(&lazyAttrs{h: cfg.Logger.With("component", "proxy").Handler()})
	p := &Proxy{cfg: cfg, registrar: reg, log: log, started: time.Now()}
	s := *cfg.Settings
	p.settings.Store(&s)
	if p.guard, err = guard.NewAuthGuard(*cfg.Guard, p.log, cfg.Now); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p.txl = txlimit.New(cfg.MaxTransactions)
	p.sl = newSLTags()
	p.answered = newLingerMap[answered](lingerFor, lingerMax, time.Now)
	p.accepted = newLingerMap[accepted](lingerFor, lingerMax, time.Now)
	p.initial = s
	for _, ep := range eps {
		if ep == nil {
			return nil, ErrNoEndpoint
		}
		e := &endpoint{ep: ep, addr: ep.Addr()}
		// A disabled transport is fine: requests that need it get 503.
		e.udp, _ = ep.Client(sipnet.UDP)
		e.tcp, _ = ep.Client(sipnet.TCP)
		p.eps = append(p.eps, e)
	}
	for _, e := range p.eps {
		in := e
		// Every method goes through one entry point: a proxy forwards
		// methods it has never heard of (RFC 3261 §16.1).
		in.ep.Server.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
			p.handle(in, req, tx)
		})
		in.ep.OnUnmatchedResponse(p.unmatchedResponse)
		// The ACKs for our stateless answers to INVITE (407, 403) end in
		// the socket's read loop, unparsed; handle absorbs the rest (TCP).
		in.ep.AbsorbACKs(p.sl.prefix)
	}
	return p, nil
}

// Start serves every endpoint until ctx ends or Close.
func (p *Proxy) Start(ctx context.Context) error {
	for _, e := range p.eps {
		if err := e.ep.Start(ctx); err != nil {
			return fmt.Errorf("proxy: start %s: %w", e.addr, err)
		}
	}
	p.log.Info("proxy serving", "listen", p.listen(), "domain", p.cfg.Domain, "registrar", p.cfg.Registrar)
	return nil
}

// Close stops serving and releases the endpoints.
func (p *Proxy) Close() error {
	var errs []error
	p.closeOnce.Do(func() {
		for _, e := range p.eps {
			if err := e.ep.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

// LocalAddrs are the addresses the proxy listens on (UDP and TCP share the
// port).
func (p *Proxy) LocalAddrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(p.eps))
	for i, e := range p.eps {
		out[i] = e.addr
	}
	return out
}

func (p *Proxy) listen() []string {
	var out []string
	for _, e := range p.eps {
		out = append(out, e.addr.String())
	}
	return out
}

// Settings returns the current toggles.
func (p *Proxy) Settings() Settings { return *p.settings.Load() }

// Update changes the toggles atomically: f edits a copy, which replaces
// the current settings only if it is valid. It returns the settings now in
// force.
func (p *Proxy) Update(f func(*Settings)) (Settings, error) {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	next := *p.settings.Load()
	f(&next)
	if err := next.validate(); err != nil {
		return *p.settings.Load(), err
	}
	p.settings.Store(&next)
	p.log.Info("settings changed", "rport", next.RPort, "received", next.Received,
		"contact_fixup", next.ContactFixup, "record_route", next.RecordRoute)
	return next, nil
}

// Set changes one toggle by name (see Settings.Set for the values);
// the value "default" is the proxy's startup value.
func (p *Proxy) Set(name, value string) (Settings, error) {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	next := *p.settings.Load()
	if strings.EqualFold(strings.TrimSpace(value), "default") {
		v, err := p.initial.Get(name)
		if err != nil {
			return next, err
		}
		value = v
	}
	if err := next.Set(name, value); err != nil {
		return next, err
	}
	p.settings.Store(&next)
	p.log.Info("setting changed", "name", name, "value", value)
	return next, nil
}

// Reset puts every toggle and the guard's settings back to their startup
// values and lifts every failed-auth block (`siplab reset`).
func (p *Proxy) Reset() ResetResult {
	p.setMu.Lock()
	cur := *p.settings.Load()
	var changed []string
	for _, name := range SettingNames() {
		a, _ := cur.Get(name)
		b, _ := p.initial.Get(name)
		if a != b {
			changed = append(changed, name)
		}
	}
	next := p.initial
	p.settings.Store(&next)
	p.setMu.Unlock()
	// The guard is part of a fresh proxy too: its settings and no blocks.
	restored, unblocked := p.guard.Reset()
	changed = append(changed, restored...)
	if p.txl.Max() != p.cfg.MaxTransactions {
		p.txl.SetMax(p.cfg.MaxTransactions)
		changed = append(changed, SettingMaxTransactions)
	}
	res := ResetResult{Settings: next, Restored: changed}
	for _, a := range unblocked {
		res.Unblocked = append(res.Unblocked, a.String())
	}
	if len(changed) > 0 || len(unblocked) > 0 {
		p.log.Info("settings reset", "restored", changed, "unblocked", res.Unblocked)
	}
	return res
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	s := p.stats.snapshot()
	s.Lingering = p.lingerStatus()
	return s
}

// Status returns counters, settings and identity for the control plane.
func (p *Proxy) Status() Status {
	st := Status{
		Listen:    p.listen(),
		Domain:    p.cfg.Domain,
		Registrar: p.cfg.Registrar,
		Auth:      p.cfg.Auth != nil && (p.cfg.AuthInvites || p.cfg.AuthOther),
		TimerC:    p.cfg.TimerC.String(),
		Started:   p.started,
		Settings:  p.Settings(),
		Stats:     p.Stats(),
		NAT:       p.nat.snapshot(),
		Guard:     p.guardStatus(),
	}
	if c, ok := p.cfg.Location.(interface{ Status() location.CacheStatus }); ok {
		cs := c.Status()
		st.Location = &cs
	}
	for _, r := range p.cfg.Routes {
		st.Routes = append(st.Routes, r.String())
	}
	for _, r := range p.cfg.UserRoutes {
		st.UserRoutes = append(st.UserRoutes, r.String())
	}
	set := st.Settings
	st.Summary = fmt.Sprintf("rport=%s received=%s contact_fixup=%s record_route=%s; %d forwarded, %d active",
		set.RPort, live.OnOffWord(set.Received), set.ContactFixup, live.OnOffWord(set.RecordRoute), st.Stats.Forwarded, st.Stats.ActiveTransactions)
	return st
}
