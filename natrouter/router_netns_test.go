package natrouter

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/ctl"
)

// twoRemotes is the topology of the mapping tests: a port-restricted
// router, echo servers on remote1:7 and remote2:7, and the phone's socket
// on lanHost:40000.
func twoRemotes(t *testing.T) (*Router, *net.UDPConn) {
	t.Helper()
	tp := newTopo(t)
	r := tp.startRouter(t, "port-restricted", 0)
	startEcho(t, tp, netip.AddrPortFrom(remote1, 7), 0)
	startEcho(t, tp, netip.AddrPortFrom(remote2, 7), 0)
	return r, udpIn(t, tp.lan, netip.AddrPortFrom(lanHost, 40000))
}

func TestPortRestrictedKeepsOneExternalPortForTwoDestinations(t *testing.T) {
	r, phone := twoRemotes(t)

	s1 := mustSeen(t, probe(t, phone, netip.AddrPortFrom(remote1, 7), time.Second))
	s2 := mustSeen(t, probe(t, phone, netip.AddrPortFrom(remote2, 7), time.Second))
	if s1 != s2 {
		t.Fatalf("endpoint-independent mapping broken: %s saw %s, %s saw %s", remote1, s1, remote2, s2)
	}
	if s1.Port() != 40000 {
		t.Errorf("masquerade did not preserve the free source port: mapped to %s", s1)
	}

	st, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Mappings) != 2 {
		t.Fatalf("status shows %d mappings, want 2: %+v", len(st.Mappings), st.Mappings)
	}
	for _, m := range st.Mappings {
		if m.Proto != "udp" || m.Inside != netip.AddrPortFrom(lanHost, 40000) || m.Outside != s1 || !m.Translated {
			t.Errorf("mapping %+v, want udp inside %s:40000 outside %s", m, lanHost, s1)
		}
		if m.ExpiresInSeconds == 0 || m.ExpiresInSeconds > uint32(DefaultPinhole/time.Second) {
			t.Errorf("mapping expires in %ds, want within the %s pinhole", m.ExpiresInSeconds, DefaultPinhole)
		}
	}
	if st.Mappings[0].Remote != netip.AddrPortFrom(remote1, 7) || st.Mappings[1].Remote != netip.AddrPortFrom(remote2, 7) {
		t.Errorf("remotes %s, %s", st.Mappings[0].Remote, st.Mappings[1].Remote)
	}
}

func TestSymmetricGivesEachDestinationItsOwnPort(t *testing.T) {
	r, phone := twoRemotes(t)

	// Establish a cone mapping first, then switch live: the switch must
	// take effect for this same socket, which is what an intern does.
	cone := mustSeen(t, probe(t, phone, netip.AddrPortFrom(remote1, 7), time.Second))
	n, err := r.Set(context.Background(), Settings{Preset: "symmetric"})
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Errorf("switching preset flushed %d entries, want the existing mapping flushed", n)
	}
	s1 := mustSeen(t, probe(t, phone, netip.AddrPortFrom(remote1, 7), time.Second))
	s2 := mustSeen(t, probe(t, phone, netip.AddrPortFrom(remote2, 7), time.Second))
	if s1.Port() == s2.Port() {
		t.Fatalf("symmetric NAT reused external port %d for two destinations (cone mapping was %s)", s1.Port(), cone)
	}
	st, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Preset.Name != "symmetric" || st.Preset.Mapping != AddressAndPortDependent {
		t.Errorf("status preset %+v", st.Preset)
	}
}

func TestUnsolicitedInboundIsDropped(t *testing.T) {
	tp := newTopo(t)
	r := tp.startRouter(t, "port-restricted", 0)
	startEcho(t, tp, netip.AddrPortFrom(remote1, 7), 8)
	phone := udpIn(t, tp.lan, netip.AddrPortFrom(lanHost, 40000))

	res := probe(t, phone, netip.AddrPortFrom(remote1, 7), 1500*time.Millisecond)
	mustSeen(t, res) // the reply from the port we sent to gets in
	if s, ok := seenVia(t, res, "alt"); ok {
		t.Fatalf("port-restricted NAT let in an answer from another remote port (alt saw %s)", s)
	}

	// Straight at the LAN address, routed through the router: no mapping,
	// so the forward chain must drop it and count it.
	attacker := udpIn(t, tp.wan, netip.AddrPortFrom(remote2, 5555))
	if _, err := attacker.WriteToUDPAddrPort([]byte("unsolicited"), netip.AddrPortFrom(lanHost, 40000)); err != nil {
		t.Fatal(err)
	}
	if msg, ok := recvWithin(phone, time.Second); ok {
		t.Fatalf("unsolicited packet reached the LAN host: %q", msg)
	}
	st, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.UnsolicitedDropped < 1 {
		t.Errorf("unsolicited drop counter %d, want ≥1", st.UnsolicitedDropped)
	}
}

