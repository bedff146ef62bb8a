package hep

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

const register = "REGISTER sip:siplab.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK1\r\nCall-ID: abc\r\nContent-Length: 0\r\n\r\n"

func TestEncodeDecodeRoundTrip(t *testing.T) {
	ts := time.Date(2026, 11, 25, 19, 0, 0, 123456789, time.UTC)
	for _, p := range []Packet{
		{
			Src: netip.MustParseAddrPort("192.168.1.50:5060"), Dst: netip.MustParseAddrPort("203.0.113.10:5060"),
			IPProto: 17, Time: ts, Type: TypeSIP, CaptureID: 101, Payload: []byte(register),
		},
		{
			Src: netip.MustParseAddrPort("[2001:db8::1]:16001"), Dst: netip.MustParseAddrPort("[2001:db8::2]:17001"),
			IPProto: 17, Time: ts, Type: TypeRTCP, CaptureID: 7, AuthKey: "secret", CorrelationID: "call-1",
			Payload: []byte{0x80, 200, 0, 6, 1, 2, 3, 4},
		},
	} {
		b, err := Encode(nil, p)
		if err != nil {
			t.Fatal(err)
		}
		if string(b[:4]) != "HEP3" || int(binary.BigEndian.Uint16(b[4:6])) != len(b) {
			t.Fatalf("header % x, len %d", b[:6], len(b))
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		want := p
		want.Time = ts.Truncate(time.Microsecond) // HEP carries microseconds
		if got.Src != want.Src || got.Dst != want.Dst || got.IPProto != want.IPProto || !got.Time.Equal(want.Time) ||
			got.Type != want.Type || got.CaptureID != want.CaptureID || got.AuthKey != want.AuthKey ||
			got.CorrelationID != want.CorrelationID || !bytes.Equal(got.Payload, want.Payload) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
}

// TestEncodeLayout checks the bytes against the HEP3 layout by hand, so an
// encoder and decoder that agree on a wrong format cannot both pass.
func TestEncodeLayout(t *testing.T) {
	p := Packet{
		Src: netip.MustParseAddrPort("10.0.0.1:5060"), Dst: netip.MustParseAddrPort("10.0.0.2:5080"),
		IPProto: 17, Time: time.Unix(1700000000, 5000), Type: TypeSIP, CaptureID: 0x01020304, Payload: []byte("x"),
	}
	b, err := Encode(nil, p)
	if err != nil {
		t.Fatal(err)
	}
	chunks := map[uint16][]byte{}
	for r := b[6:]; len(r) > 0; {
		vendor, typ, n := binary.BigEndian.Uint16(r), binary.BigEndian.Uint16(r[2:]), int(binary.BigEndian.Uint16(r[4:]))
		if vendor != 0 || n < 6 || n > len(r) {
			t.Fatalf("chunk vendor %d type %d len %d", vendor, typ, n)
		}
		chunks[typ] = r[6:n]
		r = r[n:]
	}
	for typ, want := range map[uint16][]byte{
		1: {2}, 2: {17}, 3: {10, 0, 0, 1}, 4: {10, 0, 0, 2}, 7: {0x13, 0xc4}, 8: {0x13, 0xd8},
		9: {0x65, 0x53, 0xf1, 0x00}, 10: {0, 0, 0, 5}, 11: {1}, 12: {1, 2, 3, 4}, 15: []byte("x"),
	} {
		if !bytes.Equal(chunks[typ], want) {
			t.Errorf("chunk %d = % x, want % x", typ, chunks[typ], want)
		}
	}
	if len(b) != 6+11*6+1+1+4+4+2+2+4+4+1+4+1 {
		t.Errorf("total length %d", len(b))
	}
}

func TestEncodeRejects(t *testing.T) {
	ok := Packet{Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("10.0.0.2:2"), Payload: []byte("x")}
	for name, tc := range map[string]struct {
		mut  func(*Packet)
		want error
	}{
		"no src":       {func(p *Packet) { p.Src = netip.AddrPort{} }, ErrBadPacket},
		"mixed":        {func(p *Packet) { p.Dst = netip.MustParseAddrPort("[2001:db8::1]:2") }, ErrBadPacket},
		"empty":        {func(p *Packet) { p.Payload = nil }, ErrBadPacket},
		"huge":         {func(p *Packet) { p.Payload = make([]byte, 70000) }, ErrTooLarge},
		"just too big": {func(p *Packet) { p.Payload = make([]byte, MaxLen-60) }, ErrTooLarge},
	} {
		p := ok
		tc.mut(&p)
		b, err := Encode([]byte("keep"), p)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
		if string(b) != "keep" {
			t.Errorf("%s: dst changed to %q on error", name, b)
		}
	}
}

func TestDecodeRejectsBadInput(t *testing.T) {
	good, err := Encode(nil, Packet{Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("10.0.0.2:2"), Payload: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"empty":     {nil, ErrBadMagic},
		"HEP2":      {[]byte("\x02\x10\x02"), ErrBadMagic},
		"truncated": {good[:len(good)-3], ErrTruncated},
		"total < 6": {mut(func(b []byte) []byte { b[5] = 3; b[4] = 0; return b }), ErrBadChunk},
		"chunk len 2": {mut(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[10:], 2)
			return b
		}), ErrBadChunk},
		"chunk past end": {mut(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[10:], 0xfff0)
			return b
		}), ErrTruncated},
		"ipv4 of 3 bytes": {func() []byte {
			b := []byte("HEP3\x00\x00")
			b = appendChunk(b, ChunkSrcIPv4, []byte{1, 2, 3})
			binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
			return b
		}(), ErrBadChunk},
		"no payload": {func() []byte {
			b := []byte("HEP3\x00\x00")
			b = appendChunk(b, ChunkSrcIPv4, []byte{1, 2, 3, 4})
			b = appendChunk(b, ChunkDstIPv4, []byte{1, 2, 3, 5})
			binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
			return b
		}(), ErrBadChunk},
	} {
		if _, err := Decode(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
	}
}

