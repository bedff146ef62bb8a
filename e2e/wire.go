package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/siplab/siplab/trace/siptext"
	"golang.org/x/sys/unix"
)

// WirePacket is one IPv4/UDP datagram seen on a lab bridge.
type WirePacket struct {
	At       time.Time
	Src, Dst netip.AddrPort
	Payload  []byte
	// Fragment is true for any piece of a fragmented datagram (Payload is
	// then the raw IP payload of that piece, ports zero unless first).
	Fragment bool
}

// FirstLine is the payload's first line (a SIP start line).
func (p WirePacket) FirstLine() string {
	l, _, _ := strings.Cut(string(p.Payload), "\r\n")
	return l
}

// Header returns the first value of a SIP header; compact forms match
// their full names, and further names are tried when the first has no
// value.
func (p WirePacket) Header(names ...string) string {
	for _, n := range names {
		if v := siptext.Header(p.Payload, n); v != "" {
			return v
		}
	}
	return ""
}

// Body is the SIP body.
func (p WirePacket) Body() string {
	_, b, _ := strings.Cut(string(p.Payload), "\r\n\r\n")
	return b
}

// SDPLine returns the first body line starting with prefix ("c=", "o=").
func (p WirePacket) SDPLine(prefix string) string {
	for _, l := range strings.Split(p.Body(), "\r\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// Wire captures IPv4 on a host bridge with an AF_PACKET socket in
// promiscuous mode: the host sees container-to-container unicast on its
// bridges that way (lab-network.md), before and after each router.
type Wire struct {
	Iface string
	fd    int
	done  chan struct{}

	mu   sync.Mutex
	pkts []WirePacket
}

// StartWire opens a capture on a host interface (needs root).
func StartWire(iface string) (*Wire, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("e2e: capture interface %s: %w", iface, err)
	}
	proto := htons(unix.ETH_P_IP)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("e2e: AF_PACKET socket (root needed): %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("e2e: bind capture to %s: %w", iface, err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("e2e: promiscuous %s: %w", iface, err)
	}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	w := &Wire{Iface: iface, fd: fd, done: make(chan struct{})}
	go w.loop()
	return w, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (w *Wire) loop() {
	buf := make([]byte, 65536)
	for {
		select {
		case <-w.done:
			return
		default:
		}
		n, _, err := unix.Recvfrom(w.fd, buf, 0)
		if err != nil || n < 20 {
			continue
		}
		if p, ok := parseUDP4(buf[:n]); ok {
			p.At = time.Now()
			w.mu.Lock()
			w.pkts = append(w.pkts, p)
			w.mu.Unlock()
		}
	}
}

func parseUDP4(b []byte) (WirePacket, bool) {
	if b[0]>>4 != 4 || b[9] != 17 {
		return WirePacket{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || total > len(b) || total < ihl {
		return WirePacket{}, false
	}
	src, _ := netip.AddrFromSlice(b[12:16])
	dst, _ := netip.AddrFromSlice(b[16:20])
	frag := binary.BigEndian.Uint16(b[6:8])
	p := WirePacket{Fragment: frag&0x3fff != 0}
	if frag&0x1fff != 0 || total < ihl+8 {
		// A later fragment: no UDP header.
		p.Src, p.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		p.Payload = append([]byte(nil), b[ihl:total]...)
		return p, true
	}
	u := b[ihl:total]
	p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(u[0:2]))
	p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(u[2:4]))
	p.Payload = append([]byte(nil), u[8:]...)
	return p, true
}

// Packets returns the captured datagrams that match keep.
func (w *Wire) Packets(keep func(WirePacket) bool) []WirePacket {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []WirePacket
	for _, p := range w.pkts {
		if keep == nil || keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// SIP returns captured SIP messages whose start line begins with start
// ("INVITE ", "SIP/2.0 200") and that contain all of the given strings.
func (w *Wire) SIP(start string, contains ...string) []WirePacket {
	return w.Packets(func(p WirePacket) bool {
		if p.Fragment && p.Src.Port() == 0 {
			return false
		}
		if !bytes.HasPrefix(p.Payload, []byte(start)) {
			return false
		}
		for _, c := range contains {
			if !bytes.Contains(p.Payload, []byte(c)) {
				return false
			}
		}
		return true
	})
}

// Close stops the capture.
func (w *Wire) Close() {
	select {
	case <-w.done:
	default:
		close(w.done)
		time.Sleep(150 * time.Millisecond) // let the loop see it before the fd goes
		unix.Close(w.fd)
	}
}
