// Package sipnet binds the sockets a SIP element serves on and wires them to
// sipgo, so every daemon gets the same behaviour: UDP and TCP on one port,
// requests leaving from the listening socket (so NAT mappings and rport mean
// what the lab says they mean), and port 0 for tests. SIP over TLS is an
// optional extra listener with its own client (tls.go); certificates for the
// lab come from package labtls.
package sipnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipcheck"
)

// Transports the lab speaks. UDP and TCP share the Listen port; TLS has its
// own listener (Config.TLSListen, 5061 by convention, RFC 3261 §26.2).
const (
	UDP = "udp"
	TCP = "tcp"
	TLS = "tls"
)

var (
	ErrNoAddress         = errors.New("sipnet: listen address must name a specific IP")
	ErrUnknownTransport  = errors.New("sipnet: unknown transport")
	ErrTransportDisabled = errors.New("sipnet: transport not enabled on this endpoint")
	ErrNoDNS             = errors.New("sipnet: the lab resolves no names, use IP addresses")
	ErrTLSConfig         = errors.New("sipnet: tls")
)

// udpReadBuffer is what each SIP UDP socket asks the kernel to queue.
const udpReadBuffer = 4 << 20

// Config says where an element listens and how it presents itself.
type Config struct {
	// Listen is "ip:port". The IP must be specific: a UDP socket bound to
	// 0.0.0.0 may answer from another address than it was reached on.
	// Port 0 picks a free port (the same one for UDP and TCP).
	Listen string
	// Transports to serve on Listen; empty means UDP and TCP. TLS is not
	// one of them: it is enabled by the two fields below.
	Transports []string
	// TLSListen is "ip:port" of a SIP-over-TLS listener; empty: none. The
	// IP must be Listen's (one element, one address in Via and Contact);
	// port 0 picks a free port. Needs TLS with a certificate.
	TLSListen string
	// TLS enables the "tls" transport. Its Certificates (or
	// GetCertificate) are what the TLSListen listener presents; its
	// RootCAs are whom requests sent over TLS trust (nil: the system
	// roots, which know no lab CA). Listen does not modify it.
	TLS *tls.Config
	// MaxQueueDelay turns on the overload gate: a new out-of-dialog
	// request (not ACK or CANCEL) that waited longer than this in the UDP
	// socket's receive queue is answered 503 with Retry-After before
	// anything parses it (sipcheck.Receiver.Shed). 0: off. Only where the
	// kernel stamps arrival times (Linux).
	MaxQueueDelay time.Duration
	// Readers is how many goroutines read the UDP socket; 0 means 1.
	// sipgo parses each datagram in the goroutine that read it, after the
	// receive path's checks, so a single reader caps what a busy daemon
	// takes in at one core, and under overload the refusals queue behind
	// the parses. Several readers lift that. The messages of one call may
	// then be handled in another order than they arrived, as they may be
	// already: sipgo handles each in its own goroutine.
	Readers int
	// MaxRunnable bounds the backlog of a daemon past its capacity: the
	// UDP readers stop reading while more goroutines than this are
	// runnable, so the excess waits in the socket's buffer, where the
	// overload gate (MaxQueueDelay) measures and refuses it, instead of
	// as parsed messages in goroutines (backlog.go). 0: no bound.
	MaxRunnable int
	// UserAgent is the User-Agent/Server header value.
	UserAgent string
	Logger    *slog.Logger
}

