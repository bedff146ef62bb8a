package sdpneg

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Remote is what a received SDP body says about its audio stream.
type Remote struct {
	// Addr and Port are where the peer wants RTP, as written (c= at media
	// level, else session level; the m= port). Port 0 means the stream is
	// disabled or rejected. 0.0.0.0 is the old RFC 2543 hold.
	Addr netip.Addr `json:"addr"`
	Port int        `json:"port"`
	// Proto is the m= transport, "RTP/AVP" for plain RTP.
	Proto string `json:"proto"`
	// Codecs are all formats of the m= line in the peer's order, names from
	// rtpmap or, for static payload types without rtpmap, from RFC 3551.
	// A dynamic type without rtpmap has an empty Name. Includes telephone-event.
	Codecs []Codec `json:"codecs"`
	// DTMFPayloadType is the peer's telephone-event payload type, 0 if none.
	DTMFPayloadType uint8 `json:"dtmf_pt,omitempty"`
	// Direction from the media-level attribute, else session-level, else sendrecv.
	Direction Direction `json:"direction"`
	// Ptime is a=ptime in ms, 0 if absent.
	Ptime int `json:"ptime,omitempty"`
	// Origin fields, so a re-offer can be told from a retransmission.
	Username       string `json:"username"`
	SessionID      uint64 `json:"session_id"`
	SessionVersion uint64 `json:"session_version"`

	sd         *sdp.SessionDescription
	audioIndex int
}

// AddrPort is the RTP destination the peer wrote.
func (r *Remote) AddrPort() netip.AddrPort { return netip.AddrPortFrom(r.Addr, uint16(r.Port)) }

// OnHold reports whether the peer asks us not to send: sendonly/inactive
// (RFC 3264 §8.4) or the legacy c=0.0.0.0.
func (r *Remote) OnHold() bool {
	return !r.Direction.CanRecv() || r.Addr.IsUnspecified()
}

// AudioCodecs are the offered formats without telephone-event and comfort noise.
func (r *Remote) AudioCodecs() []Codec {
	var out []Codec
	for _, c := range r.Codecs {
		if !c.isTelephoneEvent() && !strings.EqualFold(c.Name, "CN") {
			out = append(out, c)
		}
	}
	return out
}

// Parse reads an SDP body and picks its audio stream: the first m=audio with
// RTP/AVP and a non-zero port, else the first m=audio at all.
func Parse(body []byte) (*Remote, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrSyntax)
	}
	sd := &sdp.SessionDescription{}
	if err := sd.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	idx := -1
	for i, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" {
			continue
		}
		if idx < 0 {
			idx = i
		}
		if md.MediaName.Port.Value != 0 && protoString(md) == "RTP/AVP" {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil, ErrNoAudio
	}
	md := sd.MediaDescriptions[idx]
	r := &Remote{
		Port:           md.MediaName.Port.Value,
		Proto:          protoString(md),
		Username:       sd.Origin.Username,
		SessionID:      sd.Origin.SessionID,
		SessionVersion: sd.Origin.SessionVersion,
		sd:             sd,
		audioIndex:     idx,
	}
	if r.Port < 0 || r.Port > 65535 {
		return nil, fmt.Errorf("%w: %d", ErrBadPort, r.Port)
	}
	if len(md.MediaName.Formats) == 0 {
		return nil, fmt.Errorf("%w: audio m-line lists no formats", ErrBadPort)
	}

	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return nil, ErrNoConnection
	}
	addr, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		// RFC 8866 allows an FQDN here; no phone in the lab writes one and
		// resolving it would hide what the peer really advertised.
		return nil, fmt.Errorf("%w: %q: %w", ErrBadAddress, ci.Address.Address, err)
	}
	if (ci.AddressType == "IP4") != addr.Is4() {
		return nil, fmt.Errorf("%w: %q is not %s", ErrBadAddress, ci.Address.Address, ci.AddressType)
	}
	r.Addr = addr

	if err := r.readFormats(md); err != nil {
		return nil, err
	}
	r.Direction = readDirection(sd.Attributes, SendRecv)
	r.Direction = readDirection(md.Attributes, r.Direction)
	r.Ptime = readPtime(sd.Attributes, 0)
	r.Ptime = readPtime(md.Attributes, r.Ptime)
	return r, nil
}

func protoString(md *sdp.MediaDescription) string {
	return strings.Join(md.MediaName.Protos, "/")
}

func (r *Remote) readFormats(md *sdp.MediaDescription) error {
	rtpmap := map[uint8]Codec{}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		c, ok := parseRtpmap(a.Value)
		if ok {
			rtpmap[c.PayloadType] = c
		}
	}
	for _, f := range md.MediaName.Formats {
		n, err := strconv.ParseUint(f, 10, 8)
		if err != nil || n > 127 {
			if r.Proto == "RTP/AVP" {
				return fmt.Errorf("%w: format %q is not an RTP payload type", ErrSyntax, f)
			}
			continue // other transports have non-numeric formats; Answer rejects them anyway
		}
		pt := uint8(n)
		c, ok := rtpmap[pt]
		if !ok {
			c, ok = staticCodecs[pt]
			if !ok {
				c = Codec{PayloadType: pt}
			}
		}
		r.Codecs = append(r.Codecs, c)
		if c.isTelephoneEvent() && c.ClockRate == 8000 && r.DTMFPayloadType == 0 {
			r.DTMFPayloadType = pt
		}
	}
	return nil
}

// parseRtpmap reads "<pt> <name>/<rate>[/<channels>]"; malformed lines are
// ignored rather than fatal because the format may be one we never use.
func parseRtpmap(v string) (Codec, bool) {
	ptStr, enc, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return Codec{}, false
	}
	pt, err := strconv.ParseUint(ptStr, 10, 8)
	if err != nil || pt > 127 {
		return Codec{}, false
	}
	parts := strings.Split(strings.TrimSpace(enc), "/")
	if len(parts) < 2 || parts[0] == "" {
		return Codec{}, false
	}
	rate, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil || rate == 0 {
		return Codec{}, false
	}
	return Codec{Name: parts[0], PayloadType: uint8(pt), ClockRate: uint32(rate)}, true
}

func readDirection(attrs []sdp.Attribute, def Direction) Direction {
	for _, a := range attrs {
		if d, err := ParseDirection(a.Key); err == nil && a.Value == "" {
			def = d
		}
	}
	return def
}

func readPtime(attrs []sdp.Attribute, def int) int {
	for _, a := range attrs {
		if a.Key != "ptime" {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(a.Value)); err == nil && n > 0 && n <= 1000 {
			def = n
		}
	}
	return def
}
