package b2bua

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"github.com/siplab/siplab/media"
)

// Sides of a relay: legA faces the caller, legB the callee.
const (
	legA = 0
	legB = 1
)

var legNames = [2]string{"a", "b"}

// relay anchors a call's media: one UDP socket per leg, each written into
// that leg's SDP. RTP from the caller arriving on the A socket leaves from
// the B socket towards the callee, and back. Nothing is transcoded, so the
// statistics per leg show exactly what each phone sent and was sent.
type relay struct {
	log    *slog.Logger
	latch  func() bool
	mohOn  func() bool
	mohHz  float64
	closed chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	sides [2]*side
}

// side is the relay's face towards one phone.
type side struct {
	conn  *net.UDPConn
	local netip.AddrPort

	sdpRemote netip.AddrPort // where this phone's SDP says to send
	latched   netip.AddrPort // where its RTP really comes from, once seen
	// stale is the source latched before the leg got a new phone (a
	// transfer): its packets are dropped, never relayed or latched onto.
	stale netip.AddrPort
	// holding: this phone's last offer was not sendrecv (it put the other
	// party on hold); nothing is relayed from or to it.
	holding bool
	// codec is what music on hold to this phone is encoded with; ok=false
	// means the leg's codec is not G.711 and it gets no music.
	pt     uint8
	alaw   bool
	mohOK  bool
	moh    *mohGen
	counts SideStats
}

// SideStats are the relay's counters for one leg.
type SideStats struct {
	Local     string         `json:"local"`
	SDPRemote netip.AddrPort `json:"sdp_remote,omitzero"`
	// SendingTo is where RTP for this phone goes now: the latched source
	// when latching is on and a packet was seen, else the SDP address.
	SendingTo netip.AddrPort `json:"sending_to,omitzero"`
	Latched   bool           `json:"latched,omitempty"`
	Holding   bool           `json:"holding,omitempty"`
	// FromPhone counts valid RTP received from this leg's phone, ToPhone
	// what was relayed to it from the other leg, MOH the music-on-hold
	// packets sent to it instead.
	FromPhone Count `json:"from_phone"`
	ToPhone   Count `json:"to_phone"`
	MOH       Count `json:"moh"`
	// DroppedHold were received while a hold stopped relaying them.
	DroppedHold uint64 `json:"dropped_hold,omitempty"`
	// Invalid datagrams were not RTP version 2.
	Invalid uint64 `json:"invalid,omitempty"`
	// FromOldPeer came from the phone this leg had before a transfer.
	FromOldPeer uint64         `json:"from_old_peer,omitempty"`
	SendErrors  uint64         `json:"send_errors,omitempty"`
	FirstSource netip.AddrPort `json:"first_source,omitzero"`
	LastSource  netip.AddrPort `json:"last_source,omitzero"`
	LastPacket  time.Time      `json:"last_packet,omitzero"`
}

// Count is packets and payload-inclusive bytes.
type Count struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

func (c *Count) add(n int) { c.Packets++; c.Bytes += uint64(n) }

// newRelay binds one socket per leg on ip.
func newRelay(ip netip.Addr, latch, mohOn func() bool, mohHz float64, log *slog.Logger) (*relay, error) {
	r := &relay{log: log, latch: latch, mohOn: mohOn, mohHz: mohHz, closed: make(chan struct{})}
	for i := range r.sides {
		pc, err := media.ListenRTP(ip, 0)
		if err != nil {
			for _, s := range r.sides[:i] {
				s.conn.Close()
			}
			return nil, fmt.Errorf("b2bua: relay socket: %w", err)
		}
		conn := pc.(*net.UDPConn)
		local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
		r.sides[i] = &side{conn: conn, local: netip.AddrPortFrom(local.Addr().Unmap(), local.Port())}
		r.sides[i].counts.Local = r.sides[i].local.String()
	}
	return r, nil
}

// start runs the readers and the music-on-hold clock.
func (r *relay) start() {
	for i := range r.sides {
		r.wg.Go(func() { r.readLoop(i) })
	}
	r.wg.Go(r.mohLoop)
}

func (r *relay) addr(i int) netip.AddrPort { return r.sides[i].local }

// setRemote records what leg i's phone wrote in its SDP; a new SDP address
// re-arms latching, as a phone that moved must be followed again.
func (r *relay) setRemote(i int, ap netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sides[i]
	if ap.Addr().IsUnspecified() || ap.Port() == 0 {
		// c=0.0.0.0 is RFC 2543 hold: keep the address we had.
		return
	}
	if s.sdpRemote != ap {
		s.sdpRemote = ap
		s.latched = netip.AddrPort{}
	}
}

// replacePhone is setRemote for a leg that now faces another phone: the
// old phone's media, should it keep sending, is dropped.
func (r *relay) replacePhone(i int, ap netip.AddrPort) {
	r.mu.Lock()
	s := r.sides[i]
	if s.latched.IsValid() {
		s.stale = s.latched
	} else {
		s.stale = s.sdpRemote
	}
	s.sdpRemote, s.latched = netip.AddrPort{}, netip.AddrPort{}
	r.mu.Unlock()
	r.setRemote(i, ap)
}

// setCodec says what music on hold towards leg i is encoded with.
func (r *relay) setCodec(i int, pt uint8, alaw, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sides[i]
	s.pt, s.alaw, s.mohOK = pt, alaw, ok
}

// setHolding marks leg i's phone as holding (its offer was not sendrecv).
func (r *relay) setHolding(i int, holding bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sides[i].holding != holding {
		r.log.Info("media hold changed", "leg", legNames[i], "holding", holding)
	}
	r.sides[i].holding = holding
}