func (c *Config) validate() (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(c.Listen)
	if err != nil {
		return ap, fmt.Errorf("sipnet: listen address %q: %w", c.Listen, err)
	}
	if ap.Addr().IsUnspecified() {
		return ap, fmt.Errorf("%w: %q", ErrNoAddress, c.Listen)
	}
	if len(c.Transports) == 0 {
		c.Transports = []string{UDP, TCP}
	}
	for i, t := range c.Transports {
		t = strings.ToLower(t)
		if t == TLS {
			return ap, fmt.Errorf("%w: tls has its own listener: set TLSListen and TLS, not Transports", ErrTLSConfig)
		}
		if t != UDP && t != TCP {
			return ap, fmt.Errorf("%w: %q", ErrUnknownTransport, t)
		}
		c.Transports[i] = t
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if err := c.validateTLS(ap); err != nil {
		return ap, err
	}
	return ap, nil
}

// validateTLS checks the TLS listener against Listen: same specific IP, and
// a certificate to present.
func (c *Config) validateTLS(ap netip.AddrPort) error {
	if c.TLSListen == "" {
		return nil
	}
	tap, err := netip.ParseAddrPort(c.TLSListen)
	if err != nil {
		return fmt.Errorf("%w: listen address %q: %w", ErrTLSConfig, c.TLSListen, err)
	}
	if tap.Addr() != ap.Addr() {
		return fmt.Errorf("%w: listen address %q must use the same IP as %q", ErrTLSConfig, c.TLSListen, c.Listen)
	}
	if c.TLS == nil || (len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil) {
		return fmt.Errorf("%w: listener %q needs a certificate (Config.TLS.Certificates)", ErrTLSConfig, c.TLSListen)
	}
	return nil
}

// Endpoint is a bound SIP element: sockets, a sipgo user agent, its server
// and clients.
type Endpoint struct {
	UA     *sipgo.UserAgent
	Server *sipgo.Server

	addr      netip.AddrPort
	udp       net.PacketConn
	tcp       net.Listener
	tls       net.Listener   // nil without Config.TLSListen
	tlsAddr   netip.AddrPort // bound TLS address
	clients   map[string]*sipgo.Client
	receiver  *sipcheck.Receiver
	gate      *gate    // nil: no overload gate
	backlog   *backlog // nil: no bound on runnable goroutines
	readers   int
	direct    *direct // nil: every request goes to sipgo
	log       *slog.Logger
	closeOnce sync.Once
	serveWG   sync.WaitGroup
	// unmatched takes the responses that match no client transaction
	// (see OnUnmatchedResponse); nil: they are logged and dropped.
	unmatched atomic.Pointer[func(*sip.Response)]
	// ackPrefixes are the To tag prefixes of AbsorbACKs.
	ackPrefixes atomic.Pointer[[]string]
	absorbed    atomic.Uint64
}

// Listen binds the sockets. Nothing is read until Start.
func Listen(cfg Config) (*Endpoint, error) {
	ap, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	e := &Endpoint{log: cfg.Logger, clients: map[string]*sipgo.Client{}, receiver: sipcheck.NewReceiver(), readers: max(cfg.Readers, 1),
		backlog: newBacklog(cfg.MaxRunnable)}
	if err := e.bind(ap, cfg.Transports); err != nil {
		return nil, err
	}
	if uc, ok := e.udp.(*net.UDPConn); ok && cfg.MaxQueueDelay > 0 && enableRxTime(uc) {
		e.gate = &gate{maxDelay: cfg.MaxQueueDelay, log: cfg.Logger}
	}
	if err := e.bindTLS(cfg); err != nil {
		e.closeSockets()
		return nil, err
	}
	opts := []sipgo.UserAgentOption{
		sipgo.WithUserAgentHostname(e.addr.Addr().String()),
		sipgo.WithUserAgentDNSResolver(noDNS),
		// The receive path's parser: what passes sipcheck.Receiver parses.
		sipgo.WithUserAgentParser(sipcheck.NewParser()),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerUnhandledResponseHandler(e.unmatchedResponse)),
	}
	if cfg.TLS != nil {
		// sipgo dials every TLS connection of this UA with this config.
		opts = append(opts, sipgo.WithUserAgenTLSConfig(cfg.TLS))
	}
	if cfg.UserAgent != "" {
		opts = append(opts, sipgo.WithUserAgent(cfg.UserAgent))
	}
	ua, err := sipgo.NewUA(opts...)
	if err != nil {
		e.closeSockets()
		return nil, fmt.Errorf("sipnet: user agent: %w", err)
	}
	e.UA = ua
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(cfg.Logger))
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("sipnet: server: %w", err)
	}
	e.Server = srv
	rule := &sizeRule{e: e}
	for _, t := range cfg.Transports {
		opts := []sipgo.ClientOption{
			sipgo.WithClientLogger(cfg.Logger),
			sipgo.WithClientHostname(e.addr.Addr().String()),
			sipgo.WithClientPort(int(e.addr.Port())),
		}
		if t == UDP {
			// Requests must leave from the listening socket: that is the
			// address NAT maps and the address peers answer to.
			opts = append(opts, sipgo.WithClientConnectionAddr(e.addr.String()))
		}
		c, err := sipgo.NewClient(ua, opts...)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("sipnet: client: %w", err)
		}
		// Every request a daemon sends over UDP passes the size rule.
		c.TxRequester = rule
		e.clients[t] = c
	}
	if cfg.TLS != nil {
		c, err := e.newTLSClient(cfg.Logger)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.clients[TLS] = c
	}
	return e, nil
}

