package sipnet_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/lab/labtls"
	"github.com/siplab/siplab/sip/sipnet"
)

var loopback = []netip.Addr{netip.MustParseAddr("127.0.0.1")}

// tlsPair starts a TLS server (lab certificate) that answers OPTIONS with
// 200 and reports each request, and returns the CA file clients can trust.
func tlsServer(t *testing.T, ctx context.Context) (*sipnet.Endpoint, *tls.Config, chan *sip.Request) {
	t.Helper()
	dir := t.TempDir()
	srvTLS, err := labtls.EnsureServerCert(dir, loopback)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipnet.Listen(sipnet.Config{Listen: "127.0.0.1:0", TLSListen: "127.0.0.1:0", TLS: srvTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	seen := make(chan *sip.Request, 4)
	srv.Server.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		seen <- req
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return srv, srvTLS, seen
}

func tlsClient(t *testing.T, ctx context.Context, cfg *tls.Config, listen bool) *sipnet.Endpoint {
	t.Helper()
	c := sipnet.Config{Listen: "127.0.0.1:0", TLS: cfg}
	if listen {
		c.TLSListen = "127.0.0.1:0"
	}
	ep, err := sipnet.Listen(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return ep
}

func optionsOverTLS(ctx context.Context, from, to *sipnet.Endpoint) (*sip.Response, error) {
	c, err := from.Client(sipnet.TLS)
	if err != nil {
		return nil, err
	}
	ruri := sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: int(to.TLSAddr().Port()), UriParams: sip.NewParams()}
	ruri.UriParams.Add("transport", "tls")
	req := sip.NewRequest(sip.OPTIONS, ruri)
	req.SetTransport("TLS")
	return c.Do(ctx, req)
}

func TestTLSRequestAnswered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, srvTLS, seen := tlsServer(t, ctx)
	// A CA-only client, as labtls.ClientConfig gives a phone.
	trust := &tls.Config{RootCAs: srvTLS.RootCAs}
	for _, tt := range []struct {
		name    string
		cfg     *tls.Config
		listen  bool // client has its own TLS listener: Via names it
		viaPort func(*sipnet.Endpoint) int
	}{
		// Same certificate directory as the server: cert + lab CA.
		{"client with listener", srvTLS, true, func(e *sipnet.Endpoint) int { return int(e.TLSAddr().Port()) }},
		{"client only", trust, false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cli := tlsClient(t, ctx, tt.cfg, tt.listen)
			res, err := optionsOverTLS(ctx, cli, srv)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 {
				t.Fatalf("got %d", res.StatusCode)
			}
			req := <-seen
			via := req.Via()
			if via.Transport != "TLS" || via.Host != "127.0.0.1" {
				t.Errorf("Via %s, want SIP/2.0/TLS 127.0.0.1", via.Value())
			}
			if tt.viaPort != nil && via.Port != tt.viaPort(cli) {
				t.Errorf("Via port %d, want the TLS listener %d", via.Port, tt.viaPort(cli))
			}
			if via.Port == 0 {
				t.Errorf("Via without a port: %s", via.Value())
			}
			if req.Transport() != "TLS" {
				t.Errorf("server saw transport %q", req.Transport())
			}
		})
	}
}

// A client that does not trust the lab CA fails the handshake and says so.
func TestTLSUntrustedServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, _, seen := tlsServer(t, ctx)
	other, err := labtls.EnsureServerCert(t.TempDir(), loopback)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"other lab CA", &tls.Config{RootCAs: other.RootCAs}},
		{"system roots", &tls.Config{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cli := tlsClient(t, ctx, tt.cfg, false)
			_, err := optionsOverTLS(ctx, cli, srv)
			if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
				t.Fatalf("err = %v, want an unknown-authority handshake error", err)
			}
		})
	}
	select {
	case req := <-seen:
		t.Fatalf("server got a request over an untrusted connection: %s", req.StartLine())
	default:
	}
}

func TestTLSConfigValidation(t *testing.T) {
	cert, err := labtls.EnsureServerCert(t.TempDir(), loopback)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cfg  sipnet.Config
		want error // nil = Listen works
	}{
		{"listener", sipnet.Config{Listen: "127.0.0.1:0", TLSListen: "127.0.0.1:0", TLS: cert}, nil},
		{"client only", sipnet.Config{Listen: "127.0.0.1:0", TLS: &tls.Config{}}, nil},
		{"no certificate", sipnet.Config{Listen: "127.0.0.1:0", TLSListen: "127.0.0.1:0", TLS: &tls.Config{}}, sipnet.ErrTLSConfig},
		{"no config", sipnet.Config{Listen: "127.0.0.1:0", TLSListen: "127.0.0.1:0"}, sipnet.ErrTLSConfig},
		{"other IP", sipnet.Config{Listen: "127.0.0.1:0", TLSListen: "127.0.0.2:0", TLS: cert}, sipnet.ErrTLSConfig},
		{"bad address", sipnet.Config{Listen: "127.0.0.1:0", TLSListen: "5061", TLS: cert}, sipnet.ErrTLSConfig},
		{"tls as a Listen transport", sipnet.Config{Listen: "127.0.0.1:0", Transports: []string{"udp", "tls"}, TLS: cert}, sipnet.ErrTLSConfig},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ep, err := sipnet.Listen(tt.cfg)
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if ep == nil {
				return
			}
			defer ep.Close()
			_, cerr := ep.Client(sipnet.TLS)
			if cerr != nil {
				t.Errorf("Client(tls): %v", cerr)
			}
			if (tt.cfg.TLSListen != "") != ep.TLSAddr().IsValid() {
				t.Errorf("TLSAddr %v with TLSListen %q", ep.TLSAddr(), tt.cfg.TLSListen)
			}
		})
	}
	// Without TLS the transport is absent, as before.
	ep := start(t, "127.0.0.1:0")
	if _, err := ep.Client(sipnet.TLS); !errors.Is(err, sipnet.ErrTransportDisabled) {
		t.Fatalf("Client(tls) without TLS: %v", err)
	}
}
