package capture

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/siplab/siplab/internal/await"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Link is a captured interface as found.
type Link struct {
	Side    string       // Iface.Name: "lan"
	Name    string       // pcapng interface name: "router-a/lan"
	Dev     string       // kernel name inside the namespace: "eth1"
	Index   int          // ifindex
	Address netip.Prefix // the address that matched (zero when found by Index)
}

// Capturer captures a node's interfaces into its pcapng file.
type Capturer struct {
	cfg   Config
	log   *slog.Logger
	ns    netns.NsHandle
	nl    *netlink.Handle
	links []Link
	match matcher
	out   *rotor              // nil when Config.Dir is empty
	tps   []*afpacket.TPacket // opened in New, owned by Run's readers once it starts

	mu      sync.Mutex
	running bool
	closed  bool
}

// ring geometry per interface: 4 blocks of 1 MiB. TPACKET_V3 packs packets
// of any size up to a block, so a 64 KiB GRO super-frame fits; a block is
// handed over after blockTimeout even when not full, which bounds latency.
const (
	ringBlockSize  = 1 << 20
	ringFrameSize  = 1 << 16
	ringBlocks     = 4
	blockTimeout   = 50 * time.Millisecond
	pollTimeout    = 250 * time.Millisecond // how often readers look at ctx
	reopenPause    = 500 * time.Millisecond
	maxReopenPause = 5 * time.Second
)

// New validates cfg, finds the interfaces by address (waiting up to
// cfg.InterfaceWait for them), opens the capture file and the capture
// sockets. Packets queue in the sockets' rings until Run reads them.
func New(ctx context.Context, cfg Config) (*Capturer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Capturer{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "capture", "node", cfg.Node),
		ns:    netns.None(),
		match: newMatcher(cfg),
	}
	var err error
	if cfg.NetNS != "" {
		if c.ns, err = netns.GetFromPath(cfg.NetNS); err != nil {
			return nil, fmt.Errorf("capture: open netns %s: %w", cfg.NetNS, err)
		}
	}
	if c.nl, err = netlink.NewHandleAt(c.ns, unix.NETLINK_ROUTE); err != nil {
		c.release()
		return nil, fmt.Errorf("capture: netlink handle: %w", err)
	}
	if c.links, err = await.Until(ctx, cfg.InterfaceWait, ErrNoInterface, c.findLinks); err != nil {
		c.release()
		return nil, err
	}
	if cfg.Dir != "" {
		ifaces := make([]pcapgo.NgInterface, len(c.links))
		for i, l := range c.links {
			desc := fmt.Sprintf("%s on %s (ifindex %d)", l.Name, l.Dev, l.Index)
			if l.Address.IsValid() {
				desc += " " + l.Address.String()
			}
			ifaces[i] = ngInterface(l.Name, desc, cfg.SnapLen)
		}
		if c.out, err = newRotor(cfg.Dir, cfg.Node, cfg.MaxBytes, cfg.MaxFiles, ifaces); err != nil {
			c.release()
			return nil, err
		}
	}
	// The sockets open here, not in Run: packets from now on are queued in
	// their rings, so a daemon that starts Run and then its own work (the
	// router installing NAT) misses nothing in between.
	for _, l := range c.links {
		tp, err := c.open(l)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.tps = append(c.tps, tp)
		c.log.Info("capturing", "iface", l.Name, "dev", l.Dev, "addr", l.Address)
	}
	return c, nil
}

// Links returns the interfaces being captured, in pcapng interface order.
func (c *Capturer) Links() []Link { return append([]Link(nil), c.links...) }

// File returns the current capture file, or "" without Config.Dir.
func (c *Capturer) File() string {
	if c.cfg.Dir == "" {
		return ""
	}
	return FileName(c.cfg.Dir, c.cfg.Node)
}

func (c *Capturer) findLinks() ([]Link, error) {
	addrs, err := c.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("capture: list addresses: %w", err)
	}
	var links []Link
	used := map[int]string{}
	for _, f := range c.cfg.Interfaces {
		l := Link{Side: f.Name, Name: c.cfg.Node + "/" + f.Name, Index: f.Index}
		if f.Match.IsValid() {
			var found []Link
			for _, a := range addrs {
				ip, ok := netip.AddrFromSlice(a.IP)
				if !ok {
					continue
				}
				ip = ip.Unmap()
				if !matchSelector(f.Match, ip) {
					continue
				}
				ones, _ := a.Mask.Size()
				m := l
				m.Index, m.Address = a.LinkIndex, netip.PrefixFrom(ip, ones)
				found = append(found, m)
			}
			switch len(found) {
			case 0:
				return nil, fmt.Errorf("%w: no address in %s for %s", ErrNoInterface, f.Match, l.Name)
			case 1:
				l = found[0]
			default:
				return nil, fmt.Errorf("%w: %s: selector %s matches %d addresses: give the exact address",
					ErrBadConfig, l.Name, f.Match, len(found))
			}
		}
		link, err := c.nl.LinkByIndex(l.Index)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				return nil, fmt.Errorf("%w: ifindex %d for %s", ErrNoInterface, l.Index, l.Name)
			}
			return nil, fmt.Errorf("capture: link %d: %w", l.Index, err)
		}
		attrs := link.Attrs()
		if attrs.EncapType != "ether" {
			return nil, fmt.Errorf("%w: %s (%s) is %q, want an Ethernet-framed link", ErrUnsupportedLink, l.Name, attrs.Name, attrs.EncapType)
		}
		l.Dev = attrs.Name
		if other, dup := used[l.Index]; dup {
			return nil, fmt.Errorf("%w: %s and %s are the same interface %s", ErrBadConfig, other, l.Name, l.Dev)
		}
		used[l.Index] = l.Name
		links = append(links, l)
	}
	return links, nil
}

