package mediarelay

import (
	"net/netip"
	"time"
)

// What a relay's owner that answers holds itself (a PBX) needs on top of
// relaying: a phone that holds its peer, a transferred phone replaced by
// another, and music on hold fed to the held side.

// InjectInterval is how often an injected source is asked for a packet:
// 20 ms, one G.711 frame.
const InjectInterval = 20 * time.Millisecond

// Source is media generated for a side instead of its peer's (music on
// hold). Next is called every InjectInterval, from the relay's injector
// goroutine only, and returns the next RTP packet or nil to send nothing
// this time; the relay sends the packet before it calls Next again, so
// Next may reuse its buffer. Next is not called while the side has no
// destination or is on hold itself.
type Source interface {
	Next() []byte
}

// SetHolding records that side's phone put its peer on hold and the
// owner answered the hold itself (sendonly → recvonly): nothing is
// relayed from or to that side (both count as `hold` drops) until it
// resumes. An SBC, which passes the hold on to the other phone, never
// calls it.
func (r *Relay) SetHolding(side int, holding bool) {
	if side != 0 && side != 1 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sides[side].holding != holding {
		r.log.Info("media holding changed", "side", side, "holding", holding)
	}
	r.sides[side].holding = holding
}

// ReplacePeer is SetRemote for a side that now faces another phone (a
// transfer): the old phone's sources — its latched ones, else its SDP
// address — are dropped from now on (`old_peer`), so a phone that keeps
// sending after it was transferred can neither be heard nor take the new
// phone's latch. The latch is re-armed even when the address is the same.
func (r *Relay) ReplacePeer(side int, ap netip.AddrPort) {
	if side != 0 && side != 1 {
		return
	}
	r.mu.Lock()
	sd := &r.sides[side]
	for k := range sd.s {
		s := &sd.s[k]
		s.old = s.latched
		if !s.old.IsValid() {
			s.old = sd.sdpFor(kind(k))
		}
	}
	sd.sdp = netip.AddrPort{}
	sd.rearm()
	r.mu.Unlock()
	r.SetRemote(side, ap)
}

// Inject feeds side with src instead of its peer's media: what the peer
// sends towards side is dropped (`hold`), and src's packets go from the
// side's RTP socket to where its media goes under the current mode,
// counted in its `injected`. A nil src stops it; the peer is relayed
// again. Music on hold is a Source given to the held side.
func (r *Relay) Inject(side int, src Source) {
	if side != 0 && side != 1 || r.closed.Load() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if (r.sides[side].inj == nil) != (src == nil) {
		r.log.Info("media injection", "side", side, "on", src != nil)
	}
	r.sides[side].inj = src
	if src != nil && !r.injecting && !r.closed.Load() {
		// Started on first use and kept until Close: an SBC call never
		// pays for a ticking goroutine.
		r.injecting = true
		r.wg.Go(r.injectLoop)
	}
}

// injectLoop asks every fed side's source for a packet each interval, on
// an absolute schedule so the music keeps its pace when a tick is late.
func (r *Relay) injectLoop() {
	start := time.Now()
	t := time.NewTimer(InjectInterval)
	defer t.Stop()
	for k := int64(1); ; k++ {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		mode := r.cfg.Mode().effective()
		for i := range r.sides {
			r.injectOne(i, mode)
		}
		t.Reset(time.Until(start.Add(time.Duration(k+1) * InjectInterval)))
	}
}

func (r *Relay) injectOne(i int, mode Latching) {
	r.mu.Lock()
	sd := &r.sides[i]
	src := sd.inj
	var dst netip.AddrPort
	if src != nil && !sd.hold && !sd.holding {
		dst = r.destLocked(i, kindRTP, mode)
	}
	r.mu.Unlock()
	if !dst.IsValid() || r.isOwn(dst) {
		return
	}
	pkt := src.Next()
	if pkt == nil {
		return
	}
	s := &sd.s[kindRTP]
	if _, err := s.conn.WriteToUDPAddrPort(pkt, dst); err != nil {
		return // the peer's own packets count send errors; music is best effort
	}
	r.mu.Lock()
	s.st.Injected++
	s.st.InjectedBytes += uint64(len(pkt))
	r.mu.Unlock()
}
