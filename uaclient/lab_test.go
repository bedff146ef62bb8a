package uaclient

import (
	"context"
	"net/netip"
	"testing"

	"github.com/siplab/siplab/proxy"
	"github.com/siplab/siplab/registrar"
	"github.com/siplab/siplab/sip/sipauth"
)

// TestThroughProxy runs the lab's call path on loopback: the real registrar
// and proxy, two phones registering with digest auth, an INVITE challenged
// with 407, a call routed by location with Record-Route, audio both ways,
// BYE through the proxy.
func TestThroughProxy(t *testing.T) {
	reg, regAddr := startRegistrar(t, func(c *registrar.Config) {
		users, _ := sipauth.NewUsers(sipauth.User{Name: "alice", Password: "a-secret"}, sipauth.User{Name: "bob", Password: "b-secret"})
		c.Users = users
		// The proxy's Path carries where each REGISTER really came from.
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.6/32")}
	})
	pep := listen(t, "127.0.0.6")
	px, err := proxy.New(proxy.Config{
		Domain:      "siplab.test",
		Location:    reg,
		Registrar:   regAddr,
		Auth:        reg.Authenticator(),
		AuthInvites: true,
		Logger:      testLogger(t),
	}, pep)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); px.Close() })
	if err := px.Start(ctx); err != nil {
		t.Fatal(err)
	}
	proxyAddr := pep.Addr().String()
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
