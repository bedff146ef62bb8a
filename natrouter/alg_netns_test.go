package natrouter

// Root tests for the ALG modes: real SIP over UDP from a LAN namespace
// through the router namespace to a "server" in the WAN namespace, checking
// the bytes that come out. Like the other namespace tests they fail, never
// skip, without root.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/siplab/siplab/natrouter/sipalg"
)

// sipFixture is sipalg's captured-style INVITE moved into the test LAN,
// with a fresh Call-ID/branch per use and a correct Content-Length.
func sipFixture(t *testing.T, tag string, pad int) []byte {
	t.Helper()
	b, err := os.ReadFile("sipalg/testdata/invite-alice.sip")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "192.168.1.50", lanHost.String())
	s = strings.ReplaceAll(s, "Jc9vT2xWq4LmN7bP0aRe", "cid-"+tag)
	s = strings.ReplaceAll(s, "z9hG4bK.Yx3kQ2pWmLr8", "z9hG4bK."+tag)
	head, body, _ := strings.Cut(s, "\r\n\r\n")
	body += strings.Repeat("a=x-pad:0123456789abcdef\r\n", pad)
	lines := strings.Split(head, "\r\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "Content-Length:") {
			lines[i] = "Content-Length: " + strconv.Itoa(len(body))
		}
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n" + body)
}

// rawCapture reads IPv4 packets seen by a namespace (AF_PACKET, no link
// header), to check what the router put on the wire, checksums included.
type rawCapture struct{ fd int }

