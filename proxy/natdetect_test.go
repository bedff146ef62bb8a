package proxy

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/location"
)

func viaOf(t *testing.T, sentBy string) *sip.ViaHeader {
	t.Helper()
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: sentBy, Params: sip.NewParams()}
	if h, p, ok := strings.Cut(sentBy, ":"); ok {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatal(err)
		}
		v.Host, v.Port = h, n
	}
	return v
}

// The detector, test by test (Kamailio nat_uac_test 2, 4, 16 on the Via;
// 1 on the Contact).
func TestNATDetector(t *testing.T) {
	src := netip.MustParseAddrPort("203.0.113.2:5060")
	tests := []struct {
		name, via, contact string
		src                netip.AddrPort
		want               []string
	}{
		{"public, same socket", "203.0.113.2:5060", "203.0.113.2:5060", src, nil},
		{"default port", "203.0.113.2", "203.0.113.2", src, nil},
		{"Contact on another public socket (RFC 3261 §10.2)", "203.0.113.2:5060", "203.0.113.9:5070", src, nil},
		{"lab phone behind NAT", "192.168.1.50:5060", "192.168.1.50:5060", src, []string{NATViaReceived, NATViaPrivate, NATContactPrivate}},
		{"NAT that also changed the port", "192.168.1.50:5060", "192.168.1.50:5060", netip.MustParseAddrPort("203.0.113.2:40000"),
			[]string{NATViaReceived, NATViaPrivate, NATViaPort, NATContactPrivate}},
		{"carrier-grade NAT (RFC 6598)", "100.64.0.7:5060", "100.127.255.1:5060", src, []string{NATViaReceived, NATViaPrivate, NATContactPrivate}},
		{"100.128/10 is public", "100.128.0.7:5060", "100.128.0.7:5060", src, []string{NATViaReceived}},
		{"172.16/12 edge", "172.31.255.1:5060", "172.32.0.1:5060", src, []string{NATViaReceived, NATViaPrivate}},
		{"only the Contact is private (wrong contact_addr)", "203.0.113.2:5060", "10.1.2.3:5060", src, []string{NATContactPrivate}},
		{"port only (NAT keeping the IP)", "203.0.113.2:5060", "203.0.113.2:5060", netip.MustParseAddrPort("203.0.113.2:61000"), []string{NATViaPort}},
		{"host name in Via", "phone.example.net:5060", "phone.example.net:5060", src, []string{NATViaReceived}},
		{"a LAN phone on private space, not NATed", "10.0.0.50:5060", "10.0.0.50:5060", netip.MustParseAddrPort("10.0.0.50:5060"), []string{NATViaPrivate, NATContactPrivate}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			via := viaNAT(viaOf(t, tc.via), tc.src)
			var contact sip.Uri
			if err := sip.ParseUri("sip:bob@"+tc.contact, &contact); err != nil {
				t.Fatal(err)
			}
			got := append(via, contactNAT(contact)...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("tests %v, want %v", got, tc.want)
			}
			// The Via verdict survives the trip through the registrar in
			// our Path entry, and the decision follows it.
			var path sip.Uri
			if err := sip.ParseUri("sip:127.0.0.1:5060;lr;received="+tc.src.String()+";nat="+pathNAT(via), &path); err != nil {
				t.Fatal(err)
			}
			b := location.Binding{ContactURI: contact.String(), Source: tc.src, Transport: "udp"}
			for _, mode := range []string{FixupAuto, FixupOn, FixupOff} {
				fix, tests, _ := fixupDecision(mode, b, contact, []sip.Uri{path})
				want := map[string]bool{FixupAuto: len(tc.want) > 0, FixupOn: true, FixupOff: false}[mode]
				if fix != want {
					t.Errorf("%s: fix-up %v, want %v", mode, fix, want)
				}
				if mode == FixupAuto && !slices.Equal(tests, tc.want) {
					t.Errorf("auto: tests %v, want %v", tests, tc.want)
				}
			}
		})
	}
}

