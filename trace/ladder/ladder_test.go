package ladder

import (
	"bytes"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/capture/capturetest"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// load reads a fixture recorded from the real lab (testdata/captures).
func load(t *testing.T, scenario string) []*Call {
	t.Helper()
	return Build(capturetest.Fixture(t, scenario), Lab())
}

func TestLadderGolden(t *testing.T) {
	type golden struct{ name, scenario, call string }
	cases := []golden{}
	for _, s := range []string{"normal", "private-sdp", "alg-rewrite-call-id", "rport-off", "ack-lost", "edge-direct", "edge-pbx"} {
		cases = append(cases, golden{s, s, ""})
	}
	// From the healthy lab: a call through the SBC (both phones on it)
	// and an outbound trunk call (SBC, PBX, SBC, carrier).
	cases = append(cases, golden{"healthy-sbc", "healthy", "6"}, golden{"healthy-trunk-out", "healthy", "9"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Find(load(t, tc.scenario), tc.call)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := WriteText(&buf, c); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./trace/ladder -update once, then read the file)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("ladder differs from %s:\n%s", golden, buf.String())
			}
		})
	}
}

func TestNormalCallModel(t *testing.T) {
	c, err := Find(load(t, "normal"), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.State(); got != "completed" {
		t.Errorf("state %q, want completed (407 challenge, 200, BYE, 200)", got)
	}
	// Every capture point sees both directions of the audio.
	for _, v := range c.MediaVerdict() {
		if !strings.Contains(v, "two-way") {
			t.Errorf("media verdict %q, want two-way everywhere", v)
		}
	}
	// 2 directions × 4 capture points, but the internet link is one wire
	// both routers record: those streams are shown once, seen twice.
	points := 0
	for _, s := range c.Streams {
		points += len(s.Seen)
	}
	if len(c.Streams) != 6 || points != 8 {
		t.Errorf("%d RTP streams recorded at %d points, want 6 at 8 (2 directions × 4 capture points, the internet link merged)", len(c.Streams), points)
	}
	titles := map[string]bool{}
	for _, col := range c.Columns {
		titles[col.Title()] = true
		if col.Private() != (col.Addr.String() == "192.168.1.50" || col.Addr.String() == "192.168.2.50") {
			t.Errorf("column %s private=%v", col.Addr, col.Private())
		}
	}
	for _, want := range []string{"alice", "bob", "proxy", "router-a", "router-b"} {
		if !titles[want] {
			t.Errorf("no column %q in %v", want, titles)
		}
	}
}

// The broken ALG rewrites the Call-ID between router-a's LAN and WAN: the
// two copies must still land in one call, with both Call-IDs listed.
func TestALGRewrittenCallIDGrouped(t *testing.T) {
	c, err := Find(load(t, "alg-rewrite-call-id"), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.CallIDs) != 2 {
		t.Fatalf("Call-IDs %v, want the LAN one and the ALG-rewritten one", c.CallIDs)
	}
	if !strings.Contains(c.CallIDs[0], "192.168.1.50") || !strings.Contains(c.CallIDs[1], "203.0.113.2") {
		t.Errorf("Call-IDs %v, want …@192.168.1.50 then …@203.0.113.2", c.CallIDs)
	}
	// Both Call-IDs select the same call.
	for _, id := range c.CallIDs {
		if got, err := Find(load(t, "alg-rewrite-call-id"), id); err != nil || got.ID != c.ID {
			t.Errorf("Find(%q) = %v, %v", id, got, err)
		}
	}
}

func TestFindErrors(t *testing.T) {
	if _, err := Find(nil, ""); !errors.Is(err, ErrNoCalls) {
		t.Errorf("empty: %v", err)
	}
	calls := load(t, "normal")
	for _, sel := range []string{"0", "999", "-1", "no-such-call-id"} {
		if _, err := Find(calls, sel); !errors.Is(err, ErrNoSuchCall) {
			t.Errorf("Find(%q) = %v, want ErrNoSuchCall", sel, err)
		}
	}
	if c, err := Find(calls, "1"); err != nil || c.N != 1 || !c.IsInvite() {
		t.Errorf("Find(1) = %v, %v", c, err)
	}
	if Build(nil, nil) != nil || len(Build(&capture.Trace{}, nil)) != 0 {
		t.Error("Build on no trace returned calls")
	}
}

func TestHTMLSelfContained(t *testing.T) {
	c, err := Find(load(t, "normal"), "")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, c); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []string{"<script", "src=\"http", "href=\"http", "<link"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q: not self-contained", bad)
		}
	}
	// Every message is in the page, its text escaped (SIP has <sip:…>).
	if n := strings.Count(page, " id=\"m"); n != len(c.Messages) {
		t.Errorf("%d message sections, want %d", n, len(c.Messages))
	}
	if !strings.Contains(page, "&lt;sip:") || strings.Contains(page, "<sip:") {
		t.Error("SIP URIs not escaped")
	}
	if !strings.Contains(page, c.ID) || !strings.Contains(page, "192.168.1.50") {
		t.Error("page misses the Call-ID or the private address")
	}
}

