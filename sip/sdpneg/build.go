package sdpneg

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/pion/sdp/v3"
)

// DefaultPtime is the packetization time the lab's media uses (160 G.711
// samples per packet).
const DefaultPtime = 20

// Description is what a phone says about its own audio stream, for an offer
// or (through Answer) an answer. Zero fields take the documented defaults.
type Description struct {
	// Addr goes into o= and c=. It is whatever the phone is configured to
	// advertise (its private address, or a configured public one); required.
	Addr netip.Addr
	// Port is the m= port, where the phone receives RTP. 0 writes a
	// disabled/rejected stream.
	Port int
	// Codecs are the audio codecs in preference order; required unless Port
	// is 0. Do not list telephone-event here, use DTMFPayloadType.
	Codecs []Codec
	// DTMFPayloadType offers RFC 4733 telephone-event with that dynamic
	// payload type (normally TelephoneEvent.PayloadType, 101). 0 = no DTMF.
	DTMFPayloadType uint8
	// Direction is the stream direction; zero = sendrecv.
	Direction Direction
	// SessionID and SessionVersion go into o=. Keep SessionID for the whole
	// dialog and increment SessionVersion on every changed re-offer
	// (RFC 3264 §8). Use NewSessionID for a fresh one.
	SessionID      uint64
	SessionVersion uint64
	// Username is the o= username; empty = "-".
	Username string
	// SessionName is s=; empty = "siplab".
	SessionName string
	// Ptime is a=ptime in ms; 0 = DefaultPtime.
	Ptime int
}

// NewSessionID returns a random o= session id that fits the 63 bits some
// stacks parse as a signed integer.
func NewSessionID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return binary.BigEndian.Uint64(b[:]) >> 1
}

func (d *Description) validate() error {
	if !d.Addr.IsValid() {
		return fmt.Errorf("%w: no address", ErrInvalidDescription)
	}
	if d.Port < 0 || d.Port > 65535 {
		return fmt.Errorf("%w: port %d out of range", ErrInvalidDescription, d.Port)
	}
	if len(d.Codecs) == 0 {
		return fmt.Errorf("%w: no codecs", ErrInvalidDescription)
	}
	seen := map[uint8]bool{}
	for _, c := range d.Codecs {
		if c.Name == "" || c.ClockRate == 0 || c.PayloadType > 127 {
			return fmt.Errorf("%w: bad codec %+v", ErrInvalidDescription, c)
		}
		if seen[c.PayloadType] {
			return fmt.Errorf("%w: payload type %d used twice", ErrInvalidDescription, c.PayloadType)
		}
		seen[c.PayloadType] = true
	}
	if d.DTMFPayloadType != 0 {
		if d.DTMFPayloadType < 96 || d.DTMFPayloadType > 127 {
			return fmt.Errorf("%w: telephone-event payload type %d is not dynamic (96-127)",
				ErrInvalidDescription, d.DTMFPayloadType)
		}
		if seen[d.DTMFPayloadType] {
			return fmt.Errorf("%w: telephone-event payload type %d collides with a codec",
				ErrInvalidDescription, d.DTMFPayloadType)
		}
	}
	if !d.Direction.valid() {
		return fmt.Errorf("%w: %v", ErrInvalidDescription, d.Direction)
	}
	if d.Ptime < 0 {
		return fmt.Errorf("%w: ptime %d", ErrInvalidDescription, d.Ptime)
	}
	return nil
}

// Build writes d as an SDP body with one audio stream.
func Build(d Description) ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	sd := d.session()
	sd.MediaDescriptions = []*sdp.MediaDescription{d.audio()}
	return sd.Marshal()
}

func addrType(a netip.Addr) string {
	if a.Is4() {
		return "IP4"
	}
	return "IP6"
}

func (d *Description) session() *sdp.SessionDescription {
	addr := d.Addr.Unmap()
	user := d.Username
	if user == "" {
		user = "-"
	}
	name := d.SessionName
	if name == "" {
		name = "siplab"
	}
	return &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username:       user,
			SessionID:      d.SessionID,
			SessionVersion: d.SessionVersion,
			NetworkType:    "IN",
			AddressType:    addrType(addr),
			UnicastAddress: addr.String(),
		},
		SessionName: sdp.SessionName(name),
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN",
			AddressType: addrType(addr),
			Address:     &sdp.Address{Address: addr.String()},
		},
		TimeDescriptions: []sdp.TimeDescription{{}},
	}
}

func (d *Description) audio() *sdp.MediaDescription {
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media:  "audio",
			Port:   sdp.RangedPort{Value: d.Port},
			Protos: []string{"RTP", "AVP"},
		},
	}
	for _, c := range d.Codecs {
		pt := strconv.Itoa(int(c.PayloadType))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", pt+" "+c.String()))
	}
	if d.DTMFPayloadType != 0 {
		pt := strconv.Itoa(int(d.DTMFPayloadType))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes,
			sdp.NewAttribute("rtpmap", pt+" "+TelephoneEvent.String()),
			sdp.NewAttribute("fmtp", pt+" "+telephoneEventFmtp))
	}
	ptime := d.Ptime
	if ptime == 0 {
		ptime = DefaultPtime
	}
	md.Attributes = append(md.Attributes,
		sdp.NewAttribute("ptime", strconv.Itoa(ptime)),
		sdp.NewPropertyAttribute(d.Direction.String()))
	return md
}
