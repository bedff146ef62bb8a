package stunturn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"
)

// Client-side errors, for callers that react to the kind of failure.
var (
	// ErrNoResponse: the server never answered (wrong address, or a
	// firewall/NAT dropping the request or the answer).
	ErrNoResponse = errors.New("no answer from the STUN/TURN server")
	// ErrUnauthorized: the TURN server refused the credentials (401).
	ErrUnauthorized = errors.New("wrong TURN credentials (401 Unauthorized)")
	// ErrQuota: the TURN server refused another allocation (486).
	ErrQuota = errors.New("TURN allocation quota reached (486)")
	// ErrBadResponse: an answer that is not a usable STUN response.
	ErrBadResponse = errors.New("bad STUN response")
)

// defaultTimeout bounds a Binding or Allocate whose context has no
// deadline: a phone must not hang a call setup on a dead server.
const defaultTimeout = 4 * time.Second

// Binding asks server "what is my public address?" from conn (RFC 5389
// §7.2.1): the answer is the address the request arrived from after every
// NAT on the way — only valid for that socket, and, behind a NAT whose
// mapping depends on the destination (symmetric), only towards that server.
// The caller must not read conn meanwhile: the answer arrives on it.
func Binding(ctx context.Context, conn net.PacketConn, server netip.AddrPort) (netip.AddrPort, error) {
	if !server.IsValid() || server.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("stunturn: binding: bad server address %v", server)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("stunturn: binding: build request: %w", err)
	}
	defer conn.SetReadDeadline(time.Time{})
	dst := net.UDPAddrFromAddrPort(server)
	buf := make([]byte, 1500)
	// RFC 5389 §7.2.1 retransmission: RTO doubling from 250 ms (a lab
	// round trip is well under that), until the context ends.
	rto := 250 * time.Millisecond
	for {
		if _, err := conn.WriteTo(req.Raw, dst); err != nil {
			return netip.AddrPort{}, fmt.Errorf("stunturn: binding: send to %s: %w", server, err)
		}
		wait := time.Now().Add(rto)
		if dl, _ := ctx.Deadline(); dl.Before(wait) {
			wait = dl
		}
		_ = conn.SetReadDeadline(wait)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return netip.AddrPort{}, fmt.Errorf("stunturn: binding: read: %w", err)
			}
			if addrPortOf(from) != server || !stun.IsMessage(buf[:n]) {
				continue // media or noise from someone else: not our answer
			}
			mapped, err := parseBindingResponse(buf[:n], req.TransactionID)
			if errors.Is(err, errOtherTransaction) {
				continue
			}
			if err != nil {
				return netip.AddrPort{}, fmt.Errorf("stunturn: binding from %s: %w", server, err)
			}
			return mapped, nil
		}
		if ctx.Err() != nil {
			return netip.AddrPort{}, fmt.Errorf("stunturn: binding to %s from %s: %w", server, conn.LocalAddr(), ErrNoResponse)
		}
		rto *= 2
	}
}

var errOtherTransaction = errors.New("other transaction")

func parseBindingResponse(b []byte, id [stun.TransactionIDSize]byte) (netip.AddrPort, error) {
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if m.TransactionID != id {
		return netip.AddrPort{}, errOtherTransaction
	}
	if m.Type != stun.BindingSuccess {
		var code stun.ErrorCodeAttribute
		if code.GetFrom(m) == nil {
			return netip.AddrPort{}, fmt.Errorf("%w: %s %d %s", ErrBadResponse, m.Type, code.Code, code.Reason)
		}
		return netip.AddrPort{}, fmt.Errorf("%w: %s", ErrBadResponse, m.Type)
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(m); err == nil {
		return udpAddrPort(xor.IP, xor.Port)
	}
	// RFC 3489 servers answer MAPPED-ADDRESS only.
	var plain stun.MappedAddress
	if err := plain.GetFrom(m); err == nil {
		return udpAddrPort(plain.IP, plain.Port)
	}
	return netip.AddrPort{}, fmt.Errorf("%w: no (XOR-)MAPPED-ADDRESS", ErrBadResponse)
}

func udpAddrPort(ip net.IP, port int) (netip.AddrPort, error) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || port <= 0 || port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("%w: mapped address %v:%d", ErrBadResponse, ip, port)
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}

// AllocateConfig says where and as whom to allocate.
type AllocateConfig struct {
	Server   netip.AddrPort
	Username string
	Password string
	Logger   *slog.Logger
}

// Relay is a TURN allocation made over a base socket: its PacketConn sends
// to and receives from peers through the relayed address on the server.
// The Relay owns the base socket.
type Relay struct {
	base    net.PacketConn
	client  *turn.Client
	relayed net.PacketConn
	addr    netip.AddrPort
	server  netip.AddrPort
	log     *slog.Logger
	done    chan struct{}

	closeOnce sync.Once
}

