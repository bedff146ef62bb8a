package uaclient

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipnet"
)

// testTimeout bounds every wait: a hang fails the test, a slow machine
// does not.
const testTimeout = 20 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func listen(t *testing.T, ip string) *sipnet.Endpoint {
	t.Helper()
	ep, err := sipnet.Listen(sipnet.Config{Listen: ip + ":0", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// startPhone makes and starts a phone on ep; it is closed at cleanup.
func startPhone(t *testing.T, cfg Config) *Phone {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t).With("test", t.Name())
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

// pair makes alice (127.0.0.2) and bob (127.0.0.3) whose "proxy" is each
// other: a direct call with no server in between.
func pair(t *testing.T, aliceMod, bobMod func(*Config)) (alice, bob *Phone) {
	t.Helper()
	return pairAt(t, "127.0.0.2", "127.0.0.3", aliceMod, bobMod)
}

// pairAt is pair with alice on aliceIP and bob on bobIP.
func pairAt(t *testing.T, aliceIP, bobIP string, aliceMod, bobMod func(*Config)) (alice, bob *Phone) {
	t.Helper()
	aep, bep := listen(t, aliceIP), listen(t, bobIP)
	acfg := Config{Name: "alice", Endpoint: aep, Proxy: bep.Addr().String(), ToneHz: 600}
	bcfg := Config{Name: "bob", Endpoint: bep, Proxy: aep.Addr().String(), ToneHz: 1000}
	if aliceMod != nil {
		aliceMod(&acfg)
	}
	if bobMod != nil {
		bobMod(&bcfg)
	}
	return startPhone(t, acfg), startPhone(t, bcfg)
}

// eventually polls cond until it holds or the test timeout passes. It is
// for values that change without a state event (media counters).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	siptest.WaitFor(t, testTimeout, what, cond)
}

func waitCall(t *testing.T, p *Phone, ref string, states ...CallState) CallStatus {
	t.Helper()
	st, err := p.WaitCall(testCtx(t), ref, states...)
	if err != nil {
		t.Fatalf("%s: %v (status %+v)", p.Name(), err, st)
	}
	return st
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

func mustCodecs(t *testing.T, s string) []sdpneg.Codec {
	t.Helper()
	cs, err := sdpneg.ParseCodecList(s)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func deadline() time.Time { return time.Now().Add(testTimeout) }
