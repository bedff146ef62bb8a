package sipnet

import (
	"strconv"
	"testing"
	"time"
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
	if len(g.admittedSet.cur) > gateMemory || len(g.admittedSet.prev) > gateMemory {
		t.Fatalf("memory not bounded: %d + %d", len(g.admittedSet.cur), len(g.admittedSet.prev))
	}
	if !g.admitted(strconv.Itoa(3*gateMemory - 1)) {
		t.Fatal("the latest branch was forgotten")
	}
}

// The gate refuses new requests once the queue delay has stayed above its
// limit for gateInterval, or at once when it is past three times the
// limit; a request answering a challenge passes until then, and the
// retransmission of an admitted INVITE always.
func TestGateRefuses(t *testing.T) {
	const limit = 100 * time.Millisecond
	invite := []byte("INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-9\r\nTo: <sip:b@x>\r\n\r\n")
	withCreds := []byte("INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-8\r\nTo: <sip:b@x>\r\n" +
		"proxy-authorization: Digest username=\"a\"\r\n\r\n")
	t0 := time.Unix(1000, 0)
	steps := []struct {
		name   string
		at     time.Duration
		waited time.Duration
		data   []byte
		branch string
		want   bool
	}{
		{"below the limit", 0, 50 * time.Millisecond, invite, "", false},
		{"above, just now", 10 * time.Millisecond, 150 * time.Millisecond, invite, "", false},
		{"above for 150 ms", 160 * time.Millisecond, 150 * time.Millisecond, invite, "", false},
		{"above for 200 ms", 210 * time.Millisecond, 150 * time.Millisecond, invite, "", true},
		{"with credentials", 220 * time.Millisecond, 250 * time.Millisecond, withCreds, "", false},
		{"admitted INVITE", 230 * time.Millisecond, 250 * time.Millisecond, invite, "z9hG4bK-1", false},
		{"with credentials, far behind", 240 * time.Millisecond, 350 * time.Millisecond, withCreds, "", true},
		{"drained", 250 * time.Millisecond, 20 * time.Millisecond, invite, "", false},
		{"above again, just now", 260 * time.Millisecond, 150 * time.Millisecond, invite, "", false},
		{"far behind, just now", 270 * time.Millisecond, 400 * time.Millisecond, invite, "", true},
	}
	g := &gate{maxDelay: limit}
	g.admit("z9hG4bK-1")
	for _, s := range steps {
		if got := g.refuse(s.waited, s.data, s.branch, t0.Add(s.at)); got != s.want {
			t.Errorf("%s: refuse = %v, want %v", s.name, got, s.want)
		}
	}
}
