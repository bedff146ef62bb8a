package media

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// FuzzHandlePacket feeds arbitrary datagrams, as RTP and as RTCP, into a
// session: nothing may panic and the stats must stay JSON-encodable (no
// NaN/Inf from the tone meter or loss maths).
func FuzzHandlePacket(f *testing.F) {
	good, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, SSRC: 1}, Payload: make([]byte, 160)}).Marshal()
	ev, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 2, SSRC: 1}, Payload: []byte{1, 0x8a, 0, 160}}).Marshal()
	f.Add(good)
	f.Add(ev)
	f.Add([]byte{0x80, 0xc8, 0, 6, 0, 0, 0, 1})
	f.Add([]byte{0xb0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0, 0, 0, 0, 3})
	conn := listen(f)
	rtcpConn := listen(f)
	s, err := New(Config{RTP: conn, RTCP: rtcpConn, DTMFPayloadType: 101, Latch: true, Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	from := netip.MustParseAddrPort("192.0.2.1:4000")
	now := time.Now()
	f.Fuzz(func(t *testing.T, b []byte) {
		now = now.Add(Ptime)
		s.handlePacket(b, from, now)
		s.handleRTCP(b, from, now)
		s.mu.Lock()
		_, err := s.buildReport(now)
		s.mu.Unlock()
		if err != nil {
			t.Fatalf("report after %x: %v", b, err)
		}
		if _, err := json.Marshal(s.Stats()); err != nil {
			t.Fatalf("stats after %x: %v", b, err)
		}
	})
}