func captureIn(t *testing.T, ns string) *rawCapture {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var fd int
	var serr error
	proto := int(htons(unix.ETH_P_IP))
	if err := inNetNS(h, func() { fd, serr = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, proto) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatalf("AF_PACKET socket in %s: %v", ns, serr)
	}
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &rawCapture{fd: fd}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sipTo returns the next captured IPv4/UDP packet to dst:5060 whose payload
// contains marker, within d.
func (c *rawCapture) sipTo(dst netip.Addr, marker string, d time.Duration) ([]byte, bool) {
	buf := make([]byte, 70000)
	for end := time.Now().Add(d); time.Now().Before(end); {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil || n < 28 {
			continue
		}
		p := buf[:n]
		ihl := int(p[0]&0x0f) * 4
		if p[9] != 17 || !bytes.Equal(p[16:20], dst.AsSlice()) || len(p) < ihl+8 ||
			binary.BigEndian.Uint16(p[ihl+2:]) != 5060 || !bytes.Contains(p, []byte(marker)) {
			continue
		}
		return append([]byte(nil), p...), true
	}
	return nil, false
}

// checksOK verifies IPv4 and UDP lengths and checksums of a captured packet.
func checksOK(t *testing.T, p []byte) {
	t.Helper()
	ihl := int(p[0]&0x0f) * 4
	if int(binary.BigEndian.Uint16(p[2:])) != len(p) {
		t.Errorf("IPv4 total length %d, packet %d bytes", binary.BigEndian.Uint16(p[2:]), len(p))
	}
	hdr := append([]byte(nil), p[:ihl]...)
	got := binary.BigEndian.Uint16(hdr[10:])
	hdr[10], hdr[11] = 0, 0
	if want := sipalg.IPv4HeaderChecksum(hdr); got != want {
		t.Errorf("IPv4 checksum %#04x, want %#04x", got, want)
	}
	u := append([]byte(nil), p[ihl:]...)
	if int(binary.BigEndian.Uint16(u[4:])) != len(u) {
		t.Errorf("UDP length %d, datagram %d bytes", binary.BigEndian.Uint16(u[4:]), len(u))
	}
	got = binary.BigEndian.Uint16(u[6:])
	u[6], u[7] = 0, 0
	if want := sipalg.UDPChecksum(p[12:16], p[16:20], u); got != want {
		t.Errorf("UDP checksum %#04x, want %#04x", got, want)
	}
}

type sipPath struct {
	phone, server *net.UDPConn
	cap           *rawCapture
}

// send sends msg from the phone the way a SIP UA does over UDP: again
// after T1 (500 ms) when nothing came, three times at most. Retransmission
// is part of SIP, and the router needs it: a live switch drops the packets
// queued at that instant (the kernel flushes NFQUEUEs when it unregisters
// the old table's hooks, a few ms after the change). It returns what the
// server received (the first datagram carrying marker) and from where; ok is
// false when nothing arrived.
func (sp sipPath) send(t *testing.T, msg []byte, marker string) ([]byte, netip.AddrPort, bool) {
	t.Helper()
	buf := make([]byte, 70000)
	for try := 1; try <= 3; try++ {
		if _, err := sp.phone.WriteToUDPAddrPort(msg, netip.AddrPortFrom(remote1, 5060)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(500 * time.Millisecond)
		for {
			_ = sp.server.SetReadDeadline(deadline)
			n, from, err := sp.server.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if bytes.Contains(buf[:n], []byte(marker)) {
				if try > 1 {
					t.Logf("arrived on transmission %d", try)
				}
				return append([]byte(nil), buf[:n]...), from, true
			}
		}
	}
	return nil, netip.AddrPort{}, false
}

func newSIPPath(t *testing.T, tp *topo) sipPath {
	return sipPath{
		phone:  udpIn(t, tp.lan, netip.AddrPortFrom(lanHost, 5060)),
		server: udpIn(t, tp.wan, netip.AddrPortFrom(remote1, 5060)),
		cap:    captureIn(t, tp.wan),
	}
}

func setALG(t *testing.T, r *Router, spec string) {
	t.Helper()
	if _, err := r.Set(context.Background(), Settings{ALG: spec}); err != nil {
		t.Fatalf("set alg %s: %v", spec, err)
	}
	st, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ParseALG(spec)
	if st.ALG != want.Spec() || st.ALGDetail == nil || st.ALGDetail.Mode != want.Name {
		t.Fatalf("status alg %q %+v after set %s", st.ALG, st.ALGDetail, spec)
	}
}

func sipHdr(msg []byte, name string) string { return sipHeader(msg, strings.ToLower(name)) }

func sdpLine(msg []byte, prefix string) string {
	_, body, _ := strings.Cut(string(msg), "\r\n\r\n")
	for _, l := range strings.Split(body, "\r\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func clMatches(msg []byte) bool {
	_, body, _ := strings.Cut(string(msg), "\r\n\r\n")
	return sipHdr(msg, "content-length") == strconv.Itoa(len(body))
}

// TestALGModesLive switches one router through every mode and fault and
// checks the bytes each one puts on the WAN.
func TestALGModesLive(t *testing.T) {
	tp := newTopo(t)
	r := tp.startRouter(t, "port-restricted", 0)
	sp := newSIPPath(t, tp)
	wan := wanRtr.String()
	step := 0
	send := func(t *testing.T, pad int) (in, out []byte, from netip.AddrPort, ok bool) {
		t.Helper()
		step++
		tag := fmt.Sprintf("s%d", step)
		in = sipFixture(t, tag, pad)
		out, from, ok = sp.send(t, in, "cid-"+tag+"@")
		return in, out, from, ok
	}

	t.Run("off", func(t *testing.T) {
		setALG(t, r, "off")
		in, out, from, ok := send(t, 0)
		if !ok {
			t.Fatal("INVITE did not cross the router")
		}
		if !bytes.Equal(in, out) {
			t.Errorf("ALG off changed the message:\n%s", out)
		}
		if from.Addr() != wanRtr {
			t.Errorf("not NATed: from %s", from)
		}
	})

	t.Run("kernel", func(t *testing.T) {
		setALG(t, r, "kernel")
		in, out, from, ok := send(t, 0)
		if !ok {
			t.Fatal("INVITE did not cross the router")
		}
		mapped := strconv.Itoa(int(from.Port()))
		for _, c := range []struct{ what, got, want string }{
			{"Via", sipHdr(out, "via"), "SIP/2.0/UDP " + wan + ":" + mapped + ";branch="},
			{"Contact", sipHdr(out, "contact"), "<sip:alice@" + wan + ":" + mapped},
			{"o=", sdpLine(out, "o="), "o=alice 3120489712 3120489712 IN IP4 " + wan},
			{"c=", sdpLine(out, "c="), "c=IN IP4 " + wan},
			// Left alone by Linux:
			{"Call-ID", sipHdr(out, "call-id"), sipHdr(in, "call-id")},
			{"From", sipHdr(out, "from"), sipHdr(in, "from")},
			{"m=", sdpLine(out, "m="), "m=audio 16000 "},
		} {
			if !strings.HasPrefix(c.got, c.want) {
				t.Errorf("kernel ALG %s: got %q, want prefix %q", c.what, c.got, c.want)
			}
		}
		if !clMatches(out) {
			t.Errorf("kernel ALG left Content-Length %s for a changed body", sipHdr(out, "content-length"))
		}
	})

	modes := []string{"broken:none"}
	for _, f := range sipalg.FaultNames() {
		modes = append(modes, "broken:"+f)
	}
	modes = append(modes, "broken:contact-not-via+strip-rport+stale-content-length")
	for _, spec := range modes {
		t.Run(spec, func(t *testing.T) {
			setALG(t, r, spec)
			mode, _ := ParseALG(spec)
			in, out, from, ok := send(t, 0)
			if !ok {
				t.Fatal("INVITE did not cross the router")
			}
			// What came out is exactly what the pure ALG computes for the
			// mapping the server saw.
			want := sipalg.Mangle(in, sipalg.Params{LAN: lanGW.Masked(), WAN: wanRtr, MappedPort: from.Port()},
				sipalg.PacketInfo{IPLen: 28 + len(in), MTU: 1500}, mode.Faults)
			if !want.Changed || !bytes.Equal(out, want.Msg) {
				t.Errorf("server got:\n%s\nwant:\n%s", out, want.Msg)
			}
			if pkt, ok := sp.cap.sipTo(remote1, "cid-s"+strconv.Itoa(step)+"@", 2*time.Second); !ok {
				t.Error("the rewritten packet was not seen on the WAN")
			} else {
				checksOK(t, pkt)
			}
			if mode.Faults.Has("drop-large") {
				// 2 kB does not fit the LAN's 1500-byte MTU: it arrives
				// in fragments and the ALG drops it.
				if _, out, _, ok := send(t, 60); ok {
					t.Errorf("drop-large let a %d-byte message through", len(out))
				}
			} else if _, out, _, ok := send(t, 60); !ok || !bytes.Contains(out, []byte("a=x-pad")) {
				t.Errorf("a 2 kB INVITE did not cross the router")
			}
			st, err := r.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if q := st.ALGDetail.Queue; q == nil || q.Modified == 0 {
				t.Errorf("queue stats %+v", q)
			}
		})
	}

	t.Run("off restores", func(t *testing.T) {
		setALG(t, r, "off")
		in, out, _, ok := send(t, 0)
		if !ok || !bytes.Equal(in, out) {
			t.Errorf("after off the message is not untouched (ok=%v):\n%s", ok, out)
		}
		if st, _ := r.Status(context.Background()); st.ALGDetail.Queue != nil {
			t.Error("queue consumer still running after off")
		}
	})
}

// TestBrokenALGFailsOpen kills the mangler behind the router's back: the
// rules still queue, and the bypass flag must let SIP through unchanged.
func TestBrokenALGFailsOpen(t *testing.T) {
	tp := newTopo(t)
	r := tp.startRouter(t, "port-restricted", 0)
	sp := newSIPPath(t, tp)
	setALG(t, r, "broken:none")
	in := sipFixture(t, "alive", 0)
	if out, _, ok := sp.send(t, in, "cid-alive@"); !ok || bytes.Equal(in, out) {
		t.Fatalf("mangler not working before the kill (ok=%v)", ok)
	}
	r.mu.Lock()
	r.algq.close() // the consumer dies; the NFQUEUE rule stays
	r.mu.Unlock()
	in = sipFixture(t, "dead", 0)
	out, _, ok := sp.send(t, in, "cid-dead@")
	if !ok {
		t.Fatal("SIP blackholed after the ALG consumer died")
	}
	if !bytes.Equal(in, out) {
		t.Errorf("dead ALG still rewrote:\n%s", out)
	}
}

// TestKernelALGAvailableHere: this host's kernel has nf_nat_sip (the lab
// notes say so), so the kernel mode must not be refused here.
func TestKernelALGAvailableHere(t *testing.T) {
	requireRoot(t)
	if err := checkKernelALG(); err != nil {
		t.Errorf("kernel ALG refused on a kernel that has it: %v", err)
	}
	if s := DetectKernelSIP(); s.NATSIP == "unknown" || s.NATSIP == "missing" {
		t.Errorf("nf_nat_sip not detected: %+v", s)
	}
}
