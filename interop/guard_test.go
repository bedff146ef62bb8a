package interop

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// Addresses of TestSippPasswordGuessingIsBlocked (see doc.go).
const (
	guardTestProxy    = "127.0.0.150"
	guardTestReg      = "127.0.0.151"
	guardTestAttacker = "127.0.0.152"
	guardTestHonest   = "127.0.0.153"
)

// The attack issue 14 found with sipp, replayed: 50 wrong-password
// REGISTERs from one source at 20/s through the proxy. The registrar (which
// sees the source in the proxy's Path) answers 401 to the first nine
// guesses and 403 "source blocked" from the tenth on; the right password
// from that source is refused too, while another source registers.
func TestSippPasswordGuessingIsBlocked(t *testing.T) {
	needTool(t, "sipp", "sip-tester")
	t.Parallel()
	ctx := testCtx(t)
	l := startLab(t, guardTestProxy, guardTestReg)

	port := freePort(t, guardTestAttacker)
	dir := t.TempDir()
	inf := writeFile(t, dir, "wrong.csv", fmt.Sprintf("SEQUENTIAL\nalice;not-alices-password;%s:%d\n", guardTestAttacker, port))
	s := newSipp(t, ctx, "guessing", l.proxySIP.String(),
		"-sf", repoFile(t, "interop/testdata/register_wrong_password.xml"), "-inf", inf, "-auth_uri", domain,
		"-i", guardTestAttacker, "-p", strconv.Itoa(port), "-r", "20", "-m", "50", "-timeout", "30s")
	r := s.run(t)
	// Each call that got its second 401 passed the scenario; a 403 fails
	// it. A retransmitted guess counts again (the challenge is stateless),
	// so under load the block may come a guess early.
	if r.successful+r.failed != 50 || r.successful < 5 || r.successful > 9 {
		t.Fatalf("want about 9 guesses challenged and the rest refused: %s", r)
	}
	if n := strings.Count(r.messages, "SIP/2.0 403 Forbidden (source blocked)"); n < 41 {
		t.Fatalf("%d 403 (source blocked) in the trace, want at least 41:\n%s", n, tail(r.messages, 4000))
	}
	blocked := l.reg.Blocked()
	if len(blocked) != 1 || blocked[0].Source.String() != guardTestAttacker {
		t.Fatalf("registrar blocks %+v, want %s (the source behind the proxy, not the proxy)", blocked, guardTestAttacker)
	}

	// The right password from the blocked source: refused.
	if r := sippRegister(t, ctx, l.proxySIP, "alice", guardTestAttacker, freePort(t, guardTestAttacker)); r.exit == 0 ||
		!strings.Contains(r.messages, "403 Forbidden (source blocked)") {
		t.Fatalf("the right password from the blocked source was not refused: %s", r)
	}
	// Another source registers.
	if r := sippRegister(t, ctx, l.proxySIP, "bob", guardTestHonest, freePort(t, guardTestHonest)); r.exit != 0 || r.successful != 1 {
		t.Fatalf("another source could not register: %s", r)
	}
}
