package webrtcgw

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/siplab/siplab/sip/sdpneg"
)

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"stun ok", Config{ICEServers: []string{"stun:203.0.113.20:3478"}}, ""},
		{"turn without credentials", Config{ICEServers: []string{"turn:203.0.113.20:3478"}}, "TURN user"},
		{"turn with credentials", Config{ICEServers: []string{"turn:203.0.113.20:3478"}, TURNUser: "alice", TURNPassword: "x"}, ""},
		{"no scheme", Config{ICEServers: []string{"203.0.113.20"}}, "want stun"},
		{"turns", Config{ICEServers: []string{"turns:203.0.113.20:5349"}}, "scheme"},
		{"lite with servers", Config{Lite: true, ICEServers: []string{"stun:203.0.113.20:3478"}}, "ICE-lite"},
		{"half a port range", Config{PortMin: 10000}, "port range"},
		{"unspecified ip", Config{IPs: []netip.Addr{netip.IPv4Unspecified()}}, "specific IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !isErr(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrConfig mentioning %q", err, tc.want)
			}
		})
	}
}

func TestBadNegotiation(t *testing.T) {
	g := newGateway(t, Config{})
	plain, err := sdpneg.Build(sdpneg.Description{Addr: loopback, Port: 4000, Codecs: []sdpneg.Codec{sdpneg.PCMU}})
	if err != nil {
		t.Fatal(err)
	}
	opusOnly := strings.Join([]string{"v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=rtpmap:111 opus/48000/2",
		"a=fingerprint:sha-256 00:11", "a=setup:actpass", "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuv", ""}, "\r\n")
	gsmOnly, _ := sdpneg.Build(sdpneg.Description{Addr: loopback, Port: 4000, Codecs: []sdpneg.Codec{{Name: "GSM", PayloadType: 3, ClockRate: 8000}}})

	if _, err := newCallT(t, g).OfferFromBrowser(string(plain)); !isErr(err, ErrBadSDP) {
		t.Errorf("plain RTP as a browser offer: %v", err)
	}
	if _, err := newCallT(t, g).OfferFromBrowser(opusOnly); !isErr(err, ErrNoCommonCodec) {
		t.Errorf("opus-only browser offer: %v", err)
	}
	if _, err := newCallT(t, g).OfferFromBrowser("garbage"); !isErr(err, ErrBadSDP) {
		t.Errorf("garbage: %v", err)
	}
	if _, err := newCallT(t, g).OfferFromCore(context.Background(), gsmOnly); !isErr(err, ErrNoCommonCodec) {
		t.Errorf("GSM-only core offer: %v", err)
	}
	if _, err := newCallT(t, g).AnswerFromCore(context.Background(), plain); !isErr(err, ErrState) {
		t.Errorf("answer without an offer: %v", err)
	}
	if _, err := newCallT(t, g).AnswerFromBrowser(opusOnly); !isErr(err, ErrState) {
		t.Errorf("browser answer without an offer: %v", err)
	}
	if _, err := g.NewCall(CallConfig{}); !isErr(err, ErrConfig) {
		t.Errorf("no core socket: %v", err)
	}
	c := newCallT(t, g)
	c.Close()
	if _, err := c.OfferFromCore(context.Background(), plain); !isErr(err, ErrState) {
		t.Errorf("offer on a closed call: %v", err)
	}
	for _, s := range g.Calls() {
		if s.Name == c.Name() {
			t.Errorf("closed call %s still listed", s.Name)
		}
	}
}
