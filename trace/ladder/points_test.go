package ladder

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/trace/capture"
)

// One packet, several capture points: merged only when it is the same
// bytes between the same addresses on one link within sameWire; never at
// one point (that is a retransmission, which the doctor counts).
func TestDedupe(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC)
	alice := netip.MustParseAddrPort("192.168.1.50:5060")
	proxy := netip.MustParseAddrPort("203.0.113.10:5060")
	msg := []byte("OPTIONS sip:proxy SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n")
	other := []byte("OPTIONS sip:proxy SIP/2.0\r\nCall-ID: x\r\nCSeq: 2 OPTIONS\r\n\r\n")
	pkt := func(iface string, after time.Duration, payload []byte, src netip.AddrPort) capture.Packet {
		return capture.Packet{Time: t0.Add(after), Iface: iface, Kind: capture.KindSIP, Transport: "udp", Src: src, Dst: proxy, Payload: payload}
	}
	r := Lab()
	for _, tc := range []struct {
		name  string
		in    []capture.Packet
		shown []string // Iface of each resulting message
		seen  int      // len(Seen) of the first
	}{
		{"phone and router on one LAN", []capture.Packet{pkt("alice/lan", 0, msg, alice), pkt("router-a/lan", 80*time.Microsecond, msg, alice)}, []string{"router-a/lan"}, 2},
		{"router first, phone later", []capture.Packet{pkt("router-a/lan", 0, msg, alice), pkt("alice/lan", time.Millisecond, msg, alice)}, []string{"router-a/lan"}, 2},
		{"retransmission at one point", []capture.Packet{pkt("alice/lan", 0, msg, alice), pkt("alice/lan", time.Millisecond, msg, alice)}, []string{"alice/lan", "alice/lan"}, 1},
		{"retransmission 500 ms later", []capture.Packet{pkt("alice/lan", 0, msg, alice), pkt("router-a/lan", 500*time.Millisecond, msg, alice)}, []string{"alice/lan", "router-a/lan"}, 1},
		{"different bytes", []capture.Packet{pkt("alice/lan", 0, msg, alice), pkt("router-a/lan", time.Millisecond, other, alice)}, []string{"alice/lan", "router-a/lan"}, 1},
		{"NAT changed the source", []capture.Packet{pkt("router-a/lan", 0, msg, alice), pkt("router-a/wan", time.Millisecond, msg, netip.MustParseAddrPort("203.0.113.2:5060"))}, []string{"router-a/lan", "router-a/wan"}, 1},
		{"router wan and proxy edge", []capture.Packet{pkt("proxy/internet", 0, msg, alice), pkt("router-a/wan", time.Millisecond, msg, alice)}, []string{"router-a/wan"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := dedupe(tc.in, r)
			var shown []string
			for _, m := range got {
				shown = append(shown, m.Iface)
			}
			if strings.Join(shown, " ") != strings.Join(tc.shown, " ") {
				t.Fatalf("shown at %v, want %v", shown, tc.shown)
			}
			if len(got[0].Seen) != tc.seen {
				t.Errorf("first message seen at %v, want %d points", got[0].Seen, tc.seen)
			}
		})
	}
}

// A call recorded at every capture point (fixture from the real lab): each
// packet appears once; whatever a router saw on its LAN, the phone there
// saw too (they share the link), and the columns are one per node, with
// the phones and the proxy among them.
func TestEveryCapturePoint(t *testing.T) {
	c, err := Find(load(t, "edge-direct"), "")
	if err != nil {
		t.Fatal(err)
	}
	type wire struct {
		src, dst netip.AddrPort
		payload  string
	}
	points := map[string]bool{}
	last := map[wire]time.Time{}
	for _, m := range c.Messages {
		k := wire{m.Src, m.Dst, string(m.Payload)}
		if t0, ok := last[k]; ok && m.Time.Sub(t0) < sameWire {
			t.Errorf("%s %s → %s shown twice", m.Label, m.Src, m.Dst)
		}
		last[k] = m.Time
		for _, p := range m.Seen {
			points[p] = true
		}
		if m.Iface == "router-a/lan" && !slices.Contains(m.Seen, "alice/lan") {
			t.Errorf("%s on router-a/lan not also at alice/lan: %v", m.Label, m.Seen)
		}
		if m.Iface == "router-b/lan" && !slices.Contains(m.Seen, "bob/lan") {
			t.Errorf("%s on router-b/lan not also at bob/lan: %v", m.Label, m.Seen)
		}
	}
	for _, p := range []string{"alice/lan", "bob/lan", "router-a/lan", "router-a/wan", "router-b/lan", "router-b/wan", "proxy/internet"} {
		if !points[p] {
			t.Errorf("no message seen at %s (points: %v)", p, points)
		}
	}
	titles := map[string]int{}
	for _, col := range c.Columns {
		titles[col.Title()]++
	}
	for _, want := range []string{"alice", "bob", "proxy", "router-a", "router-b"} {
		if titles[want] != 1 {
			t.Errorf("%d columns %q, want 1 (%v)", titles[want], want, titles)
		}
	}
}

// The PBX call: the PBX's two addresses (core SIP, internet RTP relay) are
// one column; the proxy, crossed before and after the PBX, has one column
// per crossing, so every SIP arrow joins neighbours.
func TestMultiHomedNodeOneColumn(t *testing.T) {
	c, err := Find(load(t, "edge-pbx"), "")
	if err != nil {
		t.Fatal(err)
	}
	var titles []string
	byTitle := map[string]Column{}
	for _, col := range c.Columns {
		titles = append(titles, col.Title())
		byTitle[col.Title()] = col
	}
	if got, want := strings.Join(titles, " "), "alice router-a proxy pbx proxy router-b bob"; got != want {
		t.Errorf("columns %q, want %q", got, want)
	}
	if col := byTitle["pbx"]; len(col.Addrs) != 2 {
		t.Errorf("pbx column addresses %v, want its core and internet addresses", col.Addrs)
	}
}
