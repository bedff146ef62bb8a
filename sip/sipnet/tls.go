package sipnet

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/emiago/sipgo"
)

// bindTLS opens the TLS listener when the config asks for one. The
// handshake runs on the connection's first read, in sipgo's per-connection
// goroutine, so a peer that never finishes it holds up nobody else.
func (e *Endpoint) bindTLS(cfg Config) error {
	if cfg.TLSListen == "" {
		return nil
	}
	tap := netip.MustParseAddrPort(cfg.TLSListen) // checked by validateTLS
	ln, err := tls.Listen("tcp", tap.String(), cfg.TLS)
	if err != nil {
		return fmt.Errorf("sipnet: listen tls %s: %w", tap, err)
	}
	e.tls = ln
	e.tlsAddr = ln.Addr().(*net.TCPAddr).AddrPort()
	e.tlsAddr = netip.AddrPortFrom(e.tlsAddr.Addr().Unmap(), e.tlsAddr.Port())
	return nil
}

// newTLSClient builds the client for requests over TLS. Its Via sent-by is
// the TLS listener (where a new connection for a response may be opened,
// RFC 3261 §18.2.2); without a listener the port is left to sipgo, which
// writes the connection's own local port.
func (e *Endpoint) newTLSClient(log *slog.Logger) (*sipgo.Client, error) {
	opts := []sipgo.ClientOption{
		sipgo.WithClientLogger(log),
		sipgo.WithClientHostname(e.addr.Addr().String()),
	}
	if e.tls != nil {
		opts = append(opts, sipgo.WithClientPort(int(e.tlsAddr.Port())))
	}
	c, err := sipgo.NewClient(e.UA, opts...)
	if err != nil {
		return nil, fmt.Errorf("sipnet: tls client: %w", err)
	}
	return c, nil
}

// TLSAddr is the bound TLS listener address; the zero AddrPort without one.
func (e *Endpoint) TLSAddr() netip.AddrPort { return e.tlsAddr }
