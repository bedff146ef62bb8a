package interop

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/siplab/siplab/sip/location"
)

// Addresses of the sipp tests (each test has its own; see doc.go).
const (
	regTestProxy  = "127.0.0.101"
	regTestReg    = "127.0.0.102"
	regTestPhone  = "127.0.0.103"
	callTestProxy = "127.0.0.104"
	callTestReg   = "127.0.0.105"
	callTestUAS   = "127.0.0.106"
	callTestUAC   = "127.0.0.107"
)

// sipp registers with digest auth (REGISTER, 401, REGISTER with
// Authorization, 200) straight at the registrar and through the proxy, and
// a wrong password is challenged again instead of being accepted.
func TestSippRegister(t *testing.T) {
	needTool(t, "sipp", "sip-tester")
	t.Parallel()
	ctx := testCtx(t)
	l := startLab(t, regTestProxy, regTestReg)

	t.Run("at the registrar", func(t *testing.T) {
		port := freePort(t, regTestPhone)
		r := sippRegister(t, ctx, l.regSIP, "alice", regTestPhone, port)
		if r.exit != 0 || r.successful != 1 || r.failed != 0 {
			t.Fatalf("sipp registration failed: %s", r)
		}
		if !strings.Contains(r.messages, "SIP/2.0 401 Unauthorized") || !strings.Contains(r.messages, `Authorization: Digest username="alice"`) {
			t.Fatalf("no digest round (401, then Authorization) in the trace:\n%s", tail(r.messages, 4000))
		}
		where := netip.AddrPortFrom(netip.MustParseAddr(regTestPhone), uint16(port))
		b := l.waitBinding(t, ctx, "alice", func(b location.Binding) bool { return b.Source == where })
		if b.ContactURI != "sip:alice@"+where.String() || b.UserAgent != "sipp-bench" || len(b.Path) != 0 {
			t.Fatalf("binding %+v: want contact sip:alice@%s from sipp, no Path", b, where)
		}
	})

	t.Run("through the proxy", func(t *testing.T) {
		port := freePort(t, regTestPhone)
		r := sippRegister(t, ctx, l.proxySIP, "bob", regTestPhone, port)
		if r.exit != 0 || r.successful != 1 || r.failed != 0 {
			t.Fatalf("sipp registration through the proxy failed: %s", r)
		}
		where := netip.AddrPortFrom(netip.MustParseAddr(regTestPhone), uint16(port))
		b := l.waitBinding(t, ctx, "bob", func(b location.Binding) bool { return b.Source == where })
		// The proxy's Path carries where the REGISTER really came from.
		if len(b.Path) != 1 || !strings.Contains(b.Path[0], l.proxySIP.String()) || !strings.Contains(b.Path[0], "received="+where.String()) {
			t.Fatalf("binding %+v: want one Path entry of the proxy %s with received=%s", b, l.proxySIP, where)
		}
	})

	t.Run("wrong password gets 401 again", func(t *testing.T) {
		port := freePort(t, regTestPhone)
		dir := t.TempDir()
		inf := writeFile(t, dir, "wrong.csv", fmt.Sprintf("SEQUENTIAL\ncarol;not-carols-password;%s:%d\n", regTestPhone, port))
		s := newSipp(t, ctx, "wrong-password", l.regSIP.String(),
			"-sf", repoFile(t, "interop/testdata/register_wrong_password.xml"), "-inf", inf, "-auth_uri", domain,
			"-i", regTestPhone, "-p", strconv.Itoa(port), "-m", "1", "-timeout", "20s", "-timeout_error")
		r := s.run(t)
		// The scenario expects 401 after the credentials; a 200 or 403 makes
		// it fail.
		if r.exit != 0 || r.successful != 1 {
			t.Fatalf("a wrong password was not re-challenged: %s", r)
		}
		if got := strings.Count(r.messages, "SIP/2.0 401 Unauthorized"); got != 2 {
			t.Fatalf("%d 401s in the trace, want 2:\n%s", got, tail(r.messages, 4000))
		}
		if !strings.Contains(r.messages, `Authorization: Digest username="carol"`) {
			t.Fatalf("sipp sent no credentials:\n%s", tail(r.messages, 4000))
		}
		if bs, err := l.reg.Lookup(ctx, "carol"); err != nil || len(bs) != 0 {
			t.Fatalf("carol has bindings %+v (err %v) after a wrong password", bs, err)
		}
	})
}

