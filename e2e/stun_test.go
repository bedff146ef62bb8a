package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/natrouter"
	"github.com/siplab/siplab/stunturn"
	"github.com/siplab/siplab/uaclient"
)

// The training page's module 08, STUN and TURN, on the real lab: the
// stunturn service on the internet (203.0.113.20:3478), phones behind the
// kernel NAT routers.

const stunAddr = "203.0.113.20:3478"

func stunStatus(t *testing.T, ctx context.Context) stunturn.Status {
	t.Helper()
	return nodeStatus[stunturn.Status](t, ctx, "stun", "/stunturn")
}

// stunCall has alice call bob, waits until it is confirmed and returns
// alice's call id.
func stunCall(t *testing.T, ctx context.Context) string {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		algHangupAll(ctx)
	})
	out, err := phoneCmd(t, ctx, "alice", "call", "bob", "-json")
	if err != nil {
		t.Fatalf("alice call bob: %v\n%s", err, out)
	}
	var st uaclient.CallStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("call: %v\n%s", err, out)
	}
	if out, err := phoneCmd(t, ctx, "alice", "wait", "call-state", "confirmed", st.ID, "-timeout", "20s"); err != nil {
		t.Fatalf("alice's call to bob did not connect: %v\n%s", err, out)
	}
	return st.ID
}

// stunHears polls phone's newest call until it hears hz, or gives up
// after within and returns the last status.
func stunHears(t *testing.T, ctx context.Context, phone string, hz float64, within time.Duration) (uaclient.CallStatus, bool) {
	t.Helper()
	return algHears(t, ctx, phone, hz, within)
}

func stunCallNAT(t *testing.T, c uaclient.CallStatus) *uaclient.CallNATStatus {
	t.Helper()
	if c.NAT == nil {
		t.Fatalf("call %s has no STUN/TURN status: %+v", c.ID, c)
	}
	return c.NAT
}

// stunMappings are router-a's mappings of one inside socket.
func stunMappings(t *testing.T, ctx context.Context, inside netip.AddrPort) []natrouter.Mapping {
	t.Helper()
	var out []natrouter.Mapping
	for _, m := range routerStatus(t, ctx, "router-a").Mappings {
		if m.Inside == inside && m.Proto == "udp" {
			out = append(out, m)
		}
	}
	return out
}

func stunReregisterAlice(t *testing.T) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// A preset change flushes router-a's mappings: register again so
		// inbound calls reach alice in the tests that follow.
		_, _ = lab.Exec(ctx, "alice", "/uaclient", "register", "-timeout", "15s")
		_, _ = lab.Exec(ctx, "alice", "/uaclient", "wait", "registered", "-timeout", "15s")
	})
}

// TestSTUNSDPAddrThroughPortRestrictedNAT: alice asks the STUN server from
// her RTP socket; router-a's endpoint-independent mapping is the same
// towards bob, so the address in her SDP works: two-way audio.
func TestSTUNSDPAddrThroughPortRestrictedNAT(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	if got := phoneStatus(t, ctx, "alice").Settings["stun_server"]; got != stunAddr {
		t.Fatalf("alice's stun_server is %q, want %s (docker-compose.yml -stun)", got, stunAddr)
	}
	setPhone(t, ctx, "alice", "sdp_addr", "stun")
	id := stunCall(t, ctx)

	a, ok := stunHears(t, ctx, "alice", bobTone, 10*time.Second)
	if !ok {
		t.Fatalf("alice does not hear bob (%v Hz): %+v", bobTone, a.Media)
	}
	if _, ok := stunHears(t, ctx, "bob", aliceTone, 10*time.Second); !ok {
		t.Fatal("bob does not hear alice")
	}
	n := stunCallNAT(t, a)
	if a.ID != id || n.Mapped == "" || n.STUNError != "" {
		t.Fatalf("alice's STUN result: %+v", n)
	}
	mapped := netip.MustParseAddrPort(n.Mapped)
	if mapped.Addr().String() != wanA || a.LocalSDP != n.Mapped {
		t.Fatalf("STUN mapped %s, SDP %s: want router-a's %s:port in the SDP", n.Mapped, a.LocalSDP, wanA)
	}
	// The mapping the server told alice is router-a's mapping of her RTP
	// socket, the same towards the STUN server and towards bob.
	socket := netip.MustParseAddrPort(n.Socket)
	var toSTUN, toBob bool
	for _, m := range stunMappings(t, ctx, socket) {
		switch {
		case m.Remote.String() == stunAddr:
			toSTUN = m.Outside == mapped
		case m.Remote.String() == a.RemoteSDP:
			toBob = m.Outside == mapped
		}
	}
	if !toSTUN || !toBob {
		t.Errorf("router-a does not map %s to %s towards both the STUN server and bob: %+v", socket, mapped, stunMappings(t, ctx, socket))
	}
	told := ""
	for _, b := range stunStatus(t, ctx).Bindings {
		if b.Client == n.Mapped {
			told = b.Mapped
		}
	}
	if told != n.Mapped {
		t.Errorf("stunturn status has no binding answered with %s", n.Mapped)
	}
}

