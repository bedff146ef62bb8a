package stunturn

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/sip/sipauth"
)

// The package's loopback block: 127.0.34.1 is the server, .2-.9 clients
// and peers. (Grep the repo's tests before taking another 127.x block.)
var (
	serverIP = netip.MustParseAddr("127.0.34.1")
	clientA  = netip.MustParseAddr("127.0.34.2")
	clientB  = netip.MustParseAddr("127.0.34.3")
	peerIP   = netip.MustParseAddr("127.0.34.4")
)

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelError}))
}

func testUsers(t *testing.T) *sipauth.Users {
	t.Helper()
	u, err := sipauth.NewUsers(
		sipauth.User{Name: "alice", Password: "alice-secret"},
		sipauth.User{Name: "bob", Password: "bob-secret"},
		sipauth.User{Name: "mallory", Password: "mallory-secret", Blocked: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func listenUDP(t *testing.T, ip netip.Addr) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket("udp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startServer runs a server on 127.0.34.1:0 with relay ports 41000-41099.
func startServer(t *testing.T, mod func(*Config)) *Server {
	t.Helper()
	conn, err := net.ListenPacket("udp", netip.AddrPortFrom(serverIP, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Conn: conn, Realm: "siplab.test", Users: testUsers(t), RelayIP: serverIP,
		PortMin: 41000, PortMax: 41099, Logger: quietLog()}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestBindingAnswersWithSourceAddress(t *testing.T) {
	s := startServer(t, nil)
	c := listenUDP(t, clientA)
	mapped, err := Binding(ctxT(t, 3*time.Second), c, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	local := addrPortOf(c.LocalAddr())
	if mapped != local {
		t.Fatalf("mapped %v, want the source address %v", mapped, local)
	}
	st := s.Status()
	if st.BindingRequests != 1 || len(st.Bindings) != 1 || st.Bindings[0].Mapped != local.String() {
		t.Fatalf("status does not record the binding: %+v", st)
	}
	var text strings.Builder
	st.WriteText(&text, time.Now())
	if !strings.Contains(text.String(), "told mapped "+local.String()) {
		t.Fatalf("text status:\n%s", text.String())
	}
}

// TestBindingIgnoresOthers: media from a peer arriving on the socket while
// we wait must not be taken for the answer.
func TestBindingIgnoresOthers(t *testing.T) {
	s := startServer(t, nil)
	c := listenUDP(t, clientA)
	noise := listenUDP(t, peerIP)
	for range 3 {
		noise.WriteTo([]byte("rtp-ish noise"), c.LocalAddr())
	}
	mapped, err := Binding(ctxT(t, 3*time.Second), c, s.Addr())
	if err != nil || mapped != addrPortOf(c.LocalAddr()) {
		t.Fatalf("mapped %v err %v", mapped, err)
	}
}

func TestBindingNoServer(t *testing.T) {
	c := listenUDP(t, clientA)
	dead := listenUDP(t, serverIP) // bound, never answers
	start := time.Now()
	_, err := Binding(ctxT(t, 700*time.Millisecond), c, addrPortOf(dead.LocalAddr()))
	if !errors.Is(err, ErrNoResponse) {
		t.Fatalf("err %v, want ErrNoResponse", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("took %v past the deadline", time.Since(start))
	}
}

func TestAllocateCredentials(t *testing.T) {
	s := startServer(t, nil)
	tests := []struct {
		name, user, pass string
		want             error
	}{
		{"right", "alice", "alice-secret", nil},
		{"wrong password", "bob", "nope", ErrUnauthorized},
		{"unknown user", "eve", "alice-secret", ErrUnauthorized},
		{"blocked user", "mallory", "mallory-secret", ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := listenUDP(t, clientA)
			r, err := Allocate(ctxT(t, 5*time.Second), base, AllocateConfig{Server: s.Addr(), Username: tt.user, Password: tt.pass, Logger: quietLog()})
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("err %v, want %v", err, tt.want)
				}
				if !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), tt.user) {
					t.Fatalf("error does not say what failed: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Addr().Addr() != serverIP || r.Addr().Port() < 41000 || r.Addr().Port() > 41099 {
				t.Fatalf("relayed %v outside %v:41000-41099", r.Addr(), serverIP)
			}
		})
	}
	if st := s.Status(); st.AuthFailures < 3 || st.LastAuthFailure == "" {
		t.Fatalf("auth failures not counted: %d %q", st.AuthFailures, st.LastAuthFailure)
	}
}

func TestAllocateNoServer(t *testing.T) {
	base := listenUDP(t, clientA)
	dead := listenUDP(t, serverIP)
	_, err := Allocate(ctxT(t, 600*time.Millisecond), base, AllocateConfig{Server: addrPortOf(dead.LocalAddr()), Username: "alice", Password: "x", Logger: quietLog()})
	if !errors.Is(err, ErrNoResponse) {
		t.Fatalf("err %v, want ErrNoResponse", err)
	}
}

// TestRelayBothWays: data from the client reaches the peer from the
// relayed address, the peer's answer comes back through the relay, a peer
// without permission is dropped, and status counts all of it.
func TestRelayBothWays(t *testing.T) {
	s := startServer(t, nil)
	base := listenUDP(t, clientA)
	r, err := Allocate(ctxT(t, 5*time.Second), base, AllocateConfig{Server: s.Addr(), Username: "alice", Password: "alice-secret", Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	peer := listenUDP(t, peerIP)
	peerAddr := addrPortOf(peer.LocalAddr())
	if err := r.Permit(peerAddr); err != nil {
		t.Fatal(err)
	}
	rc := r.PacketConn()

	// client -> peer
	if _, err := rc.WriteTo([]byte("hello peer"), net.UDPAddrFromAddrPort(peerAddr)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	peer.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello peer" || addrPortOf(from) != r.Addr() {
		t.Fatalf("peer got %q from %v (%v), want from the relayed %v", buf[:n], from, err, r.Addr())
	}
	// peer -> client, through the relay
	if _, err := peer.WriteTo([]byte("hello client"), from); err != nil {
		t.Fatal(err)
	}
	rc.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err = rc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello client" || addrPortOf(from) != peerAddr {
		t.Fatalf("client got %q from %v (%v)", buf[:n], from, err)
	}
	// a stranger has no permission: the relay drops it
	stranger := listenUDP(t, netip.MustParseAddr("127.0.34.5"))
	stranger.WriteTo([]byte("let me in"), net.UDPAddrFromAddrPort(r.Addr()))

	deadline := time.Now().Add(3 * time.Second)
	for {
		st := s.Status()
		if len(st.Allocations) == 1 {
			a := st.Allocations[0]
			if a.DroppedFromPeer.Packets >= 1 {
				if a.User != "alice" || a.Relayed != r.Addr().String() || a.Client != base.LocalAddr().String() {
					t.Fatalf("allocation %+v", a)
				}
				if a.ToPeer.Bytes != uint64(len("hello peer")) || a.FromPeer.Bytes != uint64(len("hello client")) {
					t.Fatalf("bytes to peer %d, from peer %d", a.ToPeer.Bytes, a.FromPeer.Bytes)
				}
				if len(a.Permissions) != 1 || a.Permissions[0] != peerIP.String() {
					t.Fatalf("permissions %v", a.Permissions)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the dropped packet: %+v", st.Allocations)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Deallocation shows up as an ended allocation.
	r.Close()
	siptest.WaitFor(t, 3*time.Second, "the allocation to show as ended", func() bool { st := s.Status(); return st.Live() == 0 && len(st.Allocations) == 1 })
}

func TestQuotaAndLifetime(t *testing.T) {
	s := startServer(t, func(c *Config) { c.UserQuota = 1; c.MaxLifetime = time.Second })
	cfg := AllocateConfig{Server: s.Addr(), Username: "alice", Password: "alice-secret", Logger: quietLog()}
	first, err := Allocate(ctxT(t, 5*time.Second), listenUDP(t, clientA), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = Allocate(ctxT(t, 5*time.Second), listenUDP(t, clientB), cfg)
	if !errors.Is(err, ErrQuota) {
		t.Fatalf("second allocation: %v, want ErrQuota", err)
	}
	// bob has his own quota
	other, err := Allocate(ctxT(t, 5*time.Second), listenUDP(t, clientB), AllocateConfig{Server: s.Addr(), Username: "bob", Password: "bob-secret", Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// Both end at the lifetime cap although pion would refresh them.
	deadline := time.Now().Add(4 * time.Second)
	for s.Status().Live() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("allocations outlived the 1s cap: %+v", s.Status().Allocations)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, a := range s.Status().Allocations {
		if !strings.Contains(a.EndReason, "max lifetime") {
			t.Fatalf("end reason %q", a.EndReason)
		}
	}
	if s.Status().QuotaRefusals != 1 {
		t.Fatalf("quota refusals %d", s.Status().QuotaRefusals)
	}
}

func TestConfigErrors(t *testing.T) {
	users := testUsers(t)
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no realm", func(c *Config) { c.Realm = "" }, "realm"},
		{"no users", func(c *Config) { c.Users = nil }, "users"},
		{"no relay ip", func(c *Config) { c.RelayIP = netip.Addr{} }, "relay ip"},
		{"unspecified relay ip", func(c *Config) { c.RelayIP = netip.IPv4Unspecified() }, "relay ip"},
		{"ipv6 relay", func(c *Config) { c.RelayIP = netip.MustParseAddr("::1") }, "IPv4"},
		{"ports reversed", func(c *Config) { c.PortMin, c.PortMax = 2000, 1000 }, "relay ports"},
		{"port zero", func(c *Config) { c.PortMin = 0 }, "relay ports"},
		{"negative quota", func(c *Config) { c.UserQuota = -1 }, "negative"},
		{"tiny lifetime", func(c *Config) { c.MaxLifetime = time.Millisecond }, "lifetime"},
		{"no socket", func(c *Config) { c.Conn = nil }, "socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := listenUDP(t, serverIP)
			cfg := Config{Conn: conn, Realm: "r", Users: users, RelayIP: serverIP, PortMin: 1000, PortMax: 2000}
			tt.mod(&cfg)
			_, err := New(cfg)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want ErrConfig mentioning %q", err, tt.want)
			}
		})
	}
}

func TestIsBindingRequest(t *testing.T) {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	alloc := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest))
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"binding request", req.Raw, true},
		{"allocate", alloc.Raw, false},
		{"truncated", req.Raw[:19], false},
		{"rtp", append([]byte{0x80, 0x00}, make([]byte, 170)...), false},
		{"length mismatch", append(append([]byte(nil), req.Raw...), 0, 0, 0, 0), false},
	}
	for _, tt := range tests {
		if got := isBindingRequest(tt.b); got != tt.want {
			t.Errorf("%s: %v", tt.name, got)
		}
	}
}
