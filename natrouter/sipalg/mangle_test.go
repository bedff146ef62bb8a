package sipalg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
)

var (
	lan    = netip.MustParsePrefix("192.168.1.0/24")
	wan    = netip.MustParseAddr("203.0.113.2")
	params = Params{LAN: lan, WAN: wan, MappedPort: 5060}
	small  = PacketInfo{IPLen: 900, MTU: 1500}
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustSet(t *testing.T, s string) Set {
	t.Helper()
	set, err := ParseSet(s)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// header returns the value of the first header with this name.
func header(t *testing.T, msg []byte, name string) string {
	t.Helper()
	head, _, _ := strings.Cut(string(msg), "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n")[1:] {
		n, v, _ := strings.Cut(l, ":")
		if strings.EqualFold(strings.TrimSpace(n), name) {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s header in:\n%s", name, msg)
	return ""
}

func body(msg []byte) string {
	_, b, _ := strings.Cut(string(msg), "\r\n\r\n")
	return b
}

// sdpLine returns the first SDP line starting with prefix.
func sdpLine(t *testing.T, msg []byte, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(body(msg), "\r\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no %s line in body:\n%s", prefix, body(msg))
	return ""
}

// contentLengthOK reports whether Content-Length equals the body length.
func contentLengthOK(t *testing.T, msg []byte) bool {
	t.Helper()
	cl, err := strconv.Atoi(header(t, msg, "Content-Length"))
	if err != nil {
		t.Fatal(err)
	}
	return cl == len(body(msg))
}

// wantAddrs checks where a mangled message points: its Via and Contact
// contain via and contact, its SDP c= line is c, and Content-Length still
// matches the body. Faults differ in which of these they leave private.
func wantAddrs(t *testing.T, msg []byte, via, contact, c string) {
	t.Helper()
	if v := header(t, msg, "Via"); !strings.Contains(v, via) {
		t.Errorf("Via %q, want %s", v, via)
	}
	if v := header(t, msg, "Contact"); !strings.Contains(v, contact) {
		t.Errorf("Contact %q, want %s", v, contact)
	}
	if v := sdpLine(t, msg, "c="); v != c {
		t.Errorf("SDP %q, want %q", v, c)
	}
	if !contentLengthOK(t, msg) {
		t.Error("Content-Length broken")
	}
}

// wantHeader checks a header's value as the mangled message carries it.
func wantHeader(t *testing.T, msg []byte, name, want string) {
	t.Helper()
	if v := header(t, msg, name); v != want {
		t.Errorf("%s %q, want %q", name, v, want)
	}
}

func TestFixturesAreConsistent(t *testing.T) {
	for _, f := range []string{"invite-alice.sip", "register-alice.sip"} {
		if !contentLengthOK(t, fixture(t, f)) {
			t.Errorf("%s: Content-Length does not match its body", f)
		}
	}
}

func TestBaselineRewritesViaContactAndSDPOnly(t *testing.T) {
	in := fixture(t, "invite-alice.sip")
	res := Mangle(in, params, small, Set{})
	out := res.Msg
	if !res.Changed || res.Drop != "" {
		t.Fatalf("changed=%v drop=%q", res.Changed, res.Drop)
	}
	for _, c := range []struct{ got, want string }{
		{header(t, out, "Via"), "SIP/2.0/UDP 203.0.113.2:5060;branch=z9hG4bK.Yx3kQ2pWmLr8;rport"},
		{header(t, out, "Contact"), "<sip:alice@203.0.113.2:5060;transport=udp>"},
		{header(t, out, "Call-ID"), "Jc9vT2xWq4LmN7bP0aRe@192.168.1.50"},
		{sdpLine(t, out, "o="), "o=alice 3120489712 3120489712 IN IP4 203.0.113.2"},
		{sdpLine(t, out, "c="), "c=IN IP4 203.0.113.2"},
		{sdpLine(t, out, "m="), "m=audio 16000 RTP/AVP 0 8 101"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if !contentLengthOK(t, out) || res.ContentLength != "fixed" {
		t.Errorf("Content-Length %q for a %d-byte body (%s)", header(t, out, "Content-Length"), len(body(out)), res.ContentLength)
	}
	if len(res.Edits) != 4 {
		t.Errorf("%d edits, want Via, Contact, o=, c=: %+v", len(res.Edits), res.Edits)
	}
	// Everything else byte for byte.
	want := strings.ReplaceAll(string(in), "192.168.1.50:5060", "203.0.113.2:5060")
	want = strings.ReplaceAll(want, "IN IP4 192.168.1.50", "IN IP4 203.0.113.2")
	want = strings.Replace(want, "Content-Length: 247", "Content-Length: 245", 1)
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestBaselineUsesTheMappedPort(t *testing.T) {
	p := params
	p.MappedPort = 40123
	out := Mangle(fixture(t, "invite-alice.sip"), p, small, Set{}).Msg
	if v := header(t, out, "Via"); !strings.HasPrefix(v, "SIP/2.0/UDP 203.0.113.2:40123;") {
		t.Errorf("Via %q", v)
	}
	wantHeader(t, out, "Contact", "<sip:alice@203.0.113.2:40123;transport=udp>")
	// A Contact without a port gets one when the mapping is not 5060.
	out = Mangle(fixture(t, "200ok-alice.sip"), p, small, Set{}).Msg
	wantHeader(t, out, "Contact", "<sip:alice@203.0.113.2:40123>")
}

func TestBaselineLeavesOtherSitesAndCompactLength(t *testing.T) {
	in := fixture(t, "200ok-alice.sip")
	res := Mangle(in, params, small, Set{})
	out := res.Msg
	if !strings.Contains(string(out), "Via: SIP/2.0/UDP 192.168.2.50:5060;rport=5060") {
		t.Errorf("another site's private address was rewritten:\n%s", out)
	}
	if c := header(t, out, "Contact"); c != "<sip:alice@203.0.113.2>" {
		t.Errorf("Contact %q (mapped 5060: no port added)", c)
	}
	cl, _ := strconv.Atoi(header(t, out, "l"))
	if cl != len(body(out)) {
		t.Errorf("compact l: %d for a %d-byte body", cl, len(body(out)))
	}
}

func TestNotSIPPassesUntouched(t *testing.T) {
	for _, in := range [][]byte{
		[]byte("\r\n\r\n"), // RFC 5626 keep-alive
		[]byte("hello 192.168.1.50:5060"),
		{},
		[]byte("INVITE"),
	} {
		res := Mangle(in, params, small, mustSet(t, strings.Join(FaultNames(), "+")))
		if res.Changed || res.Drop != "" {
			t.Errorf("%q: changed=%v drop=%q", in, res.Changed, res.Drop)
		}
	}
}

// TestEachFault checks, on captured-style messages, the exact damage each
// fault does and that it does nothing else.
func TestEachFault(t *testing.T) {
	invite := fixture(t, "invite-alice.sip")
	register := fixture(t, "register-alice.sip")
	tests := []struct {
		fault string
		in    []byte
		check func(t *testing.T, res Result)
	}{
		{"contact-not-via", invite, func(t *testing.T, res Result) {
			wantAddrs(t, res.Msg, "192.168.1.50:5060", "203.0.113.2:5060", "c=IN IP4 203.0.113.2")
		}},
		{"sdp-c-only", invite, func(t *testing.T, res Result) {
			if c := sdpLine(t, res.Msg, "c="); c != "c=IN IP4 203.0.113.2" {
				t.Errorf("c= %q", c)
			}
			if o := sdpLine(t, res.Msg, "o="); !strings.HasSuffix(o, "IN IP4 192.168.1.50") {
				t.Errorf("o= rewritten: %q", o)
			}
			if m := sdpLine(t, res.Msg, "m="); m != "m=audio 16000 RTP/AVP 0 8 101" {
				t.Errorf("m= %q", m)
			}
			if !strings.Contains(header(t, res.Msg, "Via"), "203.0.113.2:5060") || !contentLengthOK(t, res.Msg) {
				t.Error("headers should be rewritten as usual")
			}
		}},
		{"rewrite-call-id", invite, func(t *testing.T, res Result) {
			wantHeader(t, res.Msg, "Call-ID", "Jc9vT2xWq4LmN7bP0aRe@203.0.113.2")
			if !contentLengthOK(t, res.Msg) {
				t.Error("Content-Length broken")
			}
		}},
		{"stale-content-length", invite, func(t *testing.T, res Result) {
			cl, _ := strconv.Atoi(header(t, res.Msg, "Content-Length"))
			if want := len(body(invite)); cl != want {
				t.Errorf("Content-Length %d, want the original %d", cl, want)
			}
			// 192.168.1.50 → 203.0.113.2 twice in the body: 2 bytes short.
			if got := len(body(res.Msg)); got != cl-2 {
				t.Errorf("body %d bytes, Content-Length %d", got, cl)
			}
			if res.ContentLength != "stale" {
				t.Errorf("ContentLength %q", res.ContentLength)
			}
		}},
		{"stale-content-length", register, func(t *testing.T, res Result) {
			// No body, nothing to get wrong: registration keeps working.
			if !contentLengthOK(t, res.Msg) || res.ContentLength != "" {
				t.Errorf("REGISTER Content-Length touched: %q", header(t, res.Msg, "Content-Length"))
			}
		}},
		{"wrong-port", invite, func(t *testing.T, res Result) {
			if v := header(t, res.Msg, "Via"); !strings.HasPrefix(v, "SIP/2.0/UDP 203.0.113.2:5061;") {
				t.Errorf("Via %q", v)
			}
			wantHeader(t, res.Msg, "Contact", "<sip:alice@203.0.113.2:5061;transport=udp>")
			if m := sdpLine(t, res.Msg, "m="); m != "m=audio 16000 RTP/AVP 0 8 101" {
				t.Errorf("m= %q", m)
			}
		}},
		{"strip-rport", register, func(t *testing.T, res Result) {
			wantHeader(t, res.Msg, "Via", "SIP/2.0/UDP 203.0.113.2:5060;branch=z9hG4bK.reg1")
		}},
		{"strip-rport", invite, func(t *testing.T, res Result) {
			wantHeader(t, res.Msg, "Via", "SIP/2.0/UDP 203.0.113.2:5060;branch=z9hG4bK.Yx3kQ2pWmLr8")
			if !contentLengthOK(t, res.Msg) {
				t.Error("Content-Length broken")
			}
		}},
		{"first-only", invite, func(t *testing.T, res Result) {
			wantAddrs(t, res.Msg, "203.0.113.2:5060", "192.168.1.50", "c=IN IP4 192.168.1.50")
			if len(res.Edits) != 1 {
				t.Errorf("%d edits", len(res.Edits))
			}
		}},
		{"drop-large", invite, func(t *testing.T, res Result) {
			if res.Drop != "" || !res.Changed {
				t.Errorf("a message that fits one packet: drop=%q changed=%v", res.Drop, res.Changed)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.fault, func(t *testing.T) {
			res := Mangle(tc.in, params, small, mustSet(t, tc.fault))
			if res.Drop == "" && !LooksLikeSIP(res.Msg) {
				t.Fatalf("output is not SIP:\n%s", res.Msg)
			}
			tc.check(t, res)
		})
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.fault] = true
	}
	for _, f := range FaultNames() {
		if !seen[f] {
			t.Errorf("fault %s has no table test", f)
		}
	}
}

func TestDropLargeDropsFragmentedDatagrams(t *testing.T) {
	set := mustSet(t, "drop-large")
	in := fixture(t, "invite-alice.sip")
	if res := Mangle(in, params, PacketInfo{IPLen: 1501, MTU: 1500}, set); res.Drop == "" {
		t.Error("1501 bytes on a 1500 MTU LAN not dropped")
	}
	if res := Mangle(in, params, PacketInfo{IPLen: 1500, MTU: 1500}, set); res.Drop != "" {
		t.Errorf("1500 bytes dropped: %s", res.Drop)
	}
	if res := Mangle(in, params, PacketInfo{IPLen: 1501, MTU: 1500}, Set{}); res.Drop != "" {
		t.Error("dropped without the fault")
	}
}

func TestFaultsCombine(t *testing.T) {
	in := fixture(t, "invite-alice.sip")
	res := Mangle(in, params, small, mustSet(t, "contact-not-via+strip-rport+rewrite-call-id+stale-content-length"))
	out := res.Msg
	wantHeader(t, out, "Via", "SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK.Yx3kQ2pWmLr8")
	if c := header(t, out, "Call-ID"); !strings.HasSuffix(c, "@203.0.113.2") {
		t.Errorf("Call-ID %q", c)
	}
	if contentLengthOK(t, out) {
		t.Error("Content-Length fixed despite stale-content-length")
	}
	// first-only applies to what the other faults left: with
	// contact-not-via the first rewrite is the Contact.
	res = Mangle(in, params, small, mustSet(t, "first-only,contact-not-via"))
	if c := header(t, res.Msg, "Contact"); !strings.Contains(c, "203.0.113.2") || len(res.Edits) != 1 {
		t.Errorf("Contact %q, %d edits", c, len(res.Edits))
	}
}

func TestParseSet(t *testing.T) {
	for _, ok := range []struct{ in, canon string }{
		{"", "none"},
		{"none", "none"},
		{"strip-rport", "strip-rport"},
		{"wrong-port+contact-not-via", "contact-not-via+wrong-port"},
		{"wrong-port,contact-not-via,wrong-port", "contact-not-via+wrong-port"},
	} {
		s, err := ParseSet(ok.in)
		if err != nil || s.String() != ok.canon {
			t.Errorf("ParseSet(%q) = %q, %v; want %q", ok.in, s, err, ok.canon)
		}
	}
	for _, bad := range []string{"nope", "strip-rport+nope", "+", "none+strip-rport", "STRIP-RPORT"} {
		if _, err := ParseSet(bad); !errors.Is(err, ErrUnknownFault) {
			t.Errorf("ParseSet(%q) error %v, want ErrUnknownFault", bad, err)
		}
	}
	for _, f := range Faults() {
		if f.Summary == "" || f.Symptom == "" || f.Trace == "" {
			t.Errorf("fault %s is not documented", f.Name)
		}
		if _, err := os.Stat("../../docs/alg/" + f.Name + ".md"); err != nil {
			t.Errorf("fault %s has no page in docs/alg/: %v", f.Name, err)
		}
	}
}

// udpPacket builds an IPv4/UDP packet with valid checksums.
func udpPacket(src, dst netip.AddrPort, payload []byte) []byte {
	pkt := make([]byte, 28+len(payload))
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	binary.BigEndian.PutUint16(pkt[4:], 0x1234)
	pkt[8], pkt[9] = 63, 17
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(pkt[12:], s[:])
	copy(pkt[16:], d[:])
	binary.BigEndian.PutUint16(pkt[10:], IPv4HeaderChecksum(pkt[:20]))
	u := pkt[20:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	binary.BigEndian.PutUint16(u[6:], UDPChecksum(pkt[12:16], pkt[16:20], u))
	return pkt
}

// checksumsValid verifies a packet the way a receiving kernel does.
func checksumsValid(t *testing.T, pkt []byte) {
	t.Helper()
	if fold(sum(0, pkt[:20])) != 0xffff {
		t.Errorf("bad IPv4 header checksum")
	}
	if int(binary.BigEndian.Uint16(pkt[2:4])) != len(pkt) {
		t.Errorf("IPv4 total length %d for %d bytes", binary.BigEndian.Uint16(pkt[2:4]), len(pkt))
	}
	u := pkt[20:]
	if int(binary.BigEndian.Uint16(u[4:6])) != len(u) {
		t.Errorf("UDP length %d for %d bytes", binary.BigEndian.Uint16(u[4:6]), len(u))
	}
	s := sum(0, pkt[12:20]) + 17 + uint32(len(u))
	if fold(sum(s, u)) != 0xffff {
		t.Errorf("bad UDP checksum")
	}
}

func TestPacketFixesLengthsAndChecksums(t *testing.T) {
	src := netip.MustParseAddrPort("203.0.113.2:40000")
	dst := netip.MustParseAddrPort("203.0.113.10:5060")
	in := udpPacket(src, dst, fixture(t, "invite-alice.sip"))
	checksumsValid(t, in)
	for _, faults := range []string{"none", "stale-content-length", "rewrite-call-id+wrong-port", "strip-rport+first-only"} {
		res, err := Packet(in, params, 1500, mustSet(t, faults))
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != Modify {
			t.Fatalf("%s: verdict %s", faults, res.Verdict)
		}
		checksumsValid(t, res.Packet)
		if !bytes.Equal(res.Packet[28:], res.Msg) {
			t.Errorf("%s: payload is not the mangled message", faults)
		}
		if !bytes.Equal(res.Packet[12:20], in[12:20]) || !bytes.Equal(res.Packet[20:24], in[20:24]) {
			t.Errorf("%s: addresses or ports changed", faults)
		}
		// The mapped port came from the packet.
		if v := header(t, res.Msg, "Via"); faults == "none" && !strings.Contains(v, "203.0.113.2:40000") {
			t.Errorf("Via %q: mapped port not taken from the UDP source port", v)
		}
	}
}

func TestPacketVerdicts(t *testing.T) {
	src := netip.MustParseAddrPort("203.0.113.2:5060")
	dst := netip.MustParseAddrPort("203.0.113.10:5060")
	keepalive := udpPacket(src, dst, []byte("\r\n\r\n"))
	if res, err := Packet(keepalive, params, 1500, Set{}); err != nil || res.Verdict != Accept {
		t.Errorf("keep-alive: %s %v", res.Verdict, err)
	}
	big := fixture(t, "invite-alice.sip")
	big = append(big[:len(big):len(big)], bytes.Repeat([]byte("a=x-pad:0123456789\r\n"), 60)...)
	pkt := udpPacket(src, dst, big)
	if res, err := Packet(pkt, params, 1500, mustSet(t, "drop-large")); err != nil || res.Verdict != Drop {
		t.Errorf("%d-byte INVITE with drop-large: %s %v", len(pkt), res.Verdict, err)
	}
	if res, err := Packet(pkt, params, 1500, Set{}); err != nil || res.Verdict != Modify {
		t.Errorf("%d-byte INVITE without faults: %s %v", len(pkt), res.Verdict, err)
	}
}

func TestPacketRejectsMalformed(t *testing.T) {
	good := udpPacket(netip.MustParseAddrPort("203.0.113.2:5060"), netip.MustParseAddrPort("203.0.113.10:5060"), fixture(t, "register-alice.sip"))
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, pkt := range map[string][]byte{
		"empty":        {},
		"ipv6":         mut(func(b []byte) []byte { b[0] = 0x60; return b }),
		"short ihl":    mut(func(b []byte) []byte { b[0] = 0x44; return b }),
		"tcp":          mut(func(b []byte) []byte { b[9] = 6; return b }),
		"truncated":    good[:40],
		"fragment":     mut(func(b []byte) []byte { b[6] = 0x20; return b }),
		"udp too long": mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[24:], 0xffff); return b }),
		"udp too short": mut(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[24:], 4)
			return b
		}),
	} {
		if _, err := Packet(pkt, params, 1500, Set{}); !errors.Is(err, ErrNotUDP4) {
			t.Errorf("%s: error %v, want ErrNotUDP4", name, err)
		}
	}
}

func FuzzPacket(f *testing.F) {
	f.Add(udpPacket(netip.MustParseAddrPort("203.0.113.2:5060"), netip.MustParseAddrPort("203.0.113.10:5060"), []byte("INVITE sip:a@192.168.1.50 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.50:5060;rport\r\nl: 3\r\n\r\nc=IN IP4 192.168.1.50\r\n")), "none")
	f.Add([]byte("SIP/2.0 200 OK\r\nContact: <sip:192.168.1.1:99999>\r\n\r\n"), "first-only+wrong-port")
	f.Fuzz(func(t *testing.T, pkt []byte, faults string) {
		set, err := ParseSet(faults)
		if err != nil {
			set = mustSet(t, strings.Join(FaultNames(), "+"))
		}
		_ = Mangle(pkt, params, small, set)
		res, err := Packet(pkt, params, 1500, set)
		if err == nil && res.Verdict == Modify {
			checksumsValid(t, res.Packet)
		}
	})
}
