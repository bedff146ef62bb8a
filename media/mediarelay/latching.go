package mediarelay

import (
	"fmt"
	"strings"
)

// Latching says where the relay sends a side's media and whose packets it
// accepts on that side's socket. The SBC changes it live (`set`), so the
// relay reads it for every packet through the mode function given to New.
type Latching string

const (
	// Learn ("comedia", latching): the first valid RTP source seen on a
	// side's socket becomes that side's destination, whatever its SDP said.
	// The fix for NATed phones.
	Learn Latching = "learn"
	// Strict accepts only packets from the SDP address and sends to it.
	Strict Latching = "strict"
	// Off trusts the SDP address for sending and accepts packets from
	// anyone: a NATed phone's private SDP address means no audio to it.
	Off Latching = "off"
)

// ParseLatching reads a mode as typed on the command line ("learn",
// "strict", "off", any case). "comedia" and "on" are accepted for learn,
// because that is what the training page and the PBX's `latch on` call it.
func ParseLatching(s string) (Latching, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "learn", "comedia", "on":
		return Learn, nil
	case "strict":
		return Strict, nil
	case "off":
		return Off, nil
	}
	return "", fmt.Errorf("%w %q (want learn, strict or off)", ErrBadLatching, s)
}

// effective maps anything the mode function may return to a real mode: the
// zero value and unknown strings mean the default, Learn, so a careless
// caller gets working audio rather than a silent relay.
func (l Latching) effective() Latching {
	switch l {
	case Strict, Off:
		return l
	}
	return Learn
}

// modes and index map a mode to a small number and back, so the relay can
// keep the last one seen in an atomic.
var modes = [3]Latching{Learn, Strict, Off}

func (l Latching) index() uint32 {
	switch l {
	case Strict:
		return 1
	case Off:
		return 2
	}
	return 0
}
