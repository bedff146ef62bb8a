// Package capflags is the one command line for capture that every lab
// daemon shares: -capture-dir, -capture-node, -capture-max-bytes,
// -capture-files, -capture-filter, -hep and -hep-id. A daemon registers the
// flags on its FlagSet, then calls Start with the sides it wants recorded,
// named by the lab's capture-point scheme (router: lan/wan; proxy and PBX:
// internet/core; phone: lan) and selected by the daemon's own addresses,
// because Docker does not keep interface names stable.
//
// It exists so the routers, the proxy, the PBX, the phones and the SBC
// capture the same way (same defaults, same validation, same file layout
// and HEP export) without copies of this code in every CLI.
package capflags

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/siplab/siplab/trace/capture"
)

// ErrUsage marks errors caused by the capture flags themselves; a CLI maps
// it to its own usage error (exit code 2).
var ErrUsage = errors.New("capture flags")

// Flags holds the parsed capture flags of one daemon.
type Flags struct {
	dir      *string
	node     *string
	maxBytes *int64
	files    *int
	filter   *string
	hep      *string
	hepID    *uint
}

// Add registers the capture flags on fs. what says what one file holds, for
// the help text ("both router sides", "the phone's LAN side").
func Add(fs *flag.FlagSet, what string) *Flags {
	return &Flags{
		dir:      fs.String("capture-dir", "", "write <node>.pcapng with "+what+" into this folder (off when empty)"),
		node:     fs.String("capture-node", "", "capture point name: file name and interface prefix, e.g. router-a, proxy, alice (default: hostname)"),
		maxBytes: fs.Int64("capture-max-bytes", capture.DefaultMaxBytes, "rotate the capture file at this size"),
		files:    fs.Int("capture-files", capture.DefaultMaxFiles, "capture files kept per node, the current one included"),
		filter:   fs.String("capture-filter", "all", "what to record: all (UDP, TCP, ICMP) or sip-rtp (SIP ports 5060/5061, UDP 10000-20000, ICMP)"),
		hep:      fs.String("hep", "", "send SIP as HEPv3 to this collector ip:port, e.g. 203.0.113.99:9060 (off when empty)"),
		hepID:    fs.Uint("hep-id", 0, "HEP capture agent ID (default: derived from the capture node name)"),
	}
}

// Enabled reports whether any capture output (file or HEP) was asked for.
func (f *Flags) Enabled() bool { return *f.dir != "" || *f.hep != "" }

// Side selects one interface by the daemon's own address on it: exactly
// that address, whatever the prefix length of the interface.
func Side(name string, addr netip.Addr) capture.Iface {
	addr = addr.Unmap()
	return capture.Iface{Name: name, Match: netip.PrefixFrom(addr, addr.BitLen())}
}

// SideAt selects a side by the IP of a daemon's listen address ("ip:port"
// or a bare IP). An address without an IP (":5060", all interfaces) names
// no side: capture needs to know which interface is which.
func SideAt(name, listen string) (capture.Iface, error) {
	if ap, err := netip.ParseAddrPort(listen); err == nil {
		listen = ap.Addr().String()
	}
	a, err := netip.ParseAddr(listen)
	if err != nil || a.IsUnspecified() {
		return capture.Iface{}, fmt.Errorf("%w: capture side %s: %q has no interface address (give ip:port)", ErrUsage, name, listen)
	}
	return Side(name, a), nil
}

// At names a daemon side by the address it listens on (SideAt).
type At struct{ Name, Listen string }

// StartAt begins capturing the sides at their listen addresses, as Start
// does. A side without an address, or on an interface an earlier side
// already records (a relay on the SIP address), is left out. Nothing
// happens unless Enabled; an address with no interface is ErrUsage.
func (f *Flags) StartAt(ctx context.Context, log *slog.Logger, at ...At) (stop func(), err error) {
	if !f.Enabled() {
		return func() {}, nil
	}
	var sides []capture.Iface
	for _, a := range at {
		if a.Listen == "" {
			continue
		}
		side, err := SideAt(a.Name, a.Listen)
		if err != nil {
			return func() {}, err
		}
		if !slices.ContainsFunc(sides, func(s capture.Iface) bool { return s.Match == side.Match }) {
			sides = append(sides, side)
		}
	}
	return f.Start(ctx, sides, log)
}
