package b2bua

import (
	"context"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/internal/siptest/platform"
	"github.com/siplab/siplab/proxy"
	"github.com/siplab/siplab/registrar"
	"github.com/siplab/siplab/sip/sipnet"
	"github.com/siplab/siplab/uaclient"
)

// This package's tests use loopback block 127.0.9.0/24: proxy .10,
// registrar .20, the PBX .30, phones from .50 up, raw test sockets .90 up.
const (
	domain        = "siplab.test"
	proxyIP       = "127.0.9.10"
	registrarIP   = "127.0.9.20"
	pbxIP         = "127.0.9.30"
	testDialPlan  = "100 alice\n101 bob busy=102 noanswer=voicemail:bob timeout=2s\n102 carol\n103 dave\n*97 voicemail\n"
	testUsersFile = "alice pw-alice\nbob pw-bob\ncarol pw-carol\ndave pw-dave\n"
	// labNumbers is the lab proxy's -route-user: extensions and E.164
	// numbers at our domain go to the PBX (docker-compose.yml).
	labNumbers = `^([+][0-9]+|[0-9*#]+)$`
)

func testLogger(t testing.TB) *slog.Logger {
	return siptest.Logger("B2BUA_TEST_LOG")
}

// lab is registrar + proxy + PBX + phones on loopback, the platform as the
// Docker lab wires it: phones register and call through the proxy, the
// proxy relays calls for the PBX's address to it, the PBX reaches callees
// through the proxy.
type lab struct {
	t      testing.TB
	reg    *registrar.Registrar
	proxy  netip.AddrPort
	pbx    *B2BUA
	phones map[string]*uaclient.Phone
	vmDir  string
}

type labOpts struct {
	settings *Settings
	// dialPlan replaces testDialPlan.
	dialPlan string
	// direct sends callee legs to the binding's source, not the proxy.
	direct   bool
	maxCalls int
}

func newLab(t testing.TB, opts labOpts, phones ...string) *lab {
	t.Helper()
	log := testLogger(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := &lab{t: t, phones: map[string]*uaclient.Phone{}, vmDir: t.TempDir()}

	// The PBX's socket is bound first: the proxy routes numbers to it.
	pbxEP, err := sipnet.Listen(sipnet.Config{Listen: pbxIP + ":0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	numbers, err := proxy.ParseUserRoute(labNumbers + "=" + pbxEP.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	core := platform.StartCore(t, ctx, domain, testUsersFile, registrarIP, proxyIP,
		proxy.Config{Relay: true, UserRoutes: []proxy.UserRoute{numbers}}, log)
	l.reg, l.proxy = core.Registrar, core.Proxy

	plan := testDialPlan
	if opts.dialPlan != "" {
		plan = opts.dialPlan
	}
	dp, err := ParseDialPlan(strings.NewReader(plan))
	if err != nil {
		pbxEP.Close()
		t.Fatal(err)
	}
	cfg := Config{Domain: domain, Location: l.reg, Proxy: l.proxy.String(), DialPlan: dp,
		VoicemailDir: l.vmDir, Settings: opts.settings, MaxCalls: opts.maxCalls, Logger: log}
	if opts.direct {
		cfg.Proxy = ""
	}
	pbx, err := New(cfg, pbxEP)
	l.pbx = siptest.Run(t, ctx, pbx, err)

	for i, name := range phones {
		l.addPhone(ctx, name, netip.AddrFrom4([4]byte{127, 0, 9, byte(50 + i)}))
	}
	for name, ph := range l.phones {
		wctx, c := context.WithTimeout(ctx, 10*time.Second)
		_, err := ph.WaitRegistration(wctx, uaclient.RegRegistered)
		c()
		if err != nil {
			t.Fatalf("%s did not register: %v", name, err)
		}
	}
	return l
}

func (l *lab) addPhone(ctx context.Context, name string, ip netip.Addr) *uaclient.Phone {
	l.t.Helper()
	ph, err := uaclient.New(uaclient.Config{
		Name: name, Password: "pw-" + name, Domain: domain, Proxy: l.proxy.String(),
		Listen: ip.String() + ":0", AutoRegister: true, Logger: testLogger(l.t),
	})
	l.phones[name] = siptest.Run(l.t, ctx, ph, err)
	return l.phones[name]
}

// autoAnswer has each phone answer its calls after 100 ms.
func autoAnswer(t *testing.T, phones ...*uaclient.Phone) {
	t.Helper()
	for _, p := range phones {
		if err := p.Set("auto_answer", "100ms"); err != nil {
			t.Fatal(err)
		}
	}
}

// dialUp has from call target and waits until the call is confirmed.
func dialUp(t *testing.T, from *uaclient.Phone, target string) *uaclient.Call {
	t.Helper()
	call, err := from.Call(siptest.Ctx(t, 5*time.Second), target)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call.Wait(siptest.Ctx(t, 10*time.Second), uaclient.StateConfirmed); err != nil {
		t.Fatal(err)
	}
	return call
}

// callUp is dialUp that also returns the callee's call, found on to.
func callUp(t *testing.T, from, to *uaclient.Phone, target string) (*uaclient.Call, *uaclient.Call) {
	t.Helper()
	call := dialUp(t, from, target)
	in, err := to.FindCall("")
	if err != nil {
		t.Fatal(err)
	}
	return call, in
}

// ringUp has from call target and waits until to rings: it returns the
// caller's call and the callee's ringing one.
func ringUp(t *testing.T, from, to *uaclient.Phone, target string) (*uaclient.Call, uaclient.CallStatus) {
	t.Helper()
	call, err := from.Call(siptest.Ctx(t, 5*time.Second), target)
	if err != nil {
		t.Fatal(err)
	}
	in, err := to.WaitCall(siptest.Ctx(t, 5*time.Second), "", uaclient.StateRinging)
	if err != nil {
		t.Fatal(err)
	}
	return call, in
}

// dial is what a phone dials to reach ext at the PBX (through its proxy).
func (l *lab) dial(ext string) string {
	return ext + "@" + l.pbx.LocalAddr().String()
}

func (l *lab) phone(name string) *uaclient.Phone { return l.phones[name] }

// callOf finds the PBX call whose caller leg has Call-ID cid.
func (l *lab) callOf(cid string) (CallStatus, bool) {
	for _, c := range l.pbx.Status().Calls {
		for _, lg := range c.Legs {
			if lg.Leg == "a" && lg.CallID == cid {
				return c, true
			}
		}
	}
	return CallStatus{}, false
}

func legOf(c CallStatus, name string) LegStatus {
	for _, l := range c.Legs {
		if l.Leg == name {
			return l
		}
	}
	return LegStatus{}
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