func TestPinholeExpiryClosesThePath(t *testing.T) {
	for _, p := range PresetNames() {
		t.Run(p, func(t *testing.T) { testPinholeExpiry(t, p) })
	}
}

func testPinholeExpiry(t *testing.T, preset string) {
	tp := newTopo(t)
	r := tp.startRouter(t, preset, 0)
	const pinhole = 3 * time.Second
	// Set live from the default, as "natrouter set pinhole 3s" does.
	if _, err := r.Set(context.Background(), Settings{Pinhole: pinhole}); err != nil {
		t.Fatal(err)
	}
	phone := udpIn(t, tp.lan, netip.AddrPortFrom(lanHost, 40000))
	server := udpIn(t, tp.wan, netip.AddrPortFrom(remote1, 5060))

	if _, err := phone.WriteToUDPAddrPort([]byte("REGISTER"), netip.AddrPortFrom(remote1, 5060)); err != nil {
		t.Fatal(err)
	}
	_ = server.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	_, mapped, err := server.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("server got nothing from the phone: %v", err)
	}
	if mapped.Addr() != wanRtr {
		t.Fatalf("server saw %s, not the router's WAN address", mapped)
	}
	// Two-way traffic for more than 2 s, like a call's RTP: the kernel then
	// treats the flow as a stream and would switch it to the replied
	// timeout, so this checks that the pinhole covers that state too.
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); {
		if _, err := server.WriteToUDPAddrPort([]byte("200 OK"), mapped); err != nil {
			t.Fatal(err)
		}
		if _, ok := recvWithin(phone, time.Second); !ok {
			t.Fatal("reply through the open pinhole did not arrive")
		}
		if _, err := phone.WriteToUDPAddrPort([]byte("keepalive"), netip.AddrPortFrom(remote1, 5060)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := server.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatalf("keepalive lost: %v", err)
		}
		time.Sleep(400 * time.Millisecond)
	}
	st, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Mappings) != 1 || st.Mappings[0].ExpiresInSeconds > uint32(pinhole/time.Second) {
		t.Fatalf("want one mapping expiring within %s, got %+v", pinhole, st.Mappings)
	}

	// Bounded wait for conntrack to drop the idle mapping.
	deadline := time.Now().Add(pinhole + 5*time.Second)
	for {
		st, err := r.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Mappings) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mapping still present %s after the last packet with a %s pinhole: %+v",
				pinhole+5*time.Second, pinhole, st.Mappings)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The inbound "INVITE" to the old mapping is now lost.
	if _, err := server.WriteToUDPAddrPort([]byte("INVITE"), mapped); err != nil {
		t.Fatal(err)
	}
	if msg, ok := recvWithin(phone, time.Second); ok {
		t.Fatalf("packet %q reached the phone after the pinhole expired", msg)
	}
}

