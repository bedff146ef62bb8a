package sbc

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/siplab/siplab/sip/guard"
)

// Config says where the SBC forwards and how it protects itself. The SIP
// sockets are passed to New (bound, not started), so tests use port 0.
type Config struct {
	// NextHop is the core element registrations and phone calls go to
	// (the platform proxy's core address). Required.
	NextHop netip.AddrPort
	// Trunk is the carrier's SIP address on the access (internet) side:
	// core calls to +E.164 users go there, and its IP is trusted by the
	// guard's trunk ACL. Optional.
	Trunk netip.AddrPort
	// TrunkInbound is where calls from the trunk go on the core side (the
	// PBX, which maps DIDs to phones). Default NextHop.
	TrunkInbound netip.AddrPort
	// MediaIP and CoreMediaIP are the relay's addresses on each realm.
	// Default: the access and core SIP endpoints' IPs.
	MediaIP, CoreMediaIP netip.Addr
	// Guard configures rate limits, scanner detection and blocking; nil
	// means guard.Default(). Trunk is added to its trunk ACL.
	Guard *guard.Config
	// Settings are the initial live settings; nil means DefaultSettings.
	Settings *Settings
	// RelayPorts bounds the RTP ports (zero: the relay's default range).
	RelayPortMin, RelayPortMax int
	// UserAgent is written in requests and Server in responses the SBC
	// originates; default "siplab-sbc".
	UserAgent string
	// WebRTCICEPolicy is the browser phone page's ICE transport policy
	// (all, or relay: TURN candidates only), reported in the status for
	// the pages served elsewhere (the console's); default all.
	WebRTCICEPolicy string
	Logger          *slog.Logger
}

func (c *Config) validate() error {
	if !c.NextHop.IsValid() || c.NextHop.Addr().IsUnspecified() || c.NextHop.Port() == 0 {
		return fmt.Errorf("%w: next hop %v must be a specific ip:port", ErrConfig, c.NextHop)
	}
	if c.Trunk.IsValid() && (c.Trunk.Addr().IsUnspecified() || c.Trunk.Port() == 0) {
		return fmt.Errorf("%w: trunk %v must be a specific ip:port", ErrConfig, c.Trunk)
	}
	if !c.TrunkInbound.IsValid() {
		c.TrunkInbound = c.NextHop
	}
	if c.TrunkInbound.Addr().IsUnspecified() || c.TrunkInbound.Port() == 0 {
		return fmt.Errorf("%w: trunk inbound %v must be a specific ip:port", ErrConfig, c.TrunkInbound)
	}
	for _, ip := range []netip.Addr{c.MediaIP, c.CoreMediaIP} {
		if ip.IsValid() && ip.IsUnspecified() {
			return fmt.Errorf("%w: media address %v: name a specific IP (it is written into SDP)", ErrConfig, ip)
		}
	}
	switch c.WebRTCICEPolicy {
	case "":
		c.WebRTCICEPolicy = "all"
	case "all", "relay":
	default:
		return fmt.Errorf("%w: WebRTC ICE policy %q: want all or relay", ErrConfig, c.WebRTCICEPolicy)
	}
	if c.RelayPortMin < 0 || c.RelayPortMax > 65535 || c.RelayPortMin > c.RelayPortMax {
		return fmt.Errorf("%w: relay port range %d-%d", ErrConfig, c.RelayPortMin, c.RelayPortMax)
	}
	g := guard.Default()
	if c.Guard != nil {
		g = *c.Guard
	}
	g.Trunks = slices.Clone(g.Trunks)
	if c.Trunk.IsValid() {
		tp := netip.PrefixFrom(c.Trunk.Addr().Unmap(), c.Trunk.Addr().Unmap().BitLen())
		if !slices.ContainsFunc(g.Trunks, func(p netip.Prefix) bool { return p.Contains(tp.Addr()) }) {
			g.Trunks = append(g.Trunks, tp)
		}
	}
	if err := g.Validate(); err != nil {
		return fmt.Errorf("%w: guard: %w", ErrConfig, err)
	}
	c.Guard = &g
	if c.Settings == nil {
		s := DefaultSettings()
		c.Settings = &s
	}
	if c.UserAgent == "" {
		c.UserAgent = "siplab-sbc"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
