package sbc

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/b2bua"
	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/internal/siptest/platform"
	"github.com/siplab/siplab/lab/labtls"
	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/proxy"
	"github.com/siplab/siplab/registrar"
	"github.com/siplab/siplab/sip/guard"
	"github.com/siplab/siplab/sip/sipnet"
	"github.com/siplab/siplab/uaclient"
)

// Loopback blocks used by no other package: 127.0.45.0/24 is the access
// side (the internet: phones, the carrier, the SBC's public face),
// 127.0.46.0/24 the core (proxy, registrar, the SBC's core face, a PBX
// stand-in). Nothing a phone receives may name 127.0.46.
const (
	accessNet  = "127.0.45."
	coreNet    = "127.0.46."
	sbcAccess  = accessNet + "5"
	sbcCore    = coreNet + "5"
	proxyIP    = coreNet + "10"
	registrarI = coreNet + "20"
	pbxIP      = coreNet + "30"
	// labNumbers is the lab proxy's -route-user: extensions and E.164
	// numbers at our domain go to the PBX (docker-compose.yml).
	labNumbers = `^([+][0-9]+|[0-9*#]+)$`
	domain     = "siplab.test"
	// privateIP is what the phones write everywhere (Via, Contact, SDP):
	// an address the lab cannot route to, like a LAN address behind NAT.
	privateIP = "192.168.77.7"
	usersFile = "alice pw-alice\nbob pw-bob\ncarol pw-carol\n"
)

func TestMain(m *testing.M) {
	// Record every SIP message a socket reads, to check what phones saw.
	sip.SIPDebug = true
	sip.SIPDebugTracer(wire)
	os.Exit(m.Run())
}

// tracer keeps every SIP message read, by the reading socket's address.
type tracer struct {
	mu   sync.Mutex
	msgs []traced
}

type traced struct {
	laddr, raddr string
	msg          []byte
}

var wire = &tracer{}

func (t *tracer) SIPTraceRead(transport, laddr, raddr string, msg []byte) {
	t.mu.Lock()
	t.msgs = append(t.msgs, traced{laddr, raddr, bytes.Clone(msg)})
	t.mu.Unlock()
}

func (t *tracer) SIPTraceWrite(transport, laddr, raddr string, msg []byte) {}

// mark is where the trace stands now: a lab reads only what came after
// its own start, so tests do not see each other's messages.
func (t *tracer) mark() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.msgs)
}

// readBy returns the messages read by sockets on ip (any port) since mark.
func (t *tracer) readBy(ip string, since int) []traced {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []traced
	for _, m := range t.msgs[since:] {
		if strings.HasPrefix(m.laddr, ip+":") {
			out = append(out, m)
		}
	}
	return out
}

func testLogger() *slog.Logger {
	return siptest.Logger("SBC_TEST_LOG")
}

// lab is the platform behind the SBC, as the Docker lab wires it:
// registrar and proxy on the core, the SBC with one foot on each side,
// phones on the access side configured with the SBC as their server.
type lab struct {
	t      testing.TB
	ctx    context.Context
	reg    *registrar.Registrar
	proxy  netip.AddrPort
	sbc    *SBC
	pbx    *b2bua.B2BUA // with labOpts.pbx
	vmDir  string
	phones map[string]*uaclient.Phone
	// since is the trace position when the lab started.
	since int
}

type labOpts struct {
	guard    *guard.Config
	settings *Settings
	trunk    netip.AddrPort
	inbound  netip.AddrPort
	// tls adds a TLS listener to the access side.
	tls *tls.Config
	// wss adds SIP over secure WebSocket (ws.go) with this certificate;
	// page and webrtc are what ServeWebSocket serves with it.
	wss    *tls.Config
	page   http.Handler
	webrtc *webrtcgw.Gateway
	// pbx puts the PBX (b2bua) behind the proxy with this dial plan:
	// numbers go to it, as in the Docker lab.
	pbx string
	// icePolicy is Config.WebRTCICEPolicy.
	icePolicy string
}

