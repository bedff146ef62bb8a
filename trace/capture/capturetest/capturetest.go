// Package capturetest writes capture folders shaped like the lab's, for
// tests and benchmarks of their readers: calls from alice (site A) to bob
// (site B) through the proxy, recorded on both sides of both routers
// (router-a.pcapng, router-b.pcapng), with their RTP every 20 ms both ways
// for as long as the calls stay up. Fixture reads the folders recorded
// from the real lab (testdata/captures) instead.
package capturetest

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/siplab/siplab/internal/fixtures"
	"github.com/siplab/siplab/trace/capture"
)

// Lab is a capture folder being written.
type Lab struct {
	Dir string
	// Now is how far the captures reach.
	Now time.Time

	files map[string]*os.File
	ws    map[string]*pcapgo.NgWriter
	calls []call
}

type call struct {
	n       int
	start   time.Time
	aPort   uint16 // alice's RTP port
	bPort   uint16 // bob's
	seqA    uint16
	seqB    uint16
	nextRTP time.Time
}

var (
	aliceLAN = netip.MustParseAddr("192.168.1.50")
	routerA  = netip.MustParseAddr("203.0.113.2")
	routerB  = netip.MustParseAddr("203.0.113.3")
	proxy    = netip.MustParseAddr("203.0.113.10")
	bobLAN   = netip.MustParseAddr("192.168.2.50")
)

// New starts a folder at t0 with n calls, one placed every 500 ms; each
// is answered 300 ms after its INVITE and stays up.
func New(dir string, n int, t0 time.Time) (*Lab, error) {
	l := &Lab{Dir: dir, Now: t0, files: map[string]*os.File{}, ws: map[string]*pcapgo.NgWriter{}}
	for _, node := range []string{"router-a", "router-b"} {
		f, err := os.Create(filepath.Join(dir, node+".pcapng"))
		if err != nil {
			return nil, err
		}
		ifc := func(side string) pcapgo.NgInterface {
			return pcapgo.NgInterface{Name: node + "/" + side, OS: runtime.GOOS, LinkType: layers.LinkTypeEthernet, SnapLength: 65535, TimestampResolution: 9}
		}
		w, err := pcapgo.NewNgWriterInterface(f, ifc("lan"), pcapgo.NgWriterOptions{})
		if err == nil {
			_, err = w.AddInterface(ifc("wan"))
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("capturetest: %s: %w", node, err)
		}
		l.files[node], l.ws[node] = f, w
	}
	for i := range n {
		st := t0.Add(time.Duration(i) * 500 * time.Millisecond)
		l.calls = append(l.calls, call{n: i + 1, start: st, aPort: uint16(16000 + 2*i), bPort: uint16(17000 + 2*i), nextRTP: st.Add(320 * time.Millisecond)})
	}
	return l, nil
}

// Close closes the files.
func (l *Lab) Close() error {
	var first error
	for _, f := range l.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Packets counts what a folder written for d holds, roughly: for sizing.
func Packets(n int, d time.Duration) int { return n * int(d/(20*time.Millisecond)) * 8 }

// Advance writes everything the calls send in the next d and flushes it
// to the files, as the capture points flush.
func (l *Lab) Advance(d time.Duration) error {
	end := l.Now.Add(d)
	for i := range l.calls {
		c := &l.calls[i]
		if !c.start.Before(l.Now) && c.start.Before(end) {
			if err := l.signal(c); err != nil {
				return err
			}
		}
		for ; c.nextRTP.Before(end); c.nextRTP = c.nextRTP.Add(20 * time.Millisecond) {
			if c.nextRTP.Before(l.Now) {
				continue
			}
			if err := l.media(c, c.nextRTP); err != nil {
				return err
			}
		}
	}
	l.Now = end
	for node, w := range l.ws {
		if err := w.Flush(); err != nil {
			return fmt.Errorf("capturetest: flush %s: %w", node, err)
		}
	}
	return nil
}

// AdvanceUntimed is Advance with b's timer stopped: a benchmark's poll
// round measures reading what the folder gained, not writing it.
func (l *Lab) AdvanceUntimed(b *testing.B, d time.Duration) {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	if err := l.Advance(d); err != nil {
		b.Fatal(err)
	}
}

// hop writes a packet from site A to site B (ab) or back as the four
// capture points see it, each a little later than the last.
func (l *Lab) hop(at time.Time, ab bool, aPort, bPort, pPort uint16, payload []byte) error {
	type view struct {
		node, side string
		src, dst   netip.AddrPort
	}
	var views []view
	ap := func(a netip.Addr, p uint16) netip.AddrPort { return netip.AddrPortFrom(a, p) }
	if pPort != 0 { // SIP: through the proxy
		if ab {
			views = []view{{"router-a", "lan", ap(aliceLAN, aPort), ap(proxy, pPort)}, {"router-a", "wan", ap(routerA, aPort), ap(proxy, pPort)},
				{"router-b", "wan", ap(proxy, pPort), ap(routerB, bPort)}, {"router-b", "lan", ap(proxy, pPort), ap(bobLAN, bPort)}}
		} else {
			views = []view{{"router-b", "lan", ap(bobLAN, bPort), ap(proxy, pPort)}, {"router-b", "wan", ap(routerB, bPort), ap(proxy, pPort)},
				{"router-a", "wan", ap(proxy, pPort), ap(routerA, aPort)}, {"router-a", "lan", ap(proxy, pPort), ap(aliceLAN, aPort)}}
		}
	} else if ab { // RTP: straight between the routers
		views = []view{{"router-a", "lan", ap(aliceLAN, aPort), ap(routerB, bPort)}, {"router-a", "wan", ap(routerA, aPort), ap(routerB, bPort)},
			{"router-b", "wan", ap(routerA, aPort), ap(routerB, bPort)}, {"router-b", "lan", ap(routerA, aPort), ap(bobLAN, bPort)}}
	} else {
		views = []view{{"router-b", "lan", ap(bobLAN, bPort), ap(routerA, aPort)}, {"router-b", "wan", ap(routerB, bPort), ap(routerA, aPort)},
			{"router-a", "wan", ap(routerB, bPort), ap(routerA, aPort)}, {"router-a", "lan", ap(routerB, bPort), ap(aliceLAN, aPort)}}
	}
	for k, v := range views {
		frame, err := udpFrame(v.src, v.dst, payload)
		if err != nil {
			return err
		}
		idx := 0
		if v.side == "wan" {
			idx = 1
		}
		ts := at.Add(time.Duration(k) * 50 * time.Microsecond)
		ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(frame), Length: len(frame), InterfaceIndex: idx}
		if err := l.ws[v.node].WritePacket(ci, frame); err != nil {
			return fmt.Errorf("capturetest: %s: %w", v.node, err)
		}
	}
	return nil
}

