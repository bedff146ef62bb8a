package uaclient

import (
	"context"
	"testing"

	"github.com/siplab/siplab/internal/siptest/platform"
	"github.com/siplab/siplab/proxy"
)

// TestThroughProxy runs the lab's call path on loopback: the real registrar
// and proxy, two phones registering with digest auth, an INVITE challenged
// with 407, a call routed by location with Record-Route, audio both ways,
// BYE through the proxy.
func TestThroughProxy(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	core := platform.StartCore(t, ctx, "siplab.test", "alice a-secret\nbob b-secret\n", "127.0.0.5", "127.0.0.6",
		proxy.Config{}, testLogger(t))
	proxyAddr := core.Proxy.String()
	alice := startPhone(t, Config{Name: "alice", Password: "a-secret", Domain: "siplab.test", Proxy: proxyAddr, Listen: "127.0.0.2:0", ToneHz: 650})
	bob := startPhone(t, Config{Name: "bob", Password: "b-secret", Domain: "siplab.test", Proxy: proxyAddr, Listen: "127.0.0.3:0", ToneHz: 1250,
		Settings: map[string]string{"auto_answer": "100ms"}})
	tctx := testCtx(t)
	for _, p := range []*Phone{alice, bob} {
		if err := p.Register(tctx); err != nil {
			t.Fatalf("%s: register: %v", p.Name(), err)
		}
	}
	c, err := alice.Call(tctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Wait(tctx, StateConfirmed)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.RouteSet) == 0 {
		t.Errorf("no route set: the proxy should Record-Route (%+v)", st)
	}
	eventually(t, "two-way audio", func() bool {
		a := c.Status()
		b, _ := bob.CallStatus("")
		return a.Media != nil && b.Media != nil && a.ToneHz > 1200 && a.ToneHz < 1300 && b.ToneHz > 600 && b.ToneHz < 700
	})
	if err := c.Hangup(tctx); err != nil {
		t.Fatal(err)
	}
	if b := waitCall(t, bob, "", StateTerminated); b.EndReason != "BYE received" {
		t.Fatalf("bob: %+v", b)
	}
}