// sipp calls through the proxy: the caller (bench/sipp/uac.xml) answers the
// proxy's 407, the callee is a sipp UAS registered as carol
// (bench/sipp/uas.xml, which copies Record-Route as RFC 3261 §12.1.1 wants,
// so ACK and BYE are loose-routed through the proxy). Twenty calls, none may
// fail. sipp's built-in UAS (-sn uas) is not used: it copies no
// Record-Route, so the caller's BYE reaches the proxy with no Route naming
// it and the relay policy refuses it (a To tag alone proves no dialog;
// Kamailio's default script answers 404 there).
func TestSippCallsThroughProxy(t *testing.T) {
	needTool(t, "sipp", "sip-tester")
	t.Parallel()
	ctx := testCtx(t)
	const calls = 20

	for _, tc := range []struct {
		name   string
		uas    []string
		routed bool // the callee copies Record-Route: ACK/BYE carry Route
	}{
		{"bench/sipp/uas.xml", []string{"-sf", repoFile(t, "bench/sipp/uas.xml")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A lab of its own: carol's binding from the previous subtest
			// would fork calls to a UAS that is gone.
			l := startLab(t, callTestProxy, callTestReg)
			uasPort := freePort(t, callTestUAS)
			if r := sippRegister(t, ctx, l.proxySIP, "carol", callTestUAS, uasPort); r.exit != 0 || r.successful != 1 {
				t.Fatalf("carol (sipp UAS) could not register through the proxy: %s", r)
			}
			uasArgs := append(append([]string{}, tc.uas...),
				"-i", callTestUAS, "-p", strconv.Itoa(uasPort), "-mp", strconv.Itoa(freeEvenPort(t, callTestUAS)),
				"-m", strconv.Itoa(calls), "-timeout", "40s", "-timeout_error")
			uas := newSipp(t, ctx, "uas", uasArgs...)
			uas.start(t)

			dir := t.TempDir()
			// Two callers take turns: both are challenged with their own 407.
			inf := writeFile(t, dir, "calls.csv", "SEQUENTIAL\nalice;alice-secret;carol\nbob;bob-secret;carol\n")
			uac := newSipp(t, ctx, "uac", l.proxySIP.String(),
				"-sf", repoFile(t, "bench/sipp/uac.xml"), "-inf", inf, "-auth_uri", "carol@"+domain,
				"-i", callTestUAC, "-p", strconv.Itoa(freePort(t, callTestUAC)), "-mp", strconv.Itoa(freeEvenPort(t, callTestUAC)),
				// -d: 100 ms between ACK and BYE. Back to back, the proxy may
				// forward them in either order (a goroutine per message) and
				// sipp's built-in UAS fails a call whose BYE comes first.
				"-m", strconv.Itoa(calls), "-r", "10", "-l", "10", "-d", "100", "-recv_timeout", "10000",
				"-timeout", "40s", "-timeout_error")
			r := uac.run(t)
			if r.exit != 0 || r.successful != calls || r.failed != 0 {
				t.Fatalf("caller: want %d successful calls and none failed: %s", calls, r)
			}
			ur := uas.wait()
			if ur.exit != 0 || ur.successful != calls || ur.failed != 0 {
				t.Fatalf("callee: want %d successful calls: %s", calls, ur)
			}
			// uas.xml takes the ACK as optional (see there): count them (a
			// retransmitted 200 gets its ACK again, hence "fewer than").
			if got := strings.Count(ur.messages, "\nACK sip:"); got < calls {
				t.Errorf("the callee received %d ACKs for %d calls", got, calls)
			}
			if got := strings.Count(r.messages, "SIP/2.0 407 Proxy Authentication Required"); got != calls {
				t.Errorf("%d 407 challenges for %d calls", got, calls)
			}
			if got := strings.Count(r.messages, "Proxy-Authorization: Digest"); got != calls {
				t.Errorf("%d INVITEs with Proxy-Authorization for %d calls", got, calls)
			}
			// At the start of a line: "Record-Route: <...>" contains it too.
			route := "\nRoute: <sip:" + l.proxySIP.String() + ";lr>"
			if got := strings.Count(r.messages, route); tc.routed && got != 2*calls {
				t.Errorf("%d requests carried %q, want ACK and BYE of every call (%d)", got, route, 2*calls)
			}
			if got := strings.Count(ur.messages, "Record-Route: <sip:"+l.proxySIP.String()+";lr>"); got < calls {
				t.Errorf("the proxy record-routed %d of %d INVITEs", got, calls)
			}
		})
	}
}
