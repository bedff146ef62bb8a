package carrier_test

import (
	"crypto/tls"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/carrier"
	"github.com/siplab/siplab/internal/torturetest"
	"github.com/siplab/siplab/sip/sipnet"
	"github.com/siplab/siplab/uaclient"
)

var transports = []string{sipnet.UDP, sipnet.TLS}

// The SBC calls a carrier subscriber: it rings, answers after the delay
// with its tone, and both ends hear each other.
func TestInboundCall(t *testing.T) {
	for _, tp := range transports {
		t.Run(tp, func(t *testing.T) {
			ctx := testCtx(t)
			tr := newTrunk(t, tp, nil)
			call := answered(t, ctx)(tr.sbc.Call(ctx, tr.carrierURI("+15550100", tp)))
			heard(t, "sbc", call.Status, 900)
			cst := heard(t, "carrier", func() uaclient.CallStatus { return tr.carrier.Status().Calls[0] }, 1300)
			if rang := cst.Answered.Sub(cst.Started); rang < 150*time.Millisecond {
				t.Errorf("answered after %s, want the 200 ms ring first", rang)
			}
			if tp == sipnet.TLS && !strings.Contains(cst.RemoteTarget, "transport=tls") {
				t.Errorf("carrier's remote target %q, want the SBC's TLS Contact", cst.RemoteTarget)
			}
			if err := call.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			eventually(t, "carrier call ended by BYE", func() bool {
				return tr.carrier.Status().Calls[0].State == uaclient.StateTerminated
			})
		})
	}
}

// The carrier's number plan and ACL, answered before anything rings.
func TestInboundScreening(t *testing.T) {
	tr := newTrunk(t, sipnet.UDP, nil)
	stranger, err := uaclient.New(uaclient.Config{Name: "stranger", Endpoint: listen(t, strangerIP, nil),
		Proxy: tr.cep.Addr().String(), Logger: testLogger(t).With("node", "stranger")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stranger.Close() })
	if err := stranger.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		from   *uaclient.Phone
		number string
		want   int
	}{
		{"untrusted source", stranger, "+15550100", sip.StatusForbidden},
		{"outside the ranges", tr.sbc, "+4930123456", sip.StatusNotFound},
		{"a name, not a number", tr.sbc, "alice", sip.StatusAddressIncomplete},
		{"too short", tr.sbc, "+1555", sip.StatusAddressIncomplete},
		{"no plus", tr.sbc, "15550100", sip.StatusAddressIncomplete},
		{"too long", tr.sbc, "+1555010012345678", sip.StatusAddressIncomplete},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			call, err := tt.from.Call(ctx, tr.carrierURI(tt.number, sipnet.UDP))
			if err != nil {
				t.Fatal(err)
			}
			st, err := call.Wait(ctx, uaclient.StateTerminated)
			if err != nil {
				t.Fatal(err)
			}
			if st.Code != tt.want {
				t.Fatalf("got %d %s, want %d", st.Code, st.Reason, tt.want)
			}
		})
	}
	for _, c := range tr.carrier.Status().Calls {
		t.Errorf("a refused INVITE left a call at the carrier: %+v", c)
	}
}

// The carrier calls out: the SBC sees the PSTN caller in From and rings.
func TestOutboundCall(t *testing.T) {
	for _, tp := range transports {
		t.Run(tp, func(t *testing.T) {
			ctx := testCtx(t)
			tr := newTrunk(t, tp, nil)
			call := answered(t, ctx)(tr.carrier.Call(ctx, "+15550123", "+15550177"))
			heard(t, "carrier", call.Status, 1300)
			sst := heard(t, "sbc", func() uaclient.CallStatus { return tr.sbc.Status().Calls[0] }, 900)
			if !strings.HasPrefix(sst.Peer, "sip:+15550177@"+carrierIP) {
				t.Errorf("SBC sees the call from %q, want sip:+15550177@%s", sst.Peer, carrierIP)
			}
			if err := call.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// rawPeer is a bare SIP endpoint playing the SBC: it records each INVITE
// and answers 486, so the test reads the request exactly as sent.
func rawPeer(t *testing.T, cfg *tls.Config) (*sipnet.Endpoint, chan *sip.Request) {
	t.Helper()
	ep := listen(t, sbcIP, cfg)
	got := make(chan *sip.Request, 2)
	ep.Server.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		got <- req
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBusyHere, "Busy Here", nil))
	})
	if err := ep.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return ep, got
}

