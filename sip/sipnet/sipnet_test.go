package sipnet_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/torturetest"
	"github.com/siplab/siplab/sip/sipcheck"
	"github.com/siplab/siplab/sip/sipnet"
)

func start(t *testing.T, addr string) *sipnet.Endpoint {
	t.Helper()
	ep, err := sipnet.Listen(sipnet.Config{Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// startUDPClient starts an endpoint on loopback and returns it with its
// UDP client.
func startUDPClient(t *testing.T, ctx context.Context) (*sipnet.Endpoint, *sipgo.Client) {
	t.Helper()
	ep := start(t, "127.0.0.1:0")
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := ep.Client(sipnet.UDP)
	if err != nil {
		t.Fatal(err)
	}
	return ep, c
}

// A request sent by the client must leave from the listening socket: the
// peer sees the same source port it would answer to.
func TestRequestsLeaveFromListeningPort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server := start(t, "127.0.0.1:0")
	seen := make(chan string, 1)
	server.Server.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		seen <- req.Source()
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	if err := server.Start(ctx); err != nil {
		t.Fatal(err)
	}
	client, c := startUDPClient(t, ctx)
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: int(server.Addr().Port())})
	res, err := c.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("got %d", res.StatusCode)
	}
	if got := <-seen; got != client.Addr().String() {
		t.Fatalf("request came from %s, want the listening socket %s", got, client.Addr())
	}
}

func TestListenValidation(t *testing.T) {
	for _, tt := range []struct {
		cfg  sipnet.Config
		fail bool
	}{
		{sipnet.Config{Listen: "127.0.0.1:0"}, false},
		{sipnet.Config{Listen: "127.0.0.1:0", Transports: []string{"UDP"}}, false},
		{sipnet.Config{Listen: "0.0.0.0:5060"}, true},
		{sipnet.Config{Listen: "nonsense"}, true},
		{sipnet.Config{Listen: "127.0.0.1:0", Transports: []string{"sctp"}}, true},
	} {
		ep, err := sipnet.Listen(tt.cfg)
		if (err != nil) != tt.fail {
			t.Errorf("%+v: err=%v, want fail=%v", tt.cfg, err, tt.fail)
		}
		if ep != nil {
			if !ep.Addr().IsValid() || ep.Addr().Port() == 0 {
				t.Errorf("bound address %v", ep.Addr())
			}
			ep.Close()
		}
	}
}

// The torture harness itself, against a bare element that validates with
// sipcheck and answers 200 to the rest: what sipnet's receive path and
// sipcheck do for every daemon, with no daemon logic on top.
func TestTortureHarness(t *testing.T) {
	torturetest.Check(t, func(t *testing.T) netip.AddrPort {
		ep := start(t, "127.0.0.1:0")
		for _, m := range []sip.RequestMethod{sip.INVITE, sip.OPTIONS, sip.MESSAGE} {
			ep.Server.OnRequest(m, func(req *sip.Request, tx sip.ServerTransaction) {
				if p := sipcheck.Request(req, sipcheck.Options{}); p != nil {
					tx.Respond(sipcheck.Respond(req, p))
					return
				}
				tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
			})
		}
		ep.Server.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
			if p := sipcheck.Request(req, sipcheck.Options{}); p != nil {
				tx.Respond(sipcheck.Respond(req, p))
				return
			}
			tx.Respond(sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil))
		})
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := ep.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return ep.Addr()
	}, torturetest.Endpoint)
}
