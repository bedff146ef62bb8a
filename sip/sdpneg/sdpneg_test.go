package sdpneg

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// sdpLines joins lines with CRLF the way phones write SDP.
func sdpLines(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

func offerWith(c string, m string, attrs ...string) []byte {
	lines := []string{"v=0", "o=bob 1234 5 IN IP4 192.0.2.10", "s=call"}
	if c != "" {
		lines = append(lines, c)
	}
	lines = append(lines, "t=0 0", m)
	lines = append(lines, attrs...)
	return sdpLines(lines...)
}

var local = Description{
	Addr:            netip.MustParseAddr("198.51.100.7"),
	Port:            40000,
	Codecs:          []Codec{PCMU, PCMA},
	DTMFPayloadType: 101,
	SessionID:       99,
	SessionVersion:  1,
}

func TestBuildParseRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		d    Description
		want []string // lines that must appear
	}{
		{"defaults", local, []string{
			"v=0", "o=- 99 1 IN IP4 198.51.100.7", "s=siplab", "c=IN IP4 198.51.100.7", "t=0 0",
			"m=audio 40000 RTP/AVP 0 8 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
			"a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20", "a=sendrecv",
		}},
		{"ipv6 sendonly no dtmf", Description{
			Addr: netip.MustParseAddr("2001:db8::1"), Port: 5004, Codecs: []Codec{PCMA},
			Direction: SendOnly, Username: "alice", Ptime: 30,
		}, []string{"o=alice 0 0 IN IP6 2001:db8::1", "c=IN IP6 2001:db8::1", "m=audio 5004 RTP/AVP 8", "a=ptime:30", "a=sendonly"}},
		{"4in6 written as IPv4", Description{
			Addr: netip.MustParseAddr("::ffff:10.0.0.5"), Port: 5004, Codecs: []Codec{PCMU},
		}, []string{"c=IN IP4 10.0.0.5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := Build(tt.d)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(string(body), "\r\n"), "\r\n")
			for _, w := range tt.want {
				if !contains(got, w) {
					t.Errorf("missing line %q in\n%s", w, body)
				}
			}
			r, err := Parse(body)
			if err != nil {
				t.Fatalf("Parse(Build()): %v", err)
			}
			if r.Addr != tt.d.Addr.Unmap() || r.Port != tt.d.Port || r.Direction != tt.d.Direction {
				t.Errorf("round trip: got %v:%d %v", r.Addr, r.Port, r.Direction)
			}
			if r.DTMFPayloadType != tt.d.DTMFPayloadType {
				t.Errorf("dtmf pt %d, want %d", r.DTMFPayloadType, tt.d.DTMFPayloadType)
			}
			if len(r.AudioCodecs()) != len(tt.d.Codecs) {
				t.Errorf("codecs %v, want %v", r.Codecs, tt.d.Codecs)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func TestBuildInvalid(t *testing.T) {
	tests := []struct {
		name string
		mod  func(d *Description)
	}{
		{"no addr", func(d *Description) { d.Addr = netip.Addr{} }},
		{"port range", func(d *Description) { d.Port = 70000 }},
		{"no codecs", func(d *Description) { d.Codecs = nil }},
		{"dup pt", func(d *Description) { d.Codecs = []Codec{PCMU, {Name: "X", PayloadType: 0, ClockRate: 8000}} }},
		{"static dtmf pt", func(d *Description) { d.DTMFPayloadType = 8 }},
		{"bad direction", func(d *Description) { d.Direction = 9 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := local
			tt.mod(&d)
			if _, err := Build(d); !errors.Is(err, ErrInvalidDescription) {
				t.Fatalf("err = %v, want ErrInvalidDescription", err)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		wantErr error
		addr    string
		port    int
		codecs  []string // "name/pt"
		dtmf    uint8
		dir     Direction
		ptime   int
		hold    bool
	}{
		{
			name: "session level c, static PTs without rtpmap",
			body: offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 8 0 101",
				"a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"),
			addr: "192.0.2.10", port: 30000, codecs: []string{"PCMA/8", "PCMU/0", "telephone-event/101"}, dtmf: 101,
		},
		{
			name: "media level c overrides session level",
			body: offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 0",
				"c=IN IP4 203.0.113.9", "a=ptime:20", "a=recvonly"),
			addr: "203.0.113.9", port: 30000, codecs: []string{"PCMU/0"}, dir: RecvOnly, ptime: 20,
		},
		{
			name: "media level c only",
			body: offerWith("", "m=audio 30000 RTP/AVP 0", "c=IN IP4 203.0.113.9"),
			addr: "203.0.113.9", port: 30000, codecs: []string{"PCMU/0"},
		},
		{
			name: "session level direction, dynamic PT for PCMU, G729",
			body: sdpLines("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
				"a=sendonly", "m=audio 4000 RTP/AVP 18 96 97", "a=rtpmap:96 pcmu/8000", "a=rtpmap:97 telephone-event/8000"),
			addr: "192.0.2.1", port: 4000, codecs: []string{"G729/18", "pcmu/96", "telephone-event/97"}, dtmf: 97,
			dir: SendOnly, hold: true,
		},
		{
			name: "legacy hold 0.0.0.0, LF line endings",
			body: []byte("v=0\no=- 1 2 IN IP4 192.0.2.1\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 4000 RTP/AVP 0\n"),
			addr: "0.0.0.0", port: 4000, codecs: []string{"PCMU/0"}, hold: true,
		},
		{
			name: "video first, audio picked",
			body: sdpLines("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
				"m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000",
				"m=audio 5002 RTP/AVP 0", "a=inactive"),
			addr: "192.0.2.1", port: 5002, codecs: []string{"PCMU/0"}, dir: Inactive, hold: true,
		},
		{
			name: "disabled audio line reported with port 0",
			body: offerWith("c=IN IP4 192.0.2.10", "m=audio 0 RTP/AVP 0"),
			addr: "192.0.2.10", port: 0, codecs: []string{"PCMU/0"},
		},
		{
			name: "ipv6",
			body: sdpLines("v=0", "o=- 1 1 IN IP6 2001:db8::2", "s=-", "c=IN IP6 2001:db8::2", "t=0 0", "m=audio 6000 RTP/AVP 8"),
			addr: "2001:db8::2", port: 6000, codecs: []string{"PCMA/8"},
		},
		{name: "no audio", body: sdpLines("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
			"m=video 5000 RTP/AVP 96"), wantErr: ErrNoAudio},
		{name: "no media at all", body: sdpLines("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0"), wantErr: ErrNoAudio},
		{name: "missing c", body: offerWith("", "m=audio 30000 RTP/AVP 0"), wantErr: ErrNoConnection},
		{name: "hostname in c", body: offerWith("c=IN IP4 pbx.example.com", "m=audio 30000 RTP/AVP 0"), wantErr: ErrBadAddress},
		{name: "IP6 address in IP4 c", body: offerWith("c=IN IP4 2001:db8::1", "m=audio 30000 RTP/AVP 0"), wantErr: ErrBadAddress},
		{name: "port too big", body: offerWith("c=IN IP4 192.0.2.10", "m=audio 70000 RTP/AVP 0"), wantErr: ErrSyntax},
		{name: "port not a number", body: offerWith("c=IN IP4 192.0.2.10", "m=audio abc RTP/AVP 0"), wantErr: ErrSyntax},
		{name: "no formats", body: offerWith("c=IN IP4 192.0.2.10", "m=audio 4000 RTP/AVP"), wantErr: ErrBadPort},
		{name: "format not a PT", body: offerWith("c=IN IP4 192.0.2.10", "m=audio 4000 RTP/AVP 0 x"), wantErr: ErrSyntax},
		{name: "garbage", body: []byte("INVITE sip:bob@example.com SIP/2.0\r\n"), wantErr: ErrSyntax},
		{name: "empty", body: nil, wantErr: ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.body)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Addr.String() != tt.addr || r.Port != tt.port {
				t.Errorf("addr %v port %d, want %s %d", r.Addr, r.Port, tt.addr, tt.port)
			}
			var got []string
			for _, c := range r.Codecs {
				got = append(got, c.Name+"/"+itoa(c.PayloadType))
			}
			if strings.Join(got, ",") != strings.Join(tt.codecs, ",") {
				t.Errorf("codecs %v, want %v", got, tt.codecs)
			}
			if r.DTMFPayloadType != tt.dtmf || r.Direction != tt.dir || r.Ptime != tt.ptime || r.OnHold() != tt.hold {
				t.Errorf("dtmf %d dir %v ptime %d hold %v; want %d %v %d %v",
					r.DTMFPayloadType, r.Direction, r.Ptime, r.OnHold(), tt.dtmf, tt.dir, tt.ptime, tt.hold)
			}
		})
	}
}

func itoa(n uint8) string { return strconv.Itoa(int(n)) }

func TestAnswer(t *testing.T) {
	tests := []struct {
		name     string
		offer    []byte
		prefs    []Codec
		dtmf     uint8
		dir      Direction
		wantErr  error
		chosen   Codec
		dtmfPT   uint8
		wantDir  Direction
		wantPort int
		lines    []string
	}{
		{
			name:  "answerer preference wins over offer order",
			offer: offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000"),
			prefs: []Codec{PCMA, PCMU}, dtmf: 101,
			chosen: PCMA, dtmfPT: 101, wantPort: 40000,
			lines: []string{"m=audio 40000 RTP/AVP 8 101", "a=rtpmap:8 PCMA/8000", "a=fmtp:101 0-16", "a=sendrecv"},
		},
		{
			name:  "only common codec is the answerer's second choice",
			offer: offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 8"),
			prefs: []Codec{PCMU, PCMA}, dtmf: 101,
			chosen: PCMA, wantPort: 40000,
			lines: []string{"m=audio 40000 RTP/AVP 8"},
		},
		{
			name:    "pcmu only vs pcma only",
			offer:   offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000"),
			prefs:   []Codec{PCMA},
			wantErr: ErrNoCommonCodec,
		},
		{
			name:    "telephone-event alone is no codec",
			offer:   offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 101", "a=rtpmap:101 telephone-event/8000"),
			prefs:   []Codec{PCMU, PCMA},
			wantErr: ErrNoCommonCodec,
		},
		{
			name:  "offerer's dynamic numbers echoed",
			offer: offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 96 97", "a=rtpmap:96 PCMU/8000", "a=rtpmap:97 telephone-event/8000"),
			prefs: []Codec{PCMU}, dtmf: 101,
			chosen: Codec{Name: "PCMU", PayloadType: 96, ClockRate: 8000}, dtmfPT: 97, wantPort: 40000,
			lines: []string{"m=audio 40000 RTP/AVP 96 97", "a=rtpmap:97 telephone-event/8000"},
		},
		{
			name:   "we do not take DTMF",
			offer:  offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000"),
			prefs:  []Codec{PCMU},
			chosen: PCMU, wantPort: 40000,
			lines: []string{"m=audio 40000 RTP/AVP 0"},
		},
		{
			name:  "offer sendonly (we are put on hold) answered recvonly",
			offer: offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 0", "a=sendonly"),
			prefs: []Codec{PCMU}, chosen: PCMU, wantDir: RecvOnly, wantPort: 40000, lines: []string{"a=recvonly"},
		},
		{
			name:  "offer recvonly answered sendonly",
			offer: offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 0", "a=recvonly"),
			prefs: []Codec{PCMU}, chosen: PCMU, wantDir: SendOnly, wantPort: 40000,
		},
		{
			name:  "offer inactive answered inactive",
			offer: offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 0", "a=inactive"),
			prefs: []Codec{PCMU}, chosen: PCMU, wantDir: Inactive, wantPort: 40000,
		},
		{
			name:  "we hold: sendrecv offer, local sendonly",
			offer: offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 0"),
			prefs: []Codec{PCMU}, dir: SendOnly, chosen: PCMU, wantDir: SendOnly, wantPort: 40000,
		},
		{
			name:  "both recvonly gives inactive",
			offer: offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 0", "a=recvonly"),
			prefs: []Codec{PCMU}, dir: RecvOnly, chosen: PCMU, wantDir: Inactive, wantPort: 40000,
		},
		{
			name: "video line rejected with port 0, order kept",
			offer: sdpLines("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
				"m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000", "m=audio 5002 RTP/AVP 0"),
			prefs: []Codec{PCMU}, chosen: PCMU, wantPort: 40000,
			lines: []string{"m=video 0 RTP/AVP 96", "m=audio 40000 RTP/AVP 0"},
		},
		{
			name:     "disabled audio answered with port 0",
			offer:    offerWith("c=IN IP4 192.0.2.10", "m=audio 0 RTP/AVP 0 8"),
			prefs:    []Codec{PCMA},
			wantPort: 0,
			lines:    []string{"m=audio 0 RTP/AVP 0"},
		},
		{
			name:    "SRTP refused",
			offer:   offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"),
			prefs:   []Codec{PCMU},
			wantErr: ErrUnsupportedProto,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offer, err := Parse(tt.offer)
			if err != nil {
				t.Fatal(err)
			}
			l := local
			l.Codecs, l.DTMFPayloadType, l.Direction = tt.prefs, tt.dtmf, tt.dir
			body, chosen, dtmfPT, err := Answer(offer, l)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || body != nil {
					t.Fatalf("err = %v body %q, want %v and no body", err, body, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if chosen != tt.chosen || dtmfPT != tt.dtmfPT {
				t.Errorf("chosen %+v dtmf %d, want %+v %d", chosen, dtmfPT, tt.chosen, tt.dtmfPT)
			}
			lines := strings.Split(string(body), "\r\n")
			for _, w := range tt.lines {
				if !contains(lines, w) {
					t.Errorf("missing %q in answer\n%s", w, body)
				}
			}
			ans, err := Parse(body)
			if err != nil {
				t.Fatalf("answer does not parse: %v\n%s", err, body)
			}
			if ans.Port != tt.wantPort || ans.Direction != tt.wantDir || ans.Addr != local.Addr {
				t.Errorf("answer %v:%d %v, want port %d %v", ans.Addr, ans.Port, ans.Direction, tt.wantPort, tt.wantDir)
			}
			if tt.wantPort == 0 {
				return
			}
			// The offerer, reading our answer, must land on the same codec.
			c, d, err := Negotiated(offer, ans)
			if err != nil || c != tt.chosen || d != tt.dtmfPT {
				t.Errorf("Negotiated = %+v %d %v, want %+v %d", c, d, err, tt.chosen, tt.dtmfPT)
			}
		})
	}
}

func TestNegotiated(t *testing.T) {
	ourOffer, err := Build(local) // PCMU, PCMA, telephone-event 101
	if err != nil {
		t.Fatal(err)
	}
	offer, err := Parse(ourOffer)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		answer  []byte
		want    Codec
		dtmf    uint8
		wantErr error
	}{
		{"first answered codec we offered", offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 18 8 0"), PCMA, 0, nil},
		{"answerer renumbers DTMF", offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 0 100", "a=rtpmap:100 telephone-event/8000"), PCMU, 100, nil},
		{"rejected", offerWith("c=IN IP4 192.0.2.10", "m=audio 0 RTP/AVP 0"), Codec{}, 0, ErrStreamRejected},
		{"nothing we offered", offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 18"), Codec{}, 0, ErrNoCommonCodec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans, err := Parse(tt.answer)
			if err != nil {
				t.Fatal(err)
			}
			c, d, err := Negotiated(offer, ans)
			if !errors.Is(err, tt.wantErr) || c != tt.want || d != tt.dtmf {
				t.Errorf("got %+v %d %v, want %+v %d %v", c, d, err, tt.want, tt.dtmf, tt.wantErr)
			}
		})
	}
}

func TestParseCodecList(t *testing.T) {
	tests := []struct {
		in      string
		want    []Codec
		wantErr bool
	}{
		{"pcmu,pcma", []Codec{PCMU, PCMA}, false},
		{" PCMA , ulaw,pcma", []Codec{PCMA, PCMU}, false},
		{"g729", nil, true},
		{"", nil, true},
		{",,", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseCodecList(tt.in)
		if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrUnknownCodec)) {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("%q: got %v, want %v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%q: got %v, want %v", tt.in, got, tt.want)
			}
		}
	}
}

func TestDirectionAnswer(t *testing.T) {
	// RFC 3264 §6.1 table, answerer willing to do anything.
	want := map[Direction]Direction{SendRecv: SendRecv, SendOnly: RecvOnly, RecvOnly: SendOnly, Inactive: Inactive}
	for offer, ans := range want {
		if got := offer.Answer(SendRecv); got != ans {
			t.Errorf("%v.Answer(sendrecv) = %v, want %v", offer, got, ans)
		}
		if got := offer.Answer(Inactive); got != Inactive {
			t.Errorf("%v.Answer(inactive) = %v", offer, got)
		}
		p, err := ParseDirection(offer.String())
		if err != nil || p != offer {
			t.Errorf("ParseDirection(%v) = %v %v", offer, p, err)
		}
	}
	if _, err := ParseDirection("sideways"); err == nil {
		t.Error("ParseDirection accepted garbage")
	}
}

// Offers as real softphones write them: many codecs we do not have, rtcp
// and feedback attributes, a second (SRTP) audio line.
func TestAnswerRealWorldOffers(t *testing.T) {
	tests := []struct {
		name   string
		body   []byte
		chosen Codec
		dtmf   uint8
		port   int
	}{
		{"linphone-like", sdpLines(
			"v=0", "o=alice 2163 3059 IN IP4 192.168.1.50", "s=Talk", "c=IN IP4 192.168.1.50", "t=0 0",
			"a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics",
			"m=audio 7078 RTP/AVP 96 97 98 0 8 101 99 100",
			"a=rtpmap:96 opus/48000/2", "a=fmtp:96 useinbandfec=1", "a=rtpmap:97 speex/16000", "a=fmtp:97 vbr=on",
			"a=rtpmap:98 speex/8000", "a=fmtp:98 vbr=on", "a=rtpmap:101 telephone-event/48000",
			"a=rtpmap:99 telephone-event/16000", "a=rtpmap:100 telephone-event/8000",
			"a=rtcp-fb:* trr-int 1000", "a=rtcp-fb:* ccm tmmbr"),
			PCMU, 100, 7078},
		{"asterisk-like with session ptime and rtcp attr", sdpLines(
			"v=0", "o=- 1700000000 1700000001 IN IP4 203.0.113.5", "s=Asterisk", "c=IN IP4 203.0.113.5",
			"b=CT:384", "t=0 0",
			"m=audio 12000 RTP/AVP 8 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000",
			"a=fmtp:101 0-16", "a=ptime:20", "a=maxptime:150", "a=rtcp:12001", "a=sendrecv"),
			PCMA, 101, 12000},
		{"SRTP line first, RTP/AVP second", sdpLines(
			"v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
			"m=audio 5000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
			"m=audio 5002 RTP/AVP 0"),
			PCMU, 0, 5002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offer, err := Parse(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if offer.Port != tt.port {
				t.Errorf("picked port %d, want %d", offer.Port, tt.port)
			}
			body, chosen, dtmf, err := Answer(offer, local)
			if err != nil || chosen != tt.chosen || dtmf != tt.dtmf {
				t.Fatalf("Answer = %+v %d %v, want %+v %d", chosen, dtmf, err, tt.chosen, tt.dtmf)
			}
			ans, err := Parse(body)
			if err != nil {
				t.Fatal(err)
			}
			// The answer mirrors every offered m-line.
			if len(ans.sd.MediaDescriptions) != len(offer.sd.MediaDescriptions) {
				t.Errorf("answer has %d m-lines, offer %d", len(ans.sd.MediaDescriptions), len(offer.sd.MediaDescriptions))
			}
		})
	}
}

// A Direction in a JSON document (the SBC's status of a browser call)
// decodes as it encodes, and a name SDP has not is an error.
func TestDirectionJSONRoundTrip(t *testing.T) {
	for _, d := range []Direction{SendRecv, SendOnly, RecvOnly, Inactive} {
		b, err := json.Marshal(struct{ D Direction }{d})
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ D Direction }
		if err := json.Unmarshal(b, &got); err != nil || got.D != d {
			t.Errorf("%s: %s decodes to %v, %v", d, b, got.D, err)
		}
	}
	var got struct{ D Direction }
	if err := json.Unmarshal([]byte(`{"D":"sideways"}`), &got); err == nil {
		t.Error(`"sideways" decoded`)
	}
}
