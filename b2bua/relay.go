package b2bua

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/siplab/siplab/media/mediarelay"
)

// Sides of a relay: legA faces the caller, legB the callee.
const (
	legA = 0
	legB = 1
)

var legNames = [2]string{"a", "b"}

// SideStats is one leg's media as the relay sees it: mediarelay's figures
// (the same the SBC shows), RTP at the top level and RTCP under "rtcp";
// music on hold sent to the phone is counted in "injected".
type SideStats = mediarelay.SideStats

// relay anchors a call's media on mediarelay — the SBC's relay: RTP and
// RTCP socket pairs, validation, one latching model — and adds what a PBX
// does on top: it answers holds itself, so a phone that holds gets
// nothing relayed from or to it, and its peer hears music on hold
// injected in place of the holder.
type relay struct {
	r *mediarelay.Relay

	mu      sync.Mutex
	holding [2]bool
	moh     [2]*mohSource
}

// newRelay binds a relay on ip for both legs. mode is the PBX's `latch`
// setting as a latching mode, mohOn its `moh` setting: both are read
// live (lock-free) while the call runs.
func newRelay(ip netip.Addr, mode func() mediarelay.Latching, mohOn func() bool, mohHz float64, log *slog.Logger) (*relay, error) {
	r, err := mediarelay.NewWithConfig(mediarelay.Config{IP: [2]netip.Addr{ip, ip}, Mode: mode, Log: log})
	if err != nil {
		return nil, fmt.Errorf("b2bua: relay: %w", err)
	}
	rl := &relay{r: r}
	for i := range rl.moh {
		rl.moh[i] = newMOHSource(mohHz, mohOn)
	}
	return rl, nil
}

// addr is the RTP address written into leg i's SDP (RTCP: port + 1).
func (r *relay) addr(i int) netip.AddrPort { return r.r.Local(i) }

// setRemote records what leg i's phone wrote in its SDP; a new address
// re-arms latching, as a phone that moved must be followed again.
func (r *relay) setRemote(i int, ap netip.AddrPort) { r.r.SetRemote(i, ap) }

// replacePhone is setRemote for a leg that now faces another phone (a
// transfer): the old phone's media, should it keep sending, is dropped.
func (r *relay) replacePhone(i int, ap netip.AddrPort) { r.r.ReplacePeer(i, ap) }

// setCodec says what music on hold towards leg i is encoded with; ok=false
// (not G.711) means that leg gets no music.
func (r *relay) setCodec(i int, pt uint8, alaw, ok bool) { r.moh[i].setCodec(pt, alaw, ok) }

// setHolding marks leg i's phone as holding (its offer was not sendrecv):
// nothing is relayed from or to it, and the other leg gets music on hold
// unless it holds too.
func (r *relay) setHolding(i int, holding bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holding[i] = holding
	r.r.SetHolding(i, holding)
	for j := range r.holding {
		if r.holding[1-j] && !r.holding[j] {
			r.moh[j].restart()
			r.r.Inject(j, r.moh[j])
		} else {
			r.r.Inject(j, nil)
		}
	}
}

func (r *relay) stats() [2]SideStats { return r.r.Stats() }

// close stops the relay and releases its sockets.
func (r *relay) close() { _ = r.r.Close() } // closing UDP sockets we own fails only on a double close, which Close prevents
