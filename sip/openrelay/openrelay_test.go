package openrelay

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestWhere(t *testing.T) {
	for _, tc := range []struct {
		uri  sip.Uri
		want string
	}{
		{sip.Uri{Host: "10.0.0.9", Port: 5070}, "10.0.0.9:5070"},
		{sip.Uri{Host: "victim.example"}, "victim.example"},
		{sip.Uri{Host: "[2001:db8::1]", Port: 5060}, "[2001:db8::1]:5060"},
		{sip.Uri{Port: 5060}, "(no host):5060"},
		{sip.Uri{}, "(no host)"},
	} {
		if got := Where(tc.uri); got != tc.want {
			t.Errorf("Where(%+v) = %q, want %q", tc.uri, got, tc.want)
		}
	}
	if got, want := RouteDenied("10.0.0.9:5070"), "Relaying Denied: Route to 10.0.0.9:5070 not allowed"; got != want {
		t.Errorf("RouteDenied = %q, want %q", got, want)
	}
}
