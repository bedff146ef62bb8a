package sdpneg

import (
	"net/netip"
	"testing"
)

func FuzzParse(f *testing.F) {
	seed, _ := Build(local)
	f.Add(seed)
	f.Add(offerWith("c=IN IP4 192.0.2.10", "m=audio 30000 RTP/AVP 8 0 101", "a=rtpmap:101 telephone-event/8000"))
	f.Add(offerWith("", "m=audio 0 RTP/SAVP 0", "c=IN IP6 ::1", "a=sendonly"))
	f.Add([]byte("v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=audio 1/2 RTP/AVP 96\na=rtpmap:96 /\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Parse(body)
		if err != nil {
			if r != nil {
				t.Fatal("Parse returned both a Remote and an error")
			}
			return
		}
		// Whatever parses must also be answerable (or refused) without panicking,
		// and an answer we write must parse back.
		l := Description{Addr: netip.MustParseAddr("192.0.2.1"), Port: 4000, Codecs: []Codec{PCMU, PCMA}, DTMFPayloadType: 101}
		ans, _, _, err := Answer(r, l)
		if err == nil {
			if _, err := Parse(ans); err != nil {
				t.Fatalf("our answer does not parse: %v\n%s", err, ans)
			}
		}
		_, _, _ = Negotiated(r, r)
	})
}
