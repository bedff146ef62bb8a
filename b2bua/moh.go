package b2bua

import (
	"crypto/rand"
	"encoding/binary"
	"math"
	"sync"

	"github.com/pion/rtp"
	"github.com/zaf/g711"
)

// Music on hold is the PBX's own: a generated cadence (800 ms of tone,
// 200 ms of silence) that is obviously not a person, at a frequency no lab
// phone uses, encoded in the leg's G.711 law. The relay only paces it and
// sends it (mediarelay.Source): choosing the music and the codec is the
// PBX's business, and the phones' media package has no use for it.

// mohSource is one leg's music, fed to the relay while the other leg holds.
type mohSource struct {
	hz float64
	on func() bool // the live `moh` setting

	mu   sync.Mutex
	pt   uint8
	alaw bool
	ok   bool // the leg's codec is G.711
	gen  *mohGen
}

func newMOHSource(hz float64, on func() bool) *mohSource { return &mohSource{hz: hz, on: on} }

func (m *mohSource) setCodec(pt uint8, alaw, ok bool) {
	m.mu.Lock()
	m.pt, m.alaw, m.ok = pt, alaw, ok
	m.mu.Unlock()
}

// restart marks the next packet as the start of a talkspurt (a new hold).
func (m *mohSource) restart() {
	m.mu.Lock()
	if m.gen != nil {
		m.gen.talkspurt = false
	}
	m.mu.Unlock()
}

// Next is the next 20 ms of music, or nil while `moh` is off or the leg's
// codec is not G.711 (the held party hears silence).
func (m *mohSource) Next() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ok || !m.on() {
		if m.gen != nil {
			m.gen.talkspurt = false
		}
		return nil
	}
	if m.gen == nil {
		m.gen = newMOHGen(m.hz)
	}
	return m.gen.next(m.pt, m.alaw)
}

// mohGen makes the packets: random SSRC, sequence and timestamp start,
// the marker bit on each talkspurt's first packet.
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
