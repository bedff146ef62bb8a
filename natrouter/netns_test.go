package natrouter

// Tests that need root: they build a LAN namespace, a router namespace and a
// WAN namespace joined by veth pairs, run the router in the middle and send
// real UDP through it. They fail (never skip) without root, because a
// skipped NAT test is a NAT nobody tested.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/siplab/siplab/internal/runtest"
)

type topo struct {
	lan, rtr, wan string // namespace names
	rtrPath       string
}

var (
	lanHost   = netip.MustParseAddr("192.168.77.50")
	lanGW     = netip.MustParsePrefix("192.168.77.1/24")
	wanRtr    = netip.MustParseAddr("203.0.113.2")
	remote1   = netip.MustParseAddr("203.0.113.10")
	remote2   = netip.MustParseAddr("203.0.113.11")
	wanSubnet = netip.MustParsePrefix("203.0.113.0/24")
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces, nftables, conntrack); run it as root: go test ./natrouter/")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("this test needs iproute2's ip binary: %v", err)
	}
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newTopo builds LAN ns <-> router ns <-> WAN ns and removes it on cleanup.
func newTopo(t *testing.T) *topo {
	t.Helper()
	requireRoot(t)
	// Unique, lab-prefixed and short: veth names are limited to 15 bytes
	// ("siplab12345l0").
	p := fmt.Sprintf("siplab%05d", (os.Getpid()*1000+int(time.Now().UnixNano()/1000%1000))%100000)
	tp := &topo{lan: p + "-lan", rtr: p + "-rtr", wan: p + "-wan", rtrPath: "/run/netns/" + p + "-rtr"}
	for _, ns := range []string{tp.lan, tp.rtr, tp.wan} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	lanV, lanR, wanV, wanR := p+"l0", p+"l1", p+"w0", p+"w1"
	sh(t, "ip", "link", "add", lanV, "netns", tp.lan, "type", "veth", "peer", "name", lanR, "netns", tp.rtr)
	sh(t, "ip", "link", "add", wanV, "netns", tp.wan, "type", "veth", "peer", "name", wanR, "netns", tp.rtr)

	in := func(ns string, args ...string) { sh(t, append([]string{"ip", "netns", "exec", ns}, args...)...) }
	for _, ns := range []string{tp.lan, tp.rtr, tp.wan} {
		in(ns, "ip", "link", "set", "lo", "up")
		in(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
	}
	in(tp.lan, "ip", "addr", "add", lanHost.String()+"/24", "dev", lanV)
	in(tp.lan, "ip", "link", "set", lanV, "up")
	in(tp.lan, "ip", "route", "add", "default", "via", lanGW.Addr().String())

	in(tp.rtr, "ip", "addr", "add", lanGW.String(), "dev", lanR)
	in(tp.rtr, "ip", "addr", "add", wanRtr.String()+"/24", "dev", wanR)
	in(tp.rtr, "ip", "link", "set", lanR, "up")
	in(tp.rtr, "ip", "link", "set", wanR, "up")
	in(tp.rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1")

	in(tp.wan, "ip", "addr", "add", remote1.String()+"/24", "dev", wanV)
	in(tp.wan, "ip", "addr", "add", remote2.String()+"/24", "dev", wanV)
	in(tp.wan, "ip", "link", "set", wanV, "up")
	// Lets the WAN side aim packets straight at the LAN host, as an
	// attacker on the ISP's segment could: the forward chain must drop them.
	in(tp.wan, "ip", "route", "add", "192.168.77.0/24", "via", wanRtr.String())
	return tp
}

// startRouter runs the router library in the router namespace.
func (tp *topo) startRouter(t *testing.T, preset string, pinhole time.Duration) *Router {
	t.Helper()
	ctx := context.Background()
	r, err := New(ctx, Config{
		LAN:           lanGW, // exact address selector
		WAN:           wanSubnet,
		Preset:        preset,
		Pinhole:       pinhole,
		NetNS:         tp.rtrPath,
		InterfaceWait: 2 * time.Second,
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := r.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return r
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// udpIn opens a UDP socket inside a namespace. A socket belongs to the
// namespace it was created in, so only the creation needs the switch.
func udpIn(t *testing.T, ns string, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("open netns %s: %v", ns, err)
	}
	defer h.Close()
	var conn *net.UDPConn
	var lerr error
	if err := inNetNS(h, func() {
		conn, lerr = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
	}); err != nil {
		t.Fatalf("enter netns %s: %v", ns, err)
	}
	if lerr != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, lerr)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// startEcho runs an echo server in the WAN namespace.
func startEcho(t *testing.T, tp *topo, addr netip.AddrPort, altPort uint16) {
	t.Helper()
	conn := udpIn(t, tp.wan, addr)
	var alt net.PacketConn
	if altPort != 0 {
		alt = udpIn(t, tp.wan, netip.AddrPortFrom(addr.Addr(), altPort))
	}
	runtest.Serve(t, func(ctx context.Context) error {
		if err := ServeEcho(ctx, conn, alt, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
			return fmt.Errorf("echo %s: %w", addr, err)
		}
		return nil
	})
}

func probe(t *testing.T, conn *net.UDPConn, dst netip.AddrPort, wait time.Duration) ProbeResult {
	t.Helper()
	res, err := Probe(context.Background(), conn, dst, wait)
	if err != nil {
		t.Fatalf("probe %s: %v", dst, err)
	}
	return res
}

// seenVia returns the address the echo saw in its answer from "main".
func seenVia(t *testing.T, res ProbeResult, via string) (netip.AddrPort, bool) {
	t.Helper()
	for _, r := range res.Replies {
		if r.Via == via {
			return r.Seen, true
		}
	}
	return netip.AddrPort{}, false
}

func mustSeen(t *testing.T, res ProbeResult) netip.AddrPort {
	t.Helper()
	s, ok := seenVia(t, res, "main")
	if !ok {
		t.Fatalf("no answer from %s through the NAT (replies %+v)", res.Remote, res.Replies)
	}
	if s.Addr() != wanRtr {
		t.Fatalf("echo %s saw %s: source not translated to the router's WAN address %s", res.Remote, s, wanRtr)
	}
	return s
}

// recvWithin reports whether conn receives a datagram within d.
func recvWithin(conn *net.UDPConn, d time.Duration) (string, bool) {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1500)
	n, _, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}
