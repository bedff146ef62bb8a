package hep

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Client.
type Config struct {
	// Collector is the HEP collector's UDP address, "10.0.0.99:9060".
	Collector string
	// CaptureID identifies this capture agent in HOMER (chunk 0x000c);
	// used for packets that carry none.
	CaptureID uint32
	// AuthKey, if set, is sent in every packet (chunk 0x000e).
	AuthKey string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c Config) validate() (netip.AddrPort, error) {
	if c.Collector == "" {
		return netip.AddrPort{}, fmt.Errorf("%w: no collector address", ErrBadConfig)
	}
	ap, err := netip.ParseAddrPort(c.Collector)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: collector %q: want ip:port: %w", ErrBadConfig, c.Collector, err)
	}
	if ap.Port() == 0 || !ap.Addr().IsValid() || ap.Addr().IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("%w: collector %q: need a unicast address and a port", ErrBadConfig, c.Collector)
	}
	return ap, nil
}

// Client sends HEP3 packets to one collector over UDP. Sending never
// blocks the capture for long: UDP has no backpressure, and a collector
// that is down just means ICMP errors, counted and logged now and then.
type Client struct {
	cfg  Config
	log  *slog.Logger
	conn *net.UDPConn

	sent, failed atomic.Uint64
	mu           sync.Mutex
	buf          []byte
	lastLog      time.Time
	closed       bool
}

// New validates cfg and opens the UDP socket towards the collector.
func New(cfg Config) (*Client, error) {
	ap, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("hep: socket to %s: %w", ap, err)
	}
	return &Client{cfg: cfg, log: cfg.Logger.With("component", "hep", "collector", ap.String()), conn: conn}, nil
}

// LocalAddr is the client's source address.
func (c *Client) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// Send encodes p and sends it. A zero CaptureID or empty AuthKey is filled
// from the Config.
func (c *Client) Send(p Packet) error {
	if p.CaptureID == 0 {
		p.CaptureID = c.cfg.CaptureID
	}
	if p.AuthKey == "" {
		p.AuthKey = c.cfg.AuthKey
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	var err error
	c.buf, err = Encode(c.buf[:0], p)
	if err != nil {
		c.failed.Add(1)
		return err
	}
	if _, err = c.conn.Write(c.buf); err != nil {
		c.failed.Add(1)
		// A collector that is down answers with ICMP; one line every 10 s
		// says so without flooding the daemon's log.
		if now := time.Now(); now.Sub(c.lastLog) > 10*time.Second {
			c.lastLog = now
			c.log.Warn("HEP send failed", "err", err, "failed_total", c.failed.Load())
		}
		return fmt.Errorf("hep: send: %w", err)
	}
	c.sent.Add(1)
	return nil
}

// Stats returns how many packets were sent and how many failed.
func (c *Client) Stats() (sent, failed uint64) { return c.sent.Load(), c.failed.Load() }

// Close closes the socket.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.conn.Close()
}
