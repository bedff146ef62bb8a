package mediarelay

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// FuzzRoute throws arbitrary datagrams from a handful of sources at both
// sides' RTP and RTCP paths in every mode: nothing may panic, the counters
// must balance after every packet and the stats must stay encodable.
func FuzzRoute(f *testing.F) {
	good, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, SSRC: 1}, Payload: make([]byte, 160)}).Marshal()
	ext, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, Extension: true, ExtensionProfile: 0xbede, CSRC: []uint32{1, 2}}, Payload: []byte{1}}).Marshal()
	rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1}, &rtcp.Goodbye{Sources: []uint32{1}}})
	f.Add(good, uint8(0), uint8(0))
	f.Add(ext, uint8(1), uint8(5))
	f.Add(rr, uint8(2), uint8(6))
	f.Add([]byte{0x80, 0xc8, 0xff, 0xff}, uint8(3), uint8(7))
	f.Add([]byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42}, uint8(4), uint8(1))

	r := newRelay(f, Config{RelatchAfter: time.Millisecond, RelatchPackets: 2})
	r.SetRemote(0, netip.MustParseAddrPort("127.0.0.1:4000"))
	r.SetRemote(1, netip.MustParseAddrPort("192.168.77.7:17000"))
	now := time.Now()
	modes := [3]Latching{Learn, Strict, Off}
	f.Fuzz(func(t *testing.T, pkt []byte, src, sel uint8) {
		now = now.Add(time.Duration(sel) * time.Millisecond)
		from := netip.AddrPortFrom(loopback, 4000+uint16(src%4))
		i, k, mode := int(sel&1), kind(sel>>1&1), modes[int(sel>>2)%3]
		r.mu.Lock()
		conn, dst, ok := r.routeLocked(i, k, pkt, from, now, mode)
		r.mu.Unlock()
		if ok && (conn == nil || !dst.IsValid() || r.isOwn(dst)) {
			t.Fatalf("routed to %v via %v", dst, conn)
		}
		st := r.Stats()
		checkBalance(t, st)
		if _, err := json.Marshal(st); err != nil {
			t.Fatal(err)
		}
	})
}