// A binding that did not come through this proxy carries no Via
// verdict: auto decides on the Contact alone, and says so.
func TestNATDecisionWithoutOurPath(t *testing.T) {
	src := netip.MustParseAddrPort("203.0.113.2:5060")
	for _, tc := range []struct {
		contact string
		fix     bool
	}{{"sip:bob@192.168.2.50:5060", true}, {"sip:bob@203.0.113.9:5060", false}} {
		var u sip.Uri
		if err := sip.ParseUri(tc.contact, &u); err != nil {
			t.Fatal(err)
		}
		fix, _, note := fixupDecision(FixupAuto, location.Binding{ContactURI: tc.contact, Source: src, Transport: "udp"}, u, nil)
		if fix != tc.fix || !strings.Contains(note, "Via not seen") {
			t.Errorf("%s: fix %v (%s), want %v and a note that the Via was not seen", tc.contact, fix, note, tc.fix)
		}
	}
}

// The case: a UA registers from one socket ("seen") a public
// Contact naming another ("written"), as RFC 3261 §10.2 allows and sipp
// does. With auto nothing shows NAT, so the call goes to the Contact;
// with on (the old default) it goes to the registering socket and never
// reaches the UA. A NATed phone (private Via and Contact) is still fixed
// up by auto. Real registrar, real sockets.
func TestContactFixupAuto(t *testing.T) {
	reg, regAddr := startRegistrar(t)
	p, px := startProxy(t, Config{Location: reg, Registrar: regAddr.String()})
	if got := p.Settings().ContactFixup; got != FixupAuto {
		t.Fatalf("default contact_fixup %q, want auto", got)
	}

	seen, written := newPhone(t, "127.0.0.3"), newPhone(t, "127.0.0.4")
	register(t, seen, px, "bob", "bobpw", "sip:bob@"+written.addr.String())
	// alice is NATed: she writes 192.168.1.50 in Via and Contact but sends
	// from 127.0.0.5.
	natted := newPhone(t, "127.0.0.5")
	registerVia(t, natted, px, "alice", "alicepw", "sip:alice@192.168.1.50:5060", "192.168.1.50:5060")

	call := func(t *testing.T, callee string, got, silent *phone) {
		t.Helper()
		caller := newPhone(t, "127.0.0.2")
		caller.send(px, caller.newMsg("INVITE", "sip:"+callee+"@"+testDomain, "carol@pstn.test", callee+"@"+testDomain))
		req, from := got.on(t).request(sip.INVITE)
		got.on(t).answer(req, from, 486, "Busy Here", "b")
		mustCode(t, caller.final(sip.INVITE), 486)
		silent.on(t).silent(100*time.Millisecond, isRequest(sip.INVITE), "the INVITE")
	}
	for _, tc := range []struct {
		mode          string
		bobAt, bobNot *phone
	}{
		{FixupAuto, written, seen},
		{FixupOn, seen, written},
		{FixupOff, written, seen},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			if _, err := p.Set(SettingContactFixup, tc.mode); err != nil {
				t.Fatal(err)
			}
			call(t, "bob", tc.bobAt, tc.bobNot)
			if tc.mode != FixupOff {
				// alice is reached where her REGISTER came from.
				call(t, "alice", natted, newPhone(t, "127.0.0.6"))
			}
		})
	}

	// Status says which test fired for each binding and where the last
	// request went.
	if _, err := p.Set(SettingContactFixup, FixupAuto); err != nil {
		t.Fatal(err)
	}
	call(t, "alice", natted, newPhone(t, "127.0.0.6"))
	call(t, "bob", written, seen)
	checks := map[string]NATCheck{}
	for _, c := range p.Status().NAT {
		checks[c.AOR] = c
	}
	a, b := checks["sip:alice@"+testDomain], checks["sip:bob@"+testDomain]
	if !slices.Equal(a.Tests, []string{NATViaReceived, NATViaPrivate, NATViaPort, NATContactPrivate}) || a.RoutedTo != "source" || a.Mode != FixupAuto {
		t.Errorf("alice's check %+v", a)
	}
	if len(b.Tests) != 0 || b.RoutedTo != "contact" {
		t.Errorf("bob's check %+v", b)
	}
	if !strings.Contains(p.Status().Summary, "contact_fixup=auto") {
		t.Errorf("summary %q", p.Status().Summary)
	}
}