// Messages that barely look like SIP (no Call-ID, no CSeq, a message from
// an address to itself) still draw: a capture of a broken peer is exactly
// what the ladder is for.
func TestOddMessagesDraw(t *testing.T) {
	a := netip.MustParseAddrPort("192.168.1.50:5060")
	tr := &capture.Trace{SIP: []capture.Packet{
		{Iface: "x/lan", Kind: capture.KindSIP, Src: a, Dst: a, Payload: []byte("OPTIONS sip:x SIP/2.0\r\n\r\n")},
		{Iface: "x/lan", Kind: capture.KindSIP, Src: a, Dst: netip.MustParseAddrPort("10.0.0.1:5060"), Payload: []byte("SIP/2.0 200\r\nCall-ID: \r\n\r\n")},
	}}
	calls := Build(tr, nil)
	if len(calls) != 2 {
		t.Fatalf("%d calls, want 2 (nothing links the two messages)", len(calls))
	}
	for _, c := range calls {
		var buf bytes.Buffer
		if err := WriteText(&buf, c); err != nil {
			t.Fatal(err)
		}
		if err := WriteHTML(&buf, c); err != nil {
			t.Fatal(err)
		}
	}
	if got := calls[0].State(); got != "no final response" {
		t.Errorf("state %q", got)
	}
}

// Loss is counted from sequence gaps across the 16-bit wrap: 65534, 65535,
// 0, 2 is four packets with one (seq 1) missing, not 65535 lost; a
// duplicate counts once.
func TestRTPLossAcrossWrap(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := netip.MustParseAddrPort("192.168.1.50:5060")
	p := netip.MustParseAddrPort("203.0.113.10:5060")
	invite := "INVITE sip:bob@x SIP/2.0\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nc=IN IP4 192.168.1.50\r\nm=audio 16000 RTP/AVP 0\r\n"
	tr := &capture.Trace{SIP: []capture.Packet{{Time: start, Iface: "r/lan", Kind: capture.KindSIP, Src: a, Dst: p, Payload: []byte(invite)}}}
	src := netip.MustParseAddrPort("192.168.1.50:16000")
	dst := netip.MustParseAddrPort("203.0.113.3:17000")
	for i, seq := range []uint16{65534, 65535, 0, 0, 2} {
		tr.RTP = append(tr.RTP, capture.Packet{Time: start.Add(time.Duration(i+1) * 20 * time.Millisecond), Iface: "r/lan",
			Kind: capture.KindRTP, Src: src, Dst: dst, RTP: &capture.RTPHeader{Seq: seq, SSRC: 7}})
	}
	calls := Build(tr, nil)
	if len(calls) != 1 || len(calls[0].Streams) != 1 {
		t.Fatalf("calls %d, streams %v", len(calls), calls)
	}
	if s := calls[0].Streams[0]; s.Packets != 4 || s.Lost != 1 {
		t.Errorf("packets %d lost %d, want 4 and 1", s.Packets, s.Lost)
	}
	if v := calls[0].MediaVerdict(); len(v) != 1 || !strings.Contains(v[0], "one-way") {
		t.Errorf("verdict %v, want one-way", v)
	}
}