// bind takes the same port for UDP and TCP. With port 0 the UDP port is
// chosen first and TCP must get the same one; retry a few times if another
// process holds it.
func (e *Endpoint) bind(ap netip.AddrPort, transports []string) error {
	wantUDP, wantTCP := slices.Contains(transports, UDP), slices.Contains(transports, TCP)
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		port := ap.Port()
		if wantUDP {
			pc, err := net.ListenPacket("udp", netip.AddrPortFrom(ap.Addr(), port).String())
			if err != nil {
				return fmt.Errorf("sipnet: listen udp %s: %w", ap, err)
			}
			// sipgo reads each socket from one goroutine: a burst (a
			// classroom re-registering at once, a sipp run) must wait in
			// the kernel, not be dropped by it. The kernel caps this at
			// net.core.rmem_max; best effort.
			if uc, ok := pc.(*net.UDPConn); ok {
				_ = uc.SetReadBuffer(udpReadBuffer)
			}
			e.udp = pc
			port = pc.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		}
		if wantTCP {
			ln, err := net.Listen("tcp", netip.AddrPortFrom(ap.Addr(), port).String())
			if err != nil {
				lastErr = fmt.Errorf("sipnet: listen tcp %s: %w", netip.AddrPortFrom(ap.Addr(), port), err)
				e.closeSockets()
				if ap.Port() != 0 {
					return lastErr
				}
				continue
			}
			e.tcp = ln
			port = ln.Addr().(*net.TCPAddr).AddrPort().Port()
		}
		e.addr = netip.AddrPortFrom(ap.Addr(), port)
		return nil
	}
	return lastErr
}

// Addr is the bound address (the real port when Listen asked for port 0).
func (e *Endpoint) Addr() netip.AddrPort { return e.addr }

// Client returns the client that sends over transport ("udp"/"tcp"/"tls").
func (e *Endpoint) Client(transport string) (*sipgo.Client, error) {
	c, ok := e.clients[strings.ToLower(transport)]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrTransportDisabled, transport)
	}
	return c, nil
}

// OnUnmatchedResponse hands f every response that matches no client
// transaction (a retransmission after the transaction ended, a stray),
// from sipgo's goroutines, instead of logging and dropping it. A stateful
// proxy that ends a transaction early keeps what RFC 6026 still asks of it
// (relaying 2xx retransmissions for an accepted INVITE branch) this way.
func (e *Endpoint) OnUnmatchedResponse(f func(*sip.Response)) { e.unmatched.Store(&f) }

func (e *Endpoint) unmatchedResponse(res *sip.Response) {
	if f := e.unmatched.Load(); f != nil && *f != nil {
		(*f)(res)
		return
	}
	e.log.Debug("response matching no transaction dropped", "status", res.StatusCode, "call_id", callID(res))
}

// AbsorbACKs ends every ACK arriving over UDP whose To tag starts with
// prefix before anything parses it. A daemon that answers some requests
// statelessly (the proxy's 407s) marks their To tags so: the ACK for such
// an answer belongs to no transaction and goes nowhere, and one call in
// the bench sends one, as much as a ninth of the messages. The ACKs for
// the receive path's own refusals (a 400, the gate's 503) end here too.
func (e *Endpoint) AbsorbACKs(prefix string) {
	for {
		old := e.ackPrefixes.Load()
		var next []string
		if old != nil {
			next = append(next, *old...)
		}
		next = append(next, prefix)
		if e.ackPrefixes.CompareAndSwap(old, &next) {
			return
		}
	}
}

