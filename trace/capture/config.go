package capture

import (
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"time"
)

// Defaults applied to zero fields of Config.
const (
	DefaultMaxBytes      = 16 << 20 // per file
	DefaultMaxFiles      = 4        // current file + 3 rotated ones
	DefaultSnapLen       = 65535
	DefaultInterfaceWait = 10 * time.Second
	DefaultFlushInterval = 200 * time.Millisecond
	// MaxSnapLen bounds SnapLen: GRO/GSO super-frames on veth stay below it.
	MaxSnapLen = 262144
	// minSnapLen keeps every IPv4/IPv6 + UDP/TCP header in the file.
	minSnapLen = 128
	// fileOverhead is an upper bound for the section header and the
	// interface blocks written at the start of every file.
	fileOverhead = 4096
)

// Filter picks which packets are recorded.
type Filter int

const (
	// FilterAll records every IPv4/IPv6 UDP, TCP and ICMP packet (ICMP
	// errors explain "which packet never arrived"). ARP and IPv6 link-local
	// traffic (neighbour discovery, MLD) are dropped as noise.
	FilterAll Filter = iota
	// FilterSIPRTP records UDP/TCP to or from a SIP port, UDP to or from the
	// RTP port range, IPv4 fragments (a big INVITE arrives in pieces) and
	// ICMP.
	FilterSIPRTP
)

func (f Filter) String() string {
	switch f {
	case FilterAll:
		return "all"
	case FilterSIPRTP:
		return "sip-rtp"
	}
	return fmt.Sprintf("filter(%d)", int(f))
}

// ParseFilter parses "all" or "sip-rtp".
func ParseFilter(s string) (Filter, error) {
	switch s {
	case "all", "":
		return FilterAll, nil
	case "sip-rtp":
		return FilterSIPRTP, nil
	}
	return 0, fmt.Errorf("%w: filter %q: want all or sip-rtp", ErrBadConfig, s)
}

// PortRange is an inclusive UDP port range.
type PortRange struct{ Min, Max uint16 }

// Contains reports whether p is in the range.
func (r PortRange) Contains(p uint16) bool { return p >= r.Min && p <= r.Max }

// Iface names one interface to capture and says how to find it.
type Iface struct {
	// Name is the side as the lab calls it ("lan", "wan", "core"); the
	// pcapng interface is named "<Node>/<Name>".
	Name string
	// Match selects the interface by its IPv4/IPv6 address: a prefix with
	// host bits (192.168.1.1/24) selects exactly that address, a masked
	// prefix (192.168.1.0/24) any address inside it. Exactly one interface
	// must match.
	Match netip.Prefix
	// Index selects the interface by ifindex instead of Match (for callers
	// that already found it, e.g. natrouter.Interface.Index).
	Index int
}

