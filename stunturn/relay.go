package stunturn

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pion/turn/v4"
)

// relayGenerator hands pion its relay sockets: from pion's port-range
// generator (bounded ports on the relay IP), wrapped so each one counts the
// bytes it relays and is closed when MaxLifetime runs out — closing the
// socket is how pion's allocation ends (its read loop fails and deletes it).
type relayGenerator struct {
	inner       *turn.RelayAddressGeneratorPortRange
	st          *state
	maxLifetime time.Duration
}

func newRelayGenerator(cfg Config, st *state) *relayGenerator {
	size := int(cfg.PortMax-cfg.PortMin) + 1
	// Random picks in the range: enough tries to find a free port in a
	// mostly used range, bounded so a full range fails fast with 508.
	tries := min(3*size, 200)
	return &relayGenerator{
		inner: &turn.RelayAddressGeneratorPortRange{
			RelayAddress: net.IP(cfg.RelayIP.AsSlice()),
			Address:      cfg.RelayIP.String(),
			MinPort:      cfg.PortMin,
			MaxPort:      cfg.PortMax,
			MaxRetries:   tries,
		},
		st:          st,
		maxLifetime: cfg.MaxLifetime,
	}
}

func (g *relayGenerator) Validate() error { return g.inner.Validate() }

func (g *relayGenerator) AllocatePacketConn(network string, requestedPort int) (net.PacketConn, net.Addr, error) {
	conn, addr, err := g.inner.AllocatePacketConn(network, requestedPort)
	if err != nil {
		return nil, nil, fmt.Errorf("stunturn: no relay port free in range: %w", err)
	}
	a := g.st.newRelay(addrPortOf(addr))
	rc := &relayConn{PacketConn: conn, a: a, st: g.st}
	rc.timer = time.AfterFunc(g.maxLifetime, func() {
		g.st.relayEnding(a, fmt.Sprintf("max lifetime %s reached", g.maxLifetime))
		rc.Close()
	})
	return rc, addr, nil
}

// AllocateConn is TCP relaying (RFC 6062), which the lab does not offer.
func (g *relayGenerator) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, fmt.Errorf("stunturn: TCP relay allocations are not supported")
}

// relayConn is one relayed transport address. pion reads peers' packets
// from it and writes the client's packets to peers through it.
type relayConn struct {
	net.PacketConn
	a     *alloc
	st    *state
	timer *time.Timer
	once  sync.Once
}

func (c *relayConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.PacketConn.ReadFrom(b)
	if err == nil {
		peer := addrPortOf(from)
		c.a.lastPeer.Store(peer.String())
		if c.st.permitted(c.a, peer.Addr()) {
			c.a.fromPeer.add(n)
		} else {
			c.a.droppedFromPeer.add(n)
		}
	}
	return n, from, err
}

func (c *relayConn) WriteTo(b []byte, to net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(b, to)
	if err == nil {
		c.a.toPeer.add(n)
	}
	return n, err
}

func (c *relayConn) Close() error {
	var err error
	c.once.Do(func() {
		c.timer.Stop()
		err = c.PacketConn.Close()
		c.st.relaySocketClosed(c.a)
	})
	return err
}
