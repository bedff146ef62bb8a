// Package carrier is the lab's SIP trunk provider: a PSTN carrier switch on
// the internet that delivers calls to E.164 numbers to the platform's SBC
// and terminates the platform's outbound calls on its own subscribers.
//
// It is a thin composition over the uaclient phone engine in trunk mode
// (uaclient/trunk.go): no registration and no digest, trust by source IP
// (everything else gets 403), incoming calls screened by called number
// (484 not E.164, 404 not ours, else ring and answer with a G.711 tone),
// outbound calls with the PSTN calling number in From. The carrier adds
// the number plan, OPTIONS keep-alive pings with peer up/down and RTT, and
// its status. See README.md.
package carrier

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/siplab/siplab/sip/sipnet"
	"github.com/siplab/siplab/uaclient"
)

// Carrier is one carrier switch and its trunk to the platform.
type Carrier struct {
	cfg    Config
	ranges Ranges
	phone  *uaclient.Phone
	log    *slog.Logger

	mu   sync.Mutex
	peer PeerStatus

	done      chan struct{}
	wg        sync.WaitGroup
	pingOnce  sync.Once
	closeOnce sync.Once
}

// New checks cfg and builds the carrier on cfg.Endpoint. Nothing is sent
// or read until Start or Run. On error the endpoint is closed.
func New(cfg Config) (*Carrier, error) {
	ranges, err := cfg.validate()
	if err != nil {
		if cfg.Endpoint != nil {
			cfg.Endpoint.Close()
		}
		return nil, err
	}
	settings := map[string]string{}
	if cfg.AnswerAfter > 0 {
		settings["auto_answer"] = cfg.AnswerAfter.String()
	}
	phone, err := uaclient.New(uaclient.Config{
		Name: cfg.Name,
		// From host of outbound calls is the carrier itself; the user
		// is replaced by each call's calling number (CallAs).
		Domain:       cfg.Endpoint.Addr().Addr().String(),
		Proxy:        cfg.Peer,
		Transport:    cfg.PeerTransport,
		Endpoint:     cfg.Endpoint,
		RTPPort:      cfg.RTPPort,
		ToneHz:       cfg.ToneHz,
		Trusted:      cfg.Trusted,
		AcceptCallee: ranges.Screen,
		Settings:     settings,
		UserAgent:    "siplab-carrier",
		Logger:       cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("carrier: %w", err)
	}
	c := &Carrier{
		cfg:    cfg,
		ranges: ranges,
		phone:  phone,
		log:    cfg.Logger.With("carrier", cfg.Name),
		done:   make(chan struct{}),
	}
	c.peer = PeerStatus{Addr: cfg.Peer, Transport: cfg.PeerTransport, State: PeerUnknown}
	return c, nil
}

// Start serves SIP and starts the OPTIONS pings; it runs until ctx ends or
// Close.
func (c *Carrier) Start(ctx context.Context) error {
	if err := c.phone.Start(ctx); err != nil {
		return fmt.Errorf("carrier: %w", err)
	}
	c.startPings(ctx)
	return nil
}

// Run serves until ctx ends, then hangs up every call and closes.
func (c *Carrier) Run(ctx context.Context) error {
	// Not ctx itself: the phone must outlive ctx long enough to send BYEs.
	if err := c.phone.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("carrier: %w", err)
	}
	c.startPings(ctx)
	err := c.phone.Run(ctx) // already started: waits, hangs up, closes
	c.Close()
	return err
}

// Close stops pings, media and the endpoint without sending anything.
func (c *Carrier) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.phone.Close()
		c.wg.Wait()
	})
	return nil
}

// Addr is the SIP (UDP/TCP) address.
func (c *Carrier) Addr() netip.AddrPort { return c.cfg.Endpoint.Addr() }

// TLSAddr is the TLS listener address (zero without one).
func (c *Carrier) TLSAddr() netip.AddrPort { return c.cfg.Endpoint.TLSAddr() }

// Phone is the engine underneath, for its control API (answer, hangup,
// wait, ...).
func (c *Carrier) Phone() *uaclient.Phone { return c.phone }

// Call sends an INVITE for callee (E.164) to the peer with caller (E.164,
// "" = the default calling number) in From. No registration and no digest:
// the peer trusts the carrier by its address. It returns once the INVITE is
// sent; follow the call with its Wait or Status.
func (c *Carrier) Call(ctx context.Context, callee, caller string) (*uaclient.Call, error) {
	if err := ValidE164(callee); err != nil {
		return nil, fmt.Errorf("callee: %w", err)
	}
	if caller == "" {
		caller = c.cfg.DefaultFrom
	}
	if err := ValidE164(caller); err != nil {
		return nil, fmt.Errorf("caller: %w", err)
	}
	call, err := c.phone.CallAs(ctx, c.peerURI(callee), caller)
	if err != nil {
		return call, fmt.Errorf("carrier: call %s: %w", callee, err)
	}
	return call, nil
}

// peerURI is the Request-URI of an outbound call: sip:+E164@peer, with the
// transport named when it is not UDP (RFC 3261 §19.1.1).
func (c *Carrier) peerURI(number string) string {
	u := "sip:" + number + "@" + c.cfg.Peer
	if c.cfg.PeerTransport != sipnet.UDP {
		u += ";transport=" + c.cfg.PeerTransport
	}
	return u
}