// matchSelector: a prefix with host bits selects exactly that address, a
// masked prefix any address inside it (the natrouter -lan/-wan convention).
func matchSelector(sel netip.Prefix, ip netip.Addr) bool {
	if sel.Addr() != sel.Masked().Addr() {
		return sel.Addr() == ip
	}
	return sel.Contains(ip)
}

type frame struct {
	link int
	ci   gopacket.CaptureInfo
	data []byte
}

// Run captures until ctx is done (returns nil) or every interface has gone
// (returns ErrInterfaceGone) or the file cannot be written. It closes the
// file and the sockets before returning. Run may be called once.
func (c *Capturer) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.closed || c.running {
		c.mu.Unlock()
		return ErrClosed
	}
	c.running = true
	tps := c.tps
	c.tps = nil // the readers close them
	c.mu.Unlock()
	defer c.shutdown()

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	frames := make(chan frame, 1024)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i, tp := range tps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.read(ctx, i, tp, frames); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(frames) }()

	err := c.write(ctx, frames)
	cancel()
	for range frames { // let readers finish
	}
	if err != nil {
		return err
	}
	if parent.Err() != nil {
		return nil
	}
	// Every reader stopped on its own: the links are gone or broken.
	return firstErr
}

// write is the single writer: reorder, file, decoder for OnPacket, periodic
// flush.
//
// Each interface has its own ring, handed over in blocks, so frames from
// two interfaces arrive out of time order (the WAN copy of a packet before
// the LAN copy it came from). Wireshark shows frames in file order, so
// frames wait reorderWindow in a heap and are written in timestamp order.
func (c *Capturer) write(ctx context.Context, frames <-chan frame) error {
	var dec *Decoder
	if c.cfg.OnPacket != nil {
		dec = NewDecoder()
	}
	var q frameHeap
	emit := func(f frame) error {
		if c.out != nil {
			if err := c.out.write(f.ci, f.data); err != nil {
				c.log.Error("capture file write failed: capture stops", "err", err)
				return err
			}
		}
		if dec != nil {
			for _, p := range dec.Decode(c.links[f.link].Name, f.ci.Timestamp, f.data) {
				c.cfg.OnPacket(p)
			}
		}
		return nil
	}
	// release writes the frames older than the window, or all of them.
	release := func(all bool) error {
		horizon := time.Now().Add(-reorderWindow)
		for q.Len() > 0 && (all || q[0].ci.Timestamp.Before(horizon)) {
			if err := emit(heap.Pop(&q).(frame)); err != nil {
				return err
			}
		}
		return nil
	}
	tick := time.NewTicker(min(c.cfg.FlushInterval, reorderWindow/2))
	defer tick.Stop()
	lastFlush := time.Now()
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				if err := release(true); err != nil {
					return err
				}
				return c.flush()
			}
			heap.Push(&q, f)
			// Bound memory if the clock and the timestamps disagree.
			if q.Len() > maxQueued {
				if err := emit(heap.Pop(&q).(frame)); err != nil {
					return err
				}
			}
		case <-tick.C:
			if err := release(false); err != nil {
				return err
			}
			if time.Since(lastFlush) >= c.cfg.FlushInterval {
				lastFlush = time.Now()
				if err := c.flush(); err != nil {
					return err
				}
			}
		case <-ctx.Done():
			// Readers notice within pollTimeout; keep draining until they
			// have all stopped so nothing captured is lost.
			for f := range frames {
				heap.Push(&q, f)
			}
			if err := release(true); err != nil {
				return err
			}
			return c.flush()
		}
	}
}

// reorderWindow is how long a frame waits for earlier frames from other
// interfaces: several TPACKET_V3 block timeouts.
const (
	reorderWindow = 4 * blockTimeout
	maxQueued     = 100000
)

type frameHeap []frame