// Allocate makes a TURN allocation on cfg.Server from base (RFC 5766 §6:
// Allocate, 401 with realm and nonce, Allocate with long-term credentials).
// The Relay then reads base itself: the caller must not.
func Allocate(ctx context.Context, base net.PacketConn, cfg AllocateConfig) (*Relay, error) {
	if !cfg.Server.IsValid() || cfg.Server.Port() == 0 {
		return nil, fmt.Errorf("stunturn: allocate: bad server address %v", cfg.Server)
	}
	if cfg.Username == "" {
		return nil, fmt.Errorf("stunturn: allocate: a username is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	client, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: cfg.Server.String(),
		Username:       cfg.Username,
		Password:       cfg.Password,
		Conn:           base,
		LoggerFactory:  PionLogger(cfg.Logger),
	})
	if err != nil {
		return nil, fmt.Errorf("stunturn: allocate: turn client: %w", err)
	}
	r := &Relay{base: base, client: client, server: cfg.Server, log: cfg.Logger, done: make(chan struct{})}
	go r.readLoop()

	type result struct {
		conn net.PacketConn
		err  error
	}
	res := make(chan result, 1)
	go func() {
		c, err := client.Allocate()
		res <- result{c, err}
	}()
	var got result
	select {
	case got = <-res:
	case <-ctx.Done():
		// Closing the client fails the pending transaction, so the
		// Allocate goroutine ends too.
		client.Close()
		<-res
		got.err = ctx.Err()
	}
	if got.err != nil {
		client.Close()
		r.stopReading()
		return nil, fmt.Errorf("stunturn: allocate at %s as %q: %w", cfg.Server, cfg.Username, allocateError(got.err))
	}
	r.relayed = got.conn
	r.addr = addrPortOf(got.conn.LocalAddr())
	return r, nil
}

// allocateError names the failure the way the training page would.
func allocateError(err error) error {
	var te *stun.TurnError
	if errors.As(err, &te) {
		switch te.ErrorCodeAttr.Code {
		case stun.CodeUnauthorized:
			return ErrUnauthorized
		case stun.CodeAllocQuotaReached:
			return ErrQuota
		}
		return fmt.Errorf("refused: %d %s", te.ErrorCodeAttr.Code, te.ErrorCodeAttr.Reason)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return ErrNoResponse
	}
	return err
}

// readLoop feeds the base socket to the TURN client. pion's own Listen
// stops at the first packet it cannot handle (a stray STUN request is
// enough); a phone's media port gets all sorts, so errors are logged and
// reading goes on until the socket closes.
func (r *Relay) readLoop() {
	defer close(r.done)
	buf := make([]byte, 1600)
	for {
		n, from, err := r.base.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// stopReading's deadline before a failed allocation.
				return
			}
			r.log.Debug("turn base read", "err", err)
			continue
		}
		handled, err := r.client.HandleInbound(buf[:n], from)
		switch {
		case err != nil:
			r.log.Debug("turn: packet not handled", "from", from, "err", err)
		case !handled:
			// Direct (unrelayed) traffic to our base socket: with a relay
			// in the SDP nobody should send here.
			r.log.Debug("turn: ignoring direct packet", "from", from, "bytes", n)
		}
	}
}

// stopReading ends readLoop without closing base (a failed Allocate gives
// the socket back to the caller).
func (r *Relay) stopReading() {
	_ = r.base.SetReadDeadline(time.Now())
	<-r.done
	_ = r.base.SetReadDeadline(time.Time{})
}

// Addr is the relayed transport address: what goes into the SDP.
func (r *Relay) Addr() netip.AddrPort { return r.addr }

// Server is the TURN server the allocation is on.
func (r *Relay) Server() netip.AddrPort { return r.server }

// Base is the local socket the allocation was made from.
func (r *Relay) Base() net.Addr { return r.base.LocalAddr() }

// Permit installs permissions for peers now (RFC 5766 §9): the server
// drops whatever a peer sends until one exists, so a phone permits the
// address from the peer's SDP before it expects audio. (Sending to a peer
// also creates one, and pion keeps refreshing those while we send.)
func (r *Relay) Permit(peers ...netip.AddrPort) error {
	addrs := make([]net.Addr, 0, len(peers))
	for _, p := range peers {
		if p.IsValid() {
			addrs = append(addrs, net.UDPAddrFromAddrPort(p))
		}
	}
	if len(addrs) == 0 {
		return nil
	}
	if err := r.client.CreatePermission(addrs...); err != nil {
		return fmt.Errorf("stunturn: create permission on %s for %v: %w", r.addr, peers, allocateError(err))
	}
	return nil
}

// PacketConn sends and receives through the relay. Closing it closes the
// Relay (deallocation, base socket), so it can be handed to an owner such
// as a media session.
func (r *Relay) PacketConn() net.PacketConn { return relayPacketConn{PacketConn: r.relayed, r: r} }

type relayPacketConn struct {
	net.PacketConn
	r *Relay
}

func (c relayPacketConn) Close() error { return c.r.Close() }

// Close deallocates (a Refresh with lifetime 0, not waited for), stops the
// client and closes the base socket.
func (r *Relay) Close() error {
	var err error
	r.closeOnce.Do(func() {
		if cerr := r.relayed.Close(); cerr != nil {
			r.log.Debug("turn deallocate", "err", cerr)
		}
		r.client.Close()
		err = r.base.Close()
		<-r.done
	})
	return err
}