// AbsorbedACKs is how many ACKs AbsorbACKs ended so far.
func (e *Endpoint) AbsorbedACKs() uint64 { return e.absorbed.Load() }

func (e *Endpoint) absorbedACK(data []byte) bool {
	tag, ok := sipcheck.ACKToTag(data)
	if !ok {
		return false
	}
	ours := e.receiver.RefusalTag(tag)
	if ps := e.ackPrefixes.Load(); ps != nil && !ours {
		for _, p := range *ps {
			if strings.HasPrefix(tag, p) {
				ours = true
				break
			}
		}
	}
	if ours {
		e.absorbed.Add(1)
	}
	return ours
}

// PacketConn is the UDP socket, or nil when UDP is disabled.
func (e *Endpoint) PacketConn() net.PacketConn { return e.udp }

// serve runs one socket's serve loop (run) in the background, in serveWG;
// a stop other than the socket being closed is logged.
func (e *Endpoint) serve(transport string, run func() error) {
	e.serveWG.Add(1)
	go func() {
		defer e.serveWG.Done()
		if err := run(); err != nil && !errors.Is(err, net.ErrClosed) {
			e.log.Error("sip "+transport+" serve stopped", "err", err)
		}
	}()
}

// Start serves the sockets in the background and returns once sipgo's
// transport layer knows them, so a request sent right after Start leaves
// from the listening port. The endpoint stops when ctx ends or on Close.
func (e *Endpoint) Start(ctx context.Context) error {
	if e.udp != nil {
		for range e.readers {
			pc := &checkedPacketConn{PacketConn: e.udp, rc: e.receiver, log: e.log, gate: e.gate, absorbed: e.absorbedACK, direct: e.direct}
			if e.backlog != nil {
				pc.backlog = &backlogReader{backlog: e.backlog}
			}
			e.serve(UDP, func() error { return e.Server.ServeUDP(pc) })
		}
	}
	if e.tcp != nil {
		ln := &checkedListener{Listener: e.tcp, rc: e.receiver, log: e.log, transport: TCP}
		e.serve(TCP, func() error { return e.Server.ServeTCP(ln) })
	}
	if e.tls != nil {
		ln := &checkedListener{Listener: e.tls, rc: e.receiver, log: e.log, transport: TLS}
		e.serve(TLS, func() error { return e.Server.ServeTLS(ln) })
	}
	go func() {
		<-ctx.Done()
		e.Close()
	}()
	if e.udp == nil {
		return nil
	}
	// ServeUDP registers the socket asynchronously.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, _ := e.UA.TransportLayer().GetConnection(UDP, e.addr.String()); c != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sipnet: udp transport for %s not ready", e.addr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (e *Endpoint) closeSockets() {
	if e.udp != nil {
		e.udp.Close()
	}
	if e.tcp != nil {
		e.tcp.Close()
	}
	if e.tls != nil {
		e.tls.Close()
	}
}

// Close stops serving and releases the sockets. It is safe to call twice.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.closeSockets()
		if e.Server != nil {
			e.Server.Close()
		}
		if e.UA != nil {
			e.UA.Close()
		}
	})
	return nil
}

// noDNS refuses every DNS query (/etc/hosts still answers). Lab elements
// address each other by IP; a name in a Via or URI (the torture messages
// are full of example.com) must never turn into a DNS query leaving the lab.
var noDNS = &net.Resolver{
	PreferGo: true,
	Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return nil, ErrNoDNS
	},
}

// Resolver is the resolver every daemon uses for names in SIP URIs: the
// hosts file only, never a DNS query.
func Resolver() *net.Resolver { return noDNS }

// Source returns where a request really came from, as the transport saw it.
func Source(req *sip.Request) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return ap, fmt.Errorf("sipnet: request source %q: %w", req.Source(), err)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
