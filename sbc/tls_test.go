package sbc

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/lab/labtls"
	"github.com/siplab/siplab/sip/sipnet"
	"github.com/siplab/siplab/uaclient"
)

// A phone on TLS (5061-style listener, lab CA) registers through the SBC
// and calls a phone on UDP: the SBC keeps talking to it over its TLS
// connection (latched by connection, not by the Contact), and the audio
// flows both ways.
func TestTLSPhoneCallsUDPPhone(t *testing.T) {
	dir := t.TempDir()
	srv, err := labtls.EnsureServerCert(dir, []netip.Addr{netip.MustParseAddr(sbcAccess), netip.MustParseAddr(sbcCore)})
	if err != nil {
		t.Fatal(err)
	}
	phoneIP := accessNet + "53"
	pcfg, err := labtls.IssueServerCert(dir, filepath.Join(dir, "carol"), []netip.Addr{netip.MustParseAddr(phoneIP)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := newLab(t, labOpts{tls: srv})
	if !l.sbc.AccessTLSAddr().IsValid() {
		t.Fatal("SBC has no TLS listener")
	}
	ep := listenTLS(t, phoneIP, pcfg)
	settings := natedSettings()
	delete(settings, "via_addr") // over TLS the Via names the TLS listener
	ph, err := uaclient.New(uaclient.Config{Name: "carol", Password: "pw-carol", Domain: domain,
		Proxy: l.sbc.AccessTLSAddr().String(), Transport: sipnet.TLS, Endpoint: ep, Settings: settings, Logger: testLogger()})
	carol := siptest.Run(t, l.ctx, ph, err)
	l.register(carol)
	reg, _ := l.regOf("carol")
	if reg.Transport != sipnet.TLS {
		t.Fatalf("registration %+v, want transport tls", reg)
	}
	alice := l.registered("alice", 50, natedSettings())

	c, in := l.callUp(alice, carol)
	if out := c.Status(); !near(out.Media.Received.ToneHz, carol.ToneHz()) || !near(in.Media.Received.ToneHz, alice.ToneHz()) {
		t.Errorf("tones over the TLS call: alice hears %.0f, carol hears %.0f", out.Media.Received.ToneHz, in.Media.Received.ToneHz)
	}
	cs, _ := l.sbc.Call(in.CallID)
	if !strings.Contains(strings.ToLower(cs.Legs[1].SignalTo), strings.Split(phoneIP, ":")[0]) {
		t.Errorf("callee leg signalled to %q", cs.Legs[1].SignalTo)
	}
	ctx := siptest.Ctx(t, 10*time.Second)
	if err := carol.Hangup(ctx, in.ID); err != nil { // BYE from the TLS side
		t.Fatal(err)
	}
	if st, err := c.Wait(ctx, uaclient.StateTerminated); err != nil {
		t.Errorf("alice's call after carol's BYE over TLS: %+v, %v", st, err)
	}
}

// A phone on TCP is reached over the connection its REGISTER came on.
func TestTCPPhoneReceivesCall(t *testing.T) {
	l := newLab(t, labOpts{})
	settings := natedSettings()
	delete(settings, "via_addr")
	ph, err := uaclient.New(uaclient.Config{Name: "bob", Password: "pw-bob", Domain: domain,
		Proxy: l.sbc.AccessAddr().String(), Transport: sipnet.TCP, Listen: accessNet + "51:0", Settings: settings, Logger: testLogger()})
	bob := siptest.Run(t, l.ctx, ph, err)
	l.register(bob)
	if reg, _ := l.regOf("bob"); reg.Transport != sipnet.TCP {
		t.Fatalf("registration %+v, want tcp", reg)
	}
	alice := l.registered("alice", 50, natedSettings())
	c, in := l.callUp(alice, bob)
	if !near(c.Status().Media.Received.ToneHz, bob.ToneHz()) || !near(in.Media.Received.ToneHz, alice.ToneHz()) {
		t.Errorf("no two-way audio with the TCP phone")
	}
	ctx := siptest.Ctx(t, 10*time.Second)
	if err := c.Hangup(ctx); err != nil { // BYE to the TCP phone
		t.Fatal(err)
	}
	siptest.WaitFor(t, 5*time.Second, "bob's call ended", func() bool {
		cs, _ := incoming(bob)
		return cs.State == uaclient.StateTerminated
	})
}