func TestDecodeSkipsOtherVendorsChunks(t *testing.T) {
	b, err := Encode(nil, Packet{Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("10.0.0.2:2"), Payload: []byte("p")})
	if err != nil {
		t.Fatal(err)
	}
	// A vendor chunk whose type collides with the payload chunk.
	b = append(b, 0, 0x21, 0, ChunkPayload, 0, 8, 'X', 'Y')
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	p, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Payload) != "p" {
		t.Errorf("payload %q: the vendor chunk was not skipped", p.Payload)
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := Encode(nil, Packet{Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("10.0.0.2:2"), Payload: []byte(register)})
	f.Add(good)
	f.Add([]byte("HEP3\x00\x06"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode to the same thing.
		again, err := Encode(nil, p)
		if err != nil {
			return // e.g. empty payload chunk: decodable, not encodable
		}
		q, err := Decode(again)
		if err != nil || q.Src != p.Src || q.Dst != p.Dst || !bytes.Equal(q.Payload, p.Payload) {
			t.Fatalf("re-encode: %v %+v vs %+v", err, q, p)
		}
	})
}

// TestClientSendsToUDPCollector uses a real UDP socket as the collector.
func TestClientSendsToUDPCollector(t *testing.T) {
	coll, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	c, err := New(Config{Collector: coll.LocalAddr().String(), CaptureID: 2001, AuthKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ts := time.Now().Truncate(time.Microsecond)
	for i := 0; i < 3; i++ {
		err := c.Send(Packet{
			Src: netip.MustParseAddrPort("192.168.1.50:5060"), Dst: netip.MustParseAddrPort("203.0.113.10:5060"),
			IPProto: 17, Time: ts, Type: TypeSIP, Payload: []byte(register),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 65536)
	for i := 0; i < 3; i++ {
		_ = coll.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := coll.ReadFromUDP(buf)
		if err != nil {
			t.Fatal(err)
		}
		if from.String() != c.LocalAddr().String() {
			t.Errorf("from %s, client is %s", from, c.LocalAddr())
		}
		p, err := Decode(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		if p.CaptureID != 2001 || p.AuthKey != "k" || string(p.Payload) != register || !p.Time.Equal(ts) || p.Type != TypeSIP {
			t.Errorf("collector got %+v", p)
		}
	}
	if sent, failed := c.Stats(); sent != 3 || failed != 0 {
		t.Errorf("stats %d/%d", sent, failed)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(Packet{}); !errors.Is(err, ErrClosed) {
		t.Errorf("send after close: %v", err)
	}
}

func TestClientConfig(t *testing.T) {
	for _, bad := range []string{"", "10.0.0.1", "10.0.0.1:0", "0.0.0.0:9060", "homer:9060"} {
		if _, err := New(Config{Collector: bad}); !errors.Is(err, ErrBadConfig) {
			t.Errorf("collector %q: err %v, want ErrBadConfig", bad, err)
		}
	}
}
