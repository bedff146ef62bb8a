package natrouter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/siplab/siplab/internal/await"
)

// Interface is one side of the router as found by address.
type Interface struct {
	Name    string       `json:"name"`
	Index   int          `json:"index"`
	Address netip.Prefix `json:"address"`
}

// Router owns one nftables table and the conntrack entries of the flows it
// translates. All methods are safe for concurrent use.
type Router struct {
	log   *slog.Logger
	table string
	ns    netns.NsHandle // -1 when programming the caller's namespace
	nft   *nftables.Conn
	nl    *netlink.Handle
	lan   Interface
	wan   Interface

	// initial is the startup preset/pinhole/ALG, for Reset.
	initial Settings

	mu      sync.Mutex
	current *ruleset // what is installed, for flushing its sets
	preset  Preset
	pinhole time.Duration
	alg     ALGMode
	algq    *algQueue // the broken ALG's NFQUEUE consumer, when running
	started bool
	closed  bool
}

// New validates cfg, opens netlink handles (in cfg.NetNS if set) and finds
// the LAN and WAN interfaces, waiting up to cfg.InterfaceWait for their
// addresses. It does not touch the ruleset: call Start.
func New(ctx context.Context, cfg Config) (*Router, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	preset, _ := lookupPreset(cfg.Preset)
	alg, _ := lookupALG(cfg.ALG)

	r := &Router{
		log:     cfg.Logger.With("component", "natrouter"),
		table:   cfg.Table,
		ns:      netns.None(),
		preset:  preset,
		pinhole: cfg.Pinhole,
		alg:     alg,
	}
	r.initial = Settings{Preset: preset.Name, Pinhole: cfg.Pinhole, ALG: alg.Spec()}
	var err error
	if cfg.NetNS != "" {
		if r.ns, err = netns.GetFromPath(cfg.NetNS); err != nil {
			return nil, fmt.Errorf("natrouter: open netns %s: %w", cfg.NetNS, err)
		}
	}
	if r.nl, err = netlink.NewHandleAt(r.ns, unix.NETLINK_ROUTE, unix.NETLINK_NETFILTER); err != nil {
		r.closeHandles()
		return nil, fmt.Errorf("natrouter: netlink handle: %w", err)
	}
	nftOpts := []nftables.ConnOption{nftables.AsLasting()}
	if r.ns.IsOpen() {
		nftOpts = append(nftOpts, nftables.WithNetNSFd(int(r.ns)))
	}
	if r.nft, err = nftables.New(nftOpts...); err != nil {
		r.closeHandles()
		return nil, fmt.Errorf("natrouter: nftables connection: %w", err)
	}

	links, err := await.Until(ctx, cfg.InterfaceWait, ErrNoInterface, func() ([2]Interface, error) {
		lan, wan, err := r.findInterfaces(cfg.LAN, cfg.WAN)
		return [2]Interface{lan, wan}, err
	})
	r.lan, r.wan = links[0], links[1]
	if err != nil {
		r.closeHandles()
		return nil, err
	}
	r.log.Info("interfaces found",
		"lan", r.lan.Name, "lan_addr", r.lan.Address, "wan", r.wan.Name, "wan_addr", r.wan.Address)
	return r, nil
}

// findInterfaces picks the interfaces by address, because names and order
// are not stable inside containers.
func (r *Router) findInterfaces(lanSel, wanSel netip.Prefix) (lan, wan Interface, err error) {
	addrs, err := r.nl.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return lan, wan, fmt.Errorf("natrouter: list addresses: %w", err)
	}
	pick := func(role string, sel netip.Prefix) (Interface, error) {
		var found []Interface
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP.To4())
			if !ok {
				continue
			}
			if !matchSelector(sel, ip) {
				continue
			}
			ones, _ := a.Mask.Size()
			link, err := r.nl.LinkByIndex(a.LinkIndex)
			if err != nil {
				return Interface{}, fmt.Errorf("natrouter: link %d: %w", a.LinkIndex, err)
			}
			found = append(found, Interface{Name: link.Attrs().Name, Index: a.LinkIndex, Address: netip.PrefixFrom(ip, ones)})
		}
		switch len(found) {
		case 0:
			return Interface{}, fmt.Errorf("%w: no %s address in %s", ErrNoInterface, role, sel)
		case 1:
			return found[0], nil
		default:
			return Interface{}, fmt.Errorf("%w: %s selector %s matches %d addresses (%v): give the exact address",
				ErrBadConfig, role, sel, len(found), found)
		}
	}
	if lan, err = pick("LAN", lanSel); err != nil {
		return lan, wan, err
	}
	if wan, err = pick("WAN", wanSel); err != nil {
		return lan, wan, err
	}
	if lan.Index == wan.Index {
		return lan, wan, fmt.Errorf("%w: LAN and WAN are the same interface %s", ErrBadConfig, lan.Name)
	}
	return lan, wan, nil
}

