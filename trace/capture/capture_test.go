package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/bpf"
)

var (
	macA = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	macB = net.HardwareAddr{2, 0, 0, 0, 0, 2}
)

func sipRequest(method, callID string, body string) string {
	return fmt.Sprintf("%s sip:bob@siplab.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK-%s\r\n"+
		"From: <sip:alice@siplab.test>;tag=1\r\nTo: <sip:bob@siplab.test>\r\nCall-ID: %s\r\nCSeq: 1 %s\r\n"+
		"Max-Forwards: 70\r\nContent-Length: %d\r\n\r\n%s", method, callID, callID, method, len(body), body)
}

// frameUDP builds an Ethernet/IPv4(or 6)/UDP frame with correct checksums.
func frameUDP(t testing.TB, src, dst netip.AddrPort, payload []byte) []byte {
	t.Helper()
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	return serialize(t, src.Addr(), dst.Addr(), layers.IPProtocolUDP, udp, payload)
}

func frameTCP(t testing.TB, src, dst netip.AddrPort, seq uint32, syn, fin bool, payload []byte) []byte {
	t.Helper()
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: seq, SYN: syn, FIN: fin, ACK: !syn, Window: 65535}
	return serialize(t, src.Addr(), dst.Addr(), layers.IPProtocolTCP, tcp, payload)
}

type l4 interface {
	gopacket.SerializableLayer
	SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
}

func serialize(t testing.TB, src, dst netip.Addr, proto layers.IPProtocol, tr l4, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB}
	var ip gopacket.SerializableLayer
	if src.Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		v4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		_ = tr.SetNetworkLayerForChecksum(v4)
		ip = v4
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		v6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		_ = tr.SetNetworkLayerForChecksum(v6)
		ip = v6
	}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, tr, gopacket.Payload(payload))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func rtpPacket(seq uint16, ts uint32, ssrc uint32, n int) []byte {
	b := make([]byte, 12+n)
	b[0], b[1] = 0x80, 0 // v2, PCMU
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	return b
}

func testIfaces(node string, sides ...string) []pcapgo.NgInterface {
	var out []pcapgo.NgInterface
	for _, s := range sides {
		out = append(out, ngInterface(node+"/"+s, "test "+s, 65535))
	}
	return out
}

