package sbc

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/sip/guard"
	"github.com/siplab/siplab/uaclient"
)

// rawUA is a bare UDP socket speaking SIP by hand: for what phones do not
// do (floods, scanner User-Agents).
type rawUA struct {
	*siptest.RawUDP
	t *testing.T
	n int
}

func newRawUA(t *testing.T, ip string) *rawUA {
	return &rawUA{RawUDP: siptest.NewRawUDP(t, ip), t: t}
}

// send sends a request and returns the first final status code (0 when
// nothing came within wait).
func (r *rawUA) send(to netip.AddrPort, method, ua string, wait time.Duration) int {
	r.n++
	local := r.Addr
	msg := fmt.Sprintf("%s sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s\r\nMax-Forwards: 70\r\n"+
		"From: <sip:100@%s>;tag=r%d\r\nTo: <sip:100@%s>\r\nCall-ID: raw-%d-%d@%s\r\nCSeq: %d %s\r\n"+
		"Contact: <sip:100@%s>\r\nUser-Agent: %s\r\nContent-Length: 0\r\n\r\n",
		method, domain, local, sip.GenerateBranch(), domain, r.n, domain, r.n, time.Now().UnixNano(), local.Addr(),
		r.n, method, local, ua)
	if _, err := r.Conn.WriteToUDPAddrPort([]byte(msg), to); err != nil {
		r.t.Fatal(err)
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(wait)
	for {
		r.Conn.SetReadDeadline(deadline)
		n, _, err := r.Conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return 0
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "SIP/2.0" {
			continue
		}
		code, _ := strconv.Atoi(f[1])
		if code >= 200 {
			if code == 503 && !strings.Contains(string(buf[:n]), "Retry-After:") {
				r.t.Errorf("503 without Retry-After:\n%s", buf[:n])
			}
			return code
		}
	}
}

// Failed authentications block the source: after the limit the SBC goes
// silent for it (no response at all), status lists the block, and
// unblocking lets the phone in again.
func TestFailedAuthBlocksSource(t *testing.T) {
	g := guard.Default()
	g.RegisterRate, g.InviteRate, g.Burst = 1000, 1000, 1000
	g.FailedAuthLimit, g.FailedAuthWindow, g.BlockFor = 3, time.Minute, time.Minute
	l := newLab(t, labOpts{guard: &g})
	bob := l.addPhone("bob", 51, natedSettings(), "wrong")
	ctx := siptest.Ctx(t, 10*time.Second)
	_ = bob.Register(ctx) // challenge + refused retry: two failures
	if st, _ := bob.WaitRegistration(ctx, uaclient.RegFailed); st.Code != 401 {
		t.Fatalf("registration %+v, want 401", st)
	}
	raw := newRawUA(t, accessNet+"51")
	if code := raw.send(l.sbc.AccessAddr(), "REGISTER", "raw", time.Second); code != 401 {
		t.Fatalf("third attempt got %d, want 401 (the failure that blocks)", code)
	}
	if code := raw.send(l.sbc.AccessAddr(), "REGISTER", "raw", 700*time.Millisecond); code != 0 {
		t.Errorf("blocked source got %d, want silence", code)
	}
	st := l.sbc.Status()
	if len(st.Blocked) != 1 || st.Blocked[0].Source != netip.MustParseAddr(accessNet+"51") || st.Counters.Dropped == 0 {
		t.Errorf("blocked %+v, dropped %d", st.Blocked, st.Counters.Dropped)
	}
	// Another source is not affected.
	other := newRawUA(t, accessNet+"52")
	if code := other.send(l.sbc.AccessAddr(), "OPTIONS", "raw", time.Second); code != 200 {
		t.Errorf("unblocked source got %d to OPTIONS, want 200", code)
	}
	if !l.sbc.Unblock(netip.MustParseAddr(accessNet + "51")) {
		t.Fatal("Unblock found no block")
	}
	if err := bob.Set("password", "pw-bob"); err != nil {
		t.Fatal(err)
	}
	l.register(bob)
	_ = context.Background
}

// A scanner User-Agent is blocked on its first packet: no answer, ever.
func TestScannerIsIgnored(t *testing.T) {
	l := newLab(t, labOpts{})
	raw := newRawUA(t, accessNet+"66")
	if code := raw.send(l.sbc.AccessAddr(), "OPTIONS", "friendly-scanner", 700*time.Millisecond); code != 0 {
		t.Errorf("scanner got %d, want silence", code)
	}
	if code := raw.send(l.sbc.AccessAddr(), "OPTIONS", "innocent", 700*time.Millisecond); code != 0 {
		t.Errorf("blocked scanner source got %d with another User-Agent, want silence", code)
	}
	if b := l.sbc.Status().Blocked; len(b) != 1 {
		t.Errorf("blocked %+v, want the scanner", b)
	}
}

// A REGISTER flood from one source gets 503 with Retry-After once its
// bucket is empty; the core never sees the excess.
func TestRegisterFloodRateLimited(t *testing.T) {
	g := guard.Default()
	g.RegisterRate, g.Burst, g.FailedAuthLimit, g.FloodLimit = 1, 3, 0, -1
	l := newLab(t, labOpts{guard: &g})
	raw := newRawUA(t, accessNet+"77")
	codes := map[int]int{}
	for range 8 {
		codes[raw.send(l.sbc.AccessAddr(), "REGISTER", "raw", time.Second)]++
	}
	if codes[503] < 4 || codes[401] < 1 || codes[401] > 4 {
		t.Errorf("flood answers %v: want the burst challenged (401), the rest 503", codes)
	}
	if n := l.sbc.Status().Counters.RateLimited; n < 4 {
		t.Errorf("rate-limited counter %d", n)
	}
}