func TestOutboundRequest(t *testing.T) {
	for _, tp := range transports {
		t.Run(tp, func(t *testing.T) {
			ctx := testCtx(t)
			var cc, pc *tls.Config
			if tp == sipnet.TLS {
				pki := makeCerts(t)
				cc, pc = pki.carrier, pki.sbc
			}
			peer, got := rawPeer(t, pc)
			car, err := carrier.New(carrier.Config{Endpoint: listen(t, carrierIP, cc), Peer: sigAddr(peer, tp),
				PeerTransport: tp, Numbers: []string{"+1555"}, OptionsInterval: -1, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { car.Close() })
			if err := car.Start(ctx); err != nil {
				t.Fatal(err)
			}
			call, err := car.Call(ctx, "+4930123456", "") // default caller
			if err != nil {
				t.Fatal(err)
			}
			var req *sip.Request
			select {
			case req = <-got:
			case <-ctx.Done():
				t.Fatal("no INVITE reached the peer")
			}
			wantURI := "sip:+4930123456@" + sigAddr(peer, tp)
			if tp != sipnet.UDP {
				wantURI += ";transport=" + tp
			}
			if req.Recipient.String() != wantURI {
				t.Errorf("Request-URI %s, want %s", req.Recipient.String(), wantURI)
			}
			if f := req.From().Address; f.User != "+15550199" || f.Host != carrierIP {
				t.Errorf("From %s, want sip:+15550199@%s", f.String(), carrierIP)
			}
			if req.GetHeader("Authorization") != nil || req.GetHeader("Proxy-Authorization") != nil {
				t.Error("credentials sent: trust is by IP")
			}
			if v := req.Via(); v.Transport != strings.ToUpper(tp) || v.Port != int(sigPort(car, tp)) {
				t.Errorf("Via %s, want %s on the carrier's %s port", v.Value(), strings.ToUpper(tp), tp)
			}
			st, err := call.Wait(ctx, uaclient.StateTerminated)
			if err != nil || st.Code != sip.StatusBusyHere {
				t.Fatalf("call end %+v %v, want 486", st, err)
			}
		})
	}
}

func sigPort(c *carrier.Carrier, tp string) uint16 {
	if tp == sipnet.TLS {
		return c.TLSAddr().Port()
	}
	return c.Addr().Port()
}

func TestCallBadNumbers(t *testing.T) {
	tr := newTrunk(t, sipnet.UDP, nil)
	for _, tt := range []struct{ callee, from string }{
		{"5550123", ""},
		{"+1 555 0123", ""},
		{"+15550123", "anonymous"},
		{"+15550123", "+1"},
	} {
		if _, err := tr.carrier.Call(testCtx(t), tt.callee, tt.from); !errors.Is(err, carrier.ErrNotE164) {
			t.Errorf("Call(%q, %q) = %v, want ErrNotE164", tt.callee, tt.from, err)
		}
	}
}

// OPTIONS both ways: the carrier pings its peer (up, RTT), the peer pings
// the carrier (200), a stranger's ping is refused (403), and a peer that
// is not there is down.
func TestOptions(t *testing.T) {
	for _, tp := range transports {
		t.Run(tp, func(t *testing.T) {
			ctx := testCtx(t)
			tr := newTrunk(t, tp, nil)
			ps := tr.carrier.Ping(ctx)
			if ps.State != carrier.PeerUp || ps.LastCode != 200 || ps.Sent != 1 || ps.LastUp.IsZero() {
				t.Errorf("carrier -> peer: %+v, want up after a 200", ps)
			}
			res, err := tr.sbc.Options(ctx, "")
			if err != nil || res.Code != 200 {
				t.Errorf("peer -> carrier: %+v %v, want 200", res, err)
			}
		})
	}
	t.Run("untrusted", func(t *testing.T) {
		ctx := testCtx(t)
		tr := newTrunk(t, sipnet.UDP, nil)
		stranger, err := uaclient.New(uaclient.Config{Name: "stranger", Endpoint: listen(t, strangerIP, nil),
			Proxy: tr.cep.Addr().String(), Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stranger.Close() })
		if err := stranger.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if res, _ := stranger.Options(ctx, ""); res.Code != sip.StatusForbidden {
			t.Errorf("stranger -> carrier: %d %s, want 403", res.Code, res.Reason)
		}
	})
	t.Run("peer gone", func(t *testing.T) {
		ctx := testCtx(t)
		// TCP to a port nobody listens on: refused at once.
		car, err := carrier.New(carrier.Config{Endpoint: listen(t, carrierIP, nil), Peer: sbcIP + ":9",
			PeerTransport: sipnet.TCP, Numbers: []string{"+1555"}, OptionsInterval: -1, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { car.Close() })
		if err := car.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if ps := car.Ping(ctx); ps.State != carrier.PeerDown || ps.Error == "" {
			t.Errorf("%+v, want down with the error", ps)
		}
		if st := car.Status(); !strings.Contains(st.Summary, "down") {
			t.Errorf("summary %q does not say the trunk is down", st.Summary)
		}
	})
}

// The background pinger marks the peer up without being asked.
func TestOptionsInterval(t *testing.T) {
	tr := newTrunk(t, sipnet.UDP, func(c *carrier.Config) { c.OptionsInterval = time.Second })
	eventually(t, "two pings answered", func() bool {
		p := tr.carrier.Status().Peer
		return p.State == carrier.PeerUp && p.Answered >= 2
	})
}

func TestConfigValidation(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*carrier.Config)
	}{
		{"no endpoint", func(c *carrier.Config) { c.Endpoint = nil }},
		{"peer by name", func(c *carrier.Config) { c.Peer = "sbc.siplab.test:5061" }},
		{"peer without port", func(c *carrier.Config) { c.Peer = sbcIP }},
		{"unknown transport", func(c *carrier.Config) { c.PeerTransport = "sctp" }},
		{"tls without certificates", func(c *carrier.Config) { c.PeerTransport = "tls" }},
		{"no numbers", func(c *carrier.Config) { c.Numbers = nil }},
		{"range without plus", func(c *carrier.Config) { c.Numbers = []string{"1555"} }},
		{"range with letters", func(c *carrier.Config) { c.Numbers = []string{"+1555x"} }},
		{"negative answer delay", func(c *carrier.Config) { c.AnswerAfter = -time.Second }},
		{"ping flood", func(c *carrier.Config) { c.OptionsInterval = 10 * time.Millisecond }},
		{"default caller not E.164", func(c *carrier.Config) { c.DefaultFrom = "5550199" }},
		{"invalid prefix", func(c *carrier.Config) { c.Trusted = []netip.Prefix{{}} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := carrier.Config{Endpoint: listen(t, carrierIP, nil), Peer: sbcIP + ":5060", Numbers: []string{"+1555"}}
			tt.mod(&cfg)
			c, err := carrier.New(cfg)
			if !errors.Is(err, carrier.ErrConfig) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

// RFC 4475 from a trusted source: the carrier answers each message like
// every siplab daemon (the invalid ones refused with a reason naming the
// bad part, the valid ones processed), and no stranger's INVITE becomes a
// call (none is to an E.164 number).
func TestTortureMessages(t *testing.T) {
	var trunks []trunk
	torturetest.Check(t, func(t *testing.T) netip.AddrPort {
		tr := newTrunk(t, sipnet.UDP, func(c *carrier.Config) {
			c.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		})
		trunks = append(trunks, tr)
		return tr.cep.Addr()
	}, torturetest.Carrier)
	for _, tr := range trunks {
		for _, c := range tr.carrier.Status().Calls {
			if c.State == uaclient.StateConfirmed {
				t.Errorf("a torture message left a confirmed call: %+v", c)
			}
		}
	}
}

// The default ACL (the peer alone) refuses with 403 whatever parses from
// anywhere else, valid or not; what does not parse gets its 400 on the
// receive path first, like at every daemon.
func TestTortureUntrusted(t *testing.T) {
	torturetest.Check(t, func(t *testing.T) netip.AddrPort {
		return newTrunk(t, sipnet.UDP, nil).cep.Addr()
	}, torturetest.CarrierUntrusted)
}