// matchSelector: a prefix with host bits selects exactly that address, a
// masked prefix selects any address inside it.
func matchSelector(sel netip.Prefix, ip netip.Addr) bool {
	if sel.Addr() != sel.Masked().Addr() {
		return sel.Addr() == ip
	}
	return sel.Contains(ip)
}

// LAN returns the LAN interface.
func (r *Router) LAN() Interface { return r.lan }

// WAN returns the WAN interface.
func (r *Router) WAN() Interface { return r.wan }

func (r *Router) params(preset Preset, pinhole time.Duration, alg ALGMode) params {
	return params{
		table:   r.table,
		lanIf:   r.lan.Name,
		wanIf:   r.wan.Name,
		lan:     r.lan.Address.Masked(),
		pinhole: pinhole,
		preset:  preset,
		alg:     alg,
	}
}

// Start installs the ruleset and flushes the conntrack entries of the
// router's flows: anything forwarded before NAT was in place keeps a
// non-translated entry that would otherwise leak private addresses.
func (r *Router) Start(ctx context.Context) error {
	if err := r.lockOpen(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	r.enableConntrackAccounting()
	rs := buildRuleset(r.params(r.preset, r.pinhole, r.alg))
	if err := r.switchALG(r.alg, func() error { return rs.install(r.nft) }); err != nil {
		return err
	}
	r.current = rs
	r.started = true
	n, err := r.flushLocked()
	if err != nil {
		return err
	}
	r.log.Info("NAT installed", "table", r.table, "preset", r.preset.Name,
		"pinhole", r.pinhole, "alg", r.alg.Spec(), "flushed", n)
	return nil
}

// Set changes preset, pinhole and/or ALG live: the table is re-programmed in
// one batch, then the router's conntrack entries are flushed. The flush is
// deliberate: existing flows keep the mapping and the timeout policy they
// were created with (and lose the timeout policy altogether once its object
// is replaced), so without it a phone refreshing its registration would
// never see the new behaviour. It returns the number of entries flushed.
func (r *Router) Set(ctx context.Context, s Settings) (int, error) {
	if err := r.lockOpen(ctx); err != nil {
		return 0, err
	}
	defer r.mu.Unlock()
	preset, pinhole, alg := r.preset, r.pinhole, r.alg
	var err error
	if s.Preset != "" {
		if preset, err = lookupPreset(s.Preset); err != nil {
			return 0, err
		}
	}
	if s.Pinhole != 0 {
		if err := validatePinhole(s.Pinhole); err != nil {
			return 0, err
		}
		pinhole = s.Pinhole
	}
	if s.ALG != "" {
		if alg, err = lookupALG(s.ALG); err != nil {
			return 0, err
		}
	}
	rs := buildRuleset(r.params(preset, pinhole, alg))
	if err := r.switchALG(alg, func() error { return rs.install(r.nft) }); err != nil {
		return 0, err
	}
	r.current = rs
	r.preset, r.pinhole, r.alg = preset, pinhole, alg
	r.started = true
	n, err := r.flushLocked()
	if err != nil {
		return 0, err
	}
	r.log.Info("NAT reprogrammed", "preset", preset.Name, "pinhole", pinhole, "alg", alg.Spec(), "flushed", n)
	return n, nil
}

// lockOpen takes r.mu for a call made with ctx, unless the router is
// closed or ctx is done (then r.mu is not held).
func (r *Router) lockOpen(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		r.mu.Unlock()
		return err
	}
	return nil
}

// Initial is what the router started with: Reset puts it back.
func (r *Router) Initial() Settings { return r.initial }

// Reset reprograms the router with its startup preset, pinhole and ALG
// and flushes every mapping (as Set does).
func (r *Router) Reset(ctx context.Context) (int, error) {
	return r.Set(ctx, r.initial)
}

