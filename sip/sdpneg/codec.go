// Package sdpneg does the SDP offer/answer exchange (RFC 3264, RFC 8866) for
// the lab's phones: G.711 PCMU/PCMA audio plus RFC 4733 telephone-event.
//
// Everything a phone writes into its SDP (the o=/c= address, the m= port) is
// taken from the caller, never discovered, because writing a private address
// behind a NAT is one of the mistakes the lab exists to show.
package sdpneg

import (
	"fmt"
	"strings"
)

// Codec is one RTP payload format as it appears in an rtpmap line.
type Codec struct {
	Name        string `json:"name"`
	PayloadType uint8  `json:"pt"`
	ClockRate   uint32 `json:"clock_rate"`
}

// Well-known codecs. TelephoneEvent's payload type is only the default we
// offer; the peer's dynamic number wins once negotiated.
var (
	PCMU           = Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000}
	PCMA           = Codec{Name: "PCMA", PayloadType: 8, ClockRate: 8000}
	TelephoneEvent = Codec{Name: "telephone-event", PayloadType: 101, ClockRate: 8000}
)

// telephoneEventFmtp is the event range we send and accept: DTMF 0-9,*,#,A-D
// and flash (RFC 4733 §3.2).
const telephoneEventFmtp = "0-16"

// staticCodecs are the RFC 3551 static assignments a peer may use without an
// rtpmap line. Only audio is listed: this package never negotiates video.
var staticCodecs = map[uint8]Codec{
	0:  PCMU,
	3:  {Name: "GSM", PayloadType: 3, ClockRate: 8000},
	4:  {Name: "G723", PayloadType: 4, ClockRate: 8000},
	5:  {Name: "DVI4", PayloadType: 5, ClockRate: 8000},
	6:  {Name: "DVI4", PayloadType: 6, ClockRate: 16000},
	7:  {Name: "LPC", PayloadType: 7, ClockRate: 8000},
	8:  PCMA,
	9:  {Name: "G722", PayloadType: 9, ClockRate: 8000},
	10: {Name: "L16", PayloadType: 10, ClockRate: 44100},
	11: {Name: "L16", PayloadType: 11, ClockRate: 44100},
	12: {Name: "QCELP", PayloadType: 12, ClockRate: 8000},
	13: {Name: "CN", PayloadType: 13, ClockRate: 8000},
	15: {Name: "G728", PayloadType: 15, ClockRate: 8000},
	18: {Name: "G729", PayloadType: 18, ClockRate: 8000},
}

// String is the rtpmap form, "PCMU/8000".
func (c Codec) String() string {
	return fmt.Sprintf("%s/%d", c.Name, c.ClockRate)
}

// Same reports whether two codecs are the same format regardless of payload
// type numbers, which differ between the two sides for dynamic formats.
func (c Codec) Same(o Codec) bool {
	return strings.EqualFold(c.Name, o.Name) && c.ClockRate == o.ClockRate
}

func (c Codec) isTelephoneEvent() bool {
	return strings.EqualFold(c.Name, TelephoneEvent.Name)
}

// ParseCodecList turns a flag value like "pcmu,pcma" into codecs in that
// preference order. Names are case-insensitive; duplicates are dropped.
// telephone-event is not an audio codec and is configured separately.
func ParseCodecList(s string) ([]Codec, error) {
	var out []Codec
	seen := map[string]bool{}
	for name := range strings.SplitSeq(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		var c Codec
		switch name {
		case "pcmu", "ulaw", "g711u":
			c = PCMU
		case "pcma", "alaw", "g711a":
			c = PCMA
		default:
			return nil, fmt.Errorf("%w %q (known: pcmu, pcma)", ErrUnknownCodec, name)
		}
		if !seen[c.Name] {
			seen[c.Name] = true
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty codec list %q", ErrUnknownCodec, s)
	}
	return out, nil
}
