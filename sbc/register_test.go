package sbc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/uaclient"
)

// A phone with every NAT fix off registers through the SBC: the registrar
// binds the SBC's core address with a token, the SBC remembers where the
// REGISTER really came from (not the private Via/Contact), grants a short
// expiry because the phone is NATed, shows the phone its own Contact, and
// un-REGISTER removes both.
func TestRegisterNATedPhoneThroughSBC(t *testing.T) {
	l := newLab(t, labOpts{})
	alice := l.addPhone("alice", 50, natedSettings(), "")
	st := l.register(alice)

	if st.ExpiresIn > 60 || st.ExpiresIn < 50 {
		t.Errorf("phone was granted %d s, want the SBC's nat_expires (60 s)", st.ExpiresIn)
	}
	reg, ok := l.regOf("alice")
	if !ok {
		t.Fatalf("no registration cached: %+v", l.sbc.Status().Registrations)
	}
	if reg.Latched != alice.Addr().String() || !reg.NATed || reg.Transport != "udp" {
		t.Errorf("cached %+v, want latched %s udp NATed", reg, alice.Addr())
	}
	if !strings.Contains(reg.Contact, privateIP+":5999") {
		t.Errorf("cached contact %q, want the phone's own %s:5999", reg.Contact, privateIP)
	}
	for _, b := range st.Bindings {
		if strings.Contains(b.Contact, coreNet) {
			t.Errorf("phone was shown a core contact %q", b.Contact)
		}
	}
	bindings, err := l.reg.Lookup(context.Background(), "sip:alice@"+domain)
	if err != nil || len(bindings) != 1 {
		t.Fatalf("registrar bindings %+v, %v; want one", bindings, err)
	}
	if c := bindings[0].ContactURI; !strings.Contains(c, l.sbc.CoreAddr().String()) || !strings.Contains(c, "sbc="+reg.Token) {
		t.Errorf("registrar contact %q, want the SBC core address with token %s", c, reg.Token)
	}

	// A refresh keeps the token (the registrar refreshes, not duplicates).
	l.register(alice)
	if again, _ := l.regOf("alice"); again.Token != reg.Token {
		t.Errorf("refresh changed the token %s -> %s", reg.Token, again.Token)
	}
	if bindings, _ := l.reg.Lookup(context.Background(), "sip:alice@"+domain); len(bindings) != 1 {
		t.Errorf("after refresh the registrar has %d bindings, want 1", len(bindings))
	}

	// The live setting changes the next grant.
	if _, err := l.sbc.Set(SettingNATExpires, "30"); err != nil {
		t.Fatal(err)
	}
	if st := l.register(alice); st.ExpiresIn > 30 {
		t.Errorf("after nat_expires 30 the phone got %d s", st.ExpiresIn)
	}

	ctx := siptest.Ctx(t, 10*time.Second)
	if err := alice.Unregister(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.regOf("alice"); ok {
		t.Error("un-REGISTER left the SBC's cache entry")
	}
	if bindings, _ := l.reg.Lookup(context.Background(), "sip:alice@"+domain); len(bindings) != 0 {
		t.Errorf("un-REGISTER left registrar bindings %+v", bindings)
	}
}

// A phone that tells the truth (no NAT) keeps the registrar's expiry.
func TestDirectPhoneKeepsLongExpiry(t *testing.T) {
	l := newLab(t, labOpts{})
	carol := l.addPhone("carol", 52, map[string]string{"keepalive": "off"}, "")
	st := l.register(carol)
	if st.ExpiresIn <= 60 {
		t.Errorf("un-NATed phone got %d s, want the registrar's longer grant", st.ExpiresIn)
	}
	if reg, _ := l.regOf("carol"); reg.NATed {
		t.Errorf("phone writing its real address taken as NATed: %+v", reg)
	}
}

// A wrong password: the registrar's 401 passes through, again and again
// (never 403), and the phone ends up failed; the SBC counts the
// challenges for the guard.
func TestWrongPasswordGets401Through(t *testing.T) {
	l := newLab(t, labOpts{})
	bob := l.addPhone("bob", 51, natedSettings(), "wrong")
	ctx := siptest.Ctx(t, 10*time.Second)
	_ = bob.Register(ctx)
	st, _ := bob.WaitRegistration(ctx, uaclient.RegFailed)
	if st.State != uaclient.RegFailed || st.Code != 401 {
		t.Fatalf("registration %+v, want failed with 401", st)
	}
	if n := l.sbc.Status().Counters.AuthFailures; n < 2 {
		t.Errorf("SBC saw %d 401s, want the challenge and the refused retry", n)
	}
	if _, ok := l.regOf("bob"); ok {
		t.Error("a refused REGISTER was cached")
	}
	// The right password works at once: nothing is blocked (limit off).
	if err := bob.Set("password", "pw-bob"); err != nil {
		t.Fatal(err)
	}
	l.register(bob)
}

// The SBC's own OPTIONS pings reach a NATed phone at its latched address,
// with the phone's keep-alives off.
func TestKeepalivePingsReachPhone(t *testing.T) {
	s := DefaultSettings()
	s.KeepaliveInterval = time.Second
	l := newLab(t, labOpts{settings: &s})
	alice := l.registered("alice", 50, natedSettings())
	siptest.WaitFor(t, 5*time.Second, "two answered pings", func() bool {
		r, _ := l.regOf("alice")
		return r.PingsOK >= 2
	})
	r, _ := l.regOf("alice")
	if !strings.HasPrefix(r.PingResult, "200") {
		t.Errorf("ping result %q", r.PingResult)
	}
	n := 0
	for _, m := range l.readBy(alice.Addr().Addr().String()) {
		if strings.HasPrefix(string(m.msg), "OPTIONS ") && m.raddr == l.sbc.AccessAddr().String() {
			n++
		}
	}
	if n < 2 {
		t.Errorf("phone read %d OPTIONS from the SBC's access socket, want >= 2", n)
	}
	// keepalive_interval 0 stops them.
	if _, err := l.sbc.Set(SettingKeepaliveInterval, "0"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	before, _ := l.regOf("alice")
	time.Sleep(2500 * time.Millisecond)
	if after, _ := l.regOf("alice"); after.PingsSent != before.PingsSent {
		t.Errorf("pings went on with keepalive_interval 0: %d -> %d", before.PingsSent, after.PingsSent)
	}
}

// An expired registration is unusable at once (no calls, no pings, not in
// status) but keeps its token for staleKeep, so the phone's next REGISTER
// refreshes the registrar's binding instead of adding a second one.
func TestExpiredRegistrationKeepsToken(t *testing.T) {
	l := newLab(t, labOpts{})
	alice := l.registered("alice", 50, natedSettings())
	reg, _ := l.regOf("alice")
	l.sbc.mu.Lock()
	l.sbc.regs[reg.Token].expires = time.Now().Add(-time.Second)
	l.sbc.mu.Unlock()
	if l.sbc.lookupReg(reg.Token) != nil {
		t.Error("expired registration still routable")
	}
	if _, ok := l.regOf("alice"); ok {
		t.Error("expired registration still in status")
	}
	l.sbc.expireRegs(time.Now())
	l.register(alice)
	again, ok := l.regOf("alice")
	if !ok || again.Token != reg.Token {
		t.Errorf("re-registration after expiry got token %q, want %q", again.Token, reg.Token)
	}
	if bindings, _ := l.reg.Lookup(context.Background(), "sip:alice@"+domain); len(bindings) != 1 {
		t.Errorf("registrar has %d bindings after re-registration, want 1", len(bindings))
	}
	l.sbc.expireRegs(time.Now().Add(2 * staleKeep))
	l.sbc.mu.Lock()
	n := len(l.sbc.regs) + len(l.sbc.regKeys)
	l.sbc.mu.Unlock()
	if n != 0 {
		t.Errorf("%d entries left after staleKeep", n)
	}
}
