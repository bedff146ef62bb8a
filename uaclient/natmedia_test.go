package uaclient

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/stunturn"
)

// This file's loopback block: 127.0.34.10 the STUN/TURN server, .11 alice,
// .12 bob (stunturn's own tests use 127.0.34.1-.5).
const (
	natServerIP = "127.0.34.10"
	natAliceIP  = "127.0.34.11"
	natBobIP    = "127.0.34.12"
)

// startSTUNTURN runs the real stunturn server with alice's and bob's
// accounts, relay ports 42000-42099.
func startSTUNTURN(t *testing.T) *stunturn.Server {
	t.Helper()
	users, err := sipauth.NewUsers(
		sipauth.User{Name: "alice", Password: "alice-secret"},
		sipauth.User{Name: "bob", Password: "bob-secret"},
	)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", natServerIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := stunturn.New(stunturn.Config{Conn: conn, Realm: "siplab.test", Users: users,
		RelayIP: netip.MustParseAddr(natServerIP), PortMin: 42000, PortMax: 42099, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// natPair is alice and bob calling each other directly (each one's proxy
// is the other) on the STUN/TURN block, with the given live settings.
func natPair(t *testing.T, aliceSets, bobSets map[string]string) (alice, bob *Phone) {
	t.Helper()
	aep, bep := listen(t, natAliceIP), listen(t, natBobIP)
	alice = startPhone(t, Config{Name: "alice", Password: "alice-secret", Endpoint: aep, Proxy: bep.Addr().String(), ToneHz: 600, Settings: aliceSets})
	bob = startPhone(t, Config{Name: "bob", Password: "bob-secret", Endpoint: bep, Proxy: aep.Addr().String(), ToneHz: 1000, Settings: bobSets})
	return alice, bob
}

// callAndHear places alice -> bob, answers, and waits until each hears
// the other's tone.
func callAndHear(t *testing.T, alice, bob *Phone) (a, b CallStatus) {
	t.Helper()
	out, err := alice.Call(testCtx(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	in := waitCall(t, bob, "", StateRinging)
	if err := bob.Answer(in.ID); err != nil {
		t.Fatal(err)
	}
	waitCall(t, alice, out.ID(), StateConfirmed)
	eventually(t, "two-way audio with tones", func() bool {
		a, _ = alice.CallStatus(out.ID())
		b, _ = bob.CallStatus(in.ID)
		return mediaReceived(alice, out.ID(), 25) && mediaReceived(bob, in.ID, 25) && a.ToneHz != 0 && b.ToneHz != 0
	})
	if math.Abs(a.ToneHz-bob.ToneHz()) > 30 || math.Abs(b.ToneHz-alice.ToneHz()) > 30 {
		t.Fatalf("alice hears %.0f Hz (bob sends %.0f), bob hears %.0f Hz (alice sends %.0f)", a.ToneHz, bob.ToneHz(), b.ToneHz, alice.ToneHz())
	}
	return a, b
}

// TestSDPAddrSTUN: with sdp_addr=stun the Binding request leaves from the
// call's RTP socket (the server logs that socket), and the SDP carries the
// mapped address the server answered. On loopback there is no NAT, so the
// mapping is the socket itself; the Docker lab shows a real one.
func TestSDPAddrSTUN(t *testing.T) {
	srv := startSTUNTURN(t)
	sets := map[string]string{"sdp_addr": "stun", "stun_server": srv.Addr().String()}
	alice, bob := natPair(t, sets, sets)
	a, b := callAndHear(t, alice, bob)

	for _, c := range []CallStatus{a, b} {
		if c.NAT == nil || c.NAT.Mapped == "" || c.NAT.STUNError != "" {
			t.Fatalf("call %s: no STUN result: %+v", c.ID, c.NAT)
		}
		if c.NAT.Mapped != c.LocalSDP {
			t.Errorf("SDP says %s, STUN mapped %s", c.LocalSDP, c.NAT.Mapped)
		}
		if c.NAT.Socket != c.Media.Local {
			t.Errorf("STUN asked from %s, media socket is %s", c.NAT.Socket, c.Media.Local)
		}
		if c.NAT.STUNServer != srv.Addr().String() || c.NAT.At.IsZero() {
			t.Errorf("status %+v", c.NAT)
		}
	}
	told := map[string]string{}
	for _, r := range srv.Status().Bindings {
		told[r.Client] = r.Mapped
	}
	if told[a.NAT.Socket] != a.LocalSDP || told[b.NAT.Socket] != b.LocalSDP {
		t.Fatalf("server answered %v; SDPs say alice %s bob %s", told, a.LocalSDP, b.LocalSDP)
	}
	if a.RemoteSDP != b.LocalSDP {
		t.Fatalf("alice's remote %s, bob's SDP %s", a.RemoteSDP, b.LocalSDP)
	}
	var text strings.Builder
	WriteText(&text, "status", alice.Status())
	if !strings.Contains(text.String(), "mapped "+a.LocalSDP) {
		t.Errorf("status text lacks the STUN line:\n%s", text.String())
	}
}

// TestSDPAddrSTUNFails: no server set, or a server that never answers:
// the call still works with the local address and status says why.
func TestSDPAddrSTUNFails(t *testing.T) {
	dead, err := net.ListenPacket("udp", natServerIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	tests := []struct {
		name, server, want string
	}{
		{"no server", "none", "stun_server is none"},
		{"server silent", dead.LocalAddr().String(), "no answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alice, bob := natPair(t, map[string]string{"sdp_addr": "stun", "stun_server": tt.server}, nil)
			a, _ := callAndHear(t, alice, bob)
			if a.NAT == nil || !strings.Contains(a.NAT.STUNError, tt.want) {
				t.Fatalf("nat status %+v, want error %q", a.NAT, tt.want)
			}
			if !strings.HasPrefix(a.LocalSDP, natAliceIP+":") {
				t.Fatalf("SDP %s, want the local address", a.LocalSDP)
			}
		})
	}
}

// TestMediaRelayTURN: both phones relay media through TURN. Each SDP
// carries a relayed address on the server, each phone hears the other's
// tone from the other's relayed address, and the server counts the bytes
// of both allocations both ways.
func TestMediaRelayTURN(t *testing.T) {
	srv := startSTUNTURN(t)
	sets := map[string]string{"media_relay": "turn", "stun_server": srv.Addr().String()}
	alice, bob := natPair(t, sets, sets)
	a, b := callAndHear(t, alice, bob)

	relayed := func(c CallStatus) netip.AddrPort {
		t.Helper()
		if c.NAT == nil || c.NAT.Relayed == "" || c.NAT.TURNError != "" {
			t.Fatalf("call %s: no relay: %+v", c.ID, c.NAT)
		}
		ap := mustAddrPort(t, c.NAT.Relayed)
		if ap.Addr().String() != natServerIP || ap.Port() < 42000 || ap.Port() > 42099 {
			t.Fatalf("relayed %v not in the server's range", ap)
		}
		if c.LocalSDP != ap.String() {
			t.Fatalf("SDP %s, relayed %s", c.LocalSDP, ap)
		}
		return ap
	}
	ar, br := relayed(a), relayed(b)
	if a.Media.Received.LastSource != br || b.Media.Received.LastSource != ar {
		t.Fatalf("alice hears from %v (bob's relay %v), bob from %v (alice's relay %v)",
			a.Media.Received.LastSource, br, b.Media.Received.LastSource, ar)
	}
	if a.NAT.TURNUser != "alice" || len(a.NAT.Permissions) == 0 || a.NAT.Permissions[0] != natServerIP {
		t.Fatalf("alice's TURN status %+v", a.NAT)
	}
	st := srv.Status()
	if st.Live() != 2 {
		t.Fatalf("%d live allocations, want 2", st.Live())
	}
	for _, al := range st.Allocations {
		if al.ToPeer.Bytes == 0 || al.FromPeer.Bytes == 0 {
			t.Fatalf("allocation %s of %s relayed to peer %d bytes, from peer %d bytes", al.Relayed, al.User, al.ToPeer.Bytes, al.FromPeer.Bytes)
		}
	}
	// Hanging up deallocates both relays.
	if err := alice.Hangup(testCtx(t), ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "allocations released", func() bool { return srv.Status().Live() == 0 })
}

// TestMediaRelayWrongPassword: the allocation is refused with 401, the
// call falls back to direct media and status says so.
func TestMediaRelayWrongPassword(t *testing.T) {
	srv := startSTUNTURN(t)
	alice, bob := natPair(t, map[string]string{"media_relay": "turn", "turn_server": srv.Addr().String(), "turn_password": "guess"}, nil)
	a, _ := callAndHear(t, alice, bob)
	if a.NAT == nil || !strings.Contains(a.NAT.TURNError, "401") || a.NAT.Relayed != "" {
		t.Fatalf("nat status %+v, want a 401 error", a.NAT)
	}
	if !strings.HasPrefix(a.LocalSDP, natAliceIP+":") {
		t.Fatalf("SDP %s, want the local address", a.LocalSDP)
	}
	if srv.Status().AuthFailures == 0 {
		t.Fatal("server counted no auth failure")
	}
}

func TestNATSettings(t *testing.T) {
	tests := []struct {
		name, value, want string // want "" = refused
	}{
		{"sdp_addr", "stun", "stun"},
		{"sdp_addr", "STUN", "stun"},
		{"sdp_addr", "203.0.113.2", "203.0.113.2"},
		{"stun_server", "203.0.113.20:3478", "203.0.113.20:3478"},
		{"stun_server", "203.0.113.20", "203.0.113.20:3478"},
		{"stun_server", "none", "none"},
		{"stun_server", "stun.example.com:3478", ""},
		{"stun_server", "0.0.0.0:3478", ""},
		{"stun_server", "203.0.113.20:0", ""},
		{"turn_server", "203.0.113.20:3478", "203.0.113.20:3478"},
		{"media_relay", "turn", "turn"},
		{"media_relay", "off", "off"},
		{"media_relay", "ice", ""},
		{"turn_user", "carol", "carol"},
		{"turn_user", "default", "default"},
		{"turn_user", "two words", ""},
		{"turn_password", "s3cret", "(set)"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			s := defaultSettings()
			_, err := s.set(tt.name, tt.value)
			if tt.want == "" {
				if !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), tt.name) {
					t.Fatalf("err %v, want ErrBadValue naming %s", err, tt.name)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			def, _ := lookupSetting(tt.name)
			if got := def.get(&s); got != tt.want {
				t.Fatalf("get %q, want %q", got, tt.want)
			}
		})
	}
	// Setting an address after stun turns stun off again.
	s := defaultSettings()
	s.set("sdp_addr", "stun")
	s.set("sdp_addr", "local")
	if s.SDPStun {
		t.Fatal("sdp_addr local left stun on")
	}
	// Defaults: nothing is contacted.
	d := defaultSettings()
	if d.STUNServer.IsValid() || d.turnServer().IsValid() || d.MediaRelay != "" {
		t.Fatalf("defaults contact a server: %+v", d.natSettings)
	}
}

// TestMediaRelayTURNOneSide: only alice relays (the lab's symmetric-NAT
// fix); bob writes his STUN address. Bob hears alice from her relayed
// address and alice's relay permits bob's IP.
func TestMediaRelayTURNOneSide(t *testing.T) {
	srv := startSTUNTURN(t)
	alice, bob := natPair(t,
		map[string]string{"media_relay": "turn", "stun_server": srv.Addr().String()},
		map[string]string{"sdp_addr": "stun", "stun_server": srv.Addr().String()})
	a, b := callAndHear(t, alice, bob)
	if a.NAT == nil || a.NAT.Relayed == "" || b.Media.Received.LastSource.String() != a.NAT.Relayed {
		t.Fatalf("bob hears from %v, alice's relay %+v", b.Media.Received.LastSource, a.NAT)
	}
	if a.Media.Received.LastSource.String() != b.LocalSDP {
		t.Fatalf("alice hears from %v, bob's SDP %s", a.Media.Received.LastSource, b.LocalSDP)
	}
	st := srv.Status()
	if st.Live() != 1 || len(st.Allocations[0].Permissions) != 1 || st.Allocations[0].Permissions[0] != natBobIP {
		t.Fatalf("server allocations %+v", st.Allocations)
	}
}

// TestSDPWritesSTUNMapping: on loopback a STUN mapping equals the local
// address, so the call tests cannot tell them apart; this checks the SDP
// really takes the mapping (the Docker lab shows it through a real NAT).
func TestSDPWritesSTUNMapping(t *testing.T) {
	p := startPhone(t, Config{Name: "alice", Endpoint: listen(t, natAliceIP)})
	mapped := netip.MustParseAddrPort("198.51.100.7:40002")
	local := netip.AddrPortFrom(p.Addr().Addr(), 40000)
	tests := []struct {
		name    string
		sdpAddr string
		mapped  netip.AddrPort
		want    netip.AddrPort
	}{
		{"stun with an answer", "stun", mapped, mapped},
		{"stun that failed", "stun", netip.AddrPort{}, local},
		{"fixed address wins over an old mapping", "203.0.113.2", mapped, netip.MustParseAddrPort("203.0.113.2:40000")},
		{"local", "local", mapped, local},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := defaultSettings()
			if _, err := s.set("sdp_addr", tt.sdpAddr); err != nil {
				t.Fatal(err)
			}
			c := &Call{p: p, rtpPort: 40000}
			c.nat.mapped = tt.mapped
			p.mu.Lock()
			d := c.localDescriptionLocked(s, sdpneg.SendRecv)
			p.mu.Unlock()
			if got := netip.AddrPortFrom(d.Addr, uint16(d.Port)); got != tt.want || c.localSDP != tt.want {
				t.Fatalf("SDP %v (status %v), want %v", got, c.localSDP, tt.want)
			}
		})
	}
}
