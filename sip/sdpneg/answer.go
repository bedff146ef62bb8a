package sdpneg

import (
	"fmt"

	"github.com/pion/sdp/v3"
)

// Answer builds the answer to offer. local describes the answering phone:
// its address and port, its codecs in ITS preference order, whether it takes
// telephone-event (DTMFPayloadType != 0; the offer's number is echoed), the
// direction it wants (sendrecv, or sendonly when it holds), and its o= fields.
//
// The chosen codec is the first of local.Codecs the offer contains, with the
// offer's payload type; only that codec (plus telephone-event) goes in the
// answer so both sides know exactly what flows. dtmfPT is 0 when either side
// lacks telephone-event. Every other m-line of the offer is answered with
// port 0, as RFC 3264 §6 requires the answer to mirror the offer's m-lines.
//
// An offer whose audio port is 0 gets an answer with port 0, the zero Codec
// and a nil error. ErrNoCommonCodec and ErrUnsupportedProto mean 488.
func Answer(offer *Remote, local Description) (body []byte, chosen Codec, dtmfPT uint8, err error) {
	if offer == nil || offer.sd == nil {
		return nil, Codec{}, 0, fmt.Errorf("%w: no parsed offer", ErrInvalidDescription)
	}
	if err := local.validate(); err != nil {
		return nil, Codec{}, 0, err
	}
	if offer.Proto != "RTP/AVP" && offer.Port != 0 {
		return nil, Codec{}, 0, fmt.Errorf("%w: %s", ErrUnsupportedProto, offer.Proto)
	}

	ans := local
	ans.Direction = offer.Direction.Answer(local.Direction)
	ans.DTMFPayloadType = 0
	disabled := offer.Port == 0
	if !disabled {
		var ok bool
		chosen, ok = pick(local.Codecs, offer.AudioCodecs())
		if !ok {
			return nil, Codec{}, 0, fmt.Errorf("%w: offered %v, we take %v", ErrNoCommonCodec, offer.Codecs, local.Codecs)
		}
		ans.Codecs = []Codec{chosen}
		if local.DTMFPayloadType != 0 && offer.DTMFPayloadType >= 96 && offer.DTMFPayloadType <= 127 &&
			offer.DTMFPayloadType != chosen.PayloadType {
			dtmfPT = offer.DTMFPayloadType
			ans.DTMFPayloadType = dtmfPT
		}
	}

	sd := ans.session()
	for i, md := range offer.sd.MediaDescriptions {
		if i == offer.audioIndex && !disabled {
			sd.MediaDescriptions = append(sd.MediaDescriptions, ans.audio())
			continue
		}
		sd.MediaDescriptions = append(sd.MediaDescriptions, rejected(md))
	}
	body, err = sd.Marshal()
	if err != nil {
		return nil, Codec{}, 0, fmt.Errorf("sdpneg: marshal answer: %w", err)
	}
	return body, chosen, dtmfPT, nil
}

// pick returns the first of prefs found in offered, carrying the offered
// payload type because that is the number the offerer expects to receive.
func pick(prefs, offered []Codec) (Codec, bool) {
	for _, p := range prefs {
		for _, o := range offered {
			if p.Same(o) {
				return o, true
			}
		}
	}
	return Codec{}, false
}

// rejected answers an m-line we do not take: same media and transport,
// port 0, one of the offered formats (RFC 3264 §6).
func rejected(md *sdp.MediaDescription) *sdp.MediaDescription {
	formats := md.MediaName.Formats
	if len(formats) > 1 {
		formats = formats[:1]
	}
	return &sdp.MediaDescription{MediaName: sdp.MediaName{
		Media:   md.MediaName.Media,
		Port:    sdp.RangedPort{Value: 0},
		Protos:  md.MediaName.Protos,
		Formats: formats,
	}}
}

// Negotiated tells the offerer what to send once the answer arrives: the
// first audio codec in the answer that was also offered, with the answer's
// payload type, and the answer's telephone-event type if both sides have it.
func Negotiated(offer, answer *Remote) (Codec, uint8, error) {
	if offer == nil || answer == nil {
		return Codec{}, 0, fmt.Errorf("%w: missing offer or answer", ErrInvalidDescription)
	}
	if answer.Port == 0 {
		return Codec{}, 0, ErrStreamRejected
	}
	if answer.Proto != offer.Proto {
		return Codec{}, 0, fmt.Errorf("%w: answer %s to offer %s", ErrUnsupportedProto, answer.Proto, offer.Proto)
	}
	c, ok := pick(answer.AudioCodecs(), offer.AudioCodecs())
	if !ok {
		return Codec{}, 0, fmt.Errorf("%w: offered %v, answered %v", ErrNoCommonCodec, offer.Codecs, answer.Codecs)
	}
	// pick returns the offered side's numbering; the offerer sends with the
	// answerer's numbers.
	for _, a := range answer.Codecs {
		if a.Same(c) {
			c = a
			break
		}
	}
	var dtmf uint8
	if offer.DTMFPayloadType != 0 {
		dtmf = answer.DTMFPayloadType
	}
	return c, dtmf, nil
}