// dest is where RTP for side s goes now; r.mu held.
func (r *relay) destLocked(s *side) netip.AddrPort {
	if s.latched.IsValid() && r.latch() {
		return s.latched
	}
	return s.sdpRemote
}

func (r *relay) readLoop(i int) {
	in, out := r.sides[i], r.sides[1-i]
	buf := make([]byte, 1500)
	for {
		n, from, err := in.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-r.closed:
				return
			default:
			}
			continue // ICMP-reported refusals must not end the call's media
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		now := time.Now()
		r.mu.Lock()
		c := &in.counts
		// Version 2 RTP only: STUN, RTCP-on-RTP-port and garbage are counted
		// but neither relayed nor latched onto.
		if n < 12 || buf[0]>>6 != 2 {
			c.Invalid++
			r.mu.Unlock()
			continue
		}
		if from == in.stale {
			c.FromOldPeer++
			r.mu.Unlock()
			continue
		}
		c.FromPhone.add(n)
		if !c.FirstSource.IsValid() {
			c.FirstSource = from
		}
		c.LastSource, c.LastPacket = from, now
		if !in.latched.IsValid() {
			// Latch once per SDP address, never on every packet, so a stray
			// source cannot take the stream over mid-call.
			in.latched = from
			if from != in.sdpRemote {
				r.log.Info("rtp latched", "leg", legNames[i], "sdp", in.sdpRemote, "source", from)
			}
		}
		if in.holding || out.holding {
			c.DroppedHold++
			r.mu.Unlock()
			continue
		}
		dst := r.destLocked(out)
		r.mu.Unlock()
		if !dst.IsValid() {
			continue
		}
		_, werr := out.conn.WriteToUDPAddrPort(buf[:n], dst)
		r.mu.Lock()
		if werr != nil {
			out.counts.SendErrors++
		} else {
			out.counts.ToPhone.add(n)
		}
		r.mu.Unlock()
	}
}

// mohLoop sends music on hold, paced at 20 ms on an absolute schedule, to
// every phone whose peer holds it.
func (r *relay) mohLoop() {
	start := time.Now()
	t := time.NewTimer(media.Ptime)
	defer t.Stop()
	for k := int64(1); ; k++ {
		select {
		case <-r.closed:
			return
		case <-t.C:
		}
		r.mohTick()
		t.Reset(time.Until(start.Add(time.Duration(k+1) * media.Ptime)))
	}
}

func (r *relay) mohTick() {
	on := r.mohOn()
	for i, s := range r.sides {
		r.mu.Lock()
		want := on && r.sides[1-i].holding && !s.holding && s.mohOK
		if !want {
			if s.moh != nil {
				s.moh.talkspurt = false
			}
			r.mu.Unlock()
			continue
		}
		if s.moh == nil {
			s.moh = newMOHGen(r.mohHz)
		}
		pkt := s.moh.next(s.pt, s.alaw)
		dst := r.destLocked(s)
		r.mu.Unlock()
		if !dst.IsValid() {
			continue
		}
		_, err := s.conn.WriteToUDPAddrPort(pkt, dst)
		r.mu.Lock()
		if err != nil {
			s.counts.SendErrors++
		} else {
			s.counts.MOH.add(len(pkt))
		}
		r.mu.Unlock()
	}
}

// stats snapshots both legs.
func (r *relay) stats() [2]SideStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [2]SideStats
	for i, s := range r.sides {
		st := s.counts
		st.SDPRemote = s.sdpRemote
		st.SendingTo = r.destLocked(s)
		st.Latched = s.latched.IsValid() && r.latch()
		st.Holding = s.holding
		out[i] = st
	}
	return out
}

// close stops the relay and releases its sockets.
func (r *relay) close() {
	select {
	case <-r.closed:
		return
	default:
	}
	close(r.closed)
	for _, s := range r.sides {
		s.conn.Close()
	}
	r.wg.Wait()
}

// mohGen is the music on hold: a generated cadence (800 ms of tone, 200 ms
// of silence) that is obviously not a person, at a frequency no lab phone uses.
type mohGen struct {
	hdr       rtp.Header
	step      float64
	n         uint64
	talkspurt bool
	pcm       [160]byte
}

func newMOHGen(hz float64) *mohGen {
	var b [10]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	return &mohGen{
		hdr: rtp.Header{Version: 2, SSRC: binary.BigEndian.Uint32(b[:4]),
			SequenceNumber: binary.BigEndian.Uint16(b[4:6]), Timestamp: binary.BigEndian.Uint32(b[6:])},
		step: 2 * math.Pi * hz / 8000,
	}
}

// mohAmplitude is about -12 dBFS.
const mohAmplitude = 0.25 * 32767

func (g *mohGen) next(pt uint8, alaw bool) []byte {
	for i := range g.pcm {
		var v int16
		if g.n%8000 < 6400 {
			v = int16(mohAmplitude * math.Sin(g.step*float64(g.n)))
		}
		if alaw {
			g.pcm[i] = g711.EncodeAlawFrame(v)
		} else {
			g.pcm[i] = g711.EncodeUlawFrame(v)
		}
		g.n++
	}
	g.hdr.PayloadType = pt
	g.hdr.Marker = !g.talkspurt
	g.talkspurt = true
	pkt := &rtp.Packet{Header: g.hdr, Payload: g.pcm[:]}
	b, _ := pkt.Marshal() // a fixed header and payload always marshal
	g.hdr.SequenceNumber++
	g.hdr.Timestamp += 160
	return b
}