func newLab(t testing.TB, opts labOpts) *lab {
	t.Helper()
	log := testLogger()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := &lab{t: t, ctx: ctx, phones: map[string]*uaclient.Phone{}, since: wire.mark()}
	var px proxy.Config
	var pbxEP *sipnet.Endpoint
	if opts.pbx != "" {
		// The PBX's socket is bound first: the proxy routes numbers to it.
		pbxEP = listen(t, pbxIP+":0")
		numbers, err := proxy.ParseUserRoute(labNumbers + "=" + pbxEP.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		px = proxy.Config{Relay: true, UserRoutes: []proxy.UserRoute{numbers}}
	}
	core := platform.StartCore(t, ctx, domain, usersFile, registrarI, proxyIP, px, log)
	l.reg, l.proxy = core.Registrar, core.Proxy
	if opts.pbx != "" {
		l.startPBX(opts.pbx, pbxEP)
	}

	g := opts.guard
	if g == nil {
		d := guard.Default()
		// Tests send bursts from one loopback address; the limits are
		// tested on their own.
		d.RegisterRate, d.InviteRate, d.Burst, d.FailedAuthLimit = 1000, 1000, 1000, 0
		g = &d
	}
	b, err := New(Config{NextHop: l.proxy, Trunk: opts.trunk, TrunkInbound: opts.inbound,
		Guard: g, Settings: opts.settings, WebRTCICEPolicy: opts.icePolicy, Logger: log},
		listenTLS(t, sbcAccess, opts.tls), listen(t, sbcCore+":0"))
	if err == nil && opts.wss != nil {
		// The WSS listener hooks into the SBC before it starts.
		serveWSS(t, b, opts)
	}
	l.sbc = siptest.Run(t, ctx, b, err)
	return l
}

func listen(t testing.TB, addr string) *sipnet.Endpoint {
	t.Helper()
	ep, err := sipnet.Listen(sipnet.Config{Listen: addr, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// listenTLS binds ip:0, plus a TLS listener on ip:0 when cfg is set.
func listenTLS(t testing.TB, ip string, cfg *tls.Config) *sipnet.Endpoint {
	return siptest.Listen(t, ip, cfg, testLogger())
}

// natedSettings turn every NAT fix off on a phone and make it lie like a
// phone behind NAT: private Via, Contact and SDP addresses, no rport, no
// keep-alives.
func natedSettings() map[string]string {
	return map[string]string{
		"rport": "off", "via_addr": privateIP, "contact_addr": privateIP + ":5999",
		"sdp_addr": privateIP, "keepalive": "off", "auto_answer": "1s",
	}
}

// addPhone starts a phone on the access side whose server is the SBC.
func (l *lab) addPhone(name string, host byte, settings map[string]string, password string) *uaclient.Phone {
	l.t.Helper()
	if password == "" {
		password = "pw-" + name
	}
	ph, err := uaclient.New(uaclient.Config{
		Name: name, Password: password, Domain: domain, Proxy: l.sbc.AccessAddr().String(),
		Listen: accessNet + itoa(int(host)) + ":0", Settings: settings, Logger: testLogger(),
	})
	l.phones[name] = siptest.Run(l.t, l.ctx, ph, err)
	return l.phones[name]
}

// registered is addPhone with the phone's own password, registered.
func (l *lab) registered(name string, host byte, settings map[string]string) *uaclient.Phone {
	l.t.Helper()
	ph := l.addPhone(name, host, settings, "")
	l.register(ph)
	return ph
}

// register registers a phone and waits for the outcome.
func (l *lab) register(ph *uaclient.Phone) uaclient.RegStatus {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(l.ctx, 10*time.Second)
	defer cancel()
	if err := ph.Register(ctx); err != nil {
		l.t.Fatalf("%s: register: %v", ph.Name(), err)
	}
	st, err := ph.WaitRegistration(ctx, uaclient.RegRegistered)
	if err != nil {
		l.t.Fatalf("%s did not register: %v (%+v)", ph.Name(), err, st)
	}
	return st
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

// regOf finds a registration in the SBC's status by AOR user.
func (l *lab) regOf(user string) (RegStatus, bool) {
	for _, r := range l.sbc.Status().Registrations {
		if strings.HasPrefix(r.AOR, "sip:"+user+"@") {
			return r, true
		}
	}
	return RegStatus{}, false
}

// readBy is what sockets on ip read since the lab started.
func (l *lab) readBy(ip string) []traced { return wire.readBy(ip, l.since) }

// startPBX runs the PBX on ep with a dial plan, its voicemail in a
// temporary directory, reaching users through the proxy.
func (l *lab) startPBX(plan string, ep *sipnet.Endpoint) {
	l.t.Helper()
	dp, err := b2bua.ParseDialPlan(strings.NewReader(plan))
	if err != nil {
		l.t.Fatal(err)
	}
	l.vmDir = l.t.TempDir()
	pbx, err := b2bua.New(b2bua.Config{Domain: domain, Location: l.reg, Proxy: l.proxy.String(), DialPlan: dp,
		VoicemailDir: l.vmDir, Logger: testLogger()}, ep)
	l.pbx = siptest.Run(l.t, l.ctx, pbx, err)
}

// deskPhone is a phone on the core, registered at the proxy like the
// PBX's desk phones: it needs no SBC.
func (l *lab) deskPhone(name string, host byte) *uaclient.Phone {
	l.t.Helper()
	ph, err := uaclient.New(uaclient.Config{
		Name: name, Password: "pw-" + name, Domain: domain, Proxy: l.proxy.String(),
		Listen: coreNet + itoa(int(host)) + ":0", Settings: map[string]string{"auto_answer": "100ms"}, Logger: testLogger(),
	})
	l.phones[name] = siptest.Run(l.t, l.ctx, ph, err)
	l.register(ph)
	return ph
}

// webrtcOpts are the options of a lab for browsers: SIP over WSS with a
// lab-CA certificate (written to dir, ca.pem for the clients) and the
// WebRTC media gateway, ICE-lite on one UDP port of the access IP.
func webrtcOpts(t testing.TB, dir string) labOpts {
	t.Helper()
	srv, err := labtls.EnsureServerCert(dir, []netip.Addr{netip.MustParseAddr(sbcAccess), netip.MustParseAddr(sbcCore)})
	if err != nil {
		t.Fatal(err)
	}
	iceConn, err := net.ListenPacket("udp4", sbcAccess+":0")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := webrtcgw.New(webrtcgw.Config{Lite: true, ICEConn: iceConn, IPs: []netip.Addr{netip.MustParseAddr(sbcAccess)}, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	return labOpts{wss: srv, webrtc: gw}
}
