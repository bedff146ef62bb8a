package b2bua

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/siplab/siplab/sip/sdpneg"
)

// sdpOrigin is the o= identity the PBX keeps for one leg: a B2BUA is the
// session's author on each leg, so each leg gets its own session id and a
// version that only grows (RFC 3264 §8).
type sdpOrigin struct {
	id      uint64
	version uint64
}

func newOrigin() sdpOrigin { return sdpOrigin{id: sdpneg.NewSessionID()} }

// rewrite is what the PBX changes in an SDP it passes from one leg to the
// other. A zero addr keeps the addresses (direct media: only o= changes).
type rewrite struct {
	addr netip.Addr
	port int
	// dir, when set, replaces the audio stream's direction attribute.
	dir *sdpneg.Direction
}

// rewriteSDP copies body with the audio stream pointed at the PBX (when
// anchoring) and the origin replaced by the leg's own. Codecs, ptime and
// everything else pass through untouched: the PBX relays RTP without
// transcoding, so both phones must agree on what they offered.
func rewriteSDP(body []byte, o *sdpOrigin, rw rewrite) ([]byte, error) {
	// sdpneg.Parse validates and picks the audio stream the same way the
	// phones do, so the stream rewritten is the one they will use.
	r, err := sdpneg.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	sd := &sdp.SessionDescription{}
	if err := sd.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	idx := -1
	for i, md := range sd.MediaDescriptions {
		if md.MediaName.Media == "audio" && md.MediaName.Port.Value == r.Port &&
			strings.Join(md.MediaName.Protos, "/") == r.Proto {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("%w: audio stream not found again", ErrBadSDP)
	}
	o.version++
	sd.Origin.SessionID, sd.Origin.SessionVersion = o.id, o.version
	sd.Origin.Username = "siplab-pbx"
	if rw.addr.IsValid() {
		a := rw.addr.Unmap()
		at := "IP4"
		if a.Is6() {
			at = "IP6"
		}
		sd.Origin.AddressType, sd.Origin.UnicastAddress = at, a.String()
		ci := &sdp.ConnectionInformation{NetworkType: "IN", AddressType: at, Address: &sdp.Address{Address: a.String()}}
		sd.ConnectionInformation = ci
		for i, md := range sd.MediaDescriptions {
			if md.ConnectionInformation != nil && i == idx {
				c := *ci
				md.ConnectionInformation = &c
			}
		}
		md := sd.MediaDescriptions[idx]
		if md.MediaName.Port.Value != 0 {
			md.MediaName.Port = sdp.RangedPort{Value: rw.port}
		}
		// a=rtcp (RFC 3605) names the phone's RTCP port; the relay has its
		// own, the next one up.
		md.Attributes = dropAttrs(md.Attributes, "rtcp")
	}
	if rw.dir != nil {
		md := sd.MediaDescriptions[idx]
		md.Attributes = dropAttrs(md.Attributes, "sendrecv", "sendonly", "recvonly", "inactive")
		md.Attributes = append(md.Attributes, sdp.NewPropertyAttribute(rw.dir.String()))
		// A session-level direction would contradict the media-level one.
		sd.Attributes = dropAttrs(sd.Attributes, "sendrecv", "sendonly", "recvonly", "inactive")
	}
	out, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: marshal: %w", ErrBadSDP, err)
	}
	return out, nil
}

func dropAttrs(attrs []sdp.Attribute, keys ...string) []sdp.Attribute {
	out := attrs[:0:0]
	for _, a := range attrs {
		drop := false
		for _, k := range keys {
			if a.Key == k {
				drop = true
			}
		}
		if !drop {
			out = append(out, a)
		}
	}
	return out
}

// audioCodec is the codec RTP on a leg uses after offer/answer: the first
// audio format of the answer. ok is false for anything but G.711, which is
// all the PBX can play music on hold or record in.
func audioCodec(answer *sdpneg.Remote) (sdpneg.Codec, bool) {
	cs := answer.AudioCodecs()
	if len(cs) == 0 {
		return sdpneg.Codec{}, false
	}
	c := cs[0]
	if !c.Same(sdpneg.PCMU) && !c.Same(sdpneg.PCMA) {
		return c, false
	}
	return c, true
}