// TestSTUNFailsOnSymmetricNATTURNWorks: with router-a symmetric the
// mapping towards the STUN server is not the one towards bob, so the
// STUN-derived SDP sends bob's audio to a port that only the STUN server
// may use: alice hears nothing. media_relay=turn fixes it: everything alice
// sends and receives goes through her one mapping towards the TURN server.
func TestSTUNFailsOnSymmetricNATTURNWorks(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	stunReregisterAlice(t) // cleanups run last-first: after the preset is restored
	setRouter(t, ctx, "router-a", "preset", "symmetric")
	t.Cleanup(func() { setRouter(t, context.Background(), "router-a", "preset", natrouter.DefaultPreset) })
	setPhone(t, ctx, "alice", "sdp_addr", "stun")

	t.Run("stun", func(t *testing.T) {
		stunCall(t, ctx)
		a, heard := stunHears(t, ctx, "alice", bobTone, 6*time.Second)
		if heard || (a.Media != nil && a.Media.Received.AudioPackets > 0) {
			t.Fatalf("alice hears bob through a symmetric NAT with a STUN address (received %+v)", a.Media)
		}
		n := stunCallNAT(t, a)
		mapped, err := netip.ParseAddrPort(n.Mapped)
		if err != nil || a.LocalSDP != n.Mapped {
			t.Fatalf("STUN result %+v, SDP %s", n, a.LocalSDP)
		}
		// Why: router-a gave the RTP socket another port towards bob.
		socket := netip.MustParseAddrPort(n.Socket)
		var towardsBob []string
		for _, m := range stunMappings(t, ctx, socket) {
			if m.Remote.String() == a.RemoteSDP {
				towardsBob = append(towardsBob, m.Outside.String())
				if m.Outside == mapped {
					t.Errorf("symmetric router-a used the STUN mapping %s towards bob too", mapped)
				}
			}
		}
		t.Logf("STUN said %s; router-a maps %s towards bob as %s", mapped, socket, strings.Join(towardsBob, ","))
		algHangupAll(ctx)
	})

	t.Run("turn", func(t *testing.T) {
		setPhone(t, ctx, "alice", "media_relay", "turn")
		stunCall(t, ctx)
		a, ok := stunHears(t, ctx, "alice", bobTone, 10*time.Second)
		if !ok {
			t.Fatalf("alice does not hear bob through TURN: %+v nat %+v", a.Media, a.NAT)
		}
		if _, ok := stunHears(t, ctx, "bob", aliceTone, 10*time.Second); !ok {
			t.Fatal("bob does not hear alice through TURN")
		}
		n := stunCallNAT(t, a)
		if n.Relayed == "" || a.LocalSDP != n.Relayed || !strings.HasPrefix(n.Relayed, "203.0.113.20:") {
			t.Fatalf("alice's SDP %s, relay %+v", a.LocalSDP, n)
		}
		stunCheckRelayed(t, ctx, "alice", n.Relayed)
	})
}

// TestTURNBothPhonesRelay: both phones relay their media; bob hears alice
// from her relayed address and the server counts both allocations' bytes.
func TestTURNBothPhonesRelay(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	for _, p := range []string{"alice", "bob"} {
		setPhone(t, ctx, p, "media_relay", "turn")
	}
	stunCall(t, ctx)
	a, ok := stunHears(t, ctx, "alice", bobTone, 10*time.Second)
	if !ok {
		t.Fatalf("alice does not hear bob: %+v nat %+v", a.Media, a.NAT)
	}
	b, ok := stunHears(t, ctx, "bob", aliceTone, 10*time.Second)
	if !ok {
		t.Fatalf("bob does not hear alice: %+v nat %+v", b.Media, b.NAT)
	}
	an, bn := stunCallNAT(t, a), stunCallNAT(t, b)
	if b.Media.Received.LastSource.String() != an.Relayed || a.Media.Received.LastSource.String() != bn.Relayed {
		t.Fatalf("media not from the relays: alice hears from %s (bob's relay %s), bob from %s (alice's relay %s)",
			a.Media.Received.LastSource, bn.Relayed, b.Media.Received.LastSource, an.Relayed)
	}
	stunCheckRelayed(t, ctx, "alice", an.Relayed)
	stunCheckRelayed(t, ctx, "bob", bn.Relayed)
}

// stunCheckRelayed finds user's live allocation at relayed in the server's
// status and checks it relayed bytes both ways.
func stunCheckRelayed(t *testing.T, ctx context.Context, user, relayed string) {
	t.Helper()
	var seen []string
	for _, al := range stunStatus(t, ctx).Allocations {
		seen = append(seen, fmt.Sprintf("%s %s live=%v to=%d from=%d", al.User, al.Relayed, al.Ended.IsZero(), al.ToPeer.Bytes, al.FromPeer.Bytes))
		if al.User == user && al.Relayed == relayed && al.Ended.IsZero() {
			if al.ToPeer.Bytes == 0 || al.FromPeer.Bytes == 0 || len(al.Permissions) == 0 {
				t.Fatalf("%s's allocation %s: to peer %d bytes, from peer %d bytes, permissions %v",
					user, relayed, al.ToPeer.Bytes, al.FromPeer.Bytes, al.Permissions)
			}
			return
		}
	}
	t.Fatalf("stunturn has no live allocation of %s at %s: %s", user, relayed, strings.Join(seen, "; "))
}
