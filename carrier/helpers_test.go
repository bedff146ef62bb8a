package carrier_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/siplab/siplab/carrier"
	"github.com/siplab/siplab/internal/runtest"
	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/lab/labtls"
	"github.com/siplab/siplab/sip/sipnet"
	"github.com/siplab/siplab/uaclient"
)

// Addresses: 127.0.40.x is this package's loopback block.
const (
	carrierIP  = "127.0.40.40"
	sbcIP      = "127.0.40.5"  // the trunk peer (played by a uaclient phone)
	strangerIP = "127.0.40.66" // not trusted
)

const testTimeout = 20 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(runtest.Output(t), &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
}

// certs makes the lab PKI as in the Docker lab: the SBC owns the CA in a
// shared directory, the carrier's certificate is issued from it.
type certs struct {
	sbc, carrier *tls.Config
	caFile       string
}

func makeCerts(t *testing.T) certs {
	t.Helper()
	dir := t.TempDir()
	sbc, err := labtls.EnsureServerCert(dir, []netip.Addr{netip.MustParseAddr(sbcIP)})
	if err != nil {
		t.Fatal(err)
	}
	car, err := labtls.IssueServerCert(dir, filepath.Join(dir, "carrier"), []netip.Addr{netip.MustParseAddr(carrierIP)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return certs{sbc: sbc, carrier: car, caFile: filepath.Join(dir, labtls.CAFile)}
}

// listen binds ip:0 with a TLS listener when cfg is set.
func listen(t *testing.T, ip string, cfg *tls.Config) *sipnet.Endpoint {
	return siptest.Listen(t, ip, cfg, testLogger(t))
}

// sigAddr is where ep is reached over transport.
func sigAddr(ep *sipnet.Endpoint, transport string) string {
	if transport == sipnet.TLS {
		return ep.TLSAddr().String()
	}
	return ep.Addr().String()
}

// trunk is a carrier and the "SBC" phone at the other end of its trunk.
type trunk struct {
	carrier *carrier.Carrier
	sbc     *uaclient.Phone
	cep     *sipnet.Endpoint
}

// newTrunk starts a carrier (+1555 numbers, answers after 200 ms) whose
// peer is an SBC phone; mod adjusts the carrier config.
func newTrunk(t *testing.T, transport string, mod func(*carrier.Config)) trunk {
	t.Helper()
	var cc, sc *tls.Config
	if transport == sipnet.TLS {
		pki := makeCerts(t)
		cc, sc = pki.carrier, pki.sbc
	}
	cep, sep := listen(t, carrierIP, cc), listen(t, sbcIP, sc)
	cfg := carrier.Config{
		Endpoint:        cep,
		Peer:            sigAddr(sep, transport),
		PeerTransport:   transport,
		Numbers:         []string{"+1555"},
		AnswerAfter:     200 * time.Millisecond,
		OptionsInterval: -1, // tests ping by hand
		ToneHz:          900,
		Logger:          testLogger(t).With("node", "carrier"),
	}
	if mod != nil {
		mod(&cfg)
	}
	car, err := carrier.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { car.Close() })
	if err := car.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	sbc, err := uaclient.New(uaclient.Config{
		Name: "sbc", Endpoint: sep, Proxy: sigAddr(cep, transport), Transport: transport,
		ToneHz: 1300, Settings: map[string]string{"auto_answer": "100ms"},
		Logger: testLogger(t).With("node", "sbc"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sbc.Close() })
	if err := sbc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return trunk{carrier: car, sbc: sbc, cep: cep}
}

// carrierURI is a number at the carrier, as the SBC would dial it.
func (tr trunk) carrierURI(number, transport string) string {
	u := "sip:" + number + "@" + sigAddr(tr.cep, transport)
	if transport != sipnet.UDP {
		u += ";transport=" + transport
	}
	return u
}

// eventually polls cond (media counters change without a state event).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	siptest.WaitFor(t, testTimeout, what, cond)
}

// heard waits until the call has received packets carrying tone hz.
// answered returns a check for a dial's result: the call was placed and
// answered (confirmed), or the test fails.
func answered(t *testing.T, ctx context.Context) func(*uaclient.Call, error) *uaclient.Call {
	return func(call *uaclient.Call, err error) *uaclient.Call {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		st, err := call.Wait(ctx, uaclient.StateConfirmed, uaclient.StateTerminated)
		if err != nil || st.State != uaclient.StateConfirmed {
			t.Fatalf("call not answered: %+v %v", st, err)
		}
		return call
	}
}

func heard(t *testing.T, who string, status func() uaclient.CallStatus, hz float64) uaclient.CallStatus {
	t.Helper()
	var st uaclient.CallStatus
	eventually(t, who+" hearing the far tone", func() bool {
		st = status()
		return st.Media != nil && st.Media.Received.Packets > 25 && st.Media.Sent.Packets > 25 &&
			st.Media.Received.ToneHz > hz-30 && st.Media.Received.ToneHz < hz+30
	})
	return st
}
