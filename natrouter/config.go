package natrouter

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

const (
	// DefaultPreset is the behaviour of most consumer routers (plain Linux
	// masquerade): endpoint-independent mapping, address-and-port-dependent
	// filtering.
	DefaultPreset = "port-restricted"
	// DefaultPinhole is generous on purpose: the lab must work out of the box,
	// interns shorten it to provoke lost inbound calls.
	DefaultPinhole = 120 * time.Second
	// DefaultALG is no SIP ALG at all.
	DefaultALG = "off"
	// DefaultTable is the nftables table the router owns.
	DefaultTable = "siplab_nat"
	// DefaultInterfaceWait bounds how long New waits for the LAN and WAN
	// addresses to appear (Docker may attach networks just after start).
	DefaultInterfaceWait = 10 * time.Second

	// MinPinhole and MaxPinhole bound the pinhole timeout. The kernel keeps
	// conntrack timeouts in whole seconds.
	MinPinhole = 1 * time.Second
	MaxPinhole = 24 * time.Hour
)

// Config configures a Router. The zero value of each optional field means its
// default.
type Config struct {
	// LAN selects the LAN interface: the interface holding an IPv4 address
	// inside this prefix. If the prefix has host bits set (192.168.1.1/24) the
	// interface must hold exactly that address. Required.
	LAN netip.Prefix
	// WAN selects the WAN interface the same way. Required.
	WAN netip.Prefix

	// Preset is the NAT behaviour (see Presets). Default DefaultPreset.
	Preset string
	// Pinhole is the UDP mapping lifetime after the last packet, used for
	// both unreplied and replied flows. Default DefaultPinhole.
	Pinhole time.Duration
	// ALG is the SIP ALG mode spec: off, kernel, broken or
	// broken:<fault>+<fault> (see ParseALG, ALGModes). Default DefaultALG.
	ALG string

	// Table is the nftables table name. Default DefaultTable.
	Table string
	// NetNS is the path of a network namespace to program (e.g.
	// /run/netns/x). Empty means the caller's namespace, which is what the
	// daemon in a container wants; tests use it to drive a router namespace.
	NetNS string
	// InterfaceWait bounds the wait for the LAN/WAN addresses. Default
	// DefaultInterfaceWait.
	InterfaceWait time.Duration

	// Logger receives the router's logs. Default slog.Default().
	Logger *slog.Logger
}

// Settings are the live-changeable knobs. Empty/zero fields mean "leave as
// is". SettingsRequest is their wire form.
type Settings struct {
	Preset  string
	Pinhole time.Duration
	ALG     string
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.Preset == "" {
		out.Preset = DefaultPreset
	}
	if out.Pinhole == 0 {
		out.Pinhole = DefaultPinhole
	}
	if out.ALG == "" {
		out.ALG = DefaultALG
	}
	if out.Table == "" {
		out.Table = DefaultTable
	}
	if out.InterfaceWait == 0 {
		out.InterfaceWait = DefaultInterfaceWait
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	return out
}

func (c *Config) validate() error {
	if !c.LAN.IsValid() || !c.LAN.Addr().Is4() {
		return fmt.Errorf("%w: LAN must be an IPv4 prefix such as 192.168.1.0/24 or 192.168.1.1/24", ErrBadConfig)
	}
	if !c.WAN.IsValid() || !c.WAN.Addr().Is4() {
		return fmt.Errorf("%w: WAN must be an IPv4 prefix such as 203.0.113.0/24 or 203.0.113.2/24", ErrBadConfig)
	}
	if c.LAN.Masked().Overlaps(c.WAN.Masked()) {
		return fmt.Errorf("%w: LAN %s and WAN %s overlap", ErrBadConfig, c.LAN, c.WAN)
	}
	if _, err := lookupPreset(c.Preset); err != nil {
		return err
	}
	if _, err := lookupALG(c.ALG); err != nil {
		return err
	}
	if err := validatePinhole(c.Pinhole); err != nil {
		return err
	}
	if c.InterfaceWait < 0 {
		return fmt.Errorf("%w: negative interface wait %s", ErrBadConfig, c.InterfaceWait)
	}
	if len(c.Table) > 255 {
		return fmt.Errorf("%w: table name too long", ErrBadConfig)
	}
	return nil
}

func validatePinhole(d time.Duration) error {
	if d < MinPinhole || d > MaxPinhole {
		return fmt.Errorf("%w: %s is outside [%s, %s]", ErrBadPinhole, d, MinPinhole, MaxPinhole)
	}
	if d%time.Second != 0 {
		// The kernel stores whole seconds; rounding silently would make the
		// status lie about what is installed.
		return fmt.Errorf("%w: %s is not a whole number of seconds", ErrBadPinhole, d)
	}
	return nil
}
