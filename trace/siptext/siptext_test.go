package siptext

import (
	"net/netip"
	"testing"
)

func TestTopVia(t *testing.T) {
	sentBy, params := TopVia("SIP/2.0/UDP 192.168.1.50:5060;Branch=z9hG4bK1;rport=4000;received=203.0.113.2, SIP/2.0/UDP 10.0.0.1")
	if sentBy != "192.168.1.50:5060" || params["branch"] != "z9hG4bK1" || params["rport"] != "4000" || params["received"] != "203.0.113.2" {
		t.Fatalf("TopVia = %q %v", sentBy, params)
	}
	if sentBy, _ := TopVia("garbage"); sentBy != "" {
		t.Fatalf("TopVia(garbage) sent-by %q", sentBy)
	}
}

func TestURIHost(t *testing.T) {
	for v, want := range map[string]string{
		`"Alice" <sip:alice@192.168.1.50:5062;transport=udp>;expires=60`: "192.168.1.50:5062",
		"INVITE sip:bob@203.0.113.10 SIP/2.0":                            "203.0.113.10",
		"<sip:203.0.113.10;lr>":                                          "203.0.113.10",
		"<sip:a@1.2.3.4>, <sip:b@5.6.7.8>":                               "1.2.3.4",
		"<tel:+4930123>":                                                 "",
	} {
		if got := URIHost(v); got != want {
			t.Errorf("URIHost(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestHostAddrPrivate(t *testing.T) {
	for hp, want := range map[string]string{
		"192.168.1.50:5060": "192.168.1.50",
		" [::1]:5060":       "::1",
		"[2001:db8::1]":     "2001:db8::1",
		"10.0.0.1":          "10.0.0.1",
		"proxy.siplab.test": "",
	} {
		a, ok := HostAddr(hp)
		if got := map[bool]string{true: a.String(), false: ""}[ok]; got != want {
			t.Errorf("HostAddr(%q) = %q, want %q", hp, got, want)
		}
	}
	for a, want := range map[string]bool{"192.168.1.50": true, "127.0.0.1": true, "fe80::1": true, "fd00::1": true, "203.0.113.10": false} {
		if got := Private(netip.MustParseAddr(a)); got != want {
			t.Errorf("Private(%s) = %v", a, got)
		}
	}
}

func TestHeader(t *testing.T) {
	msg := []byte("INVITE sip:bob@siplab.test SIP/2.0\r\nv: SIP/2.0/UDP 192.168.1.50:5060\r\ni: abc\r\nCSeq : 1 INVITE\r\n\r\nTo: body")
	for name, want := range map[string]string{
		"Call-ID":    "abc", // compact form in the message
		"i":          "abc",
		"VIA":        "SIP/2.0/UDP 192.168.1.50:5060",
		"cseq":       "1 INVITE",
		"To":         "", // only in the body
		"INVITE sip": "", // the start line is no header
	} {
		if got := Header(msg, name); got != want {
			t.Errorf("Header(%q) = %q, want %q", name, got, want)
		}
	}
	if got := Header([]byte("garbage"), "Call-ID"); got != "" {
		t.Errorf("Header(garbage) = %q", got)
	}
}