// Config configures a Capturer. Zero values mean the defaults above.
type Config struct {
	// Node is the capture point ("router-a", "alice"): the file name and
	// the prefix of every interface name. Letters, digits, '.', '_', '-'.
	Node string
	// Interfaces to capture; at least one, distinct names and interfaces.
	Interfaces []Iface
	// Dir receives <Node>.pcapng and its rotated predecessors. Empty: no
	// file is written (OnPacket only, e.g. HEP export without files).
	Dir string
	// MaxBytes bounds each file; it must hold at least one full packet.
	MaxBytes int64
	// MaxFiles bounds the number of files per node, the current one
	// included; the oldest is deleted. 1 means one file restarted in place.
	MaxFiles int
	// Filter selects packets; SIPPorts (default 5060, 5061) and RTPPorts
	// (default 10000-20000) are used by FilterSIPRTP.
	Filter   Filter
	SIPPorts []uint16
	RTPPorts PortRange
	// Ignore lists UDP/TCP endpoints whose traffic is not recorded: the HEP
	// collector, so exporting does not fill the capture with HEP packets.
	Ignore []netip.AddrPort
	// SnapLen truncates recorded packets (original length is kept).
	SnapLen int
	// NetNS, when set, is the path of a network namespace
	// (/run/netns/x, /proc/<pid>/ns/net) to capture in instead of the
	// caller's: tests and host-side tools capture containers this way.
	NetNS string
	// InterfaceWait is how long New waits for the interfaces' addresses.
	InterfaceWait time.Duration
	// FlushInterval is how often buffered packets reach the file.
	FlushInterval time.Duration
	// OnPacket, if set, receives every decoded SIP message, RTP/RTCP
	// packet and STUN/ChannelData frame as it is captured (HEP export,
	// which keeps the SIP). It runs on the writer
	// goroutine: it must not block.
	OnPacket func(Packet)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$`)

func (c Config) withDefaults() Config {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxFiles == 0 {
		c.MaxFiles = DefaultMaxFiles
	}
	if c.SnapLen == 0 {
		c.SnapLen = DefaultSnapLen
	}
	if c.SIPPorts == nil {
		c.SIPPorts = []uint16{5060, 5061}
	}
	if c.RTPPorts == (PortRange{}) {
		c.RTPPorts = PortRange{Min: 10000, Max: 20000}
	}
	if c.InterfaceWait == 0 {
		c.InterfaceWait = DefaultInterfaceWait
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	if !nameRE.MatchString(c.Node) {
		return fmt.Errorf("%w: node %q: want 1-64 letters, digits, '.', '_' or '-' (it names the file)", ErrBadConfig, c.Node)
	}
	if len(c.Interfaces) == 0 {
		return fmt.Errorf("%w: no interfaces to capture", ErrBadConfig)
	}
	seen := map[string]bool{}
	for i, f := range c.Interfaces {
		if !nameRE.MatchString(f.Name) {
			return fmt.Errorf("%w: interface %d: name %q: want letters, digits, '.', '_' or '-'", ErrBadConfig, i, f.Name)
		}
		if seen[f.Name] {
			return fmt.Errorf("%w: interface name %q given twice", ErrBadConfig, f.Name)
		}
		seen[f.Name] = true
		switch {
		case f.Match.IsValid() && f.Index != 0:
			return fmt.Errorf("%w: interface %s: give Match or Index, not both", ErrBadConfig, f.Name)
		case !f.Match.IsValid() && f.Index <= 0:
			return fmt.Errorf("%w: interface %s: needs an address selector (Match) or an ifindex", ErrBadConfig, f.Name)
		}
	}
	if c.Dir == "" && c.OnPacket == nil {
		return fmt.Errorf("%w: nothing to do: set Dir (files) or OnPacket (e.g. HEP), or both", ErrBadConfig)
	}
	if c.SnapLen < minSnapLen || c.SnapLen > MaxSnapLen {
		return fmt.Errorf("%w: snaplen %d: want %d..%d", ErrBadConfig, c.SnapLen, minSnapLen, MaxSnapLen)
	}
	if c.MaxFiles < 1 || c.MaxFiles > 1000 {
		return fmt.Errorf("%w: max files %d: want 1..1000", ErrBadConfig, c.MaxFiles)
	}
	// A file must hold its headers and one full packet, otherwise the
	// bound could only be kept by dropping packets.
	if min := int64(c.SnapLen) + fileOverhead + 64; c.MaxBytes < min {
		return fmt.Errorf("%w: max bytes %d: must hold one full packet (snaplen %d + headers): at least %d",
			ErrBadConfig, c.MaxBytes, c.SnapLen, min)
	}
	if c.Filter != FilterAll && c.Filter != FilterSIPRTP {
		return fmt.Errorf("%w: unknown filter %d", ErrBadConfig, int(c.Filter))
	}
	if c.RTPPorts.Min > c.RTPPorts.Max {
		return fmt.Errorf("%w: RTP port range %d-%d is empty", ErrBadConfig, c.RTPPorts.Min, c.RTPPorts.Max)
	}
	if c.InterfaceWait < 0 || c.FlushInterval < 0 {
		return fmt.Errorf("%w: negative duration", ErrBadConfig)
	}
	return nil
}
