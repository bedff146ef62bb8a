package uaclient

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/siplab/siplab/proxy"
	"github.com/siplab/siplab/registrar"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipauth"
)

// resetLab is the lab's call path on loopback (registrar, proxy) and two
// phones: alice (the one under test) and bob (answers after 100 ms).
func resetLab(t *testing.T) (reg *registrar.Registrar, alice, bob *Phone) {
	t.Helper()
	reg, regAddr := startRegistrar(t, func(c *registrar.Config) {
		users, _ := sipauth.NewUsers(sipauth.User{Name: "alice", Password: "a-secret"}, sipauth.User{Name: "bob", Password: "b-secret"})
		c.Users = users
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.6/32")}
	})
	pep := listen(t, "127.0.0.6")
	px, err := proxy.New(proxy.Config{Domain: "siplab.test", Location: reg, Registrar: regAddr, Logger: testLogger(t)}, pep)
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); px.Close() })
	if err := px.Start(pctx); err != nil {
		t.Fatal(err)
	}
	regAddr = pep.Addr().String()
	alice = startPhone(t, Config{Name: "alice", Password: "a-secret", Domain: "siplab.test", Proxy: regAddr,
		Listen: "127.0.0.2:0", ToneHz: 650, AutoRegister: true,
		Settings: map[string]string{"keepalive": "crlf", "keepalive_interval": "20s", "auto_answer": "1s"}})
	bob = startPhone(t, Config{Name: "bob", Password: "b-secret", Domain: "siplab.test", Proxy: regAddr,
		Listen: "127.0.0.3:0", ToneHz: 1250, AutoRegister: true, Settings: map[string]string{"auto_answer": "100ms"}})
	ctx := testCtx(t)
	for _, p := range []*Phone{alice, bob} {
		if _, err := p.WaitRegistration(ctx, RegRegistered); err != nil {
			t.Fatalf("%s: %v", p.Name(), err)
		}
	}
	return reg, alice, bob
}

func bindings(t *testing.T, reg *registrar.Registrar, aor string) []location.Binding {
	t.Helper()
	bs, err := reg.Lookup(context.Background(), aor)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// Reset undoes a mess: a call up, settings changed (a wrong password
// among them), and a second binding from an earlier contact_addr. After
// it the phone is as it started, with exactly one binding.
func TestResetUndoesTheMess(t *testing.T) {
	reg, alice, _ := resetLab(t)
	ctx := testCtx(t)
	initial := alice.Settings()

	// A second binding: the Contact an ALG or an old setting wrote.
	must(t, alice.Set("contact_addr", "127.0.0.2:5099"))
	must(t, alice.Register(ctx))
	if n := len(bindings(t, reg, "sip:alice@siplab.test")); n != 2 {
		t.Fatalf("setup: %d bindings, want 2", n)
	}
	c, err := alice.Call(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, StateConfirmed); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"password": "wrong", "codecs": "pcma", "auto_answer": "0",
		"keepalive_interval": "5s", "rport": "off", "sdp_addr": "127.0.0.9", "hold_mode": "inactive"} {
		must(t, alice.Set(name, v))
	}

	res, err := alice.Reset(ctx)
	if err != nil {
		t.Fatalf("reset: %v (%+v)", err, res)
	}
	if res.CallsEnded != 1 || res.BindingsRemoved != 2 || len(res.SettingsRestored) != 8 {
		t.Errorf("reset result %s; want 1 call, 2 bindings, 8 settings", res)
	}
	if got := alice.Settings(); !equalSettings(got, initial) {
		t.Errorf("settings after reset:\n%v\nwant\n%v", got, initial)
	}
	st := alice.Status()
	if len(st.Calls) != 0 || st.Registration.State != RegRegistered {
		t.Errorf("after reset: %d calls, registration %s", len(st.Calls), st.Registration.State)
	}
	bs := bindings(t, reg, "sip:alice@siplab.test")
	if len(bs) != 1 || bs[0].ContactURI != st.Registration.Contact {
		t.Fatalf("bindings after reset: %+v, want only %s", bs, st.Registration.Contact)
	}
	// The password came back: a fresh REGISTER is accepted.
	must(t, alice.Register(ctx))
}

// Unregister removes every binding of the AOR, not only the last Contact
// written: the leftover of an ALG step would fork calls to a ghost.
func TestUnregisterRemovesEveryBinding(t *testing.T) {
	reg, alice, _ := resetLab(t)
	ctx := testCtx(t)
	must(t, alice.Set("contact_addr", "127.0.0.2:5099"))
	must(t, alice.Register(ctx))
	if n := len(bindings(t, reg, "sip:alice@siplab.test")); n != 2 {
		t.Fatalf("setup: %d bindings, want 2", n)
	}
	must(t, alice.Unregister(ctx))
	if bs := bindings(t, reg, "sip:alice@siplab.test"); len(bs) != 0 {
		t.Fatalf("after unregister: %+v", bs)
	}
}

// "default" puts one setting back to the startup value, whatever the
// setting's syntax: a password, a codec list, a duration, a mode.
func TestSetDefault(t *testing.T) {
	_, alice, _ := resetLab(t)
	ctx := testCtx(t)
	initial := alice.Settings()
	tests := []struct{ name, value string }{
		{"password", "wrong"},
		{"codecs", "pcma"},
		{"auto_answer", "0"},
		{"keepalive_interval", "3s"},
		{"keepalive", "off"},
		{"sdp_addr", "local"},
		{"proxy", "127.0.0.9:5060"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			must(t, alice.Set(tc.name, tc.value))
			must(t, alice.Set(tc.name, "default"))
			if got := alice.Settings(); !equalSettings(got, initial) {
				t.Errorf("after %s default:\n%v\nwant\n%v", tc.name, got, initial)
			}
		})
	}
	// The password really is the startup one again.
	must(t, alice.Set("password", "wrong"))
	if err := alice.Register(ctx); !errors.Is(err, ErrWrongCredentials) {
		t.Fatalf("wrong password registered: %v", err)
	}
	must(t, alice.Set("password", "default"))
	must(t, alice.Register(ctx))
	if err := alice.Set("no_such", "default"); !errors.Is(err, ErrUnknownSetting) {
		t.Fatalf("unknown setting: %v", err)
	}
}

func equalSettings(a, b []SettingInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
