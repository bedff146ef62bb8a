package sipnet

import (
	"strconv"
	"testing"
)

// A retransmitted INVITE is recognised by its top Via branch and not shed;
// the memory of branches stays bounded.
func TestGateRemembersAdmittedInvites(t *testing.T) {
	invite := func(branch string) []byte {
		return []byte("INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=" + branch + ";rport\r\nTo: <sip:b@x>\r\n\r\n")
	}
	tests := []struct {
		data []byte
		want string
	}{
		{invite("z9hG4bK-1"), "z9hG4bK-1"},
		{[]byte("BYE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-2\r\n\r\n"), ""},
		{[]byte("INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\r\n\r\n"), ""},
		{[]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-3\r\n\r\n"), ""},
	}
	for _, tc := range tests {
		if got := inviteBranch(tc.data); got != tc.want {
			t.Errorf("inviteBranch(%q) = %q, want %q", tc.data, got, tc.want)
		}
	}
	g := &gate{}
	g.admit("z9hG4bK-1")
	if !g.admitted("z9hG4bK-1") || g.admitted("z9hG4bK-other") || g.admitted("") {
		t.Fatal("admitted branches not told apart")
	}
	for i := 0; i < 3*gateMemory; i++ {
		g.admit(strconv.Itoa(i))
	}
	if len(g.cur) > gateMemory || len(g.prev) > gateMemory {
		t.Fatalf("memory not bounded: %d + %d", len(g.cur), len(g.prev))
	}
	if !g.admitted(strconv.Itoa(3*gateMemory - 1)) {
		t.Fatal("the latest branch was forgotten")
	}
}