func (h frameHeap) Len() int           { return len(h) }
func (h frameHeap) Less(i, j int) bool { return h[i].ci.Timestamp.Before(h[j].ci.Timestamp) }
func (h frameHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *frameHeap) Push(x any)        { *h = append(*h, x.(frame)) }
func (h *frameHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	old[len(old)-1] = frame{}
	*h = old[:len(old)-1]
	return f
}

func (c *Capturer) flush() error {
	if c.out == nil {
		return nil
	}
	return c.out.flush()
}

// open creates the AF_PACKET socket for a link inside the capture namespace:
// a packet socket stays bound to the namespace it was created in.
func (c *Capturer) open(l Link) (*afpacket.TPacket, error) {
	var tp *afpacket.TPacket
	// afpacket binds by name: look the name up again now, by index, in
	// case the interface was renamed since New.
	link, err := c.nl.LinkByIndex(l.Index)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (ifindex %d): %w", ErrNoInterface, l.Name, l.Index, err)
	}
	dev := link.Attrs().Name
	err = c.inNS(func() error {
		var err error
		tp, err = afpacket.NewTPacket(
			afpacket.OptInterface(dev),
			afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
			afpacket.OptBlockSize(ringBlockSize),
			afpacket.OptFrameSize(ringFrameSize),
			afpacket.OptNumBlocks(ringBlocks),
			afpacket.OptBlockTimeout(blockTimeout),
			afpacket.OptPollTimeout(pollTimeout),
		)
		if err != nil {
			return fmt.Errorf("capture: open AF_PACKET on %s (%s): %w", l.Name, dev, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	prog, err := kernelFilter(c.cfg.SnapLen)
	if err == nil {
		err = tp.SetBPF(prog)
	}
	if err != nil {
		tp.Close()
		return nil, fmt.Errorf("capture: attach filter on %s: %w", l.Name, err)
	}
	return tp, nil
}

// read pumps one link's packets into frames. On a socket error it checks
// whether the link still exists: afpacket reports a vanished interface as
// poll errors forever, so spinning on them would burn a core. A link that
// still exists (down, then up again) gets a new socket after a pause.
func (c *Capturer) read(ctx context.Context, idx int, tp *afpacket.TPacket, frames chan<- frame) error {
	l := c.links[idx]
	defer func() {
		if tp != nil {
			tp.Close()
		}
	}()
	failures := 0
	for {
		if ctx.Err() != nil {
			return nil
		}
		if tp == nil {
			if !c.linkExists(l.Index) {
				c.log.Warn("interface gone: capture on it stopped", "iface", l.Name, "dev", l.Dev)
				return fmt.Errorf("%w: %s", ErrInterfaceGone, l.Name)
			}
			failures++
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(min(time.Duration(failures)*reopenPause, maxReopenPause)):
			}
			var err error
			if tp, err = c.open(l); err != nil {
				c.log.Debug("reopen failed", "iface", l.Name, "err", err)
				tp = nil
				continue
			}
		}
		data, ci, err := tp.ZeroCopyReadPacketData()
		switch {
		case err == nil:
		case errors.Is(err, afpacket.ErrTimeout):
			failures = 0
			continue
		default:
			if failures == 0 {
				c.log.Warn("capture socket error", "iface", l.Name, "err", err)
			}
			tp.Close()
			tp = nil
			continue
		}
		failures = 0
		if !c.match.keep(data) {
			continue
		}
		n := min(len(data), c.cfg.SnapLen)
		f := frame{link: idx, ci: ci, data: append([]byte(nil), data[:n]...)}
		f.ci.CaptureLength, f.ci.InterfaceIndex = n, idx
		if f.ci.Length < n {
			f.ci.Length = n
		}
		select {
		case frames <- f:
		case <-ctx.Done():
			return nil
		}
	}
}

func (c *Capturer) linkExists(index int) bool {
	_, err := c.nl.LinkByIndex(index)
	var nf netlink.LinkNotFoundError
	return !errors.As(err, &nf)
}

// inNS runs fn on an OS thread switched into the capture namespace.
func (c *Capturer) inNS(fn func() error) error {
	if !c.ns.IsOpen() {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("capture: current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(c.ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("capture: enter netns: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it dies with this goroutine
			// instead of running other goroutines in the wrong namespace.
			errc <- errors.Join(ferr, fmt.Errorf("capture: leave netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Close releases a Capturer whose Run was never called (or has returned).
// While Run runs, cancel its context instead: Run closes everything itself.
func (c *Capturer) Close() error {
	c.mu.Lock()
	running := c.running
	c.mu.Unlock()
	if running {
		return nil
	}
	return c.shutdown()
}

func (c *Capturer) shutdown() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var err error
	if c.out != nil {
		err = c.out.close()
	}
	for _, tp := range c.tps {
		tp.Close()
	}
	c.tps = nil
	c.release()
	return err
}

func (c *Capturer) release() {
	if c.nl != nil {
		c.nl.Close()
	}
	if c.ns.IsOpen() {
		_ = c.ns.Close()
	}
}
