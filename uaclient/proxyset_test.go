package uaclient

import (
	"errors"
	"testing"
)

// The live proxy setting moves the phone to another server: the binding
// at the old one is removed, a new one made at the new one, and get and
// status show it. Junk is refused and changes nothing.
func TestProxySettingMovesRegistration(t *testing.T) {
	r1, addr1 := startRegistrar(t, nil)
	r2, addr2 := startRegistrar(t, nil)
	p := startPhone(t, Config{Name: "alice", Password: "secret", Domain: "siplab.test", Proxy: addr1,
		Endpoint: listen(t, "127.0.0.2")})
	ctx := testCtx(t)
	if err := p.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(bindingsOf(r1, "sip:alice@siplab.test")); n != 1 {
		t.Fatalf("%d bindings at the first server, want 1", n)
	}

	if err := p.Set("proxy", addr2); err != nil {
		t.Fatal(err)
	}
	eventually(t, "binding moved to the second server", func() bool {
		return len(bindingsOf(r2, "sip:alice@siplab.test")) == 1 && len(bindingsOf(r1, "sip:alice@siplab.test")) == 0
	})
	if v, _ := p.Get("proxy"); v != addr2 {
		t.Errorf("get proxy = %q, want %q", v, addr2)
	}
	if st := p.Status(); st.Proxy != addr2 || st.Registration.Registrar != addr2 {
		t.Errorf("status proxy %q registrar %q, want %q", st.Proxy, st.Registration.Registrar, addr2)
	}
	if _, err := p.WaitRegistration(ctx, RegRegistered); err != nil {
		t.Fatal(err)
	}

	if err := p.Set("proxy", "not an address:x"); !errors.Is(err, ErrBadValue) {
		t.Errorf("junk proxy: %v, want ErrBadValue", err)
	}
	if v, _ := p.Get("proxy"); v != addr2 {
		t.Errorf("a refused value changed the setting to %q", v)
	}
}
