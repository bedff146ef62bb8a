package sbc

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestRewriteSDP(t *testing.T) {
	relay := netip.MustParseAddrPort("203.0.113.5:20000")
	for _, tc := range []struct {
		name     string
		in       string
		wantFrom string // what the sender announced
		want     []string
		notWant  []string
		err      bool
	}{
		{name: "session c", in: "v=0\no=alice 1 2 IN IP4 192.168.1.50\ns=-\nc=IN IP4 192.168.1.50\nt=0 0\nm=audio 16000 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\n",
			wantFrom: "192.168.1.50:16000",
			want:     []string{"o=- 1 2 IN IP4 203.0.113.5\r\n", "c=IN IP4 203.0.113.5\r\n", "m=audio 20000 RTP/AVP 0 101\r\n", "a=rtpmap:101 telephone-event/8000\r\n"},
			notWant:  []string{"192.168.", "alice"}},
		{name: "media c wins, video refused, rtcp and ice dropped",
			in:       "v=0\r\no=pbx 7 7 IN IP4 10.0.0.30\r\ns=-\r\nc=IN IP4 10.0.0.30\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\nc=IN IP4 10.0.0.31\r\na=rtcp:40001 IN IP4 10.0.0.30\r\na=candidate:1 1 UDP 1 10.0.0.30 40000 typ host\r\nm=video 5000 RTP/AVP 96\r\nc=IN IP4 10.0.0.32\r\n",
			wantFrom: "10.0.0.31:40000",
			want:     []string{"m=audio 20000 RTP/AVP 8\r\n", "m=video 0 RTP/AVP 96\r\n"},
			notWant:  []string{"10.0.0.", "a=rtcp", "a=candidate", "pbx"}},
		{name: "refused stream stays refused", in: "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 0 RTP/AVP 0\n",
			wantFrom: "1.2.3.4:0", want: []string{"m=audio 0 RTP/AVP 0\r\n"}},
		{name: "hold address", in: "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 4000 RTP/AVP 0\na=sendonly\n",
			wantFrom: "0.0.0.0:4000", want: []string{"a=sendonly\r\n", "c=IN IP4 203.0.113.5\r\n"}},
		{name: "empty", in: "  ", err: true},
		{name: "no audio", in: "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=video 4000 RTP/AVP 96\n", err: true},
		{name: "no c", in: "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n", err: true},
		{name: "bad c", in: "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 nowhere\nt=0 0\nm=audio 4000 RTP/AVP 0\n", err: true},
		{name: "bad port", in: "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 99999 RTP/AVP 0\n", err: true},
		{name: "short o", in: "v=0\no=- 1\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 4000 RTP/AVP 0\n", err: true},
		{name: "not sdp", in: "hello world\n", err: true},
	} {

		t.Run(tc.name, func(t *testing.T) {
			out, info, err := rewriteSDP([]byte(tc.in), relay, false)
			if tc.err {
				if !errors.Is(err, ErrBadSDP) {
					t.Fatalf("got %v, want ErrBadSDP", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Addr.String() != tc.wantFrom {
				t.Errorf("announced %v, want %s", info.Addr, tc.wantFrom)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("missing %q in\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(string(out), w) {
					t.Errorf("%q left in\n%s", w, out)
				}
			}
		})
	}
}

func TestReplaceAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Message-Account: sip:alice@10.0.0.30", "Message-Account: sip:alice@203.0.113.5"},
		{"entity=\"sip:101@10.0.0.30:5060\"", "entity=\"sip:101@203.0.113.5:5060\""},
		{"10.0.0.300 and 110.0.0.30 stay", "10.0.0.300 and 110.0.0.30 stay"},
		{"10.0.0.30 10.0.0.30", "203.0.113.5 203.0.113.5"},
		{"", ""},
	} {
		if got := replaceAddr(tc.in, "10.0.0.30", "203.0.113.5"); got != tc.want {
			t.Errorf("replaceAddr(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		name, value, want string
		err               error
	}{
		{"latching", "strict", "strict", nil},
		{"latching", "comedia", "learn", nil},
		{"latching", "sometimes", "", ErrBadValue},
		{"nat_expires", "45", "45s", nil},
		{"nat-expires", "2m", "2m0s", nil},
		{"nat_expires", "5s", "", ErrBadValue},
		{"nat_expires", "-3", "", ErrBadValue},
		{"keepalive_interval", "off", "off", nil},
		{"keepalive_interval", "500ms", "", ErrBadValue},
		{"keepalive_interval", "20", "20s", nil},
		{"topology_hiding", "off", "off", nil},
		{"topology-hiding", "on", "on", nil},
		{"topology_hiding", "partly", "", ErrBadValue},
		{"rport", "on", "", ErrUnknownSetting},
	} {
		s := DefaultSettings()
		err := s.Set(tc.name, tc.value)
		if !errors.Is(err, tc.err) {
			t.Errorf("Set(%s, %s) = %v, want %v", tc.name, tc.value, err, tc.err)
			continue
		}
		if err != nil {
			if s != DefaultSettings() {
				t.Errorf("failed Set(%s, %s) changed the settings", tc.name, tc.value)
			}
			continue
		}
		if got, _ := s.Get(tc.name); got != tc.want {
			t.Errorf("after Set(%s, %s) Get = %q, want %q", tc.name, tc.value, got, tc.want)
		}
	}
}

// keepOrigin (topology_hiding off) leaves the o= line alone and still
// points c=/m= at the relay.
func TestRewriteSDPKeepOrigin(t *testing.T) {
	in := "v=0\r\no=pbx 7 7 IN IP4 10.0.0.30\r\ns=-\r\nc=IN IP4 10.0.0.30\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
	out, _, err := rewriteSDP([]byte(in), netip.MustParseAddrPort("203.0.113.5:20000"), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"o=pbx 7 7 IN IP4 10.0.0.30\r\n", "c=IN IP4 203.0.113.5\r\n", "m=audio 20000 "} {
		if !strings.Contains(string(out), w) {
			t.Errorf("missing %q in\n%s", w, out)
		}
	}
}
