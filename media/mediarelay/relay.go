// Package mediarelay is the lab's one per-call RTP relay, the SBC's and
// the PBX's: two faces (side 0 towards the caller, side 1 towards the
// callee), each an RTP/RTCP socket pair, relaying every valid packet from
// one side to the other with latching ("comedia") so phones behind NAT get
// two-way audio. A PBX adds holds it answers itself, music on hold
// (Inject) and transfers (ReplacePeer).
package mediarelay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// kind is which socket of a side a packet used.
type kind int

const (
	kindRTP kind = iota
	kindRTCP
)

var kindNames = [2]string{"rtp", "rtcp"}

// maxDatagram is the largest packet relayed. Reads use a buffer one byte
// larger, so a datagram that filled it was truncated and is dropped rather
// than relayed cut short.
const maxDatagram = 2048

// Relay is one call's media relay. All methods are safe for concurrent use.
type Relay struct {
	cfg Config
	log *slog.Logger

	// mu guards sides. One lock per call is enough: a call is at most four
	// streams of 50 packets a second, and the critical section is a few
	// comparisons and counter increments (no I/O, no allocation).
	mu    sync.Mutex
	sides [2]side

	// lastMode is the mode the last packet saw, for Stats: Stats never calls
	// the mode function, so the SBC may ask for stats while holding the
	// lock its mode function takes.
	lastMode atomic.Uint32

	closed    atomic.Bool
	done      chan struct{} // closed by Close: ends the injector
	injecting bool          // the injector runs; guarded by mu
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// side is the relay's face towards one phone.
type side struct {
	// sdp is the last usable RTP address this side's SDP announced; a hold
	// SDP (0.0.0.0 or port 0) sets hold and keeps sdp, so resuming to the
	// same address keeps the latch.
	sdp  netip.AddrPort
	hold bool
	// holding: this side's phone put its peer on hold and the relay's
	// owner answered that itself (a PBX): nothing is relayed from or to
	// it (SetHolding).
	holding bool
	// inj feeds this side instead of its peer while set (Inject).
	inj Source
	s   [2]stream // RTP, RTCP
}

// stream is one socket of a side and its latch.
type stream struct {
	conn  *net.UDPConn
	local netip.AddrPort

	latched     netip.AddrPort
	latchedSeen time.Time // last packet from latched
	// old is the source of the phone this side faced before ReplacePeer
	// (a transfer): its packets are dropped, never relayed or latched onto.
	old netip.AddrPort
	// draining is the address an honest peer's SDP moved away from
	// (SetRemote): dropped like old until drainUntil.
	draining   netip.AddrPort
	drainUntil time.Time
	// cand is a source trying to take over a silent latch and candN the
	// packets it sent in a row since.
	cand  netip.AddrPort
	candN int

	hdr    rtp.Header // reused by validation so the packet path does not allocate
	logged uint8      // bit per dropReason already logged once
	st     StreamStats
}

// New binds side 0's socket pair on ip0 and side 1's on ip1 in the default
// port range and starts relaying. mode is read for every packet (nil:
// always Learn); log may be nil.
func New(ip0, ip1 netip.Addr, mode func() Latching, log *slog.Logger) (*Relay, error) {
	return NewWithConfig(Config{IP: [2]netip.Addr{ip0, ip1}, Mode: mode, Log: log})
}

// NewWithConfig is New with every knob (port range, re-latch timing).
func NewWithConfig(cfg Config) (*Relay, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Relay{cfg: cfg, log: cfg.Log, done: make(chan struct{})}
	for i := range r.sides {
		a, b, err := bindPair(cfg.IP[i], cfg.PortMin, cfg.PortMax)
		if err != nil {
			r.closeConns()
			return nil, fmt.Errorf("mediarelay: side %d: %w", i, err) // ErrNoPorts or the bind error
		}
		for k, c := range [2]*net.UDPConn{a, b} {
			s := &r.sides[i].s[k]
			s.conn = c
			ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
			s.local = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	for i := range r.sides {
		for k := range r.sides[i].s {
			r.wg.Go(func() { r.readLoop(i, kind(k)) })
		}
	}
	r.log.Debug("media relay open", "side0", r.sides[0].s[kindRTP].local, "side1", r.sides[1].s[kindRTP].local)
	return r, nil
}

// Local is the RTP address to write into the SDP sent to side's peer
// (RTCP is on its port + 1). An invalid side gives the zero AddrPort.
func (r *Relay) Local(side int) netip.AddrPort {
	if side != 0 && side != 1 {
		return netip.AddrPort{}
	}
	return r.sides[side].s[kindRTP].local // set once in New: no lock needed
}

// SetRemote records the RTP address side's SDP announced (offer, answer or
// a re-INVITE). 0.0.0.0, port 0 or the zero AddrPort put the side on hold:
// nothing is sent to it until a usable address comes. A new address
// (different from the last usable one) re-arms learn mode's latch on both
// of the side's sockets, because the phone may have moved; the same
// address after a hold keeps the latch.
func (r *Relay) SetRemote(side int, ap netip.AddrPort) {
	if side != 0 && side != 1 {
		r.log.Warn("media relay: SetRemote on invalid side ignored", "side", side)
		return
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	r.mu.Lock()
	defer r.mu.Unlock()
	sd := &r.sides[side]
	if !ap.IsValid() || ap.Addr().IsUnspecified() || ap.Port() == 0 {
		if !sd.hold {
			r.log.Info("media hold", "side", side, "sdp", ap)
		}
		sd.hold = true
		return
	}
	sd.hold = false
	if ap == sd.sdp {
		return
	}
	r.log.Info("media sdp address", "side", side, "old", sd.sdp, "new", ap)
	// A peer latched where its SDP said (not behind NAT) that moves its
	// media elsewhere — a PBX putting a phone on its relay for music on
	// hold — still has packets in flight from the old address; they
	// must not take the re-armed latch, or media keeps going to the old
	// address. They are dropped for RelatchAfter. A NATed peer's latch
	// is not its SDP address: its re-offers keep the old rule.
	now := time.Now()
	for k := range sd.s {
		s := &sd.s[k]
		if s.latched.IsValid() && sd.sdp.IsValid() && s.latched == sd.sdpFor(kind(k)) && r.cfg.RelatchAfter > 0 {
			s.draining, s.drainUntil = s.latched, now.Add(r.cfg.RelatchAfter)
		}
	}
	sd.sdp = ap
	for k := range sd.s {
		if s := &sd.s[k]; s.draining == sd.sdpFor(kind(k)) {
			s.draining = netip.AddrPort{} // moved back: it is the peer again
		}
	}
	sd.rearm()
}

// rearm forgets both streams' latches: the next valid packet latches.
func (sd *side) rearm() {
	for k := range sd.s {
		s := &sd.s[k]
		s.latched, s.cand, s.candN = netip.AddrPort{}, netip.AddrPort{}, 0
	}
}

// Stats snapshots both sides. sending_to follows the mode the last packet
// saw (the mode only matters once a packet latched, so it is never stale
// in a way that shows a wrong destination for long).
func (r *Relay) Stats() [2]SideStats {
	mode := modes[r.lastMode.Load()]
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [2]SideStats
	for i := range r.sides {
		sd := &r.sides[i]
		out[i].Hold = sd.hold
		out[i].Holding = sd.holding
		out[i].Injecting = sd.inj != nil
		for k := range sd.s {
			s := &sd.s[k]
			st := s.st
			st.Local = s.local
			st.SDPRemote = sd.sdpFor(kind(k))
			st.Latched = s.latched
			if !sd.hold {
				st.SendingTo = r.destLocked(i, kind(k), mode)
			}
			if k == int(kindRTP) {
				out[i].StreamStats = st
			} else {
				out[i].RTCP = st
			}
		}
	}
	return out
}

// Close stops relaying, releases the four sockets and waits for the
// readers to end. It is idempotent; later calls return the first result.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		close(r.done)
		r.closeErr = r.closeConns()
		r.wg.Wait()
		r.log.Debug("media relay closed")
	})
	return r.closeErr
}

func (r *Relay) closeConns() error {
	var errs []error
	for i := range r.sides {
		for k := range r.sides[i].s {
			if c := r.sides[i].s[k].conn; c != nil {
				if err := c.Close(); err != nil {
					errs = append(errs, fmt.Errorf("mediarelay: close %v: %w", r.sides[i].s[k].local, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// readLoop relays what arrives on side i's socket of kind k. It owns its
// buffer; the packet is written out before the next read, so nothing is
// copied.
func (r *Relay) readLoop(i int, k kind) {
	conn := r.sides[i].s[k].conn
	buf := make([]byte, maxDatagram+1)
	errs := 0
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if r.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP-reported errors must not end a call's media, but a
			// socket that keeps failing must not spin a core either.
			if errs++; errs > 100 {
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		errs = 0
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		mode := r.cfg.Mode().effective() // outside mu: the SBC's func may lock its own state
		r.lastMode.Store(mode.index())
		now := time.Now()
		r.mu.Lock()
		out, dst, ok := r.routeLocked(i, k, buf[:n], from, now, mode)
		r.mu.Unlock()
		if !ok {
			continue
		}
		if _, err := out.WriteToUDPAddrPort(buf[:n], dst); err != nil {
			r.mu.Lock()
			r.sendFailedLocked(i, k, n, from, dst, err)
			r.mu.Unlock()
		}
	}
}
