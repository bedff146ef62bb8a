package mediarelay

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Defaults for Config's zero values.
const (
	DefaultPortMin = 20000
	DefaultPortMax = 29999
	// DefaultRelatchAfter is how long a latched source must have been
	// silent before another source may take its place (learn mode). Two
	// seconds is 100 missed 20 ms packets: a phone that is still talking
	// never loses its latch, one whose NAT mapping changed gets followed.
	DefaultRelatchAfter = 2 * time.Second
	// DefaultRelatchPackets is how many valid packets in a row the new
	// source must send before it is latched, so one stray datagram cannot
	// take over a silent (held, muted) stream.
	DefaultRelatchPackets = 3
)

// Config is the long form of New. Only IP is required.
type Config struct {
	// IP is the local address of each side's sockets: side 0 faces the
	// caller, side 1 the callee. They may be equal (one public address)
	// or differ (an SBC with an access and a core address).
	IP [2]netip.Addr
	// Mode is read for every packet; nil means always Learn.
	Mode func() Latching
	// PortMin and PortMax bound the RTP ports tried (RTP even, RTCP the
	// next odd one, both inside the range). Zero means 20000-29999.
	PortMin, PortMax int
	// RelatchAfter and RelatchPackets: see the defaults above. Zero means
	// the default; a negative RelatchAfter disables re-latching (only a
	// new SDP address re-arms the latch).
	RelatchAfter   time.Duration
	RelatchPackets int
	Log            *slog.Logger
}

// withDefaults validates c once and fills its zero values.
func (c Config) withDefaults() (Config, error) {
	for i, ip := range c.IP {
		if !ip.IsValid() || ip.IsUnspecified() {
			// The address is written into SDP, so a wildcard cannot be used.
			return c, fmt.Errorf("%w: side %d address %v is not a usable unicast address", ErrInvalidConfig, i, ip)
		}
		c.IP[i] = ip.Unmap()
	}
	if c.PortMin == 0 && c.PortMax == 0 {
		c.PortMin, c.PortMax = DefaultPortMin, DefaultPortMax
	}
	if c.PortMin < 1 || c.PortMax > 65535 || c.PortMin >= c.PortMax {
		return c, fmt.Errorf("%w: port range %d-%d", ErrInvalidConfig, c.PortMin, c.PortMax)
	}
	if firstEven(c.PortMin)+1 > c.PortMax {
		return c, fmt.Errorf("%w: port range %d-%d holds no even/odd pair", ErrInvalidConfig, c.PortMin, c.PortMax)
	}
	if c.RelatchAfter == 0 {
		c.RelatchAfter = DefaultRelatchAfter
	}
	if c.RelatchPackets < 0 {
		return c, fmt.Errorf("%w: relatch packets %d", ErrInvalidConfig, c.RelatchPackets)
	}
	if c.RelatchPackets == 0 {
		c.RelatchPackets = DefaultRelatchPackets
	}
	if c.Mode == nil {
		c.Mode = func() Latching { return Learn }
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func firstEven(p int) int { return p + p%2 }
