package sbc

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/lab/labtls"
	"github.com/siplab/siplab/uaclient"
)

func serveWSS(t testing.TB, b *SBC, opts labOpts) {
	t.Helper()
	ln, err := tls.Listen("tcp", sbcAccess+":0", opts.wss)
	if err != nil {
		t.Fatal(err)
	}
	page := opts.page
	if page == nil {
		mux := http.NewServeMux()
		mux.HandleFunc("/phone", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("phone page")) })
		page = mux
	}
	if err := b.ServeWebSocket(ln, page, opts.webrtc); err != nil {
		t.Fatal(err)
	}
}

// wsPhone is a SIP-over-WebSocket client as a browser is one (RFC 7118):
// it opens the connection, writes an unroutable .invalid host in Via and
// Contact, and can only be reached over the connection it opened.
type wsPhone struct {
	ua     *sipgo.UserAgent
	client *sipgo.Client
	srv    *sipgo.Server
	sbc    netip.AddrPort
	invite chan *sip.Request
	// With answering, a new INVITE waits in incoming for the test to
	// answer it (gateway_test.go); without, it gets 486. Re-INVITEs and
	// BYEs from the SBC are reported in indialog.
	answering bool
	incoming  chan incomingCall
	indialog  chan *sip.Request
}

func newWSPhone(t *testing.T, caFile string, sbcWSS netip.AddrPort, answering bool) *wsPhone {
	t.Helper()
	tc, err := labtls.ClientConfig(caFile, 0)
	if err != nil {
		t.Fatal(err)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgenTLSConfig(tc))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	cl, err := sipgo.NewClient(ua, sipgo.WithClientHostname("df7jal23ls0d.invalid"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	p := &wsPhone{ua: ua, client: cl, srv: srv, sbc: sbcWSS, invite: make(chan *sip.Request, 4),
		answering: answering, incoming: make(chan incomingCall, 4), indialog: make(chan *sip.Request, 16)}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		if req.To().Params.Has("tag") {
			p.indialog <- req
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
			return
		}
		p.invite <- req
		if p.answering {
			p.answer(req, tx)
			return
		}
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBusyHere, "Busy Here", nil))
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		p.indialog <- req
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	return p
}

func (p *wsPhone) register(t *testing.T, ctx context.Context, user, password string) *sip.Response {
	t.Helper()
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: domain})
	aor := sip.Uri{Scheme: "sip", User: user, Host: domain}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	contact := sip.Uri{Scheme: "sip", User: "k3x9", Host: "df7jal23ls0d.invalid", UriParams: sip.NewParams()}
	contact.UriParams.Add("transport", "ws")
	req.AppendHeader(&sip.ContactHeader{Address: contact})
	req.AppendHeader(sip.NewHeader("Expires", "600"))
	req.SetDestination(p.sbc.String())
	req.SetTransport("WSS")
	res, err := p.client.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == 401 {
		res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: password})
		if err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// A phone on SIP over secure WebSocket registers through the SBC with
// digest auth; the registrar binds the SBC's core address, the SBC latches
// the WebSocket connection, and a call to it comes back over that same
// connection (its .invalid Contact is never dialled). The HTTPS page is
// served on the same port.
func TestWebSocketPhoneRegistersAndIsCalled(t *testing.T) {
	dir := t.TempDir()
	srv, err := labtls.EnsureServerCert(dir, []netip.Addr{netip.MustParseAddr(sbcAccess), netip.MustParseAddr(sbcCore)})
	if err != nil {
		t.Fatal(err)
	}
	l := newLab(t, labOpts{wss: srv})
	wss := l.sbc.AccessWSSAddr()
	if !wss.IsValid() || wss.Addr() != l.sbc.AccessAddr().Addr() {
		t.Fatalf("websocket listener %v", wss)
	}
	ctx := siptest.Ctx(t, 20*time.Second)
	carol := newWSPhone(t, filepath.Join(dir, "ca.pem"), wss, false)
	res := carol.register(t, ctx, "carol", "pw-carol")
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER over wss: %d %s", res.StatusCode, res.Reason)
	}
	if c := res.Contact(); c == nil || !strings.Contains(c.Address.Host, ".invalid") {
		t.Errorf("200 shows the phone %v, want its own .invalid Contact", res.Contact())
	}
	reg, ok := l.regOf("carol")
	if !ok || reg.Transport != "wss" || !reg.NATed {
		t.Fatalf("registration %+v, want transport wss, NATed", reg)
	}
	bindings, err := l.reg.Lookup(ctx, "sip:carol@"+domain)
	if err != nil || len(bindings) != 1 || !strings.Contains(bindings[0].ContactURI, l.sbc.CoreAddr().String()) {
		t.Fatalf("registrar bindings %+v, %v; want one at the SBC's core", bindings, err)
	}

	alice := l.registered("alice", 50, natedSettings())
	c, err := alice.Call(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case inv := <-carol.invite:
		if !strings.EqualFold(inv.Transport(), "WSS") {
			t.Errorf("INVITE reached carol over %s", inv.Transport())
		}
		if v := inv.Via(); v == nil || !strings.EqualFold(v.Transport, "WSS") || v.Port != int(wss.Port()) {
			t.Errorf("INVITE Via %v, want the SBC's WSS listener", inv.Via())
		}
		if ct := inv.Contact(); ct == nil || ct.Address.Port != int(wss.Port()) {
			t.Errorf("INVITE Contact %v, want the SBC's WSS listener with transport=ws", inv.Contact())
		}
	case <-ctx.Done():
		t.Fatal("carol got no INVITE over her WebSocket")
	}
	st, err := c.Wait(ctx, uaclient.StateTerminated)
	if err != nil || st.Code != 486 {
		t.Errorf("alice's call ended %+v, %v; want carol's 486", st, err)
	}

	// The phone page shares the port.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: carolTLS(t, dir)}}
	resp, err := hc.Get("https://" + wss.String() + "/phone")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /phone over https: %s", resp.Status)
	}
}

func carolTLS(t *testing.T, dir string) *tls.Config {
	tc, err := labtls.ClientConfig(filepath.Join(dir, "ca.pem"), 0)
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// The browser phone's ICE transport policy (-webrtc-ice-policy) is in the
// status with the WSS listener, so a page served elsewhere (the console's)
// uses it too; without -wss there is no page and no policy. A policy the
// page would not take is refused at New.
func TestWebRTCICEPolicyInStatus(t *testing.T) {
	srv, err := labtls.EnsureServerCert(t.TempDir(), []netip.Addr{netip.MustParseAddr(sbcAccess), netip.MustParseAddr(sbcCore)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, policy string
		wss          *tls.Config
		want         string
	}{
		{"default", "", srv, "all"},
		{"relay only", "relay", srv, "relay"},
		{"no wss", "relay", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, labOpts{wss: tc.wss, icePolicy: tc.policy})
			if got := l.sbc.Status().WebRTCICEPolicy; got != tc.want {
				t.Errorf("status webrtc_ice_policy %q, want %q", got, tc.want)
			}
		})
	}
	_, err = New(Config{NextHop: netip.MustParseAddrPort("10.0.0.1:5060"), WebRTCICEPolicy: "none"},
		listen(t, sbcAccess+":0"), listen(t, sbcCore+":0"))
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `"none"`) {
		t.Errorf("policy none: %v, want ErrConfig naming it", err)
	}
}
