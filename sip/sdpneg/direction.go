package sdpneg

import "fmt"

// Direction is the SDP stream direction attribute (RFC 3264 §5.1). The zero
// value is sendrecv, which is also what an SDP without the attribute means.
type Direction uint8

const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

// String is the attribute name as written in SDP.
func (d Direction) String() string {
	switch d {
	case SendRecv:
		return "sendrecv"
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// MarshalText makes Direction print as its SDP name in JSON status output.
func (d Direction) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads the attribute name back: a status document that
// holds a Direction (the SBC's "webrtc" calls) must decode as it encodes.
func (d *Direction) UnmarshalText(b []byte) error {
	v, err := ParseDirection(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDirection reads a direction attribute name.
func ParseDirection(s string) (Direction, error) {
	for _, d := range []Direction{SendRecv, SendOnly, RecvOnly, Inactive} {
		if d.String() == s {
			return d, nil
		}
	}
	return SendRecv, fmt.Errorf("sdpneg: unknown direction %q", s)
}

// CanSend reports whether the side that wrote d sends media.
func (d Direction) CanSend() bool { return d == SendRecv || d == SendOnly }

// CanRecv reports whether the side that wrote d receives media.
func (d Direction) CanRecv() bool { return d == SendRecv || d == RecvOnly }

func directionOf(send, recv bool) Direction {
	switch {
	case send && recv:
		return SendRecv
	case send:
		return SendOnly
	case recv:
		return RecvOnly
	}
	return Inactive
}

// Answer is the direction an answerer writes for an offer of d when it
// itself wants local (RFC 3264 §6.1): it may only send if the offerer
// receives, and only receive if the offerer sends. So a sendonly offer (the
// offerer putting us on hold) is answered recvonly.
func (d Direction) Answer(local Direction) Direction {
	return directionOf(d.CanRecv() && local.CanSend(), d.CanSend() && local.CanRecv())
}

func (d Direction) valid() bool { return d <= Inactive }
