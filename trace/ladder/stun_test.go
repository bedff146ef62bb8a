package ladder

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/siplab/siplab/trace/capture"
	"github.com/siplab/siplab/trace/capture/capturetest"
)

// Addresses of the browser site (lab/browsersite) and the lab's servers.
var (
	brLAN   = netip.MustParseAddrPort("192.168.9.10:50000")
	brWAN   = netip.MustParseAddrPort("203.0.113.9:50000") // router-w keeps ports
	gwICE   = netip.MustParseAddrPort("203.0.113.5:8443")  // the SBC's WebRTC gateway
	stunSrv = netip.MustParseAddrPort("203.0.113.20:3478")
	relay   = netip.MustParseAddrPort("203.0.113.20:49152") // the browser's TURN allocation
	sbcCore = netip.MustParseAddrPort("10.0.0.5:5060")
	prxCore = netip.MustParseAddrPort("10.0.0.10:5060")
)

// browserLab writes the capture folder of one browser call, laid out as
// the lab records it (router-w on both sides, the SBC on both): dave's
// browser gathers (STUN Binding, TURN Allocate answered 401 then a relay),
// the SBC's INVITE reaches the proxy, the browser checks the gateway
// (first without, then with USE-CANDIDATE, a relayed check through TURN
// ChannelData, keepalives every 2.5 s), refreshes its allocation, hangs
// up; then alice's phone, elsewhere, asks the same STUN server, and the
// browser's keepalives stop. A second, ordinary call through the SBC
// follows, which has no STUN.
func browserLab(t testing.TB) (dir string, t0 time.Time) {
	t.Helper()
	dir = t.TempDir()
	t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	rw, err := capturetest.NewFile(dir, "router-w", "lan", "wan")
	if err != nil {
		t.Fatal(err)
	}
	sbc, err := capturetest.NewFile(dir, "sbc", "internet", "core")
	if err != nil {
		t.Fatal(err)
	}
	ra, err := capturetest.NewFile(dir, "router-a", "lan", "wan")
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		f     *capturetest.File
		side  string
		at    time.Time
		s, d  netip.AddrPort
		bytes []byte
	}
	var recs []rec
	txn := byte(0)
	msg := func(setters ...stun.Setter) []byte {
		txn++
		id := [stun.TransactionIDSize]byte{0xb0, txn}
		m, err := stun.Build(append([]stun.Setter{stun.NewTransactionIDSetter(id)}, setters...)...)
		if err != nil {
			t.Fatal(err)
		}
		return m.Raw
	}
	// up is a packet from the browser: its LAN copy, then router-w's WAN
	// copy, which the SBC records too when it is for the gateway.
	up := func(at time.Time, dst netip.AddrPort, b []byte) {
		recs = append(recs, rec{rw, "lan", at, brLAN, dst, b}, rec{rw, "wan", at.Add(200 * time.Microsecond), brWAN, dst, b})
		if dst == gwICE {
			recs = append(recs, rec{sbc, "internet", at.Add(300 * time.Microsecond), brWAN, dst, b})
		}
	}
	down := func(at time.Time, src netip.AddrPort, b []byte) {
		if src == gwICE {
			recs = append(recs, rec{sbc, "internet", at, src, brWAN, b})
		}
		recs = append(recs, rec{rw, "wan", at.Add(100 * time.Microsecond), src, brWAN, b}, rec{rw, "lan", at.Add(300 * time.Microsecond), src, brLAN, b})
	}
	sip := func(at time.Time, src, dst netip.AddrPort, text string) {
		recs = append(recs, rec{sbc, "core", at, src, dst, []byte(strings.ReplaceAll(text, "\n", "\r\n"))})
	}
	resp := func(req []byte, setters ...stun.Setter) []byte {
		var m stun.Message
		m.Raw = append([]byte(nil), req...)
		if err := m.Decode(); err != nil {
			t.Fatal(err)
		}
		out, err := stun.Build(append([]stun.Setter{stun.NewTransactionIDSetter(m.TransactionID)}, setters...)...)
		if err != nil {
			t.Fatal(err)
		}
		return out.Raw
	}
	xor := func(t stun.AttrType, a netip.AddrPort) stun.Setter {
		return setter(func(m *stun.Message) error {
			x := stun.XORMappedAddress{IP: net.IP(a.Addr().AsSlice()), Port: int(a.Port())}
			return x.AddToAs(m, t)
		})
	}
	check := func(at time.Time, nominate bool) {
		s := []stun.Setter{stun.BindingRequest, stun.NewUsername("gwufrag:brufrag"), attr{stun.AttrPriority, []byte{0x6e, 0, 0x1e, 0xff}},
			attr{stun.AttrICEControlling, make([]byte, 8)}}
		if nominate {
			s = append(s, attr{stun.AttrUseCandidate, nil})
		}
		req := msg(append(s, stun.NewShortTermIntegrity("pwd"), stun.Fingerprint)...)
		up(at, gwICE, req)
		down(at.Add(2*time.Millisecond), gwICE, resp(req, stun.BindingSuccess, xor(stun.AttrXORMappedAddress, brWAN), stun.NewShortTermIntegrity("pwd"), stun.Fingerprint))
	}

	// Gathering, before the offer leaves over WSS.
	g := t0.Add(-800 * time.Millisecond)
	b := msg(stun.BindingRequest)
	up(g, stunSrv, b)
	down(g.Add(time.Millisecond), stunSrv, resp(b, stun.BindingSuccess, xor(stun.AttrXORMappedAddress, brWAN)))
	a1 := msg(stun.NewType(stun.MethodAllocate, stun.ClassRequest), attr{stun.AttrRequestedTransport, []byte{17, 0, 0, 0}})
	up(g.Add(10*time.Millisecond), stunSrv, a1)
	down(g.Add(11*time.Millisecond), stunSrv, resp(a1, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse), stun.CodeUnauthorized, stun.NewRealm("siplab"), stun.NewNonce("n")))
	a2 := msg(stun.NewType(stun.MethodAllocate, stun.ClassRequest), attr{stun.AttrRequestedTransport, []byte{17, 0, 0, 0}}, stun.NewUsername("dave"))
	up(g.Add(20*time.Millisecond), stunSrv, a2)
	down(g.Add(22*time.Millisecond), stunSrv, resp(a2, stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse),
		xor(stun.AttrXORRelayedAddress, relay), xor(stun.AttrXORMappedAddress, brWAN), attr{stun.AttrLifetime, []byte{0, 0, 2, 0x58}}))

	// A STUN server the page was given that nobody runs: asked twice.
	dead := netip.MustParseAddrPort("203.0.113.21:3478")
	db := msg(stun.BindingRequest)
	up(g.Add(30*time.Millisecond), dead, db)
	up(g.Add(130*time.Millisecond), dead, db)

	// The call on the SBC's core side.
	const inv = `INVITE sip:bob@siplab.test SIP/2.0
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-br1
From: <sip:dave@siplab.test>;tag=d1
To: <sip:bob@siplab.test>
Call-ID: core-br-1
CSeq: 1 INVITE
Content-Type: application/sdp
Content-Length: 0

`
	sip(t0, sbcCore, prxCore, inv)
	sip(t0.Add(300*time.Millisecond), prxCore, sbcCore, "SIP/2.0 200 OK\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-br1\nFrom: <sip:dave@siplab.test>;tag=d1\nTo: <sip:bob@siplab.test>;tag=b1\nCall-ID: core-br-1\nCSeq: 1 INVITE\nContent-Length: 0\n\n")
	sip(t0.Add(310*time.Millisecond), sbcCore, prxCore, "ACK sip:bob@siplab.test SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-br2\nFrom: <sip:dave@siplab.test>;tag=d1\nTo: <sip:bob@siplab.test>;tag=b1\nCall-ID: core-br-1\nCSeq: 1 ACK\nContent-Length: 0\n\n")

	// The browser reaches the gateway: a permission and a channel on its
	// relay, checks direct and relayed, the nomination.
	c := t0.Add(320 * time.Millisecond)
	cp := msg(stun.NewType(stun.MethodCreatePermission, stun.ClassRequest), xor(stun.AttrXORPeerAddress, gwICE), stun.NewUsername("dave"))
	up(c, stunSrv, cp)
	down(c.Add(time.Millisecond), stunSrv, resp(cp, stun.NewType(stun.MethodCreatePermission, stun.ClassSuccessResponse)))
	cb := msg(stun.NewType(stun.MethodChannelBind, stun.ClassRequest), attr{stun.AttrChannelNumber, []byte{0x40, 0, 0, 0}}, xor(stun.AttrXORPeerAddress, gwICE))
	up(c.Add(5*time.Millisecond), stunSrv, cb)
	down(c.Add(6*time.Millisecond), stunSrv, resp(cb, stun.NewType(stun.MethodChannelBind, stun.ClassSuccessResponse)))
	check(c.Add(10*time.Millisecond), false)
	// A relayed check: ChannelData to the relay, which sends the check on.
	rc := msg(stun.BindingRequest, stun.NewUsername("gwufrag:brufrag"), attr{stun.AttrICEControlling, make([]byte, 8)})
	chd := func(b []byte) []byte { return append([]byte{0x40, 0, byte(len(b) >> 8), byte(len(b))}, b...) }
	up(c.Add(12*time.Millisecond), stunSrv, chd(rc))
	recs = append(recs, rec{sbc, "internet", c.Add(13 * time.Millisecond), relay, gwICE, rc})
	rr := resp(rc, stun.BindingSuccess, xor(stun.AttrXORMappedAddress, relay))
	recs = append(recs, rec{sbc, "internet", c.Add(14 * time.Millisecond), gwICE, relay, rr})
	down(c.Add(15*time.Millisecond), stunSrv, chd(rr))
	check(c.Add(40*time.Millisecond), true)
	// The browser's SRTP on the nominated pair, both ways (its header is
	// plain RTP): 10 packets each.
	srtp := func(seq uint16, ssrc uint32) []byte {
		b := make([]byte, 12+160)
		b[0] = 0x80
		binary.BigEndian.PutUint16(b[2:], seq)
		binary.BigEndian.PutUint32(b[4:], uint32(seq)*160)
		binary.BigEndian.PutUint32(b[8:], ssrc)
		return b
	}
	for k := range 10 {
		at := c.Add(60*time.Millisecond + time.Duration(k)*20*time.Millisecond)
		up(at, gwICE, srtp(uint16(k), 0xb1))
		down(at.Add(5*time.Millisecond), gwICE, srtp(uint16(k), 0x5b))
	}
	// Consent keepalives every 2.5 s, a Refresh, the hangup at 10 s.
	for k := 1; k <= 3; k++ {
		check(c.Add(time.Duration(k)*2500*time.Millisecond), false)
	}
	rf := msg(stun.NewType(stun.MethodRefresh, stun.ClassRequest), attr{stun.AttrLifetime, []byte{0, 0, 2, 0x58}})
	up(t0.Add(5*time.Second), stunSrv, rf)
	down(t0.Add(5*time.Second+time.Millisecond), stunSrv, resp(rf, stun.NewType(stun.MethodRefresh, stun.ClassSuccessResponse)))
	end := t0.Add(10 * time.Second)
	sip(end, sbcCore, prxCore, "BYE sip:bob@siplab.test SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-br3\nFrom: <sip:dave@siplab.test>;tag=d1\nTo: <sip:bob@siplab.test>;tag=b1\nCall-ID: core-br-1\nCSeq: 2 BYE\nContent-Length: 0\n\n")
	sip(end.Add(20*time.Millisecond), prxCore, sbcCore, "SIP/2.0 200 OK\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-br3\nFrom: <sip:dave@siplab.test>;tag=d1\nTo: <sip:bob@siplab.test>;tag=b1\nCall-ID: core-br-1\nCSeq: 2 BYE\nContent-Length: 0\n\n")
	// Not this call's: alice's phone asks the STUN server during it; the
	// browser's allocation is released long after it.
	alice, aliceWAN := netip.MustParseAddrPort("192.168.1.50:40000"), netip.MustParseAddrPort("203.0.113.2:40000")
	ab := msg(stun.BindingRequest)
	recs = append(recs, rec{ra, "lan", t0.Add(time.Second), alice, stunSrv, ab}, rec{ra, "wan", t0.Add(time.Second + 100*time.Microsecond), aliceWAN, stunSrv, ab})
	late := msg(stun.NewType(stun.MethodRefresh, stun.ClassRequest), attr{stun.AttrLifetime, make([]byte, 4)})
	up(end.Add(30*time.Second), stunSrv, late)
	// A second call through the SBC, from a phone: no STUN is its.
	t1 := end.Add(40 * time.Second)
	sip(t1, sbcCore, prxCore, strings.NewReplacer("core-br-1", "core-ph-2", "dave", "alice", "br1", "ph1").Replace(inv))

	sort.SliceStable(recs, func(i, j int) bool { return recs[i].at.Before(recs[j].at) })
	for _, r := range recs {
		if err := r.f.UDP(r.side, r.at, r.s, r.d, r.bytes); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []*capturetest.File{rw, sbc, ra} {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir, t0
}

type attr struct {
	t stun.AttrType
	v []byte
}

func (a attr) AddTo(m *stun.Message) error { m.Add(a.t, a.v); return nil }

type setter func(*stun.Message) error

func (f setter) AddTo(m *stun.Message) error { return f(m) }

func readDir(t testing.TB, dir string) *capture.Trace {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.pcapng"))
	tr, err := capture.ReadFiles(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestBrowserCallSTUN(t *testing.T) {
	dir, _ := browserLab(t)
	calls := Build(readDir(t, dir), Lab())
	c, err := Find(calls, "1")
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, col := range c.Columns {
		cols = append(cols, col.Title())
	}
	// The browser's side left of the SBC, in the order its packets cross.
	if got := strings.Join(cols, " "); got != "browser router-w stun 203.0.113.21 sbc proxy" {
		t.Errorf("columns %q", got)
	}
	var labels []string
	for _, m := range c.STUN {
		labels = append(labels, fmt.Sprintf("%s@%s", m.Label, m.Iface))
		if m.Iface == "router-w/wan" && !strings.Contains(strings.Join(m.Seen, ","), "sbc/internet") && m.Dst == gwICE {
			t.Errorf("%s at router-w/wan: the SBC's copy not merged (seen %v)", m.Label, m.Seen)
		}
	}
	for _, want := range []string{"Allocate 401 Unauthorized@router-w/lan", "Allocate success@router-w/wan",
		"CreatePermission request@router-w/wan", "ChannelBind success@router-w/lan", "Binding request@sbc/internet"} {
		if !contains(labels, want) {
			t.Errorf("no %s among the drawn STUN: %v", want, labels)
		}
	}
	// Drawn once each: the plain check and the nominating one, on the
	// router's two sides, with their answers; the keepalives are a run.
	n := 0
	for _, m := range c.STUN {
		if m.STUN.Method == 1 && m.Iface == "router-w/lan" && m.Dst == gwICE {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d checks to the gateway drawn at router-w/lan, want 2 (plain, USE-CANDIDATE)", n)
	}
	var keep *STUNRun
	for i, r := range c.STUNRuns {
		if r.Label == "Binding request" && r.Dst == gwICE {
			keep = &c.STUNRuns[i]
		}
		if strings.HasPrefix(r.Label, "Refresh") && r.Exchanges != 0 {
			t.Errorf("a Refresh after the call counted: %+v", r)
		}
	}
	if keep == nil || keep.Exchanges != 3 || keep.Answered != 3 || keep.Every() != "every 2.5 s" {
		t.Fatalf("keepalive run %+v, want 3 answered every 2.5 s (runs %+v)", keep, c.STUNRuns)
	}
	if c.Columns[keep.From].Title() != "browser" || c.Columns[keep.To].Title() != "sbc" {
		t.Errorf("keepalive run drawn %s → %s", c.Columns[keep.From].Title(), c.Columns[keep.To].Title())
	}
	// The dead server's request is drawn once at each side of router-w,
	// its retransmission counted once, where the run is shown.
	dead := 0
	for _, m := range c.STUN {
		if m.Dst.Port() == 3478 && m.Dst.Addr().String() == "203.0.113.21" {
			dead++
		}
	}
	resent := 0
	for _, r := range c.STUNRuns {
		if r.Dst.Addr().String() == "203.0.113.21" {
			resent += r.Retransmits
		}
	}
	if dead != 2 || resent != 1 {
		t.Errorf("to the dead STUN server: %d drawn, %d retransmissions counted; want 2 and 1", dead, resent)
	}
	// Relayed media is counted, never drawn.
	frames := 0
	for _, r := range c.STUNRuns {
		if strings.HasPrefix(r.Label, "ChannelData") {
			frames += r.Exchanges
		}
	}
	if frames != 4 { // two frames, each at router-w's two sides
		t.Errorf("%d ChannelData frames counted, want 4", frames)
	}
	for _, m := range c.STUN {
		if m.Kind != capture.KindSTUN || m.STUN.Username == "" && m.STUN.Method == 1 && m.Request && m.Dst == gwICE {
			t.Errorf("drawn %s %+v", m.Kind, m.STUN)
		}
		if m.Iface == "router-w/wan" && m.Src == brWAN && m.NAT == "" {
			t.Errorf("%s at router-w/wan: no NAT marked", m.Label)
		}
	}
	// The browser's SRTP to the gateway's ICE port is the call's media: a
	// stream per direction at each side of router-w, the SBC's copy merged.
	if v := strings.Join(c.MediaVerdict(), "\n"); !strings.Contains(v, "router-w/lan: two-way, browser → router-w 10 packets, back 10") ||
		!strings.Contains(v, "router-w/wan: two-way, router-w → sbc 10 packets, back 10") || !strings.Contains(v, "sbc/internet: two-way") {
		t.Errorf("media verdict:\n%s", v)
	}
	// alice's Binding to the same server is not the browser's.
	for _, m := range c.STUN {
		if strings.HasPrefix(m.Iface, "router-a") {
			t.Errorf("alice's STUN attached: %s", m.Label)
		}
	}
	other, err := Find(calls, "2")
	if err != nil {
		t.Fatal(err)
	}
	if len(other.STUN)+len(other.STUNRuns) != 0 || len(other.Columns) != 2 {
		t.Errorf("a phone call through the SBC got STUN: %d drawn, %d runs, columns %d", len(other.STUN), len(other.STUNRuns), len(other.Columns))
	}
}

func TestBrowserCallGolden(t *testing.T) {
	dir, _ := browserLab(t)
	c, err := Find(Build(readDir(t, dir), Lab()), "1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, c); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "browser-ice", buf.Bytes())
	var h bytes.Buffer
	if err := WriteHTML(&h, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`class="ev stun"`, `class="ev stunrun"`, "3 Binding request", "USE-CANDIDATE", "gwufrag:brufrag"} {
		if !strings.Contains(h.String(), want) {
			t.Errorf("HTML has no %q", want)
		}
	}
}

// TestBrowserICEFixture reads two real browser calls (testdata/captures/
// browser-ice): the direct one through router-w's port-restricted NAT and
// the relay-only one through TURN under symmetric NAT.
func TestBrowserICEFixture(t *testing.T) {
	calls := load(t, "browser-ice")
	for _, tc := range []struct {
		call string
		// labels that must be drawn, and a run that must be counted
		drawn []string
		run   string
	}{
		{"2", []string{"Binding request@router-w/lan", "Binding success@router-w/wan", "Allocate 401@router-w/lan", "Allocate success@router-w/lan",
			"CreatePermission request@router-w/wan", "Send indication@router-w/lan", "Binding request@sbc/internet"}, "Binding request USE-CANDIDATE"},
		{"4", []string{"Allocate 401@router-w/lan", "ChannelBind request@router-w/wan", "Binding request@sbc/internet", "Refresh success@router-w/lan"}, "ChannelData 0x4000"},
	} {
		t.Run("call-"+tc.call, func(t *testing.T) {
			c, err := Find(calls, tc.call)
			if err != nil {
				t.Fatal(err)
			}
			var labels []string
			for _, m := range c.STUN {
				labels = append(labels, m.Label+"@"+m.Iface)
			}
			for _, want := range tc.drawn {
				if !contains(labels, want) {
					t.Errorf("no %s drawn: %v", want, labels)
				}
			}
			found := false
			for _, r := range c.STUNRuns {
				found = found || r.Label == tc.run
			}
			if !found {
				t.Errorf("no %s run: %+v", tc.run, c.STUNRuns)
			}
			if c.Columns[0].Title() != "browser" || c.Columns[1].Title() != "router-w" || c.Columns[2].Title() != "stun" || c.Columns[3].Title() != "sbc" {
				t.Errorf("columns start %s %s %s %s, want browser router-w stun sbc", c.Columns[0].Title(), c.Columns[1].Title(), c.Columns[2].Title(), c.Columns[3].Title())
			}
			// The media of the browser: its SRTP to the gateway's ICE port.
			seen := false
			for _, s := range c.Streams {
				seen = seen || s.Dst.Port() == 8443 || s.Src.Port() == 8443
			}
			if !seen {
				t.Error("no stream on the gateway's ICE port")
			}
			var buf bytes.Buffer
			if err := WriteText(&buf, c); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "browser-ice-call"+tc.call, buf.Bytes())
		})
	}
	// The proxy's challenge to the SBC's first INVITE is its own dialog:
	// it never carried the browser's media, and gets none of its STUN.
	for _, sel := range []string{"1", "3"} {
		if c, err := Find(calls, sel); err != nil || len(c.STUN)+len(c.STUNRuns)+len(c.Streams) != 0 {
			t.Errorf("call %s (the challenged INVITE): %v, STUN or media attached", sel, err)
		}
	}
}

// checkGolden compares a ladder with testdata/<name>.golden (-update
// writes it).
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./trace/ladder -run %s -update once, then read the file)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("ladder differs from %s:\n%s", golden, got)
	}
}