func TestWriterReaderRoundTripKeepsInterfaceNames(t *testing.T) {
	dir := t.TempDir()
	w, err := newRotor(dir, "router-a", 1<<20, 2, testIfaces("router-a", "lan", "wan"))
	if err != nil {
		t.Fatal(err)
	}
	alicePriv := netip.MustParseAddrPort("192.168.1.50:5060")
	alicePub := netip.MustParseAddrPort("203.0.113.2:5060")
	proxy := netip.MustParseAddrPort("203.0.113.10:5060")
	reg := []byte(sipRequest("REGISTER", "reg-1", ""))
	t0 := time.Date(2026, 11, 25, 19, 0, 0, 0, time.UTC)
	write := func(link int, ts time.Time, data []byte) {
		t.Helper()
		ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: len(data), InterfaceIndex: link}
		if err := w.write(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	// Written out of time order across interfaces, as two readers would.
	write(1, t0.Add(time.Millisecond), frameUDP(t, alicePub, proxy, reg))
	write(0, t0, frameUDP(t, alicePriv, proxy, reg))
	write(0, t0.Add(20*time.Millisecond), frameUDP(t, netip.MustParseAddrPort("192.168.1.50:16000"), netip.MustParseAddrPort("203.0.113.3:17000"), rtpPacket(7, 160, 0xabcdef, 160)))
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	// Readable while the writer still has it open (live read).
	tr, err := ReadFile(FileName(dir, "router-a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(tr.Interfaces, ",") != "router-a/lan,router-a/wan" {
		t.Errorf("interfaces %v", tr.Interfaces)
	}
	if len(tr.SIP) != 2 {
		t.Fatalf("want 2 SIP messages, got %d", len(tr.SIP))
	}
	first, second := tr.SIP[0], tr.SIP[1]
	if first.Iface != "router-a/lan" || first.Src != alicePriv || !first.Time.Equal(t0) || first.Transport != "udp" {
		t.Errorf("first: %+v", first)
	}
	if second.Iface != "router-a/wan" || second.Src != alicePub || second.Dst != proxy {
		t.Errorf("second: %+v", second)
	}
	if !bytes.Equal(first.Payload, reg) || first.StartLine() != "REGISTER sip:bob@siplab.test SIP/2.0" ||
		first.Header("call-id") != "reg-1" || first.Header("i") != "reg-1" || first.Header("CSeq") != "1 REGISTER" {
		t.Errorf("payload/header access: %q %q", first.StartLine(), first.Header("Call-ID"))
	}
	if len(tr.RTP) != 1 || tr.RTP[0].Kind != KindRTP || tr.RTP[0].RTP.Seq != 7 || tr.RTP[0].RTP.SSRC != 0xabcdef ||
		tr.RTP[0].RTP.PayloadLen != 160 || tr.RTP[0].Iface != "router-a/lan" {
		t.Errorf("rtp: %+v", tr.RTP)
	}
	if tr.Truncated {
		t.Error("a flushed file reads as truncated")
	}
}

func TestRotationKeepsFilesWithinBounds(t *testing.T) {
	dir := t.TempDir()
	const maxBytes, maxFiles = 16 << 10, 3
	// A file from an earlier run must become the newest rotated file.
	if err := os.WriteFile(FileName(dir, "alice"), []byte("earlier run"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A leftover of a run with more files must go.
	if err := os.WriteFile(filepath.Join(dir, "alice.7.pcapng"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := newRotor(dir, "alice", maxBytes, maxFiles, testIfaces("alice", "eth"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "alice.1.pcapng")); string(b) != "earlier run" {
		t.Fatalf("earlier file not kept as alice.1.pcapng: %q", b)
	}
	src, dst := netip.MustParseAddrPort("192.168.1.50:5060"), netip.MustParseAddrPort("203.0.113.10:5060")
	t0 := time.Now()
	const n = 200
	for i := 0; i < n; i++ {
		data := frameUDP(t, src, dst, []byte(sipRequest("OPTIONS", fmt.Sprintf("c%03d", i), strings.Repeat("x", 300))))
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(data), Length: len(data)}
		if err := w.write(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	files, err := Files(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != maxFiles {
		t.Fatalf("files %v, want %d", files, maxFiles)
	}
	if filepath.Base(files[len(files)-1]) != "alice.pcapng" || filepath.Base(files[0]) != "alice.2.pcapng" {
		t.Errorf("order %v", files)
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > maxBytes {
			t.Errorf("%s is %d bytes, bound %d", f, st.Size(), maxBytes)
		}
		if st.Size() < maxBytes/2 && f != files[len(files)-1] {
			t.Errorf("%s is only %d bytes: rotated too early", f, st.Size())
		}
	}
	// The kept files hold the newest messages, contiguous, oldest first.
	tr, err := ReadFiles(files...)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.SIP) == 0 || len(tr.SIP) >= n {
		t.Fatalf("%d messages kept of %d", len(tr.SIP), n)
	}
	for i, m := range tr.SIP {
		want := fmt.Sprintf("c%03d", n-len(tr.SIP)+i)
		if got := m.Header("Call-ID"); got != want {
			t.Fatalf("message %d: Call-ID %s, want %s", i, got, want)
		}
	}
}

func TestDecoderReassemblesSIPOverTCP(t *testing.T) {
	c, s := netip.MustParseAddrPort("192.168.1.50:40000"), netip.MustParseAddrPort("203.0.113.10:5060")
	invite := sipRequest("INVITE", "tcp-1", "v=0\r\no=- 1 1 IN IP4 192.168.1.50\r\ns=-\r\nc=IN IP4 192.168.1.50\r\nt=0 0\r\nm=audio 16000 RTP/AVP 0\r\n")
	bye := sipRequest("BYE", "tcp-1", "")
	stream := []byte(invite + "\r\n\r\n" + bye) // a CRLF keep-alive between them
	d := NewDecoder()
	ts := time.Now()
	var got []Packet
	feed := func(f []byte) { got = append(got, d.Decode("x/lan", ts, f)...) }
	const isn = 1000
	feed(frameTCP(t, c, s, isn, true, false, nil))
	// Segments: the first cut mid-header, the third arrives before the
	// second, and the second is retransmitted.
	cut1, cut2 := 40, len(invite)+10
	feed(frameTCP(t, c, s, isn+1, false, false, stream[:cut1]))
	feed(frameTCP(t, c, s, isn+1+uint32(cut2), false, false, stream[cut2:]))
	feed(frameTCP(t, c, s, isn+1+uint32(cut1), false, false, stream[cut1:cut2]))
	feed(frameTCP(t, c, s, isn+1+uint32(cut1), false, false, stream[cut1:cut2]))
	if len(got) != 2 {
		t.Fatalf("want INVITE and BYE, got %d messages: %+v", len(got), got)
	}
	if string(got[0].Payload) != invite || string(got[1].Payload) != bye || got[0].Transport != "tcp" || got[0].Src != c {
		t.Errorf("messages:\n%q\n%q", got[0].Payload, got[1].Payload)
	}
}

func TestDecoderJoinsMidStreamAndRTCP(t *testing.T) {
	c, s := netip.MustParseAddrPort("10.0.0.10:5060"), netip.MustParseAddrPort("10.0.0.20:5060")
	d := NewDecoder()
	// No SYN seen (capture started late): a segment that starts a message.
	out := d.Decode("proxy/core", time.Now(), frameTCP(t, c, s, 777, false, false, []byte("SIP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok")))
	if len(out) != 1 || out[0].StartLine() != "SIP/2.0 200 OK" {
		t.Errorf("mid-stream: %+v", out)
	}
	// A non-SIP segment mid-stream is ignored.
	if out := d.Decode("proxy/core", time.Now(), frameTCP(t, s, c, 5, false, false, []byte("GET / HTTP/1.1\r\n\r\n"))); len(out) != 0 {
		t.Errorf("HTTP taken for SIP: %+v", out)
	}
	rr := []byte{0x81, 201, 0, 7, 0, 0, 0, 9, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	out = d.Decode("alice/eth", time.Now(), frameUDP(t, netip.MustParseAddrPort("192.168.1.50:16001"), netip.MustParseAddrPort("203.0.113.3:17001"), rr))
	if len(out) != 1 || out[0].Kind != KindRTCP || out[0].RTP.PayloadType != 201 || out[0].RTP.SSRC != 9 {
		t.Errorf("rtcp: %+v", out)
	}
	// IPv6 SIP.
	out = d.Decode("alice/eth", time.Now(), frameUDP(t, netip.MustParseAddrPort("[2001:db8::1]:5060"), netip.MustParseAddrPort("[2001:db8::2]:5060"), []byte(sipRequest("OPTIONS", "v6", ""))))
	if len(out) != 1 || out[0].Kind != KindSIP || !out[0].Src.Addr().Is6() {
		t.Errorf("ipv6: %+v", out)
	}
}

func TestDecoderIgnoresGarbage(t *testing.T) {
	d := NewDecoder()
	good := frameUDP(t, netip.MustParseAddrPort("192.168.1.50:5060"), netip.MustParseAddrPort("203.0.113.10:5060"), []byte(sipRequest("REGISTER", "g", "")))
	for i := 0; i <= len(good); i++ {
		_ = d.Decode("x/y", time.Now(), good[:i]) // must not panic
	}
	for _, payload := range [][]byte{
		[]byte("hello"), []byte("{\"probe\":1}"), {0x80}, {0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, // short RTP
		{0x8f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},                                                 // CSRC count past the end
		{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x43, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, // STUN but for its cookie (stun_test.go)
		[]byte("FOO sip:x SIP/2.0\r\n\r\n"),
	} {
		f := frameUDP(t, netip.MustParseAddrPort("192.168.1.50:16000"), netip.MustParseAddrPort("203.0.113.3:17000"), payload)
		if out := d.Decode("x/y", time.Now(), f); len(out) != 0 {
			t.Errorf("%q decoded as %v", payload, out[0].Kind)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(frameUDP(f, netip.MustParseAddrPort("192.168.1.50:5060"), netip.MustParseAddrPort("203.0.113.10:5060"), []byte(sipRequest("REGISTER", "g", ""))))
	f.Add(frameTCP(f, netip.MustParseAddrPort("192.168.1.50:5060"), netip.MustParseAddrPort("203.0.113.10:5060"), 1, false, false, []byte(sipRequest("INVITE", "g", "abc"))))
	f.Add(frameUDP(f, netip.MustParseAddrPort("192.168.1.50:16000"), netip.MustParseAddrPort("203.0.113.3:17000"), rtpPacket(1, 2, 3, 20)))
	d := NewDecoder()
	m := matcher{filter: FilterSIPRTP, sipPorts: map[uint16]bool{5060: true}, rtp: PortRange{10000, 20000}}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = m.keep(b)
		for _, p := range d.Decode("f/z", time.Unix(0, 0), b) {
			if len(p.Payload) == 0 {
				t.Fatal("empty payload")
			}
		}
	})
}

func TestMatcher(t *testing.T) {
	all := matcher{filter: FilterAll}
	sr := newMatcher(Config{Filter: FilterSIPRTP}.withDefaults())

	udp := func(s, d string) []byte {
		return frameUDP(t, netip.MustParseAddrPort(s), netip.MustParseAddrPort(d), []byte("x"))
	}
	tcp := func(s, d string) []byte {
		return frameTCP(t, netip.MustParseAddrPort(s), netip.MustParseAddrPort(d), 1, false, false, []byte("x"))
	}
	hepIgnored := newMatcher(Config{Ignore: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.99:9060")}}.withDefaults())
	if hepIgnored.keep(udp("203.0.113.2:40000", "203.0.113.99:9060")) || hepIgnored.keep(udp("203.0.113.99:9060", "203.0.113.2:40000")) {
		t.Error("traffic to/from an ignored endpoint recorded")
	}
	if !hepIgnored.keep(udp("203.0.113.2:40000", "203.0.113.99:9061")) {
		t.Error("traffic to another port of an ignored host dropped")
	}
	arp := append(make([]byte, 12), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1)
	for _, tc := range []struct {
		name    string
		frame   []byte
		all, sr bool
	}{
		{"sip udp", udp("192.168.1.50:5060", "203.0.113.10:5060"), true, true},
		{"sip tcp to 5060", tcp("192.168.1.50:40000", "203.0.113.10:5060"), true, true},
		{"rtp", udp("192.168.1.50:16000", "203.0.113.3:17000"), true, true},
		{"dns", udp("192.168.1.50:40000", "203.0.113.53:53"), true, false},
		{"http", tcp("10.0.0.10:40000", "10.0.0.20:8080"), true, false},
		{"v6 global sip", udp("[2001:db8::1]:5060", "[2001:db8::2]:5060"), true, true},
		{"v6 link-local", udp("[fe80::1]:5060", "[fe80::2]:5060"), false, false},
		{"v6 multicast", udp("[2001:db8::1]:5060", "[ff02::1]:5060"), false, false},
		{"arp", arp, false, false},
		{"runt", []byte{1, 2, 3}, false, false},
	} {
		if got := all.keep(tc.frame); got != tc.all {
			t.Errorf("%s: all keep=%v", tc.name, got)
		}
		if got := sr.keep(tc.frame); got != tc.sr {
			t.Errorf("%s: sip-rtp keep=%v", tc.name, got)
		}
	}
}

// TestKernelFilter runs the hand-assembled BPF program in x/net/bpf's VM.
func TestKernelFilter(t *testing.T) {
	prog, err := kernelFilter(1500)
	if err != nil {
		t.Fatal(err)
	}
	insns := make([]bpf.Instruction, len(prog))
	for i, r := range prog {
		insns[i] = r.Disassemble()
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	icmp := frameUDP(t, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"), []byte("x"))
	icmp[14+9] = 1
	igmp := append([]byte(nil), icmp...)
	igmp[14+9] = 2
	arp := append(make([]byte, 12), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1)
	for _, tc := range []struct {
		name  string
		frame []byte
		want  int
	}{
		{"udp", frameUDP(t, netip.MustParseAddrPort("10.0.0.1:5060"), netip.MustParseAddrPort("10.0.0.2:5060"), []byte("x")), 1500},
		{"tcp", frameTCP(t, netip.MustParseAddrPort("10.0.0.1:5060"), netip.MustParseAddrPort("10.0.0.2:5060"), 1, false, false, nil), 1500},
		{"icmp", icmp, 1500},
		{"igmp", igmp, 0},
		{"ipv6", frameUDP(t, netip.MustParseAddrPort("[2001:db8::1]:1"), netip.MustParseAddrPort("[2001:db8::2]:2"), nil), 1500},
		{"arp", arp, 0},
	} {
		got, err := vm.Run(tc.frame)
		if err != nil || got != tc.want {
			t.Errorf("%s: %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	good := Config{Node: "router-a", Dir: "/captures", Interfaces: []Iface{{Name: "lan", Match: netip.MustParsePrefix("192.168.1.1/24")}}}
	if err := good.withDefaults().validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"no node":       func(c *Config) { c.Node = "" },
		"path in node":  func(c *Config) { c.Node = "../etc" },
		"no interfaces": func(c *Config) { c.Interfaces = nil },
		"dup names":     func(c *Config) { c.Interfaces = append(c.Interfaces, c.Interfaces[0]) },
		"no selector":   func(c *Config) { c.Interfaces = []Iface{{Name: "x"}} },
		"both selectors": func(c *Config) {
			c.Interfaces = []Iface{{Name: "x", Index: 2, Match: netip.MustParsePrefix("10.0.0.0/8")}}
		},
		"bad side":  func(c *Config) { c.Interfaces = []Iface{{Name: "a/b", Index: 2}} },
		"tiny file": func(c *Config) { c.MaxBytes = 1000 },
		"snaplen":   func(c *Config) { c.SnapLen = 10 },
		"files":     func(c *Config) { c.MaxFiles = -1 },
		"filter":    func(c *Config) { c.Filter = 9 },
		"rtp range": func(c *Config) { c.RTPPorts = PortRange{20000, 10000} },
	} {
		c := good
		mut(&c)
		if err := c.withDefaults().validate(); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: err %v, want ErrBadConfig", name, err)
		}
	}
	if _, err := ParseFilter("sip"); !errors.Is(err, ErrBadConfig) {
		t.Errorf("ParseFilter(sip): %v", err)
	}
}

func TestReadRejectsNonPcapng(t *testing.T) {
	dir := t.TempDir()
	classic := filepath.Join(dir, "classic.pcap")
	f, err := os.Create(classic)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	f.Close()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("hello world"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{classic, text} {
		if _, err := ReadFile(p); !errors.Is(err, ErrNotPcapng) {
			t.Errorf("%s: err %v, want ErrNotPcapng", p, err)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing.pcapng")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// A file cut in the middle of a block (still being written) reads as
	// truncated, with what it holds.
	cut := filepath.Join(dir, "cut")
	r, err := newRotor(cut, "n", 1<<20, 1, testIfaces("n", "eth"))
	if err != nil {
		t.Fatal(err)
	}
	data := frameUDP(t, netip.MustParseAddrPort("10.0.0.1:5060"), netip.MustParseAddrPort("10.0.0.2:5060"), []byte(sipRequest("OPTIONS", "o", "")))
	for i := 0; i < 2; i++ {
		if err := r.write(gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: len(data), Length: len(data)}, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(FileName(cut, "n"))
	if err := os.WriteFile(FileName(cut, "n"), b[:len(b)-20], 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err := ReadFile(FileName(cut, "n"))
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Truncated || len(tr.SIP) != 1 {
		t.Errorf("truncated=%v, %d messages", tr.Truncated, len(tr.SIP))
	}
}

// TestLiveFileNeverEndsMidBlock reads the file between writes, as tshark
// does while a daemon captures: it must never end inside a block.
func TestLiveFileNeverEndsMidBlock(t *testing.T) {
	dir := t.TempDir()
	w, err := newRotor(dir, "live", 64<<20, 1, testIfaces("live", "eth"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	data := frameUDP(t, netip.MustParseAddrPort("10.0.0.1:5060"), netip.MustParseAddrPort("10.0.0.2:5060"), []byte(sipRequest("OPTIONS", "live", strings.Repeat("y", 333))))
	seen := 0
	for i := 1; i <= 1500; i++ {
		if err := w.write(gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: len(data), Length: len(data)}, data); err != nil {
			t.Fatal(err)
		}
		if i%25 != 0 {
			continue
		}
		tr, err := ReadFile(FileName(dir, "live"))
		if err != nil {
			t.Fatal(err)
		}
		if tr.Truncated {
			t.Fatalf("after %d writes the file ends mid-block", i)
		}
		if len(tr.SIP) < seen || len(tr.SIP) > i {
			t.Fatalf("after %d writes the file holds %d messages (before: %d)", i, len(tr.SIP), seen)
		}
		seen = len(tr.SIP)
	}
	if seen == 0 {
		t.Fatal("nothing reached the file without an explicit flush")
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if tr, err := ReadFile(FileName(dir, "live")); err != nil || len(tr.SIP) != 1500 {
		t.Fatalf("after flush: %v, %d messages", err, len(tr.SIP))
	}
}
