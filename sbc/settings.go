package sbc

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/siplab/siplab/internal/live"
	"github.com/siplab/siplab/media/mediarelay"
)

// Live setting names (`sbc set NAME VALUE`).
const (
	SettingLatching          = "latching"
	SettingNATExpires        = "nat_expires"
	SettingKeepaliveInterval = "keepalive_interval"
	SettingTopologyHiding    = "topology_hiding"
	SettingWebRTCICEServers  = "webrtc_ice_servers"
)

// Settings are the knobs an intern turns while calls run. Each is read at
// the moment it matters (every RTP packet, every REGISTER, every ping
// round), so a change needs no restart.
type Settings struct {
	// Latching is the media relay's mode: learn (send to where a side's
	// RTP comes from), strict (only the SDP address), off (trust the SDP:
	// a NATed phone's private SDP address gets no audio).
	Latching mediarelay.Latching `json:"latching"`
	// NATExpires is the registration lifetime granted to a phone behind
	// NAT, so it refreshes (and re-opens its pinhole) that often.
	NATExpires time.Duration `json:"nat_expires"`
	// KeepaliveInterval is how often the SBC pings each NATed
	// registration with OPTIONS from its access socket; 0 turns it off.
	KeepaliveInterval time.Duration `json:"keepalive_interval"`
	// TopologyHiding off lets through what a careless border element
	// leaks without breaking routing: the SDP origin line (o=) as the core
	// wrote it, IP hosts in From/To, core addresses in text bodies, the
	// core's Server/User-Agent and Warning headers. Via, Contact,
	// Record-Route and Call-ID stay rebuilt: calls keep working.
	TopologyHiding bool `json:"topology_hiding"`
	// WebRTCICEServers are the stun:/turn: URLs the browser phone page is
	// given at load time (-webrtc-ice-servers): read at every page load,
	// so a change reaches the next browser that opens the page. Empty:
	// the browser gathers host candidates only. Comma-separated (a string
	// keeps Settings comparable); ICEServers splits it.
	WebRTCICEServers string `json:"webrtc_ice_servers"`
}

// ICEServers is WebRTCICEServers as a list.
func (s Settings) ICEServers() []string {
	if s.WebRTCICEServers == "" {
		return nil
	}
	return strings.Split(s.WebRTCICEServers, ",")
}

// DefaultSettings: latching learn, 60 s NAT expiry, 15 s pings.
func DefaultSettings() Settings {
	return Settings{Latching: mediarelay.Learn, NATExpires: 60 * time.Second, KeepaliveInterval: 15 * time.Second, TopologyHiding: true}
}

// SettingNames lists the live settings in their documented order.
func SettingNames() []string {
	return []string{SettingLatching, SettingNATExpires, SettingKeepaliveInterval, SettingTopologyHiding, SettingWebRTCICEServers}
}

func normName(n string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(n)), "-", "_")
}

// Set parses value into the named setting; s is unchanged on error.
func (s *Settings) Set(name, value string) error {
	next := *s
	switch normName(name) {
	case SettingLatching:
		l, err := mediarelay.ParseLatching(value)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadValue, err)
		}
		next.Latching = l
	case SettingNATExpires:
		d, err := live.Seconds(value)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadValue, err)
		}
		if d < 10*time.Second || d > time.Hour {
			return fmt.Errorf("%w: nat_expires %s (want 10s-1h)", ErrBadValue, d)
		}
		next.NATExpires = d
	case SettingKeepaliveInterval:
		d, err := live.Seconds(value)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadValue, err)
		}
		if d != 0 && d < time.Second {
			return fmt.Errorf("%w: keepalive_interval %s (0 = off, else at least 1s)", ErrBadValue, d)
		}
		next.KeepaliveInterval = d
	case SettingTopologyHiding:
		on, err := live.OnOff(value)
		if err != nil {
			return fmt.Errorf("%w: topology_hiding %w", ErrBadValue, err)
		}
		next.TopologyHiding = on
	case SettingWebRTCICEServers:
		urls, err := ParseICEServers(value)
		if err != nil {
			return err
		}
		next.WebRTCICEServers = strings.Join(urls, ",")
	default:
		return fmt.Errorf("%w %q (known: %s)", ErrUnknownSetting, name, strings.Join(SettingNames(), ", "))
	}
	*s = next
	return nil
}

// Get formats the named setting as Set reads it.
func (s Settings) Get(name string) (string, error) {
	switch normName(name) {
	case SettingLatching:
		return string(s.Latching), nil
	case SettingNATExpires:
		return s.NATExpires.String(), nil
	case SettingKeepaliveInterval:
		if s.KeepaliveInterval == 0 {
			return "off", nil
		}
		return s.KeepaliveInterval.String(), nil
	case SettingTopologyHiding:
		if s.TopologyHiding {
			return "on", nil
		}
		return "off", nil
	case SettingWebRTCICEServers:
		if s.WebRTCICEServers == "" {
			return "none", nil
		}
		return s.WebRTCICEServers, nil
	}
	return "", fmt.Errorf("%w %q (known: %s)", ErrUnknownSetting, name, strings.Join(SettingNames(), ", "))
}

// All is every setting formatted, for `sbc get`.
func (s Settings) All() map[string]string {
	out := map[string]string{}
	for _, n := range SettingNames() {
		out[n], _ = s.Get(n)
	}
	return out
}

// ParseICEServers reads a comma-separated list of stun:/turn: URLs
// (host:port, no credentials: TURN uses the user's own SIP password);
// "none" or "" is the empty list.
func ParseICEServers(v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "none" || v == "off" {
		return nil, nil
	}
	var out []string
	for _, u := range strings.Split(v, ",") {
		u = strings.TrimSpace(u)
		scheme, hostport, ok := strings.Cut(u, ":")
		if !ok || (scheme != "stun" && scheme != "turn") {
			return nil, fmt.Errorf("%w: ICE server %q: want stun:host:port or turn:host:port", ErrBadValue, u)
		}
		if _, err := netip.ParseAddrPort(hostport); err != nil {
			return nil, fmt.Errorf("%w: ICE server %q: want an IP:port (the lab's own servers, no DNS): %w", ErrBadValue, u, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// settingsBox holds the live settings, read lock-free: the media relay
// reads the latching mode for every RTP packet.
type settingsBox struct{ live.Value[Settings] }

func (b *settingsBox) get() Settings { return b.Load() }
