package interop

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/uaclient"
)

const (
	phoneTestProxy = "127.0.0.108"
	phoneTestReg   = "127.0.0.109"
	phoneTestOurs  = "127.0.0.110" // our uaclient phones
	phoneTestSipp  = "127.0.0.111" // sipp, caller or callee
)

// sipp calls one of our phones: sipp's INVITE is challenged (407) and
// forwarded to bob, our uaclient, which answers; sipp ACKs and hangs up.
func TestSippCallsOurPhone(t *testing.T) {
	needTool(t, "sipp", "sip-tester")
	t.Parallel()
	ctx := testCtx(t)
	l := startLab(t, phoneTestProxy, phoneTestReg)
	bob := l.startPhone(t, ctx, phoneTestOurs, "bob", 20*time.Millisecond)

	const calls = 3
	inf := writeFile(t, t.TempDir(), "calls.csv", "SEQUENTIAL\nalice;alice-secret;bob\n")
	s := newSipp(t, ctx, "uac-to-uaclient", l.proxySIP.String(),
		"-sf", repoFile(t, "bench/sipp/uac.xml"), "-inf", inf, "-auth_uri", "bob@"+domain,
		"-i", phoneTestSipp, "-p", strconv.Itoa(freePort(t, phoneTestSipp)), "-mp", strconv.Itoa(freeEvenPort(t, phoneTestSipp)),
		"-m", strconv.Itoa(calls), "-l", "1", "-recv_timeout", "10000", "-timeout", "40s", "-timeout_error")
	r := s.run(t)
	if r.exit != 0 || r.successful != calls || r.failed != 0 {
		t.Fatalf("sipp calling our phone: %s", r)
	}
	// Every 180 and 200 came from our phone (its Contact), through the proxy.
	contact := "Contact: <sip:bob@" + bob.Addr().String() + ">"
	// (At least: a 200 is retransmitted until its ACK arrives.)
	if n, m := strings.Count(r.messages, "SIP/2.0 180 Ringing"), strings.Count(r.messages, contact); n < calls || m < 2*calls {
		t.Errorf("%d 180s and %d responses with %q for %d calls:\n%s", n, m, contact, calls, tail(r.messages, 4000))
	}

	// bob saw three answered calls, each ended by sipp's BYE.
	var incoming []uaclient.CallStatus
	for { // the last BYE may still be in flight when sipp exits
		incoming = incoming[:0]
		for _, c := range bob.Status().Calls {
			if c.Direction == uaclient.Incoming && c.State == uaclient.StateTerminated {
				incoming = append(incoming, c)
			}
		}
		if len(incoming) == calls || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(incoming) != calls {
		t.Fatalf("bob has %d ended incoming calls, want %d: %+v", len(incoming), calls, bob.Status().Calls)
	}
	for _, c := range incoming {
		if c.Code != 200 || c.EndedBy != "remote" || c.Answered.IsZero() || !strings.Contains(c.Peer, "alice@") {
			t.Errorf("call %+v: want answered (200) by bob, from alice, ended by the remote BYE", c)
		}
		// sipp offered PCMU on its media port; bob must have sent there.
		if c.Codec != "PCMU/8000" || !strings.HasPrefix(c.RemoteSDP, phoneTestSipp+":") {
			t.Errorf("call %s: codec %q, remote SDP %q: want PCMU to sipp at %s", c.ID, c.Codec, c.RemoteSDP, phoneTestSipp)
		}
	}
}

// One of our phones calls a sipp UAS: alice answers the proxy's 407, sipp
// answers with its SDP, and sipp's RTP echo (-rtp_echo) sends alice's own
// test tone back, so what alice hears proves the media path both ways.
//
// The callee runs bench/sipp/uas.xml, not "-sn uas": sipp sends every
// response of a call to the address the call's first message came from
// (here the proxy), whatever the Via says, and the built-in scenario does not
// copy Record-Route. So alice's BYE would go straight to sipp's Contact and
// its 200 to the proxy, which drops it as a stray: the BYE times out.
// Copying Record-Route keeps the BYE, and so its 200, on the proxy path.
func TestOurPhoneCallsSipp(t *testing.T) {
	needTool(t, "sipp", "sip-tester")
	t.Parallel()
	ctx := testCtx(t)
	// Own addresses: the .1xx plan gives this test .112-.115.
	l := startLab(t, "127.0.0.112", "127.0.0.113")
	const sippIP, ourIP = "127.0.0.114", "127.0.0.115"

	uasPort := freePort(t, sippIP)
	if r := sippRegister(t, ctx, l.proxySIP, "carol", sippIP, uasPort); r.exit != 0 || r.successful != 1 {
		t.Fatalf("carol (sipp UAS) could not register: %s", r)
	}
	mediaPort := freeEvenPort(t, sippIP)
	uas := newSipp(t, ctx, "uas", "-sf", repoFile(t, "bench/sipp/uas.xml"), "-i", sippIP, "-p", strconv.Itoa(uasPort),
		"-mp", strconv.Itoa(mediaPort), "-rtp_echo", "-m", "1", "-timeout", "40s", "-timeout_error")
	uas.start(t)

	alice := l.startPhone(t, ctx, ourIP, "alice", 0)
	c, st := confirmedCall(t, ctx, alice, "carol", "call to the sipp UAS")
	sippMedia := netip.AddrPortFrom(netip.MustParseAddr(sippIP), uint16(mediaPort))
	if st.RemoteSDP != sippMedia.String() {
		t.Fatalf("remote SDP %s, want sipp's media %s", st.RemoteSDP, sippMedia)
	}
	if want := "sip:" + l.proxySIP.String() + ";lr"; len(st.RouteSet) != 1 || st.RouteSet[0] != want {
		t.Fatalf("route set %q, want the proxy's Record-Route %s", st.RouteSet, want)
	}
	// Echoed tone: wait for enough audio for alice's tone detector.
	for {
		st = c.Status()
		if st.Media != nil && st.Media.Received.AudioPackets >= 25 && st.Media.Received.ToneHz > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no echoed audio from sipp: %+v", st.Media)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, want := st.Media.Received.ToneHz, alice.ToneHz(); math.Abs(got-want) > 25 {
		t.Errorf("alice hears %.0f Hz, want her own %.0f Hz echoed by sipp", got, want)
	}
	if src := st.Media.Received.LastSource; src != sippMedia {
		t.Errorf("echo came from %s, want sipp's media socket %s", src, sippMedia)
	}
	if err := c.Hangup(ctx); err != nil {
		uas.cmd.Process.Kill()
		t.Fatalf("%v\nsipp UAS: %s", err, uas.wait())
	}
	st, err := c.Wait(ctx, uaclient.StateTerminated)
	if err != nil || st.EndedBy != "local" {
		t.Fatalf("hangup: %v (%+v)", err, st)
	}
	if r := uas.wait(); r.exit != 0 || r.successful != 1 || r.failed != 0 {
		t.Fatalf("sipp UAS: %s", r)
	}
}