// signal writes a call's setup: INVITE, 100, 180, 200, ACK.
func (l *Lab) signal(c *call) error {
	id := fmt.Sprintf("call-%02d@192.168.1.50", c.n)
	branch := fmt.Sprintf("z9hG4bK-%02d", c.n)
	sdp := func(host netip.Addr, port uint16) string {
		return fmt.Sprintf("v=0\r\no=- %d 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", c.n, host, host, port)
	}
	msg := func(start, cseq, toTag, body string) []byte {
		m := fmt.Sprintf("%s\r\nVia: SIP/2.0/UDP 192.168.1.50:5060;branch=%s;rport\r\nFrom: <sip:alice@siplab.test>;tag=a%02d\r\n"+
			"To: <sip:bob@siplab.test>%s\r\nCall-ID: %s\r\nCSeq: %s\r\nContact: <sip:alice@192.168.1.50:5060>\r\n", start, branch, c.n, toTag, id, cseq)
		if body != "" {
			m += "Content-Type: application/sdp\r\n"
		}
		return []byte(m + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
	}
	tag := fmt.Sprintf(";tag=b%02d", c.n)
	steps := []struct {
		after time.Duration
		ab    bool
		m     []byte
	}{
		{0, true, msg("INVITE sip:bob@siplab.test SIP/2.0", "1 INVITE", "", sdp(aliceLAN, c.aPort))},
		{5 * time.Millisecond, false, msg("SIP/2.0 100 Trying", "1 INVITE", "", "")},
		{40 * time.Millisecond, false, msg("SIP/2.0 180 Ringing", "1 INVITE", tag, "")},
		{300 * time.Millisecond, false, msg("SIP/2.0 200 OK", "1 INVITE", tag, sdp(bobLAN, c.bPort))},
		{310 * time.Millisecond, true, msg("ACK sip:bob@192.168.2.50:5060 SIP/2.0", "1 ACK", tag, "")},
	}
	for _, s := range steps {
		if err := l.hop(c.start.Add(s.after), s.ab, 5060, 5060, 5060, s.m); err != nil {
			return err
		}
	}
	return nil
}

// media writes one RTP packet each way.
func (l *Lab) media(c *call, at time.Time) error {
	for _, ab := range []bool{true, false} {
		b := make([]byte, 12+160)
		b[0], b[1] = 0x80, 0
		seq, ssrc := &c.seqA, uint32(0xa000+c.n)
		if !ab {
			seq, ssrc = &c.seqB, uint32(0xb000+c.n)
		}
		*seq++
		binary.BigEndian.PutUint16(b[2:], *seq)
		binary.BigEndian.PutUint32(b[4:], uint32(*seq)*160)
		binary.BigEndian.PutUint32(b[8:], ssrc)
		if err := l.hop(at.Add(time.Millisecond), ab, c.aPort, c.bPort, 0, b); err != nil {
			return err
		}
	}
	return nil
}

var macA, macB = net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}

func udpFrame(src, dst netip.AddrPort, payload []byte) ([]byte, error) {
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		return nil, fmt.Errorf("capturetest: frame: %w", err)
	}
	return buf.Bytes(), nil
}

// Up is a folder in tb's temporary directory with n calls placed from a
// fixed moment and d of their traffic written (calls one every 500 ms,
// so n calls are all up after n/2 seconds); it is closed with the test.
func Up(tb testing.TB, n int, d time.Duration) *Lab {
	tb.Helper()
	l, err := New(tb.TempDir(), n, time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	if err := l.Advance(d); err != nil {
		tb.Fatal(err)
	}
	return l
}

// Fixture reads a capture folder recorded from the real lab,
// testdata/captures/<scenario> of the repository, every capture point
// merged.
func Fixture(tb testing.TB, scenario string) *capture.Trace {
	tb.Helper()
	tr, err := capture.ReadFiles(fixtures.Files(tb, scenario)...)
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}