func TestControlAPI(t *testing.T) {
	tp := newTopo(t)
	r := tp.startRouter(t, "", 0)
	startEcho(t, tp, netip.AddrPortFrom(remote1, 7), 0)
	phone := udpIn(t, tp.lan, netip.AddrPortFrom(lanHost, 40000))
	mustSeen(t, probe(t, phone, netip.AddrPortFrom(remote1, 7), 500*time.Millisecond))

	sock := filepath.Join(t.TempDir(), "natrouter.sock")
	stop, err := ctl.Start(sock, ControlHandler(r))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("control socket: %v", err)
		}
	})

	c := NewClient(sock)
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	st, err := c.Status(tctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Preset.Name != DefaultPreset || st.Pinhole() != DefaultPinhole || st.ALG != "off" || len(st.Mappings) != 1 {
		t.Fatalf("status %+v", st)
	}
	if st.LAN.Address != lanGW || st.WAN.Address.Addr() != wanRtr {
		t.Errorf("interfaces lan %+v wan %+v", st.LAN, st.WAN)
	}

	res, err := c.Set(tctx, SettingsRequest{Preset: "symmetric", Pinhole: "20s"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Flushed < 1 || res.Status.Preset.Name != "symmetric" || res.Status.Pinhole() != 20*time.Second || len(res.Status.Mappings) != 0 {
		t.Fatalf("set result %+v", res)
	}
	// The change says which mapping it dropped: the phone's.
	if len(res.Dropped) != 1 || res.Dropped[0].Inside != netip.AddrPortFrom(lanHost, 40000) {
		t.Fatalf("dropped %+v, want the phone's mapping", res.Dropped)
	}
	for _, bad := range []SettingsRequest{{Preset: "full-cone-please"}, {Pinhole: "1.5s"}, {Pinhole: "soon"}, {ALG: "magic"}, {}} {
		_, err := c.Set(tctx, bad)
		var ce *ctl.Error
		if !errors.As(err, &ce) || ce.Status != 400 || strings.Count(err.Error(), "natrouter:") != 1 {
			t.Errorf("Set(%+v): %v, want a 400 naming the router once", bad, err)
		}
	}
	st, err = c.Status(tctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Preset.Name != "symmetric" || st.Pinhole() != 20*time.Second {
		t.Errorf("a rejected Set changed the settings: %+v", st)
	}

	mustSeen(t, probe(t, phone, netip.AddrPortFrom(remote1, 7), 500*time.Millisecond))
	fl, err := c.Flush(tctx)
	if err != nil {
		t.Fatal(err)
	}
	if fl.Flushed < 1 || len(fl.Status.Mappings) != 0 || len(fl.Dropped) != 1 {
		t.Fatalf("flush result %+v", fl)
	}

	// "default" is the startup value; reset puts them all back and flushes.
	if res, err = c.Set(tctx, SettingsRequest{Pinhole: "default"}); err != nil || res.Status.Pinhole() != DefaultPinhole {
		t.Fatalf("pinhole default: %+v %v", res.Status, err)
	}
	mustSeen(t, probe(t, phone, netip.AddrPortFrom(remote1, 7), 500*time.Millisecond))
	rs, err := c.Reset(tctx)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Status.Preset.Name != DefaultPreset || rs.Status.Pinhole() != DefaultPinhole || rs.Status.ALG != "off" ||
		len(rs.Status.Mappings) != 0 || len(rs.Dropped) != 1 {
		t.Fatalf("reset result %+v", rs)
	}
}

func TestNewFindsInterfacesByAddress(t *testing.T) {
	tp := newTopo(t)
	cases := []struct {
		name     string
		lan, wan string
		wantErr  error
	}{
		{"subnets", "192.168.77.0/24", "203.0.113.0/24", nil},
		{"exact addresses", "192.168.77.1/24", "203.0.113.2/24", nil},
		{"address not on the router", "192.168.77.9/24", "203.0.113.0/24", ErrNoInterface},
		{"subnet absent", "10.9.9.0/24", "203.0.113.0/24", ErrNoInterface},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(context.Background(), Config{
				LAN: netip.MustParsePrefix(tc.lan), WAN: netip.MustParsePrefix(tc.wan),
				NetNS: tp.rtrPath, InterfaceWait: 300 * time.Millisecond,
			})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.LAN().Address != lanGW || r.WAN().Address.Addr() != wanRtr {
				t.Errorf("lan %+v wan %+v", r.LAN(), r.WAN())
			}
		})
	}
}

// TestPresetBehaviours checks every registered preset against what it
// claims in RFC 4787 terms, with real packets.
func TestPresetBehaviours(t *testing.T) {
	cases := []struct {
		preset      string
		sameMapping bool // endpoint-independent mapping
		otherPortIn bool // same remote address, other port gets in
		otherHostIn bool // a host never contacted gets in
	}{
		{"port-restricted", true, false, false},
		{"restricted-cone", true, true, false},
		{"full-cone", true, true, true},
		{"symmetric", false, false, false},
	}
	if len(cases) != len(Presets()) {
		t.Fatalf("%d presets registered, %d tested: test every preset", len(Presets()), len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.preset, func(t *testing.T) {
			p, err := lookupPreset(tc.preset)
			if err != nil {
				t.Fatal(err)
			}
			if (p.Mapping == EndpointIndependent) != tc.sameMapping ||
				(p.Filtering != AddressAndPortDependent) != tc.otherPortIn ||
				(p.Filtering == EndpointIndependent) != tc.otherHostIn {
				t.Fatalf("test expectations disagree with the preset's claims %s/%s", p.Mapping, p.Filtering)
			}
			tp := newTopo(t)
			r := tp.startRouter(t, tc.preset, 0)
			startEcho(t, tp, netip.AddrPortFrom(remote1, 7), 8)
			startEcho(t, tp, netip.AddrPortFrom(remote2, 7), 0)
			phone := udpIn(t, tp.lan, netip.AddrPortFrom(lanHost, 40000))

			res := probe(t, phone, netip.AddrPortFrom(remote1, 7), 1500*time.Millisecond)
			mapped := mustSeen(t, res)
			if _, ok := seenVia(t, res, "alt"); ok != tc.otherPortIn {
				t.Errorf("answer from the same remote's other port got in: %v, want %v", ok, tc.otherPortIn)
			}
			s2 := mustSeen(t, probe(t, phone, netip.AddrPortFrom(remote2, 7), time.Second))
			if (s2 == mapped) != tc.sameMapping {
				t.Errorf("mapping to %s is %s, to %s is %s: same=%v, want %v", remote1, mapped, remote2, s2, s2 == mapped, tc.sameMapping)
			}

			// A stranger (never contacted) sends to the mapping.
			stranger := udpIn(t, tp.wan, netip.AddrPortFrom(remote2, 5555))
			if tc.sameMapping {
				// remote2 was contacted above; use a third address.
				stranger = udpInAddr(t, tp, netip.MustParseAddr("203.0.113.12"), 5555)
			}
			if _, err := stranger.WriteToUDPAddrPort([]byte("INVITE from a stranger"), mapped); err != nil {
				t.Fatal(err)
			}
			msg, got := recvNonProbe(phone, time.Second)
			if got != tc.otherHostIn {
				t.Errorf("stranger reached the phone: %v (%q), want %v", got, msg, tc.otherHostIn)
			}
			if tc.otherHostIn {
				st, err := r.Status(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				var inbound int
				for _, m := range st.Mappings {
					if m.Inbound && m.Inside == netip.AddrPortFrom(lanHost, 40000) && m.Outside == mapped &&
						m.Remote == netip.MustParseAddrPort("203.0.113.12:5555") {
						inbound++
					}
				}
				if inbound != 1 {
					t.Errorf("status shows %d inbound flows from the stranger to %s, want 1: %+v", inbound, mapped, st.Mappings)
				}
				// Flush forgets the cone state too: the stranger is out.
				if _, err := r.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				other := udpInAddr(t, tp, netip.MustParseAddr("203.0.113.13"), 5555)
				if _, err := other.WriteToUDPAddrPort([]byte("after flush"), mapped); err != nil {
					t.Fatal(err)
				}
				if msg, got := recvNonProbe(phone, time.Second); got {
					t.Errorf("after flush a stranger still got in: %q", msg)
				}
			}
		})
	}
}

// udpInAddr adds addr to the WAN namespace and opens a socket on it.
func udpInAddr(t *testing.T, tp *topo, addr netip.Addr, port uint16) *net.UDPConn {
	t.Helper()
	sh(t, "ip", "netns", "exec", tp.wan, "sh", "-c",
		"ip addr add "+addr.String()+"/24 dev $(ip -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1)")
	return udpIn(t, tp.wan, netip.AddrPortFrom(addr, port))
}

// recvNonProbe waits for a datagram that is not a late echo answer.
func recvNonProbe(conn *net.UDPConn, d time.Duration) (string, bool) {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return "", false
		}
		msg, ok := recvWithin(conn, left)
		if !ok {
			return "", false
		}
		if !strings.HasPrefix(msg, echoPrefix) {
			return msg, true
		}
	}
}
