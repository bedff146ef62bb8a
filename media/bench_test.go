package media

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// BenchmarkHandlePacket measures the receive path for one audio packet:
// parse, sequence/jitter/source accounting, G.711 decode and tone metering.
func BenchmarkHandlePacket(b *testing.B) {
	conn := listen(b)
	s, err := New(Config{RTP: conn, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g := newToneGen(440, 0)
	var pcm [samplesPerPacket]int16
	g.fill(pcm[:])
	payload := make([]byte, samplesPerPacket)
	for i, v := range pcm {
		payload[i] = s.encode(v)
	}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: payload}
	buf, err := pkt.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	from := netip.MustParseAddrPort("192.0.2.1:4000")
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for i := 0; b.Loop(); i++ {
		// Advance sequence and timestamp in place like a real stream.
		buf[2], buf[3] = byte(i>>8), byte(i)
		ts := uint32(i * samplesPerPacket)
		buf[4], buf[5], buf[6], buf[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		s.handlePacket(buf, from, now.Add(time.Duration(i)*Ptime))
	}
	if s.Stats().Received.Lost != 0 {
		b.Fatal("benchmark stream shows loss")
	}
}