// Flush deletes the conntrack entries of the router's flows: every mapping
// is forgotten and the next outbound packet creates a new one.
func (r *Router) Flush(ctx context.Context) (int, error) {
	if err := r.lockOpen(ctx); err != nil {
		return 0, err
	}
	defer r.mu.Unlock()
	n, err := r.flushLocked()
	if err == nil {
		r.log.Info("mappings flushed", "flushed", n)
	}
	return n, err
}

// routerFlows matches the conntrack entries that belong to the NAT: flows
// from the LAN and flows addressed to the WAN address (inbound attempts,
// which can also block a port from being reused).
type routerFlows struct {
	lan netip.Prefix
	wan netip.Addr
}

func (f routerFlows) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	src, _ := netip.AddrFromSlice(flow.Forward.SrcIP.To4())
	dst, _ := netip.AddrFromSlice(flow.Forward.DstIP.To4())
	rdst, _ := netip.AddrFromSlice(flow.Reverse.DstIP.To4())
	return f.lan.Contains(src) || dst == f.wan || rdst == f.wan
}

func (r *Router) flushLocked() (int, error) {
	// NAT state kept in sets (cone presets) goes with the mappings.
	if r.current != nil && len(r.current.sets) > 0 {
		for _, s := range r.current.sets {
			r.nft.FlushSet(s)
		}
		if err := r.nft.Flush(); err != nil {
			return 0, fmt.Errorf("natrouter: flush NAT sets: %w", err)
		}
	}
	n, err := r.nl.ConntrackDeleteFilters(netlink.ConntrackTable, netlink.FAMILY_V4,
		routerFlows{lan: r.lan.Address.Masked(), wan: r.wan.Address.Addr()})
	if err != nil {
		return int(n), fmt.Errorf("natrouter: flush conntrack: %w", err)
	}
	return int(n), nil
}

// Close removes the router's table and releases its handles. Without the
// table the namespace forwards unfiltered and untranslated, which is why the
// daemon only closes on its way out.
func (r *Router) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.closeALG()
	var err error
	if r.started {
		r.nft.DelTable(&nftables.Table{Name: r.table, Family: nftables.TableFamilyIPv4})
		if ferr := r.nft.Flush(); ferr != nil && !errors.Is(ferr, unix.ENOENT) {
			err = fmt.Errorf("natrouter: delete table %s: %w", r.table, ferr)
		}
	}
	r.closeHandles()
	return err
}

func (r *Router) closeHandles() {
	if r.nft != nil {
		_ = r.nft.CloseLasting()
	}
	if r.nl != nil {
		r.nl.Close()
	}
	if r.ns.IsOpen() {
		_ = r.ns.Close()
	}
}

// unsolicitedDropped reads the counter of dropped unsolicited WAN→LAN packets.
func (r *Router) unsolicitedDropped() (uint64, error) {
	o, err := r.nft.GetObject(&nftables.NamedObj{
		Table: &nftables.Table{Name: r.table, Family: nftables.TableFamilyIPv4},
		Name:  objUnsolicited,
		Type:  nftables.ObjTypeCounter,
	})
	if err != nil {
		return 0, fmt.Errorf("natrouter: read counter %s: %w", objUnsolicited, err)
	}
	if no, ok := o.(*nftables.NamedObj); ok {
		if c, ok := no.Obj.(*expr.Counter); ok {
			return c.Packets, nil
		}
	}
	return 0, fmt.Errorf("natrouter: counter %s has unexpected type %T", objUnsolicited, o)
}

// enableConntrackAccounting turns on per-flow packet counters and start
// timestamps so the status view can show traffic and age. It is best effort:
// in a container /proc/sys is read-only and compose sets these sysctls.
func (r *Router) enableConntrackAccounting() {
	write := func() {
		for _, name := range []string{"nf_conntrack_acct", "nf_conntrack_timestamp"} {
			p := "/proc/sys/net/netfilter/" + name
			if err := os.WriteFile(p, []byte("1"), 0); err != nil {
				r.log.Debug("cannot enable conntrack accounting; set the sysctl instead", "sysctl", p, "err", err)
			}
		}
	}
	if !r.ns.IsOpen() {
		write()
		return
	}
	if err := inNetNS(r.ns, write); err != nil {
		r.log.Debug("cannot enter netns for sysctls", "err", err)
	}
}

// inNetNS runs fn on an OS thread switched into ns. /proc/sys/net resolves
// against the calling thread's namespace, so this reaches ns's sysctls.
func inNetNS(ns netns.NsHandle, fn func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime then discards it instead
			// of reusing a thread stuck in the wrong namespace.
			errc <- err
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	return <-errc
}
